"""vpipe deletes, truncates or overwrites only files it wrote itself (issue 15, principles 1 and 7).

The world around a job is hostile here: a user's files in the styled folder, styled/ and frames/ moved to
another disk behind a symlink, links planted where vpipe writes its lock and logs, output paths that name
a file vpipe reads, and model names that cover catalogue models. Every row checks that the user's file
is byte for byte what it was.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pipeline import storage
from tests.helpers import frame, make_clip, one_line_error

Vpipe = Callable[..., Result]
QUICK = ["--engine", "posterize", "--style"]


def stylize(vpipe: Vpipe, tmp: Path, *extra: str) -> Result:
    return vpipe("stylize", *QUICK, str(tmp / "model.bin"), *extra)


def done(job: Path) -> int:
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM frames WHERE status='done'").fetchone()[0])


def move_away(job: Path, folder: str, disk: Path) -> Path:
    """What a user does when the job's disk fills: move a folder to another disk, leave a link behind."""
    target = disk / folder
    disk.mkdir(exist_ok=True)
    (job / folder).rename(target)
    (job / folder).symlink_to(target, target_is_directory=True)
    return target


def split(tmp_path: Path, vpipe: Vpipe) -> Path:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)  # 6 frames
    assert vpipe("split", str(clip), "--job", "t").exit_code == 0
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    return tmp_path / "jobs" / "t"


@pytest.fixture(params=["folder", "linked"])
def styled_job(request: pytest.FixtureRequest, tmp_path: Path, vpipe: Vpipe) -> tuple[Path, Path]:
    """A job with every frame styled; its styled folder in place, or moved to another disk behind a link.
    Returns (job, the styled folder's real place)."""
    job = split(tmp_path, vpipe)
    styled = move_away(job, "styled", tmp_path / "disk") if request.param == "linked" else job / "styled"
    assert stylize(vpipe, tmp_path).exit_code == 0
    assert done(job) == 6 and len(list(styled.glob("*.png"))) == 6
    return job, styled


def plant_user_files(styled: Path, outside: Path) -> dict[Path, bytes]:
    """A user's own files among the styled frames: notes, a backup of a frame, a folder, a hidden file
    named like a tmp file, and a link to a file elsewhere. Returns each with its content."""
    outside.write_bytes(b"precious, outside the job")
    (styled / "mine").mkdir()
    files = {styled / "notes.txt": b"my notes", styled / "000001.png.bak": b"a frame I liked",
             styled / "mine" / "keep.png": b"mine", styled / ".draft.tmp-12": b"hidden draft",
             styled / ".000002.png.tmp-abc": b"not a pid", outside: outside.read_bytes()}
    for path, data in files.items():
        path.write_bytes(data)
    (styled / "link.png").symlink_to(outside)
    return files


def unchanged(files: dict[Path, bytes]) -> None:
    for path, data in files.items():
        assert path.is_file() and path.read_bytes() == data, path


# ---------------------------------------------------------------- removing: only vpipe's own frame files


@pytest.mark.parametrize("command", [
    ["stylize", *QUICK, "{tmp}/model.bin", "--levels", "8", "--restart"],  # discards the frames it made
    ["stylize", *QUICK, "{tmp}/model.bin"],  # sweeps tmp files left by dead writers
    ["verify", "--fix"],  # sweeps them too
], ids=["restart", "stylize-sweep", "verify-fix-sweep"])
def test_removing_frames_spares_the_users_files(styled_job: tuple[Path, Path], tmp_path: Path, vpipe: Vpipe,
                                                command: list[str]) -> None:
    job, styled = styled_job
    files = plant_user_files(styled, tmp_path / "precious.txt")
    stale = styled / f".000003.png.tmp-{2 ** 22 + 7}"  # a dead worker's tmp file: vpipe's own, swept
    stale.write_bytes(b"half a frame")
    result = vpipe(*[arg.format(tmp=tmp_path) for arg in command])
    assert result.exit_code == 0, result.output
    unchanged(files)
    assert (styled / "link.png").is_symlink()
    assert not stale.exists()
    assert done(job) == 6 and len(list(styled.glob("0*.png"))) == 6  # every frame is there (remade after --restart)


