"""Pure frame-number helpers: ranges, chunks, spans and file names."""

from __future__ import annotations

import random

import pytest

from pipeline.errors import UsageError
from pipeline.frames import (
    FrameRange,
    count_sequence,
    describe_spans,
    frame_name,
    frame_pattern,
    name_width,
    parse_range,
    plan_chunks,
    spans,
)

# ---------------------------------------------------------------- parse_range


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("135-6835", 135, 6835),
        ("7", 7, 7),
        ("100-", 100, None),
        ("1-1", 1, 1),
        (" 135 - 6835 ", 135, 6835),
        ("  7  ", 7, 7),
        ("100 - ", 100, None),
        ("\t3-4\n", 3, 4),
    ],
)
def test_parse_range_accepts(text: str, first: int, last: int | None) -> None:
    assert parse_range(text) == FrameRange(first, last)


@pytest.mark.parametrize("text", ["0-5", "0", "10-5", "abc", "", "   ", "-3", "5-x", "1-2-3", "5--6", "1.5-3", "+3"])
def test_parse_range_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_range(text)


def test_parse_range_messages_say_what_is_wrong() -> None:
    with pytest.raises(UsageError, match="numbered from 1"):
        parse_range("0-5")
    with pytest.raises(UsageError, match="end comes before the start"):
        parse_range("10-5")
    with pytest.raises(UsageError, match="not of the form"):
        parse_range("abc")


def test_usage_error_exit_code() -> None:
    with pytest.raises(UsageError) as caught:
        parse_range("")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(("rng", "text"), [(FrameRange(100), "100-"), (FrameRange(7, 7), "7"),
                                           (FrameRange(135, 6835), "135-6835")])
def test_frame_range_str_round_trips(rng: FrameRange, text: str) -> None:
    assert str(rng) == text
    assert parse_range(text) == rng


# ---------------------------------------------------------------- FrameRange.resolve


def test_resolve_closed_range() -> None:
    assert parse_range("135-6835").resolve(7000) == (135, 6835)
    assert parse_range("7").resolve(7) == (7, 7)


def test_resolve_open_range_goes_to_the_total() -> None:
    assert parse_range("100-").resolve(6835) == (100, 6835)
    assert parse_range("1-").resolve(1) == (1, 1)


@pytest.mark.parametrize(("text", "total"), [("1-101", 100), ("101", 100), ("101-", 100), ("200-300", 100)])
def test_resolve_beyond_the_last_frame(text: str, total: int) -> None:
    with pytest.raises(UsageError, match=r"\(100\)"):
        parse_range(text).resolve(total)


def test_resolve_message_names_range_and_total() -> None:
    with pytest.raises(UsageError) as caught:
        parse_range("5-12").resolve(10)
    assert "5-12" in str(caught.value)
    assert "10" in str(caught.value)


# ---------------------------------------------------------------- plan_chunks


def test_plan_chunks_sizes() -> None:
    assert plan_chunks(range(1, 11), 4) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert plan_chunks(range(1, 9), 4) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert plan_chunks(range(1, 4), 1) == [[1], [2], [3]]
    assert plan_chunks(range(1, 4), 100) == [[1, 2, 3]]


