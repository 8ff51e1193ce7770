"""Web demo and JSON API of a trained model folder: upload or record a clip, see the top labels, the spectrogram
and, for long recordings, a timeline of window labels.

    audio-vit serve --model outputs/fsdd-demo            # http://127.0.0.1:7860, API endpoint /classify
    python -c "from audio_vit.serving.app import build_demo; build_demo('user/model').launch()"   # a Space's app.py

The model is loaded once, when the page is built, and shared by all requests through a `WindowBatcher`:
each request decodes and featurises its upload in its own thread, and the windows of concurrent requests go
through the model together. Waiting is bounded by the work waiting (`serving.RequestAdmission`): `concurrency`
requests run at once, at most `max_queue` more wait, and the requests taken in hold at most `max_queued_audio_s`
of audio; a request beyond that is answered at once "The server is busy: ...; please retry in a moment", so a
burst gets answers or a clear "busy, retry" instead of waits that grow with it. Recordings of any length are read
in chunks (`classify_audio_file`), so the working memory and the page's picture stay bounded; what grows with the
length is the list of window results (one row per window, all of them in the JSON answer and the CSV). The page
keeps its latest `kept_downloads` CSV files. Everything the page needs is served by the local process: analytics
are switched off before gradio is imported and the default theme's fonts are bundled, so it works with no internet.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .options import (SERVE_CONCURRENCY, SERVE_KEPT_DOWNLOADS, SERVE_MAX_BATCH_SIZE, SERVE_MAX_DURATION_S, SERVE_MAX_QUEUE,
                      SERVE_MAX_QUEUED_AUDIO_S)
from .spectrogram_overview import SpectrogramOverview, label_colours, overview_image, spectrogram_image

# gradio reads this when it is imported: no telemetry and no version check against api.gradio.app.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TIMELINE_HEADERS = ["start (s)", "end (s)", "label", "score"]
MAX_TABLE_ROWS = 2000  # rows shown on the page; the CSV download has them all
MAX_PLOT_POINTS = 2000  # timeline points sent to the browser


@dataclass
class DemoResult:
    """What the page shows for one recording."""

    file: str  # the uploaded file's own name (not the server's temporary path)
    duration_s: float
    scores: dict[str, float]  # label -> score, best first (gr.Label input)
    windows: list  # `audio_vit.inference.long_audio.WindowPrediction`, in time order
    message: str  # one line: file, duration, windows, top label
    spectrogram: np.ndarray | None = None  # (H, W, 3) uint8 overview, W bounded; None when not drawn

    @property
    def timeline(self) -> list[list]:
        """One row per window: start, end, label, score."""
        return [[w.start_s, w.end_s, w.label, round(w.score, 4)] for w in self.windows]

    def to_json(self) -> dict:
        """What the `/classify` endpoint returns."""
        return {
            "file": self.file,
            "duration_s": round(self.duration_s, 3),
            "label": next(iter(self.scores)),
            "scores": [{"label": label, "score": score} for label, score in self.scores.items()],
            "windows": [vars(w) for w in self.windows],
        }


def format_duration(seconds: float) -> str:
    """`4.52 s`, `10 min 0 s`, `10 h 0 min`."""
    if seconds < 60:
        return f"{seconds:.2f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


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
    """The page's logic without the page: `classify(path)` -> `DemoResult`. Loads nothing itself.

    Args:
        model, feature_extractor: the loaded classifier and its extractor.
        top_k (`int`, defaults to 5): labels kept with their scores.
        max_batch_size (`int`, defaults to 64): windows per forward pass, shared by concurrent requests.
        max_duration_s (`float`, *optional*, defaults to 12 h): longer recordings are refused; `None` for no limit.
        concurrency, max_queue, max_queued_audio_s: the server's `admission` (`serving.RequestAdmission`): requests
            classified at once, requests waiting for one of those slots at most, and seconds of audio held at most.
            The page's events admit each request before classifying it; `classify` itself does not.
    """

    def __init__(self, model, feature_extractor, top_k: int = 5, *, max_batch_size: int = SERVE_MAX_BATCH_SIZE,
                 max_duration_s: float | None = SERVE_MAX_DURATION_S, concurrency: int = SERVE_CONCURRENCY,
                 max_queue: int = SERVE_MAX_QUEUE, max_queued_audio_s: float | None = SERVE_MAX_QUEUED_AUDIO_S):
        from .batching import RequestAdmission, WindowBatcher

        self.admission = RequestAdmission(concurrency, max_queue, max_queued_audio_s)
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.top_k = top_k
        self.max_batch_size = max_batch_size
        self.max_duration_s = max_duration_s
        self.batcher = WindowBatcher(self.model, max_batch_size=max_batch_size)  # its worker thread: `close()`
        self.colours = label_colours([model.config.id2label[i] for i in sorted(model.config.id2label)])

    def classify(self, path: str | os.PathLike | None, *, draw: bool = True) -> DemoResult:
        """Classify one audio file as `audio-vit predict --segments` does; `ValueError` naming the file if refused.

        `draw=False` skips the spectrogram picture (the JSON API does not send it).
        """
        from ..data.audio_decoding import AudioDecodeError, audio_duration
        from ..inference.long_audio import classify_audio_file

        if not path:
            raise ValueError("no audio: upload a file or record a clip first")
        name = Path(path).name  # gradio keeps the upload's own name inside its temporary folder
        header_seconds = audio_duration(path) if self.max_duration_s is not None else None
        if header_seconds is not None and header_seconds > self.max_duration_s:
            raise AudioDecodeError(name, f"{format_duration(header_seconds)} is longer than the limit of "
                                         f"{format_duration(self.max_duration_s)} (audio-vit serve --max-duration-min)")
        overview = SpectrogramOverview() if draw else None
        try:
            result = classify_audio_file(
                self.model, self.feature_extractor, path, top_k=self.top_k, batch_size=self.max_batch_size,
                max_seconds=self.max_duration_s, window_classifier=self.batcher,
                feature_observer=overview.add if overview is not None else None,
            )
        except AudioDecodeError as error:  # say which upload, not where the server keeps it (decoders quote paths)
            raise AudioDecodeError(name, error.reason.replace(os.fspath(path), name)) from None
        picture = self._picture(overview, result.windows) if overview is not None else None
        message = (
            f"{name}: {format_duration(result.duration_s)}, {len(result.windows)} window(s); "
            f"top label **{result.label}** ({result.scores[0]['score']:.3f})"
        )
        return DemoResult(
            file=name, duration_s=result.duration_s, scores={s["label"]: s["score"] for s in result.scores},
            windows=result.windows, message=message, spectrogram=picture,
        )

    def close(self) -> None:
        """Stop the batcher's worker thread; requests still waiting are answered with an error."""
        self.batcher.close()

    def _picture(self, overview: SpectrogramOverview, windows: list) -> np.ndarray:
        seconds_per_frame = self.feature_extractor.hop_length / self.feature_extractor.sampling_rate
        marks = [(round(w.start_s / seconds_per_frame), round(w.end_s / seconds_per_frame), w.label) for w in windows]
        return overview_image(overview, marks, self.colours)


