"""Decoding: every common format on a pip-only machine, scaling, downmix, resampling, bad files."""
import numpy as np
import pytest
import soundfile

from audio_vit.data.audio_decoding import (
    AudioDecodeError,
    decode_audio,
    load_audio,
    pcm_to_float32,
    resample,
    to_mono,
)

RATE = 16000


def _tone(seconds=0.5, rate=RATE, freq=440.0, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(
    "extension,format,subtype",
    [
        ("wav", "WAV", "PCM_16"),
        ("flac", "FLAC", "PCM_16"),
        ("ogg", "OGG", "VORBIS"),
        ("mp3", "MP3", "MPEG_LAYER_III"),
    ],
)
def test_common_formats_decode_with_soundfile(tmp_path, extension, format, subtype):
    path = tmp_path / f"tone.{extension}"
    soundfile.write(path, _tone(), RATE, format=format, subtype=subtype)
    decoded = decode_audio(path)
    assert decoded.backend == "soundfile"
    assert decoded.sampling_rate == RATE
    # lossy codecs add/remove a few priming samples
    assert abs(decoded.waveform.shape[1] - RATE // 2) < 0.05 * RATE
    assert 0.3 < np.abs(decoded.waveform).max() < 0.7


def test_m4a_falls_back_to_pyav(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(_tone()[None, :], format="fltp", layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(Exception):
        soundfile.read(path)  # libsndfile cannot read AAC ...
    waveform, rate = load_audio(path)  # ... PyAV can
    assert rate == RATE
    assert abs(waveform.shape[0] - RATE // 2) < 0.1 * RATE
    assert 0.3 < np.abs(waveform).max() < 0.7


def test_int_pcm_is_scaled_and_stereo_downmixed_and_resampled(tmp_path):
    left = (_tone(rate=44100) * 32767).astype(np.int16)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)  # (T, 2)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 44100, subtype="PCM_16")
    waveform, rate = load_audio(path, sampling_rate=RATE)
    assert rate == RATE and waveform.ndim == 1
    assert abs(waveform.shape[0] - RATE // 2) <= 2
    # average of a 0.5-amplitude tone and silence
    assert np.abs(waveform).max() == pytest.approx(0.25, abs=0.02)
    keep, _ = load_audio(path, mono=False)
    assert keep.shape[0] == 2


def test_bytes_and_audio_dicts(tmp_path):
    path = tmp_path / "a.flac"
    soundfile.write(path, _tone(), RATE)
    data = path.read_bytes()
    from_bytes, _ = load_audio(data)
    from_dict, _ = load_audio({"bytes": data, "path": "a.flac"})
    from_path_dict, _ = load_audio({"bytes": None, "path": str(path)})
    np.testing.assert_allclose(from_bytes, from_dict)
    np.testing.assert_allclose(from_bytes, from_path_dict)
    array, rate = load_audio({"array": (_tone() * 32767).astype(np.int16), "sampling_rate": RATE}, sampling_rate=8000)
    assert rate == 8000 and array.dtype == np.float32 and np.abs(array).max() <= 1.0


def test_helpers():
    assert pcm_to_float32(np.array([-32768, 0, 16384], dtype=np.int16)).tolist() == [-1.0, 0.0, 0.5]
    assert pcm_to_float32(np.array([0, 128, 255], dtype=np.uint8))[1] == 0.0
    assert to_mono(np.ones((3, 10), dtype=np.float32)).shape == (10,)
    assert resample(_tone(rate=8000), 8000, 16000).shape == (8000,)
    assert resample(np.zeros((2, 800), np.float32), 8000, 16000).shape == (2, 1600)


def test_bad_files_raise_clear_errors(tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioDecodeError, match="file not found"):
        load_audio(missing)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty file"):
        load_audio(empty)
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"this is not audio" * 50)
    with pytest.raises(AudioDecodeError, match="unreadable or corrupt") as info:
        load_audio(corrupt)
    assert "corrupt.flac" in str(info.value)
    zero = tmp_path / "zero.wav"
    soundfile.write(zero, np.zeros(0, np.float32), RATE)
    with pytest.raises(AudioDecodeError, match="zero-length"):
        load_audio(zero)
    nan = tmp_path / "nan.wav"
    soundfile.write(nan, np.full(800, np.nan, np.float32), RATE, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match="all samples are NaN"):
        load_audio(nan)
    with pytest.raises(AudioDecodeError, match="empty file"):
        load_audio(b"")
