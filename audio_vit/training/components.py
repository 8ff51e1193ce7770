"""What `train` builds before the first epoch: the accelerator, the output folder, data loaders, the model,
the LR schedule. Each helper does one thing, so `trainer.train` reads top to bottom."""
from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, set_seed
from torch.utils.data import DataLoader, Sampler

from ..data.augmentation import AugmentationConfig, SpectrogramAugmenter
from ..models.audio_vit.configuration_audio_vit import AudioViTConfig
from ..data import (
    DataArguments,
    PreparedData,
    SpectrogramCollator,
    build_datasets,
    column_values,
    load_prepared,
    resolve_data_dir,
)
from ..models.audio_vit.feature_extraction_audio_vit import AudioViTFeatureExtractor
from ..model_folder import (
    ALL_RESULTS_NAME,
    CONFIG_NAME,
    RECIPE_NAME,
    TEST_RESULTS_NAME,
    ModelFolderError,
    is_encoder_folder,
    require_model_folder,
)
from ..models.audio_vit.modeling_audio_vit import AudioViTForAudioClassification
from ..models.audio_vit.modeling_layers import resize_pos_embed
from .arguments import ModelArguments, TrainingArguments
from .checkpointing import CHECKPOINTS_DIR, TRAINER_STATE_NAME, write_json_atomic
from .optimization import LRSchedule

logger = logging.getLogger(__name__)


