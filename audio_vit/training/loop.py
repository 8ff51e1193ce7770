"""The training loop, accelerate-example style: `training_function` reads top to bottom.

accelerator -> data -> model -> optimizer/schedule -> `prepare` -> (resume) -> epochs of
train + validate (+ best model, plateau LR, early stopping, checkpoint) -> test of the best model -> results.
Runs unchanged in one process (`audio-vit train`) and under `accelerate launch --multi_gpu` (`scripts/train.py`).
"""
from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, set_seed
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from ..augmentation import AugmentationConfig, SpectrogramAugmenter
from ..backbones import HeadOnlyThenUnfreeze, freeze_backbone
from ..configuration_audio_vit import AudioViTConfig
from ..data import DataArguments, PreparedData, SpectrogramCollator, build_datasets, load_prepared
from ..feature_extraction_audio_vit import AudioViTFeatureExtractor
from ..modeling_audio_vit import AudioViTForAudioClassification
from .arguments import ModelArguments, TrainingArguments
from .checkpointing import (
    CHECKPOINTS_DIR,
    TRAINER_STATE_NAME,
    TrainerState,
    resolve_checkpoint,
    save_checkpoint,
    write_json_atomic,
)
from .evaluation import ClassificationMetrics, evaluate_model
from .optimization import LRSchedule, ModelEMA, build_optimizer
from .tracking import flat_hparams, log_examples

logger = logging.getLogger(__name__)

ALL_RESULTS_NAME = "all_results.json"
TEST_RESULTS_NAME = "test_results.json"
PRETRAINED_REPORT_NAME = "pretrained_backbone.json"
# Special --data-dir value: find FSDD (FSDD_DIR, AUDIO_VIT_DATA_DIR, ../shared/data/fsdd, cache) or download it.
FSDD_DATA_DIR = "fsdd"


class EpochShuffleSampler(Sampler[int]):
    """Random order that depends only on (seed, epoch): a resumed run sees the same order as a fresh one.

    Every process builds the same permutation; accelerate then hands each process its share of the batches.
    """

    def __init__(self, num_samples: int, seed: int):
        self.num_samples, self.seed, self.epoch = num_samples, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.num_samples, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_samples


