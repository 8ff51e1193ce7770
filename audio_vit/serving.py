"""One model shared by concurrent requests: their windows are stacked into one forward pass.

Each request thread decodes its upload and computes its features itself (in parallel with the others), then
hands its window batches to `WindowBatcher`, whose single worker thread takes everything queued -- up to
`max_batch_size` windows, from as many requests as are waiting -- runs the model once and hands every
request its own rows back. A long recording's windows go in several batches, so short clips that arrive
meanwhile are not held up behind all of it.

    batcher = WindowBatcher(model, max_batch_size=64)
    result = classify_audio_file(model, extractor, path, window_classifier=batcher)  # from any thread
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from .inference import window_probabilities


@dataclass
class _Request:
    windows: torch.Tensor  # (n, num_mel_bins, window)
    attention_mask: torch.Tensor  # (n, window)
    result: Future = field(default_factory=Future)


class WindowBatcher:
    """A `WindowClassifier` for many threads: `batcher(windows, attention_mask) -> probabilities`.

    Args:
        model: the audio classifier (used only by the worker thread, in `eval()` mode, without gradients).
        max_batch_size (`int`, defaults to 64): windows per forward pass at most; larger calls are split.
    """

    def __init__(self, model, max_batch_size: int = 64):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size={max_batch_size} must be at least 1")
        self.model = model.eval()
        self.max_batch_size = max_batch_size
        self.forward_passes = 0  # counters for logs and tests: how much batching happened
        self.windows_classified = 0
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._worker = threading.Thread(target=self._serve, name="audio-vit-window-batcher", daemon=True)
        self._worker.start()

    def __call__(self, windows: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Probabilities (n, num_labels) of `windows` (n, num_mel_bins, window); blocks until they are computed."""
        if not self._worker.is_alive():
            raise RuntimeError("the window batcher was closed")
        requests = [
            _Request(windows[i : i + self.max_batch_size], attention_mask[i : i + self.max_batch_size])
            for i in range(0, windows.shape[0], self.max_batch_size)
        ]
        for request in requests:
            self._queue.put(request)
        return torch.cat([request.result.result() for request in requests])

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
        self._queue.put(None)
        self._worker.join()

    def _serve(self) -> None:
        waiting: deque[_Request] = deque()
        while True:
            if not waiting:
                waiting.append(self._queue.get())  # sleep until a request comes
            while True:  # everything queued meanwhile joins this pass
                try:
                    waiting.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if waiting[0] is None:
                return
            batch, size = [], 0
            while waiting and waiting[0] is not None and size + waiting[0].windows.shape[0] <= self.max_batch_size:
                batch.append(waiting.popleft())
                size += batch[-1].windows.shape[0]
            self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        try:
            probabilities = window_probabilities(
                self.model, torch.cat([r.windows for r in batch]), torch.cat([r.attention_mask for r in batch])
            )
        except Exception as error:  # every waiting request learns what went wrong; the worker keeps serving
            for request in batch:
                request.result.set_exception(error)
            return
        self.forward_passes += 1
        self.windows_classified += probabilities.shape[0]
        for request, rows in zip(batch, probabilities.split([r.windows.shape[0] for r in batch])):
            request.result.set_result(rows)


__all__ = ["WindowBatcher"]
