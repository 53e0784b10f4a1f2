"""The ffmpeg boundary: find the binaries, probe media, build argument lists, run them.

Argument lists are built by pure functions (testable without ffmpeg); `run` is the one place that
executes them, captures stderr and turns a failure into an error carrying its last line. Every ffmpeg
and ffprobe dies with the vpipe process that started it (children.tied).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import children, storage
from .errors import DISK_FULL_HINT, DiskFullError, MediaError, UsageError
from .probe import (
    AudioStream,
    SubtitleStream,
    VideoInfo,
    measured_rate,
    parse_ffmpeg_banner,
    parse_ffprobe,
    parse_framecrc,
    true_timing,
)

if TYPE_CHECKING:  # only frames_at returns arrays, and it decodes them through storage
    import numpy as np

# Single-image demuxers; animated GIF/APNG/WebP have demuxers of their own and count as video.
STILL_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe",
                       "pgm_pipe", "ppm_pipe", "jpegls_pipe", "j2k_pipe"}
# Audio codecs each container takes as they are; anything else is re-encoded to AAC.
COPYABLE_AUDIO = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    ".m4v": {"aac", "mp3", "ac3", "eac3", "alac"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_f32le"},
    ".mkv": None,  # Matroska takes every audio codec
}
# Subtitle codecs each container takes as they are, and what a text subtitle becomes where it is not
# one of them (MP4/MOV take only 3GPP timed text; Matroska refuses mov_text: converted to SubRip).
# A bitmap subtitle a container cannot take (PGS or DVD into MP4) cannot be converted: it is left out.
COPYABLE_SUBTITLES = {
    ".mp4": {"mov_text"}, ".m4v": {"mov_text"}, ".mov": {"mov_text"},
    ".mkv": {"subrip", "ass", "ssa", "webvtt", "dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle"},
}
TEXT_SUBTITLE_TARGET = {".mp4": "mov_text", ".m4v": "mov_text", ".mov": "mov_text", ".mkv": "srt"}
TEXT_SUBTITLES = {"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text", "microdvd", "subviewer",
                  "subviewer1", "mpl2", "pjs", "realtext", "sami", "stl", "vplayer", "jacosub"}
# The video codecs of `assemble --codec`, the containers each can be written to (ffmpeg refuses ProRes
# in MP4 and anything but H.264 in M4V; FFV1 in MP4 is written but has no registered mapping, so only
# ffmpeg-based tools would read it), and the file suffix of the default output name.
CODECS = ("h264", "h265", "prores", "ffv1")
CODEC_CONTAINERS = {
    "h264": (".mp4", ".m4v", ".mov", ".mkv"),
    "h265": (".mp4", ".mov", ".mkv"),
    "prores": (".mov", ".mkv"),
    "ffv1": (".mkv", ".mov"),
}
CODEC_SUFFIX = {"h264": ".mp4", "h265": ".mp4", "prores": ".mov", "ffv1": ".mkv"}


@dataclass(frozen=True)
class Tools:
    ffmpeg: str
    ffprobe: str | None
    origin: str


@functools.cache
def tools() -> Tools:
    """ffmpeg/ffprobe from VPIPE_FFMPEG, else PATH, else the binary shipped by imageio-ffmpeg."""
    explicit = os.environ.get("VPIPE_FFMPEG")
    if explicit:
        if not Path(explicit).is_file():
            raise MediaError(f"VPIPE_FFMPEG points at {explicit}, which is not a file")
        sibling = Path(explicit).with_name("ffprobe")
        return Tools(explicit, str(sibling) if sibling.is_file() else None, "VPIPE_FFMPEG")
    on_path = shutil.which("ffmpeg")
    if on_path:
        return Tools(on_path, shutil.which("ffprobe"), "PATH")
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise MediaError("no ffmpeg found: install it, or `pip install imageio-ffmpeg`") from exc
    return Tools(imageio_ffmpeg.get_ffmpeg_exe(), None, "imageio-ffmpeg")


def run(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    """Run one external command; a non-zero exit becomes an error with stderr's last line."""
    try:
        done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", check=False, preexec_fn=children.tied())
    except OSError as exc:
        raise MediaError(f"{what}: could not start {args[0]}: {exc.strerror}") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        if "No space left on device" in done.stderr:
            raise DiskFullError(f"{what}: no space left on the device; {DISK_FULL_HINT}")
        raise MediaError(f"{what} failed: {last}")
    return done


