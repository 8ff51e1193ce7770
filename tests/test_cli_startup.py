"""The command line answers at once: `--help` of every command and `import audio_vit` load no torch,
transformers or datasets (what makes them slow), yet the Auto classes still know audio_vit afterwards.
(Times are measured by benchmarks/startup.py, not asserted here.)"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from audio_vit.cli import COMMANDS
from tests.conftest import REPO_ROOT

HEAVY = ("torch", "transformers", "datasets", "gradio")


def _heavy_modules_after(code: str) -> list[str]:
    probe = code + f"\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_imports_nothing_heavy(command):
    argv = ["--help"] if command is None else [command, "--help"]
    code = (
        "import contextlib, io\nfrom audio_vit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass"
    )
    assert _heavy_modules_after(code) == []


def test_import_audio_vit_is_light_and_still_registers_the_auto_classes(tmp_path):
    assert _heavy_modules_after("import audio_vit") == []
    code = (
        "import audio_vit\nfrom transformers import AutoConfig, AutoModelForAudioClassification\n"
        "config = AutoConfig.for_model('audio_vit', num_mel_bins=16, max_length=32, patch_size=(16, 2), "
        "hidden_size=32, num_hidden_layers=1, num_attention_heads=2)\n"
        "model = AutoModelForAudioClassification.from_config(config)\n"
        "assert type(model).__name__ == 'AudioViTForAudioClassification', type(model)"
    )
    assert "transformers" in _heavy_modules_after(code)  # ran, with transformers loaded after audio_vit


def test_classes_are_attributes_of_the_package():
    import audio_vit

    assert audio_vit.AudioViTConfig.model_type == "audio_vit"
    assert "AudioViTForAudioClassification" in dir(audio_vit)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        audio_vit.Nope  # noqa: B018
