"""The pretraining loop, accelerate-example style: `pretrain` reads top to bottom.

recipe -> accelerator -> data (the clips without labels) -> encoder + decoder, optimizer, cosine schedule ->
`prepare` -> (resume) -> epochs of `pretrain_epoch` (checkpoints at epoch ends, every `--save-steps` and when
`--max-minutes` is spent) -> the encoder folder. Runs unchanged in one process (`audio-vit pretrain`) and under
`accelerate launch` (`scripts/pretrain.py`).

Every random choice of a step (the window of each clip, the hidden tokens, dropout and stochastic depth) comes from a
seed derived from (seed, epoch, batch, process), so a run resumed from any checkpoint, within an epoch too, takes the
same steps as an uninterrupted one.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..models.audio_vit.configuration_audio_vit import AudioViTConfig
from ..data import SpectrogramCollator
from ..models.audio_vit.feature_extraction_audio_vit import AudioViTFeatureExtractor
from ..model_folder import ALL_RESULTS_NAME, DATA_REPORT_NAME
from ..models.audio_vit.modeling_audio_vit import AudioViTModel
from ..training.command_line import non_default_options
from ..training.checkpointing import (TRAINER_STATE_NAME, resolve_checkpoint, save_checkpoint, save_model,
                                     write_json_atomic)
from ..training.nonfinite import NonFiniteGuard, RunningStatistics, gradient_norm
from ..training.optimization import LRSchedule
from ..training.param_groups import parameter_groups
from ..training.components import EpochShuffleSampler, check_output_dir, start_run
from .card import write_pretraining_card
from .data import (count_hours, crop_windows, format_pretraining_recipe, load_pretraining_data,
                   resolve_pretraining_recipe, steps_per_epoch, warmup_steps)
from .masking import sample_token_mask
from .modeling_masked_spectrogram import MaskedSpectrogramModel, token_grid, token_validity

logger = logging.getLogger(__name__)

EPOCH_SUMS = ("loss", "reconstruction_loss", "contrastive_loss", "contrastive_accuracy", "batches")
METHOD = ("masked spectrogram modeling: the encoder sees the visible tokens only (MAE), a light transformer decoder "
          "reconstructs the hidden patches")
SPARSE_STEM = "; the conv stem runs sparsely, hidden regions zeroed after every layer (SparK)"


@dataclass
class PretrainingState:
    """Progress of a pretraining run: what `trainer_state.json` holds, in the output folder and every checkpoint."""

    epoch: int = 0  # epochs completed
    batches_in_epoch: int = 0  # batches of the current epoch already trained (a checkpoint within an epoch)
    global_step: int = 0  # optimizer steps completed
    num_clips: int = 0  # pretraining clips: a resumed run must see the same ones
    train_seconds: float = 0.0  # spent in the loop, over every run
    epoch_sums: dict = field(default_factory=dict)  # the current epoch's loss sums (all processes) before a checkpoint
    log_history: list[dict] = field(default_factory=list)  # one entry per epoch
    step_log: list[dict] = field(default_factory=list)  # loss / LR every `logging_steps` steps
    skipped_nonfinite_steps: int = 0

    def save(self, path) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def load(cls, path) -> "PretrainingState":
        import json

        with open(path, encoding="utf-8") as handle:
            return cls(**json.load(handle))


@dataclass
class PretrainingRun:
    """What the steps of one pretraining run share."""

    args: Any
    accelerator: Accelerator
    model: Any
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    loader: DataLoader
    state: PretrainingState
    guard: NonFiniteGuard
    running_stats: RunningStatistics
    steps_per_epoch: int
    window: int
    started: float  # time.time() when this process began the run (the --max-minutes clock)
    clock: float = 0.0  # time.time() up to which the loop's time is counted in `state.train_seconds`
    out_of_time: bool = False


def pretrain(model_args, data_args, args, explicit: Optional[set[str]] = None) -> dict:
    """Pretrain the scratch ViT by masked spectrogram modeling on the clips of `data_args` (labels are not read) and
    write the encoder folder to `args.output_dir`; returns the results (epochs, steps, final loss, time, finished).

    The public entry point of `audio-vit pretrain` and `scripts/pretrain.py`, called with the dataclasses of
    `parse_pretraining_args` (whose `DataArguments` hold nothing out of a plain folder: `PRETRAINING_DATA_DEFAULTS`).
    With `args.recipe == "auto"`, every option not in `explicit` (default: those that differ from the dataclass
    defaults) that `audio-vit train` derives from the data (features, the conv-stem ViT) and the epochs are derived
    from the pretraining clips first; the arguments are updated in place.
    """
    started = time.time()
    check_output_dir(args, holds="a pretrained encoder")
    if explicit is None:
        explicit = non_default_options(model_args, data_args, args)
    recipe = resolve_pretraining_recipe(model_args, data_args, args, explicit)
    accelerator, output_dir = start_run(args, recipe, format_pretraining_recipe)

    # --- data: the clips' cached spectrograms, normalised with their own mean/std
    prepared = load_pretraining_data(data_args, AudioViTFeatureExtractor(**model_args.feature_extractor_kwargs()),
                                     accelerator)
    clips = prepared.splits["train"]
    loader = DataLoader(clips, batch_size=args.per_device_train_batch_size,
                        sampler=EpochShuffleSampler(len(clips), args.seed),
                        collate_fn=SpectrogramCollator(prepared.feature_extractor),  # whole clips; windows per step
                        num_workers=args.dataloader_num_workers)

    # --- the encoder to pretrain, its decoder, the optimizer and a cosine schedule
    encoder = AudioViTModel(AudioViTConfig(**model_args.config_kwargs()))
    model = MaskedSpectrogramModel(encoder, decoder_hidden_size=args.decoder_hidden_size,
                                   decoder_layers=args.decoder_layers, decoder_heads=args.decoder_heads,
                                   contrastive_weight=args.contrastive_weight,
                                   normalize_targets=args.normalize_targets)
    optimizer = torch.optim.AdamW(parameter_groups(model, args.weight_decay), lr=args.learning_rate,
                                  betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)
    epoch_steps = steps_per_epoch(len(loader), accelerator.num_processes, args.gradient_accumulation_steps)
    schedule = LRSchedule(optimizer, kind="cosine", total_steps=epoch_steps * args.num_train_epochs,
                          warmup_steps=warmup_steps(args, epoch_steps), min_lr=args.min_learning_rate)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    accelerator.register_for_checkpointing(schedule)

    state = resume_state(accelerator, args, output_dir, len(clips))
    run = PretrainingRun(args, accelerator, model, optimizer, schedule, loader, state,
                         NonFiniteGuard(args.max_consecutive_nonfinite_steps),
                         RunningStatistics(accelerator.unwrap_model(model)), epoch_steps, encoder.config.max_length,
                         started)
    hours = count_hours(prepared)
    if args.report_to != "none":
        accelerator.init_trackers("audio_vit_pretrain", config=tracker_config(model_args, args))
    accelerator.print(
        f"pretraining on {len(clips)} clips ({hours:.2f} h) of {prepared.report.source}: "
        f"{sum(p.numel() for p in encoder.parameters()) / 1e6:.2f}M encoder parameters, {run.window}-frame windows, "
        f"mask ratio {args.mask_ratio} ({args.mask_pattern}), {epoch_steps} steps/epoch on "
        f"{accelerator.num_processes} process(es)")

    run.clock = time.time()
    while state.epoch < args.num_train_epochs and not run.out_of_time:
        pretrain_epoch(run)

    finished = state.epoch >= args.num_train_epochs
    results = {"epoch": state.epoch, "global_step": state.global_step, "finished": finished,
               "stopped_by_time_budget": run.out_of_time, "train_seconds": state.train_seconds,
               "runtime_this_run": time.time() - started, "nonfinite_steps_skipped": state.skipped_nonfinite_steps,
               "num_clips": len(clips), "hours": hours,
               **{key: value for key, value in (state.log_history[-1] if state.log_history else {}).items()
                  if key.endswith("loss") or key.endswith("accuracy")}}
    record = pretraining_record(prepared, data_args, model_args, args, results, run.window)
    save_encoder(accelerator, accelerator.unwrap_model(model).encoder, prepared.feature_extractor, output_dir, record)
    if accelerator.is_main_process:
        write_json_atomic(output_dir / ALL_RESULTS_NAME, results)
        write_json_atomic(output_dir / DATA_REPORT_NAME, prepared.report.to_dict())
        write_pretraining_card(output_dir, record)
    for tracker in accelerator.trackers:
        tracker.finish()
    return results


def resume_state(accelerator: Accelerator, args, output_dir: Path, num_clips: int) -> PretrainingState:
    """A fresh state, or that of `--resume-from-checkpoint` (whose accelerator state is loaded too)."""
    if not args.resume_from_checkpoint:
        return PretrainingState(num_clips=num_clips)
    checkpoint = resolve_checkpoint(args.resume_from_checkpoint, output_dir)
    state = PretrainingState.load(checkpoint / TRAINER_STATE_NAME)
    if state.num_clips != num_clips:
        raise ValueError(f"cannot resume from {str(checkpoint)!r}: it was pretrained on {state.num_clips} clips, the "
                         f"data now has {num_clips}; pretrain into another --output-dir")
    accelerator.load_state(str(checkpoint))
    accelerator.print(f"resumed from {checkpoint} (epoch {state.epoch}, batch {state.batches_in_epoch}, step "
                      f"{state.global_step})")
    return state


def step_seed(seed: int, epoch: int, batch: int, process: int) -> int:
    """The seed of one batch's random choices (windows, hidden tokens, dropout): the same in a resumed run."""
    return (seed * 1_000_003 + epoch * 10_007 + batch) * 64 + process


