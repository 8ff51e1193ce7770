"""The model card (`README.md`) of a pretrained encoder folder: what it was pretrained on, how, and how to use it."""
from __future__ import annotations

import json
from pathlib import Path

from ..model_folder import CARD_NAME, CONFIG_NAME, PREPROCESSOR_NAME

TAGS = ["audio_vit", "audio", "self-supervised", "masked-spectrogram-modeling", "vision-transformer",
        "log-mel-spectrogram"]


def _rows(pairs) -> str:
    return "\n".join(f"| {name} | {value} |" for name, value in pairs)


def render_pretraining_card(config: dict, features: dict, record: dict) -> str:
    """The card's markdown from the folder's `config.json`, `preprocessor_config.json` and the pretraining record."""
    data, options, result = record["data"], record["options"], record["result"]
    left_out = ", ".join(f"{count} {name}" for name, count in data["left_out"].items() if count) or "none"
    seconds = result.get("train_seconds") or 0.0
    status = ("finished" if result.get("finished")
              else f"stopped after epoch {result.get('epoch')} of {options['num_train_epochs']} (time budget); "
                   "resume with `--resume-from-checkpoint latest`")
    losses = ", ".join(f"{key.replace('_', ' ')} {result[key]:.4f}" for key in (
        "loss", "reconstruction_loss", "contrastive_loss", "contrastive_accuracy") if result.get(key) is not None)
    pattern = options["mask_pattern"] + (f" (mean span {options['mask_span_length']} steps)"
                                         if options["mask_pattern"] == "span" else "")
    window_s = (record["window_frames"] - 1) * features["hop_length"] / features["sampling_rate"]
    front_matter = "---\nlibrary_name: transformers\ntags:\n" + "".join(f"- {tag}\n" for tag in TAGS) + "---\n"
    return f"""{front_matter}
# AudioViT encoder pretrained without labels

An `AudioViTModel` (the bare encoder, no classification head) pretrained by `audio-vit pretrain` with
{record['method']}. It was pretrained on audio alone: no label was read.

Fine-tune it on labelled clips (a new head; every encoder tensor is loaded):

```bash
audio-vit train --model-name-or-path THIS_FOLDER --data-dir YOUR_DATA --output-dir OUT
```

Load the encoder: `AudioViTModel.from_pretrained(folder)` after `import audio_vit`, or
`AutoModel.from_pretrained(folder, trust_remote_code=True)`; its feature extractor:
`AutoFeatureExtractor.from_pretrained(folder)`.

## Pretraining data

| | |
| --- | --- |
{_rows([("source", f"`{data['source']}`"), ("clips", data["clips"]), ("hours of audio", f"{data['hours']:.2f}"),
        ("left out (other splits)", left_out), ("unreadable, skipped", data["skipped"])])}

## Input

| | |
| --- | --- |
{_rows([("sampling rate", f"{features['sampling_rate']} Hz"),
        ("log-mel", f"{features['num_mel_bins']} bins, hop {features['hop_length']}, window {features['win_length']}, "
                    f"FFT {features['n_fft']}"),
        ("window", f"{record['window_frames']} frames ({window_s:.2f} s)"),
        ("normalisation", f"mean {features['mean']:.4f}, std {features['std']:.4f} (the pretraining clips)")])}

## Encoder

| | |
| --- | --- |
{_rows([("stem", config["stem"] + (f" {config['stem_channels']}" if config["stem"] == "conv" else "")),
        ("patch", f"{config['patch_size']}"), ("width x depth", f"{config['hidden_size']} x "
                                                                 f"{config['num_hidden_layers']}"),
        ("heads", config["num_attention_heads"]), ("pooling (for fine-tuning)", config["pooling"])])}

## Pretraining

| | |
| --- | --- |
{_rows([("masking", f"{options['mask_ratio']:.0%} of each clip's tokens, {pattern}; never a padding-only patch"),
        ("decoder", f"{options['decoder_layers']} blocks x {options['decoder_hidden_size']} "
                    f"({options['decoder_heads']} heads), not saved here"),
        ("targets", "patches normalised per patch" if options["normalize_targets"] else "spectrogram values"),
        ("contrastive term", f"weight {options['contrastive_weight']}" if options["contrastive_weight"] else "off"),
        ("optimisation", f"AdamW, LR {options['learning_rate']}, weight decay {options['weight_decay']}, batch "
                         f"{options['per_device_train_batch_size']}, cosine, seed {options['seed']}"),
        ("epochs / steps", f"{result.get('epoch')} / {result.get('global_step')} ({status})"),
        ("time", f"{seconds / 60:.1f} min"), ("last epoch's losses", losses or "no epoch finished"),
        ("skipped non-finite steps", result.get("nonfinite_steps_skipped", 0))])}
"""


def write_pretraining_card(output_dir, record: dict) -> Path:
    """Write `README.md` into the encoder folder (after its config and feature extractor)."""
    output_dir = Path(output_dir)
    config = json.loads((output_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    features = json.loads((output_dir / PREPROCESSOR_NAME).read_text(encoding="utf-8"))
    path = output_dir / CARD_NAME
    path.write_text(render_pretraining_card(config, features, record), encoding="utf-8")
    return path


__all__ = ["render_pretraining_card", "write_pretraining_card"]