# ---------------------------------------------------------------- probing

@contextlib.contextmanager
def plain_name(path: Path) -> Iterator[Path]:
    """`path` under a plain name (a link in a private temp folder): ffmpeg echoes its input's name in what
    it prints, and a name (with newlines, or "Stream #0:0: Video: ...") must never be read as its output."""
    suffix = path.suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,10}", path.suffix) else ""  # some formats go by it
    with tempfile.TemporaryDirectory(prefix="vpipe-probe-") as tmp:
        link = Path(tmp) / f"input{suffix}"
        link.symlink_to(path.absolute())
        yield link


def probe(path: Path) -> VideoInfo:
    """Probe a video with ffprobe when there is one, else from ffmpeg's own stream listing."""
    t = tools()
    with plain_name(path) as plain:
        info = _probe(t, path, plain)
    if info.container in STILL_IMAGE_FORMATS or info.container.endswith("_pipe"):
        raise MediaError(f"{path.name} is a still image ({info.codec}), not a video")
    return info


def timing(path: Path, info: VideoInfo) -> tuple[VideoInfo, list[str]]:
    """`info` with the rate the frames' own timestamps come at (packets read, not decoded), and a note
    where the header says otherwise or the rate is variable (probe.true_timing)."""
    with plain_name(path) as plain:
        done = run([tools().ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(plain),
                    "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"], f"reading the timestamps of {path.name}")
    base, times = parse_framecrc(done.stdout)
    return true_timing(info, measured_rate(base, times), len(times))


def _probe(t: Tools, path: Path, plain: Path) -> VideoInfo:
    if t.ffprobe:
        args = [t.ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                "-show_chapters", "--", str(plain)]
        done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", check=False, preexec_fn=children.tied())
        if done.returncode != 0:
            raise MediaError(f"cannot read {path.name} as a video (not a video, or damaged or truncated): "
                             f"{_last_line(done.stderr)}")
        return _named(path, parse_ffprobe, done.stdout)
    done = subprocess.run([t.ffmpeg, "-hide_banner", "-nostdin", "-i", str(plain)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", check=False, preexec_fn=children.tied())
    if "Input #0" not in done.stderr:
        raise MediaError(f"cannot read {path.name} as a video (not a video, or damaged or truncated): "
                         f"{_last_line(done.stderr)}")
    return _named(path, parse_ffmpeg_banner, done.stderr)


def _named(path: Path, parse: Callable[[str], VideoInfo], text: str) -> VideoInfo:
    try:
        return parse(text)
    except MediaError as exc:
        raise MediaError(f"{path.name}: {exc}") from None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output from ffmpeg"


# ---------------------------------------------------------------- commands


def sequence_path(pattern: Path) -> str:
    """A numbered-frames pattern for ffmpeg's image2, which reads '%' anywhere in the path as part of
    the pattern: the folder's own '%' characters are escaped ("100%/x" -> "100%%/x")."""
    return os.path.join(str(pattern.parent).replace("%", "%%"), pattern.name)


def split_args(ffmpeg: str, source: Path, pattern: Path, fmt: str) -> list[str]:
    """Decode the first video stream into numbered frames (autorotated, so frames are upright): every
    coded frame written once (passthrough), whatever the header's rate says or however it varies."""
    if fmt == "png":
        encode = ["-pix_fmt", "rgb24", "-compression_level", "1"]
    else:
        encode = ["-pix_fmt", "yuvj444p", "-q:v", "2"]
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
            "-i", str(source.absolute()), "-map", "0:v:0", "-fps_mode", "passthrough", *encode, "-start_number", "1",
            "-f", "image2", sequence_path(pattern)]


def frame_at_args(ffmpeg: str, source: Path, seconds: float, side: int, target: Path) -> list[str]:
    """One frame at `seconds` (upright), scaled down to at most `side` pixels on its long side, as a PNG."""
    fit = f"scale='min({side},iw)':'min({side},ih)':force_original_aspect_ratio=decrease"
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-ss", f"{seconds:.3f}",
            "-i", str(source.absolute()), "-map", "0:v:0", "-frames:v", "1", "-vf", fit, "-pix_fmt", "rgb24",
            "-f", "image2", "-update", "1", sequence_path(target)]


