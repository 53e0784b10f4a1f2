"""Video mode inside a worker: each frame is guided by the styled frame before it, warped by optical flow.

At a chunk's first frame the previous styled frame is read from the job when it is already done;
otherwise the few frames before the chunk are stylized first and thrown away (a warm-up), so chunk
borders do not pop. Frame 1 of a job always starts cold (content image or seeded noise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import flow
from .engines.base import Engine, Guide, GuidedEngine

# Whether video mode is on by default, and its weight, is each engine's spec (EngineSpec.video).


@dataclass(frozen=True)
class Temporal:
    weight: float  # guided engines (gatys): temporal loss weight; other engines: blend strength in [0, 1]
    warmup: int = 2  # frames stylized (and discarded) before a chunk whose previous frame is not done
    preset: str = "medium"  # DIS preset

    @staticmethod
    def from_config(config: dict[str, Any] | None) -> Temporal | None:
        return Temporal(**config) if config else None


@dataclass
class _Previous:
    index: int
    gray: np.ndarray
    styled: np.ndarray  # working size, uint8


class Sequence:
    """Stylizes frames of one job at the working size, in video mode or independently."""

    def __init__(self, engine: Engine, temporal: Temporal | None, source: Callable[[int], np.ndarray],
                 styled: Callable[[int], np.ndarray | None]) -> None:
        self.engine = engine
        self.temporal = temporal
        self.source = source  # index -> working-size RGB frame
        self.styled = styled  # index -> working-size styled frame already done in the job, or None
        self.previous: _Previous | None = None
        self._warming = False

    def stylize(self, index: int, frame: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        if self.temporal is None:
            return self._run(frame, None)
        stats: dict[str, Any] = {}
        previous = self._previous(index, stats)
        guide = None
        gray = flow.gray(frame)
        if previous is not None:
            warped, mask = flow.guide(previous.styled, previous.gray, gray, self.temporal.preset)
            guide = Guide(warped, mask, self.temporal.weight)
            stats["reliable"] = round(float(mask.mean()), 4)
        styled, engine_stats = self._run(frame, guide)
        self.previous = _Previous(index, gray, styled)
        return styled, {**engine_stats, **stats}

    def _previous(self, index: int, stats: dict[str, Any]) -> _Previous | None:
        """The styled frame index-1 at working size: kept from the last call, read from the job, or warmed up."""
        assert self.temporal is not None
        if index <= 1:
            return None
        if self.previous is not None and self.previous.index == index - 1:
            return self.previous
        done = self.styled(index - 1)
        if done is not None:
            stats["previous"] = "done"
            return _Previous(index - 1, flow.gray(self.source(index - 1)), done)
        self.previous = None
        if self._warming:  # the first warm-up frame starts cold
            return None
        first = max(1, index - self.temporal.warmup)
        self._warming = True
        try:
            for j in range(first, index):
                self.stylize(j, self.source(j))
        finally:
            self._warming = False
        stats["previous"] = f"warmup {index - first}"
        return self.previous

    def _run(self, frame: np.ndarray, guide: Guide | None) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(self.engine, GuidedEngine):
            return self.engine.stylize_guided(frame, guide)
        styled = self.engine.stylize([frame])[0]
        if guide is not None:
            styled = flow.blend(styled, guide.warped, guide.mask, guide.weight)
        return styled, {}
