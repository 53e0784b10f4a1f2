"""Frames around the fast net: it downsamples twice by 2 and zero-pads its convs, so frames are
reflect-padded to a multiple of 4 with a margin, then cropped back."""

from __future__ import annotations

import numpy as np

# Reflect margin around each frame: the net zero-pads its convs, which distorts the outer rim.
# Measured on chicago crops vs the same region of a larger frame (wave/udnie), the extra error
# of the 8 px border over the interior was 4.7/5.3 levels with no margin, 2.7/3.1 with 8 px,
# 1.9/3.0 with 16 px; 8 px costs ~7% more pixels at 640x360.
MARGIN = 8


def pad_to_multiple(frame: np.ndarray, m: int, margin: int = 0) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad so both sides divide by m (the net downsamples twice by 2); returns the original (h, w).

    `margin` pixels go on every side, the rest to reach a multiple of m on the bottom/right,
    so the original sits at [margin:margin+h, margin:margin+w].
    """
    h, w = frame.shape[:2]
    ph, pw = -(h + 2 * margin) % m, -(w + 2 * margin) % m
    padded = np.pad(frame, ((margin, margin + ph), (margin, margin + pw), (0, 0)), mode="reflect")
    return padded, (h, w)
