"""What happened to a dataset on its way to spectrograms: counts, durations, sample rates and every skipped file."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional


SUMMARY_NAME = "summary.json"  # where `audio-vit prepare` writes `DataReport.to_dict()`


class DataError(ValueError):
    """The data cannot be used as given (missing columns, unknown split names, bad options, --strict skips)."""


@dataclass
class SkippedClip:
    """One input that did not make it into the dataset and why."""

    file: str
    reason: str
    stage: str  # "metadata" (before decoding) or "decode"
    split: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "reason": self.reason, "stage": self.stage, "split": self.split}


@dataclass
class DecodeWarning:
    """A clip that was decoded and kept, but made the decoder library print something (joined with " | ")."""

    file: str
    message: str
    split: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "message": self.message, "split": self.split}


def raise_if_strict(strict: bool, skipped: list[SkippedClip]) -> None:
    if strict and skipped:
        lines = [f"  {clip.file}: {clip.reason}" for clip in skipped[:20]]
        more = f"\n  ... and {len(skipped) - 20} more" if len(skipped) > 20 else ""
        raise DataError(
            f"{len(skipped)} input(s) are unusable and --strict is set:\n" + "\n".join(lines) + more
            + "\n(drop --strict to skip them and list them in the summary instead)"
        )


@dataclass
class DataReport:
    """Summary of a prepared dataset; `to_dict()` is what `audio-vit prepare` writes to summary.json."""

    source: str = ""
    split_strategy: str = ""
    id2label: dict[int, str] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> label -> clips
    durations: dict[str, dict[str, float]] = field(default_factory=dict)  # split -> min/mean/max/total seconds
    sampling_rates: dict[int, int] = field(default_factory=dict)  # original rate -> clips
    truncated: dict[str, int] = field(default_factory=dict)  # split -> clips longer than max_length frames
    skipped: list[SkippedClip] = field(default_factory=list)
    # clips that decoded but made the decoder print something (e.g. mpg123 "Illegal Audio-MPEG-Header" resyncs)
    decode_warnings: list[DecodeWarning] = field(default_factory=list)
    normalization: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def skipped_by_reason(self) -> dict[str, int]:
        # group "file not found", "unreadable or corrupt audio (...)" etc. by their first words
        return dict(Counter(clip.reason.split(" (")[0] for clip in self.skipped))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "split_strategy": self.split_strategy,
            "num_labels": len(self.id2label),
            "id2label": {str(key): value for key, value in self.id2label.items()},
            "num_clips": {split: sum(per_label.values()) for split, per_label in self.counts.items()},
            "counts": self.counts,
            "durations": self.durations,
            "sampling_rates": {str(rate): count for rate, count in sorted(self.sampling_rates.items())},
            "truncated": self.truncated,
            "num_skipped": self.num_skipped,
            "skipped_by_reason": self.skipped_by_reason(),
            "skipped": [clip.to_dict() for clip in self.skipped],
            "num_decoded_with_warnings": len(self.decode_warnings),
            "decode_warnings": [clip.to_dict() for clip in self.decode_warnings],
            "normalization": self.normalization,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataReport":
        return cls(
            source=data.get("source", ""),
            split_strategy=data.get("split_strategy", ""),
            id2label={int(key): value for key, value in data.get("id2label", {}).items()},
            counts=data.get("counts", {}),
            durations=data.get("durations", {}),
            sampling_rates={int(key): value for key, value in data.get("sampling_rates", {}).items()},
            truncated=data.get("truncated", {}),
            skipped=[SkippedClip(**clip) for clip in data.get("skipped", [])],
            decode_warnings=[DecodeWarning(**clip) for clip in data.get("decode_warnings", [])],
            normalization=data.get("normalization", {}),
            notes=data.get("notes", []),
        )

    def format_table(self, max_skipped: int = 20) -> str:
        """Human-readable summary: clips per class and split, durations, rates, skips."""
        splits = list(self.counts)
        labels = [self.id2label[key] for key in sorted(self.id2label)]
        width = max([len("label"), *(len(label) for label in labels)]) + 2
        lines = [f"source: {self.source}   split: {self.split_strategy}", ""]
        if splits:
            lines.append("label".ljust(width) + "".join(f"{split:>12}" for split in splits))
            for label in labels:
                lines.append(label.ljust(width) + "".join(f"{self.counts[split].get(label, 0):>12}" for split in splits))
            lines.append("total".ljust(width) + "".join(f"{sum(self.counts[split].values()):>12}" for split in splits))
        else:
            lines.append(f"labels: {', '.join(labels)} (clip counts unknown: streamed)")
        lines.append("")
        for split in splits:
            stats = self.durations.get(split)
            if stats:
                lines.append(
                    f"{split}: durations {stats['min']:.2f}-{stats['max']:.2f} s (mean {stats['mean']:.2f} s, "
                    f"total {stats['total'] / 60:.1f} min), truncated to max_length: {self.truncated.get(split, 0)}"
                )
        rates = ", ".join(f"{rate} Hz: {count}" for rate, count in sorted(self.sampling_rates.items()))
        lines.append(f"original sample rates: {rates or 'n/a'}")
        if self.normalization:
            lines.append(
                f"normalization: mean={self.normalization.get('mean'):.4f} std={self.normalization.get('std'):.4f} "
                f"({self.normalization.get('computed_on')})"
            )
        lines.append(f"skipped: {self.num_skipped}")
        for clip in self.skipped[:max_skipped]:
            lines.append(f"  [{clip.stage}] {clip.file}: {clip.reason}")
        if self.num_skipped > max_skipped:
            lines.append(f"  ... {self.num_skipped - max_skipped} more in summary.json")
        if self.decode_warnings:
            first = self.decode_warnings[0]
            lines.append(f"decoded with warnings: {len(self.decode_warnings)}, e.g. {first.file}: "
                         f"{first.message.split(' | ')[0]} (all in summary.json)")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)
