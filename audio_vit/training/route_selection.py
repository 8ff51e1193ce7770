"""Which route trains the model: `audio-vit train --route auto|scratch|pretrained|distilled`.

- `scratch`: the package's ViT from random weights, with the data-derived recipe.
- `pretrained`: a pretrained start fine-tuned with the transfer recipe: the ImageNet EfficientNet-Lite0 that installs
  with audio_vit, or your `--pretrained-backbone` (`audio_vit.pretrained.starts`).
- `distilled`: the scratch ViT trained on the pretrained start's predictions (function matching, `--teacher`), the
  teacher trained first on the same split: the ViT's size and speed, taught by the pretrained network.

`auto` (the default): when a pretrained start is available, `AUTO_CANDIDATES` are trained on the training split, each
picking its best epoch on the validation split as any training does; the candidate whose best epoch scores highest on
the validation split (accuracy, multi-label mAP; a tie goes to the lower validation loss) is kept, and only it is
tested; a lead over the scratch ViT within one standard error of the validation accuracy counts as a tie that keeps
the scratch ViT (`choose_route`). Nothing in the choice reads the test split. Without a pretrained start, or when your
options fix the model (`--backbone`, `--timm-model-name`, `--model-name-or-path`, `--teacher`) or `--recipe none`, one
model trains, as asked. Options that shape the ViT (`--hidden-size`, `--stem`, ...) apply to the ViT candidates.

With several candidates the output folder holds the chosen model (loadable as any other) and `route.json` (every
candidate's validation scores and training time, and why the chosen one won); each candidate's own run stays in
`routes/NAME`. The choice is printed, added to `recipe.json` and the config's `training_recipe` under `route`, and
shown in the model card.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

from ..model_folder import ALL_RESULTS_NAME, CONFIG_NAME, DATA_REPORT_NAME, RECIPE_NAME, ROUTE_NAME
from ..pretrained.starts import MISSING_START, PretrainedStart, find_pretrained_start
from .arguments import ROUTE_NAMES as ROUTES
from .checkpointing import write_json_atomic

logger = logging.getLogger(__name__)

# What `--route auto` trains when a pretrained start is available, in this order (a distilled ViT needs its teacher,
# the pretrained run, first).
AUTO_CANDIDATES = ("scratch", "pretrained")
ROUTES_DIR = "routes"
# Options that choose the network, its start or its teacher: when you set one, `--route auto` trains that model and
# chooses nothing. (Options that shape the ViT, such as --hidden-size or --stem, apply to the ViT candidates.)
MODEL_FIXING_OPTIONS = ("backbone", "timm_model_name", "model_name_or_path", "teacher")
# What the pretrained and distilled candidates set, and the scratch candidate clears.
START_OPTIONS = ("backbone", "timm_model_name", "pretrained_backbone")


# What `--route auto` may spend on its candidates together, in the recipe's cost unit (`auto_recipe.training_cost`:
# clip-passes x window frames of the scratch ViT; `CLIP_FRAME_BUDGET` is about 10 minutes on 2 CPU cores, measured
# on FSDD's 1 s clips, where it is slowest per frame). Sets of a few hundred clips train both candidates in full; on
# thousands of clips the pretrained candidate gets fewer epochs, and none below MIN_PRETRAINED_EPOCHS.
ROUTE_BUDGET_SHARE = 2.5  # x CLIP_FRAME_BUDGET
# Training cost per clip-frame of the pretrained EfficientNet-Lite0 (channels-last) relative to the scratch ViT:
# 2.07-2.24x per step of 32 clips of 101 / 219 / 276 frames with attention masks, 2 threads, alone on the 2-core CPU.
PRETRAINED_COST_FACTOR = 2.2
MIN_PRETRAINED_EPOCHS = 10


@dataclasses.dataclass
class RoutePlan:
    """The routes to train and why: `candidates` in training order, `start` the pretrained start they use, and the
    epochs the time budget leaves the pretrained candidate (None: its recipe's)."""

    candidates: tuple[str, ...]
    start: PretrainedStart | None
    why: str
    pretrained_epochs: int | None = None
    budget: dict | None = None


def plan_routes(route: str, model_args, args, explicit: set[str]) -> RoutePlan:
    """Which candidates `route` trains on this machine, given the options the user set (`explicit`)."""
    if route not in ROUTES:
        raise ValueError(f"route={route!r} is not supported; use one of {ROUTES}")
    # --backbone timm --timm-model-name X fix the model, unless they come with --pretrained-backbone: a start to offer.
    user_start = "pretrained_backbone" in explicit
    fixed = sorted(name for name in MODEL_FIXING_OPTIONS
                   if name in explicit and not (user_start and name in START_OPTIONS))
    start = find_pretrained_start(model_args)
    if route == "auto":
        if args.recipe != "auto":
            return RoutePlan(("as-configured",), None, "--recipe none: the model of your options, nothing chosen")
        if fixed:
            return RoutePlan(("as-configured",), None, f"your options fix the model ({', '.join(fixed)}): nothing chosen")
        if start is None:
            return RoutePlan(("scratch",), None, MISSING_START)
        return RoutePlan(AUTO_CANDIDATES, start, f"a pretrained start is available: {start.description}")
    if route == "scratch":
        if user_start:
            raise ValueError("--route scratch trains from random weights, but --pretrained-backbone gives a start: "
                             "drop one, or pass --route pretrained (or auto, to choose on validation)")
        if fixed:
            return RoutePlan(("as-configured",), None, f"--route scratch with your model ({', '.join(fixed)})")
        return RoutePlan(("scratch",), None, "--route scratch")
    if start is None:
        raise ValueError(f"--route {route} needs a pretrained start; {MISSING_START}")
    return RoutePlan(("pretrained",) if route == "pretrained" else ("pretrained", "distilled"), start, f"--route {route}")


def candidate_arguments(name: str, plan: RoutePlan, arguments: tuple, explicit: set[str], output_dir: Path,
                        do_test: bool) -> tuple[tuple, set[str]]:
    """Copies of the four argument dataclasses (and the explicit-option set) that train candidate `name` into
    `output_dir`: the scratch ViT with the start's options cleared, the pretrained start (timm weights, or an audio_vit
    model folder fine-tuned with `--model-name-or-path`), or the ViT distilled from the pretrained candidate's model
    (`output_dir`'s sibling `pretrained`)."""
    model_args, data_args, aug_config, args = (copy.deepcopy(value) for value in arguments)
    explicit = set(explicit)
    if name == "scratch":
        for option in START_OPTIONS:
            setattr(model_args, option, getattr(type(model_args)(), option))
        explicit -= set(START_OPTIONS)
    elif name == "pretrained":
        if plan.start.kind == "model_folder":  # an audio_vit folder (`audio-vit pretrain`'s encoder), fine-tuned
            model_args.model_name_or_path = plan.start.weights
            explicit.add("model_name_or_path")
        else:
            model_args.backbone, model_args.timm_model_name = "timm", plan.start.timm_model_name
            model_args.pretrained_backbone = plan.start.weights
            explicit |= set(START_OPTIONS)
        if plan.pretrained_epochs is not None:
            args.num_train_epochs = plan.pretrained_epochs
            explicit.add("num_train_epochs")
    elif name == "distilled":
        args.teacher = str(output_dir.parent / "pretrained")
        for option in START_OPTIONS:
            setattr(model_args, option, getattr(type(model_args)(), option))
        explicit -= set(START_OPTIONS)
    args.output_dir, args.do_test, args.route = str(output_dir), do_test, name
    return (model_args, data_args, aug_config, args), explicit


def fit_budget(plan: RoutePlan, arguments: tuple, explicit: set[str]) -> RoutePlan:
    """The plan within the route budget: both candidates as their recipes derive them when their cost fits
    (`ROUTE_BUDGET_SHARE` x the recipe's budget, the pretrained network costing `PRETRAINED_COST_FACTOR` x the ViT a
    frame), else the pretrained candidate with the epochs that fit, or without it below `MIN_PRETRAINED_EPOCHS`.
    Epochs you set are kept."""
    from .auto_recipe import CLIP_FRAME_BUDGET, resolve_recipe, training_cost

    if "pretrained" not in plan.candidates or "num_train_epochs" in explicit:
        return plan
    costs, shape = {}, {}
    # a timm network costs more a frame than the ViT; an audio_vit folder start is a ViT
    pretrained_factor = PRETRAINED_COST_FACTOR if plan.start.kind == "timm_weights" else 1.0
    for name in plan.candidates:
        run_arguments, run_explicit = candidate_arguments(name, plan, arguments, explicit, Path("."), do_test=False)
        model_args, data_args, aug_config, args = run_arguments
        record = resolve_recipe(model_args, data_args, aug_config, args, run_explicit)
        if record is None:  # nothing to derive from (a folder prepared without a recipe): no budget to apply
            return plan
        factor = pretrained_factor if name == "pretrained" else 1.0
        shape[name] = (args.num_train_epochs, record["train_clips"], model_args.max_length)
        costs[name] = factor * training_cost(*shape[name])
    budget = ROUTE_BUDGET_SHARE * CLIP_FRAME_BUDGET
    left = budget - sum(cost for name, cost in costs.items() if name != "pretrained")
    epochs, clips, frames = shape["pretrained"]
    fitting = int(left / (pretrained_factor * training_cost(1, clips, frames)) + 1e-6)  # (float rounding)
    record = {"budget": budget, "costs": costs, "recipe_epochs": epochs, "fitting_epochs": min(epochs, fitting)}
    if fitting >= epochs:
        return dataclasses.replace(plan, budget=record)
    if fitting < MIN_PRETRAINED_EPOCHS:
        why = (f"{plan.why}; the pretrained start is left out: {epochs} epochs of it on {clips} clips do not fit the "
               f"time budget ({fitting} would); --route pretrained trains it anyway")
        return dataclasses.replace(plan, candidates=tuple(c for c in plan.candidates if c != "pretrained"), why=why,
                                   budget=record)
    why = f"{plan.why}; the pretrained start trains {fitting} of its {epochs} epochs to fit the time budget"
    return dataclasses.replace(plan, pretrained_epochs=fitting, why=why, budget=record)


def train_with_route(model_args, data_args, aug_config, args, explicit: set[str] | None = None) -> dict:
    """`audio-vit train`: the route of `args.route` (see the module docstring); returns the final results dict (of
    the chosen model, with its `route` record when there was a choice)."""
    from .command_line import non_default_options
    from .trainer import train

    if explicit is None:
        explicit = non_default_options(model_args, data_args, aug_config, args)
    plan = plan_routes(args.route, model_args, args, explicit)
    arguments = (model_args, data_args, aug_config, args)
    if args.route == "auto":
        plan = fit_budget(plan, arguments, explicit)
    output_dir = Path(args.output_dir)
    if len(plan.candidates) == 1:  # one model, straight into the output folder
        name = plan.candidates[0]
        print(f"route: {name} ({plan.why})", flush=True)
        if name == "as-configured":
            results = train(model_args, data_args, aug_config, args, explicit=explicit)
        else:
            run_arguments, run_explicit = candidate_arguments(name, plan, arguments, explicit, output_dir, args.do_test)
            results = train(*run_arguments, explicit=run_explicit)
        if results.get("finished") and args.route == "auto" and args.recipe == "auto":
            record_single_route(output_dir, {"route": name, "why": plan.why, "budget": plan.budget})
        return results
    check_route_output_dir(args)
    runs = {}
    for name in plan.candidates:
        runs[name] = train_candidate(name, plan, arguments, explicit, output_dir / ROUTES_DIR / name)
    if args.route == "distilled":
        chosen, why = "distilled", "--route distilled (its teacher, the pretrained start, trained first)"
    else:
        chosen, why = choose_route(runs, validation_clip_count(output_dir / ROUTES_DIR / plan.candidates[0]))
    record = route_record(plan, runs, chosen, why)
    print(format_route(record), flush=True)
    results = finish_chosen(chosen, plan, arguments, explicit, output_dir, record)
    return {**results, "route": record}


def record_single_route(output_dir: Path, record: dict) -> None:
    """Say in `recipe.json` and the config's `training_recipe` which route trained a model that had no choice to
    make (one candidate), and why."""
    from accelerate import PartialState

    if PartialState().is_main_process:
        for path, key in ((output_dir / RECIPE_NAME, None), (output_dir / CONFIG_NAME, "training_recipe")):
            if path.is_file():
                data = json.loads(path.read_text(encoding="utf-8"))
                if key is not None and not isinstance(data.get(key), dict):
                    data[key] = {}
                (data if key is None else data[key])["route"] = record
                write_json_atomic(path, data)


def check_route_output_dir(args) -> None:
    """The checks `audio-vit train` makes of its output folder, for the route folder holding the candidates."""
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"--output-dir {str(output_dir)!r} exists and is not a folder")
    if (output_dir / ROUTE_NAME).exists() and not args.resume_from_checkpoint and not args.overwrite_output_dir:
        raise FileExistsError(f"--output-dir {str(output_dir)!r} already holds a trained model; pass "
                              "--overwrite-output-dir to replace it or --resume-from-checkpoint latest to continue")
    if args.resume_from_checkpoint not in (None, "", "latest"):
        raise ValueError(f"--resume-from-checkpoint {args.resume_from_checkpoint!r}: with several routes pass 'latest' "
                         f"(each route continues from its own last checkpoint under {output_dir / ROUTES_DIR})")
    if args.overwrite_output_dir and not args.resume_from_checkpoint:
        shutil.rmtree(output_dir / ROUTES_DIR, ignore_errors=True)
        (output_dir / ROUTE_NAME).unlink(missing_ok=True)


