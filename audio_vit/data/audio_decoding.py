"""Decode audio files into float32 waveforms without a system FFmpeg.

Decoding order: `soundfile` (libsndfile >= 1.1 reads WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF, ...)
first, then PyAV (`pip install av`, or the `av` extra of audio-vit; its wheel ships its own FFmpeg) for
what libsndfile cannot open (M4A/AAC, WMA, WebM, ...). Integer PCM is scaled to [-1, 1], multichannel
audio is averaged to mono, and any sample rate is resampled with soxr.

    >>> waveform, sampling_rate = load_audio("clip.flac", sampling_rate=16000)  # (num_samples,), 16000

Recordings of hours are read in bounded memory by `iter_audio_blocks(path, sampling_rate)` (mono float32 blocks,
the same samples as `load_audio` then `resample`).
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
from typing import Any, Iterator, Union

import numpy as np
import soundfile

from ..models.audio_vit.audio_utils import pcm_to_float32, resample, to_mono

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


def _check_encoded_source(source: AudioSource, name: str) -> None:
    """Refuse what no decoder can read before trying: a missing file, a directory, 0 bytes, an empty dict."""
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
    _check_encoded_source(source, name)
    return _first_backend(name, lambda: _decode_soundfile(source), lambda: _decode_pyav(source))


def _first_backend(name: str, with_soundfile, with_pyav):
    """The result of the first backend that reads the source: soundfile, then PyAV (MP3 inside WAV, AAC, ...).

    Raises `AudioDecodeError` naming the source with every backend's reason when none can.
    """
    errors = []
    try:
        return with_soundfile()
    except Exception as error:  # libsndfile raises its own error types; any failure -> try the next backend
        errors.append(f"soundfile: {error}")
    if _pyav_available():
        try:
            return with_pyav()
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


# Samples decoded per block by `iter_audio_blocks`: 2**18 is 16 s at 16 kHz (about 1 MB of float32 per channel).
DEFAULT_BLOCK_SAMPLES = 1 << 18


def audio_duration(source: AudioSource) -> float | None:
    """Duration in seconds from the file's header (soundfile, then PyAV's container), without decoding; None if unknown."""
    info = audio_info(source)
    if info:
        return info["duration"]
    if not _pyav_available():
        return None
    import av

    try:
        with av.open(_open_bytes(source), mode="r") as container:
            return None if container.duration is None else container.duration / av.time_base
    except Exception:
        return None


def _soundfile_blocks(source: AudioSource, block_samples: int) -> tuple[int, Iterator[np.ndarray]]:
    """(sampling rate, iterator of (channels, n) float32 blocks) read by libsndfile; opening errors propagate."""
    handle = soundfile.SoundFile(_open_bytes(source))

    def blocks():
        with handle:
            for block in handle.blocks(blocksize=block_samples, dtype="float32", always_2d=True):
                yield np.ascontiguousarray(block.T)

    return int(handle.samplerate), blocks()


def _pyav_blocks(source: AudioSource, block_samples: int) -> tuple[int, Iterator[np.ndarray]]:
    """(sampling rate, iterator of (channels, n) float32 blocks) decoded by PyAV, frame by frame."""
    import av

    container = av.open(_open_bytes(source), mode="r")
    if not container.streams.audio:
        container.close()
        raise AudioDecodeError(describe_source(source), "no audio stream in the file")
    stream = container.streams.audio[0]

    def blocks():
        resampler = av.AudioResampler(format="fltp")  # planar float: integer formats scaled to [-1, 1]
        pending, count = [], 0
        with container:
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    pending.append(converted.to_ndarray())
                    count += pending[-1].shape[-1]
                if count >= block_samples:
                    yield np.concatenate(pending, axis=1).astype(np.float32, copy=False)
                    pending, count = [], 0
            pending.extend(converted.to_ndarray() for converted in resampler.resample(None))
        if pending:
            yield np.concatenate(pending, axis=1).astype(np.float32, copy=False)

    return int(stream.codec_context.sample_rate), blocks()


def _open_blocks(source: AudioSource, name: str, block_samples: int) -> tuple[int, Iterator[np.ndarray]]:
    """The first backend that opens `source` (soundfile, then PyAV), as in `decode_audio`."""
    return _first_backend(name, lambda: _soundfile_blocks(source, block_samples),
                          lambda: _pyav_blocks(source, block_samples))


def iter_audio_blocks(
    source: AudioSource,
    sampling_rate: int,
    block_samples: int = DEFAULT_BLOCK_SAMPLES,
    max_seconds: float | None = None,
) -> Iterator[np.ndarray]:
    """Decode a recording of any length block by block: mono float32 blocks at `sampling_rate`.

    The blocks concatenate to `resample(load_audio(source)[0], rate, sampling_rate)` (bit for bit: same decoder,
    same channel average, soxr's streaming resampler), while memory stays at about one block. Unlike
    `decode_audio`, what the C decoder prints (mpg123 resync lines) is not captured: a capture would hold the
    process-wide stderr lock for the whole recording.

    Args:
        source: path, bytes, file object or datasets audio dict with `bytes`/`path` (see `decode_audio`).
        sampling_rate (`int`): rate of the yielded blocks (soxr HQ streaming resampler when the file differs).
        block_samples (`int`, defaults to 2**18): samples decoded per block, at the file's rate.
        max_seconds (`float`, *optional*): refuse recordings longer than this (checked while decoding, so a
            header that lies cannot get past it).

    Raises `AudioDecodeError` naming the source: unreadable, 0 bytes or 0 samples, NaN/Inf samples, too long.
    """
    name = describe_source(source)
    if isinstance(source, dict) and source.get("array") is not None:
        raise AudioDecodeError(name, "an in-memory `array` needs no block reader; pass it to the extractor")
    _check_encoded_source(source, name)
    rate, blocks = _open_blocks(source, name, block_samples)
    yield from _resampled_blocks(_checked_mono_blocks(blocks, name, rate, max_seconds), rate, sampling_rate)


def _checked_mono_blocks(blocks: Iterator[np.ndarray], name: str, rate: int, max_seconds: float | None):
    """Decoded (channels, n) blocks -> mono blocks, refusing NaN/Inf, no samples, or more than `max_seconds`."""
    limit = None if max_seconds is None else int(max_seconds * rate)
    decoded = 0
    try:
        for block in blocks:
            mono = to_mono(block)
            decoded += mono.shape[-1]
            if limit is not None and decoded > limit:
                raise AudioDecodeError(name, f"longer than the limit of {max_seconds:g} s")
            if not np.isfinite(mono).all():
                raise AudioDecodeError(name, f"NaN/Inf samples in the block ending at {decoded / rate:.2f} s")
            yield mono
    except AudioDecodeError:
        raise
    except Exception as error:  # a decoder failing in the middle of a file: corrupt data
        raise AudioDecodeError(name, f"unreadable or corrupt audio after {decoded} samples ({error})") from error
    if decoded == 0:
        raise AudioDecodeError(name, "zero-length audio (0 samples)")


def _resampled_blocks(blocks: Iterator[np.ndarray], rate: int, sampling_rate: int) -> Iterator[np.ndarray]:
    """Mono blocks at `rate` -> blocks at `sampling_rate` (soxr's HQ streaming resampler: equal to `resample`)."""
    if rate == sampling_rate:
        yield from blocks
        return
    import soxr

    resampler = soxr.ResampleStream(rate, sampling_rate, 1, dtype="float32", quality="HQ")
    for block in blocks:
        yield resampler.resample_chunk(block, last=False)
    yield resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def iter_waveform_blocks(
    waveform: np.ndarray, rate: int, sampling_rate: int, block_samples: int = DEFAULT_BLOCK_SAMPLES
) -> Iterator[np.ndarray]:
    """A mono float32 waveform in memory at `rate` -> blocks at `sampling_rate`, as `iter_audio_blocks` gives a file's."""
    if rate <= 0 or sampling_rate <= 0:
        raise ValueError(f"sampling rates must be positive, got {rate} -> {sampling_rate}")
    slices = (waveform[start : start + block_samples] for start in range(0, len(waveform), block_samples))
    yield from _resampled_blocks(slices, rate, sampling_rate)
