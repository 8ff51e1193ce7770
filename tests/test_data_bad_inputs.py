"""Every kind of bad input is skipped and reported (or fails with --strict), never dropped silently."""
import csv

import numpy as np
import pytest
import soundfile

from audio_vit import AudioViTFeatureExtractor
from audio_vit.commands import prepare
from audio_vit.data import DataArguments, DataError, build_datasets, build_manifest, column_values

RATE = 8000


def write_tone(path, freq, seconds=0.3):
    t = np.arange(int(seconds * RATE)) / RATE
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), RATE)


def write_csv(path, rows, fieldnames=("file_name", "label", "split")):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fieldnames))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def messy_dir(tmp_path):
    """Four good clips per class plus one of each bad case."""
    rows = []
    for label, freq in (("yes", 400), ("no", 900)):
        for i in range(4):
            name = f"{label}{i}.wav"
            write_tone(tmp_path / name, freq + 20 * i)
            rows.append({"file_name": name, "label": label, "split": "test" if i == 0 else "train"})
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage" * 20)
    (tmp_path / "empty.wav").write_bytes(b"")
    soundfile.write(tmp_path / "zero.wav", np.zeros(0, np.float32), RATE)
    soundfile.write(tmp_path / "nan.wav", np.full(2000, np.nan, np.float32), RATE, subtype="FLOAT")
    write_tone(tmp_path / "maybe.wav", 600)
    rows += [
        {"file_name": "corrupt.wav", "label": "yes", "split": "train"},
        {"file_name": "empty.wav", "label": "no", "split": "train"},
        {"file_name": "zero.wav", "label": "yes", "split": "train"},
        {"file_name": "nan.wav", "label": "no", "split": "train"},
        {"file_name": "missing.wav", "label": "yes", "split": "train"},
        {"file_name": "maybe.wav", "label": "maybe", "split": "train"},
    ]
    write_csv(tmp_path / "metadata.csv", rows)
    return tmp_path


EXPECTED_REASONS = {
    "corrupt.wav": "unreadable or corrupt audio",
    "empty.wav": "empty file (0 bytes)",
    "zero.wav": "zero-length audio (0 samples)",
    "nan.wav": "all samples are NaN/Inf",
    "missing.wav": "file listed in metadata.csv not found",
    "maybe.wav": "label 'maybe' is not in --labels (yes,no)",
}


def small_fe():
    return AudioViTFeatureExtractor(num_mel_bins=16, max_length=32)


def test_bad_inputs_are_skipped_and_reported(messy_dir):
    args = DataArguments(data_dir=str(messy_dir), labels="yes,no", validation_fraction=0.0,
                         cache_dir=str(messy_dir / "cache"))
    prepared = build_datasets(args, small_fe())
    reasons = {clip.file: clip.reason for clip in prepared.report.skipped}
    assert set(reasons) == set(EXPECTED_REASONS)
    for name, reason in EXPECTED_REASONS.items():
        assert reasons[name].startswith(reason), (name, reasons[name])
    stages = {clip.file: clip.stage for clip in prepared.report.skipped}
    assert stages["missing.wav"] == stages["maybe.wav"] == "metadata" and stages["nan.wav"] == "decode"
    assert {name: len(split) for name, split in prepared.splits.items()} == {"train": 6, "test": 2}
    assert "corrupt.wav" not in column_values(prepared.splits["train"], "file")
    summary = prepared.report.to_dict()
    assert summary["num_skipped"] == 6
    assert summary["skipped_by_reason"]["file listed in metadata.csv not found"] == 1
    assert "corrupt.wav" in prepared.report.format_table()


def test_strict_fails_instead(messy_dir):
    args = DataArguments(data_dir=str(messy_dir), labels="yes,no", strict=True, cache_dir=str(messy_dir / "cache"))
    with pytest.raises(DataError, match="missing.wav: file listed in metadata.csv not found"):
        build_datasets(args, small_fe())
    # metadata is fine but a file is corrupt: fails while decoding
    (messy_dir / "metadata.csv").unlink()
    write_csv(messy_dir / "metadata.csv", [{"file_name": "yes0.wav", "label": "yes", "split": "train"},
                                           {"file_name": "corrupt.wav", "label": "no", "split": "train"}])
    with pytest.raises(DataError, match="corrupt.wav: unreadable or corrupt"):
        build_datasets(args, small_fe())


def test_csv_without_needed_columns_lists_columns_and_options(tmp_path):
    write_tone(tmp_path / "a.wav", 300)
    write_csv(tmp_path / "metadata.csv", [{"slice_file_name": "a.wav", "classID": "3"}], ("slice_file_name", "classID"))
    with pytest.raises(DataError) as info:
        build_manifest(DataArguments(data_dir=str(tmp_path)))
    message = str(info.value)
    assert "slice_file_name, classID" in message and "--audio-column" in message
    with pytest.raises(DataError, match="no label column.*classID.*--label-column"):
        build_manifest(DataArguments(data_dir=str(tmp_path), audio_column="slice_file_name"))
    with pytest.raises(DataError, match="no fold column 'fold'.*--fold-column"):
        build_manifest(DataArguments(data_dir=str(tmp_path), audio_column="slice_file_name", label_column="classID",
                                     fold_column="fold"))
    manifest = build_manifest(DataArguments(data_dir=str(tmp_path), audio_column="slice_file_name",
                                            label_column="classID"))
    assert manifest.labels == ["3"]


def test_unknown_split_values_and_all_missing(tmp_path):
    write_tone(tmp_path / "a.wav", 300)
    write_csv(tmp_path / "metadata.csv", [{"file_name": "a.wav", "label": "x", "split": "holdout"}])
    with pytest.raises(DataError, match="split value 'holdout'.*accepted:.*validation"):
        build_manifest(DataArguments(data_dir=str(tmp_path)))
    write_csv(tmp_path / "metadata.csv", [{"file_name": "gone.wav", "label": "x", "split": "train"}])
    with pytest.raises(DataError, match="none of the 1 files listed"):
        build_manifest(DataArguments(data_dir=str(tmp_path)))


def test_prepare_cli_reports_skips_and_strict_exit_code(messy_dir, tmp_path, capsys):
    out = tmp_path / "out"
    common = ["--data-dir", str(messy_dir), "--labels", "yes,no", "--num-mel-bins", "16", "--max-length", "32",
              "--cache-dir", str(tmp_path / "cache")]
    assert prepare.main([*common, "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped: 6" in printed and "nan.wav" in printed
    assert prepare.main([*common, "--output-dir", str(tmp_path / "strict"), "--strict"]) == 2
    assert "--strict" in capsys.readouterr().err
