"""The training loop, accelerate-example style: `train` reads top to bottom.

accelerator -> data -> model/optimizer/schedule -> `prepare` -> (resume) -> epochs of `train_epoch` +
`validate` + `end_epoch` (best model, plateau LR, early stopping, checkpoint) -> `evaluate_test_split` (the best model) ->
results. Runs unchanged in one process (`audio-vit train`) and under `accelerate launch --multi_gpu`
(`scripts/train.py`). The helpers that build things live in `components.py`; this file holds the loop.
"""
from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data.augmentation import AugmentationConfig
from ..data import DataArguments, PreparedData, SpectrogramCollator
from ..model_folder import (
    ALL_RESULTS_NAME,
    DATA_REPORT_NAME,
    PRETRAINED_REPORT_NAME,
    TEST_RESULTS_NAME,
    load_model,
    require_model_folder,
)
from .arguments import ModelArguments, TrainingArguments
from .command_line import non_default_options
from .auto_recipe import RECIPE_RECORD_KEYS, format_recipe, resolve_recipe
from .checkpointing import TRAINER_STATE_NAME, TrainerState, resolve_checkpoint, save_checkpoint, save_model, write_json_atomic
from .distillation import (DISTILLATION_REPORT_NAME, build_distillation, distillation_record, teacher_validation,
                           training_loss)
from .task_metrics import EvaluationTask, multi_hot_labels
from .nonfinite import NonFiniteGuard, RunningStatistics, gradient_norm, no_finite_validation_error
from .optimization import LRSchedule, ModelEMA, build_optimizer
from .param_groups import HeadOnlyThenUnfreeze, freeze_backbone
from .components import (
    build_feature_extractor,
    build_loaders,
    build_model,
    build_schedule,
    check_output_dir,
    epoch_seed,
    load_data,
    seed_worker_augmenter,
    start_from_pretrained_backbone,
    start_run,
    steps_per_epoch,
    take_prepared_input,
)
from .tracking import flat_hparams, log_examples

logger = logging.getLogger(__name__)


@dataclass
class Run:
    """What the steps of one training run share."""

    args: TrainingArguments
    accelerator: Accelerator
    prepared: PreparedData
    output_dir: Path
    model: Any
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    train_loader: DataLoader
    eval_loader: DataLoader
    augmenter: Any
    ema: Optional[ModelEMA]
    head_only: HeadOnlyThenUnfreeze
    state: TrainerState
    steps_per_epoch: int
    task: EvaluationTask  # single- or multi-label: metrics, evaluation, log line, test record
    guard: NonFiniteGuard  # skips and counts non-finite steps; stops a run that keeps producing them
    distillation: Optional[Any] = None  # `--teacher`: the DistillationLoss wrapping the teacher
    running_stats: Optional[RunningStatistics] = None  # batch norm statistics, put back when a step is skipped

    @property
    def eval_model(self):
        """The model validation, best-model saving and the test see: the EMA weights when kept."""
        return self.ema.module if self.ema is not None else self.model


