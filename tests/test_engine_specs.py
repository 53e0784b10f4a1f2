"""Engine specs: each spec's invariants, the CLI flags made from them (a fixture engine's option is a
`vpipe stylize` flag that reaches its worker), options refused naming their engine, and no engine
named by the modules that read the specs."""

from __future__ import annotations

import ast
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pipeline import engines, storage
from pipeline.engines.spec import EngineSpec
from pipeline.errors import UsageError
from tests.helpers import ROOT, make_clip, one_line_error

# The modules that used to name engines and now read their specs.
READERS = ("cli/jobs.py", "cli/params.py", "settings.py", "resources.py", "styles.py", "temporal.py", "sheet.py",
           "stages.py")


@pytest.fixture()
def specs(env: dict[str, str]) -> list[EngineSpec]:
    """The builtin engines and the test suite's fixture engine (registered by VPIPE_ENGINES)."""
    return engines.all_specs()


def test_the_fixture_engine_registers_like_a_builtin(specs: list[EngineSpec]) -> None:
    names = [spec.name for spec in specs]
    assert names[:3] == list(engines.BUILTIN) and "posterize" in names
    posterize = engines.spec_of("posterize")
    assert posterize.factory == "quick_engines:load" and posterize.option_names == ("levels",)


def test_each_spec_keeps_its_invariants(specs: list[EngineSpec]) -> None:
    assert len({spec.name for spec in specs}) == len(specs)
    for spec in specs:
        module, _, attr = spec.factory.partition(":")
        assert module and attr.isidentifier(), spec.factory
        assert len(set(spec.option_names)) == len(spec.options), spec.name
        for option in spec.options:
            assert option.name.isidentifier() and option.flag == "--" + option.name.replace("_", "-")
            assert option.help and not option.help.endswith("."), (spec.name, option.name)  # the CLI adds it
            if option.default is not None:
                assert option.check(option.default, spec.name) == option.default, (spec.name, option.name)
            if option.choices:
                assert option.default in option.choices, (spec.name, option.name)
        if spec.takes_paintings:  # a painting needs a model to run it: a fixed one, or one an option picks
            assert bool(spec.painting_model) != bool(spec.model_option), spec.name
            assert spec.model_family is None
        else:
            assert spec.painting_model is None and spec.model_option is None
        if spec.model_option:
            assert spec.option(spec.model_option).choices == tuple(spec.models), spec.name
        assert spec.video.weight >= 0 and (spec.video.on or spec.video.weight <= 1)  # a blend is a fraction
        if spec.memory is not None:
            assert spec.memory.per_pixel > 0 and spec.memory.fixed >= 0
            assert "{need}" in spec.memory.refusal and "{size}" in spec.memory.refusal
    assert engines.DEFAULT_ENGINE in engines.BUILTIN and not engines.BUILTIN[engines.DEFAULT_ENGINE].takes_paintings
    assert engines.BUILTIN[engines.PAINTING_ENGINE].takes_paintings
    assert [s.name for s in specs if s.takes_precision] == [engines.DEFAULT_ENGINE]


def test_an_option_shared_by_two_engines_means_one_thing(specs: list[EngineSpec]) -> None:
    by_name = engines.options()
    assert sum(len(owners) for _, owners in by_name.values()) == sum(len(s.options) for s in specs)


def test_the_engines_take_their_defaults_from_what_their_spec_says() -> None:
    from pipeline.engines import arbitrary
    from pipeline.engines.fast import precision

    spec = engines.BUILTIN["arbitrary"]
    assert spec.option("mode").choices == arbitrary.MODES and spec.option("transfer").choices == tuple(arbitrary.TRANSFER)
    assert engines.BUILTIN["fast"].option("precision").choices == precision.PRECISIONS
    gatys = pytest.importorskip("pipeline.engines.gatys")
    settings = gatys.Settings()
    for option in engines.BUILTIN["gatys"].options:
        if option.default is not None:
            assert getattr(settings, option.name) == option.default, option.name


def test_the_spec_modules_import_without_tensorflow() -> None:
    code = ("import sys; sys.path.insert(0, 'tests/fixtures'); import quick_engines, pipeline.engines.fast.spec, "
            "pipeline.engines.gatys_spec, pipeline.engines.arbitrary_spec; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_plugin_without_a_spec_takes_no_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPIPE_ENGINES", "plain=a_module_only_its_workers_can_import:load")
    spec = engines.spec_of("plain")
    assert (spec.name, spec.factory, spec.options, spec.memory) == ("plain", "a_module_only_its_workers_can_import:load",
                                                                     (), None)
    engines.check_params("plain", {})
    with pytest.raises(UsageError, match=r"--strength: only for the arbitrary engine"):
        engines.check_params("plain", {"strength": 0.5})


