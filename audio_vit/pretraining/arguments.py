"""Command-line / config-file arguments of `audio-vit pretrain` and `scripts/pretrain.py`.

Three dataclasses: `ModelArguments` (the features and the encoder, as `audio-vit train` takes them; the options
that choose another network or start are refused), `DataArguments` (the source, as `train` takes it; labels are not
read) and `PretrainingArguments` (here). Values come from, by increasing priority: the defaults (with `--recipe
auto`, the features, the encoder and the epochs derived from the data), a YAML/JSON `--config` file and the command
line.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

from ..argparsing import DataclassArgumentParser
from ..data.arguments import RECIPE_NAMES, DataArguments
from ..training.arguments import MIXED_PRECISION, REPORT_TO, ModelArguments
from ..training.command_line import read_config_file

# How `masking.sample_token_mask` chooses the hidden tokens (here, so that `--help` imports no torch).
MASK_PATTERNS = ("random", "span")
# Which clips pretraining leaves out, unless told otherwise: none of a plain folder; the validation and test rows
# of a split column or of --test-fold / --validation-fold (never a labelled set's test clips by default).
PRETRAINING_DATA_DEFAULTS = {"test_fraction": 0.0, "validation_fraction": 0.0}
# ModelArguments options that choose another network or start than the scratch ViT: refused when set.
REFUSED_MODEL_OPTIONS = ("model_name_or_path", "pretrained_backbone", "timm_model_name")
# Options of `audio-vit train` that mean nothing here (labels are not read; the options above are refused): accepted,
# so a shared config file parses, but left out of --help.
HIDDEN_OPTIONS = (*REFUSED_MODEL_OPTIONS, "ignore_mismatched_labels", "backbone", "timm_kwargs", "stem_reduction",
                  "pos_embed_resize", "label_column", "labels", "multi_label", "label_separator", "streaming")


@dataclass
class PretrainingArguments:
    """How to pretrain: masking, decoder, optimisation, budget, checkpoints, logging."""

    output_dir: str = field(
        default="outputs/audio_vit_pretrained",
        metadata={"help": "Where the encoder folder (config, weights, feature extractor, card) and checkpoints go."},
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Pretrain even if output_dir already holds a pretrained encoder."}
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={"help": "'latest' (newest checkpoint in output_dir/checkpoints) or a checkpoint folder."},
    )
    seed: int = field(default=42, metadata={"help": "Seed of initialisation, shuffling, crops and masks."})
    recipe: str = field(
        default="auto",
        metadata={"help": "auto: the features (rate, window), the encoder (the conv-stem ViT of `audio-vit train`) "
                  "and the epochs are derived from the clips, as `train` derives them; saved as recipe.json. "
                  "none: the plain defaults."},
    )
    num_train_epochs: int | None = field(
        default=None,
        metadata={"help": "Epochs in total (a resumed run counts those done). Unset: --recipe auto derives them from "
                  "the clips and the window (a budget of about 20 minutes on 2 CPU cores, 30-400 epochs); "
                  "--recipe none: 100."},
    )
    max_minutes: float | None = field(
        default=None,
        metadata={"help": "Time budget of this run in minutes (data preparation included), checked after every "
                  "optimizer step: when it is spent, a checkpoint and the encoder folder are saved and the run stops "
                  "(--resume-from-checkpoint latest continues it)."},
    )
    mask_ratio: float = field(default=0.75, metadata={"help": "Share of each clip's tokens hidden (0-1)."})
    mask_pattern: str = field(
        default="random",
        metadata={"help": f"Which tokens are hidden: one of {MASK_PATTERNS}. random: any tokens (MAE); span: "
                  "whole time spans of --mask-span-length steps on average (SSAST's chunks, along time)."},
    )
    mask_span_length: int = field(
        default=4, metadata={"help": "Mean span length in token time steps (conv stem: 4 frames a step) for span."}
    )
    decoder_hidden_size: int = field(default=128, metadata={"help": "Width of the reconstruction decoder."})
    decoder_layers: int = field(default=2, metadata={"help": "Transformer blocks of the reconstruction decoder."})
    decoder_heads: int = field(default=4, metadata={"help": "Attention heads of the decoder."})
    contrastive_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the SSAST-style contrastive term (InfoNCE: pick each hidden patch among the "
                  "clip's hidden patches) added to the reconstruction loss; 0: reconstruction only."},
    )
    normalize_targets: bool = field(
        default=True,
        metadata={"help": "Reconstruct each hidden patch normalised to zero mean and unit variance (MAE's "
                  "norm_pix_loss) instead of the spectrogram values."},
    )
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Clips per batch per process."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per optimizer step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate of AdamW (cosine schedule)."})
    min_learning_rate: float = field(default=1e-6, metadata={"help": "Floor of the cosine schedule."})
    warmup_epochs: float | None = field(
        default=None, metadata={"help": "Linear warmup in epochs; unset: 5%% of the epochs (at least 1)."}
    )
    weight_decay: float = field(
        default=0.05, metadata={"help": "AdamW weight decay (not on norms, biases, positions, CLS and mask tokens)."}
    )
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW beta1."})
    adam_beta2: float = field(default=0.95, metadata={"help": "AdamW beta2 (0.95, as MAE pretrains)."})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "AdamW epsilon."})
    max_grad_norm: float | None = field(default=1.0, metadata={"help": "Gradient clipping norm; 0 or unset: off."})
    max_consecutive_nonfinite_steps: int = field(
        default=10,
        metadata={"help": "A step whose loss or gradients are not finite is skipped and counted; this many in a row "
                  "stop the run with an error naming the epoch, step and clips of the batch."},
    )
    save_steps: int | None = field(
        default=None,
        metadata={"help": "Also checkpoint every N optimizer steps (besides every epoch end), for long epochs."},
    )
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints to keep (the newest K)."})
    mixed_precision: str = field(default="no", metadata={"help": f"One of {MIXED_PRECISION}; on a CPU it is a no-op."})
    cpu: bool = field(default=False, metadata={"help": "Pretrain on the CPU even if a GPU is present."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes."})
    report_to: str = field(default="none", metadata={"help": f"Experiment tracker: one of {REPORT_TO}."})
    logging_steps: int = field(default=20, metadata={"help": "Log the training loss every N optimizer steps."})
    disable_tqdm: bool = field(default=False, metadata={"help": "No progress bars."})

    def __post_init__(self):
        if self.recipe not in RECIPE_NAMES:
            raise ValueError(f"recipe={self.recipe!r} is not supported; use one of {RECIPE_NAMES}")
        if self.mask_pattern not in MASK_PATTERNS:
            raise ValueError(f"mask_pattern={self.mask_pattern!r} is not supported; use one of {MASK_PATTERNS}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio={self.mask_ratio} must be in (0, 1)")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision={self.mixed_precision!r} is not supported; use one of {MIXED_PRECISION}")
        if self.report_to not in REPORT_TO:
            raise ValueError(f"report_to={self.report_to!r} is not supported; use one of {REPORT_TO}")
        if self.max_minutes is not None and self.max_minutes < 0:
            raise ValueError(f"max_minutes={self.max_minutes} must be >= 0 (or unset for no time budget)")
        if self.contrastive_weight < 0:
            raise ValueError(f"contrastive_weight={self.contrastive_weight} must be >= 0")
        if self.decoder_hidden_size % self.decoder_heads:
            raise ValueError(f"decoder_hidden_size={self.decoder_hidden_size} is not divisible by "
                             f"decoder_heads={self.decoder_heads}")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "save_total_limit", "logging_steps",
                     "max_consecutive_nonfinite_steps", "mask_span_length", "decoder_hidden_size", "decoder_layers",
                     "decoder_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        for name in ("num_train_epochs", "save_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1 (or unset)")
        if self.warmup_epochs is not None and self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs={self.warmup_epochs} must be >= 0")


ARGUMENT_CLASSES = (ModelArguments, DataArguments, PretrainingArguments)


def build_parser(prog: str = "audio-vit pretrain") -> DataclassArgumentParser:
    # DataArguments and PretrainingArguments each have a `seed`: one --seed fills both ("resolve").
    parser = DataclassArgumentParser(ARGUMENT_CLASSES, conflict_handler="resolve", prog=prog)
    for action in parser._actions:
        if action.dest in HIDDEN_OPTIONS:
            action.help = argparse.SUPPRESS
    parser.set_defaults(**PRETRAINING_DATA_DEFAULTS)
    parser.add_argument("--config", default=None,
                        help="YAML/JSON file of options (flat, or under model:/data:/training:); command-line options "
                        "override it.")
    return parser


def parse_pretraining_args(argv: list[str] | None = None, prog: str = "audio-vit pretrain"):
    """Parse `argv` (plus `--config FILE`) into (ModelArguments, DataArguments, PretrainingArguments) and the set of
    options it sets (which `--recipe auto` leaves alone)."""
    parser = build_parser(prog)
    known, _ = parser.parse_known_args(argv)
    from_file = read_config_file(known.config, ARGUMENT_CLASSES) if known.config else {}
    parser.set_defaults(**from_file)
    namespace = parser.parse_args(argv)
    arguments = tuple(cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls) if f.init})
                      for cls in ARGUMENT_CLASSES)
    explicit = set(from_file) | parser.explicit_options(argv, ignore=("config",))
    check_pretraining_options(*arguments, explicit)
    return (*arguments, explicit)


def check_pretraining_options(model_args: ModelArguments, data_args: DataArguments, args: PretrainingArguments,
                              explicit: set[str] | None = None) -> None:
    """Refuse the options that do not apply to pretraining the scratch ViT, naming them."""
    refused = [name for name in REFUSED_MODEL_OPTIONS if getattr(model_args, name)]
    if model_args.backbone != "scratch":
        refused.append("backbone")
    if refused:
        raise ValueError(f"audio-vit pretrain pretrains the package's scratch ViT from random weights; "
                         f"{', '.join('--' + name.replace('_', '-') for name in refused)} do not apply")
    if data_args.streaming:
        raise ValueError("audio-vit pretrain reads cached spectrograms; drop --streaming")
    if data_args.labels:
        raise ValueError(f"--labels {data_args.labels!r}: pretraining reads no labels, so it cannot filter clips by "
                         "label; list the clips to use in a metadata CSV instead")


__all__ = ["MASK_PATTERNS", "PRETRAINING_DATA_DEFAULTS", "PretrainingArguments", "build_parser",
           "check_pretraining_options", "parse_pretraining_args"]
