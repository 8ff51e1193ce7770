"""The web demo's spectrogram picture: bounded in size for recordings of any length, the model's windows marked.

`SpectrogramOverview` takes a recording's feature chunks as they are computed and keeps at most
`max_columns` columns, each the mean of `frames_per_column` frames (doubling as the recording grows), so a
10-hour recording costs the same memory as a 10-second one. `overview_image` draws it (viridis, low mel bins
at the bottom) above a strip that marks the windows the model classified: each column of the strip takes the
colour of the label of the window centred nearest to it (`label_colours`, the same colours as the page's
timeline plot), with dark ticks between windows when they are at least `MIN_TICK_SPACING_PX` apart.
"""
from __future__ import annotations

import numpy as np

SPECTROGRAM_HEIGHT_PX = 256
STRIP_HEIGHT_PX = 14
MAX_COLUMNS = 1024
MIN_TICK_SPACING_PX = 6
# matplotlib's tab10, as hex: one colour per label (cycling for more than ten labels)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def label_colours(labels: list[str]) -> dict[str, str]:
    """label -> hex colour, in label order (the model's `id2label` order)."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def spectrogram_image(features: np.ndarray, height: int = SPECTROGRAM_HEIGHT_PX) -> np.ndarray:
    """`(num_mel_bins, frames)` model input -> `(height, frames', 3)` uint8 image (viridis, low bins at the bottom).

    Each mel bin is repeated to fill `height` rows; each frame is one column (at least `height` columns,
    so a short clip is not a sliver).
    """
    from matplotlib import colormaps

    if features.ndim != 2 or min(features.shape) == 0:
        raise ValueError(f"features must be a non-empty (num_mel_bins, frames) array, got shape {features.shape}")
    low, high = float(features.min()), float(features.max())
    scaled = (features - low) / (high - low) if high > low else np.zeros_like(features)
    rows = max(1, height // features.shape[0])
    columns = max(1, -(-height // features.shape[1]))
    lookup = (colormaps["viridis"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)  # (256, 3)
    indices = np.rint(scaled[::-1] * 255).astype(np.uint8)  # flip: low bins at the bottom
    return lookup[np.repeat(np.repeat(indices, rows, axis=0), columns, axis=1)]


class SpectrogramOverview:
    """Accumulates feature chunks into at most `max_columns` columns of `frames_per_column` frames each."""

    def __init__(self, max_columns: int = MAX_COLUMNS):
        if max_columns < 2:
            raise ValueError(f"max_columns={max_columns} must be at least 2")
        self.max_columns = max_columns
        self.frames_per_column = 1
        self.num_frames = 0
        self._columns: list[np.ndarray] = []  # each (num_mel_bins,): the mean of frames_per_column frames
        self._rest_sum: np.ndarray | None = None  # frames of the next, unfinished column
        self._rest_count = 0

    def add(self, chunk) -> None:
        """Append `(num_mel_bins, n)` frames (numpy array or CPU tensor)."""
        frames = np.asarray(chunk, dtype=np.float64)
        self.num_frames += frames.shape[1]
        if self._rest_sum is None:
            self._rest_sum = np.zeros(frames.shape[0])
        size = self.frames_per_column
        if self._rest_count:  # complete the unfinished column first
            take = min(size - self._rest_count, frames.shape[1])
            self._rest_sum += frames[:, :take].sum(axis=1)
            self._rest_count += take
            frames = frames[:, take:]
            if self._rest_count == size:
                self._columns.append(self._rest_sum / size)
                self._rest_sum, self._rest_count = np.zeros_like(self._rest_sum), 0
        whole = frames.shape[1] // size
        if whole:
            self._columns.extend(frames[:, : whole * size].reshape(frames.shape[0], whole, size).mean(axis=2).T)
        if frames.shape[1] > whole * size:
            self._rest_sum += frames[:, whole * size :].sum(axis=1)
            self._rest_count += frames.shape[1] - whole * size
        while len(self._columns) > self.max_columns:
            self._halve()

    def _halve(self) -> None:
        """Merge neighbouring columns (twice the frames per column); an odd last column joins the unfinished one."""
        size = self.frames_per_column
        if len(self._columns) % 2:
            self._rest_sum = self._rest_sum + self._columns.pop() * size
            self._rest_count += size
        columns = np.stack(self._columns, axis=1)
        self._columns = list(((columns[:, 0::2] + columns[:, 1::2]) / 2).T)
        self.frames_per_column = 2 * size

    def features(self) -> np.ndarray:
        """`(num_mel_bins, columns)`: the finished columns and the mean of the frames after them."""
        if self.num_frames == 0:
            raise ValueError("no frames were added")
        columns = list(self._columns)
        if self._rest_count:
            columns.append(self._rest_sum / self._rest_count)
        return np.stack(columns, axis=1).astype(np.float32)


def _window_strip(width: int, px_per_frame: float, windows: list[tuple[int, int, str]], colours: dict[str, str]):
    """`(STRIP_HEIGHT_PX, width, 3)`: each column coloured as the window whose centre is nearest to it."""
    strip = np.full((STRIP_HEIGHT_PX, width, 3), 255, dtype=np.uint8)
    if not windows:
        return strip
    rgb = {label: np.array([int(c[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8) for label, c in colours.items()}
    centres = np.array([(start + end) / 2 * px_per_frame for start, end, _ in windows])
    x = np.arange(width) + 0.5
    nearest = np.clip(np.searchsorted(centres, x), 1, len(centres)) - 1  # the window centred at or before x ...
    after = np.minimum(nearest + 1, len(centres) - 1)
    nearest = np.where(np.abs(centres[after] - x) < np.abs(centres[nearest] - x), after, nearest)  # ... or after it
    first_px, last_px = windows[0][0] * px_per_frame, windows[-1][1] * px_per_frame
    for i in np.unique(nearest):
        columns = (nearest == i) & (x >= first_px) & (x <= last_px)
        strip[:, columns] = rgb.get(windows[i][2], np.array([127, 127, 127], dtype=np.uint8))
    starts_px = np.array([start * px_per_frame for start, _, _ in windows])
    if len(starts_px) > 1 and np.diff(starts_px).min() >= MIN_TICK_SPACING_PX:
        strip[: STRIP_HEIGHT_PX // 2, np.clip(starts_px.astype(int), 0, width - 1)] = 40  # a tick at each window start
    return strip


def overview_image(
    overview: SpectrogramOverview, windows: list[tuple[int, int, str]], colours: dict[str, str]
) -> np.ndarray:
    """The overview as a `(SPECTROGRAM_HEIGHT_PX + STRIP_HEIGHT_PX, width, 3)` uint8 image, width <= max(256, max_columns).

    Args:
        overview: the recording's accumulated features.
        windows: `(start_frame, end_frame, label)` of each classified window, in time order.
        colours: label -> hex colour (`label_colours`).
    """
    features = overview.features()
    image = spectrogram_image(features)
    px_per_frame = image.shape[1] / features.shape[1] / overview.frames_per_column
    return np.concatenate([image, _window_strip(image.shape[1], px_per_frame, windows, colours)], axis=0)


__all__ = ["SpectrogramOverview", "label_colours", "overview_image", "spectrogram_image"]