def train_candidate(name: str, plan: RoutePlan, arguments: tuple, explicit: set[str], run_dir: Path) -> dict:
    """Train one candidate without testing it (or reuse its finished run, continuing an interrupted one) and return
    its results: validation scores of its best epoch, time, skipped steps."""
    from .checkpointing import list_checkpoints
    from .trainer import train

    finished = _finished_results(run_dir)
    if finished is not None:
        logger.info("route %s: finished earlier in %s, reused", name, run_dir)
        return finished
    run_arguments, run_explicit = candidate_arguments(name, plan, arguments, explicit, run_dir, do_test=False)
    run_args = run_arguments[3]
    run_args.resume_from_checkpoint = "latest" if list_checkpoints(run_dir) else None
    run_args.overwrite_output_dir = True  # a partial run without checkpoints starts again
    print(f"route {name}: training into {run_dir}", flush=True)
    return train(*run_arguments, explicit=run_explicit)


def _finished_results(run_dir: Path) -> dict | None:
    path = run_dir / ALL_RESULTS_NAME
    if not path.is_file():
        return None
    results = json.loads(path.read_text(encoding="utf-8"))
    return results if results.get("finished") else None


def selection_score(results: dict) -> tuple[float, float]:
    """What the choice maximises: (validation accuracy or, multi-label, mAP; minus the validation loss)."""
    metric = results.get("eval_accuracy", results.get("eval_mAP"))
    return (float("-inf") if metric is None else float(metric), -float(results.get("eval_loss", float("inf"))))


