"""`make soak` (not in CI): kill the coordinator or stop a worker at random moments, check nothing was lost.

Each trial starts `vpipe stylize` (the quick posterize engine, real worker processes, a real
ffmpeg-made clip). A kill trial SIGKILLs its process group at a random moment and waits for its
workers to die with it. A stop trial SIGSTOPs one of its workers at a random moment (loading, between
frames, in a frame...) and waits for the run to end by itself, with a short --frame-timeout and
--load-timeout: one still going after --hang-after seconds is a hung run. Then it checks the job:
- every `done` frame has a valid file (decodes, the job's size, the recorded hash): else corrupt
- no file under a final name is partial: else corrupt
- frames done at the previous check are still done: else lost
- and their files are the same files (inode, mtime) with one `done` event each: else recomputed
When a job completes, the next trial goes on with a fresh job. At the end every job is run to
completion and checked once more. Prints one figure line; exits 1 if anything was lost, corrupt,
recomputed or hung.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import storage, video  # noqa: E402
from pipeline.verify import verify  # noqa: E402


@dataclass
class Tally:
    kills: int = 0
    kills_before_ready: int = 0  # the coordinator died before any worker existed
    completed_runs: int = 0
    frames: int = 0
    lost: set[tuple[str, int]] = field(default_factory=set)
    corrupt: set[tuple[str, int | str]] = field(default_factory=set)
    recomputed: set[tuple[str, int]] = field(default_factory=set)
    stray_workers: int = 0
    refused_runs: int = 0  # a run that exited with an error on its own (a stuck lock would show here)
    stops: int = 0  # workers SIGSTOPped
    stops_missed: int = 0  # the run ended before a worker could be stopped
    hung: int = 0  # runs that did not end by themselves after a worker was stopped
    stop_costs: dict[str, int] = field(default_factory=lambda: {"a frame": 0, "a load": 0, "nothing": 0})


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def is_worker(pid: int) -> bool:
    """A worker process proper: `python -m pipeline.worker` (not a child still between fork and exec)."""
    try:
        return b"pipeline.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def vpipe(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], env=env, stdout=out, stderr=out,
                                start_new_session=True)  # its own process group: killpg hits the coordinator only


class Job:
    def __init__(self, jobs: Path, name: str) -> None:
        self.name = name
        self.root = jobs / name
        self.known: dict[int, tuple[int, int]] = {}  # done frame -> (inode, mtime) at the last check

    def costs(self) -> tuple[int, int]:
        """(attempts lost to timeouts, frames handed back by loads that timed out) so far."""
        with sqlite3.connect(self.root / "manifest.sqlite") as conn:
            paid = conn.execute("SELECT COUNT(*) FROM events WHERE event IN ('attempt_failed', 'failed') "
                                "AND error_kind='timeout'").fetchone()[0]
            loads = conn.execute("SELECT COUNT(*) FROM events WHERE event='released' "
                                 "AND message LIKE '%did not load%'").fetchone()[0]
        return int(paid), int(loads)

    def state(self) -> tuple[dict[int, str], dict[int, int], int]:
        with sqlite3.connect(self.root / "manifest.sqlite") as conn:
            done = dict(conn.execute("SELECT idx, output_hash FROM frames WHERE status='done'").fetchall())
            events = dict(conn.execute("SELECT idx, COUNT(*) FROM events WHERE event='done' GROUP BY idx").fetchall())
            total = conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
        return done, events, total

    def check(self, tally: Tally) -> bool:
        """Check the invariants now; returns whether every frame is done."""
        done, events, total = self.state()
        report = verify(self.root.parent, self.name)
        tally.corrupt.update((self.name, bad.idx) for bad in report.bad)
        for path in (self.root / "styled").glob("*.png"):
            if cv2.imread(str(path)) is None:
                tally.corrupt.add((self.name, path.name))
        now = {}
        for idx in done:
            path = self.root / "styled" / f"{idx:06d}.png"
            if path.exists():  # a done frame without its file: verify counted it as corrupt above
                now[idx] = (path.stat().st_ino, path.stat().st_mtime_ns)
        for idx, identity in self.known.items():
            if idx not in now:
                tally.lost.add((self.name, idx))
            elif now[idx] != identity:
                tally.recomputed.add((self.name, idx))
        tally.recomputed.update((self.name, idx) for idx, count in events.items() if count > 1)
        self.known = now
        return len(done) == total


def stop_trial(proc: subprocess.Popen[bytes], job: Job, rng: random.Random, options: argparse.Namespace,
               tally: Tally) -> set[int]:
    """SIGSTOP one of the run's workers at a random moment, then let the run end by itself (or call it hung)."""
    paid, loads = job.costs()
    stop_at = time.monotonic() + rng.uniform(0.0, options.max_stop_after)
    workers: set[int] = set()
    stopped = None
    while proc.poll() is None and stopped is None:
        live = sorted(w for w in children(proc.pid) if alive(w) and is_worker(w))
        workers |= set(live)
        if live and time.monotonic() >= stop_at:
            stopped = rng.choice(live)
            os.kill(stopped, signal.SIGSTOP)
        time.sleep(0.01)
    try:
        proc.wait(timeout=options.hang_after)
    except subprocess.TimeoutExpired:
        tally.hung += 1
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if stopped is None:
        tally.stops_missed += 1
    else:
        tally.stops += 1
        now_paid, now_loads = job.costs()
        tally.stop_costs["a frame" if now_paid > paid else "a load" if now_loads > loads else "nothing"] += 1
    if proc.returncode not in (0, -signal.SIGKILL):
        tally.refused_runs += 1
    return workers


