"""The package layout keeps its promises (issue 34): a checkpoint carries exactly the shipped folder, which imports
nothing else of audio_vit; the module paths of the last release still import (with a warning); the README's code
and the names it mentions resolve."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import audio_vit
from audio_vit._imports import MOVED_MODULES
from audio_vit.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "audio_vit" / "models" / "audio_vit"
README = (REPO / "README.md").read_text(encoding="utf-8")


def shipped_modules() -> set[str]:
    return {path.name for path in SHIPPED.glob("*.py") if path.name != "__init__.py"}


def test_a_saved_checkpoint_carries_exactly_the_shipped_folder(tmp_path):
    from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification

    for backbone in ({}, {"backbone": "timm", "timm_model_name": "resnet18",
                          "timm_kwargs": {"layers": [1, 1, 1, 1], "channels": [8, 8, 8, 8]}}):
        folder = tmp_path / (backbone.get("backbone") or "scratch")
        config = AudioViTConfig(num_mel_bins=16, max_length=32, patch_size=(16, 2), hidden_size=32,
                                num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, id2label={0: "a", 1: "b"},
                                label2id={"a": 0, "b": 1}, **backbone)
        AudioViTForAudioClassification(config).save_pretrained(folder)
        AudioViTFeatureExtractor(num_mel_bins=16, max_length=32).save_pretrained(folder)
        assert {path.name for path in folder.glob("*.py")} == shipped_modules()


def test_the_shipped_modules_import_only_each_other_and_third_party_packages():
    for path in sorted(SHIPPED.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and node.module and f"{node.module}.py" in shipped_modules(), (
                    f"{path.name}: `from {'.' * node.level}{node.module or ''} import ...` leaves the shipped folder "
                    "(a saved checkpoint would not have it)")
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not any(name == "audio_vit" or name.startswith("audio_vit.") for name in names if name), (
                f"{path.name} imports the audio_vit package, which a checkpoint does not carry")


def test_the_auto_map_names_the_shipped_modules(tmp_path):
    from audio_vit import AudioViTConfig, AudioViTForAudioClassification

    config = AudioViTConfig(num_mel_bins=16, max_length=32, patch_size=(16, 2), hidden_size=32, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=64)
    AudioViTForAudioClassification(config).save_pretrained(tmp_path)
    saved = AudioViTConfig.from_pretrained(tmp_path).auto_map
    assert saved == {"AutoConfig": "configuration_audio_vit.AudioViTConfig",
                     "AutoModelForAudioClassification": "modeling_audio_vit.AudioViTForAudioClassification"}


def test_every_moved_module_has_a_home_and_its_old_path_forwards_with_a_warning():
    for old, new in MOVED_MODULES.items():
        assert importlib.util.find_spec(new) is not None, f"{old} -> {new}: no such module"
    # In a fresh interpreter: the first import of an old path warns once and hands out the new module's objects.
    script = """
import warnings
warnings.simplefilter("error", FutureWarning)
try:
    from audio_vit.app import build_demo
except FutureWarning as warning:
    print("warned:", warning)
warnings.simplefilter("ignore", FutureWarning)
from audio_vit.app import build_demo
from audio_vit.serving.app import build_demo as moved
from audio_vit.model_card import write_model_card
from audio_vit.hub import write_model_card as hub_write
import audio_vit.evaluation.report as old_report, audio_vit.comparison.report as report
import audio_vit.models.audio_vit.modeling_audio_vit as modeling
from audio_vit.modeling_audio_vit import AudioViTModel
print(build_demo is moved, write_model_card is hub_write, old_report.summarize_runs is report.summarize_runs,
      AudioViTModel is modeling.AudioViTModel, not hasattr(old_report, "__file__"))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("warned: audio_vit.app moved to audio_vit.serving.app"), lines
    assert lines[-1] == "True True True True True"  # the same objects, no second copy of a module


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_python_blocks_compile_and_their_imports_run_from_current_paths():
    blocks = python_blocks(README)
    assert len(blocks) >= 4
    ran = []
    for block in blocks:
        tree = ast.parse(block)  # a syntax error fails here
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            top = (node.module if isinstance(node, ast.ImportFrom) else node.names[0].name).split(".")[0]
            if top != "audio_vit" and importlib.util.find_spec(top) is None:
                continue  # an optional client the README shows (onnxruntime, gradio_client): not the package's
            statement = ast.unparse(node)
            with warnings.catch_warnings():
                warnings.simplefilter("error", FutureWarning)  # the README shows paths that do not warn
                exec(compile(statement, "README.md", "exec"), {})
            ran.append(statement)
    assert sum("audio_vit" in statement for statement in ran) >= 3, ran


