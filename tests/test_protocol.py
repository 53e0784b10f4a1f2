"""The worker protocol: every event kind through the one codec, the worker config, exit descriptions, the plan."""

from __future__ import annotations

import signal
from dataclasses import FrozenInstanceError

import pytest

from pipeline.executors.plan import Plan, plan
from pipeline.executors.protocol import (
    Event,
    Kind,
    WorkerConfig,
    decode_chunk,
    decode_config,
    decode_event,
    describe_exit,
    encode_chunk,
    encode_config,
    encode_event,
)
from pipeline.manifest import ErrorKind
from pipeline.resources import DEFAULT_CAP, DEFAULT_FLOOR, GiB

PAYLOADS: dict[Kind, dict[str, object]] = {
    Kind.READY: {"pid": 4321},
    Kind.START: {"frame": 7},
    Kind.STYLED: {"frame": 7},
    Kind.WRITING: {"frame": 7},
    Kind.DONE: {"frame": 7, "seconds": 0.25, "hash": "ab12", "stats": {"previous": "done", "tiles": 4}},
    Kind.FAILED: {"frame": 7, "kind": ErrorKind.OUT_OF_MEMORY, "message": "out of memory"},
    Kind.CHUNK_END: {},
    Kind.FATAL: {"message": "model.bin is not a style model"},
    Kind.EXIT: {"returncode": -11, "pid": 4321, "stderr_tail": "Fatal Python error | Segmentation fault"},
    Kind.RETIRED: {"pid": 3, "reason": "Ray could not place a worker within 120 s"},
    Kind.REFUSED: {"message": "cannot see the job folder"},
}


def test_every_kind_has_a_payload_here() -> None:
    assert set(PAYLOADS) == set(Kind)


@pytest.mark.parametrize("kind", list(Kind))
def test_every_event_kind_round_trips_as_one_line(kind: Kind) -> None:
    line = encode_event(kind, **PAYLOADS[kind])
    assert line.endswith("\n") and line.count("\n") == 1
    event = decode_event(line, slot=3)
    assert event == Event(3, kind, PAYLOADS[kind])
    assert event is not None and type(event.kind) is Kind


def test_a_failed_event_keeps_its_error_kind_beside_the_event_kind() -> None:
    event = decode_event(encode_event(Kind.FAILED, frame=1, kind=ErrorKind.DISK_FULL, message="ENOSPC"), 0)
    assert event is not None and event.kind == Kind.FAILED
    assert ErrorKind(event.data["kind"]) == ErrorKind.DISK_FULL


@pytest.mark.parametrize("line", ["", "not json\n", "[1, 2]\n", '{"frame": 1}\n', '{"event": "bogus"}\n'])
def test_a_line_that_is_not_an_event_is_skipped(line: str) -> None:
    assert decode_event(line, 0) is None


def test_chunks_round_trip() -> None:
    assert decode_chunk(encode_chunk([4, 5, 6])) == [4, 5, 6]


def config(**changes: object) -> WorkerConfig:
    base = WorkerConfig(engine="fast", model="/m/starry.bin", frames_dir="/j/frames", styled_dir="/j/styled",
                        name_width=6, ext="png", max_side=720, temporal={"weight": 0.3},
                        options={"batch": 1, "precision": "fp16", "style_image": "/s/starry.jpg"})
    return WorkerConfig(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_the_worker_config_round_trips_whole() -> None:
    planned = config().planned(Plan(workers=2, threads=3, max_memory=2 * GiB))
    assert decode_config(encode_config(planned)) == planned
    assert decode_config(encode_config(config(temporal=None, max_side=None))) == config(temporal=None, max_side=None)


def test_a_config_with_a_field_the_worker_does_not_know_is_refused() -> None:
    line = encode_config(config()).replace('"engine"', '"enginee"')
    with pytest.raises(ValueError, match="enginee"):
        decode_config(line)


def test_the_plan_makes_a_new_config_and_leaves_the_old_one_as_it_was() -> None:
    before = config()
    after = before.planned(Plan(workers=2, threads=3, max_memory=GiB))
    assert (before.threads, before.max_memory) == (0, None)
    assert (after.threads, after.max_memory) == (3, GiB)
    assert after.engine_options() == {"batch": 1, "precision": "fp16", "style_image": "/s/starry.jpg",
                                      "threads": 3, "max_memory": GiB}
    batched = before.planned(Plan(workers=1, threads=0, max_memory=GiB, gpus=1, io_threads=8, batch=4))
    assert (batched.io_threads, batched.engine_options()["batch"]) == (8, 4)
    assert "threads" not in after.options  # the engine's own options stay as given
    with pytest.raises(FrozenInstanceError):
        after.threads = 1  # type: ignore[misc]


@pytest.mark.parametrize(("returncode", "kind", "words"), [
    (-signal.SIGSEGV, ErrorKind.SEGFAULT, "SIGSEGV (segmentation fault)"),
    (-signal.SIGKILL, ErrorKind.KILLED, "killed with SIGKILL (likely out of memory)"),
    (-signal.SIGABRT, ErrorKind.CRASHED, "died with SIGABRT"),
    (-200, ErrorKind.CRASHED, "died with signal 200"),
    (1, ErrorKind.CRASHED, "exited with code 1"),
    (0, ErrorKind.CRASHED, "exited with code 0"),  # a worker never exits on its own mid-run
])
def test_describe_exit(returncode: int, kind: ErrorKind, words: str) -> None:
    found, reason = describe_exit(returncode)
    assert found is kind and words in reason


# ---------------------------------------------------------------- the plan: pure, the machine given


@pytest.mark.parametrize(("cores", "gpus", "asked", "expected"), [
    (8, 0, {}, Plan(4, 2, 4 * GiB)),  # one worker per core up to 4, the cores shared out
    (2, 0, {}, Plan(2, 1, 8 * GiB)),  # 16 GiB each would pass the cap
    (8, 0, {"workers": 2}, Plan(2, 4, 8 * GiB)),
    (8, 0, {"threads": 4}, Plan(2, 4, 8 * GiB)),
    # one worker per GPU, the engine's own threads; the cores left for frame I/O, frames batched
    (8, 2, {}, Plan(2, 0, 8 * GiB, gpus=2, io_threads=4, batch=4)),
    (2, 0, {"workers": 1, "threads": 1}, Plan(1, 1, 8 * GiB, io_threads=1)),  # one core left for I/O
    (2, 1, {"io_threads": 0, "batch": 1}, Plan(1, 0, 8 * GiB, gpus=1)),  # VPIPE_IO_THREADS, VPIPE_BATCH
    (8, 0, {"max_memory": 3 * GiB}, Plan(4, 2, 3 * GiB)),  # --max-memory as given
])
def test_the_plan(cores: int, gpus: int, asked: dict[str, int], expected: Plan) -> None:
    assert plan(cores, gpus, 32 * GiB, **asked) == expected


def test_the_budget_is_half_the_available_memory_split_over_the_workers_within_its_bounds() -> None:
    assert plan(4, 0, 16 * GiB).max_memory == 2 * GiB
    assert plan(4, 0, 1 * GiB).max_memory == DEFAULT_FLOOR
    assert plan(1, 0, 1024 * GiB).max_memory == DEFAULT_CAP
    assert plan(4, 0, None).max_memory == DEFAULT_CAP  # unknown: the cap


def test_the_plan_is_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        plan(2, 0, GiB).workers = 3  # type: ignore[misc]