def test_plan_chunks_even_out_so_workers_finish_together() -> None:
    assert [len(c) for c in plan_chunks(range(1, 121), 50, workers=2)] == [30, 30, 30, 30]
    assert plan_chunks(range(1, 11), 4, workers=1) == plan_chunks(range(1, 11), 4)
    rng = random.Random(3)
    for _ in range(300):
        n, workers, size = rng.randint(1, 400), rng.randint(1, 6), rng.randint(1, 60)
        chunks = plan_chunks(range(1, n + 1), size, workers)
        assert [f for c in chunks for f in c] == list(range(1, n + 1))
        assert max(len(c) for c in chunks) <= size
        free = [0] * workers  # each worker takes the next chunk when it is free; one time unit per frame
        for c in chunks:
            free[free.index(min(free))] += len(c)
        rounds = -(-n // (workers * size))
        assert max(free) <= n / workers + rounds, (n, workers, size, free)


def test_plan_chunks_empty() -> None:
    assert plan_chunks([], 5) == []


def test_plan_chunks_gap_starts_a_new_chunk() -> None:
    assert plan_chunks([1, 2, 3, 5, 6, 9], 10) == [[1, 2, 3], [5, 6], [9]]
    assert plan_chunks([1, 2, 3, 5, 6, 7, 8, 9], 3) == [[1, 2, 3], [5, 6, 7], [8, 9]]


def test_plan_chunks_sorts_its_input() -> None:
    assert plan_chunks([9, 3, 1, 2, 6, 5], 10) == [[1, 2, 3], [5, 6], [9]]
    frames = list(range(1, 101))
    random.Random(7).shuffle(frames)
    assert plan_chunks(frames, 25) == plan_chunks(range(1, 101), 25)


def test_plan_chunks_every_chunk_is_contiguous_and_bounded() -> None:
    frames = [f for f in range(1, 500) if f % 7 and f % 11]
    chunks = plan_chunks(frames, 8)
    assert [f for chunk in chunks for f in chunk] == frames
    for chunk in chunks:
        assert 1 <= len(chunk) <= 8
        assert chunk == list(range(chunk[0], chunk[-1] + 1))


@pytest.mark.parametrize("size", [0, -1])
def test_plan_chunks_size_below_one(size: int) -> None:
    with pytest.raises(UsageError, match="chunk size"):
        plan_chunks([1, 2, 3], size)


# ---------------------------------------------------------------- spans / describe_spans


def test_spans() -> None:
    assert spans([1, 2, 3, 7]) == [(1, 3), (7, 7)]
    assert spans([7, 3, 1, 2, 3]) == [(1, 3), (7, 7)]
    assert spans([]) == []
    assert spans([5]) == [(5, 5)]
    assert spans([1, 3, 5]) == [(1, 1), (3, 3), (5, 5)]


def test_describe_spans() -> None:
    assert describe_spans([1, 2, 3, 7, *range(12, 41)]) == "1-3, 7, 12-40"
    assert describe_spans([]) == ""
    assert describe_spans([42]) == "42"


def test_describe_spans_truncates() -> None:
    frames = list(range(1, 25, 2))  # 12 single-frame spans: 1, 3, ..., 23
    text = describe_spans(frames)
    assert text == "1, 3, 5, 7, 9, 11, 13, 15, 17, 19, ... and 2 more spans"
    assert describe_spans(frames, limit=3) == "1, 3, 5, ... and 9 more spans"


def test_describe_spans_exactly_at_the_limit_is_not_truncated() -> None:
    frames = list(range(1, 20, 2))  # 10 spans
    assert describe_spans(frames) == "1, 3, 5, 7, 9, 11, 13, 15, 17, 19"
    assert "more" not in describe_spans(frames)


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(("count", "width"), [(0, 6), (1, 6), (6835, 6), (999_999, 6), (1_000_000, 7),
                                              (9_999_999, 7), (10_000_000, 8)])
def test_name_width(count: int, width: int) -> None:
    assert name_width(count) == width


def test_frame_name() -> None:
    assert frame_name(7, 6, "png") == "000007.png"
    assert frame_name(1_000_000, 7, "jpg") == "1000000.jpg"
    assert frame_name(12, 7, "png") == "0000012.png"


@pytest.mark.parametrize(("width", "ext"), [(6, "png"), (7, "jpg"), (8, "png")])
def test_frame_pattern_agrees_with_frame_name(width: int, ext: str) -> None:
    pattern = frame_pattern(width, ext)
    assert pattern == f"%0{width}d.{ext}"
    for i in (1, 7, 99, 12345, 999_999, 1_000_000):
        assert pattern % i == frame_name(i, width, ext)


def test_sorted_names_are_in_frame_order() -> None:
    """os.listdir order is arbitrary; sorting names must give numeric order (zero padding)."""
    count = 1200
    width = name_width(count)
    names = [frame_name(i, width, "png") for i in range(1, count + 1)]
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    assert sorted(shuffled) == names
    assert [int(n.split(".")[0]) for n in sorted(shuffled)] == list(range(1, count + 1))


def test_sorted_names_are_in_frame_order_across_a_million() -> None:
    width = name_width(1_000_001)
    names = [frame_name(i, width, "png") for i in (1, 9, 10, 999_999, 1_000_000, 1_000_001)]
    assert sorted(reversed(names)) == names


# ---------------------------------------------------------------- count_sequence


def test_count_sequence_gapless() -> None:
    names = [frame_name(i, 6, "png") for i in range(1, 31)]
    assert count_sequence(names, 6, "png") == 30
    assert count_sequence(list(reversed(names)), 6, "png") == 30
    assert count_sequence([], 6, "png") == 0


def test_count_sequence_gap() -> None:
    names = [frame_name(i, 6, "png") for i in (1, 2, 4)]
    with pytest.raises(ValueError, match="gapless"):
        count_sequence(names, 6, "png")


def test_count_sequence_not_starting_at_one() -> None:
    with pytest.raises(ValueError):
        count_sequence([frame_name(i, 6, "png") for i in range(2, 5)], 6, "png")


def test_count_sequence_wrong_width() -> None:
    names = [frame_name(i, 7, "png") for i in range(1, 4)]
    with pytest.raises(ValueError):
        count_sequence(names, 6, "png")


def test_count_sequence_wrong_extension() -> None:
    names = [frame_name(i, 6, "jpg") for i in range(1, 4)]
    with pytest.raises(ValueError):
        count_sequence(names, 6, "png")


def test_count_sequence_stray_file() -> None:
    names = [frame_name(i, 6, "png") for i in range(1, 4)] + ["notes.txt"]
    with pytest.raises(ValueError, match="notes.txt"):
        count_sequence(names, 6, "png")