def dotted_references(text: str) -> set[str]:
    """`audio_vit.x.y` names the README shows in backticks or code (calls and attributes, without arguments)."""
    return {match.rstrip(".") for match in re.findall(r"\baudio_vit(?:\.[A-Za-z_]\w*)+", text)}


def resolve(name: str):
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            spec = importlib.util.find_spec(module_name)
        except ModuleNotFoundError:
            spec = None
        if spec is None:
            continue
        value = importlib.import_module(module_name)
        for attribute in parts[split:]:
            value = getattr(value, attribute)
        return value
    raise ImportError(name)


def test_every_audio_vit_name_the_readme_shows_resolves_without_a_moved_path():
    references = dotted_references(README)
    assert "audio_vit.inference.classify_audio_file" in references
    for name in sorted(references):
        if name.startswith("audio_vit.metrics.") and name.count(".") > 2:
            continue  # a metric script's folder, not a module
        if name in MOVED_MODULES:
            continue  # an old path, named as such (the "Moved paths" paragraph); an attribute through one still fails
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            resolve(name)


def test_the_readme_commands_exist():
    shell = "\n".join(re.findall(r"^```(?:bash|sh|shell)?\n(.*?)^```", README, flags=re.S | re.M))
    for command in re.findall(r"\baudio-vit ([a-z][a-z-]+)", shell):
        assert command in COMMANDS, f"README runs `audio-vit {command}`, which the command line does not have"
    for path in re.findall(r"\b((?:scripts|benchmarks|audio_vit/recipes)/[\w./-]+\.(?:py|sh|yaml))", README):
        assert (REPO / path).is_file(), f"README names {path}, which does not exist"


def test_the_prepare_fingerprint_hashes_files_that_exist():
    from audio_vit.data.prepare_fingerprint import CODE_FILES, PACKAGE_DIR

    assert PACKAGE_DIR == Path(audio_vit.__file__).resolve().parent
    for name in CODE_FILES:
        assert (PACKAGE_DIR / name).exists(), name


# Modules of the last release that are packages now, with the public names they had (their `__all__`, or for
# `inference`, which had none, the names the README and the commands used).
FORMER_MODULES = {
    "audio_vit.inference": ["classify_audio_file", "classify_long_audio", "LongAudioPrediction", "WindowPrediction",
                            "clip_windows", "whole_clip_logits", "window_starts", "classify_blocks"],
    "audio_vit.hub": ["UPLOAD_IGNORE_PATTERNS", "check_shareable_folder", "place_in_hub_cache", "push_folder",
                      "upload_file_list"],
    "audio_vit.export": ["ExportMismatchError", "ExportResult", "FORMATS", "LogitsOnly", "check_lengths",
                         "export_model_folder", "export_onnx", "export_pt2", "load_runner", "min_export_frames",
                         "verify_export", "DEFAULT_OPSET", "DEFAULT_ATOL", "EXPORT_FILENAMES"],
    "audio_vit.serving": ["RequestAdmission", "ServerBusyError", "WindowBatcher"],
}


@pytest.mark.parametrize("package", sorted(FORMER_MODULES))
def test_a_module_that_became_a_package_keeps_its_public_names(package):
    module = importlib.import_module(package)
    for name in [*FORMER_MODULES[package], *module.__all__]:
        assert getattr(module, name) is not None, f"{package}.{name}"
