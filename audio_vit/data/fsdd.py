"""Find (or fetch) the Free Spoken Digit Dataset (FSDD) for the demo, the recipes and the tests.

FSDD is 3,000 recordings of spoken digits at 8 kHz (6 speakers x 10 digits x 50 takes), named
`{digit}_{speaker}_{index}.wav`. Its official split puts takes 0-4 of every speaker and digit in the test set.

Search order of `locate_fsdd` (the first folder holding a `metadata.csv` or a `recordings/` folder wins):

1. the `data_dir` argument;
2. `$FSDD_DIR`;
3. `$AUDIO_VIT_DATA_DIR/fsdd`;
4. `../shared/data/fsdd` next to the checkout (the folder that holds this repository);
5. the user cache: `$XDG_CACHE_HOME/audio_vit/fsdd` (default `~/.cache/audio_vit/fsdd`).

`ensure_fsdd` downloads the public archive (GitHub `Jakobovski/free-spoken-digit-dataset`, master zip, or
`$FSDD_URL`) into the user cache when none is found, and writes `metadata.csv` in the audiofolder layout
(`file_name,label,speaker,index,split`) that `audio_vit.data` reads.
"""
from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.zip"
FSDD_URL_ENV = "FSDD_URL"
FSDD_SAMPLING_RATE = 8000
# Takes 0-4 of every (speaker, digit) are the official test set (the dataset's README).
OFFICIAL_TEST_TAKES = range(0, 5)
AUDIO_SUFFIXES = (".wav", ".flac")
_RECORDING_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[A-Za-z]+)_(?P<index>\d+)$")
METADATA_COLUMNS = ("file_name", "label", "speaker", "index", "split")


def _checkout_data_dir() -> Path:
    # audio_vit/data/fsdd.py -> repository root -> the folder next to it
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fsdd"


def user_cache_dir() -> Path:
    """Where a downloaded FSDD is kept: `$XDG_CACHE_HOME/audio_vit/fsdd` (default `~/.cache/audio_vit/fsdd`)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "audio_vit" / "fsdd"


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The folders `locate_fsdd` tries, in order, each with where it came from."""
    candidates = []
    if data_dir:
        candidates.append(("argument", Path(data_dir)))
    if os.environ.get("FSDD_DIR"):
        candidates.append(("$FSDD_DIR", Path(os.environ["FSDD_DIR"])))
    if os.environ.get("AUDIO_VIT_DATA_DIR"):
        candidates.append(("$AUDIO_VIT_DATA_DIR/fsdd", Path(os.environ["AUDIO_VIT_DATA_DIR"]) / "fsdd"))
    candidates.append(("../shared/data/fsdd next to the checkout", _checkout_data_dir()))
    candidates.append(("user cache", user_cache_dir()))
    return candidates


def _is_fsdd_dir(path: Path) -> bool:
    return (path / "metadata.csv").is_file() or (path / "recordings").is_dir()


def locate_fsdd(data_dir: str | os.PathLike | None = None) -> Path | None:
    """Return the first FSDD folder found (see the module docstring for the order), or `None`.

    An explicit `data_dir` that does not hold FSDD raises `FileNotFoundError` instead of silently
    falling back to another copy. A folder with recordings but no `metadata.csv` gets one written.
    """
    if data_dir and not _is_fsdd_dir(Path(data_dir)):
        raise FileNotFoundError(
            f"FSDD data_dir={str(data_dir)!r} holds neither metadata.csv nor a recordings/ folder; "
            "point it at the folder that contains them, or leave it unset to search the default locations"
        )
    for origin, path in candidate_dirs(data_dir):
        if _is_fsdd_dir(path):
            logger.info("FSDD found at %s (%s)", path, origin)
            if not (path / "metadata.csv").is_file():
                write_metadata(path)
            return path
    return None


