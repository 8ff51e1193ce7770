"""FSDD: locating it, downloading the archive (from a local HTTP server), the official split, and a short
real training run with an accuracy floor."""
from __future__ import annotations

import csv
import http.server
import io
import threading
import zipfile

import numpy as np
import pytest
import soundfile as sf

from audio_vit.data import fsdd


def _fake_archive(num_speakers=2, takes=7) -> bytes:
    """A zip laid out like GitHub's master.zip of free-spoken-digit-dataset, with tiny WAVs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("free-spoken-digit-dataset-master/README.md", "FSDD")
        zf.writestr("free-spoken-digit-dataset-master/utils/spectogramer.py", "# not a recording")
        for speaker in ["george", "jackson"][:num_speakers]:
            for digit in range(2):
                for take in range(takes):
                    wav = io.BytesIO()
                    sf.write(wav, np.zeros(400, dtype=np.float32), 8000, format="WAV")
                    zf.writestr(f"free-spoken-digit-dataset-master/recordings/{digit}_{speaker}_{take}.wav", wav.getvalue())
    return buffer.getvalue()


@pytest.fixture
def http_server():
    """Serves {path: bytes} on 127.0.0.1; yields (base_url, routes)."""
    routes: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", routes
    server.shutdown()


@pytest.fixture
def no_fsdd_anywhere(tmp_path, monkeypatch):
    """Point every search location at empty folders."""
    monkeypatch.delenv("FSDD_DIR", raising=False)
    monkeypatch.setenv("AUDIO_VIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(fsdd, "_checkout_data_dir", lambda: tmp_path / "beside-checkout" / "fsdd")
    return tmp_path


def test_download_builds_metadata_with_the_official_split(http_server, no_fsdd_anywhere, monkeypatch):
    base, routes = http_server
    routes["/fsdd.zip"] = _fake_archive()
    monkeypatch.setenv("FSDD_URL", f"{base}/fsdd.zip")
    root = fsdd.ensure_fsdd()
    assert root == no_fsdd_anywhere / "cache" / "audio_vit" / "fsdd"
    rows = list(csv.DictReader(open(root / "metadata.csv")))
    assert len(rows) == 2 * 2 * 7 and len(list((root / "recordings").glob("*.wav"))) == 28
    for row in rows:
        assert (root / row["file_name"]).is_file()
        assert row["split"] == ("test" if int(row["index"]) <= 4 else "train")
        assert row["label"] == row["file_name"].split("/")[-1][0]
    assert sum(r["split"] == "test" for r in rows) == 2 * 2 * 5
    # found again without downloading
    routes.clear()
    assert fsdd.ensure_fsdd() == root
    assert fsdd.locate_fsdd() == root


def test_download_into_explicit_dir_with_url_argument(http_server, no_fsdd_anywhere):
    base, routes = http_server
    routes["/other.zip"] = _fake_archive(num_speakers=1, takes=5)
    target = no_fsdd_anywhere / "mine" / "fsdd"
    assert fsdd.ensure_fsdd(target, url=f"{base}/other.zip") == target
    assert (target / "metadata.csv").is_file() and not list(target.parent.glob(".fsdd-download-*"))


def test_download_errors_are_clear(http_server, no_fsdd_anywhere):
    base, routes = http_server
    with pytest.raises(ConnectionError, match="could not download FSDD from .*/missing.zip"):
        fsdd.ensure_fsdd(url=f"{base}/missing.zip")
    routes["/notzip"] = b"<html>not a zip</html>"
    with pytest.raises(ValueError, match="not a zip"):
        fsdd.ensure_fsdd(url=f"{base}/notzip")
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("x/README.md", "nothing")
    routes["/empty.zip"] = empty.getvalue()
    with pytest.raises(ValueError, match="no recordings"):
        fsdd.ensure_fsdd(url=f"{base}/empty.zip")
    with pytest.raises(FileNotFoundError, match="FSDD not found"):
        fsdd.ensure_fsdd(download=False)
    assert not (no_fsdd_anywhere / "cache" / "audio_vit" / "fsdd").exists()  # nothing half-written


def test_search_order_env_vars_then_checkout(tmp_path, monkeypatch, no_fsdd_anywhere):
    env_dir = tmp_path / "env" / "fsdd"
    data_dir = tmp_path / "data" / "fsdd"
    for folder in (env_dir, data_dir):
        (folder / "recordings").mkdir(parents=True)
        sf.write(folder / "recordings" / "3_theo_2.wav", np.zeros(80, dtype=np.float32), 8000)
    assert fsdd.locate_fsdd() == data_dir  # $AUDIO_VIT_DATA_DIR/fsdd
    assert (data_dir / "metadata.csv").read_text().splitlines()[1] == "recordings/3_theo_2.wav,3,theo,2,test"
    monkeypatch.setenv("FSDD_DIR", str(env_dir))
    assert fsdd.locate_fsdd() == env_dir  # $FSDD_DIR first
    assert fsdd.locate_fsdd(data_dir) == data_dir  # an explicit folder wins
    with pytest.raises(FileNotFoundError, match="nowhere"):
        fsdd.locate_fsdd(tmp_path / "nowhere")


def test_bad_recording_name():
    with pytest.raises(ValueError, match="'hello.wav'"):
        fsdd.parse_recording_name("hello.wav")
    assert fsdd.parse_recording_name("7_yweweler_49.wav") == (7, "yweweler", 49)


def test_real_fsdd_is_found_beside_the_checkout(fsdd_dir):
    rows = list(csv.DictReader(open(fsdd_dir / "metadata.csv")))
    assert len(rows) == 3000 and sum(r["split"] == "test" for r in rows) == 300
