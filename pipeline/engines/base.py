"""The one contract every engine meets: uint8 RGB frames in, uint8 RGB frames of the same size out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Engine(Protocol):
    """A loaded style model. Built once per worker process, then called for every frame."""

    name: str

    def stylize(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Stylize a batch of HxWx3 uint8 RGB frames; each output has its input's shape."""
        ...
