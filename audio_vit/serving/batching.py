"""One model shared by concurrent requests: their windows are stacked into one forward pass; and how many requests,
and how much audio, a server takes in at once.

Each request thread decodes its upload and computes its features itself (in parallel with the others), then
hands its window batches to `WindowBatcher`, whose single worker thread takes everything queued -- up to
`max_batch_size` windows, from as many requests as are waiting -- runs the model once and hands every
request its own rows back. A long recording's windows go in several batches, so short clips that arrive
meanwhile are not held up behind all of it.

The queue is bounded: a call that finds `max_waiting` batches already waiting is refused at once with
`ServerBusyError` ("busy, retry"), and a caller waits at most `timeout_s` for its rows, so no request waits forever
on a model that cannot keep up or on a worker that stopped. `close()` stops the worker after the batches already
queued and answers every request still waiting.

    batcher = WindowBatcher(model, max_batch_size=64)
    result = classify_audio_file(model, extractor, path, window_classifier=batcher)  # from any thread
    batcher.close()

`RequestAdmission` bounds a server's waiting by the work waiting, not only by the number of requests: a burst of
short clips is all taken in, while a burst of long recordings is refused beyond what can be answered soon.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from contextlib import asynccontextmanager
from concurrent.futures import Future, TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import torch

from ..inference.long_audio import window_probabilities

# How often a caller waiting for its rows checks that the worker is still alive.
_ALIVE_CHECK_S = 1.0


class ServerBusyError(RuntimeError):
    """More work is waiting than the server accepts (or it did not answer in time): retry later. The message says
    so, for the user: "The server is busy: <why>; please retry in a moment"."""


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
        max_waiting (`int`, defaults to 64): batches (of at most `max_batch_size` windows) waiting for the model at
            most; a call that would queue more is refused with `ServerBusyError`.
        timeout_s (`float`, defaults to 300): a caller waits at most this long for its rows (`ServerBusyError`), and
            `close()` this long for the worker.
    """

    def __init__(self, model, max_batch_size: int = 64, *, max_waiting: int = 64, timeout_s: float = 300.0):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size={max_batch_size} must be at least 1")
        if max_waiting < 1:
            raise ValueError(f"max_waiting={max_waiting} must be at least 1")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s={timeout_s} must be positive")
        self.model = model.eval()
        self.max_batch_size = max_batch_size
        self.max_waiting = max_waiting
        self.timeout_s = timeout_s
        self.forward_passes = 0  # counters for logs and tests: how much batching happened
        self.windows_classified = 0
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # windows of each forward pass, the latest 1000
        self.refused = 0  # calls refused with ServerBusyError because the queue was full
        self._waiting: deque[_Request] = deque()
        self._lock = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._serve, name="audio-vit-window-batcher", daemon=True)
        self._worker.start()

    @property
    def waiting(self) -> int:
        """Batches queued for the model now."""
        with self._lock:
            return len(self._waiting)

    def __call__(self, windows: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Probabilities (n, num_labels) of `windows` (n, num_mel_bins, window); blocks until they are computed.

        Raises `ServerBusyError` when the queue is full or the rows did not come within `timeout_s`, and
        `RuntimeError` when the batcher was closed (or its worker stopped).
        """
        requests = [
            _Request(windows[i : i + self.max_batch_size], attention_mask[i : i + self.max_batch_size])
            for i in range(0, windows.shape[0], self.max_batch_size)
        ]
        if len(requests) > self.max_waiting:
            raise ValueError(f"{windows.shape[0]} windows make {len(requests)} batches of at most "
                             f"{self.max_batch_size}, more than the batcher queues (max_waiting={self.max_waiting}); "
                             "send them in smaller calls")
        with self._lock:
            if self._closed or not self._worker.is_alive():
                raise RuntimeError("the window batcher was closed")
            if len(self._waiting) + len(requests) > self.max_waiting:
                self.refused += 1
                raise ServerBusyError(f"The server is busy: {len(self._waiting)} window batches are waiting for the "
                                      f"model (at most {self.max_waiting}); please retry in a moment")
            self._waiting.extend(requests)
            self._lock.notify()
        deadline = time.monotonic() + self.timeout_s
        try:
            return torch.cat([self._result(request, deadline) for request in requests])
        except BaseException:
            for request in requests:  # the worker skips what it has not started
                request.result.cancel()
            raise

    def _result(self, request: _Request, deadline: float) -> torch.Tensor:
        while True:
            try:
                return request.result.result(timeout=max(0.0, min(_ALIVE_CHECK_S, deadline - time.monotonic())))
            except FutureTimeout:
                if request.result.done():
                    continue
                if not self._worker.is_alive():
                    raise RuntimeError("the window batcher's worker stopped before classifying these windows") from None
                if time.monotonic() >= deadline:
                    raise ServerBusyError(f"The server is busy: the model did not classify these windows within "
                                          f"{self.timeout_s:g} s; please retry in a moment") from None

    def close(self, timeout_s: float | None = None) -> None:
        """Stop the worker after the batches already queued; new calls are refused. Every request still waiting
        once the worker stopped, or after `timeout_s` (default: the batcher's) when it did not, gets a
        `RuntimeError`: no caller is left waiting."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        if self._worker is not threading.current_thread():
            self._worker.join(timeout=self.timeout_s if timeout_s is None else timeout_s)
        with self._lock:
            left, self._waiting = list(self._waiting), deque()
        for request in left:
            if request.result.set_running_or_notify_cancel():
                request.result.set_exception(RuntimeError("the window batcher was closed before classifying these "
                                                          "windows"))

    def _next_batch(self) -> list[_Request] | None:
        """The requests of the next forward pass (None once closed and drained); waits for work."""
        with self._lock:
            while not self._waiting and not self._closed:
                self._lock.wait()
            if not self._waiting:
                return None
            batch, size = [], 0
            while self._waiting and (not batch or size + self._waiting[0].windows.shape[0] <= self.max_batch_size):
                request = self._waiting.popleft()
                if request.result.set_running_or_notify_cancel():  # False: its caller gave up (timeout, busy)
                    batch.append(request)
                    size += request.windows.shape[0]
            return batch

    def _serve(self) -> None:
        while (batch := self._next_batch()) is not None:
            if batch:
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
        self.batch_sizes.append(probabilities.shape[0])
        for request, rows in zip(batch, probabilities.split([r.windows.shape[0] for r in batch])):
            request.result.set_result(rows)


class RequestAdmission:
    """Requests classified at once (`concurrency`) and what may wait for one of those slots, checked when a request
    arrives: at most `max_waiting` requests, and at most `max_audio_s` seconds of audio held at once (running and
    waiting). A request beyond either is refused at once with `ServerBusyError`, so the wait of the requests taken in
    is bounded by the work ahead of them. A request arriving while nothing is held is always taken in, however long.

    Asynchronous, for the server's event loop: a waiting request holds no thread, only a place in the count.

        admission = RequestAdmission(concurrency=8, max_waiting=64, max_audio_s=7200)
        async with admission.admit(duration_s):  # ServerBusyError at once, or waits for a slot
            await anyio.to_thread.run_sync(classify, path)

    Args:
        concurrency (`int`): requests classified at once.
        max_waiting (`int`): requests waiting for a slot at most (0: none waits).
        max_audio_s (`float`, *optional*): seconds of audio held at most; `None` for no limit.
    """

    def __init__(self, concurrency: int, max_waiting: int, max_audio_s: float | None):
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency} must be at least 1")
        if max_waiting < 0:
            raise ValueError(f"max_waiting={max_waiting} must be at least 0")
        if max_audio_s is not None and not max_audio_s > 0:
            raise ValueError(f"max_audio_s={max_audio_s} must be positive (or None for no limit)")
        self.concurrency, self.max_waiting, self.max_audio_s = concurrency, max_waiting, max_audio_s
        self.running = 0  # requests in a slot
        self.waiting = 0  # requests taken in, waiting for a slot
        self.held_audio_s = 0.0  # audio of the requests taken in (running and waiting)
        self.refused = 0
        self._slots = asyncio.Semaphore(concurrency)

    def _refusal(self, audio_s: float) -> str | None:
        if self.running + self.waiting >= self.concurrency and self.waiting >= self.max_waiting:
            return (f"{self.running} request(s) are being classified and {self.waiting} are waiting (at most "
                    f"{self.max_waiting})")
        if self.max_audio_s is not None and self.held_audio_s > 0 and self.held_audio_s + audio_s > self.max_audio_s:
            return (f"{_minutes(self.held_audio_s)} of audio are being classified or waiting, and this recording's "
                    f"{_minutes(audio_s)} would pass the limit of {_minutes(self.max_audio_s)}")
        return None

    @asynccontextmanager
    async def admit(self, audio_s: float):
        """Take a request of `audio_s` seconds in (or raise `ServerBusyError` at once), wait for a slot, run the body."""
        refusal = self._refusal(audio_s)
        if refusal is not None:
            self.refused += 1
            raise ServerBusyError(f"The server is busy: {refusal}; please retry in a moment")
        self.waiting += 1
        self.held_audio_s += audio_s
        in_slot = False
        try:
            async with self._slots:
                self.waiting -= 1
                in_slot = True
                self.running += 1
                try:
                    yield
                finally:
                    self.running -= 1
        finally:
            if not in_slot:  # given up while waiting (the client went away)
                self.waiting -= 1
            self.held_audio_s -= audio_s


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


__all__ = ["RequestAdmission", "ServerBusyError", "WindowBatcher"]
