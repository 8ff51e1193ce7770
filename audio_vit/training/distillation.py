"""Distillation of a trained teacher into the model being trained (DeiT, Touvron et al. 2021): a loss wrapper.

`audio-vit train --teacher MODEL_DIR` trains the student (by default the scratch ViT) on

    loss = (1 - alpha) * base_loss + alpha * distillation_loss

where `base_loss` is the student's own loss on the (smoothed / mixup) labels and `distillation_loss` compares the
student with the teacher's prediction of the same augmented batch:

* `soft`: KL(softmax(teacher / tau) || softmax(student / tau)) * tau^2, the mean over the batch (Hinton et al.;
  DeiT's code divides the summed KL by batch x classes, which with 10 classes makes the teacher term 10x weaker
  than the label term it is weighed against; the batch mean keeps the two on one scale);
* `hard`: cross-entropy against the teacher's argmax class.

With a distillation token (`--distillation-token`, config `distillation_head`) the teacher term trains the head on
that token and the label term the class head, as DeiT; otherwise both terms train the one head.

The teacher is any model folder the package writes (a timm CNN, the ViT, a converted AST): it runs in eval mode
under `torch.no_grad`, never in the optimizer, and is not part of the saved student. It reads the student's batch
renormalised with its own mean/std; any other difference of feature extraction (rate, STFT, mel bins) is refused
(`--recipe auto` gives the student the teacher's features, so it only arises from explicit options).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .param_groups import unwrap

logger = logging.getLogger(__name__)

DISTILLATION_TYPES = ("soft", "hard")
DISTILLATION_REPORT_NAME = "distillation.json"
# Feature-extraction settings that must agree between teacher and student (mean/std are renormalised, and the
# window length may differ: every model here reads clips of any length).
SHARED_FEATURES = ("sampling_rate", "n_fft", "win_length", "hop_length", "num_mel_bins", "f_min", "f_max",
                   "mel_scale", "mel_norm", "top_db", "frontend")


class DistillationLoss(nn.Module):
    """`(1 - alpha) * base + alpha * teacher term` (see the module docstring), facebookresearch/deit `losses.py` style.

    Args:
        teacher (`nn.Module`): a trained classifier returning `.logits`; put in eval mode, its parameters frozen.
        distillation_type (`str`): `"soft"` or `"hard"`.
        alpha (`float`): weight of the teacher term, in [0, 1].
        tau (`float`): softmax temperature of the soft term.
        teacher_input (callable, optional): the student's `input_values` -> the teacher's (renormalisation).
    """

    def __init__(self, teacher: nn.Module, distillation_type: str = "soft", alpha: float = 0.5, tau: float = 1.0,
                 teacher_input=None):
        super().__init__()
        if distillation_type not in DISTILLATION_TYPES:
            raise ValueError(f"distillation_type={distillation_type!r} is not supported; use one of {DISTILLATION_TYPES}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"distillation alpha={alpha} must be in [0, 1]")
        if tau <= 0:
            raise ValueError(f"distillation tau={tau} must be > 0")
        self.teacher = teacher.eval()
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.distillation_type, self.alpha, self.tau = distillation_type, alpha, tau
        self.teacher_input = teacher_input or (lambda values: values)
        self.last_terms: dict[str, float] = {}  # the two terms of the last call (for logs and tests)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher never leaves eval mode (batch norm statistics, dropout)
        return self

    def forward(self, student: nn.Module, batch: dict, outputs, targets: torch.Tensor) -> torch.Tensor:
        """The loss of the student `outputs` (of `batch`, with `targets`), the student module giving `compute_loss`."""
        class_logits = getattr(outputs, "class_logits", None)
        base = outputs.loss if class_logits is None else unwrap(student).compute_loss(class_logits, targets)
        distillation_logits = getattr(outputs, "distillation_logits", None)
        student_logits = outputs.logits if distillation_logits is None else distillation_logits  # (B, L)
        with torch.no_grad():
            teacher_logits = self.teacher(input_values=self.teacher_input(batch["input_values"]),
                                          attention_mask=batch.get("attention_mask")).logits.float()  # (B, L)
        teacher_term = self.teacher_term(student_logits.float(), teacher_logits)
        self.last_terms = {"base": float(base.detach()), "distillation": float(teacher_term.detach())}
        return (1.0 - self.alpha) * base + self.alpha * teacher_term

    def teacher_term(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        if self.distillation_type == "hard":
            return F.cross_entropy(student_logits, teacher_logits.argmax(dim=-1))
        tau = self.tau
        return F.kl_div(F.log_softmax(student_logits / tau, dim=-1), F.log_softmax(teacher_logits / tau, dim=-1),
                        reduction="batchmean", log_target=True) * tau * tau


def training_loss(model: nn.Module, batch: dict, targets: torch.Tensor,
                  distillation: Optional[DistillationLoss] = None) -> torch.Tensor:
    """The loss of one training batch: the model's own, or with a teacher the `DistillationLoss`."""
    outputs = model(input_values=batch["input_values"], attention_mask=batch.get("attention_mask"), labels=targets)
    return outputs.loss if distillation is None else distillation(model, batch, outputs, targets)


