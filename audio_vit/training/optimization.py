"""Optimizer, learning-rate schedules and a weight EMA for the training loop."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .param_groups import layerwise_lr_param_groups, parameter_groups


def build_optimizer(model: nn.Module, args) -> torch.optim.AdamW:
    """AdamW over all parameters; groups (weight decay, layer-wise LR) from `param_groups`."""
    if args.layer_decay:
        groups = layerwise_lr_param_groups(model, args.learning_rate, args.layer_decay, args.weight_decay)
    else:
        groups = parameter_groups(model, args.weight_decay)
    return torch.optim.AdamW(
        groups,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
    )


class LRSchedule:
    """Learning rate = peak LR x warmup factor (per step) x schedule factor.

    `step()` is called after every optimizer step, `epoch_end(metric)` after every validation.
    Kinds: `plateau` (ReduceLROnPlateau on the validation metric), `onecycle` (torch's cosine-annealed
    one-cycle shape), `cosine` (cosine decay to `min_lr` after the warmup), `constant`.
    `anneal_steps` (plateau only): the last `anneal_steps` steps take the LR the plateau rule left along a
    cosine down to `min_lr`. A fixed-length run then ends on a low LR, as a cosine run does, instead of
    at whatever LR the last plateau left (on a small, noisy validation set often the peak LR).
    Only plain numbers are kept, so `state_dict()` round-trips through `accelerator.save_state`.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        kind: str,
        total_steps: int,
        warmup_steps: int = 0,
        mode: str = "max",
        factor: float = 0.5,
        patience: int = 3,
        min_lr: float = 1e-6,
        threshold: float = 1e-4,
        anneal_steps: int = 0,
    ):
        assert kind in ("plateau", "onecycle", "cosine", "constant"), f"unknown schedule kind {kind!r}"
        assert mode in ("max", "min"), f"mode must be 'max' or 'min', got {mode!r}"
        self.optimizer = optimizer
        self.kind = kind
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, int(warmup_steps))
        self.mode, self.factor, self.patience, self.min_lr, self.threshold = mode, factor, patience, min_lr, threshold
        assert anneal_steps == 0 or kind == "plateau", "anneal_steps applies to the plateau schedule only"
        self.anneal_steps = max(0, min(int(anneal_steps), self.total_steps - self.warmup_steps))
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.step_count = 0
        self.plateau_scale = 1.0
        self.best = None
        self.bad_epochs = 0
        self._apply()

    def _factor(self) -> float:
        step = self.step_count
        if self.kind == "onecycle":
            # torch.optim.lr_scheduler.OneCycleLR's shape: cosine up to the peak (pct_start 0.3 unless a
            # warmup is given), then cosine down to peak / 1e4.
            up = self.warmup_steps or max(1, int(0.3 * self.total_steps))
            start, end = 1.0 / 25.0, 1.0 / 1e4
            if step < up:
                t = step / up
                return start + (1.0 - start) * (1 - math.cos(math.pi * t)) / 2
            t = min(1.0, (step - up) / max(1, self.total_steps - up))
            return end + (1.0 - end) * (1 + math.cos(math.pi * t)) / 2
        warmup = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps and step < self.warmup_steps else 1.0
        if self.kind == "cosine":
            t = min(1.0, max(0, step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
            return warmup * (0.5 * (1 + math.cos(math.pi * t)))
        if self.kind == "plateau":
            anneal_start = self.total_steps - self.anneal_steps
            if self.anneal_steps and step >= anneal_start:
                t = min(1.0, (step - anneal_start) / self.anneal_steps)
                floor = min(self.min_lr / max(self.base_lrs), self.plateau_scale)
                return floor + (self.plateau_scale - floor) * 0.5 * (1 + math.cos(math.pi * t))
            return warmup * self.plateau_scale
        return warmup

    @property
    def annealing(self) -> bool:
        """True once the plateau schedule's final annealing has begun (the plateau rule no longer acts)."""
        return bool(self.anneal_steps) and self.step_count >= self.total_steps - self.anneal_steps

    def _apply(self) -> None:
        factor = self._factor()
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            lr = base * factor
            if self.kind in ("plateau", "cosine") and self.step_count >= self.warmup_steps:
                lr = max(lr, min(self.min_lr, base))
            group["lr"] = lr

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def epoch_end(self, metric: float | None) -> bool:
        """Feed the epoch's validation metric; returns True when the plateau schedule lowered the LR."""
        if self.kind != "plateau" or metric is None:
            return False
        if self.step_count < self.warmup_steps or self.annealing:
            return False  # do not judge a plateau while warming up, nor lower an LR that is being annealed
        improved = self.best is None or (
            metric > self.best + self.threshold if self.mode == "max" else metric < self.best - self.threshold
        )
        if improved:
            self.best, self.bad_epochs = metric, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            floor = min(self.min_lr / max(self.base_lrs), 1.0)
            self.plateau_scale = max(self.plateau_scale * self.factor, floor)
            self.bad_epochs = 0
            self._apply()
            return True
        return False

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {
            "step_count": self.step_count,
            "plateau_scale": self.plateau_scale,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "base_lrs": list(self.base_lrs),
        }

    def load_state_dict(self, state: dict) -> None:
        self.step_count = state["step_count"]
        self.plateau_scale = state["plateau_scale"]
        self.best = state["best"]
        self.bad_epochs = state["bad_epochs"]
        self.base_lrs = list(state["base_lrs"])
        self._apply()


class ModelEMA(nn.Module):
    """Exponential moving average of a model's parameters and buffers (timm's ModelEmaV2 idea).

    `decay` is warmed up as min(decay, (1 + n) / (10 + n)) so early averages are not dominated by the
    random initialisation. Evaluate/save `ema.module` instead of the trained model.
    """

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        n = float(self.num_updates)
        decay = min(self.decay, (1.0 + n) / (10.0 + n))
        model_state = model.state_dict()
        for name, ema_value in self.module.state_dict().items():
            value = model_state[name].detach().to(ema_value.device)
            if ema_value.dtype.is_floating_point:
                ema_value.mul_(decay).add_(value.to(ema_value.dtype), alpha=1.0 - decay)
            else:
                ema_value.copy_(value)