def test_verify_fix_never_deletes_through_a_linked_frame(styled_job: tuple[Path, Path], tmp_path: Path,
                                                         vpipe: Vpipe) -> None:
    """A frame file replaced by a link to a user's file is a bad frame: it goes back to pending, and the
    user's file stays (the link is left for the next run to replace, never followed)."""
    job, styled = styled_job
    outside = tmp_path / "holiday.png"
    outside.write_bytes(b"a user's picture, not the frame")
    (styled / "000004.png").unlink()
    (styled / "000004.png").symlink_to(outside)
    result = vpipe("verify", "--fix")
    assert result.exit_code == 0 and "1 bad" in result.output, result.output
    assert outside.read_bytes() == b"a user's picture, not the frame"
    assert done(job) == 5
    assert stylize(vpipe, tmp_path).exit_code == 0 and done(job) == 6
    assert not (styled / "000004.png").is_symlink() and outside.read_bytes() == b"a user's picture, not the frame"


def test_a_linked_frames_folder_is_followed(tmp_path: Path, vpipe: Vpipe) -> None:
    """frames/ on another disk behind a link: stylize reads through it, assemble fills from it."""
    job = split(tmp_path, vpipe)
    frames = move_away(job, "frames", tmp_path / "disk")
    (frames / "notes.txt").write_bytes(b"mine")
    assert stylize(vpipe, tmp_path, "--range", "1-3").exit_code == 0
    assembled = vpipe("assemble", "--fill", "original")
    assert assembled.exit_code == 0, assembled.output
    assert (frames / "notes.txt").read_bytes() == b"mine" and len(list(frames.glob("*.png"))) == 6


# ---------------------------------------------------------------- writing: never through a planted link


@pytest.mark.parametrize("entry", ["lock", "log.jsonl", "workers/worker-0.log"])
def test_a_link_where_vpipe_writes_its_lock_or_logs_is_not_followed(tmp_path: Path, vpipe: Vpipe, entry: str) -> None:
    job = split(tmp_path, vpipe)
    victim = tmp_path / "thesis.txt"
    victim.write_bytes(b"three years of work")
    place = job / entry
    place.parent.mkdir(exist_ok=True)
    place.unlink(missing_ok=True)
    place.symlink_to(victim)
    result = stylize(vpipe, tmp_path, "--workers", "1")
    assert victim.read_bytes() == b"three years of work"  # not truncated, not appended to
    one_line_error(result, 1, "symbolic link", str(place))


# ---------------------------------------------------------------- output paths


ASSEMBLE_REFUSALS = [
    # (id, how to make the output path from (tmp, job), extra args, words in the error)
    ("the source video", lambda t, j: t / "clip.mp4", [], ["source video"]),
    ("a link to the source", lambda t, j: _link(t / "link.mp4", t / "clip.mp4"), [], ["source video"]),
    ("a hard link of the source", lambda t, j: _hard(t / "hard.mp4", t / "clip.mp4"), ["--force"], ["source video"]),
    ("an existing file, no --force", lambda t, j: _file(t / "film.mp4"), [], ["exists", "--force"]),
    ("inside the linked frames folder", lambda t, j: (j / "frames").resolve() / "x.mp4", [], ["frames folder"]),
]


def _link(link: Path, target: Path) -> Path:
    link.symlink_to(target)
    return link


def _hard(link: Path, target: Path) -> Path:
    os.link(target, link)
    return link


def _file(path: Path) -> Path:
    path.write_bytes(b"someone's film")
    return path


