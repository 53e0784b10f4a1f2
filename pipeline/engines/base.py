"""The contract every engine meets: uint8 RGB frames in, uint8 RGB frames of the same size out.

Engines that can use the previous styled frame (video mode) also offer `stylize_guided`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: the coordinator imports this module, and never numpy
    import numpy as np


@dataclass(frozen=True)
class Guide:
    """The previous styled frame warped onto this one, and where that warp can be trusted."""

    warped: np.ndarray  # HxWx3 float32, 0..255
    mask: np.ndarray  # HxW float32 in [0, 1]
    weight: float  # how strongly to hold reliable pixels to `warped` (the engine's own scale)


class Engine(Protocol):
    """A loaded style model. Built once per worker process, then called for every frame."""

    name: str

    def stylize(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Stylize a batch of HxWx3 uint8 RGB frames; each output has its input's shape."""
        ...


@runtime_checkable
class GuidedEngine(Protocol):
    """An engine that takes the temporal guide into its own optimization (gatys)."""

    name: str

    def stylize_guided(self, frame: np.ndarray, guide: Guide | None) -> tuple[np.ndarray, dict[str, Any]]:
        """One frame and its guide (None for a cold start) -> styled frame and per-frame stats."""
        ...