def pretrain_epoch(run: PretrainingRun) -> None:
    """The rest of the current epoch (all of it, unless resumed within it); stops early when time is spent."""
    args, accelerator, state, model = run.args, run.accelerator, run.state, run.model
    unwrapped = accelerator.unwrap_model(model)
    config = unwrapped.config
    run.loader.set_epoch(state.epoch)  # the shuffling of this epoch (the same order when resumed)
    model.train()
    run.running_stats.save()
    sums = {key: torch.zeros((), device=accelerator.device) for key in EPOCH_SUMS}
    window_loss, window_batches = torch.zeros((), device=accelerator.device), torch.zeros((), device=accelerator.device)
    progress = tqdm(total=run.steps_per_epoch, initial=state.batches_in_epoch // args.gradient_accumulation_steps,
                    desc=f"epoch {state.epoch + 1}/{args.num_train_epochs}",
                    disable=args.disable_tqdm or not accelerator.is_local_main_process)
    epoch_started, clips_seen = time.time(), 0
    for batch_index, batch in enumerate(run.loader):
        if batch_index < state.batches_in_epoch:
            continue  # trained before the checkpoint this run resumed from
        seed = step_seed(args.seed, state.epoch, batch_index, accelerator.process_index)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # dropout and stochastic depth
        values, attention_mask = crop_windows(batch["input_values"], batch["num_frames"], run.window, generator)
        grid = token_grid(config, run.window)
        valid = token_validity(config, attention_mask.cpu(), grid, len(values))
        mask = sample_token_mask(valid, grid, args.mask_ratio, args.mask_pattern, args.mask_span_length, generator)
        with accelerator.accumulate(model):
            output = model(values, mask.to(values.device), attention_mask)
            run.guard.observe_loss(output.loss)
            accelerator.backward(output.loss)
            if accelerator.sync_gradients:
                optimizer_step(run)
        finite = torch.isfinite(output.loss.detach())
        for key in ("loss", "reconstruction_loss", "contrastive_loss", "contrastive_accuracy"):
            value = getattr(output, key)
            if value is not None:
                sums[key] += torch.where(finite, value.detach().float(), torch.zeros_like(sums[key]))
        sums["batches"] += finite
        window_loss += torch.where(finite, output.loss.detach().float(), torch.zeros_like(window_loss))
        window_batches += finite
        clips_seen += len(values)
        state.batches_in_epoch = batch_index + 1
        if not accelerator.sync_gradients:
            continue
        run.schedule.step()
        state.global_step += 1
        progress.update(1)
        run.guard.check(state.epoch + 1, state.global_step, batch.get("file"), unwrapped)
        if state.global_step % args.logging_steps == 0:
            loss = accelerator.reduce(window_loss / window_batches.clamp_min(1), "mean").item()
            lr = run.schedule.get_last_lr()[0]
            state.step_log.append({"step": state.global_step, "loss": loss, "learning_rate": lr})
            accelerator.log({"pretrain/loss": loss, "pretrain/learning_rate": lr}, step=state.global_step)
            progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
            window_loss, window_batches = torch.zeros_like(window_loss), torch.zeros_like(window_batches)
        if out_of_time(run):
            run.out_of_time = True
            break
        if args.save_steps and state.global_step % args.save_steps == 0 and state.batches_in_epoch < len(run.loader):
            carry_epoch_sums(run, sums)
            checkpoint(run)
    progress.close()
    run.guard.settle()
    if run.out_of_time and state.batches_in_epoch < len(run.loader):
        accelerator.print(f"time budget of {args.max_minutes} min spent at epoch {state.epoch + 1}, step "
                          f"{state.global_step}: checkpoint and encoder saved (--resume-from-checkpoint latest "
                          "continues)")
        carry_epoch_sums(run, sums)
        checkpoint(run)
        return
    end_epoch(run, sums, time.time() - epoch_started, clips_seen)