def frames_at(source: Path, seconds: Sequence[float], side: int) -> list[np.ndarray]:
    """The frames at these times, upright, at most `side` pixels on the long side, RGB uint8."""
    out = []
    with tempfile.TemporaryDirectory(prefix="vpipe-frames-") as tmp:
        for i, at in enumerate(seconds):
            target = Path(tmp) / f"{i:03d}.png"
            run(frame_at_args(tools().ffmpeg, source, at, side, target), f"ffmpeg frame at {at}s")
            try:
                out.append(storage.read_rgb(target))
            except (OSError, ValueError):  # ffmpeg may exit 0 with no frame past the last one
                raise MediaError(f"{source.name}: no frame decoded at {at} s") from None
    return out


UNROTATE = {90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}


def output_audio_codecs(audio: tuple[AudioStream, ...], suffix: str) -> list[str]:
    """Per audio stream: "copy" where the output container takes the codec, else "aac"."""
    allowed = COPYABLE_AUDIO[suffix]
    return ["copy" if allowed is None or a.codec in allowed else "aac" for a in audio]


def output_subtitle_codecs(subtitles: tuple[SubtitleStream, ...], suffix: str) -> list[str | None]:
    """Per subtitle stream: "copy", the text codec to convert it to, or None: the container cannot hold it."""
    plan: list[str | None] = []
    for stream in subtitles:
        if stream.codec in COPYABLE_SUBTITLES[suffix]:
            plan.append("copy")
        elif stream.codec in TEXT_SUBTITLES:
            plan.append(TEXT_SUBTITLE_TARGET[suffix])
        else:
            plan.append(None)
    return plan


def left_out_subtitles(subtitles: tuple[SubtitleStream, ...], suffix: str) -> list[str]:
    """One line per subtitle stream that cannot go into this container."""
    return [f"subtitle stream {s.index} ({s.codec}{', ' + s.language if s.language else ''}) left out: "
            f"a {suffix} file cannot hold it and a bitmap subtitle cannot be converted to text (use .mkv)"
            for s, codec in zip(subtitles, output_subtitle_codecs(subtitles, suffix), strict=True) if codec is None]


def check_codec(codec: str, suffix: str) -> None:
    """A one-line refusal of a codec/container pair that cannot be written."""
    if codec not in CODEC_CONTAINERS:
        raise UsageError(f"codec {codec!r}: choose one of {', '.join(CODECS)}")
    if suffix not in CODEC_CONTAINERS[codec]:
        raise UsageError(f"{codec} cannot go into a {suffix or 'suffix-less'} file: use "
                         + " or ".join(CODEC_CONTAINERS[codec]))


def needs_source(info: VideoInfo) -> bool:
    """Whether the output takes anything from the source file itself: audio, subtitles or chapters."""
    return bool(info.audio or info.subtitles or info.chapters)


