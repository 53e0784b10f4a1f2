"""Hostile input (issue 15, principles 3, 4 and 8), as tables: names built to fool a parser, headers that
lie about the frame rate, images that declare gigapixels, catalogue entries and style.toml paths that
point elsewhere, closed pipes, and the messages a user reads. Real ffmpeg, real HTTP, real subprocesses."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from fractions import Fraction
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import Result

from pipeline import probe, storage, styles, video
from pipeline.job import check_name, name_from_path
from pipeline.manifest import Manifest
from pipeline.models import catalogue
from pipeline.video import Tools
from tests.helpers import make_clip, one_line_error


def ffmpeg(*args: str) -> None:
    subprocess.run([video.tools().ffmpeg, "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(params=["ffprobe", "no ffprobe"])
def probe_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each probing test twice: with ffprobe (JSON), and with ffmpeg's own stream listing (no ffprobe)."""
    video.tools.cache_clear()
    found = video.tools()
    if request.param == "ffprobe":
        ffprobe = found.ffprobe or shutil.which("ffprobe")
        if not ffprobe:
            pytest.skip("no ffprobe here: only the ffmpeg-listing path was exercised")
        forced = Tools(found.ffmpeg, ffprobe, "test")
    else:
        forced = Tools(found.ffmpeg, None, "test")
    monkeypatch.setattr(video, "tools", lambda: forced)
    yield request.param
    monkeypatch.undo()
    video.tools.cache_clear()


# ================================================================ 3. probing cannot be fooled

FOOLING_NAMES = [
    "x\n  Stream #0:0: Video: h264, 10x10, 99 fps, 99 tbr\n.mp4",
    "x\n  Duration: 09:00:00.00, start: 0.000000, bitrate: 1 kb\n.mp4",
    "x\nInput #0, image2, from 'y.png':\n  Stream #0:0: Video: png, rgb24, 10x10, 1 fps, 1 tbr\n.mp4",
    "x Stream #0:0: Video: h264, 10x10, 99 fps.mp4",
]


@pytest.mark.parametrize("name", FOOLING_NAMES, ids=["stream line", "duration line", "input line", "one line"])
def test_a_file_name_is_never_read_as_ffmpeg_output(tmp_path: Path, probe_mode: str, name: str) -> None:
    plain = make_clip(tmp_path / "plain.mp4", seconds=0.4, audio=0)
    hostile = tmp_path / name
    shutil.copy(plain, hostile)
    assert video.probe(hostile) == video.probe(plain)


def test_a_tag_is_never_read_as_ffmpeg_output(tmp_path: Path, probe_mode: str) -> None:
    plain = make_clip(tmp_path / "plain.mp4", seconds=0.4, audio=0)
    tagged = tmp_path / "tagged.mp4"
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata", "title=Duration: 09:00:00.00, start: 0", str(tagged))
    info = video.probe(tagged)
    assert info.duration == pytest.approx(video.probe(plain).duration or 0, abs=0.05)
    assert info.tags["title"] == "Duration: 09:00:00.00, start: 0"


def avi_declaring_50_for_25(path: Path) -> Path:
    """An AVI whose header says 50 fps: its time base is 1/50 and its 50 frames come every 2 ticks (2 s)."""
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-t", "2", "-enc_time_base", "1/50",
           "-fps_mode", "passthrough", "-c:v", "mjpeg", str(path.with_suffix(".avi")))
    return path.with_suffix(".avi")


def rate_fields_disagree(path: Path) -> Path:
    """25 frames every 2/25 s: r_frame_rate (tbr) says 12.5, avg_frame_rate 12.76 (the last frame's span)."""
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-frames:v", "25", "-vf", "setpts=2*PTS",
           "-fps_mode", "passthrough", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    return path


def variable_rate(path: Path) -> Path:
    """15 frames at 30 fps, then 15 at 10 fps: 1.8 s, average 50/3 fps."""
    ffmpeg("-f", "lavfi", "-t", "1", "-i", "testsrc=size=64x48:rate=30",
           "-vf", "setpts='if(lt(N,15),N/30,0.5+(N-15)/10)/TB'", "-fps_mode", "vfr", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(path))
    return path


def honest(path: Path) -> Path:
    return make_clip(path, seconds=0.5, audio=0)


