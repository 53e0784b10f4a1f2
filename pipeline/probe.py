"""What ffprobe (JSON) or ffmpeg's own stream listing says about a video: pure parsers, no I/O.

`video.probe` runs the binary; these turn its output into a `VideoInfo` (exact rate as a fraction,
variable-rate detection, rotation, sample aspect ratio, every audio and subtitle stream, the number of
chapters, the file's own metadata) that split stores in the job and assemble writes back.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction

from .errors import MediaError


@dataclass(frozen=True)
class AudioStream:
    index: int  # stream index in the source file
    codec: str
    channels: int | None = None
    sample_rate: int | None = None
    language: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class SubtitleStream:
    index: int  # stream index in the source file
    codec: str  # ffmpeg's codec name: mov_text, subrip, ass, webvtt, dvd_subtitle, hdmv_pgs_subtitle...
    language: str | None = None
    title: str | None = None


# Container bookkeeping that a new file gets from its own muxer, not from the source.
TECHNICAL_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "creation_time", "duration"}


@dataclass(frozen=True)
class VideoInfo:
    width: int  # coded size, before rotation
    height: int
    rate: str  # exact frame rate as a fraction "30000/1001": the rate frames are split at
    avg_rate: str
    variable_rate: bool
    frame_count: int | None  # container's claim; the decoded count is what split records
    duration: float | None
    pix_fmt: str
    sar: str
    rotation: int  # display rotation as ffmpeg states it (and -display_rotation takes): 0, 90, 180, 270
    codec: str
    container: str
    audio: tuple[AudioStream, ...] = field(default_factory=tuple)
    subtitles: tuple[SubtitleStream, ...] = field(default_factory=tuple)
    chapters: int = 0
    tags: dict[str, str] = field(default_factory=dict)  # the file's metadata (title, artist...), no technical tags

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown (and as split writes frames): swapped for 90/270."""
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, object]) -> VideoInfo:
        """As stored in a job; jobs split before subtitles, chapters and tags were recorded read as having none."""
        audio = tuple(AudioStream(**a) for a in data.get("audio", ()))  # type: ignore[arg-type, attr-defined]
        subtitles = tuple(SubtitleStream(**s) for s in data.get("subtitles", ()))  # type: ignore[arg-type, attr-defined]
        return VideoInfo(**{**data, "audio": audio, "subtitles": subtitles})  # type: ignore[arg-type]


def rational(text: str) -> Fraction | None:
    """"30000/1001" or "29.97" as a Fraction; None for 0/0, N/A and the like."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def snap_rate(value: float) -> Fraction:
    """A printed rate ("29.97", "16.67") as the exact fraction it stands for: NTSC x/1001 rates
    first, else the simplest fraction within the print's rounding (16.67 -> 50/3)."""
    ntsc = round(value * 1.001)
    if ntsc and abs(value - Fraction(ntsc * 1000, 1001)) < 0.006 and abs(value - ntsc) > 0.006:
        return Fraction(ntsc * 1000, 1001)
    for denominator in range(1, 1001):
        numerator = round(value * denominator)
        if numerator and abs(numerator / denominator - value) < 0.005:
            return Fraction(numerator, denominator)
    return Fraction(value).limit_denominator(1000)


def normal_rotation(degrees: float) -> int:
    return int(round(degrees / 90.0)) * 90 % 360


def _rate_choice(real: Fraction | None, avg: Fraction | None) -> tuple[Fraction, bool]:
    """The rate to split at and whether the source is variable-rate (then its average rate)."""
    if real is None and avg is None:
        raise MediaError("the video stream has no frame rate")
    if real is None or avg is None:
        return (real or avg), False  # type: ignore[return-value]
    variable = abs(real - avg) / real > Fraction(1, 1000)
    return (avg if variable else real), variable


def _language(tag: str | None) -> str | None:
    """A stream's language tag; "und" (undetermined) is the same as none."""
    return tag if tag and tag != "und" else None


def _title(tags: dict[str, str]) -> str | None:
    """A stream's title: "title", or "name" (what the MP4 demuxer calls the title the MP4 muxer wrote)."""
    lowered = {k.lower(): v for k, v in tags.items()}
    return lowered.get("title") or lowered.get("name") or None


def _file_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.lower() not in TECHNICAL_TAGS}


