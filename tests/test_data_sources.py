"""Sources: audiofolder metadata CSV (FSDD), remapped CSV columns (UrbanSound8K layout), class folders,
and a save_to_disk Hugging Face dataset with an Audio column."""
import csv

import datasets
import numpy as np
import pytest
import soundfile

from audio_vit import AudioViTFeatureExtractor
from audio_vit.data import DataArguments, DataError, build_datasets, build_manifest, column_values
from audio_vit.data.splits import assign_splits, check_disjoint

RATE = 8000


def write_tone(path, seconds=0.3, freq=440.0, rate=RATE, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    soundfile.write(path, np.stack([tone] * channels, axis=1) if channels > 1 else tone, rate)
    return path


def small_fe():
    return AudioViTFeatureExtractor(num_mel_bins=16, max_length=32)


def test_fsdd_official_split_and_labels(fsdd_dir):
    args = DataArguments(data_dir=str(fsdd_dir), validation_fraction=0.0)
    manifest = build_manifest(args)
    assert len(manifest) == 3000 and not manifest.skipped
    assert manifest.label_names == [str(d) for d in range(10)]
    splits, strategy = assign_splits(manifest, args)
    assert strategy == "column"
    assert {name: len(rows) for name, rows in splits.items()} == {"train": 2700, "test": 300}
    # takes 0-4 of every speaker and digit are the official test set
    assert all(manifest.files[i].rsplit("_", 1)[1].split(".")[0] in {"0", "1", "2", "3", "4"} for i in splits["test"])


def test_fsdd_validation_is_carved_from_train_not_test(fsdd_dir):
    args = DataArguments(data_dir=str(fsdd_dir))  # validation_fraction=0.1 by default
    manifest = build_manifest(args)
    splits, _ = assign_splits(manifest, args)
    assert {name: len(rows) for name, rows in splits.items()} == {"train": 2430, "validation": 270, "test": 300}
    check_disjoint(splits)
    assert all(manifest.splits[i] == "train" for i in splits["validation"])
    labels = np.array(manifest.labels)
    assert set(np.unique(labels[splits["validation"]], return_counts=True)[1]) == {27}  # stratified


def test_remapped_csv_columns_with_fold_subfolders(tmp_path):
    """UrbanSound8K layout: metadata/UrbanSound8K.csv, audio/fold{N}/<slice_file_name>, classID labels."""
    rows = []
    for fold in (1, 2, 3):
        for class_id in (0, 1):
            name = f"{fold}{class_id}-a.wav"
            write_tone(tmp_path / "audio" / f"fold{fold}" / name, freq=300 + 200 * class_id)
            rows.append({"slice_file_name": name, "fsID": fold, "fold": fold, "classID": class_id})
    (tmp_path / "metadata").mkdir()
    with open(tmp_path / "metadata" / "UrbanSound8K.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    common = dict(data_dir=str(tmp_path), metadata_file="metadata/UrbanSound8K.csv", audio_column="slice_file_name",
                  label_column="classID", fold_column="fold", test_fold="3", cache_dir=str(tmp_path / "cache"))
    with_template = build_manifest(DataArguments(audio_subdir_template="audio/fold{fold}", **common))
    searched = build_manifest(DataArguments(**common))  # no template: file names are found in the fold folders
    assert with_template.audio["audio"][:] == searched.audio["audio"][:]
    assert len(with_template) == 6 and with_template.label_names == ["0", "1"]
    prepared = build_datasets(DataArguments(audio_subdir_template="audio/fold{fold}", validation_fold="2", **common),
                              small_fe())
    assert prepared.report.split_strategy == "kfold"
    assert {name: len(split) for name, split in prepared.splits.items()} == {"train": 2, "validation": 2, "test": 2}
    assert all(f.startswith("3") for f in column_values(prepared.splits["test"], "file"))

    with pytest.raises(DataError, match=r"cannot be filled.*\{slice_file_name\}"):
        build_manifest(DataArguments(audio_subdir_template="audio/fold{nope}", **common))


def test_class_per_subfolder(tmp_path):
    for label, freq in (("bird", 2000), ("car", 200), ("rain", 900)):
        for i in range(5):
            write_tone(tmp_path / "clips" / label / f"{label}{i}.wav", freq=freq + 10 * i, channels=2)
    (tmp_path / "clips" / "car" / "notes.txt").write_text("not audio")
    args = DataArguments(data_dir=str(tmp_path / "clips"), test_fraction=0.2, validation_fraction=0.25,
                         cache_dir=str(tmp_path / "cache"))
    prepared = build_datasets(args, small_fe())
    assert prepared.id2label == {0: "bird", 1: "car", 2: "rain"}
    assert prepared.report.split_strategy == "random"
    assert {name: len(split) for name, split in prepared.splits.items()} == {"train": 9, "validation": 3, "test": 3}
    assert [clip.file for clip in prepared.report.skipped] == ["car/notes.txt"]
    # stored compactly as float16; the numpy format hands out float32 arrays
    assert prepared.splits["train"].features["input_values"] == datasets.Array2D((16, 32), "float16")
    assert prepared.splits["train"][0]["input_values"].shape == (16, 32)


def test_class_folders_inside_split_folders(tmp_path):
    for split, count in (("train", 4), ("test", 2)):
        for label in ("a", "b"):
            for i in range(count):
                write_tone(tmp_path / split / label / f"{i}.flac", freq=300 if label == "a" else 700)
    manifest = build_manifest(DataArguments(data_dir=str(tmp_path)))
    assert sorted(set(manifest.splits)) == ["test", "train"]
    # the same folder given as --dataset is read the same way (not via datasets' audiofolder + torchcodec)
    assert build_manifest(DataArguments(dataset=str(tmp_path))).files == manifest.files
    splits, strategy = assign_splits(manifest, DataArguments(data_dir=str(tmp_path), validation_fraction=0.25))
    assert strategy == "column"
    assert {name: len(rows) for name, rows in splits.items()} == {"train": 6, "validation": 2, "test": 4}


def _save_hf_dataset(tmp_path, stored_as_bytes=True):
    names = ["low", "high"]
    audio, labels, speakers = [], [], []
    for i in range(8):
        path = write_tone(tmp_path / "src" / f"{i}.wav", freq=300 if i % 2 == 0 else 1500, rate=22050)
        audio.append({"bytes": path.read_bytes(), "path": path.name} if stored_as_bytes else {"bytes": None, "path": str(path)})
        labels.append(i % 2)
        speakers.append(f"s{i // 2}")
    # Encoding through an Audio feature needs torchcodec; an {bytes, path} struct cast to Audio does not.
    features = datasets.Features({"audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                  "label": datasets.ClassLabel(names=names), "speaker": datasets.Value("string")})
    data = datasets.Dataset.from_dict({"audio": audio, "label": labels, "speaker": speakers}, features=features)
    data = data.cast_column("audio", datasets.Audio())
    dataset_dict = datasets.DatasetDict({"train": data.select(range(6)), "test": data.select(range(6, 8))})
    dataset_dict.save_to_disk(str(tmp_path / "hf"))
    return tmp_path / "hf"


def test_save_to_disk_dataset_with_audio_column(tmp_path):
    path = _save_hf_dataset(tmp_path)
    args = DataArguments(dataset=str(path), validation_fraction=0.34, cache_dir=str(tmp_path / "cache"))
    prepared = build_datasets(args, small_fe())
    # ClassLabel names keep the dataset's own id order
    assert prepared.id2label == {0: "low", 1: "high"}
    assert {name: len(split) for name, split in prepared.splits.items()} == {"train": 4, "validation": 2, "test": 2}
    assert set(prepared.report.sampling_rates) == {22050}  # decoded by us, resampled to 16 kHz
    assert column_values(prepared.splits["test"], "labels") == [0, 1]
    # group column from the dataset: no speaker in two splits
    grouped = build_datasets(DataArguments(dataset=str(path), split_strategy="group", group_column="speaker",
                                           test_fraction=0.25, validation_fraction=0.0,
                                           cache_dir=str(tmp_path / "cache")), small_fe())
    train_files = set(column_values(grouped.splits["train"], "file"))
    test_files = set(column_values(grouped.splits["test"], "file"))
    assert train_files and test_files and not train_files & test_files


def test_source_argument_errors(tmp_path):
    with pytest.raises(DataError, match="exactly one source"):
        build_manifest(DataArguments())
    with pytest.raises(DataError, match="not a folder"):
        build_manifest(DataArguments(data_dir=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither a metadata.csv nor class subfolders"):
        build_manifest(DataArguments(data_dir=str(tmp_path / "empty")))
    with pytest.raises(ValueError, match="split_strategy='nope'"):
        DataArguments(split_strategy="nope")
