"""The ffmpeg boundary: find the binaries, probe media, build argument lists, run them.

Argument lists are built by pure functions (testable without ffmpeg); `run` is the one place that
executes them, captures stderr and turns a failure into an error carrying its last line.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from .errors import DISK_FULL_HINT, DiskFullError, MediaError
from .probe import AudioStream, VideoInfo, parse_ffmpeg_banner, parse_ffprobe

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
                              errors="replace", check=False)
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

def probe(path: Path) -> VideoInfo:
    """Probe a video with ffprobe when there is one, else from ffmpeg's own stream listing."""
    t = tools()
    if t.ffprobe:
        args = [t.ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                "--", str(path.absolute())]
        done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", check=False)
        if done.returncode != 0:
            raise MediaError(f"cannot read {path.name} as a video (not a video, or damaged or truncated): "
                             f"{_last_line(done.stderr)}")
        info = _named(path, parse_ffprobe, done.stdout)
    else:
        done = subprocess.run([t.ffmpeg, "-hide_banner", "-nostdin", "-i", str(path.absolute())],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", check=False)
        if "Input #0" not in done.stderr:
            raise MediaError(f"cannot read {path.name} as a video (not a video, or damaged or truncated): "
                             f"{_last_line(done.stderr)}")
        info = _named(path, parse_ffmpeg_banner, done.stderr)
    if info.container in STILL_IMAGE_FORMATS or info.container.endswith("_pipe"):
        raise MediaError(f"{path.name} is a still image ({info.codec}), not a video")
    return info


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


def split_args(ffmpeg: str, source: Path, pattern: Path, fmt: str, cfr_rate: str | None,
               duration: float | None = None) -> list[str]:
    """Decode the first video stream into numbered frames (autorotated, so frames are upright).

    Every decoded frame is written once (passthrough) unless the source is variable-rate, when it
    is resampled to a constant `cfr_rate`, and cut at the source's duration (the fps filter would
    otherwise stretch the last frame's display time into extra frames).
    """
    timing = ["-fps_mode", "passthrough"]
    if cfr_rate:
        timing = ["-vf", f"fps={cfr_rate}"]
        if duration:
            timing += ["-frames:v", str(max(1, round(duration * Fraction(cfr_rate))))]
    if fmt == "png":
        encode = ["-pix_fmt", "rgb24", "-compression_level", "1"]
    else:
        encode = ["-pix_fmt", "yuvj444p", "-q:v", "2"]
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
            "-i", str(source.absolute()), "-map", "0:v:0", *timing, *encode, "-start_number", "1",
            "-f", "image2", sequence_path(pattern)]


def frame_at_args(ffmpeg: str, source: Path, seconds: float, side: int, target: Path) -> list[str]:
    """One frame at `seconds` (upright), scaled down to at most `side` pixels on its long side, as a PNG."""
    fit = f"scale='min({side},iw)':'min({side},ih)':force_original_aspect_ratio=decrease"
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-ss", f"{seconds:.3f}",
            "-i", str(source.absolute()), "-map", "0:v:0", "-frames:v", "1", "-vf", fit, "-pix_fmt", "rgb24",
            "-f", "image2", "-update", "1", sequence_path(target)]


UNROTATE = {90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}


def output_audio_codecs(audio: tuple[AudioStream, ...], suffix: str) -> list[str]:
    """Per audio stream: "copy" where the output container takes the codec, else "aac"."""
    allowed = COPYABLE_AUDIO[suffix]
    return ["copy" if allowed is None or a.codec in allowed else "aac" for a in audio]


def assemble_args(ffmpeg: str, pattern: Path, info: VideoInfo, source: Path, output: Path,
                  crf: int) -> list[str]:
    """Encode the frame sequence at the source's exact rate, size, SAR and rotation, plus its audio."""
    args = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if info.rotation:
        args += ["-display_rotation", str(info.rotation), "-noautorotate"]
    args += ["-framerate", info.rate, "-start_number", "1", "-f", "image2", "-i", sequence_path(pattern)]
    if info.audio:
        args += ["-i", str(source)]
    args += ["-map", "0:v:0"]
    for stream in info.audio:
        args += ["-map", f"1:{stream.index}"]
    filters = [UNROTATE[info.rotation]] if info.rotation else []
    filters.append(f"setsar={info.sar.replace(':', '/')}")
    even = info.width % 2 == 0 and info.height % 2 == 0
    args += ["-vf", ",".join(filters), "-c:v", "libx264", "-crf", str(crf), "-preset", "medium",
             "-pix_fmt", "yuv420p" if even else "yuv444p", "-fps_mode", "passthrough"]
    for i, codec in enumerate(output_audio_codecs(info.audio, output.suffix.lower())):
        args += [f"-c:a:{i}", codec]
    if output.suffix.lower() in (".mp4", ".m4v", ".mov"):
        args += ["-movflags", "+faststart"]
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