def optimizer_step(run: PretrainingRun) -> bool:
    """Clip, check and take (or skip) the optimizer step of the gradients accumulated so far; True if taken. As
    `audio_vit.training.trainer.optimizer_step`: a skipped step leaves weights and batch-norm statistics as they were."""
    accelerator, args = run.accelerator, run.args
    parameters = [p for p in run.model.parameters() if p.requires_grad]
    scaler = getattr(accelerator, "scaler", None)
    if args.max_grad_norm:
        grad_norm = accelerator.clip_grad_norm_(parameters, args.max_grad_norm)
    else:
        if scaler is not None:
            accelerator.unscale_gradients()
        grad_norm = gradient_norm(parameters)
    taken = run.guard.take_step(accelerator, None if scaler is not None else grad_norm)
    if taken:
        run.optimizer.step()
        taken = not getattr(run.optimizer, "step_was_skipped", False)
    elif scaler is not None:
        scaler.update()
    if not taken:
        run.running_stats.restore()
    run.optimizer.zero_grad()
    run.running_stats.save()
    return taken


def out_of_time(run: PretrainingRun) -> bool:
    """Whether `--max-minutes` is spent (every process stops at the same step)."""
    if run.args.max_minutes is None:
        return False
    spent = time.time() - run.started >= 60.0 * run.args.max_minutes
    spent = torch.tensor(float(spent), device=run.accelerator.device)
    return bool(run.accelerator.reduce(spent, "sum").item() > 0)


