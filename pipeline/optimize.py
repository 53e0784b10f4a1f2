"""Minimizers over a flat vector, given a compiled `value_and_grad`: L-BFGS and Adam.

Both run in one piece for their whole budget (L-BFGS keeps its curvature history: never restarted
in slices) and report every iteration to a callback, which may stop them. Pure NumPy; the caller's
value_and_grad does the heavy lifting (a compiled TensorFlow step).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ValueAndGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]
Callback = Callable[[int, float], bool]  # (iteration, loss) -> True to stop now


@dataclass(frozen=True)
class Result:
    x: np.ndarray
    loss: float
    iterations: int   # accepted steps
    evaluations: int  # calls of value_and_grad (the real cost)
    reason: str       # "budget", "tolerance", "callback", "converged"


class EarlyStop:
    """Stop once the loss improved by less than `tolerance` (relative) over the last `window` iterations."""

    def __init__(self, tolerance: float, window: int) -> None:
        self.tolerance = tolerance
        self.losses: deque[float] = deque(maxlen=window + 1)

    def __call__(self, loss: float) -> bool:
        self.losses.append(loss)
        if self.tolerance <= 0 or len(self.losses) < (self.losses.maxlen or 0):
            return False
        old = self.losses[0]
        return (old - loss) <= self.tolerance * abs(old)


def lbfgs(fg: ValueAndGrad, x0: np.ndarray, iterations: int, history: int = 10,
          stop: EarlyStop | None = None, callback: Callback | None = None) -> Result:
    """Limited-memory BFGS (two-loop recursion) with a backtracking Armijo line search."""
    x = x0.astype(np.float64).ravel()
    loss, grad = _eval(fg, x, x0.shape)
    evaluations = 1
    pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=history)
    for it in range(1, iterations + 1):
        direction = -_two_loop(grad, pairs)
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction: drop the history and follow the gradient
            pairs.clear()
            direction, slope = -grad, -float(grad @ grad)
        if slope == 0:
            return Result(x.reshape(x0.shape), loss, it - 1, evaluations, "converged")
        step = 1.0 if pairs else min(1.0, 1.0 / float(np.abs(grad).sum()))
        for _ in range(20):
            new_x = x + step * direction
            new_loss, new_grad = _eval(fg, new_x, x0.shape)
            evaluations += 1
            if new_loss <= loss + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            return Result(x.reshape(x0.shape), loss, it - 1, evaluations, "converged")
        s, y = new_x - x, new_grad - grad
        sy = float(s @ y)
        if sy > 1e-10:
            pairs.append((s, y, 1.0 / sy))
        x, loss, grad = new_x, new_loss, new_grad
        if callback and callback(it, loss):
            return Result(x.reshape(x0.shape), loss, it, evaluations, "callback")
        if stop and stop(loss):
            return Result(x.reshape(x0.shape), loss, it, evaluations, "tolerance")
    return Result(x.reshape(x0.shape), loss, iterations, evaluations, "budget")


def _two_loop(grad: np.ndarray, pairs: deque[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """H @ grad for the inverse-Hessian estimate held in `pairs` (Nocedal & Wright, alg. 7.4)."""
    q = grad.copy()
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * float(s @ q)
        q -= alpha * y
        alphas.append(alpha)
    if pairs:
        s, y, _ = pairs[-1]
        q *= float(s @ y) / float(y @ y)
    for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
        q += (alpha - rho * float(y @ q)) * s
    return q


def adam(fg: ValueAndGrad, x0: np.ndarray, iterations: int, lr: float, beta1: float = 0.9,
         beta2: float = 0.999, eps: float = 1e-8, bounds: tuple[float, float] | None = None,
         stop: EarlyStop | None = None, callback: Callback | None = None) -> Result:
    """Adam (Kingma & Ba), optionally clipping x into `bounds` after every step."""
    x = x0.astype(np.float64).ravel()
    m, v = np.zeros_like(x), np.zeros_like(x)
    loss = float("nan")
    for it in range(1, iterations + 1):
        loss, grad = _eval(fg, x, x0.shape)
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        x = x - lr * (m / (1 - beta1 ** it)) / (np.sqrt(v / (1 - beta2 ** it)) + eps)
        if bounds:
            x = np.clip(x, *bounds)
        if callback and callback(it, loss):
            return Result(x.reshape(x0.shape), loss, it, it, "callback")
        if stop and stop(loss):
            return Result(x.reshape(x0.shape), loss, it, it, "tolerance")
    final, _ = _eval(fg, x, x0.shape)
    return Result(x.reshape(x0.shape), final, iterations, iterations + 1, "budget")


def _eval(fg: ValueAndGrad, x: np.ndarray, shape: tuple[int, ...]) -> tuple[float, np.ndarray]:
    loss, grad = fg(x.reshape(shape))
    return float(loss), np.asarray(grad, dtype=np.float64).ravel()