def _seed_worker_augmenter(augmenter, base_seed: int, worker_id: int) -> None:
    # DataLoader workers get copies of the collator: give each its own augmentation stream.
    augmenter.generator.manual_seed(base_seed + 7919 * (worker_id + 1))


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed every random thing of `epoch` derives from (dropout, shuffling, augmentation)."""
    return seed + 1_000 * epoch


# --------------------------------------------------------------------------- data and model


def resolve_data_dir(data_args: DataArguments) -> DataArguments:
    """`--data-dir fsdd` (with no ./fsdd folder) -> the located or downloaded FSDD folder."""
    if data_args.data_dir == FSDD_DATA_DIR and not Path(FSDD_DATA_DIR).is_dir():
        from ..fsdd import ensure_fsdd

        data_args.data_dir = str(ensure_fsdd())
    return data_args


def load_data(data_args: DataArguments, training_args: TrainingArguments, feature_extractor, accelerator) -> PreparedData:
    """Build (or load prepared) splits; the main process fills the spectrogram cache first, the others reuse it."""
    if data_args.streaming:
        raise ValueError("--streaming is not supported by the trainer; prepare a cached dataset (drop --streaming)")
    with accelerator.main_process_first():
        if training_args.prepared_data_dir:
            prepared = load_prepared(training_args.prepared_data_dir)
        else:
            if not data_args.data_dir and not data_args.dataset:
                raise ValueError(
                    "no data: pass --data-dir DIR (metadata CSV or one folder per class; 'fsdd' finds FSDD), "
                    "--dataset NAME, or --prepared-data-dir DIR"
                )
            if data_args.data_dir and data_args.data_dir != FSDD_DATA_DIR and not Path(data_args.data_dir).exists():
                raise FileNotFoundError(f"--data-dir {data_args.data_dir!r} does not exist")
            prepared = build_datasets(resolve_data_dir(data_args), feature_extractor)
    check_prepared(prepared)
    return prepared


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
    present = sorted(set(int(x) for x in splits["train"]["labels"]))
    if len(present) < 2:
        raise ValueError(
            f"the training split holds a single class ({prepared.id2label[present[0]]!r}); a classifier needs at least 2"
        )


def build_feature_extractor(model_args: ModelArguments) -> AudioViTFeatureExtractor:
    if model_args.model_name_or_path:
        # Fine-tuning: the checkpoint defines the input (and its normalisation is refitted on the new data).
        return AudioViTFeatureExtractor.from_pretrained(model_args.model_name_or_path)
    return AudioViTFeatureExtractor(**model_args.feature_extractor_kwargs())


def check_model_path(model_args: ModelArguments) -> None:
    path = model_args.model_name_or_path
    if path and not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(
            f"--model-name-or-path {path!r} is not a model folder (no config.json); pass a folder written by "
            "`audio-vit train` / save_pretrained"
        )


def build_model(model_args: ModelArguments, id2label: dict[int, str]) -> AudioViTForAudioClassification:
    """A fresh AudioViT, or the checkpoint to fine-tune (its head re-initialised only when allowed)."""
    id2label = {int(k): str(v) for k, v in id2label.items()}
    label2id = {v: k for k, v in id2label.items()}
    if not model_args.model_name_or_path:
        config = AudioViTConfig(**model_args.config_kwargs(), id2label=id2label, label2id=label2id)
        return AudioViTForAudioClassification(config)
    path = model_args.model_name_or_path
    config = AudioViTConfig.from_pretrained(path)
    checkpoint_labels = [config.id2label[i] for i in sorted(config.id2label)]
    data_labels = [id2label[i] for i in sorted(id2label)]
    if checkpoint_labels == data_labels:
        return AudioViTForAudioClassification.from_pretrained(path)
    if not model_args.ignore_mismatched_labels:
        raise ValueError(
            f"the labels of {path!r} ({checkpoint_labels}) differ from the data's ({data_labels}); pass "
            "--ignore-mismatched-labels to fine-tune on the new labels with a re-initialised classification head"
        )
    logger.warning("new labels %s: the classification head of %s is re-initialised", data_labels, path)
    return AudioViTForAudioClassification.from_pretrained(
        path, num_labels=len(id2label), id2label=id2label, label2id=label2id, ignore_mismatched_sizes=True
    )


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
    from ..backbones import load_pretrained_backbone

    report = load_pretrained_backbone(
        model, model_args.pretrained_backbone, stem_reduction=model_args.stem_reduction,
        pos_embed_resize=model_args.pos_embed_resize,
    )
    logger.info("pretrained backbone %s: %s", model_args.pretrained_backbone, report)
    return report


def smooth_targets(labels: torch.Tensor, num_labels: int, smoothing: float) -> torch.Tensor:
    """Class ids (B,) or soft targets (B, L) -> (B, L) targets with label smoothing `smoothing`."""
    targets = F.one_hot(labels.long(), num_labels).float() if labels.ndim == 1 else labels.float()
    return targets * (1.0 - smoothing) + smoothing / num_labels


def check_output_dir(args: TrainingArguments) -> None:
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"--output-dir {str(output_dir)!r} exists and is not a folder")
    if (output_dir / "config.json").exists() and not args.resume_from_checkpoint and not args.overwrite_output_dir:
        raise FileExistsError(
            f"--output-dir {str(output_dir)!r} already holds a trained model; pass --overwrite-output-dir to replace "
            "it or --resume-from-checkpoint latest to continue"
        )


# --------------------------------------------------------------------------- the loop


def training_function(model_args: ModelArguments, data_args: DataArguments, aug_config: AugmentationConfig,
                      args: TrainingArguments) -> dict:
    """Train, validate every epoch, keep the best model, test it; returns the final results dict."""
    started = time.time()
    check_output_dir(args)
    check_model_path(model_args)
    mixed_precision = args.mixed_precision
    if mixed_precision != "no" and (args.cpu or not torch.cuda.is_available()):
        logger.info("mixed_precision=%s is a no-op on the CPU; training in float32", mixed_precision)
        mixed_precision = "no"
    # Several processes without CUDA (`accelerate launch --multi_gpu` on a CPU machine): accelerate only
    # sets up its gloo (MULTI_CPU) backend when told to use the CPU.
    multi_process_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    # Frozen parameters get no gradient: DDP must be told to expect that.
    partly_frozen = args.freeze_backbone or args.head_only_epochs > 0
    accelerator = Accelerator(
        cpu=args.cpu or multi_process_cpu,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)] if partly_frozen else None,
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=args.output_dir, logging_dir=str(Path(args.output_dir) / "runs")),
    )
    output_dir = Path(args.output_dir)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        if not args.resume_from_checkpoint:
            # A fresh run: results and checkpoints of an earlier run here must not mix with this one's
            # (`--resume-from-checkpoint latest` would otherwise pick up a stale epoch).
            shutil.rmtree(output_dir / CHECKPOINTS_DIR, ignore_errors=True)
            for name in (TRAINER_STATE_NAME, ALL_RESULTS_NAME, TEST_RESULTS_NAME):
                (output_dir / name).unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    set_seed(args.seed)

    # --- data: cached spectrograms, mean/std fitted on the training split into the feature extractor
    feature_extractor = build_feature_extractor(model_args)
    prepared = load_data(data_args, args, feature_extractor, accelerator)
    feature_extractor = prepared.feature_extractor
    id2label = {int(k): v for k, v in prepared.id2label.items()}
    label_names = [id2label[i] for i in sorted(id2label)]
    num_labels = len(label_names)
    splits = prepared.splits

    augmenter = SpectrogramAugmenter(aug_config, num_labels=num_labels) if aug_config.enabled else None
    train_sampler = EpochShuffleSampler(len(splits["train"]), args.seed)
    train_loader = DataLoader(
        splits["train"],
        batch_size=args.per_device_train_batch_size,
        sampler=train_sampler,
        collate_fn=SpectrogramCollator(feature_extractor, augmenter=augmenter),
        num_workers=args.dataloader_num_workers,
    )
    eval_collator = SpectrogramCollator(feature_extractor)
    eval_loader = DataLoader(splits["validation"], batch_size=args.per_device_eval_batch_size, collate_fn=eval_collator)

    # --- model, optimizer, schedule
    model = build_model(model_args, id2label)
    pretrained_report = start_from_pretrained_backbone(model, model_args)
    optimizer = build_optimizer(model, args)  # over all parameters, so unfreezing later needs no new optimizer
    steps_per_epoch = math.ceil(
        math.ceil(len(train_loader) / accelerator.num_processes) / args.gradient_accumulation_steps
    )
    schedule = LRSchedule(
        optimizer,
        kind=args.lr_scheduler,
        total_steps=steps_per_epoch * args.num_train_epochs,
        warmup_steps=round(args.warmup_epochs * steps_per_epoch),
        mode="max" if args.greater_is_better else "min",
        factor=args.plateau_factor,
        patience=args.plateau_patience,
        min_lr=args.min_learning_rate,
    )
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)
    # Freezing after `prepare`, so that DDP registers every parameter and syncs them once they are unfrozen.
    if args.freeze_backbone:
        freeze_backbone(accelerator.unwrap_model(model))
    head_only = HeadOnlyThenUnfreeze(accelerator.unwrap_model(model), args.head_only_epochs)
    if pretrained_report is not None and accelerator.is_main_process:
        write_json_atomic(output_dir / PRETRAINED_REPORT_NAME, pretrained_report.to_dict())
    ema = ModelEMA(accelerator.unwrap_model(model), args.ema_decay) if args.ema_decay else None
    # The schedule (and EMA) are not prepared (the schedule counts optimizer steps of this process itself),
    # but they travel with save_state/load_state.
    accelerator.register_for_checkpointing(schedule)
    if ema is not None:
        accelerator.register_for_checkpointing(ema)
    metrics = ClassificationMetrics(num_labels)

    # --- resume
    state = TrainerState(metric_for_best_model=args.metric_for_best_model, label_names=label_names)
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(args.resume_from_checkpoint, output_dir)
        saved = TrainerState.load(checkpoint / TRAINER_STATE_NAME)
        if saved.label_names != label_names:
            raise ValueError(
                f"cannot resume from {str(checkpoint)!r}: it was trained on labels {saved.label_names}, "
                f"the data has {label_names}"
            )
        accelerator.load_state(str(checkpoint))
        state = saved
        accelerator.print(f"resumed from {checkpoint} (epoch {state.epoch}, step {state.global_step})")

    # --- trackers
    if args.report_to != "none":
        accelerator.init_trackers("audio_vit", config=flat_hparams(model_args, data_args, aug_config, args))
        if state.epoch == 0:
            log_examples(accelerator, splits["train"], feature_extractor, id2label, args.log_examples)

    if state.epoch == 0:
        accelerator.print(prepared.report.format_table())
    num_params = sum(p.numel() for p in model.parameters())
    accelerator.print(
        f"train {len(splits['train'])} / validation {len(splits['validation'])} / test "
        f"{len(splits['test']) if 'test' in splits else 0} clips, {num_labels} labels, {num_params / 1e6:.2f}M "
        f"parameters, {steps_per_epoch} steps/epoch on {accelerator.num_processes} process(es)"
    )
    sign = 1.0 if args.greater_is_better else -1.0
    epochs_this_run = 0
    while state.epoch < args.num_train_epochs and not state.stopped_early:
        epoch = state.epoch
        if args.max_epochs_this_run is not None and epochs_this_run >= args.max_epochs_this_run:
            accelerator.print(f"stopping after {epochs_this_run} epoch(s) this run (--max-epochs-this-run)")
            break
        # Everything random in this epoch derives from (seed, epoch), so a run resumed here matches an
        # uninterrupted one: dropout/drop-path (global RNGs), shuffling (sampler) and augmentation.
        seed = epoch_seed(args.seed, epoch)
        set_seed(seed + accelerator.process_index)
        # Through the prepared loader: it passes its own epoch counter (which restarts at 0 in a resumed
        # process) to the sampler on every __iter__, so that counter must be set too.
        train_loader.set_epoch(epoch)
        if augmenter is not None:
            augmenter.generator.manual_seed(seed * 31 + accelerator.process_index)
            if args.dataloader_num_workers:
                train_loader.worker_init_fn = functools.partial(_seed_worker_augmenter, augmenter, seed)

        # --- train one epoch
        if not args.freeze_backbone and head_only.on_epoch_start(epoch):
            accelerator.print(f"epoch {epoch + 1}: training the classification head only (--head-only-epochs)")
        model.train()
        epoch_loss = torch.zeros((), device=accelerator.device)
        window_loss, window_batches, epoch_batches = 0.0, 0, 0
        progress = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{args.num_train_epochs}",
                        disable=args.disable_tqdm or not accelerator.is_local_main_process)
        for batch in train_loader:
            with accelerator.accumulate(model):
                targets = batch["labels"]
                if args.label_smoothing:
                    targets = smooth_targets(targets, num_labels, args.label_smoothing)
                loss = model(input_values=batch["input_values"], labels=targets).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            step_loss = loss.detach()
            epoch_loss += step_loss
            epoch_batches += 1
            window_loss += step_loss.item()
            window_batches += 1
            if accelerator.sync_gradients:
                schedule.step()
                if ema is not None:
                    ema.update(accelerator.unwrap_model(model))
                state.global_step += 1
                progress.update(1)
                if state.global_step % args.logging_steps == 0:
                    # Per-process means averaged over processes: the loss of the global batch.
                    mean_loss = accelerator.reduce(
                        torch.tensor(window_loss / window_batches, device=accelerator.device), "mean"
                    ).item()
                    lr = schedule.get_last_lr()[0]
                    state.step_log.append({"step": state.global_step, "loss": mean_loss, "learning_rate": lr})
                    accelerator.log({"train/loss": mean_loss, "train/learning_rate": lr}, step=state.global_step)
                    progress.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
                    window_loss, window_batches = 0.0, 0
        progress.close()
        train_loss = accelerator.reduce(epoch_loss / max(epoch_batches, 1), "mean").item()

        # --- validate (the EMA weights when kept: they are what gets saved)
        eval_model = ema.module if ema is not None else model
        val = evaluate_model(eval_model, eval_loader, accelerator, metrics, desc="validation",
                             disable_tqdm=args.disable_tqdm)
        metric = val[args.metric_for_best_model]
        improved = state.best_metric is None or sign * (metric - state.best_metric) > 0
        state.epoch = epoch + 1
        if improved:
            state.best_metric, state.best_epoch, state.epochs_without_improvement = metric, state.epoch, 0
            save_model(accelerator, eval_model, feature_extractor, output_dir)
        else:
            state.epochs_without_improvement += 1
        lr_dropped = schedule.epoch_end(metric)
        entry = {
            "epoch": state.epoch, "step": state.global_step, "train_loss": train_loss,
            "learning_rate": schedule.get_last_lr()[0],
            **{f"eval_{k}": v for k, v in val.items() if k != "num_samples"},
            "best": improved,
        }
        state.log_history.append(entry)
        accelerator.log({f"eval/{k}": v for k, v in val.items() if k != "num_samples"} | {"train/epoch_loss": train_loss},
                        step=state.global_step)
        accelerator.print(
            f"epoch {state.epoch}: train_loss {train_loss:.4f} val_loss {val['loss']:.4f} "
            f"val_accuracy {val['accuracy']:.4f} val_f1 {val['f1']:.4f} lr {entry['learning_rate']:.2e}"
            + (" *best*" if improved else "") + (" (plateau: LR lowered)" if lr_dropped else "")
        )
        if args.early_stopping_patience and state.epochs_without_improvement >= args.early_stopping_patience:
            state.stopped_early = True
            accelerator.print(f"early stopping: no validation improvement for {args.early_stopping_patience} epochs")
        save_checkpoint(accelerator, output_dir, state, args.save_total_limit)
        if accelerator.is_main_process:
            state.save(output_dir / TRAINER_STATE_NAME)
        epochs_this_run += 1

    finished = state.epoch >= args.num_train_epochs or state.stopped_early
    results = {
        "epoch": state.epoch, "global_step": state.global_step, "best_epoch": state.best_epoch,
        f"best_eval_{args.metric_for_best_model}": state.best_metric, "stopped_early": state.stopped_early,
        "train_runtime_this_run": time.time() - started, "finished": finished,
    }
    if state.log_history:
        best = next(e for e in state.log_history if e["epoch"] == state.best_epoch)
        results.update({k: v for k, v in best.items() if k.startswith("eval_")})

    # --- test the best model (as saved: the folder users will load)
    if finished and args.do_test and "test" in splits and len(splits["test"]) > 0:
        accelerator.wait_for_everyone()
        best_model = AudioViTForAudioClassification.from_pretrained(str(output_dir)).to(accelerator.device)
        test_loader = accelerator.prepare(
            DataLoader(splits["test"], batch_size=args.per_device_eval_batch_size, collate_fn=eval_collator)
        )
        test_metrics = ClassificationMetrics(num_labels, with_confusion_matrix=True)
        test = evaluate_model(best_model, test_loader, accelerator, test_metrics, desc="test", disable_tqdm=args.disable_tqdm)
        results.update({f"test_{k}": v for k, v in test.items() if k != "confusion_matrix"})
        accelerator.print(
            f"test (best model, epoch {state.best_epoch}): accuracy {test['accuracy']:.4f} f1 {test['f1']:.4f} "
            f"loss {test['loss']:.4f} on {test['num_samples']} clips"
        )
        if accelerator.is_main_process:
            write_json_atomic(output_dir / TEST_RESULTS_NAME, {
                "accuracy": test["accuracy"], "f1": test["f1"], "loss": test["loss"],
                "num_samples": test["num_samples"], "labels": label_names,
                "confusion_matrix": test["confusion_matrix"], "best_epoch": state.best_epoch,
            })
        accelerator.log({f"test/{k}": test[k] for k in ("accuracy", "f1", "loss")}, step=state.global_step)
    if accelerator.is_main_process:
        write_json_atomic(output_dir / ALL_RESULTS_NAME, results)
        write_json_atomic(output_dir / "data_report.json", prepared.report.to_dict())
        if finished:
            write_card(output_dir, model_args, data_args, aug_config, args, prepared)
    accelerator.end_training()
    return results


def save_model(accelerator, model, feature_extractor, output_dir: Path) -> None:
    """The loadable model folder: weights + config (with id2label) + feature extractor (with mean/std).

    Written into a temporary folder first and moved in file by file (`os.replace`), so a crash while saving
    never leaves a half-written `model.safetensors` in place of the previous best model.
    """
    accelerator.wait_for_everyone()
    staging = output_dir / ".tmp_best_model"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.save_pretrained(str(staging), is_main_process=accelerator.is_main_process, save_function=accelerator.save)
    if accelerator.is_main_process:
        feature_extractor.save_pretrained(str(staging))
        for path in staging.iterdir():
            os.replace(path, output_dir / path.name)
        staging.rmdir()
    accelerator.wait_for_everyone()


def write_card(output_dir: Path, model_args, data_args, aug_config, args, prepared: PreparedData) -> Path:
    """The model card `README.md` (+ confusion-matrix image) from the results just written."""
    from ..model_card import write_model_card

    source = model_args.model_name_or_path
    base_model = source if source and not Path(source).exists() else None  # a Hub id, not a local folder
    dataset = data_args.dataset or (Path(data_args.data_dir).name if data_args.data_dir else None)
    return write_model_card(
        output_dir, training_args=[model_args, aug_config, args], data_summary=prepared.report.to_dict(),
        base_model=base_model, dataset_name=dataset,
    )