def carry_epoch_sums(run: PretrainingRun, sums: dict) -> None:
    """Before a checkpoint within an epoch: add this run's loss sums (of every process) to the state's and zero them,
    so the epoch's mean after a resume counts every batch once."""
    for key, value in sums.items():
        run.state.epoch_sums[key] = run.state.epoch_sums.get(key, 0.0) + run.accelerator.reduce(value, "sum").item()
        value.zero_()


def end_epoch(run: PretrainingRun, sums: dict, seconds: float, clips_seen: int) -> None:
    """The epoch's log line and history entry (means over every batch of the epoch), then its checkpoint."""
    accelerator, state, args = run.accelerator, run.state, run.args
    carry_epoch_sums(run, sums)
    totals, state.epoch_sums = state.epoch_sums, {}
    batches = max(totals.pop("batches"), 1.0)
    means = {key: value / batches for key, value in totals.items()}
    if not args.contrastive_weight:
        means = {key: value for key, value in means.items() if not key.startswith("contrastive")}
    skipped = run.guard.end_epoch()
    state.skipped_nonfinite_steps += skipped
    state.epoch += 1
    state.batches_in_epoch = 0
    clips_per_second = clips_seen * accelerator.num_processes / max(seconds, 1e-9)
    entry = {"epoch": state.epoch, "step": state.global_step, **means, "learning_rate": run.schedule.get_last_lr()[0],
             "clips_per_second": clips_per_second, "nonfinite_steps_skipped": skipped}
    state.log_history.append(entry)
    accelerator.log({f"pretrain/epoch_{key}": value for key, value in means.items()}, step=state.global_step)
    details = ", ".join(f"{key.replace('_', ' ')} {value:.4f}" for key, value in means.items() if key != "loss")
    accelerator.print(f"epoch {state.epoch}/{args.num_train_epochs}: loss {means['loss']:.4f}"
                      + (f" ({details})" if details else "")
                      + f" lr {entry['learning_rate']:.2e} {clips_per_second:.1f} clips/s skipped non-finite steps "
                      f"{skipped}")
    checkpoint(run)


