"""Shared fixtures: a jobs dir of its own, the quick test engine, a CLI runner. Fixtures only: what test
files share besides fixtures is in tests/helpers.py (imported from there, never from here)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.helpers import FIXTURES, ROOT, random_net, write_model


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A jobs dir of its own and the quick test engine registered; returned for subprocess runs."""
    monkeypatch.setenv("VPIPE_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("VPIPE_ENGINES", "posterize=quick_engines:load")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FIXTURES), str(ROOT)]))
    monkeypatch.syspath_prepend(str(FIXTURES))  # the in-process coordinator reads the fixture engines' specs
    monkeypatch.delenv("VPIPE_FAULTS", raising=False)
    monkeypatch.setenv("VPIPE_OFFLINE", "1")  # tests never reach for the network; on-demand tests unset it
    return dict(os.environ)


@pytest.fixture()
def vpipe(env: dict[str, str]) -> Callable[..., Result]:
    """Run the CLI in-process (workers are still real subprocesses)."""
    from pipeline.cli import main

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


@pytest.fixture()
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, Path]:
    """An empty extra models folder and a cache of this test's own."""
    extra, cache = tmp_path / "extra", tmp_path / "xdg"
    extra.mkdir()
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(extra))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return {"extra": extra, "cache": cache / "vpipe" / "models"}


@pytest.fixture(scope="session")
def slim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Engstrom-layout net (9x9 ends, transposed-conv decoder), random weights."""
    return write_model(tmp_path_factory.mktemp("m") / "slim", channels=(8, 16, 32))


@pytest.fixture(scope="session")
def vpipe_slim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A net in the form `vpipe train-style` makes: 5x5 ends, the 'resize' decoder, random weights."""
    from pipeline.engines.fast import weights

    folder = tmp_path_factory.mktemp("m") / "vpipe_slim"
    weights.write(folder, random_net(), "resize")
    return folder
