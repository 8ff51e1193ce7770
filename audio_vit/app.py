"""Web demo of a trained model folder: drop or record a clip, see the top labels and the spectrogram.

    audio-vit serve --model outputs/fsdd-demo            # http://127.0.0.1:7860
    python -c "from audio_vit.app import build_demo; build_demo('user/model').launch()"   # a Space's app.py

The model is loaded once, when the page is built. Everything the page needs is served by the local
process: analytics are switched off before gradio is imported and the default theme's fonts are bundled,
so the page works with no internet.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# gradio reads this when it is imported: no telemetry and no version check against api.gradio.app.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TIMELINE_HEADERS = ["start (s)", "end (s)", "label", "score"]
SPECTROGRAM_HEIGHT_PX = 256


@dataclass
class DemoResult:
    """What the page shows for one clip."""

    scores: dict[str, float]  # label -> score, best first (gr.Label input)
    spectrogram: np.ndarray  # (H, W, 3) uint8 image, low frequencies at the bottom
    timeline: list[list]  # one row per window: start, end, label, score
    message: str  # one line: file, duration, windows


def spectrogram_image(features: np.ndarray, height: int = SPECTROGRAM_HEIGHT_PX) -> np.ndarray:
    """`(num_mel_bins, frames)` model input -> `(height, frames', 3)` uint8 image (viridis, low bins at the bottom).

    Each mel bin is repeated to fill `height` rows; each frame is one column (at least `height` columns,
    so a short clip is not a sliver).
    """
    from matplotlib import colormaps

    if features.ndim != 2 or min(features.shape) == 0:
        raise ValueError(f"features must be a non-empty (num_mel_bins, frames) array, got shape {features.shape}")
    low, high = float(features.min()), float(features.max())
    scaled = (features - low) / (high - low) if high > low else np.zeros_like(features)
    rows = max(1, height // features.shape[0])
    columns = max(1, -(-height // features.shape[1]))
    image = np.repeat(np.repeat(scaled[::-1], rows, axis=0), columns, axis=1)  # flip: low bins at the bottom
    return (colormaps["viridis"](image)[..., :3] * 255).astype(np.uint8)


def model_summary(model, feature_extractor, folder: str | os.PathLike | None = None) -> str:
    """Markdown card summary: architecture, window length, labels, and the test metrics when the folder has them."""
    config = model.config
    labels = [config.id2label[i] for i in sorted(config.id2label)]
    seconds = feature_extractor.max_length * feature_extractor.hop_length / feature_extractor.sampling_rate
    lines = [
        f"**Model**: `{config.model_type}` ({config.backbone if hasattr(config, 'backbone') else 'transformers'}), "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters",
        f"**Input**: {feature_extractor.num_mel_bins} mel bins at {feature_extractor.sampling_rate} Hz, "
        f"{seconds:.2f} s windows",
        f"**Labels ({len(labels)})**: " + ", ".join(f"`{label}`" for label in labels),
    ]
    results_file = Path(folder) / "test_results.json" if folder is not None else None
    if results_file is not None and results_file.is_file():
        results = json.loads(results_file.read_text(encoding="utf-8"))
        metrics = results.get("metrics", results)
        shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if shown:
            lines.append("**Test metrics**: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(shown.items())))
    else:
        lines.append("**Test metrics**: none recorded in the model folder (no test_results.json)")
    return "\n\n".join(lines)


class AudioClassifierDemo:
    """The page's logic without the page: `classify(path)` -> `DemoResult`. Loads nothing itself."""

    def __init__(self, model, feature_extractor, top_k: int = 5):
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.top_k = top_k

    def classify(self, path: str | os.PathLike) -> DemoResult:
        """Classify one audio file as `audio-vit predict --segments` does; `ValueError` naming the file if unreadable."""
        from .audio_io import load_audio
        from .inference import classify_long_audio

        if not path:
            raise ValueError("no audio: upload a file or record a clip first")
        waveform, rate = load_audio(path)  # AudioDecodeError (a ValueError) names the file and the reason
        result = classify_long_audio(self.model, self.feature_extractor, waveform, rate, top_k=self.top_k)
        features = self.feature_extractor(
            waveform, sampling_rate=rate, resample=True, padding="longest", truncation=False, return_tensors="np"
        )["input_values"][0]
        timeline = [[w.start_s, w.end_s, w.label, round(w.score, 4)] for w in result.windows]
        message = (
            f"{Path(path).name}: {len(waveform) / rate:.2f} s, {len(result.windows)} window(s); "
            f"top label **{result.label}** ({result.scores[0]['score']:.3f})"
        )
        return DemoResult(
            scores={s["label"]: s["score"] for s in result.scores},
            spectrogram=spectrogram_image(features),
            timeline=timeline,
            message=message,
        )


