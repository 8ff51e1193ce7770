"""`audio-vit prepare` re-runs: an up-to-date output folder is recognised without torch/datasets, changed
inputs are not; what decoders print (mpg123 in MP3-in-WAV files) is captured and counted, not shown."""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys

import numpy as np
import soundfile

from audio_vit.data.audio_decoding import decode_audio
from audio_vit.commands import prepare
from tests.conftest import REPO_ROOT
from tests.test_training_helpers import make_tone_dataset

SMALL = {"train": 4, "validation": 2, "test": 2}


def corrupt_mp3_in_wav(path) -> None:
    """A WAV whose data chunk is an MP3 stream (format tag 0x55) with 512 junk bytes in the middle: libsndfile
    decodes it through mpg123, which prints "Illegal Audio-MPEG-Header" and resyncs."""
    rate = 16000
    buffer = io.BytesIO()
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    soundfile.write(buffer, tone, rate, format="MP3", subtype="MPEG_LAYER_III")
    mp3 = buffer.getvalue()
    data = mp3[: len(mp3) // 2] + bytes(range(256)) * 2 + mp3[len(mp3) // 2:]
    fmt = struct.pack("<HHIIHH", 0x55, 1, rate, 4000, 1, 0) + struct.pack("<HHIHHH", 12, 1, 2, 0, 1393, 0)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<II", 4, rate)
            + b"data" + struct.pack("<I", len(data)) + data)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _argv(data_dir, tmp_path, *extra):
    return ["--data-dir", str(data_dir), "--cache-dir", str(tmp_path / "cache"), "--output-dir",
            str(tmp_path / "out"), "--sampling-rate", "8000", "--num-mel-bins", "16", "--max-length", "32", *extra]


def test_decoder_noise_is_captured_not_printed(tmp_path, capfd):
    clip = tmp_path / "mp3_in.wav"
    corrupt_mp3_in_wav(clip)
    decoded = decode_audio(clip)
    assert decoded.waveform.shape[-1] > 8000
    assert any("Illegal Audio-MPEG-Header" in line for line in decoded.warnings)
    assert "Illegal Audio-MPEG-Header" not in capfd.readouterr().err


def test_prepare_counts_clips_decoded_with_warnings(tmp_path, capfd):
    data = make_tone_dataset(tmp_path / "data", counts=SMALL)
    corrupt_mp3_in_wav(data / "audio" / "train_low_0.wav")  # replaces a listed clip; still decodes
    assert prepare.main(_argv(data, tmp_path)) == 0
    printed = capfd.readouterr()
    assert "Illegal Audio-MPEG-Header" not in printed.err + printed.out
    assert "decoded with warnings: 1, e.g. audio/train_low_0.wav: " in printed.out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["num_decoded_with_warnings"] == 1 and summary["num_skipped"] == 0
    assert "Illegal Audio-MPEG-Header" in summary["decode_warnings"][0]["message"]
    assert summary["decode_warnings"][0]["split"] == "train"


def test_rerun_is_up_to_date_without_heavy_imports_and_changes_are_seen(tmp_path, capsys):
    data = make_tone_dataset(tmp_path / "data", counts=SMALL)
    argv = _argv(data, tmp_path)
    assert prepare.main(argv) == 0
    stamp = (tmp_path / "out" / "dataset_dict.json").stat().st_mtime_ns
    capsys.readouterr()

    probe = (f"import sys\nfrom audio_vit.commands import prepare\ncode = prepare.main({argv!r})\n"
             "print(code, [m for m in ('torch', 'datasets', 'transformers') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr
    assert "is up to date (train: 12, validation: 6, test: 6)" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "0 []"
    assert (tmp_path / "out" / "dataset_dict.json").stat().st_mtime_ns == stamp  # nothing rewritten

    # another option, or a changed source file: not up to date; an existing folder then needs --overwrite
    assert prepare.main(argv + ["--top-db", "60"]) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    clip = data / "audio" / "test_high_0.wav"
    clip.write_bytes(clip.read_bytes() + b"\0\0")
    assert prepare.main(argv) == 1
    assert prepare.main(argv + ["--overwrite"]) == 0
    assert (tmp_path / "out" / "dataset_dict.json").stat().st_mtime_ns != stamp
    capsys.readouterr()
    assert prepare.main(argv + ["--quiet"]) == 0 and capsys.readouterr().out == ""  # up to date again
    assert prepare.main(argv + ["--force", "--overwrite"]) == 0
    assert "up to date" not in capsys.readouterr().out