def parse_ffprobe(text: str) -> VideoInfo:
    """VideoInfo from `ffprobe -print_format json -show_format -show_streams -show_chapters` output."""
    data = json.loads(text)
    streams = data.get("streams", [])
    videos = [s for s in streams if s.get("codec_type") == "video"
              and not s.get("disposition", {}).get("attached_pic")]
    if not videos:
        raise MediaError("no video stream")
    v = videos[0]
    real, avg = rational(v.get("r_frame_rate", "")), rational(v.get("avg_frame_rate", ""))
    rate, variable = _rate_choice(real, avg)
    rotation = 0.0
    for side in v.get("side_data_list", []):
        if "rotation" in side:
            rotation = float(side["rotation"])
    if "rotate" in v.get("tags", {}):
        rotation = -float(v["tags"]["rotate"])  # the old tag is clockwise
    duration = v.get("duration") or data.get("format", {}).get("duration")
    nb = v.get("nb_frames")
    audio = tuple(
        AudioStream(index=int(s["index"]), codec=s.get("codec_name", "unknown"),
                    channels=s.get("channels"), sample_rate=int(s["sample_rate"]) if s.get("sample_rate") else None,
                    language=_language(s.get("tags", {}).get("language")), title=_title(s.get("tags", {})))
        for s in streams if s.get("codec_type") == "audio")
    subtitles = tuple(
        SubtitleStream(index=int(s["index"]), codec=s.get("codec_name", "unknown"),
                       language=_language(s.get("tags", {}).get("language")), title=_title(s.get("tags", {})))
        for s in streams if s.get("codec_type") == "subtitle")
    sar = v.get("sample_aspect_ratio", "1:1")
    return VideoInfo(
        width=int(v["width"]), height=int(v["height"]), rate=str(rate), avg_rate=str(avg or rate),
        variable_rate=variable, frame_count=int(nb) if nb and str(nb).isdigit() else None,
        duration=float(duration) if duration not in (None, "N/A") else None,
        pix_fmt=v.get("pix_fmt", "unknown"), sar=sar if sar not in ("0:1", "N/A") else "1:1",
        rotation=normal_rotation(rotation), codec=v.get("codec_name", "unknown"),
        container=data.get("format", {}).get("format_name", "unknown"), audio=audio, subtitles=subtitles,
        chapters=len(data.get("chapters", [])), tags=_file_tags(data.get("format", {}).get("tags", {})))


_TAG = re.compile(r"^(\s+)(\S.*?)\s*: (.*)$")


def _metadata(lines: list[str]) -> dict[str, str]:
    """The "Metadata:" section among these lines (key : value, a value's further lines as " : more")."""
    tags: dict[str, str] = {}
    header = next((i for i, line in enumerate(lines) if line.strip() == "Metadata:"), None)
    if header is None:
        return tags
    indent = len(lines[header]) - len(lines[header].lstrip())
    key = None
    for line in lines[header + 1:]:
        if len(line) - len(line.lstrip()) <= indent:
            break
        if line.strip().startswith(": ") and key:
            tags[key] += "\n" + line.strip()[2:]
            continue
        match = _TAG.match(line)
        if match:
            key = match.group(2)
            tags[key] = match.group(3)
    return tags


_STREAM = re.compile(r"^\s*Stream #\d+:(\d+)(?:\[0x[0-9a-f]+\])?(?:\(([^)]*)\))?: (\w+): (.*)$")


