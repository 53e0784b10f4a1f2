"""Video mode in a worker: each frame starts from the previous styled frame, across chunk borders too."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.engines.base import Guide
from pipeline.temporal import Sequence, Temporal
from tests.helpers import shift, texture


class Recorder:
    """A guided engine that returns its warm start and records what it was given."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[int, Guide | None]] = []

    def stylize_guided(self, frame: np.ndarray, guide: Guide | None) -> tuple[np.ndarray, dict[str, Any]]:
        self.calls.append((int(frame[0, 0, 0]), guide))
        return (255 - frame).astype(np.uint8), {"init": "warped" if guide else "content"}


def clip(n: int = 8) -> list[np.ndarray]:
    frames = [texture()]
    for _ in range(n - 1):
        frames.append(shift(frames[-1], 2))
    for i, f in enumerate(frames):
        f[0, 0, 0] = i + 1  # the frame's number, for the recorder
    return frames


def test_frames_in_order_are_guided_by_the_previous_output() -> None:
    frames, engine = clip(), Recorder()
    seq = Sequence(engine, Temporal(weight=7.0), lambda i: frames[i - 1], lambda i: None)
    stats = [seq.stylize(i, frames[i - 1])[1] for i in (1, 2, 3)]
    assert [c[0] for c in engine.calls] == [1, 2, 3]
    assert engine.calls[0][1] is None and stats[0]["init"] == "content"  # frame 1 of a job starts cold
    guide = engine.calls[2][1]
    assert guide is not None and guide.weight == 7.0 and stats[2]["reliable"] > 0.8
    # the guide is frame 2's output brought onto frame 3: where reliable it matches frame 3's inverse
    inner = guide.mask[8:-8, 12:-8] > 0
    expected = (255 - frames[2]).astype(np.float32)[8:-8, 12:-8][inner]
    assert np.median(np.abs(guide.warped[8:-8, 12:-8][inner] - expected)) < 4


def test_chunk_border_starts_from_the_done_previous_frame() -> None:
    frames, engine = clip(), Recorder()
    done = {4: 255 - frames[3]}  # frame 4 was styled by another worker and published
    seq = Sequence(engine, Temporal(weight=1.0), lambda i: frames[i - 1], done.get)
    _, stats = seq.stylize(5, frames[4])
    assert stats["previous"] == "done" and [c[0] for c in engine.calls] == [5]
    assert engine.calls[0][1] is not None


def test_chunk_border_without_a_done_previous_frame_warms_up_first() -> None:
    frames, engine = clip(), Recorder()
    seq = Sequence(engine, Temporal(weight=1.0, warmup=2), lambda i: frames[i - 1], lambda i: None)
    _, stats = seq.stylize(6, frames[5])
    assert stats["previous"] == "warmup 2"
    assert [c[0] for c in engine.calls] == [4, 5, 6]  # 4 and 5 stylized and discarded
    assert engine.calls[0][1] is None and engine.calls[1][1] is not None and engine.calls[2][1] is not None
    seq.stylize(7, frames[6])  # the next frame simply continues
    assert [c[0] for c in engine.calls] == [4, 5, 6, 7]


def test_independent_mode_never_guides() -> None:
    frames, engine = clip(), Recorder()
    seq = Sequence(engine, None, lambda i: frames[i - 1], lambda i: None)
    for i in (3, 4):
        seq.stylize(i, frames[i - 1])
    assert [c[1] for c in engine.calls] == [None, None]


class Plain:
    name = "plain"

    def stylize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        return [np.full_like(f, 50) if f[0, 0, 0] % 2 else np.full_like(f, 150) for f in batch]


def test_plain_engines_get_a_flow_guided_blend() -> None:
    frames = clip()
    seq = Sequence(Plain(), Temporal(weight=0.5), lambda i: frames[i - 1], lambda i: None)
    first, _ = seq.stylize(1, frames[0])
    second, stats = seq.stylize(2, frames[1])
    assert (first == 50).all()
    reliable = second[8:-8, 12:-8]
    assert np.median(reliable) == 100  # halfway between 150 and the warped 50
    assert stats["reliable"] > 0.8