def parse_recording_name(name: str) -> tuple[int, str, int]:
    """`'3_jackson_17.wav'` -> `(3, 'jackson', 17)`; raises `ValueError` on other names."""
    match = _RECORDING_NAME.match(Path(name).stem)
    if match is None:
        raise ValueError(f"{name!r} is not an FSDD recording name; expected '{{digit}}_{{speaker}}_{{index}}.wav'")
    return int(match["digit"]), match["speaker"], int(match["index"])


def write_metadata(root: str | os.PathLike) -> Path:
    """Write `root/metadata.csv` (audiofolder layout, official split) for the recordings under `root/recordings`."""
    root = Path(root)
    recordings = sorted(p for p in (root / "recordings").glob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not recordings:
        raise FileNotFoundError(f"no .wav/.flac recordings under {root / 'recordings'}")
    rows = []
    for path in recordings:
        digit, speaker, index = parse_recording_name(path.name)
        split = "test" if index in OFFICIAL_TEST_TAKES else "train"
        rows.append((f"recordings/{path.name}", digit, speaker, index, split))
    tmp = root / "metadata.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(METADATA_COLUMNS)
        writer.writerows(rows)
    os.replace(tmp, root / "metadata.csv")
    return root / "metadata.csv"


def download_fsdd(target_dir: str | os.PathLike, url: str | None = None, timeout: float = 60.0) -> Path:
    """Download the FSDD zip from `url` (default `$FSDD_URL` or the GitHub master zip) into `target_dir`.

    The archive's `recordings/*.wav` land in `target_dir/recordings/` and `metadata.csv` is written. The
    folder appears atomically (extracted next to it, then renamed), so an interrupted download leaves nothing
    half-written behind.
    """
    url = url or os.environ.get(FSDD_URL_ENV) or FSDD_URL
    target_dir = Path(target_dir)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir.parent, prefix=".fsdd-download-") as tmp:
        archive = Path(tmp) / "fsdd.zip"
        logger.info("downloading FSDD from %s", url)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as err:  # URLError and HTTPError are OSErrors
            raise ConnectionError(
                f"could not download FSDD from {url}: {err}. Put the dataset in one of "
                f"{[str(p) for _, p in candidate_dirs()]} or set FSDD_DIR / {FSDD_URL_ENV}"
            ) from err
        staging = Path(tmp) / "fsdd"
        (staging / "recordings").mkdir(parents=True)
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [
                    m for m in zf.namelist()
                    if "/recordings/" in f"/{m}" and Path(m).suffix.lower() in AUDIO_SUFFIXES
                ]
                for member in members:
                    with zf.open(member) as src, open(staging / "recordings" / Path(member).name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        except zipfile.BadZipFile as err:
            raise ValueError(f"the file downloaded from {url} is not a zip archive: {err}") from err
        if not members:
            raise ValueError(f"the archive from {url} has no recordings/*.wav files; is it the FSDD archive?")
        write_metadata(staging)
        if target_dir.exists():
            shutil.rmtree(target_dir)
        os.replace(staging, target_dir)
    logger.info("FSDD: %d recordings written to %s", len(members), target_dir)
    return target_dir


def ensure_fsdd(data_dir: str | os.PathLike | None = None, download: bool = True, url: str | None = None) -> Path:
    """`locate_fsdd`, or download FSDD into `data_dir` (if given) or the user cache when it is nowhere to be found."""
    if data_dir and not _is_fsdd_dir(Path(data_dir)):
        if not download:
            locate_fsdd(data_dir)  # raises the FileNotFoundError naming data_dir
        return download_fsdd(data_dir, url=url)
    found = locate_fsdd(data_dir)
    if found is not None:
        return found
    if not download:
        raise FileNotFoundError(
            "FSDD not found in any of: "
            + "; ".join(f"{p} ({origin})" for origin, p in candidate_dirs())
            + ". Set FSDD_DIR, or allow the download."
        )
    return download_fsdd(user_cache_dir(), url=url)