def choose_route(runs: dict[str, dict], validation_clips: int | None = None) -> tuple[str, str]:
    """The candidate with the best validation score, and a sentence saying why.

    With `validation_clips` (single-label), a lead over the scratch ViT smaller than one binomial standard error of
    the validation accuracy, sqrt(p (1 - p) / n), is a tie, and the scratch ViT (a quarter of the pretrained CNN's
    parameters, about 4x its inference speed on a CPU) is kept: a clip or two of 50 is not evidence that the bigger
    model generalises better."""
    ranked = sorted(runs, key=lambda name: selection_score(runs[name]), reverse=True)
    best, rest = ranked[0], ranked[1:]
    metric = "accuracy" if "eval_accuracy" in runs[best] else "mAP"
    scores = ", ".join(f"{name} {selection_score(runs[name])[0]:.2%}" for name in ranked)
    if metric == "accuracy" and validation_clips and best != "scratch" and "scratch" in runs:
        lead = selection_score(runs[best])[0] - selection_score(runs["scratch"])[0]
        p = (selection_score(runs[best])[0] + selection_score(runs["scratch"])[0]) / 2
        noise = max(math.sqrt(p * (1.0 - p) / validation_clips), 1.0 / validation_clips)
        if lead < noise:
            return "scratch", (f"validation accuracy ({scores}): {best}'s lead of {lead:.2%} is within the validation "
                               f"noise ({noise:.2%}, one standard error on {validation_clips} clips), so the smaller, "
                               "faster scratch ViT is kept")
    tie = [name for name in rest if selection_score(runs[name])[0] == selection_score(runs[best])[0]]
    why = f"highest validation {metric} ({scores})"
    if tie:
        why += f"; tied with {', '.join(tie)}: lower validation loss"
    return best, why