@pytest.mark.parametrize("case", ASSEMBLE_REFUSALS, ids=[c[0] for c in ASSEMBLE_REFUSALS])
def test_assemble_never_writes_over_what_it_reads_or_without_force(tmp_path: Path, vpipe: Vpipe,
                                                                   case: tuple) -> None:
    _, make, extra, words = case
    job = split(tmp_path, vpipe)
    move_away(job, "frames", tmp_path / "disk")
    sources = {p: p.read_bytes() for p in [tmp_path / "clip.mp4", *(tmp_path / "disk" / "frames").iterdir()]}
    out = make(tmp_path, job)
    before = out.read_bytes() if out.exists() else None
    result = vpipe("assemble", "--fill", "original", "-o", str(out), *extra)
    one_line_error(result, 2, *words)
    unchanged(sources)
    assert (out.read_bytes() if out.exists() else None) == before


def test_assemble_replaces_an_unrelated_file_with_force_and_its_own_output_freely(tmp_path: Path,
                                                                                  vpipe: Vpipe) -> None:
    split(tmp_path, vpipe)
    out = _file(tmp_path / "film.mp4")
    assert vpipe("assemble", "--fill", "original", "-o", str(out), "--force").exit_code == 0
    assert out.read_bytes() != b"someone's film"
    for _ in range(2):  # jobs/t/output.mp4 is vpipe's own: no --force needed to remake it
        assert vpipe("assemble", "--fill", "original").exit_code == 0


def test_run_refuses_an_existing_output_before_any_work(tmp_path: Path, vpipe: Vpipe) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    out = _file(tmp_path / "film.mp4")
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    result = vpipe("run", str(clip), *QUICK, str(tmp_path / "model.bin"), "-o", str(out))
    one_line_error(result, 2, "exists", "--force")
    assert out.read_bytes() == b"someone's film" and not (tmp_path / "jobs" / "clip").exists()


@pytest.mark.parametrize("folder", ["styled", "frames"])
def test_frames_out_never_replaces_a_linked_job_folder(tmp_path: Path, vpipe: Vpipe, folder: str) -> None:
    """--frames-out naming the place a job's styled/ or frames/ link points to (not the job folder by
    path): --force would replace the job's own frames with copies and delete the originals."""
    job = split(tmp_path, vpipe)
    assert stylize(vpipe, tmp_path).exit_code == 0
    real = move_away(job, folder, tmp_path / "disk")
    before = {p: p.read_bytes() for p in real.iterdir()}
    result = vpipe("assemble", "--frames-out", str(real), "--force")
    one_line_error(result, 2, "frames-out", "frames or styled folder")
    unchanged(before)