def train(model_args: ModelArguments, data_args: DataArguments, aug_config: AugmentationConfig,
          args: TrainingArguments, explicit: Optional[set[str]] = None) -> dict:
    """Train, validate every epoch, keep the best model, test it; returns the final results dict.

    The public entry point of training: `audio-vit train`, `audio-vit demo` and `scripts/train.py` call it
    with the four dataclasses of `parse_training_args`. With `args.recipe == "auto"` every option not in
    `explicit` (the options the user set; default: those that differ from the dataclass defaults) is first
    derived from the data (`audio_vit.training.auto_recipe`); the arguments are updated in place.
    """
    started = time.time()
    check_output_dir(args)
    if model_args.model_name_or_path:
        require_model_folder(model_args.model_name_or_path, "--model-name-or-path")
    if explicit is None:
        explicit = non_default_options(model_args, data_args, aug_config, args)
    recipe = resolve_recipe(model_args, data_args, aug_config, args, explicit)
    accelerator, output_dir = start_run(args, recipe, format_recipe)

    # --- data: cached spectrograms; the feature extractor to normalise with carries the training split's mean/std
    prepared = load_data(data_args, args, build_feature_extractor(model_args), accelerator)
    if args.prepared_data_dir:
        take_prepared_input(model_args, prepared.feature_extractor, explicit)
    train_loader, eval_loader, augmenter = build_loaders(prepared, aug_config, args)
    # single- or multi-label: the metrics, the evaluation function and the best-model metric
    task = EvaluationTask(prepared.multi_label, [prepared.id2label[i] for i in sorted(prepared.id2label)],
                          args.multi_label_threshold)
    args.metric_for_best_model = task.metric_for_best_model(args.metric_for_best_model)

    # --- model, optimizer (over all parameters, so unfreezing later needs no new one), schedule
    model = build_model(model_args, prepared.id2label, multi_label=prepared.multi_label)
    if recipe is not None:  # saved with the model: which options came from the data, and what the data was
        model.config.training_recipe = {key: recipe[key] for key in RECIPE_RECORD_KEYS if key in recipe}
    pretrained_report = start_from_pretrained_backbone(model, model_args)
    distillation = build_distillation(args, prepared, accelerator.device)  # None without --teacher
    optimizer = build_optimizer(model, args)
    epoch_steps = steps_per_epoch(train_loader, accelerator, args)
    schedule = build_schedule(optimizer, args, epoch_steps)
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)
    # Freezing after `prepare`, so that DDP registers every parameter and syncs them once they are unfrozen.
    if args.freeze_backbone:
        freeze_backbone(accelerator.unwrap_model(model))
    head_only = HeadOnlyThenUnfreeze(accelerator.unwrap_model(model), args.head_only_epochs)
    if pretrained_report is not None and accelerator.is_main_process:
        write_json_atomic(output_dir / PRETRAINED_REPORT_NAME, pretrained_report.to_dict())
    if distillation is not None and accelerator.is_main_process:
        write_json_atomic(output_dir / DISTILLATION_REPORT_NAME, distillation_record(args))
    ema = ModelEMA(accelerator.unwrap_model(model), args.ema_decay) if args.ema_decay else None
    # The schedule (and EMA) are not prepared (the schedule counts optimizer steps of this process itself),
    # but they travel with save_state/load_state.
    accelerator.register_for_checkpointing(schedule)
    if ema is not None:
        accelerator.register_for_checkpointing(ema)

    run = Run(args, accelerator, prepared, output_dir, model, optimizer, schedule, train_loader, eval_loader,
              augmenter, ema, head_only, resume_state(accelerator, args, prepared, output_dir), epoch_steps, task,
              NonFiniteGuard(args.max_consecutive_nonfinite_steps), distillation,
              RunningStatistics(accelerator.unwrap_model(model)))
    start_logging(run, model_args, data_args, aug_config)
    metrics = task.metrics()
    epochs_this_run = 0
    while run.state.epoch < args.num_train_epochs and not run.state.stopped_early:
        if args.max_epochs_this_run is not None and epochs_this_run >= args.max_epochs_this_run:
            accelerator.print(f"stopping after {epochs_this_run} epoch(s) this run (--max-epochs-this-run)")
            break
        train_loss = train_epoch(run)
        end_epoch(run, train_loss, validate(run, metrics))
        epochs_this_run += 1

    finished = run.state.epoch >= args.num_train_epochs or run.state.stopped_early
    if finished and run.state.best_epoch is None:  # no finite validation epoch: no model was saved
        raise no_finite_validation_error(run.state.log_history, args.metric_for_best_model)
    results = run_results(run, time.time() - started, finished)
    if finished and args.do_test and len(prepared.splits.get("test", [])) > 0:
        results.update(evaluate_test_split(run))
    if finished and distillation is not None:  # the teacher on the same validation split (warns if it was weaker)
        validation = teacher_validation(distillation, lambda teacher: validate(run, metrics, teacher, desc="teacher"),
                                        results.get("eval_accuracy"))
        results.update(validation)
        if accelerator.is_main_process:
            write_json_atomic(output_dir / DISTILLATION_REPORT_NAME, distillation_record(args, validation))
    if accelerator.is_main_process:
        write_json_atomic(output_dir / ALL_RESULTS_NAME, results)
        write_json_atomic(output_dir / DATA_REPORT_NAME, prepared.report.to_dict())
        if finished:
            write_card(output_dir, model_args, data_args, aug_config, args, prepared.report.to_dict())
    # Every process returns once the folder is complete: the route selection reads the chosen candidate's results
    # next (another process could otherwise read them before the main process has written them).
    accelerator.wait_for_everyone()
    # Trackers end with the run; the process group stays for the next training of this launch (route candidates,
    # seeds): the command closes it (`end_distributed`).
    for tracker in accelerator.trackers:
        tracker.finish()
    return results