def validation_clip_count(run_dir: Path) -> int | None:
    """Validation clips of a candidate's run, from its data report (None when it has none)."""
    try:
        report = json.loads((run_dir / DATA_REPORT_NAME).read_text(encoding="utf-8"))
        return int(report["num_clips"]["validation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def route_record(plan: RoutePlan, runs: dict[str, dict], chosen: str, why: str) -> dict[str, Any]:
    """What `route.json`, `recipe.json` and the card say of the choice."""
    candidates = {}
    for name, results in runs.items():
        candidates[name] = {
            "validation": {key[len("eval_"):]: value for key, value in results.items()
                           if key.startswith("eval_") and isinstance(value, (int, float))},
            "best_epoch": results.get("best_epoch"), "epochs": results.get("epoch"),
            "train_seconds": results.get("train_runtime_this_run"),
            "nonfinite_steps_skipped": results.get("nonfinite_steps_skipped", 0),
        }
    return {"route": chosen, "why": why, "plan": plan.why, "budget": plan.budget, "candidates": candidates,
            "pretrained_start": {"name": plan.start.name, "timm_model_name": plan.start.timm_model_name,
                                 "weights": plan.start.weights, "description": plan.start.description},
            "total_train_seconds": sum(c["train_seconds"] or 0.0 for c in candidates.values())}


def format_route(record: dict[str, Any]) -> str:
    lines = [f"route: {record['route']} ({record['why']})"]
    for name, candidate in record["candidates"].items():
        validation = candidate["validation"]
        lines.append(f"  {name}: validation accuracy {validation.get('accuracy', float('nan')):.4f} loss "
                     f"{validation.get('loss', float('nan')):.4f} (best epoch {candidate['best_epoch']}/"
                     f"{candidate['epochs']}, {candidate['train_seconds'] or 0:.0f} s)")
    return "\n".join(lines)


def finish_chosen(chosen: str, plan: RoutePlan, arguments: tuple, explicit: set[str], output_dir: Path,
                  record: dict) -> dict:
    """Test the chosen candidate and make the output folder its model folder, with the route record."""
    from accelerate import PartialState

    from .trainer import train

    run_dir = output_dir / ROUTES_DIR / chosen
    run_arguments, run_explicit = candidate_arguments(chosen, plan, arguments, explicit, run_dir,
                                                      do_test=arguments[3].do_test)
    # The candidate has trained all its epochs: resuming its last checkpoint trains nothing more, tests its best
    # model (the trainer's own test pass) and writes its results and card.
    run_arguments[3].resume_from_checkpoint = "latest"
    trained = json.loads((run_dir / ALL_RESULTS_NAME).read_text(encoding="utf-8"))
    results = train(*run_arguments, explicit=run_explicit)
    results.update(train_runtime_this_run=trained.get("train_runtime_this_run"),
                   route_train_seconds=record["total_train_seconds"])
    if PartialState().is_main_process:
        write_chosen_folder(run_dir, output_dir, record, results)
        from .trainer import write_card

        model_args, data_args, aug_config, args = run_arguments
        write_card(output_dir, model_args, data_args, aug_config, args)
    PartialState().wait_for_everyone()
    return results


def write_chosen_folder(run_dir: Path, output_dir: Path, record: dict, results: dict) -> None:
    """Copy the chosen run's model folder (its files, not its checkpoints) into `output_dir` and add the route record
    to its recipe, results and config."""
    output_dir.mkdir(parents=True, exist_ok=True)
    for path in run_dir.iterdir():
        if path.is_file():
            shutil.copy2(path, output_dir / path.name)
    write_json_atomic(output_dir / ROUTE_NAME, record)
    if (output_dir / RECIPE_NAME).is_file():
        recipe = json.loads((output_dir / RECIPE_NAME).read_text(encoding="utf-8"))
        write_json_atomic(output_dir / RECIPE_NAME, {**recipe, "route": record})
    write_json_atomic(output_dir / ALL_RESULTS_NAME, {**results, "route": record})
    config = json.loads((output_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    config.setdefault("training_recipe", {})["route"] = {key: record[key] for key in ("route", "why")}
    write_json_atomic(output_dir / CONFIG_NAME, config)


__all__ = ["AUTO_CANDIDATES", "ROUTES", "ROUTE_NAME", "RoutePlan", "choose_route", "plan_routes", "train_with_route"]
