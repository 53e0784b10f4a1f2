"""A quiet terminal: no TensorFlow, absl or LiteRT start-up noise from any command (VPIPE_DEBUG=1 shows it).

TensorFlow's C++ libraries log at load time (oneDNN, CUDA stubs) before TF_CPP_MIN_LOG_LEVEL is read, so
its first import runs with the process's stderr (file descriptor 2) on /dev/null; what it logs later obeys
TF_CPP_MIN_LOG_LEVEL, which child processes (workers) inherit. Python-side warnings (tf.function
retracing, deprecations) are cut at the loggers. An import that fails still raises its ImportError.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

DEBUG_ENV = "VPIPE_DEBUG"
NOISY_IMPORTS = ("tensorflow", "ai_edge_litert")
NOISY_LOGGERS = ("tensorflow", "absl", "keras")


def debugging() -> bool:
    return bool(os.environ.get(DEBUG_ENV))


def install() -> None:
    """Quiet this process and the processes it starts; idempotent; nothing when VPIPE_DEBUG is set."""
    if debugging():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in NOISY_IMPORTS + ("keras",):
        warnings.filterwarnings("ignore", module=rf"{module}(\.|$)")
    if not any(isinstance(finder, _MutedImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MutedImport())


class _MutedImport(importlib.abc.MetaPathFinder):
    """Finds the noisy top-level packages with the other finders, then loads them with stderr muted."""

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name not in NOISY_IMPORTS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _MutedLoader(spec.loader)
                return spec
        return None


class _MutedLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # resource readers, is_package, ... of the real loader
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        with muted():
            self._loader.exec_module(module)


@contextlib.contextmanager
def muted() -> Iterator[None]:
    """The process's stderr (fd 2, where C++ libraries write) on /dev/null for a moment, unless debugging:
    for calls that log at INFO before any setting applies (LiteRT: "Created TensorFlow Lite XNNPACK
    delegate for CPU")."""
    if debugging():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