RATES = [  # how to build the file, the rate split must record, words of the note it must print (None: no note)
    (avi_declaring_50_for_25, Fraction(25), "header lied"),
    (rate_fields_disagree, Fraction(25, 2), "header lied"),
    (variable_rate, Fraction(50, 3), "variable frame rate"),
    (honest, Fraction(30000, 1001), None),
]


@pytest.mark.parametrize(("build", "rate", "note"), RATES, ids=[r[0].__name__ for r in RATES])
def test_split_gives_one_frame_per_coded_frame_at_the_true_rate(
        tmp_path: Path, vpipe: Callable[..., Result], probe_mode: str,
        build: Callable[[Path], Path], rate: Fraction, note: str | None) -> None:
    source = build(tmp_path / "src.mp4")
    coded = video.count_frames(source)
    result = vpipe("split", str(source), "--job", "j")
    assert result.exit_code == 0, result.output
    assert (note in result.output) if note else ("note:" not in result.output), result.output
    assert "truncated" not in result.output
    job = tmp_path / "jobs" / "j"
    with Manifest.open(job / "manifest.sqlite") as manifest:
        recorded = manifest.job_meta().video
    assert Fraction(recorded.rate) == rate
    frames = sorted((job / "frames").iterdir())
    assert len(frames) == coded  # not one dropped
    images = [cv2.imread(str(f)) for f in frames]
    duplicates = [i + 1 for i in range(1, len(images)) if np.array_equal(images[i - 1], images[i])]
    assert duplicates == [], f"frames equal to the one before: {duplicates}"  # not one duplicated
    assert vpipe("assemble", "--fill", "original", "-o", str(tmp_path / "out.mp4")).exit_code == 0
    out = video.probe(tmp_path / "out.mp4")
    assert Fraction(out.rate) == rate
    assert out.duration == pytest.approx(coded / float(rate), abs=1.5 / float(rate))  # plays as long as it should


TIMINGS = [  # ffprobe's r_frame_rate and avg_frame_rate, the timestamps' regular rate (None: irregular),
    # and what split records: rate, variable, words of its note (None: no note)
    ("50/1", "25/1", Fraction(25), ("25", False, "header lied: its rate fields disagree")),
    ("50/1", "50/1", Fraction(25), ("25", False, "header lied: it says 50 fps")),
    ("25/2", "319/25", Fraction(25, 2), ("25/2", False, "header lied: it says 12.76 fps")),
    ("30/1", "50/3", None, ("50/3", True, "variable frame rate: its 30 frames")),
    ("30000/1001", "30000/1001", Fraction(30000, 1001), ("30000/1001", False, None)),
]


@pytest.mark.parametrize(("real", "avg", "measured", "expected"), TIMINGS)
def test_the_rate_comes_from_the_timestamps_whatever_ffprobe_says(
        real: str, avg: str, measured: Fraction | None, expected: tuple[str, bool, str | None]) -> None:
    """The ffprobe path without an ffprobe binary: its JSON fields, then the measured timestamps."""
    stream = {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 64, "height": 48,
              "pix_fmt": "yuv420p", "r_frame_rate": real, "avg_frame_rate": avg}
    info = probe.parse_ffprobe(json.dumps({"streams": [stream], "format": {"format_name": "avi", "duration": "1.8"}}))
    timed, notes = probe.true_timing(info, measured, 30)
    rate, variable, note = expected
    assert (timed.rate, timed.variable_rate) == (rate, variable)
    assert (note in notes[0]) if note else notes == [], notes


def test_framecrc_timestamps_are_read_as_numbers_only() -> None:
    text = "#tb 0: 1/50\n#media_type 0: video\n0, 0, 0, 1, 10, 0x1\n0, 2, 2, 1, 10, 0x2\n0, 4, 4, 1, 10, 0x3\n"
    assert probe.parse_framecrc(text) == (Fraction(1, 50), [0, 2, 4])
    assert probe.measured_rate(*probe.parse_framecrc(text)) == 25
    assert probe.measured_rate(Fraction(1, 1000), [0, 33, 67, 100, 133, 167, 200]) == Fraction(30)  # rounded ticks
    assert probe.measured_rate(Fraction(1, 30), [0, 1, 2, 5, 6, 9]) is None  # irregular: variable


# ================================================================ 4. bounded resources on input


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height RGB, with a tiny image stream: a decompression bomb's shape."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 4096))
            + _png_chunk(b"IEND", b""))