def kill_trial(proc: subprocess.Popen[bytes], rng: random.Random, options: argparse.Namespace, tally: Tally) -> set[int]:
    """SIGKILL the coordinator's process group at a random moment."""
    kill_at = time.monotonic() + rng.uniform(0.0, options.max_kill_after)
    workers: set[int] = set()
    while proc.poll() is None and time.monotonic() < kill_at:
        workers |= children(proc.pid)
        time.sleep(0.01)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        tally.kills += 1
        tally.kills_before_ready += not workers
    elif proc.returncode == 0:
        tally.completed_runs += 1
    else:
        tally.refused_runs += 1
    return workers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="coordinator kills (default 50)")
    parser.add_argument("--stops", type=int, default=20, help="worker stops (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    parser.add_argument("--frames", type=int, default=300, help="frames per job (default 300)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.02, help="quick engine seconds per frame")
    parser.add_argument("--max-kill-after", type=float, default=3.0, help="kill within this many seconds of start")
    parser.add_argument("--max-stop-after", type=float, default=6.0,
                        help="stop a worker within this many seconds of start (loading takes the first 1-2 s)")
    parser.add_argument("--frame-timeout", type=float, default=2.0, help="stop trials' --frame-timeout")
    parser.add_argument("--load-timeout", type=float, default=10.0, help="stop trials' --load-timeout")
    parser.add_argument("--hang-after", type=float, default=120.0, help="a stop trial's run still going after "
                                                                         "this many seconds is hung")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    options = parser.parse_args()
    seed = options.seed if options.seed is not None else int(time.time())
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="vpipe-soak-"))
    jobs, log = work / "jobs", work / "soak.log"
    env = {**os.environ, "VPIPE_JOBS_DIR": str(jobs), "VPIPE_ENGINES": "posterize=quick_engines:load",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fixtures"), str(ROOT)]),
           "POSTERIZE_DELAY": str(options.delay)}
    env.pop("VPIPE_FAULTS", None)
    clip, model = work / "clip.mp4", work / "model.bin"
    subprocess.run([video.tools().ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30",
                    "-frames:v", str(options.frames), "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)], check=True)
    model.write_bytes(b"quick engine")
    stylize = ["stylize", "--engine", "posterize", "--style", str(model), "--chunk", str(options.chunk),
               "--workers", str(options.workers)]
    timeouts = ["--frame-timeout", f"{options.frame_timeout:g}", "--load-timeout", f"{options.load_timeout:g}"]
    tally, started = Tally(), time.monotonic()
    job_list: list[Job] = []

    def new_job() -> Job:
        job = Job(jobs, f"soak{len(job_list) + 1}")
        subprocess.run([sys.executable, "-m", "pipeline.cli", "split", str(clip), "--job", job.name], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        job_list.append(job)
        tally.frames += options.frames
        return job

    trials = ["kill"] * options.trials + ["stop"] * options.stops
    rng.shuffle(trials)
    job = new_job()
    while trials:
        trial = trials.pop()
        if trial == "kill":
            workers = kill_trial(vpipe([*stylize, "--job", job.name], env, log), rng, options, tally)
        else:
            missed = tally.stops_missed
            workers = stop_trial(vpipe([*stylize, *timeouts, "--job", job.name], env, log), job, rng, options, tally)
            if tally.stops_missed > missed and tally.stops_missed <= options.stops:
                trials.insert(rng.randrange(len(trials) + 1), "stop")  # the run ended first: stop another
        deadline = time.monotonic() + 10
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.02)
        tally.stray_workers += sum(alive(w) for w in workers)
        for w in workers:
            if alive(w):
                os.kill(w, signal.SIGKILL)
        if job.check(tally):
            job = new_job()
    for each in job_list:  # resume every job to the end, then the last check
        try:
            done = subprocess.run([sys.executable, "-m", "pipeline.cli", *stylize, "--job", each.name], env=env,
                                  capture_output=True, text=True, timeout=options.hang_after)
            if done.returncode != 0:
                tally.refused_runs += 1
        except subprocess.TimeoutExpired:
            tally.hung += 1
        if not each.check(tally):
            tally.lost.update((each.name, i) for i in range(1, options.frames + 1) if i not in each.known)
        tmp = list((each.root / "styled").glob(f".*{storage.TMP_MARK}*"))
        tally.corrupt.update((each.name, p.name) for p in tmp)
    seconds = time.monotonic() - started
    costs = ", ".join(f"{n} cost {what}" for what, n in tally.stop_costs.items())
    print(f"soak: {tally.kills} coordinator SIGKILLs at a random moment ({tally.kills_before_ready} before any "
          f"worker started; {tally.completed_runs} runs finished first), {tally.stops} worker SIGSTOPs "
          f"(--frame-timeout {options.frame_timeout:g}, --load-timeout {options.load_timeout:g}: {costs}; "
          f"{tally.stops_missed} runs ended before a stop), {tally.frames} frames in {len(job_list)} jobs, "
          f"seed {seed}: frames lost {len(tally.lost)}, corrupt outputs {len(tally.corrupt)}, "
          f"recomputed frames {len(tally.recomputed)}, hung runs {tally.hung}; stray workers {tally.stray_workers}, "
          f"runs refused {tally.refused_runs}, {seconds:.0f} s")
    if tally.lost or tally.corrupt or tally.recomputed or tally.hung:
        print(f"lost: {sorted(tally.lost)[:20]}\ncorrupt: {sorted(map(str, tally.corrupt))[:20]}\n"
              f"recomputed: {sorted(tally.recomputed)[:20]}\nwork folder kept: {work}")
        return 1
    if not options.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work folder: {work}")
    return 1 if tally.stray_workers or tally.refused_runs else 0


if __name__ == "__main__":
    sys.exit(main())
