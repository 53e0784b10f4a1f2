"""Engines for bench/bench_io.py, registered as plugins (VPIPE_ENGINES): no network, only frame I/O.

free: returns its input (the I/O ceiling). accelerator: a simulated GPU, 10 ms a frame in a call that
releases the GIL (as a real one's kernels do), so the worker's I/O threads run meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ACCELERATOR_SECONDS = 0.010  # per frame


class Free:
    name = "free"

    def stylize(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        return list(frames)


class Accelerator:
    name = "accelerator"

    def stylize(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        time.sleep(ACCELERATOR_SECONDS * len(frames))
        return list(frames)


def free(model: Path, options: dict[str, object]) -> Free:
    return Free()


def accelerator(model: Path, options: dict[str, object]) -> Accelerator:
    return Accelerator()