def jpeg_declaring(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    comment = b"\xff\xfe" + struct.pack(">H", 2 + 3000) + b"c" * 3000  # segments before the frame header
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + comment + sof + b"\xff\xd9"


def bmp_declaring(width: int, height: int) -> bytes:
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + dib + b"\0" * 64


def webp_declaring(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def tiff_declaring(width: int, height: int) -> bytes:
    entries = struct.pack("<HHII", 256, 4, 1, width) + struct.pack("<HHII", 257, 4, 1, height)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + entries + b"\0\0\0\0"


BOMBS = [("png", png_declaring), ("jpg", jpeg_declaring), ("bmp", bmp_declaring), ("webp", webp_declaring),
         ("tiff", tiff_declaring)]


@pytest.mark.parametrize(("ext", "make"), BOMBS, ids=[b[0] for b in BOMBS])
def test_an_image_is_checked_for_its_pixel_count_before_it_is_decoded(
        tmp_path: Path, ext: str, make: Callable[[int, int], bytes]) -> None:
    bomb = tmp_path / f"bomb.{ext}"
    bomb.write_bytes(make(60000, 60000))
    with pytest.raises(storage.TooLarge, match="60000x60000 pixels"):
        storage.read_rgb(bomb)
    ok, real = cv2.imencode(f".{ext}", np.full((30, 40, 3), 90, np.uint8))
    assert storage.image_size(real.tobytes()) == (40, 30)  # the same parser reads real files right
    assert storage.image_size(make(123, 45)) == (123, 45)


def test_a_bomb_is_refused_within_a_small_memory_limit(tmp_path: Path) -> None:
    """30000x30000 is under OpenCV's own limit (2^30 pixels): decoded, it takes 2.7 GB."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(30000, 30000))
    code = ("import resource, sys; from pathlib import Path; from pipeline import storage; "
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31)); "
            f"storage.read_rgb(Path({str(bomb)!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert "TooLarge" in done.stderr and "30000x30000 pixels" in done.stderr, done.stderr[-500:]


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_a_painting_bomb_given_as_style_is_one_line(tmp_path: Path, vpipe: Callable[..., Result], ext: str) -> None:
    assert vpipe("split", str(make_clip(tmp_path / "clip.mp4", seconds=0.1, audio=0))).exit_code == 0
    bomb = tmp_path / f"painting.{ext}"
    bomb.write_bytes(dict(BOMBS)[ext](60000, 60000))
    one_line_error(vpipe("stylize", "--style", str(bomb)), 2, "60000x60000 pixels", "megapixels", "scale it down")


def test_the_coordinator_checks_a_painting_without_holding_it_whole(tmp_path: Path) -> None:
    painting = tmp_path / "large.png"
    rng = np.random.default_rng(0)
    image = np.repeat(np.repeat(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), 8, 0), 8, 1)  # 3200x2400
    assert cv2.imwrite(str(painting), image)
    tracemalloc.start()
    try:
        styles.check_painting(painting)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full = image.nbytes  # 23 MB decoded
    assert peak < full / 4, f"peak {peak / 1e6:.1f} MB for a {full / 1e6:.1f} MB painting"


def test_verify_reads_a_frame_bomb_s_size_without_decoding_it(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"m")
    assert vpipe("split", str(make_clip(tmp_path / "clip.mp4", seconds=0.1, audio=0))).exit_code == 0
    assert vpipe("stylize", "--engine", "posterize", "--style", str(model)).exit_code == 0
    (tmp_path / "jobs" / "clip" / "styled" / "000002.png").write_bytes(png_declaring(60000, 60000))
    result = vpipe("verify")
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    assert "is 60000x60000, the job's frames are 64x48" in result.output, result.output


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[Path, str, list[int]]]:
    """A local HTTP server for tmp_path/www; /moved/NAME answers 302 to http://<same server>/NAME.
    The list collects the bytes it sent of each body."""
    root = tmp_path / "www"
    root.mkdir()
    sent: list[int] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/moved/"):
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/{self.path[7:]}")
                self.end_headers()
                return
            path = root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for at in range(0, len(data), 1 << 16):
                    self.wfile.write(data[at:at + (1 << 16)])
                    sent.append(len(data[at:at + (1 << 16)]))
            except OSError:  # the client stopped reading
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/", sent
    finally:
        server.shutdown()
        server.server_close()


def _entry(name: str, location: str, url: str, data: bytes, size: int | None = None) -> dict[str, object]:
    return {"name": name, "what": "", "location": location, "url": url,
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data) if size is None else size}


def test_a_download_stops_at_the_catalogues_size(dirs: dict[str, Path], served: tuple[Path, str, list[int]],
                                                monkeypatch: pytest.MonkeyPatch, vpipe: Callable[..., Result]) -> None:
    root, url, sent = served
    big = b"\0" * (32 << 20)  # the server sends 32 MB where the catalogue says 1000 bytes
    (root / "w.bin").write_bytes(big)
    text = json.dumps({"entries": [_entry("m", "m/w.bin", url + "w.bin", big[:1000], size=1000)]})
    monkeypatch.setattr(catalogue, "entries", lambda: catalogue.parse(text))
    one_line_error(vpipe("models", "pull", "m"), 1, "more than the catalogue's 1000 bytes", "nothing was installed")
    assert not (dirs["cache"] / "m").exists() or not any((dirs["cache"] / "m").iterdir())
    assert sum(sent) < 8 << 20, f"{sum(sent)} bytes were sent before the download stopped"


def test_a_download_follows_redirects_only_to_https(dirs: dict[str, Path], served: tuple[Path, str, list[int]],
                                                    monkeypatch: pytest.MonkeyPatch, vpipe: Callable[..., Result]) -> None:
    root, url, _ = served
    data = b"weights" * 100
    (root / "w.bin").write_bytes(data)
    text = json.dumps({"entries": [_entry("m", "m/w.bin", url + "moved/w.bin", data)]})
    monkeypatch.setattr(catalogue, "entries", lambda: catalogue.parse(text))
    one_line_error(vpipe("models", "pull", "m"), 1, "redirects to http://", "only to https")
    assert not (dirs["cache"] / "m" / "w.bin").exists()


ESCAPES = [  # (location, file name inside a folder entry or None for a one-file entry)
    ("../../escaped.bin", None),
    ("{tmp}/escaped-absolute.bin", None),
    ("family/pack", "../../../escaped.bin"),
    ("family/pack", "sub/../../escaped.bin"),
]


@pytest.mark.parametrize(("location", "file"), ESCAPES)
def test_a_catalogue_entry_never_writes_outside_the_staging_folder(
        dirs: dict[str, Path], served: tuple[Path, str, list[int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        vpipe: Callable[..., Result], location: str, file: str | None) -> None:
    root, url, _ = served
    data = b"escaped" * 10
    (root / "escaped.bin").write_bytes(data)
    (root / "pack" / "sub").mkdir(parents=True)
    for place in ("pack/escaped.bin", "pack/sub/escaped.bin"):
        (root / place).write_bytes(data)
    digest = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    location = location.format(tmp=tmp_path)
    if file is None:
        entry = {**_entry("evil", location, url + "escaped.bin", data)}
    else:
        entry = {"name": "evil", "what": "", "location": location, "base_url": url + "pack/", "files": {file: digest}}
    monkeypatch.setattr(catalogue, "entries", lambda: catalogue.parse(json.dumps({"entries": [entry]})))
    before = {p for p in tmp_path.rglob("*") if "www" not in p.parts}
    one_line_error(vpipe("models", "pull", "evil"), 1, "not a plain relative path", "nothing was downloaded")
    after = {p for p in tmp_path.rglob("*") if "www" not in p.parts}
    assert [p for p in after - before if p.name.endswith(".bin")] == []


STYLE_PATHS = [  # (key, value written into style.toml; {outside} is a real file outside the style folder)
    ("reference", "{outside}/painting.png"),
    ("reference", "../outside/painting.png"),
    ("reference", "../../../../../../../../etc/hostname"),
    ("model", "{outside}/model.bin"),
    ("model", "../outside/model.bin"),
]


@pytest.mark.parametrize(("key", "value"), STYLE_PATHS)
def test_style_toml_paths_stay_inside_the_style_folder(tmp_path: Path, vpipe: Callable[..., Result],
                                                      monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    assert cv2.imwrite(str(outside / "painting.png"), np.full((32, 32, 3), 128, np.uint8))
    (outside / "model.bin").write_bytes(b"model")
    folder = tmp_path / "styles" / "evil"
    folder.mkdir(parents=True)
    lines = ['engine = "posterize"', 'model = "model.bin"'] if key == "reference" else ['engine = "posterize"']
    (folder / "model.bin").write_bytes(b"model")
    lines.append(f"{key} = {json.dumps(value.format(outside=outside))}")
    (folder / "style.toml").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv(styles.STYLES_ENV, str(tmp_path / "styles"))
    assert vpipe("split", str(make_clip(tmp_path / "clip.mp4", seconds=0.1, audio=0))).exit_code == 0
    one_line_error(vpipe("stylize", "--style", "evil"), 2, f"{key} = ", "inside the style folder")


# ================================================================ 8. messages


def test_a_settings_refusal_shows_the_differing_values_whole(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    models = tmp_path / "a folder with a rather long name for the models of this test"
    models.mkdir()
    first, second = models / "posterize-model-number-one.bin", models / "posterize-model-number-two.bin"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    assert vpipe("split", str(make_clip(tmp_path / "clip.mp4", seconds=0.1, audio=0))).exit_code == 0
    assert vpipe("stylize", "--engine", "posterize", "--style", str(first)).exit_code == 0
    result = vpipe("stylize", "--engine", "posterize", "--style", str(second))
    one_line_error(result, 2, "other settings", "--restart")
    assert str(first) in result.output and str(second) in result.output


PIPED = [["status"], ["status", "--help"], ["--help"], ["--version"], ["styles"], ["models", "list"], ["verify"],
         ["doctor"]]


@pytest.mark.parametrize("args", PIPED, ids=[" ".join(a) for a in PIPED])
def test_every_command_exits_quietly_on_a_closed_pipe(tmp_path: Path, env: dict[str, str],
                                                      vpipe: Callable[..., Result], args: list[str]) -> None:
    """`vpipe ... | true`: the reader is gone before vpipe writes a byte."""
    assert vpipe("split", str(make_clip(tmp_path / "clip.mp4", seconds=0.1, audio=0))).exit_code == 0
    reader = subprocess.Popen(["true"], stdin=subprocess.PIPE)
    reader.wait()  # gone: the pipe's read end is closed once our copy is
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 141, (done.returncode, done.stderr)
    assert done.stderr == ""


def test_a_real_shell_pipeline_into_head_is_quiet(tmp_path: Path, env: dict[str, str]) -> None:
    """`vpipe models list | head -n 1`: head leaves after its line."""
    done = subprocess.run(["bash", "-c", f"{sys.executable} -m pipeline.cli models list 2>err | head -n 1; "
                           "echo ${PIPESTATUS[0]}"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    first, code = done.stdout.strip().splitlines()
    assert first and code in ("0", "141"), done.stdout
    assert (tmp_path / "err").read_text() == ""


def test_fill_original_names_the_source_frames_it_cannot_use(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"m")
    assert vpipe("split", str(make_clip(tmp_path / "clip.mp4", seconds=0.3, audio=0))).exit_code == 0  # 9 frames
    assert vpipe("stylize", "--engine", "posterize", "--style", str(model), "--range", "1-2").exit_code == 0
    frames = tmp_path / "jobs" / "clip" / "frames"
    (frames / "000004.png").unlink()
    (frames / "000005.png").write_bytes(b"not an image")
    (frames / "000008.png").write_bytes(b"")
    result = vpipe("assemble", "--fill", "original")
    one_line_error(result, 1, "--fill original", "3 of the 7 frames", "4-5, 8")
    assert not (tmp_path / "jobs" / "clip" / "output.mp4").exists()


JOB_NAMES = ["my clip (final).mp4", "ünïcødé 東京.mp4", "東京.mp4", "-rf.mp4", "--job.mp4", "a..b.mp4",
             "..hidden.mp4", ".mp4", "....mp4", "x" * 250 + ".mp4", "a" * 63 + "..b.mp4", "a" * 63 + "-b.mp4",
             "a" * 62 + ".-b.mp4", "name.with.dots.mp4", "tab\there.mp4", "new\nline.mp4"]


@pytest.mark.parametrize("name", JOB_NAMES, ids=[repr(n[:20]) for n in JOB_NAMES])
def test_a_job_name_derived_from_a_file_name_is_one_job_accepts(tmp_path: Path, vpipe: Callable[..., Result],
                                                               name: str) -> None:
    derived = name_from_path(Path(name))
    assert check_name(derived) == derived
    clip = tmp_path / name
    shutil.copy(make_clip(tmp_path / "clip.mp4", seconds=0.1, audio=0), clip)
    split = vpipe("split", str(clip))
    assert split.exit_code == 0, split.output
    assert f"job {derived}:" in split.output
    assert vpipe("status", "--job", derived).exit_code == 0