def timeline_points(windows: list, max_points: int = MAX_PLOT_POINTS):
    """The timeline plot's data: one row per window (time at its centre), or, for more windows than `max_points`,
    the most confident window of each run of consecutive windows. Time in s, min or h, whichever reads best."""
    import pandas as pd

    step = max(1, -(-len(windows) // max_points))
    kept = [max(windows[i : i + step], key=lambda w: w.score) for i in range(0, len(windows), step)]
    end = windows[-1].end_s if windows else 0.0
    unit, scale = ("h", 3600.0) if end >= 3 * 3600 else ("min", 60.0) if end >= 180 else ("s", 1.0)
    frame = pd.DataFrame({
        f"time ({unit})": [(w.start_s + w.end_s) / 2 / scale for w in kept],
        "score": [round(w.score, 4) for w in kept],
        "label": [w.label for w in kept],
    })
    return frame, step


def write_timeline_csv(result: DemoResult, folder: str | os.PathLike) -> str:
    """All windows of `result` as `<upload>_windows.csv` in `folder`; returns the path."""
    path = Path(folder) / f"{Path(result.file).stem}_windows.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TIMELINE_HEADERS)
        writer.writerows(result.timeline)
    return str(path)


class TimelineDownloads:
    """The page's CSV downloads: each in its own sub-folder of one temporary folder (two uploads of the same name
    must not overwrite each other's file), the latest `keep` of them; the oldest goes when a new one is written.

    gradio copies a returned file into its own cache before the page shows it, so deleting an older download
    here does not break a link; `keep` well above the server's concurrency leaves a finished request time for that
    copy. `close()` deletes the folder.
    """

    def __init__(self, keep: int = SERVE_KEPT_DOWNLOADS):
        if keep < 1:
            raise ValueError(f"kept_downloads={keep} must be at least 1")
        self.keep = keep
        self.folder = Path(tempfile.mkdtemp(prefix="audio_vit_serve_"))
        self._written: deque[Path] = deque()
        self._lock = threading.Lock()

    def write(self, result: DemoResult) -> str:
        """All windows of `result` as a CSV in a new sub-folder; returns its path."""
        with self._lock:
            while len(self._written) >= self.keep:
                shutil.rmtree(self._written.popleft(), ignore_errors=True)
            subfolder = Path(tempfile.mkdtemp(dir=self.folder))
            self._written.append(subfolder)
        return write_timeline_csv(result, subfolder)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _load(model, feature_extractor):
    """A folder / repo id -> (model, extractor, folder); a loaded model needs its extractor passed along."""
    if isinstance(model, (str, os.PathLike)):
        from ..model_folder import load_feature_extractor, load_model, resolve_model_folder

        folder = resolve_model_folder(model)
        return load_model(folder), feature_extractor or load_feature_extractor(folder), folder
    if feature_extractor is None:
        raise ValueError("build_demo(model=<a loaded model>) needs feature_extractor=; or pass the model folder")
    return model, feature_extractor, getattr(model, "name_or_path", None) or None


def build_demo(model, feature_extractor=None, *, top_k: int = 5, title: str | None = None,
               max_batch_size: int = SERVE_MAX_BATCH_SIZE, concurrency: int = SERVE_CONCURRENCY,
               max_queue: int = SERVE_MAX_QUEUE, max_queued_audio_s: float | None = SERVE_MAX_QUEUED_AUDIO_S,
               max_duration_s: float | None = SERVE_MAX_DURATION_S, kept_downloads: int = SERVE_KEPT_DOWNLOADS):
    """Build the gradio page (and its `/classify` JSON endpoint) for an audio classifier.

    Args:
        model (`str`, `os.PathLike` or a loaded model): a model folder or Hub repo id (loaded once, here), or an
            `AudioViTForAudioClassification` already in memory.
        feature_extractor (*optional*): its feature extractor; read from the folder when `model` is a path.
        top_k (`int`, defaults to 5): labels shown with their scores.
        title (`str`, *optional*): page heading; defaults to the model folder's name.
        max_batch_size (`int`, defaults to 64): windows per forward pass, shared by concurrent requests.
        concurrency (`int`, defaults to 8): requests decoded and classified at once.
        max_queue (`int`, defaults to 32): requests waiting for one of those slots at most.
        max_queued_audio_s (`float`, *optional*, defaults to 2 h): seconds of audio the requests taken in (running
            and waiting) hold at most; `None` for no limit. A request beyond either limit gets "The server is busy:
            ...; please retry in a moment" at once (a `gr.Error`; gradio_client raises it as `AppError`); more than
            `2 * (concurrency + max_queue)` arriving at the same instant may get gradio's "Queue is full"
            (`QueueError`).
        max_duration_s (`float`, *optional*, defaults to 12 h): longer recordings are refused with a message.
        kept_downloads (`int`, defaults to 32): the page's CSV downloads kept on disk (the latest ones).

    Returns a `gradio.Blocks` with its queue set up; call `.launch()` on it (or let a Space do so). Upload size is
    limited at launch (`max_file_size=`), as `audio-vit serve --max-upload-mb` does. `demo.close()` also stops the
    model's worker thread and deletes the CSV downloads; `demo.audio_classifier` is the `AudioClassifierDemo`
    behind it.
    """
    model, feature_extractor, folder = _load(model, feature_extractor)
    folder = folder if folder is not None and Path(folder).is_dir() else None
    logic = AudioClassifierDemo(model, feature_extractor, top_k=top_k, max_batch_size=max_batch_size,
                                max_duration_s=max_duration_s, concurrency=concurrency, max_queue=max_queue,
                                max_queued_audio_s=max_queued_audio_s)
    heading = title or f"audio_vit: {Path(folder).name if folder else model.config.model_type}"
    demo = _page(logic, heading, model_summary(model, feature_extractor, folder), TimelineDownloads(kept_downloads))
    demo.audio_classifier = logic
    # gradio's own queue only passes requests on to the admission; its bound is a backstop against a flood
    return demo.queue(default_concurrency_limit=None, max_size=2 * (concurrency + max_queue))


def header_seconds(path) -> float:
    """The upload's duration from its header, for the admission; 0 when the header does not say (or the file is
    unreadable: classifying it then says so)."""
    from ..data.audio_decoding import audio_duration

    try:
        return audio_duration(path) or 0.0
    except Exception:  # noqa: BLE001 -- the classification reports the file's problem, naming it
        return 0.0


def _page(logic: AudioClassifierDemo, heading: str, summary: str, downloads: TimelineDownloads):
    """The gradio Blocks: the page's own event, and `/classify` for programs; both admitted by `logic.admission`."""
    import anyio
    import gradio as gr

    from .batching import ServerBusyError

    top_k = logic.top_k
    hide = gr.update(value=None, visible=False)

    def page_answer(path):
        """The page's outputs for one upload: labels, picture, timeline plot, table and CSV, status line."""
        result = logic.classify(path)
        if len(result.windows) < 2:
            return result.scores, result.spectrogram, hide, hide, hide, result.message
        points, step = timeline_points(result.windows)
        shown = f"first {MAX_TABLE_ROWS} of {len(result.windows)}; all in the CSV" if len(result.windows) > \
            MAX_TABLE_ROWS else f"{len(result.windows)}"
        return (
            result.scores,
            result.spectrogram,
            gr.update(value=points, visible=True, x=points.columns[0], x_title=points.columns[0],
                      label="Window labels over time" + (f" (most confident of every {step} windows)" if step > 1 else "")),
            gr.update(value=result.timeline[:MAX_TABLE_ROWS], visible=True, label=f"Window labels ({shown})"),
            gr.update(value=downloads.write(result), visible=True),
            result.message,
        )

    async def admitted(work, path):
        """`work(path)` in a worker thread once `logic.admission` takes the upload in (`ServerBusyError` at once if
        not); the request waits for its slot on the event loop, holding no thread."""
        async with logic.admission.admit(await anyio.to_thread.run_sync(header_seconds, path)):
            return await anyio.to_thread.run_sync(work, path)

    async def show(path):
        """The page's event: labels, picture, timeline plot, table and CSV, status line."""
        if not path:  # the clip was cleared
            return None, None, hide, hide, hide, ""
        try:
            return await admitted(page_answer, path)
        except (ValueError, OSError) as err:  # unreadable or refused upload: say so on the page, keep it usable
            return None, None, hide, hide, hide, f"**Could not classify**: {err}"
        except ServerBusyError as err:
            return None, None, hide, hide, hide, f"**{err}**"

    async def classify(path) -> dict:
        """Labels and scores of an audio file as JSON: file, duration_s, label, scores (best first) and windows."""
        try:
            return await admitted(lambda upload: logic.classify(upload, draw=False).to_json(), path)
        except (ValueError, OSError, ServerBusyError) as err:
            raise gr.Error(str(err), print_exception=False) from None  # the caller gets it; no traceback in the log

    with gr.Blocks(title=heading, analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f"# {heading}\nUpload an audio file of any length or record from the microphone.")
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio", elem_id="audio-input")
                button = gr.Button("Classify", variant="primary", elem_id="classify-button")
                status = gr.Markdown(elem_id="status")
            with gr.Column():
                labels = gr.Label(num_top_classes=top_k, label="Top labels", elem_id="labels")
                spectrogram = gr.Image(label="Log-mel spectrogram the model saw (strip: each window's label)",
                                       type="numpy", elem_id="spectrogram", interactive=False)
        timeline_plot = gr.ScatterPlot(x="time (s)", y="score", color="label", color_map=logic.colours, y_lim=[0, 1],
                                       label="Window labels over time", visible=False, elem_id="timeline-plot")
        timeline = gr.Dataframe(headers=TIMELINE_HEADERS, label="Window labels", visible=False, elem_id="timeline",
                                interactive=False)
        timeline_csv = gr.File(label="All windows (CSV)", visible=False, elem_id="timeline-csv")
        with gr.Accordion("Model card", open=False):
            gr.Markdown(summary, elem_id="model-card")
        api_trigger = gr.Button(visible=False)  # `/classify` has no button on the page: programs call it
        api_result = gr.JSON(visible=False)
        page_outputs = [labels, spectrogram, timeline_plot, timeline, timeline_csv, status]
        # gradio hands every request over at once: `logic.admission` queues it (or answers busy), seeing its audio
        shared = dict(concurrency_limit=None, concurrency_id="classify")
        for trigger in (audio.change, button.click):  # an upload or a finished recording classifies at once
            trigger(show, inputs=audio, outputs=page_outputs, api_visibility="private", **shared)
        api_trigger.click(classify, inputs=audio, outputs=api_result, api_name="classify", **shared)
    _close_with(demo, logic, downloads)
    return demo


def _close_with(demo, logic: AudioClassifierDemo, downloads: TimelineDownloads) -> None:
    """`demo.close()` also stops the batcher's worker thread and deletes the downloads (gradio has no close hook);
    so does the demo being garbage-collected, or the interpreter exiting, if it was never closed."""
    import weakref

    close_server = demo.close
    release = weakref.finalize(demo, _release, logic, downloads)

    def close(*args, **kwargs):
        try:
            return close_server(*args, **kwargs)
        finally:
            release()

    demo.close = close


def _release(logic: AudioClassifierDemo, downloads: TimelineDownloads) -> None:
    logic.close()
    downloads.close()


__all__ = ["AudioClassifierDemo", "DemoResult", "TimelineDownloads", "build_demo", "format_duration", "model_summary",
           "spectrogram_image", "timeline_points", "write_timeline_csv"]