class EpochShuffleSampler(Sampler[int]):
    """Random order that depends only on (seed, epoch): a resumed run sees the same order as a fresh one.

    Every process builds the same permutation; accelerate then hands each process its share of the batches.
    With `weights` (one per clip) an epoch instead draws `num_samples` clips with replacement, each with
    probability proportional to its weight (class-balanced sampling).
    """

    def __init__(self, num_samples: int, seed: int, weights: Optional[torch.Tensor] = None):
        self.num_samples, self.seed, self.epoch, self.weights = num_samples, seed, 0, weights

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.weights is not None:
            return iter(torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator).tolist())
        return iter(torch.randperm(self.num_samples, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_samples


def class_balanced_weights(labels) -> torch.Tensor:
    """1 / (clips of the clip's class) per clip: every class is drawn equally often."""
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    counts = torch.bincount(labels).float()
    return 1.0 / counts[labels]


def seed_worker_augmenter(augmenter, base_seed: int, worker_id: int) -> None:
    """DataLoader workers get copies of the collator: give each its own augmentation stream."""
    augmenter.generator.manual_seed(base_seed + 7919 * (worker_id + 1))


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed every random thing of `epoch` derives from (dropout, shuffling, augmentation)."""
    return seed + 1_000 * epoch


# --------------------------------------------------------------------------- accelerator and output folder


def make_accelerator(args: TrainingArguments) -> Accelerator:
    """The accelerator for `args` (`TrainingArguments`, or pretraining's arguments, which freeze nothing): mixed
    precision only on a GPU, gloo for several CPU processes, DDP told about frozen parameters."""
    mixed_precision = args.mixed_precision
    if mixed_precision != "no" and (args.cpu or not torch.cuda.is_available()):
        logger.info("mixed_precision=%s is a no-op on the CPU; training in float32", mixed_precision)
        mixed_precision = "no"
    # Several processes without CUDA (`accelerate launch --multi_gpu` on a CPU machine): accelerate only
    # sets up its gloo (MULTI_CPU) backend when told to use the CPU.
    multi_process_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    # Frozen parameters get no gradient: DDP must be told to expect that.
    partly_frozen = getattr(args, "freeze_backbone", False) or getattr(args, "head_only_epochs", 0) > 0
    return Accelerator(
        cpu=args.cpu or multi_process_cpu,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)] if partly_frozen else None,
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=args.output_dir, logging_dir=str(Path(args.output_dir) / "runs")),
    )


def end_distributed() -> None:
    """Close the process group of an `accelerate launch` run (a no-op in one process): the commands call it once
    every training of the launch is done (`train` leaves it open for a next training)."""
    from accelerate import PartialState

    PartialState().destroy_process_group()


def check_output_dir(args, holds: str = "a trained model") -> None:
    """Refuse an `--output-dir` that is a file, or that already holds a model folder (`holds` says what, in the
    error) without `--overwrite-output-dir` or `--resume-from-checkpoint`."""
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"--output-dir {str(output_dir)!r} exists and is not a folder")
    if (output_dir / CONFIG_NAME).exists() and not args.resume_from_checkpoint and not args.overwrite_output_dir:
        raise FileExistsError(
            f"--output-dir {str(output_dir)!r} already holds {holds}; pass --overwrite-output-dir to replace it or "
            "--resume-from-checkpoint latest to continue"
        )


def start_run(args, recipe: dict | None, recipe_text) -> tuple[Accelerator, Path]:
    """The accelerator and the prepared output folder of a run (`train`, `pretrain`), with the seed set; a derived
    `recipe` is printed (`recipe_text(recipe)`) and saved as `recipe.json`."""
    accelerator = make_accelerator(args)
    output_dir = prepare_output_dir(accelerator, args)
    set_seed(args.seed)
    if recipe is not None:
        accelerator.print(recipe_text(recipe))
        if accelerator.is_main_process:
            write_json_atomic(output_dir / RECIPE_NAME, recipe)
    return accelerator, output_dir


def prepare_output_dir(accelerator: Accelerator, args: TrainingArguments) -> Path:
    """Create `args.output_dir`; a fresh run removes an earlier run's checkpoints and results there
    (`--resume-from-checkpoint latest` would otherwise pick up a stale epoch)."""
    output_dir = Path(args.output_dir)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        if not args.resume_from_checkpoint:
            shutil.rmtree(output_dir / CHECKPOINTS_DIR, ignore_errors=True)
            for name in (TRAINER_STATE_NAME, ALL_RESULTS_NAME, TEST_RESULTS_NAME):
                (output_dir / name).unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    return output_dir


# --------------------------------------------------------------------------- data


def build_feature_extractor(model_args: ModelArguments) -> AudioViTFeatureExtractor:
    """The extractor of the model being trained, saved with it. It returns the attention mask by default: training
    masks the padding (SpectrogramCollator), so transformers' own pipeline and `trust_remote_code` users, who call
    the saved extractor as it is, must get the mask too (without it a short clip's padding counts as audio)."""
    if model_args.model_name_or_path:
        # Fine-tuning: the checkpoint defines the input (and its normalisation is refitted on the new data);
        # --max-length alone may change, to fine-tune on clips of another length.
        extractor = AudioViTFeatureExtractor.from_pretrained(model_args.model_name_or_path)
        if model_args.max_length:
            extractor.max_length = model_args.max_length
    else:
        extractor = AudioViTFeatureExtractor(**model_args.feature_extractor_kwargs())
    extractor.return_attention_mask = True
    return extractor


def load_data(data_args: DataArguments, training_args: TrainingArguments, feature_extractor, accelerator) -> PreparedData:
    """Build (or load prepared) splits; the main process fills the spectrogram cache first, the others reuse it.

    `PreparedData.feature_extractor` is the one to normalise with (mean/std of the training split).
    """
    if data_args.streaming:
        raise ValueError("--streaming is not supported by the trainer; prepare a cached dataset (drop --streaming)")
    with accelerator.main_process_first():
        if training_args.prepared_data_dir:
            prepared = load_prepared(training_args.prepared_data_dir)
        else:
            prepared = build_datasets(resolve_data_dir(data_args), feature_extractor)
    check_prepared(prepared)
    return prepared


def take_prepared_input(model_args: ModelArguments, feature_extractor, explicit: set[str]) -> None:
    """A prepared folder fixes the model input: copy its feature options (mel bins, window, ...) into `model_args`,
    so the config describes the spectrograms the model is trained on. An option the user set to another value is
    an error naming both values."""
    for name in ModelArguments.FEATURE_FIELDS:
        value = getattr(feature_extractor, name, None)
        if value is None:
            continue
        if name in explicit and getattr(model_args, name) not in (None, value):
            raise ValueError(f"--{name.replace('_', '-')} {getattr(model_args, name)} differs from the prepared "
                             f"folder's {value}; prepare the data again with it, or leave the option out")
        setattr(model_args, name, value)


def check_prepared(prepared: PreparedData) -> None:
    """Refuse data a classifier cannot learn from, naming what is wrong."""
    splits = prepared.splits
    if "train" not in splits or len(splits["train"]) == 0:
        raise ValueError(f"the training split is empty (splits: { {k: len(v) for k, v in splits.items()} })")
    if "validation" not in splits or len(splits["validation"]) == 0:
        raise ValueError(
            "no validation split: it drives the LR schedule, early stopping and the best-model choice; "
            "set --validation-fraction > 0 (carved from train) or provide a validation split"
        )
    if prepared.num_labels < 2:
        raise ValueError(f"a classifier needs at least 2 classes; the data has {prepared.num_labels}: {list(prepared.id2label.values())}")
    train_labels = splits["train"].with_format("numpy")["labels"][:]
    if prepared.multi_label:  # multi-hot rows: the labels with at least one positive clip
        present = np.flatnonzero(np.asarray(train_labels).sum(axis=0) > 0).tolist()
    else:
        present = sorted(set(int(x) for x in train_labels))
    if len(present) < 2:
        raise ValueError(
            f"the training split holds a single class ({prepared.id2label[present[0]]!r}); a classifier needs at least 2"
        )


def build_loaders(prepared: PreparedData, aug_config: AugmentationConfig, args: TrainingArguments):
    """(train loader, validation loader, augmenter or None); the training order comes from `EpochShuffleSampler`."""
    splits, feature_extractor = prepared.splits, prepared.feature_extractor
    augmenter = SpectrogramAugmenter(aug_config, num_labels=prepared.num_labels) if aug_config.enabled else None
    balanced_weights = None
    if args.balanced_sampling:
        labels = column_values(splits["train"], "labels")
        if labels and np.ndim(labels[0]) > 0:
            raise ValueError("--balanced-sampling needs single-label data (one class per clip)")
        balanced_weights = class_balanced_weights(labels)
    train_loader = DataLoader(
        splits["train"],
        batch_size=args.per_device_train_batch_size,
        sampler=EpochShuffleSampler(len(splits["train"]), args.seed, weights=balanced_weights),
        collate_fn=SpectrogramCollator(feature_extractor, augmenter=augmenter),
        num_workers=args.dataloader_num_workers,
    )
    eval_loader = DataLoader(splits["validation"], batch_size=args.per_device_eval_batch_size,
                             collate_fn=SpectrogramCollator(feature_extractor))
    return train_loader, eval_loader, augmenter


# --------------------------------------------------------------------------- model and schedule


def build_model(model_args: ModelArguments, id2label: dict[int, str],
                multi_label: bool = False) -> AudioViTForAudioClassification:
    """A fresh AudioViT, or the checkpoint to fine-tune (its head re-initialised only when allowed; a pretrained
    encoder folder without a head, `audio-vit pretrain`'s, always gets a new one).

    `multi_label=True` sets `config.problem_type = "multi_label_classification"`: BCE loss, sigmoid scores.
    """
    id2label = {int(k): str(v) for k, v in id2label.items()}
    label2id = {v: k for k, v in id2label.items()}
    problem_type = "multi_label_classification" if multi_label else None
    if not model_args.model_name_or_path:
        config = AudioViTConfig(**model_args.config_kwargs(), id2label=id2label, label2id=label2id,
                                problem_type=problem_type)
        return AudioViTForAudioClassification(config)
    path = str(require_model_folder(model_args.model_name_or_path, "--model-name-or-path"))
    if is_encoder_folder(path):
        return set_clip_length(encoder_with_new_head(path, id2label, problem_type), model_args.max_length)
    config = AudioViTConfig.from_pretrained(path)
    checkpoint_labels = [config.id2label[i] for i in sorted(config.id2label)]
    data_labels = [id2label[i] for i in sorted(id2label)]
    if checkpoint_labels == data_labels:
        return set_clip_length(AudioViTForAudioClassification.from_pretrained(path, problem_type=problem_type),
                               model_args.max_length)
    if not model_args.ignore_mismatched_labels:
        raise ValueError(
            f"the labels of {path!r} ({checkpoint_labels}) differ from the data's ({data_labels}); pass "
            "--ignore-mismatched-labels to fine-tune on the new labels with a re-initialised classification head"
        )
    logger.warning("new labels %s: the classification head of %s is re-initialised", data_labels, path)
    model = AudioViTForAudioClassification.from_pretrained(
        path, num_labels=len(id2label), id2label=id2label, label2id=label2id, ignore_mismatched_sizes=True,
        problem_type=problem_type,
    )
    return set_clip_length(model, model_args.max_length)


def encoder_with_new_head(path: str, id2label: dict[int, str],
                          problem_type: str | None = None) -> AudioViTForAudioClassification:
    """The classifier of a pretrained encoder folder (a bare `AudioViTModel`): every encoder tensor loaded, a new
    head for `id2label`. Raises `ModelFolderError` naming the tensors when any encoder tensor is missing, unexpected or
    of another shape (a folder that does not fit its config.json)."""
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # its load report lists the new head as missing: checked below instead
    try:
        model, info = AudioViTForAudioClassification.from_pretrained(
            path, num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()},
            problem_type=problem_type, output_loading_info=True)
    finally:
        transformers_logging.set_verbosity(verbosity)
    head = {name for name in model.state_dict() if not name.startswith(f"{model.base_model_prefix}.")}
    not_loaded = sorted(set(info["missing_keys"]) - head)
    problems = [*not_loaded, *map(str, info["mismatched_keys"]), *map(str, info["unexpected_keys"])]
    if problems:
        raise ModelFolderError(f"the pretrained encoder {path!r} does not fit its config.json: {len(problems)} encoder "
                               f"tensor(s) missing, unexpected or of another shape: {problems[:10]}")
    logger.info("pretrained encoder %s: every encoder tensor loaded, new classification head for %d labels", path,
                len(id2label))
    return model


def set_clip_length(model: AudioViTForAudioClassification, max_length: int | None) -> AudioViTForAudioClassification:
    """Lay a scratch ViT's learned position embeddings out for `max_length` frames (bilinear along time, the
    prefix tokens' kept) and record it in the config, so the fine-tuned checkpoint describes its own input.
    `None` or the checkpoint's own length leaves the model as it is."""
    config = model.config
    if not max_length or max_length == config.max_length:
        return model
    if config.backbone != "scratch":
        raise ValueError(
            f"--max-length {max_length} differs from the checkpoint's {config.max_length} frames; changing the clip "
            f"length of a fine-tuned checkpoint is supported for the scratch ViT, not backbone={config.backbone!r}"
        )
    embeddings = model.audio_vit.embeddings
    old_grid = tuple(config.patch_grid)
    config.max_length = max_length
    config.check_geometry()  # e.g. a patch wider than the new clip
    new_grid = tuple(config.patch_grid)
    prefix = embeddings.num_prefix_tokens
    with torch.no_grad():
        positions = resize_pos_embed(embeddings.position_embeddings, old_grid, new_grid, num_prefix_tokens=prefix)
        embeddings.position_embeddings = torch.nn.Parameter(positions)
    embeddings.grid = new_grid
    logger.info("position embeddings re-laid from a %s to a %s patch grid for %d frames", old_grid, new_grid, max_length)
    return model


def start_from_pretrained_backbone(model: AudioViTForAudioClassification, model_args: ModelArguments):
    """`--pretrained-backbone`: load explicit (e.g. ImageNet) weights into a fresh timm backbone, adapted to
    1-channel mel input; returns the load report (what was loaded, adapted, skipped), or None."""
    if not model_args.pretrained_backbone:
        return None
    if model_args.model_name_or_path:
        raise ValueError(
            "--pretrained-backbone initialises a fresh model; it cannot be combined with --model-name-or-path "
            "(that checkpoint already holds its backbone weights)"
        )
    from ..pretrained.weights import load_pretrained_backbone

    report = load_pretrained_backbone(
        model, model_args.pretrained_backbone, stem_reduction=model_args.stem_reduction,
        pos_embed_resize=model_args.pos_embed_resize,
    )
    logger.info("pretrained backbone %s: %s", model_args.pretrained_backbone, report)
    return report


def steps_per_epoch(train_loader: DataLoader, accelerator: Accelerator, args: TrainingArguments) -> int:
    """Optimizer steps per epoch in each process (before `prepare` shards the loader)."""
    return math.ceil(math.ceil(len(train_loader) / accelerator.num_processes) / args.gradient_accumulation_steps)


def build_schedule(optimizer, args: TrainingArguments, epoch_steps: int) -> LRSchedule:
    return LRSchedule(
        optimizer,
        kind=args.lr_scheduler,
        total_steps=epoch_steps * args.num_train_epochs,
        warmup_steps=round(args.warmup_epochs * epoch_steps),
        mode="max" if args.greater_is_better else "min",
        factor=args.plateau_factor,
        patience=args.plateau_patience,
        min_lr=args.min_learning_rate,
        anneal_steps=round(args.anneal_epochs * epoch_steps),
    )
