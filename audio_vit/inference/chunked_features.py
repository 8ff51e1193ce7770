"""Log-mel features of a recording of any length, chunk by chunk, in bounded memory.

`iter_feature_chunks` yields a recording's `input_values` as consecutive `(num_mel_bins, n)` chunks that
concatenate to what the feature extractor gives for the whole recording at once
(`extractor(waveform, padding="longest", truncation=False)`), to float32 rounding:

- each chunk is computed by the extractor itself on the samples its frames see, starting a few frames early so
  that no kept frame sees the zeros the extractor pads a segment with on the left (only the recording's own
  start and end see padding, as on the whole recording);
- `top_db` clipping is relative to the loudest frame of the *whole* recording, so a recording longer than one
  chunk is read twice: a first pass finds that maximum, the second yields the clipped, normalised chunks
  (the kaldi frontend and `top_db=None` need one pass).

A recording that fits in one chunk goes through the extractor in one call, exactly as before.
"""
from __future__ import annotations

import copy
import itertools
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

# Frames per chunk: 16384 frames is 164 s at a 10 ms hop; the extractor's intermediates for it are ~30 MB.
DEFAULT_CHUNK_FRAMES = 16384

BlockSource = Callable[[], Iterable[np.ndarray]]  # returns a fresh iterator of mono float32 blocks at the extractor's rate


def _log_mel(extractor, samples: np.ndarray, **options) -> torch.Tensor:
    """The extractor on one mono segment at its own rate -> `(num_mel_bins, frames)`."""
    return extractor(
        samples, sampling_rate=extractor.sampling_rate, padding="longest", truncation=False, return_tensors="pt",
        **options,
    )["input_values"][0]


def iter_db_chunks(extractor, blocks: Iterable[np.ndarray], chunk_frames: int) -> Iterator[torch.Tensor]:
    """Log-mel dB of a stream of mono blocks, `chunk_frames` frames at a time, as the extractor computes them.

    Args:
        extractor: an `AudioViTFeatureExtractor` (its `top_db` clipping applies per chunk: pass a copy with
            `top_db=None` to get values equal to the whole recording's before clipping).
        blocks: mono float32 sample blocks at `extractor.sampling_rate`, any sizes.
        chunk_frames (`int`): frames per yielded chunk (the last chunk holds the rest).

    Yields un-normalised `(num_mel_bins, n)` float32 tensors; all of them together are the recording's frames.
    """
    hop = extractor.hop_length
    half = 0 if extractor.frontend == "kaldi" else extractor.n_fft // 2  # librosa's centre padding
    lead = -(-half // hop)  # frames whose window reaches left of their segment's start
    # The samples held: blocks appended as they come and joined once per chunk (joining on every block would copy
    # the whole held buffer each time: quadratic in the blocks of a chunk). `held[0]` starts at sample `held_from`.
    held: list[np.ndarray] = []
    held_from, next_frame, total = 0, 0, 0

    def chunk(buffered: np.ndarray, first: int, count: int, end: int) -> torch.Tensor:
        early = min(lead, first)  # frames computed only so the kept ones see real samples on their left
        start = (first - early) * hop
        return _log_mel(extractor, buffered[start - held_from : end - held_from], do_normalize=False)[
            :, early : early + count
        ]

    def joined() -> np.ndarray:
        return held[0] if len(held) == 1 else np.concatenate(held)

    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        total += len(block)
        held.append(block)
        if total < extractor.samples_for(next_frame + chunk_frames):
            continue
        buffered = joined()
        while total >= extractor.samples_for(next_frame + chunk_frames):
            yield chunk(buffered, next_frame, chunk_frames, extractor.samples_for(next_frame + chunk_frames))
            next_frame += chunk_frames
            keep_from = (next_frame - min(lead, next_frame)) * hop
            buffered, held_from = buffered[keep_from - held_from :], keep_from
        held = [buffered]
    remaining = int(extractor.frames_for(total)) - next_frame
    if remaining > 0:
        yield chunk(joined() if held else np.zeros(0, dtype=np.float32), next_frame, remaining, total)


def _whole_if_short(blocks: Iterator[np.ndarray], samples_limit: int) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """Read blocks until more than `samples_limit` samples: (the whole recording or None, the blocks read)."""
    read, count = [], 0
    for block in blocks:
        read.append(block)
        count += len(block)
        if count > samples_limit:
            return None, read
    return (np.concatenate(read) if read else np.zeros(0, dtype=np.float32)), read


def iter_feature_chunks(
    extractor,
    open_blocks: BlockSource,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    short_recording: Callable[[np.ndarray], None] | None = None,
) -> Iterator[torch.Tensor]:
    """Normalised `input_values` of a recording of any length, in consecutive `(num_mel_bins, n)` chunks.

    Args:
        extractor: the model's `AudioViTFeatureExtractor`.
        open_blocks (`Callable`): returns a fresh iterator of mono float32 blocks at `extractor.sampling_rate`
            (`audio_vit.data.audio_decoding.iter_audio_blocks` for a file); called a second time when `top_db` clipping
            needs the whole recording's maximum first.
        chunk_frames (`int`, defaults to 16384): frames per chunk; memory grows with it, speed barely does.
        short_recording (`Callable`, *optional*): called with the whole waveform when the recording fits in one
            chunk (it is then in memory anyway), before that chunk is yielded.
    """
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames={chunk_frames} must be positive")
    first_pass = iter(open_blocks())
    whole, read = _whole_if_short(first_pass, extractor.samples_for(chunk_frames))
    if whole is not None:  # one extractor call, as for any short clip
        if short_recording is not None:
            short_recording(whole)
        yield _log_mel(extractor, whole)
        return
    unclipped = copy.deepcopy(extractor)
    unclipped.top_db = None
    stream = itertools.chain(read, first_pass)
    if extractor.frontend == "kaldi" or extractor.top_db is None:
        for db in iter_db_chunks(unclipped, stream, chunk_frames):
            yield extractor.normalize(db) if extractor.do_normalize else db
        return
    loudest = max(float(db.max()) for db in iter_db_chunks(unclipped, stream, chunk_frames))
    floor = loudest - extractor.top_db  # the extractor's floor: the recording's max power minus top_db (in dB)
    for db in iter_db_chunks(unclipped, open_blocks(), chunk_frames):
        db = db.clamp_(min=floor)
        yield extractor.normalize(db) if extractor.do_normalize else db


__all__ = ["DEFAULT_CHUNK_FRAMES", "iter_db_chunks", "iter_feature_chunks"]