def run_results(run: Run, seconds: float, finished: bool) -> dict:
    """Progress of the run and the validation scores of its best epoch."""
    state, metric = run.state, run.args.metric_for_best_model
    results = {
        "epoch": state.epoch, "global_step": state.global_step, "best_epoch": state.best_epoch,
        f"best_eval_{metric}": state.best_metric, "stopped_early": state.stopped_early,
        "train_runtime_this_run": seconds, "finished": finished,
        "nonfinite_steps_skipped": state.skipped_nonfinite_steps,
    }
    if state.best_epoch is not None:  # None while no validation epoch was finite
        best = next(e for e in state.log_history if e["epoch"] == state.best_epoch)
        results.update({k: v for k, v in best.items() if k.startswith("eval_")})
    return results


def resume_state(accelerator: Accelerator, args: TrainingArguments, prepared: PreparedData, output_dir: Path) -> TrainerState:
    """A fresh `TrainerState`, or the one of `--resume-from-checkpoint` (whose accelerator state is loaded too)."""
    label_names = [prepared.id2label[i] for i in sorted(prepared.id2label)]
    state = TrainerState(metric_for_best_model=args.metric_for_best_model, label_names=label_names)
    if not args.resume_from_checkpoint:
        return state
    checkpoint = resolve_checkpoint(args.resume_from_checkpoint, output_dir)
    saved = TrainerState.load(checkpoint / TRAINER_STATE_NAME)
    if saved.label_names != label_names:
        raise ValueError(
            f"cannot resume from {str(checkpoint)!r}: it was trained on labels {saved.label_names}, "
            f"the data has {label_names}"
        )
    accelerator.load_state(str(checkpoint))
    accelerator.print(f"resumed from {checkpoint} (epoch {saved.epoch}, step {saved.global_step})")
    return saved


def start_logging(run: Run, model_args, data_args, aug_config) -> None:
    """Trackers (+ example spectrograms on a fresh run) and the data/model summary lines."""
    accelerator, prepared, splits = run.accelerator, run.prepared, run.prepared.splits
    if run.args.report_to != "none":
        accelerator.init_trackers("audio_vit", config=flat_hparams(model_args, data_args, aug_config, run.args))
        if run.state.epoch == 0:
            log_examples(accelerator, splits["train"], prepared.feature_extractor, prepared.id2label, run.args.log_examples)
    if run.state.epoch == 0:
        accelerator.print(prepared.report.format_table())
    num_params = sum(p.numel() for p in run.model.parameters())
    accelerator.print(
        f"train {len(splits['train'])} / validation {len(splits['validation'])} / test "
        f"{len(splits['test']) if 'test' in splits else 0} clips, {prepared.num_labels} labels, {num_params / 1e6:.2f}M "
        f"parameters, {run.steps_per_epoch} steps/epoch on {accelerator.num_processes} process(es)"
    )


def smooth_targets(labels: torch.Tensor, num_labels: int, smoothing: float) -> torch.Tensor:
    """Class ids (B,) or soft targets (B, L) -> (B, L) targets with label smoothing `smoothing`."""
    targets = F.one_hot(labels.long(), num_labels).float() if labels.ndim == 1 else labels.float()
    return targets * (1.0 - smoothing) + smoothing / num_labels


def seed_epoch(run: Run) -> None:
    """Everything random in this epoch derives from (seed, epoch), so a run resumed here matches an
    uninterrupted one: dropout/drop-path (global RNGs), shuffling (sampler) and augmentation."""
    epoch, accelerator = run.state.epoch, run.accelerator
    seed = epoch_seed(run.args.seed, epoch)
    set_seed(seed + accelerator.process_index)
    # Through the prepared loader: it passes its own epoch counter (which restarts at 0 in a resumed
    # process) to the sampler on every __iter__, so that counter must be set too.
    run.train_loader.set_epoch(epoch)
    if run.augmenter is not None:
        run.augmenter.generator.manual_seed(seed * 31 + accelerator.process_index)
        if run.args.dataloader_num_workers:
            run.train_loader.worker_init_fn = functools.partial(seed_worker_augmenter, run.augmenter, seed)


