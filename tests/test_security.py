"""Security: commands are argument lists (never a shell string), no deserializer that runs code,
job names cannot leave the jobs folder, and a whole run writes nowhere but its job folder."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import ModelError, UsageError
from pipeline.job import check_name, name_from_path
from tests.helpers import FIXTURES, ROOT, load_weights, make_clip, write_model

SOURCES = sorted((ROOT / "pipeline").rglob("*.py"))
CODE_RUNNING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "shelve", "marshal", "joblib", "cloudpickle"}
SHELL_CALLS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"), ("subprocess", "getstatusoutput")}
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}


def calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def dotted(func: ast.expr) -> tuple[str, str]:
    if isinstance(func, ast.Attribute):
        base = func.value.id if isinstance(func.value, ast.Name) else ""
        return base, func.attr
    return "", func.id if isinstance(func, ast.Name) else ""


def keyword(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shell_strings_and_no_code_running_deserializers(source: Path) -> None:
    tree = ast.parse(source.read_text(), str(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found = {n.split(".")[0] for n in names} & CODE_RUNNING_MODULES
            assert not found, f"{source.name}:{node.lineno} imports {found}: it can run code from a file"
    for call in calls(tree):
        where = f"{source.name}:{call.lineno}"
        base, name = dotted(call.func)
        assert keyword(call, "shell") is not True, f"{where}: shell=True"
        assert (base, name) not in SHELL_CALLS, f"{where}: {base}.{name} runs a shell"
        assert name not in ("eval", "exec") or base, f"{where}: {name}()"
        if base == "subprocess" and name in SUBPROCESS_CALLS and call.args:
            assert not isinstance(call.args[0], ast.Constant | ast.JoinedStr | ast.BinOp), f"{where}: a command string"
        if name == "load" and base in ("np", "numpy"):
            assert keyword(call, "allow_pickle") is not True, f"{where}: np.load(allow_pickle=True)"
        if name == "load_model":
            assert keyword(call, "safe_mode") is not False, f"{where}: Keras load_model(safe_mode=False)"
        if name == "load" and base == "torch":
            assert keyword(call, "weights_only") is True, f"{where}: torch.load without weights_only=True"


def test_the_checks_above_can_fail(tmp_path: Path) -> None:
    bad = ast.parse("import pickle\nimport subprocess\nsubprocess.run('ls ' + x, shell=True)\nnp.load(f, allow_pickle=True)\n")
    assert any(keyword(c, "shell") is True for c in calls(bad))
    assert any(keyword(c, "allow_pickle") is True for c in calls(bad))
    assert isinstance(calls(bad)[0].args[0], ast.BinOp)


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "/etc", "a\\b", ".hidden", "-rf", "a b", "x\x00y", "é", "x" * 65, ""])
def test_job_names_cannot_leave_the_jobs_folder(name: str) -> None:
    with pytest.raises(UsageError):
        check_name(name)


@pytest.mark.parametrize("video", ["../../etc/passwd.mp4", "..mp4", "/tmp/.. .mp4", "-rf.mp4", "a/b/c d é.mov"])
def test_names_made_from_file_names_are_valid(video: str) -> None:
    assert check_name(name_from_path(Path(video)))


def test_a_model_manifest_cannot_point_outside_its_folder(tmp_path: Path) -> None:
    model = write_model(tmp_path / "m", channels=(8, 16, 32))
    outside = tmp_path / "Variable_5"
    (model / "Variable_5").rename(outside)  # the right bytes, but outside the model folder
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["Variable_5"]["filename"] = "../Variable_5"
    (model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r"Variable_5 file '../Variable_5' missing"):
        load_weights(model)


def test_a_whole_run_writes_only_inside_its_job_folder(tmp_path: Path) -> None:
    """cwd, HOME, the cache and TMPDIR stay empty; the jobs folder holds the job and the last-job note."""
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    (tmp_path / "model.bin").write_bytes(b"quick")
    places = {name: tmp_path / name for name in ("cwd", "home", "cache", "tmp")}
    for place in places.values():
        place.mkdir()
    jobs = tmp_path / "jobs"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(places["home"]), "XDG_CACHE_HOME": str(places["cache"]),
           "TMPDIR": str(places["tmp"]), "VPIPE_JOBS_DIR": str(jobs), "VPIPE_ENGINES": "posterize=quick_engines:load",
           "PYTHONPATH": os.pathsep.join([str(FIXTURES), str(ROOT)]), "PYTHONDONTWRITEBYTECODE": "1"}
    for args in (["split", str(clip)], ["stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin")],
                 ["verify", "--fix"], ["retry-failed"], ["assemble"], ["status"]):
        done = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=places["cwd"], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    for name, place in places.items():
        assert list(place.rglob("*")) == [], f"something was written in {name}"
    assert sorted(p.name for p in jobs.iterdir()) == [".last-job", "clip"]
    assert (jobs / "clip" / "output.mp4").is_file()
