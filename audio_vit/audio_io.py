"""Decode audio files into float32 waveforms without a system FFmpeg.

Decoding order: `soundfile` (libsndfile >= 1.1 reads WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF, ...)
first, then PyAV (`pip install av`, or the `av` extra of audio-vit; its wheel ships its own FFmpeg) for
what libsndfile cannot open (M4A/AAC, WMA, WebM, ...). Integer PCM is scaled to [-1, 1], multichannel
audio is averaged to mono, and any sample rate is resampled with soxr.

    >>> waveform, sampling_rate = load_audio("clip.flac", sampling_rate=16000)  # (num_samples,), 16000
"""
from __future__ import annotations

import io
import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import soundfile

from .audio_utils import pcm_to_float32, resample, to_mono  # re-exported: decoding callers use them

AudioSource = Union[str, os.PathLike, bytes, dict, io.IOBase]

# Extensions collected when a directory is scanned for audio files (lower case, with the dot).
AUDIO_EXTENSIONS = (
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf",
    ".w64", ".m4a", ".aac", ".mp4", ".wma", ".webm", ".mka",
)


class AudioDecodeError(ValueError):
    """An audio file could not be turned into a usable waveform; `reason` says why in a few words."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass
class DecodedAudio:
    """A decoded clip before any conversion: `waveform` is (channels, num_samples) float32."""

    waveform: np.ndarray
    sampling_rate: int
    backend: str
    warnings: list[str] = field(default_factory=list)  # what the decoder library printed (e.g. mpg123 resyncs)

    @property
    def duration(self) -> float:
        return self.waveform.shape[-1] / float(self.sampling_rate)


def describe_source(source: AudioSource) -> str:
    """Short name of a source for messages: the path, or `<N bytes>` for in-memory audio."""
    if isinstance(source, dict):
        if source.get("path"):
            return str(source["path"])
        if source.get("bytes") is not None:
            return f"<{len(source['bytes'])} bytes>"
        return "<array>"
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return repr(source)


def _pyav_available() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def _open_bytes(source: AudioSource):
    """Return something both backends can read: a path string or a fresh BytesIO."""
    if isinstance(source, dict):
        if source.get("bytes") is not None:
            return io.BytesIO(source["bytes"])
        return os.fspath(source["path"])
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    source.seek(0)
    return source


_STDERR_LOCK = threading.Lock()


@contextmanager
def capture_native_stderr():
    """Collect what C libraries write to file descriptor 2 (libsndfile's mpg123 prints "Illegal Audio-MPEG-Header"
    lines there) into the yielded list of lines, instead of the terminal. One capture at a time per process."""
    lines: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(line for line in sink.read().decode("utf-8", errors="replace").splitlines() if line.strip())


def _decode_soundfile(source: AudioSource) -> DecodedAudio:
    with capture_native_stderr() as printed:
        data, sampling_rate = soundfile.read(_open_bytes(source), dtype="float32", always_2d=True)
    return DecodedAudio(np.ascontiguousarray(data.T), int(sampling_rate), "soundfile", printed)  # (C, T)


def _decode_pyav(source: AudioSource) -> DecodedAudio:
    import av

    with av.open(_open_bytes(source), mode="r") as container:
        if not container.streams.audio:
            raise AudioDecodeError(describe_source(source), "no audio stream in the file")
        stream = container.streams.audio[0]
        # Planar float output scales every integer sample format to [-1, 1] for us.
        resampler = av.AudioResampler(format="fltp")
        chunks, sampling_rate = [], stream.codec_context.sample_rate
        for frame in container.decode(stream):
            for converted in resampler.resample(frame):
                chunks.append(converted.to_ndarray())  # (C, n)
                sampling_rate = converted.sample_rate
        for converted in resampler.resample(None):
            chunks.append(converted.to_ndarray())
    if not chunks:
        # FFmpeg probes almost anything as *some* format; nothing decoded after libsndfile failed means garbage.
        raise RuntimeError("no audio frames could be decoded")
    return DecodedAudio(np.concatenate(chunks, axis=1).astype(np.float32, copy=False), int(sampling_rate), "pyav")


def decode_audio(source: AudioSource) -> DecodedAudio:
    """Decode `source` (path, bytes, file object, or a datasets `Audio(decode=False)` dict with
    `bytes`/`path`, or a dict with `array` + `sampling_rate`) to (channels, num_samples) float32.

    Raises `AudioDecodeError` naming the source when no backend can read it.
    """
    name = describe_source(source)
    if isinstance(source, dict) and source.get("array") is not None:
        if not source.get("sampling_rate"):
            raise AudioDecodeError(name, "an `array` entry needs a `sampling_rate`")
        array = pcm_to_float32(np.asarray(source["array"]))
        array = array[None, :] if array.ndim == 1 else array
        return DecodedAudio(array, int(source["sampling_rate"]), "array")
    if isinstance(source, dict) and source.get("bytes") is None and not source.get("path"):
        raise AudioDecodeError(name, "audio entry has neither `bytes` nor `path`")
    path = None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
    elif isinstance(source, dict) and source.get("bytes") is None:
        path = Path(source["path"])
    if path is not None:
        if not path.exists():
            raise AudioDecodeError(name, "file not found")
        if path.is_dir():
            raise AudioDecodeError(name, "is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise AudioDecodeError(name, "empty file (0 bytes)")
    else:
        payload = source.get("bytes") if isinstance(source, dict) else source
        if isinstance(payload, (bytes, bytearray)) and len(payload) == 0:
            raise AudioDecodeError(name, "empty file (0 bytes)")

    errors = []
    try:
        return _decode_soundfile(source)
    except Exception as error:  # libsndfile raises its own error types; any failure -> try the next backend
        errors.append(f"soundfile: {error}")
    if _pyav_available():
        try:
            return _decode_pyav(source)
        except AudioDecodeError:
            raise
        except Exception as error:
            errors.append(f"pyav: {error}")
    else:
        errors.append("pyav: not installed (pip install av) for formats libsndfile cannot read")
    raise AudioDecodeError(name, "unreadable or corrupt audio (" + "; ".join(errors) + ")")


def check_waveform(waveform: np.ndarray, name: str) -> np.ndarray:
    """Reject clips that would give a meaningless spectrogram: no samples, or NaN/Inf samples."""
    if waveform.shape[-1] == 0:
        raise AudioDecodeError(name, "zero-length audio (0 samples)")
    finite = np.isfinite(waveform)
    if not finite.all():
        bad = int(finite.size - finite.sum())
        what = "all samples are NaN/Inf" if bad == finite.size else f"{bad} of {finite.size} samples are NaN/Inf"
        raise AudioDecodeError(name, what)
    return waveform


def load_audio(source: AudioSource, sampling_rate: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Decode, check, downmix and resample one clip.

    Args:
        source: path, bytes, file object or datasets audio dict (see `decode_audio`).
        sampling_rate (int, optional, default None): target rate; None keeps the file's rate.
        mono (bool, default True): average channels to a (num_samples,) waveform; False keeps (channels, num_samples).

    Returns:
        (waveform float32, sampling_rate int).
    """
    decoded = decode_audio(source)
    waveform = check_waveform(decoded.waveform, describe_source(source))
    if mono:
        waveform = to_mono(waveform)
    rate = decoded.sampling_rate
    if sampling_rate is not None and sampling_rate != rate:
        waveform = resample(waveform, rate, sampling_rate)
        rate = sampling_rate
    return waveform, rate


def audio_info(source: AudioSource) -> dict[str, Any]:
    """Cheap header read (soundfile only): sampling_rate, channels, frames, duration; {} if unknown."""
    try:
        info = soundfile.info(_open_bytes(source))
    except Exception:
        return {}
    return {
        "sampling_rate": int(info.samplerate),
        "channels": int(info.channels),
        "frames": int(info.frames),
        "duration": float(info.duration),
    }