def _load(model, feature_extractor):
    """A folder / repo id -> (model, extractor, folder); a loaded model needs its extractor passed along."""
    if isinstance(model, (str, os.PathLike)):
        from .model_folder import load_feature_extractor, load_model, resolve_model_folder

        folder = resolve_model_folder(model)
        return load_model(folder), feature_extractor or load_feature_extractor(folder), folder
    if feature_extractor is None:
        raise ValueError("build_demo(model=<a loaded model>) needs feature_extractor=; or pass the model folder")
    return model, feature_extractor, getattr(model, "name_or_path", None) or None


def build_demo(model, feature_extractor=None, *, top_k: int = 5, title: str | None = None):
    """Build the gradio page for an audio classifier.

    Args:
        model (`str`, `os.PathLike` or a loaded model): a model folder or Hub repo id (loaded once, here), or an
            `AudioViTForAudioClassification` already in memory.
        feature_extractor (*optional*): its feature extractor; read from the folder when `model` is a path.
        top_k (`int`, defaults to 5): labels shown with their scores.
        title (`str`, *optional*): page heading; defaults to the model folder's name.

    Returns a `gradio.Blocks`; call `.launch()` on it (or let a Space do so).
    """
    import gradio as gr

    model, feature_extractor, folder = _load(model, feature_extractor)
    folder = folder if folder is not None and Path(folder).is_dir() else None
    demo_logic = AudioClassifierDemo(model, feature_extractor, top_k=top_k)
    heading = title or f"audio_vit: {Path(folder).name if folder else model.config.model_type}"

    def run(path):
        if not path:  # the clip was cleared
            return None, None, gr.update(value=[], visible=False), ""
        try:
            result = demo_logic.classify(path)
        except (ValueError, OSError) as err:  # unreadable upload: say so on the page, keep it usable
            return None, None, gr.update(value=[], visible=False), f"**Could not classify**: {err}"
        long_recording = len(result.timeline) > 1
        return (
            result.scores,
            result.spectrogram,
            gr.update(value=result.timeline, visible=long_recording),
            result.message,
        )

    with gr.Blocks(title=heading, analytics_enabled=False) as demo:
        gr.Markdown(f"# {heading}\nUpload an audio file or record from the microphone.")
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio", elem_id="audio-input")
                button = gr.Button("Classify", variant="primary", elem_id="classify-button")
                status = gr.Markdown(elem_id="status")
            with gr.Column():
                labels = gr.Label(num_top_classes=top_k, label="Top labels", elem_id="labels")
                spectrogram = gr.Image(label="Log-mel spectrogram the model saw", type="numpy", elem_id="spectrogram")
        timeline = gr.Dataframe(headers=TIMELINE_HEADERS, label="Window labels (long recordings)", visible=False,
                                elem_id="timeline", interactive=False)
        with gr.Accordion("Model card", open=False):
            gr.Markdown(model_summary(model, feature_extractor, folder), elem_id="model-card")
        outputs = [labels, spectrogram, timeline, status]
        audio.change(run, inputs=audio, outputs=outputs)  # an upload or a finished recording classifies at once
        button.click(run, inputs=audio, outputs=outputs)
    return demo


__all__ = ["AudioClassifierDemo", "DemoResult", "build_demo", "model_summary", "spectrogram_image"]