@pytest.fixture()
def styles_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A styles folder with one style whose painting is styles/slow/p.png (gatys: no model file needed)."""
    styles = tmp_path / "styles"
    (styles / "slow").mkdir(parents=True)
    (styles / "slow" / "style.toml").write_text('engine = "gatys"\nreference = "p.png"\n')
    _png(styles / "slow" / "p.png")
    (tmp_path / "models" / "magenta_tflite").mkdir(parents=True)  # stand-in: resolution only checks it is there
    monkeypatch.setenv("VPIPE_STYLES_DIR", str(styles))
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return styles


def _png(path: Path) -> Path:
    path.write_bytes(storage.encode(frame(32, 48), "png"))
    return path


SHEET_REFUSALS = [
    ("the --sample frame", lambda t: ["--sheet", str(t / "sample.png"), "--sample", str(t / "sample.png"),
                                      "--force"], ["sample"]),
    ("a style's painting", lambda t: ["--sheet", str(t / "styles" / "slow" / "p.png"), "--force"], ["painting"]),
    ("an existing file, no --force", lambda t: ["--sheet", str(t / "sheet.png")], ["exists", "--force"]),
]


@pytest.mark.parametrize("case", SHEET_REFUSALS, ids=[c[0] for c in SHEET_REFUSALS])
def test_styles_sheet_never_writes_over_what_it_reads_or_without_force(styles_places: Path, tmp_path: Path,
                                                                       vpipe: Vpipe, case: tuple) -> None:
    _, args, words = case
    files = {p: p.read_bytes() for p in (_png(tmp_path / "sample.png"), _png(tmp_path / "sheet.png"),
                                         styles_places / "slow" / "p.png")}
    one_line_error(vpipe("styles", *args(tmp_path)), 2, *words)
    unchanged(files)
    assert vpipe("styles", "--sheet", str(tmp_path / "sheet.png"), "--force").exit_code == 0
    assert (tmp_path / "sheet.png").read_bytes() != files[tmp_path / "sheet.png"]


def test_preview_never_writes_over_a_painting_it_reads(styles_places: Path, tmp_path: Path, vpipe: Vpipe) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.4)
    painting = _png(tmp_path / "painting.png")
    before = painting.read_bytes()
    result = vpipe("preview", str(clip), "--style", str(painting), "-o", str(painting), "--force")
    one_line_error(result, 2, "painting")
    assert painting.read_bytes() == before


def test_train_style_never_overwrites_a_finished_style(styles_places: Path, tmp_path: Path, vpipe: Vpipe) -> None:
    """`train-style --name slow` would write over the style.toml (and model) of the style already named so
    (by default the styles shipped in the package)."""
    toml = styles_places / "slow" / "style.toml"
    before = toml.read_bytes()
    result = vpipe("train-style", str(styles_places / "slow" / "p.png"), "--images", str(tmp_path), "--name", "slow")
    one_line_error(result, 2, "exists", "--force")
    assert toml.read_bytes() == before and not (styles_places / "slow" / "model").exists()


# ---------------------------------------------------------------- models import --force (principle 7)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model cache holding two catalogue models and a model of the user's own (my_models/candy)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    models = tmp_path / "xdg" / "vpipe" / "models"
    for name, data in {"lengstrom_fst/wave/Variable": b"wave weights", "lengstrom_fst/wave/manifest.json": b"{}",
                       "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5": b"vgg weights",
                       "my_models/candy/net.bin": b"candy"}.items():
        (models / name).parent.mkdir(parents=True, exist_ok=True)
        (models / name).write_bytes(data)
    (tmp_path / "mine.bin").write_bytes(b"a model of my own")
    return models


IMPORT_CASES = [
    # (--name, --force, exit code, words in the error)
    ("lengstrom_fst", True, 2, ["catalogue model", "lengstrom_fst/"]),  # the folder of four catalogue models
    ("vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", True, 2, ["catalogue model vgg19"]),
    ("lengstrom_fst/wave/extra", False, 2, ["catalogue model lengstrom_fst/wave"]),  # inside one
    ("my_models", True, 2, ["holds other folders"]),  # a folder of the user's models
    ("my_models/candy", False, 2, ["already exists", "--force"]),
    ("my_models/candy", True, 0, []),  # the one model it names: replaced
    ("my_models/fresh", False, 0, []),
]


@pytest.mark.parametrize("case", IMPORT_CASES, ids=[f"{c[0]}{' --force' if c[1] else ''}" for c in IMPORT_CASES])
def test_models_import_replaces_only_the_model_it_names(cache: Path, tmp_path: Path, vpipe: Vpipe,
                                                        case: tuple) -> None:
    name, force, code, words = case
    catalogue_files = {p: p.read_bytes() for p in cache.rglob("*") if p.is_file() and "my_models" not in p.parts}
    result = vpipe("models", "import", str(tmp_path / "mine.bin"), "--name", name, *(["--force"] if force else []))
    if code:
        one_line_error(result, code, *words)
    else:
        assert result.exit_code == 0, result.output
        assert (cache / name).read_bytes() == b"a model of my own"
    unchanged(catalogue_files)
    assert not (cache / "lengstrom_fst" / "wave" / "extra").exists()
    if name != "my_models/candy":
        assert (cache / "my_models" / "candy" / "net.bin").read_bytes() == b"candy"
