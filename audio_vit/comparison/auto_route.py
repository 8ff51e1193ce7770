"""`vit-auto` in a comparison: the rows that train its candidates, and what a fold result keeps of the choice.

`compare` runs `vit-auto` like any package model (`models.run_fold`); when the same comparison also runs its
candidates as rows (`route_candidate_rows`: `vit`, and `timm:NAME@WEIGHTS` for the pretrained start `--route auto`
finds), `models.reuse_route_candidates` makes their finished fold runs the choice's candidate runs.
"""
from __future__ import annotations


def route_candidate_rows(argv: list[str]) -> dict[str, str]:
    """The compare rows that train what `--route auto` trains with these training flags: {route: row name}."""
    from ..pretrained.starts import find_pretrained_start
    from ..training import parse_training_args

    start = find_pretrained_start(parse_training_args(argv)[0])
    rows = {"scratch": "vit"}
    if start is not None:
        rows["pretrained"] = (f"vit-pretrained:{start.weights}" if start.kind == "model_folder"
                              else f"timm:{start.timm_model_name}@{start.weights}")
    return rows


def route_summary(record: dict | None) -> dict:
    """What a fold's result keeps of a `--route auto` choice: the route, each candidate's validation accuracy
    (mAP) and seconds, and the steps every candidate skipped."""
    if not record:
        return {}
    candidates = record["candidates"]
    return {"route": record["route"], "route_why": record["why"],
            "route_candidates": {name: {"validation": c["validation"].get("accuracy", c["validation"].get("mAP")),
                                        "train_seconds": c["train_seconds"]} for name, c in candidates.items()},
            "nonfinite_steps_skipped": sum(c.get("nonfinite_steps_skipped") or 0 for c in candidates.values())}


__all__ = ["route_candidate_rows", "route_summary"]