def _top_level_parts(text: str) -> list[str]:
    """Split "h264 (High), yuv420p(tv, bt709), 640x360 [SAR 1:1]" at commas outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "(["
        depth -= char in ")]"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def _number(text: str) -> float:
    text = text.strip()
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def parse_ffmpeg_banner(text: str) -> VideoInfo:
    """VideoInfo from the stream listing `ffmpeg -i FILE` prints (used when there is no ffprobe)."""
    container = re.search(r"^Input #0, ([^ ]+), from", text, flags=re.MULTILINE)
    duration = re.search(r"^  Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text, flags=re.MULTILINE)
    blocks: list[tuple[re.Match[str], list[str]]] = []
    head: list[str] = []  # the file's own lines, before its first stream
    for line in text.splitlines():
        match = _STREAM.match(line)
        if match:
            blocks.append((match, []))
        elif blocks:
            blocks[-1][1].append(line)
        else:
            head.append(line)
    video = next(((m, rest) for m, rest in blocks
                  if m.group(3) == "Video" and "(attached pic)" not in m.group(4)), None)
    if video is None:
        raise MediaError("no video stream")
    match, rest = video
    parts = _top_level_parts(match.group(4))
    size = next((re.match(r"(\d+)x(\d+)", p) for p in parts if re.match(r"\d+x\d+", p)), None)
    if size is None:
        raise MediaError("the video stream has no size")
    fps = next((_number(p.split()[0]) for p in parts if p.endswith(" fps")), None)
    tbr = next((_number(p.split()[0]) for p in parts if p.endswith(" tbr")), None)
    real = snap_rate(tbr) if tbr else None
    avg = snap_rate(fps) if fps else None
    rate, variable = _rate_choice(real, avg)
    sar = re.search(r"SAR (\d+:\d+)", match.group(4))
    rotation = re.search(r"rotation of (-?[\d.]+) degrees", "\n".join(rest))
    pix_fmt = parts[1].split("(")[0].strip() if len(parts) > 1 else "unknown"
    audio, subtitles = [], []
    for m, lines in blocks:
        if m.group(3) == "Subtitle":
            subtitles.append(SubtitleStream(index=int(m.group(1)), codec=m.group(4).split()[0].rstrip(","),
                                            language=_language(m.group(2)), title=_title(_metadata(lines))))
        if m.group(3) != "Audio":
            continue
        fields = _top_level_parts(m.group(4))
        hz = next((int(p.split()[0]) for p in fields if p.endswith(" Hz")), None)
        layout = fields[2] if len(fields) > 2 else ""
        channels = {"mono": 1, "stereo": 2, "5.1": 6, "5.1(side)": 6, "7.1": 8}.get(layout)
        audio.append(AudioStream(index=int(m.group(1)), codec=fields[0].split()[0],
                                 channels=channels, sample_rate=hz, language=_language(m.group(2)),
                                 title=_title(_metadata(lines))))
    seconds = None
    if duration:
        h, mnt, s = duration.groups()
        seconds = int(h) * 3600 + int(mnt) * 60 + float(s)
    return VideoInfo(
        width=int(size.group(1)), height=int(size.group(2)), rate=str(rate), avg_rate=str(avg or rate),
        variable_rate=variable, frame_count=None, duration=seconds, pix_fmt=pix_fmt,
        sar=sar.group(1) if sar and sar.group(1) != "0:1" else "1:1",
        rotation=normal_rotation(float(rotation.group(1))) if rotation else 0,
        codec=parts[0].split()[0], container=container.group(1) if container else "unknown",
        audio=tuple(audio), subtitles=tuple(subtitles),
        chapters=sum(1 for line in head if re.match(r"\s+Chapter #\d+:\d+: ", line)),
        tags=_file_tags(_metadata(head[:_chapters_start(head)])))


def _chapters_start(head: list[str]) -> int:
    """Where the chapter list begins (chapters have Metadata sections of their own)."""
    return next((i for i, line in enumerate(head) if line.strip() == "Chapters:"), len(head))


def parse_framecrc(text: str) -> tuple[Fraction, list[int]]:
    """The time base and the packets' timestamps (pts, else dts) from `ffmpeg -map 0:v:0 -c copy -f framecrc -`:
    structured lines of numbers ("#tb 0: 1/50", then "0, dts, pts, duration, size, crc"), no file name."""
    base = re.search(r"^#tb 0: (\d+)/(\d+)$", text, flags=re.MULTILINE)
    if not base:
        return Fraction(0), []
    times = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 5 or fields[0] != "0":
            continue
        dts, pts = int(fields[1]), int(fields[2])
        times.append(pts if pts != NO_TIME else dts)
    return Fraction(int(base.group(1)), int(base.group(2))), [t for t in times if t != NO_TIME]


NO_TIME = -(1 << 63)  # AV_NOPTS_VALUE as framecrc prints it


def measured_rate(base: Fraction, times: list[int]) -> Fraction | None:
    """The rate the frames' timestamps come at when they come regularly (every interval the same, to a
    tick of rounding or a hundredth); None when they do not (variable rate) or are too few to tell."""
    ordered = sorted(set(times))
    if len(ordered) < 2 or base <= 0:
        return None
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
    if max(gaps) - min(gaps) > max(1, min(gaps) // 100):
        return None
    exact = (len(ordered) - 1) / ((ordered[-1] - ordered[0]) * base)
    snapped = snap_rate(float(exact))
    return snapped if abs(snapped - exact) / exact < Fraction(1, 1000) else exact.limit_denominator(1001)


def true_timing(info: VideoInfo, measured: Fraction | None, frames: int) -> tuple[VideoInfo, list[str]]:
    """The rate to split at, from the stream's own timestamps rather than its header, and a note where they
    disagree (a header that declares 50 fps for frames that come at 25, rate fields that disagree)."""
    header = Fraction(info.rate)
    if measured is None:
        if frames < 2:
            return info, []
        average = Fraction(info.avg_rate)
        return replace(info, rate=str(average), variable_rate=True), [
            f"variable frame rate: its {frames} frames are kept as they are, played back at a constant "
            f"{float(average):g} fps (the source's average)"]
    if abs(measured - header) / measured <= Fraction(1, 1000) and not info.variable_rate:
        return info, []
    said = f"it says {float(header):g} fps" if measured != header else "its rate fields disagree"
    return replace(info, rate=str(measured), avg_rate=str(measured), variable_rate=False), [
        f"the header lied: {said}, the frames' timestamps come regularly at {float(measured):g} fps; "
        f"split at {float(measured):g} fps, one frame per coded frame"]
