"""The package's import graph: no cycle anywhere in pipeline/, counting imports inside functions too
(a lazy import still ties two modules together), and the coordinator side never imports TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, make_clip

PACKAGE = ROOT / "pipeline"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The pipeline modules `path` imports (a `from package import name` counts as the submodule when
    `name` is one, else as the package)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            subs = {f"{target}.{alias.name}" for alias in node.names} & modules
            found.update(subs or {target})
    return {m for m in found if m in modules and m != here}


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package() -> None:
    assert cycles(graph()) == []


def test_the_coordinator_side_imports_no_tensorflow() -> None:
    code = ("import sys, pipeline.cli, pipeline.stages, pipeline.engines; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_command_imports_only_its_own_family_and_no_logging_until_it_logs() -> None:
    """`vpipe split` starts in a fraction of the time `vpipe --help` takes (every module listed)."""
    code = ("import sys; from pipeline.cli import main; sys.argv = ['vpipe', 'split', '--help']\n"
            "try: main()\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('pipeline.cli.inspect', 'pipeline.cli.models', 'pipeline.cli.train', "
            "'pipeline.sheet', 'structlog', 'tensorflow') if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "Decode VIDEO" in done.stdout and done.stderr.strip() == "[]"


def test_split_stylize_and_assemble_import_no_numpy_or_image_codec_in_the_coordinator(tmp_path: Path, env: dict[str, str]) -> None:
    """OpenCV and numpy cost every command that loads them a tenth of a second or so; the coordinator's
    commands run ffmpeg and hash files, and only the workers decode and encode images. Nor do split and
    assemble load the model store's URL libraries."""
    clip = make_clip(tmp_path / "clip.mp4")
    (tmp_path / "model.bin").write_bytes(b"quick engine: no weights")
    loaded = {}
    for command in (["split", str(clip), "--job", "t"],
                    ["stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin")],
                    ["assemble", "-o", str(tmp_path / "out.mp4")]):
        code = (f"import sys; from pipeline.cli import main; sys.argv = ['vpipe', *{command!r}]\n"
                "try: main()\nexcept SystemExit as exit: assert not exit.code, exit.code\n"
                "print(sorted(m for m in ('cv2', 'numpy', 'urllib.request') if m in sys.modules), file=sys.stderr)")
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        loaded[command[0]] = done.stderr.strip().splitlines()[-1]
    assert loaded == {"split": "[]", "stylize": "[]", "assemble": "[]"}
    assert (tmp_path / "out.mp4").stat().st_size > 0


if __name__ == "__main__":  # `python tests/test_imports.py`: print the cycles, if any
    sys.path.insert(0, str(ROOT))
    print(cycles(graph()) or "no import cycle in pipeline/")
