"""Distillation (`audio-vit train --teacher`): the loss wrapper's arithmetic, the distillation token's head, the
teacher's input, and a teacher -> student run on tiny data whose training loss is checked term by term and whose
recorded validation accuracies match each folder scored on its own; the saved student loads and predicts without the
teacher."""
from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.model_folder import load_feature_extractor, load_model
from audio_vit.training import distillation as distillation_module
from audio_vit.training import explicit_option_names, parse_training_args, train
from audio_vit.training.auto_recipe import format_recipe, resolve_recipe
from audio_vit.training import trainer as trainer_module
from audio_vit.training.distillation import (
    DistillationLoss,
    TeacherOnStudentInput,
    check_teacher_features,
    renormalizer,
    teacher_validation,
    weaker_teacher_warning,
)
from audio_vit.training.distillation_recipe import FUNCTION_MATCHING
from audio_vit.training.folder_evaluation import evaluate_folder
from conftest import tiny_config_kwargs
from test_training_helpers import make_tone_dataset, read_json, tiny_train_argv


class FixedTeacher(nn.Module):
    """Returns the logits it was given, whatever the input (and records the input it saw)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits
        self.weight = nn.Parameter(torch.zeros(1))
        self.seen = None

    def forward(self, input_values, attention_mask=None):
        self.seen = input_values
        return SequenceClassifierOutput(logits=self.logits)


def test_soft_and_hard_terms_and_their_weighting():
    torch.manual_seed(0)
    student_logits, teacher_logits = torch.randn(4, 3), torch.randn(4, 3)
    labels = torch.tensor([0, 1, 2, 1])
    outputs = SequenceClassifierOutput(loss=F.cross_entropy(student_logits, labels), logits=student_logits)
    batch = {"input_values": torch.randn(4, 16, 32)}
    tau, alpha = 2.0, 0.3
    soft = DistillationLoss(FixedTeacher(teacher_logits), "soft", alpha=alpha, tau=tau)
    loss = soft(nn.Identity(), batch, outputs, labels)
    # KL(teacher || student) at temperature tau, per clip, averaged over the batch, times tau^2 (Hinton et al.)
    p_teacher = F.softmax(teacher_logits / tau, dim=-1)
    expected_kl = (p_teacher * (p_teacher.log() - F.log_softmax(student_logits / tau, dim=-1))).sum(-1).mean() * tau**2
    assert soft.last_terms["distillation"] == pytest.approx(float(expected_kl), rel=1e-5)
    assert float(loss) == pytest.approx((1 - alpha) * float(outputs.loss) + alpha * float(expected_kl), rel=1e-5)
    hard = DistillationLoss(FixedTeacher(teacher_logits), "hard", alpha=1.0)
    expected_ce = F.cross_entropy(student_logits, teacher_logits.argmax(-1))
    assert float(hard(nn.Identity(), batch, outputs, labels)) == pytest.approx(float(expected_ce), rel=1e-6)
    assert hard.teacher.training is False and not hard.teacher.weight.requires_grad
    hard.train()
    assert hard.teacher.training is False  # the teacher stays in eval mode
    with pytest.raises(ValueError, match="distillation_type='medium'"):
        DistillationLoss(FixedTeacher(teacher_logits), "medium")


def test_distillation_token_head_gets_the_teacher_term_and_the_class_head_the_labels():
    config = AudioViTConfig(**tiny_config_kwargs(distillation_token=True, distillation_head=True, pooling="mean"))
    student = AudioViTForAudioClassification(config).eval()
    batch = {"input_values": torch.randn(2, 16, 32)}
    labels = torch.tensor([0, 2])
    outputs = student(input_values=batch["input_values"], labels=labels)
    assert outputs.class_logits.shape == outputs.distillation_logits.shape == (2, 3)
    torch.testing.assert_close(outputs.logits, (outputs.class_logits + outputs.distillation_logits) / 2)
    assert len(student.get_classifier()) == 2  # both heads stay trainable under --head-only-epochs
    teacher_logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    loss = DistillationLoss(FixedTeacher(teacher_logits), "hard", alpha=0.5)(student, batch, outputs, labels)
    expected = 0.5 * F.cross_entropy(outputs.class_logits, labels) + 0.5 * F.cross_entropy(
        outputs.distillation_logits, torch.tensor([0, 1]))
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="distillation_head=True needs distillation_token=True"):
        AudioViTConfig(**tiny_config_kwargs(distillation_head=True))


def test_teacher_input_is_renormalised_and_other_features_refused():
    student = AudioViTFeatureExtractor(num_mel_bins=16).with_statistics(mean=-30.0, std=12.0)
    teacher = AudioViTFeatureExtractor(num_mel_bins=16).with_statistics(mean=-25.0, std=10.0)
    decibels = torch.randn(2, 16, 8) * 12 - 30
    to_teacher = renormalizer(student, teacher)
    torch.testing.assert_close(to_teacher(student.normalize(decibels)), teacher.normalize(decibels))
    assert renormalizer(student, student) is None
    check_teacher_features(student, AudioViTFeatureExtractor(num_mel_bins=16, n_fft=400, win_length=None), "t")
    with pytest.raises(ValueError, match=r"hop_length 320 \(teacher\) vs 160 \(student\), num_mel_bins 64 \(teacher\) vs 16"):
        check_teacher_features(student, AudioViTFeatureExtractor(num_mel_bins=64, hop_length=320), "teacher_dir")


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tone_dataset(tmp_path_factory.mktemp("tones"))


def test_teacher_student_run_adds_the_teacher_term_and_the_student_stands_alone(tones, tmp_path, monkeypatch):
    teacher_dir, student_dir, cache = tmp_path / "teacher", tmp_path / "student", tmp_path / "cache"
    train(*parse_training_args(tiny_train_argv(tones, teacher_dir, cache, "--num-train-epochs", "2", "--pooling",
                                               "mean")))
    teacher = load_model(teacher_dir)
    teacher_extractor = load_feature_extractor(teacher_dir)

    # Spy on the trainer's loss: record each batch, the loss and the two terms the wrapper computed.
    seen = []

    def spying_loss(model, batch, targets, distillation=None):
        with torch.no_grad():  # the student's heads on this batch (no dropout / drop path: deterministic)
            student_outputs = model(input_values=batch["input_values"], attention_mask=batch["attention_mask"])
        loss = distillation_module.training_loss(model, batch, targets, distillation)
        seen.append((batch, student_outputs, float(loss.detach()), dict(distillation.last_terms), distillation))
        return loss

    monkeypatch.setattr(trainer_module, "training_loss", spying_loss)
    # One epoch at a learning rate too low to learn the tones: the student scores far below its teacher, so a mix-up
    # of the two accuracies shows.
    argv = tiny_train_argv(tones, student_dir, cache, "--num-train-epochs", "1", "--teacher", str(teacher_dir),
                           "--distillation-type", "soft", "--distillation-alpha", "0.7", "--distillation-tau", "2.0",
                           "--distillation-token", "true", "--pooling", "mean", "--learning-rate", "1e-5")
    results = train(*parse_training_args(argv))
    assert results["finished"] and len(seen) == 3  # 24 training clips, batches of 8

    batch, student_outputs, loss, terms, distillation = seen[0]
    student_extractor = load_feature_extractor(student_dir)
    # The teacher term, recomputed here from the teacher folder alone: KL at tau 2 between the teacher's softmax
    # of the same (augmented, renormalised) batch and the student's distillation head.
    teacher_values = batch["input_values"] * student_extractor.std / teacher_extractor.std + (
        student_extractor.mean - teacher_extractor.mean) / teacher_extractor.std
    with torch.no_grad():
        teacher_logits = teacher(input_values=teacher_values, attention_mask=batch["attention_mask"]).logits
    p_teacher = F.softmax(teacher_logits / 2.0, dim=-1)
    log_p_student = F.log_softmax(student_outputs.distillation_logits / 2.0, dim=-1)
    expected_term = float((p_teacher * (p_teacher.log() - log_p_student)).sum(-1).mean() * 4.0)
    assert expected_term > 0.01
    assert terms["distillation"] == pytest.approx(expected_term, rel=1e-3)
    assert terms["base"] > 0
    assert loss == pytest.approx(0.3 * terms["base"] + 0.7 * terms["distillation"], rel=1e-5)
    assert not distillation.teacher.training  # the teacher stayed in eval mode through the epoch

    record = read_json(student_dir / "distillation.json")
    assert record["type"] == "soft" and record["alpha"] == 0.7 and record["tau"] == 2.0
    # The teacher scored on the student's validation split (12 clips), beside the student's best epoch: both checked
    # against `audio-vit evaluate`'s scoring of each saved folder on that split with its own feature extractor.
    data_args = parse_training_args(argv)[1]
    student_alone = evaluate_folder(str(student_dir), data_args, split="validation")
    teacher_alone = evaluate_folder(str(teacher_dir), data_args, split="validation")
    assert student_alone["num_samples"] == teacher_alone["num_samples"] == 12
    assert student_alone["accuracy"] < teacher_alone["accuracy"]
    assert record["student_validation_accuracy"] == pytest.approx(student_alone["accuracy"], abs=1e-9)
    assert record["teacher_validation_accuracy"] == pytest.approx(teacher_alone["accuracy"], abs=1e-9)
    assert results["teacher_validation_accuracy"] == record["teacher_validation_accuracy"]
    assert read_json(student_dir / "config.json")["distillation_head"] is True

    # The student is a plain model folder: it loads and predicts with the teacher gone.
    shutil.rmtree(teacher_dir)
    student = load_model(student_dir)
    inputs = student_extractor([torch.randn(3200).numpy()], sampling_rate=8000, return_tensors="pt")
    with torch.no_grad():
        logits = student(input_values=inputs["input_values"]).logits
    assert logits.shape == (1, 3) and torch.isfinite(logits).all()
    assert not any("teacher" in key for key in student.state_dict())


def test_teacher_with_other_labels_is_refused(tones, tmp_path):
    other = make_tone_dataset(tmp_path / "other", labels={"a": 300.0, "b": 2000.0})
    train(*parse_training_args(tiny_train_argv(other, tmp_path / "teacher", tmp_path / "cache_o", "--num-train-epochs",
                                               "1")))
    argv = tiny_train_argv(tones, tmp_path / "student", tmp_path / "cache", "--teacher", str(tmp_path / "teacher"))
    with pytest.raises(ValueError, match=r"predicts labels \['a', 'b'\], the data has"):
        train(*parse_training_args(argv))


def resolved(argv):
    model_args, data_args, aug_config, args = parse_training_args(argv)
    return resolve_recipe(model_args, data_args, aug_config, args, explicit_option_names(argv)), aug_config, args


def test_the_auto_recipe_gives_a_soft_teacher_function_matching_and_user_flags_win(tones, tmp_path):
    base = ["--data-dir", str(tones), "--output-dir", str(tmp_path / "out")]
    scratch, scratch_aug, scratch_args = resolved(base)
    record, aug, args = resolved([*base, "--teacher", str(tmp_path / "teacher")])
    assert "distillation" not in scratch and scratch_args.distillation_alpha == 0.5
    # The values chosen on FSDD validation folds (BENCHMARKS.md): the teacher term alone, on mixup blends.
    assert FUNCTION_MATCHING == {"distillation_alpha": 1.0, "mixup_alpha": 0.4}
    assert args.distillation_alpha == 1.0 and aug.mixup_alpha == 0.4
    assert aug.mixup_prob == scratch_aug.mixup_prob > 0  # on the scratch recipe's share of batches
    assert record["distillation"]["options"] == ["distillation_alpha", "mixup_alpha"]
    assert record["applied"]["distillation_alpha"] == 1.0 and "function matching" in format_recipe(record)
    # A flag the user sets wins; the hard term (the teacher's class, mistakes included) keeps the labels' half.
    _, aug, args = resolved([*base, "--teacher", "t", "--distillation-alpha", "0.3", "--mixup-alpha", "0"])
    assert (args.distillation_alpha, aug.mixup_alpha) == (0.3, 0.0)
    record, aug, args = resolved([*base, "--teacher", "t", "--distillation-type", "hard"])
    assert "distillation" not in record and args.distillation_alpha == 0.5 and aug.mixup_alpha == scratch_aug.mixup_alpha
    record, aug, args = resolved([*base, "--teacher", "t", "--recipe", "none"])
    assert record is None and args.distillation_alpha == 0.5 and aug.mixup_alpha == 0.0  # the plain defaults


def test_the_teacher_is_scored_on_the_students_input_and_a_weaker_teacher_is_named(caplog):
    teacher = FixedTeacher(torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    teacher.config = AudioViTConfig(**tiny_config_kwargs())
    distillation = DistillationLoss(teacher, "soft", teacher_input=lambda values: values * 2 + 1)
    wrapped = TeacherOnStudentInput(distillation)
    values = torch.ones(2, 16, 32)
    assert torch.equal(wrapped(values).logits, teacher.logits) and torch.equal(teacher.seen, values * 3)
    assert wrapped.config is teacher.config

    def evaluate(model):  # stands for the trainer's validation pass
        predictions = model(values).logits.argmax(-1)
        return {"accuracy": float((predictions == torch.tensor([0, 2])).float().mean())}

    with caplog.at_level("WARNING"):
        assert teacher_validation(distillation, evaluate, 0.5) == {"teacher_validation_accuracy": 0.5,
                                                                   "student_validation_accuracy": 0.5}
        assert not caplog.records  # a tie: no warning
        teacher_validation(distillation, evaluate, 0.9)
    assert "beat its teacher (50.0%)" in caplog.text
    assert weaker_teacher_warning(0.7, 0.8) is None