def train_epoch(run: Run) -> float:
    """One pass over the training data; returns the mean training loss over all processes (of the steps taken:
    a step whose loss or gradients are not finite is skipped and counted by `run.guard`).

    The losses are summed on the device and read at logging steps and at the end; the guard reads its flags once
    per optimizer step. A GPU is not made to wait for the host on every batch.
    """
    args, accelerator, model, state = run.args, run.accelerator, run.model, run.state
    seed_epoch(run)
    if not args.freeze_backbone and run.head_only.on_epoch_start(state.epoch):
        accelerator.print(f"epoch {state.epoch + 1}: training the classification head only (--head-only-epochs)")
    model.train()
    if run.running_stats is not None:
        run.running_stats.save()
    # sums of the finite (micro-)batch losses and their counts: the epoch's and the logging window's
    epoch_loss, epoch_batches, window_loss, window_batches = (
        torch.zeros((), device=accelerator.device) for _ in range(4))
    progress = tqdm(total=run.steps_per_epoch, desc=f"epoch {state.epoch + 1}/{args.num_train_epochs}",
                    disable=args.disable_tqdm or not accelerator.is_local_main_process)
    for batch in run.train_loader:
        with accelerator.accumulate(model):
            targets = batch["labels"]
            if args.label_smoothing:
                targets = smooth_targets(targets, run.prepared.num_labels, args.label_smoothing)
            loss = training_loss(model, batch, targets, run.distillation)  # + the teacher term with --teacher
            run.guard.observe_loss(loss)
            accelerator.backward(loss)
            step_taken = accelerator.sync_gradients and optimizer_step(run)
        if accelerator.sync_gradients:
            run.schedule.step()
            if step_taken and run.ema is not None:
                run.ema.update(accelerator.unwrap_model(model))
            state.global_step += 1
            progress.update(1)
            run.guard.check(state.epoch + 1, state.global_step, batch.get("file"), accelerator.unwrap_model(model))
        # a non-finite loss is counted by the guard, not averaged into the loss
        step_loss = loss.detach().float()
        finite = torch.isfinite(step_loss)
        step_loss = torch.where(finite, step_loss, torch.zeros_like(step_loss))
        epoch_loss += step_loss
        epoch_batches += finite
        window_loss += step_loss
        window_batches += finite
        if accelerator.sync_gradients and state.global_step % args.logging_steps == 0:
            log_training_loss(run, window_loss / window_batches.clamp_min(1), progress)
            window_loss, window_batches = torch.zeros_like(window_loss), torch.zeros_like(window_batches)
    progress.close()
    run.guard.settle()  # the weights the epoch's last step left, before they are validated
    return accelerator.reduce(epoch_loss / epoch_batches.clamp_min(1), "mean").item()


def optimizer_step(run: Run) -> bool:
    """Clip, check and take (or skip) the optimizer step of the gradients accumulated so far; True if taken.

    With fp16's GradScaler the scaler itself skips steps whose gradients overflow (and lowers its scale), so only a
    non-finite loss counts as a skipped step there; either way a step not taken leaves the weights, the EMA and the
    running statistics of batch norm as they were."""
    accelerator, args = run.accelerator, run.args
    parameters = [p for p in run.model.parameters() if p.requires_grad]
    scaler = getattr(accelerator, "scaler", None)
    if args.max_grad_norm:
        grad_norm = accelerator.clip_grad_norm_(parameters, args.max_grad_norm)  # unscales fp16 gradients first
    else:
        if scaler is not None:
            accelerator.unscale_gradients()  # so that the scaler's update below has this step's overflow check
        grad_norm = gradient_norm(parameters)
    taken = run.guard.take_step(accelerator, None if scaler is not None else grad_norm)
    if taken:
        run.optimizer.step()  # with fp16: the scaler's step, which skips overflowing gradients, and its update
        taken = not getattr(run.optimizer, "step_was_skipped", False)
    elif scaler is not None:
        # The gradients were unscaled for this step: without the update that closes it, the next unscale raises
        # "unscale_() has already been called on this optimizer since the last update()". The update lowers the
        # scale, as for an overflow, when the gradients hold inf/NaN.
        scaler.update()
    if not taken and run.running_stats is not None:
        run.running_stats.restore()  # the forward passes of a step not taken must not leave NaN statistics behind
    run.optimizer.zero_grad()
    if run.running_stats is not None:
        run.running_stats.save()
    return taken


def log_training_loss(run: Run, process_mean_loss: torch.Tensor, progress) -> None:
    """Per-process means averaged over processes: the loss of the global batch."""
    accelerator, state = run.accelerator, run.state
    mean_loss = accelerator.reduce(process_mean_loss.reshape(()), "mean").item()
    lr = run.schedule.get_last_lr()[0]
    state.step_log.append({"step": state.global_step, "loss": mean_loss, "learning_rate": lr})
    accelerator.log({"train/loss": mean_loss, "train/learning_rate": lr}, step=state.global_step)
    progress.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")


def validate(run: Run, metrics, model=None, desc: str = "validation") -> dict:
    """Loss and metrics (accuracy, macro-F1; multi-label: mAP, F1 at the threshold) of the evaluated model (EMA
    weights when kept), or of `model`, on the validation split."""
    return run.task.evaluate(run.eval_model if model is None else model, run.eval_loader, run.accelerator, metrics,
                             desc=desc, disable_tqdm=run.args.disable_tqdm)


