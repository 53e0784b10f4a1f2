"""The manifest is checked, not trusted: a damaged one is refused in one line before any command reads
or writes it; a full disk at open is exit 3; a read-only job folder says so. Real SQLite files damaged
on purpose; a real full or read-only tmpfs where the machine allows one (tests/fixtures/tiny_disk.py)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pipeline.errors import JobError
from pipeline.manifest import Manifest
from tests.helpers import FIXTURES, make_clip, one_line_error
from tests.test_disk_full import tmpfs_or_skip


def page_of(manifest: Path, name: str) -> tuple[int, int]:
    """(byte offset, size) of the root page of table or index `name`, with the WAL folded in first."""
    with sqlite3.connect(manifest) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (name,)).fetchone()[0]
    conn.close()
    return (root - 1) * size, size


def scribble(manifest: Path, name: str) -> None:
    """Garbage over one b-tree page: the header and the other tables still read."""
    offset, size = page_of(manifest, name)
    with manifest.open("r+b") as f:
        f.seek(offset)
        f.write(bytes((i * 151 + 7) % 256 for i in range(size)))


def garbage_header(manifest: Path) -> None:
    page_of(manifest, "frames")  # fold the WAL in, as for the others
    with manifest.open("r+b") as f:
        f.write(b"not SQLite at all" * 6)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "status index page": lambda m: scribble(m, "frames_status"),  # opening and the meta table still work
    "events table page": lambda m: scribble(m, "events"),
    "file header": garbage_header,
}
COMMANDS = [["stylize"], ["assemble", "--fill", "original"], ["verify"], ["status"], ["retry-failed"]]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_manifest_is_refused_in_one_line_before_anything_reads_or_writes_it(
        tmp_path: Path, vpipe: Callable[..., Result], damage: str) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)  # 6 frames
    (tmp_path / "model.bin").write_bytes(b"quick")
    assert vpipe("split", str(clip), "--job", "d").exit_code == 0
    job = tmp_path / "jobs" / "d"
    styled = vpipe("stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--range", "1-3")
    assert styled.exit_code == 0, styled.output
    manifest = job / "manifest.sqlite"
    DAMAGE[damage](manifest)
    before = digest(manifest)
    frames = {p.name: digest(p) for p in (job / "styled").iterdir()}
    logs = sorted(p.name for p in (job / "workers").iterdir())
    for command in COMMANDS:
        result = vpipe(*command)
        one_line_error(result, 1, f"manifest {manifest} is damaged", "no command stylizes or assembles on it",
                       "`vpipe verify` needs it", "backup", ".recover", "split the video again")
        assert digest(manifest) == before, f"`vpipe {command[0]}` wrote into a damaged manifest"
    assert {p.name: digest(p) for p in (job / "styled").iterdir()} == frames
    assert sorted(p.name for p in (job / "workers").iterdir()) == logs  # no worker was started
    assert not (job / "output.mp4").exists()


def test_open_checks_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite"
    Manifest.create(path, 2000, {})
    Manifest.open(path).close()
    scribble(path, "frames_status")
    with pytest.raises(JobError, match=r"is damaged \(.*[Pp]age"):
        Manifest.open(path)


def in_tiny_disk(tmp_path: Path, env: dict[str, str], steps: list[list[object]]) -> list[dict[str, object]]:
    jobs = tmp_path / "jobs"  # the env fixture's VPIPE_JOBS_DIR: the tmpfs is mounted right there
    tmpfs_or_skip(jobs)
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", sys.executable,
                           str(FIXTURES / "tiny_disk.py"), str(jobs), "4M", json.dumps(steps)],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    results: list[dict[str, object]] = json.loads(done.stdout)
    return results


def the_error(step: dict[str, object]) -> str:
    errors = [line for line in str(step["err"]).splitlines() if line.startswith("vpipe: error:")]
    assert len(errors) == 1 and "Traceback" not in str(step["err"]), step
    return errors[0]


def test_a_full_disk_at_open_is_exit_3_for_every_command(tmp_path: Path, env: dict[str, str]) -> None:
    """Job `w` was opened once (its manifest is in WAL mode at rest: opening it needs its shared-memory
    file, which SQLite reports as an I/O error on a full disk); job `n` was only split (opening switches
    it to WAL: SQLITE_FULL)."""
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    (tmp_path / "model.bin").write_bytes(b"quick")
    commands = [[*command, "--job", job] for job in ("w", "n") for command in (
        ["vpipe", "status"], ["vpipe", "verify"],
        ["vpipe", "stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin")],
        ["vpipe", "assemble", "--fill", "original"])]
    steps: list[list[object]] = [["vpipe", "split", str(clip), "--job", "w"], ["vpipe", "status", "--job", "w"],
                                 ["vpipe", "split", str(clip), "--job", "n"], ["fill", 0], *commands,
                                 ["unfill"], ["vpipe", "status", "--job", "w"]]
    split, opened, split_again, _, *full, _, status = in_tiny_disk(tmp_path, env, steps)
    assert split["code"] == opened["code"] == split_again["code"] == 0, (split, opened, split_again)
    for command, step in zip(commands, full, strict=True):
        assert step["code"] == 3, (command, step)
        assert "no space left on the device" in the_error(step), (command, step)
    assert status["code"] == 0, status  # space again: the job is as it was


def test_a_read_only_job_folder_says_so(tmp_path: Path, env: dict[str, str]) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    commands = [["vpipe", "status"], ["vpipe", "verify"], ["vpipe", "assemble", "--fill", "original"]]
    steps: list[list[object]] = [["vpipe", "split", str(clip), "--job", "r"], ["readonly"], *commands]
    split, _, *refused = in_tiny_disk(tmp_path, env, steps)
    assert split["code"] == 0, split
    for command, step in zip(commands, refused, strict=True):
        assert step["code"] == 1, (command, step)
        error = the_error(step).lower()
        assert "read-only" in error and "unreadable" not in error, (command, error)
