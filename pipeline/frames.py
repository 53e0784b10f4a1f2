"""Pure helpers about frame numbers: ranges, chunks and file names. No I/O here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import UsageError

MIN_NAME_WIDTH = 6
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d*)\s*)?$")


@dataclass(frozen=True)
class FrameRange:
    """A 1-based inclusive range of frames; `last` None means "to the end"."""

    first: int
    last: int | None = None

    def resolve(self, total: int) -> tuple[int, int]:
        """Clamp "to the end" to `total` and refuse ranges beyond the last frame."""
        last = total if self.last is None else self.last
        if self.first > total or last > total:
            raise UsageError(f"range {self} goes beyond the last frame ({total})")
        return self.first, last

    def __str__(self) -> str:
        if self.last is None:
            return f"{self.first}-"
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


def parse_range(text: str) -> FrameRange:
    """Parse "135-6835", "7" or "100-" (1-based, inclusive)."""
    match = _RANGE.match(text)
    if not match:
        raise UsageError(f"range {text!r} is not of the form A-B (for example 135-6835)")
    first = int(match.group(1))
    last_text = match.group(2)
    if match.group(2) is None:
        last: int | None = first
    else:
        last = int(last_text) if last_text else None
    if first < 1:
        raise UsageError(f"range {text!r}: frames are numbered from 1")
    if last is not None and last < first:
        raise UsageError(f"range {text!r}: the end comes before the start")
    return FrameRange(first, last)


def plan_chunks(frames: Iterable[int], size: int, workers: int = 1) -> list[list[int]]:
    """Group frames (in ascending order) into chunks of at most `size` consecutive numbers.

    A gap (a frame already done) starts a new chunk, so a chunk is always one contiguous run:
    that keeps a worker's frames in order, which temporal engines rely on. Chunks are evened out so
    that `workers` taking them in turn finish together: N frames go in ceil(N / (workers x size))
    rounds of ceil(N / (workers x rounds)) frames (120 frames, 2 workers, size 50: 4 chunks of 30,
    not 50 + 50 + 20 with one worker idle for the last 20).
    """
    if size < 1:
        raise UsageError(f"chunk size must be at least 1, got {size}")
    todo = sorted(set(frames))
    if todo and workers > 1:
        rounds = -(-len(todo) // (workers * size))
        size = -(-len(todo) // (workers * rounds))
    chunks: list[list[int]] = []
    for frame in todo:
        current = chunks[-1] if chunks else None
        if current and len(current) < size and frame == current[-1] + 1:
            current.append(frame)
        else:
            chunks.append([frame])
    return chunks


def spans(frames: Iterable[int]) -> list[tuple[int, int]]:
    """Collapse frame numbers into inclusive (first, last) spans: [1,2,3,7] -> [(1,3),(7,7)]."""
    result: list[tuple[int, int]] = []
    for frame in sorted(set(frames)):
        if result and frame == result[-1][1] + 1:
            result[-1] = (result[-1][0], frame)
        else:
            result.append((frame, frame))
    return result


def describe_spans(frames: Iterable[int], limit: int = 10) -> str:
    """Human text for a set of frames: "1-3, 7, 12-40" (then "… and N more spans")."""
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in spans(frames)]
    text = ", ".join(parts[:limit])
    if len(parts) > limit:
        text += f", ... and {len(parts) - limit} more spans"
    return text


def name_width(count: int) -> int:
    """Digits in frame names: at least 6, more for longer videos, so name order is frame order."""
    return max(MIN_NAME_WIDTH, len(str(count)))


def frame_name(index: int, width: int, ext: str) -> str:
    """File name of frame `index` (1-based): frame_name(7, 6, "png") == "000007.png"."""
    return f"{index:0{width}d}.{ext}"


_FRAME_FILE = re.compile(rf"\d{{{MIN_NAME_WIDTH},}}\.(?:png|jpg|webp)")


def is_frame_name(name: str) -> bool:
    """Whether `name` is one vpipe gives frame files (frame_name in any width and frame format)."""
    return _FRAME_FILE.fullmatch(name) is not None


def frame_pattern(width: int, ext: str) -> str:
    """The printf pattern ffmpeg reads and writes for the same names."""
    return f"%0{width}d.{ext}"


def count_sequence(names: Sequence[str], width: int, ext: str) -> int:
    """Check that `names` are exactly frames 1..N with this width and extension; return N."""
    expected = {frame_name(i, width, ext) for i in range(1, len(names) + 1)}
    if set(names) != expected:
        extra = sorted(set(names) - expected)[:3]
        raise ValueError(f"frame files are not a gapless sequence 1..{len(names)}: {extra}")
    return len(names)