def check_teacher_features(student_extractor, teacher_extractor, teacher_dir) -> None:
    """Raise when the teacher's spectrograms would differ from the student's beyond normalisation and length."""
    def value(extractor, name):
        found = getattr(extractor, name, None)
        return (found or extractor.n_fft) if name == "win_length" else found

    differences = {name: (value(teacher_extractor, name), value(student_extractor, name)) for name in SHARED_FEATURES
                   if value(teacher_extractor, name) != value(student_extractor, name)}
    if differences:
        listed = ", ".join(f"{name} {teacher} (teacher) vs {student} (student)"
                           for name, (teacher, student) in differences.items())
        raise ValueError(f"the teacher {str(teacher_dir)!r} was trained on other spectrograms: {listed}. The teacher "
                         "reads the student's batches, so train the student with the teacher's feature options (leave "
                         "them unset: --recipe auto takes the teacher's) or train the teacher with the student's")


def renormalizer(student_extractor, teacher_extractor):
    """The student's normalised input -> the same dB values normalised with the teacher's mean/std (exact: affine)."""
    scale = float(student_extractor.std) / float(teacher_extractor.std)
    shift = (float(student_extractor.mean) - float(teacher_extractor.mean)) / float(teacher_extractor.std)
    if scale == 1.0 and shift == 0.0:
        return None
    return lambda values: values * scale + shift


def build_distillation(args, prepared, device) -> Optional[DistillationLoss]:
    """`--teacher`: load the teacher folder, check it against the data and the student's features, and wrap it."""
    if not args.teacher:
        return None
    from ..model_folder import load_feature_extractor, load_model

    if prepared.multi_label:
        raise ValueError("--teacher supports single-label data (one class per clip); the data is multi-label")
    teacher = load_model(args.teacher)
    teacher_labels = [teacher.config.id2label[i] for i in sorted(teacher.config.id2label)]
    labels = [prepared.id2label[i] for i in sorted(prepared.id2label)]
    if teacher_labels != labels:
        raise ValueError(f"the teacher {args.teacher!r} predicts labels {teacher_labels}, the data has {labels}; "
                         "a teacher must be trained on the same labels, in the same order")
    teacher_extractor = load_feature_extractor(args.teacher)
    check_teacher_features(prepared.feature_extractor, teacher_extractor, args.teacher)
    return DistillationLoss(teacher.to(device), args.distillation_type, args.distillation_alpha, args.distillation_tau,
                            teacher_input=renormalizer(prepared.feature_extractor, teacher_extractor))


def distillation_record(args, validation: Optional[dict] = None) -> dict:
    """What `distillation.json` beside the student says: the teacher, the loss settings and, once trained, the
    validation accuracy of the teacher and of the student's best epoch (`teacher_validation`)."""
    return {"teacher": str(Path(args.teacher).resolve()), "type": args.distillation_type,
            "alpha": args.distillation_alpha, "tau": args.distillation_tau, **(validation or {})}


class TeacherOnStudentInput(nn.Module):
    """The teacher seen as the student's evaluation sees a model: the student's input in, the teacher's logits out."""

    def __init__(self, distillation: DistillationLoss):
        super().__init__()
        self.teacher, self.teacher_input = distillation.teacher, distillation.teacher_input
        self.config = self.teacher.config  # the evaluation cuts clips into the teacher's own window (max_length)

    def compute_loss(self, logits, labels):
        return self.teacher.compute_loss(logits, labels)

    def forward(self, input_values, attention_mask=None, **kwargs):
        return self.teacher(input_values=self.teacher_input(input_values), attention_mask=attention_mask)


def weaker_teacher_warning(student_accuracy: float, teacher_accuracy: float) -> Optional[str]:
    """A warning when the student beat its teacher on validation: a teacher weaker than the student has little to
    pass on. A hint, not a rule (BENCHMARKS.md, "Function matching"): on the 6 validation folds of FSDD and `small`
    the student beat its teacher exactly where it lost to the ViT trained alone; on the test folds it fired on all 5
    of `small` (all lost) and on 4 of the 6 of `speakers-small` (2 lost, 2 won)."""
    if student_accuracy <= teacher_accuracy:
        return None
    return (f"the student ({student_accuracy:.1%} validation accuracy) beat its teacher ({teacher_accuracy:.1%}): "
            "the teacher is the weaker model here, and the model trained without --teacher may well be better; "
            "compare them (audio-vit compare --models vit vit-distilled:TEACHER)")


def teacher_validation(distillation: DistillationLoss, evaluate, student_accuracy: Optional[float]) -> dict:
    """The teacher's accuracy on the student's validation split (`evaluate(model) -> metrics`) beside the student's
    best epoch's, for the results and `distillation.json`; a warning when the teacher is the weaker one."""
    teacher = evaluate(TeacherOnStudentInput(distillation))
    validation = {"teacher_validation_accuracy": teacher["accuracy"], "student_validation_accuracy": student_accuracy}
    warning = None if student_accuracy is None else weaker_teacher_warning(student_accuracy, teacher["accuracy"])
    if warning:
        logger.warning(warning)
    return validation


__all__ = ["DISTILLATION_REPORT_NAME", "DISTILLATION_TYPES", "DistillationLoss", "TeacherOnStudentInput",
           "build_distillation", "check_teacher_features", "distillation_record", "renormalizer", "teacher_validation",
           "training_loss", "weaker_teacher_warning"]
