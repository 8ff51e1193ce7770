"""Command-line / config-file arguments of `audio-vit train` and `scripts/train.py`.

Four dataclasses, parsed with `audio_vit.argparsing.DataclassArgumentParser` (HfArgumentParser's option rules,
without importing transformers):
`ModelArguments` (here), `DataArguments` (audio_vit.data), `AugmentationConfig` (audio_vit.data.augmentation) and
`TrainingArguments` (here; not transformers.TrainingArguments). Values come from, by increasing priority:
the dataclass defaults, a YAML/JSON file given with `--config`, and the command line (`command_line.py` parses
them).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..data.arguments import RECIPE_NAMES

LR_SCHEDULERS = ("plateau", "onecycle", "cosine", "constant")
MIXED_PRECISION = ("no", "bf16", "fp16")
ROUTE_NAMES = ("auto", "scratch", "pretrained", "distilled")  # see audio_vit.training.route_selection
REPORT_TO = ("none", "tensorboard", "wandb", "mlflow")
# Sections a config file may group its keys in; flat keys work too.
CONFIG_SECTIONS = ("model", "data", "augmentation", "training")
DEFAULT_MAX_LENGTH = 128  # frames of a new model's input when --max-length is not given


@dataclass
class ModelArguments:
    """What to train: a fresh AudioViT built from these fields, or a checkpoint to fine-tune.

    The feature-extraction fields define the model input and are saved with the model
    (`preprocessor_config.json`); the rest become the `AudioViTConfig`.
    """

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Model folder to fine-tune (config, weights, feature extractor), or a pretrained encoder "
                  "folder (`audio-vit pretrain`: a new head, every encoder tensor loaded). Unset: train from scratch."},
    )
    ignore_mismatched_labels: bool = field(
        default=False,
        metadata={"help": "Fine-tune a checkpoint on a different label set: re-initialise the classification head."},
    )
    # --- feature extraction (model input) ---
    sampling_rate: int = field(default=16000, metadata={"help": "Sampling rate the audio is resampled to (Hz)."})
    n_fft: int = field(default=400, metadata={"help": "FFT size of the STFT (samples)."})
    win_length: int | None = field(default=None, metadata={"help": "STFT window (samples); defaults to n_fft."})
    hop_length: int = field(default=160, metadata={"help": "STFT hop (samples)."})
    num_mel_bins: int = field(default=64, metadata={"help": "Mel bands (spectrogram height)."})
    f_min: float = field(default=0.0, metadata={"help": "Lowest mel band edge (Hz)."})
    f_max: float | None = field(default=None, metadata={"help": "Highest mel band edge (Hz); defaults to Nyquist."})
    top_db: float | None = field(default=80.0, metadata={"help": "Clamp the dB spectrogram to max - top_db."})
    max_length: int | None = field(
        default=None,
        metadata={"help": f"Frames per example (spectrogram width); default {DEFAULT_MAX_LENGTH} for a new model, the "
                  "checkpoint's when fine-tuning (another value re-lays its position embeddings for that length)."},
    )
    # --- AudioViTConfig ---
    backbone: str = field(default="scratch", metadata={"help": "'scratch' (the AudioViT here) or 'timm'."})
    timm_model_name: str | None = field(default=None, metadata={"help": "timm architecture when backbone='timm'."})
    timm_kwargs: str | None = field(
        default=None, metadata={"help": "JSON object of extra timm.create_model arguments, e.g. '{\"drop_rate\": 0.2}'."}
    )
    pretrained_backbone: str | None = field(
        default=None,
        metadata={"help": "Start a timm backbone from these weights: a timm pretrained tag (e.g. "
                  "vit_tiny_patch16_224.augreg_in21k), a .safetensors/.pth file or folder, or a Hub repo id; "
                  "adapted to 1-channel mel input (stem, position embeddings)."},
    )
    stem_reduction: str = field(
        default="sum", metadata={"help": "How pretrained RGB stem weights become one channel: 'sum' or 'mean'."}
    )
    pos_embed_resize: str = field(
        default="interpolate",
        metadata={"help": "Pretrained ViT/DeiT position embeddings onto the mel x time grid: 'interpolate' or 'crop'."},
    )
    patch_size: list[int] = field(
        default_factory=lambda: [64, 2], metadata={"help": "Patch height (mel bins) and width (frames).", "nargs": 2}
    )
    frequency_stride: int | None = field(default=None, metadata={"help": "Patch step along frequency."})
    time_stride: int | None = field(default=None, metadata={"help": "Patch step along time."})
    hidden_size: int = field(default=128, metadata={"help": "Transformer width."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Transformer blocks."})
    num_attention_heads: int = field(default=4, metadata={"help": "Attention heads."})
    intermediate_size: int | None = field(default=None, metadata={"help": "MLP width; defaults to 4 x hidden_size."})
    hidden_dropout_prob: float = field(default=0.0, metadata={"help": "Dropout on embeddings/attention out/MLP."})
    attention_probs_dropout_prob: float = field(default=0.0, metadata={"help": "Dropout on attention weights."})
    drop_path_rate: float = field(default=0.0, metadata={"help": "Stochastic depth rate."})
    classifier_dropout: float = field(default=0.0, metadata={"help": "Dropout before the head."})
    pooling: str = field(
        default="cls",
        metadata={"help": "Pooling of the tokens: 'cls', 'mean', or 'mean_max' (mean + max over the patch tokens)."},
    )
    stem: str = field(
        default="patch",
        metadata={"help": "'patch' (linear patch projection, as ViT/AST) or 'conv' (3x3 conv layers before the "
                  "patches: the locality bias small datasets need; patch_size then applies to the stem's map)."},
    )
    stem_channels: list[int] = field(
        default_factory=lambda: [32, 64, 128], metadata={"help": "Channels of the conv-stem layers.", "nargs": "+"}
    )
    distillation_token: bool = field(
        default=False,
        metadata={"help": "Scratch ViT: a distillation token with its own head (DeiT); with --teacher that head learns "
                  "the teacher's predictions, the class head the labels; the logits are the mean of the two."},
    )

    CONFIG_FIELDS = (
        "backbone", "timm_model_name", "patch_size", "frequency_stride", "time_stride", "hidden_size",
        "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_dropout_prob",
        "attention_probs_dropout_prob", "drop_path_rate", "classifier_dropout", "pooling", "stem", "stem_channels",
        "distillation_token",
    )
    FEATURE_FIELDS = (
        "sampling_rate", "n_fft", "win_length", "hop_length", "num_mel_bins", "f_min", "f_max", "top_db", "max_length",
    )

    def config_kwargs(self) -> dict[str, Any]:
        kwargs = {name: getattr(self, name) for name in self.CONFIG_FIELDS}
        timm_kwargs = self.timm_kwargs  # a JSON string on the command line, a mapping in a config file
        if isinstance(timm_kwargs, str):
            try:
                timm_kwargs = json.loads(timm_kwargs)
            except json.JSONDecodeError as err:
                raise ValueError(f"--timm-kwargs {timm_kwargs!r} is not a JSON object: {err}") from err
        if timm_kwargs is not None and not isinstance(timm_kwargs, dict):
            raise ValueError(f"--timm-kwargs must be a JSON object (a mapping), got {timm_kwargs!r}")
        kwargs["timm_kwargs"] = timm_kwargs
        # The DeiT student: the token gets its own head (AST's pooling="cls_distillation" feeds it to the one head).
        kwargs["distillation_head"] = bool(self.distillation_token) and self.pooling != "cls_distillation"
        kwargs.update(num_mel_bins=self.num_mel_bins, max_length=self.max_length or DEFAULT_MAX_LENGTH)
        return kwargs

    def feature_extractor_kwargs(self) -> dict[str, Any]:
        kwargs = {name: getattr(self, name) for name in self.FEATURE_FIELDS}
        kwargs["max_length"] = self.max_length or DEFAULT_MAX_LENGTH
        return kwargs


@dataclass
class TrainingArguments:
    """How to train: optimisation, schedule, checkpoints, logging."""

    output_dir: str = field(default="outputs/audio_vit", metadata={"help": "Where the model, metrics and checkpoints go."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train even if output_dir already holds a trained model."}
    )
    prepared_data_dir: str | None = field(
        default=None, metadata={"help": "Train on an `audio-vit prepare --output-dir` folder instead of --data-dir/--dataset."}
    )
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "'latest' (newest checkpoint in output_dir/checkpoints) or a checkpoint folder."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of initialisation, shuffling, augmentation and dropout."})
    num_train_epochs: int = field(default=30, metadata={"help": "Epochs in total (a resumed run counts those done)."})
    max_epochs_this_run: int | None = field(
        default=None,
        metadata={"help": "Stop (without test evaluation) after this many epochs in this process; resume later."},
    )
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Training batch size per process."})
    per_device_eval_batch_size: int = field(default=128, metadata={"help": "Evaluation batch size per process."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per optimizer step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate of AdamW."})
    weight_decay: float = field(
        default=0.05, metadata={"help": "AdamW weight decay (not applied to norms, biases, positions, cls token)."}
    )
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW beta1."})
    adam_beta2: float = field(default=0.999, metadata={"help": "AdamW beta2."})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "AdamW epsilon."})
    layer_decay: float | None = field(
        default=None,
        metadata={"help": "Layer-wise learning-rate decay (e.g. 0.75): each block gets this factor of the LR of the "
                  "block above it, the head the full LR. Unset: one LR for all."},
    )
    freeze_backbone: bool = field(
        default=False, metadata={"help": "Train only the classification head; the backbone stays frozen."}
    )
    head_only_epochs: int = field(
        default=0, metadata={"help": "Train only the classification head for this many epochs, then the whole model."}
    )
    max_grad_norm: float | None = field(default=1.0, metadata={"help": "Gradient clipping norm; 0 or unset: off."})
    max_consecutive_nonfinite_steps: int = field(
        default=10,
        metadata={"help": "A step whose loss or gradients are not finite is skipped and counted (epoch log line, "
                  "trainer_state.json, all_results.json); this many in a row stop the run with an error naming the "
                  "epoch, step and clips of the batch."},
    )
    lr_scheduler: str = field(
        default="plateau", metadata={"help": f"Learning-rate schedule: one of {LR_SCHEDULERS}."}
    )
    warmup_epochs: float = field(default=0.0, metadata={"help": "Linear warmup length in epochs (fractions allowed)."})
    plateau_factor: float = field(default=0.5, metadata={"help": "ReduceLROnPlateau: LR multiplier on a plateau."})
    plateau_patience: int = field(
        default=3, metadata={"help": "ReduceLROnPlateau: epochs without improvement before the LR drops."}
    )
    anneal_epochs: float = field(
        default=0.0,
        metadata={"help": "Plateau schedule: over the last N epochs the LR falls along a cosine from where the plateau "
                  "rule left it to --min-learning-rate, so a run ends on a low LR."},
    )
    min_learning_rate: float = field(default=1e-6, metadata={"help": "Floor of plateau/cosine schedules."})
    metric_for_best_model: str = field(
        default="accuracy",
        metadata={"help": "Validation metric for best model/plateau/early stopping: accuracy, f1, loss; multi-label "
                  "data: mAP, micro_f1, loss (accuracy there means mAP, f1 means micro_f1)."},
    )
    multi_label_threshold: float = field(
        default=0.5, metadata={"help": "Multi-label data: a label is predicted when its sigmoid score is >= this "
                               "(for F1 and subset accuracy; mAP uses no threshold)."}
    )
    early_stopping_patience: int | None = field(
        default=10, metadata={"help": "Stop after this many epochs without validation improvement; 0/unset: never."}
    )
    label_smoothing: float = field(default=0.0, metadata={"help": "Label smoothing of the training targets."})
    ema_decay: float | None = field(
        default=None, metadata={"help": "Keep an exponential moving average of the weights (e.g. 0.999); evaluated and saved."}
    )
    mixed_precision: str = field(
        default="no", metadata={"help": f"One of {MIXED_PRECISION}; on a CPU it is a no-op."}
    )
    cpu: bool = field(default=False, metadata={"help": "Train on the CPU even if a GPU is present."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes."})
    save_total_limit: int = field(default=2, metadata={"help": "Epoch checkpoints to keep (the newest K)."})
    do_test: bool = field(default=True, metadata={"help": "Evaluate the best model on the test split at the end."})
    report_to: str = field(default="tensorboard", metadata={"help": f"Experiment tracker: one of {REPORT_TO}."})
    logging_steps: int = field(default=20, metadata={"help": "Log the training loss every N optimizer steps."})
    log_examples: int = field(
        default=4, metadata={"help": "Example spectrograms (and Griffin-Lim audio) logged to the tracker at the start."}
    )
    disable_tqdm: bool = field(default=False, metadata={"help": "No progress bars."})
    recipe: str = field(
        default="auto",
        metadata={"help": "auto: every option you do not set is derived from the data (sampling rate and window "
                  "from the clips' rates and durations; model, epochs and augmentation from their number; "
                  "validation from a whole other fold); printed and saved as recipe.json. none: the plain defaults."},
    )
    route: str = field(
        default="auto",
        metadata={"help": "auto: when a pretrained start is available offline (the ImageNet EfficientNet-Lite0 that "
                  "installs with audio_vit, or --pretrained-backbone), train the scratch ViT and the pretrained start, "
                  "keep the one with the best validation accuracy and say why (route.json, recipe.json, the card); "
                  "nothing is chosen when your options fix the model. scratch: the ViT only. pretrained: the "
                  "pretrained start only. distilled: the ViT distilled from the pretrained start (trained first)."},
    )
    balanced_sampling: bool = field(
        default=False,
        metadata={"help": "Draw training clips with probability 1/(clips of their class), so rare classes are seen "
                  "as often as common ones (auto recipe: on when the largest class is 3x the smallest)."},
    )
    teacher: str | None = field(
        default=None,
        metadata={"help": "Distil a trained model folder (timm or ViT, same labels) into the model being trained: "
                  "the loss adds the teacher's predictions of each augmented batch (DeiT); the saved model does not "
                  "need the teacher. --recipe auto takes the teacher's feature options and, with the soft term, "
                  "learns the teacher's function: --distillation-alpha 1.0 on --mixup-alpha 0.4 blends."},
    )
    distillation_type: str = field(
        default="soft", metadata={"help": "With --teacher: 'soft' (KL to the teacher's softmax at --distillation-tau) "
                                  "or 'hard' (cross-entropy to the teacher's class)."}
    )
    distillation_alpha: float = field(
        default=0.5, metadata={"help": "With --teacher: weight of the teacher term; the label term gets 1 - alpha "
                               "(--recipe auto with the soft term: 1.0, the teacher's predictions only)."}
    )
    distillation_tau: float = field(default=1.0, metadata={"help": "With --teacher: temperature of the soft term."})
    seeds: list[int] | None = field(
        default=None,
        metadata={"help": "Train once per seed (into OUTPUT_DIR/seed-N) and report test accuracy as mean ± std "
                  "(seeds_results.json/.md), e.g. --seeds 0 1 2.", "nargs": "+"},
    )

    def __post_init__(self):
        if self.recipe not in RECIPE_NAMES:
            raise ValueError(f"recipe={self.recipe!r} is not supported; use one of {RECIPE_NAMES}")
        if self.route not in ROUTE_NAMES:
            raise ValueError(f"route={self.route!r} is not supported; use one of {ROUTE_NAMES}")
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise ValueError(f"lr_scheduler={self.lr_scheduler!r} is not supported; use one of {LR_SCHEDULERS}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision={self.mixed_precision!r} is not supported; use one of {MIXED_PRECISION}")
        if self.report_to not in REPORT_TO:
            raise ValueError(f"report_to={self.report_to!r} is not supported; use one of {REPORT_TO}")
        if self.metric_for_best_model not in ("accuracy", "f1", "loss", "mAP", "micro_f1"):
            raise ValueError(
                f"metric_for_best_model={self.metric_for_best_model!r} is not supported; use 'accuracy', 'f1' or "
                "'loss' (multi-label data: 'mAP', 'micro_f1' or 'loss')"
            )
        if self.anneal_epochs < 0 or self.anneal_epochs > self.num_train_epochs:
            raise ValueError(f"anneal_epochs={self.anneal_epochs} must be in [0, num_train_epochs={self.num_train_epochs}]")
        if self.anneal_epochs and self.lr_scheduler != "plateau":
            raise ValueError(f"anneal_epochs={self.anneal_epochs} is a tail of the plateau schedule; with "
                             f"lr_scheduler={self.lr_scheduler!r} set it to 0")
        if not 0.0 < self.multi_label_threshold < 1.0:
            raise ValueError(f"multi_label_threshold={self.multi_label_threshold} must be in (0, 1)")
        for name in ("num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size",
                     "gradient_accumulation_steps", "save_total_limit", "logging_steps",
                     "max_consecutive_nonfinite_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing={self.label_smoothing} must be in [0, 1)")
        if self.distillation_type not in ("soft", "hard"):
            raise ValueError(f"distillation_type={self.distillation_type!r} is not supported; use 'soft' or 'hard'")
        if not 0.0 <= self.distillation_alpha <= 1.0 or self.distillation_tau <= 0:
            raise ValueError(f"distillation_alpha={self.distillation_alpha} must be in [0, 1] and distillation_tau="
                             f"{self.distillation_tau} > 0")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay={self.ema_decay} must be in [0, 1) (or unset for no EMA)")

    @property
    def greater_is_better(self) -> bool:
        return self.metric_for_best_model != "loss"