def video_codec_args(codec: str, info: VideoInfo, suffix: str, crf: int, depth: int = 8) -> list[str]:
    """Encoder options: H.264/H.265 at a CRF (4:2:0 where the size allows), ProRes 4444 at 10 bits,
    FFV1 lossless in RGB at the frames' own bit depth (8, or 16 for 16-bit PNG frames)."""
    even = info.width % 2 == 0 and info.height % 2 == 0
    chroma = "yuv420p" if even else "yuv444p"
    if codec == "h264":
        return ["-c:v", "libx264", "-crf", str(crf), "-preset", "medium", "-pix_fmt", chroma]
    if codec == "h265":
        tag = ["-tag:v", "hvc1"] if suffix in (".mp4", ".mov") else []  # what Apple players need to play it
        return ["-c:v", "libx265", "-crf", str(crf), "-preset", "medium", "-pix_fmt", chroma,
                "-x265-params", "log-level=error", *tag]
    if codec == "prores":
        return ["-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuv444p10le", "-vendor", "apl0"]
    if codec == "ffv1":
        return ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slicecrc", "1",
                "-pix_fmt", "gbrp16le" if depth > 8 else "gbrp"]
    raise UsageError(f"codec {codec!r}: choose one of {', '.join(CODECS)}")


def _stream_tags(kind: str, position: int, language: str | None, title: str | None) -> list[str]:
    """A kept stream's language and title, set explicitly: the MP4 demuxer reads a title back as "name",
    which no muxer writes as a title."""
    args = [f"-metadata:s:{kind}:{position}", f"language={language}"] if language else []
    return args + ([f"-metadata:s:{kind}:{position}", f"title={title}"] if title else [])


def assemble_args(ffmpeg: str, pattern: Path, info: VideoInfo, source: Path, output: Path,
                  crf: int, codec: str = "h264", depth: int = 8) -> list[str]:
    """Encode the frame sequence at the source's exact rate, size, SAR and rotation, plus its audio,
    the subtitles the container can hold, its chapters and its metadata (file tags, stream titles)."""
    suffix = output.suffix.lower()
    args = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if info.rotation:
        args += ["-display_rotation", str(info.rotation), "-noautorotate"]
    args += ["-framerate", info.rate, "-start_number", "1", "-f", "image2", "-i", sequence_path(pattern)]
    if needs_source(info):
        args += ["-i", str(source)]
    args += ["-map", "0:v:0"]
    for stream in info.audio:
        args += ["-map", f"1:{stream.index}"]
    subtitles = [(s, c) for s, c in zip(info.subtitles, output_subtitle_codecs(info.subtitles, suffix),
                                        strict=True) if c is not None]
    for subtitle, _ in subtitles:
        args += ["-map", f"1:{subtitle.index}"]
    filters = [UNROTATE[info.rotation]] if info.rotation else []
    filters.append(f"setsar={info.sar.replace(':', '/')}")
    args += ["-vf", ",".join(filters), *video_codec_args(codec, info, suffix, crf, depth),
             "-fps_mode", "passthrough"]
    for i, audio_codec in enumerate(output_audio_codecs(info.audio, suffix)):
        args += [f"-c:a:{i}", audio_codec]
    for i, (_, subtitle_codec) in enumerate(subtitles):
        args += [f"-c:s:{i}", subtitle_codec]
    for i, a in enumerate(info.audio):
        args += _stream_tags("a", i, a.language, a.title)
    for i, (subtitle, _) in enumerate(subtitles):
        args += _stream_tags("s", i, subtitle.language, subtitle.title)
    for key, value in info.tags.items():
        args += ["-metadata", f"{key}={value}"]
    if info.chapters:
        args += ["-map_chapters", "1"]
    if suffix in (".mp4", ".m4v", ".mov") and codec in ("h264", "h265"):
        args += ["-movflags", "+faststart"]  # for streaming; an editor's intermediate is not streamed
    return args + [str(output)]


def count_frames(path: Path) -> int:
    """Frames in a video's first video stream, counted by ffmpeg itself (stream copy, fast)."""
    done = run([tools().ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats",
                "-progress", "pipe:1", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                "-f", "null", "-"], f"counting frames of {path.name}")
    return progress_frames(done.stdout)


def progress_frames(progress: str) -> int:
    """The final frame count from ffmpeg's -progress output."""
    counts = re.findall(r"^frame=(\d+)$", progress, flags=re.MULTILINE)
    return int(counts[-1]) if counts else 0