def end_epoch(run: Run, train_loss: float, val: dict) -> None:
    """Book-keeping after validation: best model, plateau LR, history, early stopping, checkpoint."""
    args, accelerator, state = run.args, run.accelerator, run.state
    metric = val[args.metric_for_best_model]
    sign = 1.0 if args.greater_is_better else -1.0
    # An epoch whose validation loss (or metric) is not finite comes from a broken model: never the best one.
    finite = math.isfinite(val["loss"]) and math.isfinite(metric)
    improved = finite and (state.best_metric is None or sign * (metric - state.best_metric) > 0)
    skipped = run.guard.end_epoch()
    state.skipped_nonfinite_steps += skipped
    state.epoch += 1
    if improved:
        state.best_metric, state.best_epoch, state.epochs_without_improvement = metric, state.epoch, 0
        save_model(accelerator, run.eval_model, run.prepared.feature_extractor, run.output_dir)
    else:
        state.epochs_without_improvement += 1
    lr_dropped = run.schedule.epoch_end(metric) if finite else False
    scores = {k: v for k, v in val.items() if k != "num_samples"}
    entry = {"epoch": state.epoch, "step": state.global_step, "train_loss": train_loss,
             "learning_rate": run.schedule.get_last_lr()[0], **{f"eval_{k}": v for k, v in scores.items()},
             "nonfinite_steps_skipped": skipped, "best": improved}
    state.log_history.append(entry)
    accelerator.log({f"eval/{k}": v for k, v in scores.items()} | {"train/epoch_loss": train_loss},
                    step=state.global_step)
    accelerator.print(
        f"epoch {state.epoch}: train_loss {train_loss:.4f} {run.task.summary(val, prefix='val_')} "
        f"lr {entry['learning_rate']:.2e} skipped non-finite steps {skipped}"
        + (" *best*" if improved else "") + (" (plateau: LR lowered)" if lr_dropped else "")
        + ("" if finite else " (validation not finite: not a candidate for the best model)")
    )
    if args.early_stopping_patience and state.epochs_without_improvement >= args.early_stopping_patience:
        state.stopped_early = True
        accelerator.print(f"early stopping: no validation improvement for {args.early_stopping_patience} epochs")
    save_checkpoint(accelerator, run.output_dir, state, args.save_total_limit)
    if accelerator.is_main_process:
        state.save(run.output_dir / TRAINER_STATE_NAME)


def evaluate_test_split(run: Run) -> dict:
    """The best model, as saved (the folder users will load), on the test split; writes `test_results.json`
    and returns `test_*` results."""
    args, accelerator, state, prepared = run.args, run.accelerator, run.state, run.prepared
    accelerator.wait_for_everyone()
    best_model = load_model(run.output_dir).to(accelerator.device)
    test_loader = accelerator.prepare(DataLoader(prepared.splits["test"], batch_size=args.per_device_eval_batch_size,
                                                 collate_fn=SpectrogramCollator(prepared.feature_extractor)))
    task = run.task
    result = task.evaluate(best_model, test_loader, accelerator, task.metrics(for_report=True), desc="test",
                           disable_tqdm=args.disable_tqdm)
    accelerator.print(f"test (best model, epoch {state.best_epoch}): {task.summary(result)} on {result['num_samples']} clips")
    if accelerator.is_main_process:
        references = ((multi_hot_labels(prepared.splits["train"]), multi_hot_labels(prepared.splits["test"]))
                      if prepared.multi_label else (None, None))
        write_json_atomic(run.output_dir / TEST_RESULTS_NAME, task.test_record(result, state.best_epoch, *references))
    accelerator.log({f"test/{k}": result[k] for k in task.headline_metrics}, step=state.global_step)
    return {f"test_{k}": v for k, v in result.items() if k not in ("confusion_matrix", "per_class")}


def write_card(output_dir: Path, model_args, data_args, aug_config, args, data_summary: dict | None = None) -> Path:
    """The model card `README.md` (+ confusion-matrix image) from the results just written (`data_summary`: the data
    report; default the folder's `data_report.json`)."""
    from ..hub.model_card import write_model_card

    source = model_args.model_name_or_path
    base_model = source if source and not Path(source).exists() else None  # a Hub id, not a local folder
    dataset = data_args.dataset or (Path(data_args.data_dir).name if data_args.data_dir else None)
    return write_model_card(
        output_dir, training_args=[model_args, aug_config, args], data_summary=data_summary,
        base_model=base_model, dataset_name=dataset,
    )
