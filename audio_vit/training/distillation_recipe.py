"""Distillation settings for `--teacher`: the distillation part of `--recipe auto`.

With a teacher and the soft distillation term (the default `--distillation-type soft`), the student learns the
teacher's function rather than the labels ("function matching", Beyer et al. 2022, "Knowledge distillation: a good
teacher is patient and consistent"):

| option | with `--teacher` (soft) | why |
| --- | --- | --- |
| `distillation_alpha` | 1.0: the teacher term only, no label term | the teacher's soft predictions carry the labels and what the labels do not say (how alike two classes sound) |
| `mixup_alpha` | 0.4 (mixup on the recipe's share of batches) | on a blend of two clips the teacher says how much of each it hears: new targets the labels cannot give, so a few clips per class go further |

Everything else is the scratch recipe's. With `--distillation-type hard` (DeiT's teacher class) nothing is derived:
a hard teacher target carries the teacher's mistakes, so the labels keep their half (`--distillation-alpha 0.5`).
`resolve_recipe` applies these like every derived option (an option the user set wins) and records them under
`distillation` in `recipe.json`.

Chosen on validation folds only (BENCHMARKS.md, "Function matching: the distillation default"), the teacher being
EfficientNet-Lite0 from ImageNet trained on the same training folds, the validation folds of test folds 1 / 3 / 5:

- FSDD speaker folds, where the teacher is the stronger model (the case distillation is for): function matching
  97.4 / 92.8 / 63.6% (mean 84.6%) against 92.8 / 85.8 / 59.5% (79.4%) for the earlier default (alpha 0.5, the
  recipe's mixup: none on 1 s clips) and 94.4 / 89.4 / 64.4% (82.7%) for the ViT without a teacher;
- the `small` variant, where the teacher (77.2%) is far weaker than the ViT alone (92.2%): function matching
  88.9%, 3.3 points below the ViT alone but 11.7 above its teacher (the earlier default tied the ViT alone there,
  95.0 vs 95.0%, in a run of older code).

On the test folds (same section): FSDD 84.76 ± 11.04% against 78.70 ± 14.22% for the ViT alone (the earlier
default 78.84%); with a teacher weaker than the ViT, `speakers-small` 73.00% against 73.00% (the earlier default
76.00%) and `small` 87.67% against 95.00% (the earlier default 93.00%).
A teacher weaker than the student's own training has little to pass on whatever the settings: `compare` with a
`vit-distilled:TEACHER` row beside `vit` shows which one a dataset has, and the training warns when the student
beat its teacher on validation (`distillation.teacher_validation`).
"""
from __future__ import annotations

from typing import Any

FUNCTION_MATCHING = {"distillation_alpha": 1.0, "mixup_alpha": 0.4}
WHY = ("function matching: the teacher's soft predictions alone, on mixup blends; chosen on validation folds "
       "(FSDD, a stronger teacher: 84.6% vs 79.4% for alpha 0.5 and 82.7% without a teacher; BENCHMARKS.md)")


def add_distillation_defaults(args, derived: dict[str, Any], parts: tuple[str, ...]) -> dict[str, Any] | None:
    """`resolve_recipe`'s hook: with `--teacher` and the soft term, put the function-matching values into `derived`
    (in place) and return what to record (`{"teacher", "options", "why"}`); None without a teacher or with the hard
    term."""
    if not getattr(args, "teacher", None) or args.distillation_type != "soft":
        return None
    options = {"distillation_alpha": FUNCTION_MATCHING["distillation_alpha"]}
    if "augmentation" in parts:
        options["mixup_alpha"] = FUNCTION_MATCHING["mixup_alpha"]
    derived.update(options)
    return {"teacher": str(args.teacher), "options": sorted(options), "why": WHY}


__all__ = ["FUNCTION_MATCHING", "add_distillation_defaults"]