def test_two_engines_that_disagree_on_an_option_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "clashing_engine.py").write_text(
        "from pipeline.engines.spec import EngineSpec, Option\n"
        "SPEC = EngineSpec('clash', 'clashing_engine:load', options=(Option('precision', int, 'bits', 8),))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("VPIPE_ENGINES", "clash=clashing_engine:load")
    with pytest.raises(UsageError, match="option 'precision' differs from the fast engine's"):
        engines.options()


def test_params_are_checked_and_parsed_against_the_spec() -> None:
    assert engines.check_params("gatys", {"content_layers": "fire3,fire5", "style_weight": 5}) == {
        "content_layers": ["fire3", "fire5"], "style_weight": 5}
    with pytest.raises(UsageError, match=r"arbitrary engine: strength = 2 is out of range \(0\.\.1\)"):
        engines.check_params("arbitrary", {"strength": 2})
    with pytest.raises(UsageError, match="gatys engine: optimizer = 'sgd' is not one of lbfgs, adam"):
        engines.check_params("gatys", {"optimizer": "sgd"})
    with pytest.raises(UsageError, match="gatys engine: iterations = 'many' is not an integer"):
        engines.check_params("gatys", {"iterations": "many"})
    with pytest.raises(UsageError, match=r"--net, --iterations: only for the gatys engine; --bogus: not an option of "
                                         r"the fast engine"):
        engines.check_params("fast", {"net": "vgg19", "iterations": 3, "bogus": 1})


def test_no_engine_is_named_where_the_specs_are_read() -> None:
    names = set(engines.BUILTIN)
    for relative in READERS:
        tree = ast.parse((ROOT / "pipeline" / relative).read_text(encoding="utf-8"))
        named = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in names]
        assert named == [], relative


# ---------------------------------------------------------------- through the CLI


@pytest.fixture()
def job(tmp_path: Path, vpipe: Callable[..., Result]) -> Path:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.1)
    assert vpipe("split", str(clip), "--job", "t").exit_code == 0
    model = tmp_path / "model.bin"
    model.write_bytes(b"quick engine")
    return model


def _settings(tmp_path: Path) -> dict[str, object]:
    with sqlite3.connect(tmp_path / "jobs" / "t" / "manifest.sqlite") as conn:
        return dict(json.loads(conn.execute("SELECT value FROM meta WHERE key='settings'").fetchone()[0]))


def test_a_fixture_engines_option_is_a_stylize_flag_that_reaches_its_worker(
        tmp_path: Path, vpipe: Callable[..., Result], job: Path) -> None:
    help_text = " ".join(vpipe("stylize", "--help").output.split())
    assert "--levels INTEGER RANGE posterize: levels per colour channel (default 4)." in help_text
    result = vpipe("stylize", "--engine", "posterize", "--style", str(job), "--levels", "2", "--range", "1-1")
    assert result.exit_code == 0, result.output
    assert _settings(tmp_path)["params"] == {"levels": 2}
    styled = storage.read_rgb(next((tmp_path / "jobs" / "t" / "styled").iterdir()))
    assert set(styled.ravel().tolist()) <= {127, 255}  # two levels, where the default four gives 63 and 191 too
    one_line_error(vpipe("stylize", "--engine", "posterize", "--style", str(job), "--levels", "1"), 2,
                   "'--levels'", "2<=x<=256")


def test_an_option_of_another_engine_is_refused_naming_its_engine(vpipe: Callable[..., Result], job: Path) -> None:
    one_line_error(vpipe("stylize", "--engine", "fast", "--style", str(job), "--levels", "2"), 2,
                   "--levels: only for the posterize engine")
    one_line_error(vpipe("stylize", "--engine", "posterize", "--style", str(job), "--strength", "0.5"), 2,
                   "--strength: only for the arbitrary engine")


def test_style_toml_params_are_checked_against_the_spec(tmp_path: Path, vpipe: Callable[..., Result], job: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    styles_dir = tmp_path / "styles"
    for name, params in (("bad_key", "colours = 3"), ("bad_value", "levels = 1"), ("good", "levels = 2")):
        (styles_dir / name).mkdir(parents=True)
        (styles_dir / name / "model.bin").write_bytes(job.read_bytes())  # style.toml paths stay in the folder
        (styles_dir / name / "style.toml").write_text(
            f'engine = "posterize"\nmodel = "model.bin"\n\n[params]\n{params}\n')
    monkeypatch.setenv("VPIPE_STYLES_DIR", str(styles_dir))
    one_line_error(vpipe("stylize", "--style", "bad_key"), 2, "--colours: not an option of the posterize engine")
    one_line_error(vpipe("stylize", "--style", "bad_value"), 2, "posterize engine: levels = 1 is out of range (2..256)")
    assert vpipe("stylize", "--style", "good", "--range", "1-1").exit_code == 0
    assert _settings(tmp_path)["params"] == {"levels": 2}