def checkpoint(run: PretrainingRun) -> None:
    """Atomic checkpoint `checkpoints/step_N` (accelerator state + `trainer_state.json`), the newest K kept."""
    now = time.time()
    run.state.train_seconds, run.clock = run.state.train_seconds + now - run.clock, now
    save_checkpoint(run.accelerator, run.args.output_dir, run.state, run.args.save_total_limit,
                    name=f"step_{run.state.global_step}")
    if run.accelerator.is_main_process:
        run.state.save(Path(run.args.output_dir) / TRAINER_STATE_NAME)


def pretraining_record(prepared, data_args, model_args, args, results: dict, window: int) -> dict:
    """What the encoder's config (`pretraining`) and card say of how it was pretrained."""
    source = data_args.dataset or (str(Path(data_args.data_dir).resolve()) if data_args.data_dir else None)
    return {
        "method": METHOD + (SPARSE_STEM if model_args.stem == "conv" else ""),
        "data": {"source": source, "clips": results["num_clips"], "hours": round(results["hours"], 3),
                 "left_out": {name: len(split) for name, split in prepared.splits.items() if name != "train"},
                 "skipped": len(prepared.report.skipped)},
        "options": {name: getattr(args, name) for name in (
            "mask_ratio", "mask_pattern", "mask_span_length", "decoder_hidden_size", "decoder_layers",
            "decoder_heads", "contrastive_weight", "normalize_targets", "num_train_epochs",
            "per_device_train_batch_size", "learning_rate", "weight_decay", "seed")},
        "window_frames": window,
        "result": {key: results[key] for key in ("epoch", "global_step", "finished", "train_seconds",
                                                  "nonfinite_steps_skipped", "loss", "reconstruction_loss",
                                                  "contrastive_loss", "contrastive_accuracy") if key in results},
    }


def save_encoder(accelerator: Accelerator, encoder: AudioViTModel, feature_extractor, output_dir: Path,
                 record: dict) -> None:
    """The encoder folder (config with the `pretraining` record, weights, feature extractor with the clips'
    mean/std), written as `checkpointing.save_model` writes a model folder."""
    encoder.config.pretraining = record
    save_model(accelerator, encoder, feature_extractor, output_dir, staging_name=".tmp_encoder")


def tracker_config(model_args, args) -> dict:
    """Flat scalar options for the experiment tracker."""
    values = {**asdict(model_args), **asdict(args)}
    return {key: value for key, value in values.items() if isinstance(value, (int, float, str, bool))}


__all__ = ["PretrainingState", "pretrain", "step_seed"]
