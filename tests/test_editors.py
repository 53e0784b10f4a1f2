"""assemble for editors: subtitles, chapters and tags kept; --codec h264|h265|prores|ffv1; --frames-out;
stylize --format png|jpg|webp. Pure parsers and argv builders first, then real ffmpeg jobs."""
# ruff: noqa: E501  (the ffmpeg banners below are pasted verbatim)

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import Result

from pipeline import storage, video
from pipeline.errors import UsageError
from pipeline.probe import AudioStream, SubtitleStream, VideoInfo, parse_ffmpeg_banner, parse_ffprobe
from pipeline.video import assemble_args, check_codec, left_out_subtitles, output_subtitle_codecs

# ================================================================ pure: parsers

# Real stderr of `ffmpeg -hide_banner -i FILE` (n9.0.2, imageio-ffmpeg) on a clip made from an .srt
# and an ffmetadata file (title, two chapters), with a titled audio stream: the MP4 demuxer reads
# titles back as "name"; the chapters' own text track shows up as a Data stream.
BANNER_SUBS_MP4 = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'src.mp4':
  Metadata:
    major_brand     : isom
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    title           : My Film
    encoder         : Lavf63.1.102
  Duration: 00:00:00.60, start: 0.000000, bitrate: 140 kb/s
  Chapters:
    Chapter #0:0: start 0.000000, end 0.300000
      Metadata:
        title           : One
    Chapter #0:1: start 0.300000, end 0.600000
      Metadata:
        title           : Two
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 64x48 [SAR 1:1 DAR 4:3], 23 kb/s, 25 fps, 25 tbr, 12800 tbn (default)
    Metadata:
      handler_name    : VideoHandler
      encoder         : Lavc63.1.102 libx264
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 70 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
      name            : Main audio
  Stream #0:2[0x3](fra): Subtitle: mov_text (tx3g / 0x67337874), 0 kb/s (default)
    Metadata:
      handler_name    : SubtitleHandler
      name            : French subs
  Stream #0:3[0x4](eng): Data: bin_data (text / 0x74786574), 0 kb/s
    Metadata:
      handler_name    : SubtitleHandler
At least one output file must be specified
"""

# The same streams remuxed into Matroska (subtitles as SubRip), plus a two-line comment.
BANNER_SUBS_MKV = """\
Input #0, matroska,webm, from 'out.mkv':
  Metadata:
    title           : My Film
    COMMENT         : first line
                    : second line
    COMPATIBLE_BRANDS: isomiso2avc1mp41
    MAJOR_BRAND     : isom
    ENCODER         : Lavf63.1.102
  Duration: 00:00:00.62, start: 0.000000, bitrate: 114 kb/s
  Chapters:
    Chapter #0:0: start 0.000000, end 0.300000
      Metadata:
        title           : One
  Stream #0:0: Video: h264 (High), yuv420p(progressive), 64x48 [SAR 1:1 DAR 4:3], 25 fps, 25 tbr, 1k tbn (default)
    Metadata:
      HANDLER_NAME    : VideoHandler
      DURATION        : 00:00:00.600000000
  Stream #0:1(eng): Audio: aac (LC), 44100 Hz, mono, fltp (default)
    Metadata:
      title           : Main audio
      DURATION        : 00:00:00.623000000
  Stream #0:2(fra): Subtitle: subrip (srt) (default)
    Metadata:
      title           : French subs
      DURATION        : 00:00:00.600000000
  Stream #0:3: Subtitle: hdmv_pgs_subtitle (pgssub), 1920x1080
At least one output file must be specified
"""


def test_banner_subtitles_chapters_tags_mp4() -> None:
    info = parse_ffmpeg_banner(BANNER_SUBS_MP4)
    assert info.subtitles == (SubtitleStream(2, "mov_text", "fra", "French subs"),)
    assert info.audio == (AudioStream(1, "aac", 1, 44100, "eng", "Main audio"),)
    assert info.chapters == 2
    assert info.tags == {"title": "My Film"}  # muxer bookkeeping (brands, encoder) is not the film's
    assert (info.width, info.height, info.rate) == (64, 48, "25")


def test_banner_subtitles_chapters_tags_mkv() -> None:
    info = parse_ffmpeg_banner(BANNER_SUBS_MKV)
    assert info.subtitles == (SubtitleStream(2, "subrip", "fra", "French subs"),
                              SubtitleStream(3, "hdmv_pgs_subtitle", None, None))
    assert info.audio[0].title == "Main audio"
    assert info.chapters == 1
    assert info.tags == {"title": "My Film", "COMMENT": "first line\nsecond line"}


def test_ffprobe_subtitles_chapters_tags() -> None:
    video_stream = {"index": 0, "codec_name": "h264", "codec_type": "video", "width": 64, "height": 48,
                    "r_frame_rate": "25/1", "avg_frame_rate": "25/1", "pix_fmt": "yuv420p"}
    audio = {"index": 1, "codec_name": "aac", "codec_type": "audio", "sample_rate": "44100", "channels": 1,
             "tags": {"language": "eng", "name": "Main audio"}}
    subs = {"index": 2, "codec_name": "mov_text", "codec_type": "subtitle", "tags": {"language": "fra", "title": "Fr"}}
    pgs = {"index": 3, "codec_name": "hdmv_pgs_subtitle", "codec_type": "subtitle", "tags": {"language": "und"}}
    text = json.dumps({"streams": [video_stream, audio, subs, pgs],
                       "chapters": [{"id": 0, "start_time": "0.0"}, {"id": 1, "start_time": "0.3"}],
                       "format": {"format_name": "mov,mp4", "duration": "0.6",
                                  "tags": {"title": "My Film", "major_brand": "isom", "encoder": "Lavf"}}})
    info = parse_ffprobe(text)
    assert info.subtitles == (SubtitleStream(2, "mov_text", "fra", "Fr"), SubtitleStream(3, "hdmv_pgs_subtitle"))
    assert info.audio[0].title == "Main audio"
    assert info.chapters == 2
    assert info.tags == {"title": "My Film"}
    assert VideoInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info


def test_a_job_split_before_subtitles_were_recorded_still_reads() -> None:
    old = {"width": 64, "height": 48, "rate": "25", "avg_rate": "25", "variable_rate": False, "frame_count": None,
           "duration": 1.0, "pix_fmt": "yuv420p", "sar": "1:1", "rotation": 0, "codec": "h264", "container": "mp4",
           "audio": [{"index": 1, "codec": "aac", "channels": 2, "sample_rate": 48000, "language": "eng"}]}
    info = VideoInfo.from_dict(old)
    assert info.audio == (AudioStream(1, "aac", 2, 48000, "eng", None),)
    assert (info.subtitles, info.chapters, info.tags) == ((), 0, {})


# ================================================================ pure: builders

def info_for(width: int = 64, height: int = 48, **kw: object) -> VideoInfo:
    return VideoInfo(width=width, height=height, rate="25", avg_rate="25", variable_rate=False, frame_count=15,
                     duration=0.6, pix_fmt="yuv420p", sar="1:1", rotation=0, codec="h264", container="mp4",
                     **kw)  # type: ignore[arg-type]


def after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def pairs(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


SUBS = (SubtitleStream(2, "mov_text", "fra", "French subs"), SubtitleStream(3, "hdmv_pgs_subtitle", "eng"),
        SubtitleStream(4, "subrip"), SubtitleStream(5, "ass", "deu"))


def test_subtitle_codecs_per_container() -> None:
    assert output_subtitle_codecs(SUBS, ".mp4") == ["copy", None, "mov_text", "mov_text"]
    assert output_subtitle_codecs(SUBS, ".mov") == ["copy", None, "mov_text", "mov_text"]
    assert output_subtitle_codecs(SUBS, ".mkv") == ["srt", "copy", "copy", "copy"]
    (note,) = left_out_subtitles(SUBS, ".mp4")
    assert note.startswith("subtitle stream 3 (hdmv_pgs_subtitle, eng) left out") and "\n" not in note
    assert left_out_subtitles(SUBS, ".mkv") == []


@pytest.mark.parametrize(("codec", "suffix", "ok"), [
    ("h264", ".mp4", True), ("h264", ".m4v", True), ("h265", ".mp4", True), ("h265", ".m4v", False),
    ("prores", ".mov", True), ("prores", ".mkv", True), ("prores", ".mp4", False), ("ffv1", ".mkv", True),
    ("ffv1", ".mov", True), ("ffv1", ".mp4", False)])
def test_codec_containers(codec: str, suffix: str, ok: bool) -> None:
    if ok:
        check_codec(codec, suffix)
    else:
        with pytest.raises(UsageError, match=rf"{codec} cannot go into a \{suffix} file: use "):
            check_codec(codec, suffix)


def test_assemble_args_keeps_subtitles_chapters_and_tags() -> None:
    info = info_for(audio=(AudioStream(1, "aac", 1, 44100, "eng", "Main audio"),), subtitles=SUBS, chapters=2,
                    tags={"title": "My Film"})
    args = assemble_args("ffmpeg", Path("f/%06d.png"), info, Path("in.mp4"), Path("out.mp4"), 18)
    assert pairs(args, "-map") == ["0:v:0", "1:1", "1:2", "1:4", "1:5"]  # the PGS stream is left out
    assert [after(args, f"-c:s:{i}") for i in range(3)] == ["copy", "mov_text", "mov_text"]
    assert pairs(args, "-metadata:s:a:0") == ["language=eng", "title=Main audio"]
    assert pairs(args, "-metadata:s:s:0") == ["language=fra", "title=French subs"]
    assert pairs(args, "-metadata:s:s:2") == ["language=deu"]
    assert pairs(args, "-metadata") == ["title=My Film"]
    assert after(args, "-map_chapters") == "1"
    assert args[-1] == "out.mp4"


def test_assemble_args_source_is_an_input_for_subtitles_or_chapters_alone() -> None:
    for info in (info_for(subtitles=SUBS[:1]), info_for(chapters=3)):
        args = assemble_args("ffmpeg", Path("f/%06d.png"), info, Path("in.mp4"), Path("out.mkv"), 18)
        assert pairs(args, "-i") == ["f/%06d.png", "in.mp4"]
    bare = assemble_args("ffmpeg", Path("f/%06d.png"), info_for(tags={"title": "T"}), Path("in.mp4"),
                         Path("out.mkv"), 18)
    assert pairs(bare, "-i") == ["f/%06d.png"] and "-map_chapters" not in bare  # tags come from the job
    assert pairs(bare, "-metadata") == ["title=T"]


def test_assemble_args_prores() -> None:
    args = assemble_args("ffmpeg", Path("f/%06d.png"), info_for(67, 45), Path("in.mp4"), Path("o.mov"), 18, "prores")
    assert after(args, "-c:v") == "prores_ks"
    assert after(args, "-profile:v") == "4444"
    assert after(args, "-pix_fmt") == "yuv444p10le"
    assert "-crf" not in args and "-movflags" not in args


@pytest.mark.parametrize(("depth", "pix_fmt"), [(8, "gbrp"), (16, "gbrp16le")])
def test_assemble_args_ffv1_at_the_frames_bit_depth(depth: int, pix_fmt: str) -> None:
    args = assemble_args("ffmpeg", Path("f/%06d.png"), info_for(), Path("in.mp4"), Path("o.mkv"), 18, "ffv1", depth)
    assert after(args, "-c:v") == "ffv1"
    assert after(args, "-pix_fmt") == pix_fmt  # RGB: lossless means no conversion to YUV either
    assert after(args, "-level") == "3"


def test_assemble_args_h265() -> None:
    mp4 = assemble_args("ffmpeg", Path("f/%06d.png"), info_for(), Path("in.mp4"), Path("o.mp4"), 22, "h265")
    assert after(mp4, "-c:v") == "libx265" and after(mp4, "-crf") == "22"
    assert after(mp4, "-tag:v") == "hvc1"
    assert after(mp4, "-movflags") == "+faststart"
    mkv = assemble_args("ffmpeg", Path("f/%06d.png"), info_for(), Path("in.mp4"), Path("o.mkv"), 22, "h265")
    assert "-tag:v" not in mkv


def test_styled_format_identity() -> None:
    assert storage.styled_format("png", None, None) == (None, None)
    assert storage.styled_format("png", "png", None) == (None, None)  # the default, as jobs had before --format
    assert storage.styled_format("png", "jpg", 95) == ("jpg", None)
    assert storage.styled_format("png", "webp", 80) == ("webp", 80)
    assert storage.styled_format("jpg", "jpg", 80) == (None, 80)
    with pytest.raises(ValueError, match="--quality applies to jpg and webp"):
        storage.styled_format("png", None, 50)
    assert storage.styled_ext({"format": "webp"}, "png") == "webp"
    assert storage.styled_ext(None, "jpg") == "jpg"


# ================================================================ real ffmpeg

FFMPEG = video.tools().ffmpeg
SRT = "1\n00:00:00,000 --> 00:00:00,300\nHello\n\n2\n00:00:00,300 --> 00:00:00,600\nWorld\n"
FFMETADATA = (";FFMETADATA1\ntitle=My Film\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=300\ntitle=One\n"
              "[CHAPTER]\nTIMEBASE=1/1000\nSTART=300\nEND=600\ntitle=Two\n")


def film(tmp_path: Path, size: str = "64x48") -> Path:
    """0.6 s at 25 fps (15 frames) with titled audio, a French text subtitle, a title and two chapters."""
    (tmp_path / "subs.srt").write_text(SRT)
    (tmp_path / "meta.txt").write_text(FFMETADATA)
    out = tmp_path / "film.mp4"
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25",
                    "-f", "lavfi", "-i", "sine", "-i", str(tmp_path / "subs.srt"), "-i", str(tmp_path / "meta.txt"),
                    "-t", "0.6", "-map", "0:v", "-map", "1:a", "-map", "2:s", "-map_metadata", "3", "-map_chapters", "3",
                    "-c:v", "libx264", "-pix_fmt", "yuv444p", "-c:a", "aac", "-c:s", "mov_text",
                    "-metadata:s:s:0", "language=fra", "-metadata:s:s:0", "title=French subs",
                    "-metadata:s:a:0", "language=eng", "-metadata:s:a:0", "title=Main audio", str(out)], check=True)
    return out


def stylized(tmp_path: Path, vpipe: Callable[..., Result], source: Path, *stylize: str) -> Path:
    """Split and stylize with the quick posterize engine; returns the job folder."""
    (tmp_path / "model.bin").write_bytes(b"quick")
    assert vpipe("split", str(source), "--job", "film").exit_code == 0
    result = vpipe("stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), *stylize)
    assert result.exit_code == 0, result.output
    return tmp_path / "jobs" / "film"


def listing(path: Path) -> VideoInfo:
    """The output as ffmpeg's own stream listing shows it (no ffprobe here)."""
    done = subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, text=True)
    return parse_ffmpeg_banner(done.stderr)


def decoded(path: Path, width: int, height: int, pix_fmt: str = "rgb24") -> np.ndarray:
    """Every frame of a video decoded to RGB: (frames, height, width, 3)."""
    raw = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "rawvideo",
                          "-pix_fmt", pix_fmt, "-"], capture_output=True, check=True).stdout
    dtype = np.uint16 if pix_fmt == "rgb48le" else np.uint8
    frames = np.frombuffer(raw, dtype=dtype)
    assert frames.size % (width * height * 3) == 0
    return frames.reshape(-1, height, width, 3)


def styled_rgb(job: Path, ext: str = "png") -> np.ndarray:
    files = sorted((job / "styled").glob(f"*.{ext}"))
    return np.stack([cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB) for f in files])


def test_subtitles_chapters_and_tags_are_kept(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    stylized(tmp_path, vpipe, film(tmp_path))
    for suffix, subtitle_codec in ((".mp4", "mov_text"), (".mkv", "subrip")):
        out = tmp_path / f"out{suffix}"
        result = vpipe("assemble", "-o", str(out))
        assert result.exit_code == 0, result.output
        assert "1 subtitle streams, 2 chapters" in result.output
        info = listing(out)
        assert [(s.codec, s.language, s.title) for s in info.subtitles] == [(subtitle_codec, "fra", "French subs")]
        assert [(a.language, a.title) for a in info.audio] == [("eng", "Main audio")]
        assert info.chapters == 2
        assert info.tags.get("title") == "My Film"
        assert video.count_frames(out) == 15


def test_prores_and_ffv1_decode_back(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    job = stylized(tmp_path, vpipe, film(tmp_path, size="67x45"))  # an odd size: no 4:2:0 in either
    styled = styled_rgb(job)
    assert vpipe("assemble", "--codec", "prores").exit_code == 0
    prores = job / "output.mov"  # the default name follows the codec
    info = listing(prores)
    assert info.codec == "prores" and (info.width, info.height) == (67, 45)
    assert info.subtitles[0].codec == "mov_text" and info.chapters == 2
    frames = decoded(prores, 67, 45)
    assert frames.shape == styled.shape == (15, 45, 67, 3)
    assert np.abs(frames.astype(int) - styled.astype(int)).mean() < 2  # 4:4:4 10-bit: near the PNGs
    result = vpipe("assemble", "--codec", "ffv1")
    assert result.exit_code == 0, result.output
    ffv1 = job / "output.mkv"
    assert listing(ffv1).codec == "ffv1" and listing(ffv1).pix_fmt in ("gbrp", "bgr0")  # RGB, as written
    assert np.array_equal(decoded(ffv1, 67, 45), styled)  # lossless, frame for frame


def test_ffv1_keeps_16_bit_frames(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    job = stylized(tmp_path, vpipe, film(tmp_path))
    for path in (job / "styled").glob("*.png"):  # as a 16-bit engine would write them
        bgr = cv2.imread(str(path)).astype(np.uint16) * 257 + 3
        cv2.imwrite(str(path), bgr)
    result = vpipe("assemble", "--codec", "ffv1", "-o", str(tmp_path / "deep.mkv"))
    assert result.exit_code == 0, result.output
    assert listing(tmp_path / "deep.mkv").pix_fmt.startswith("gbrp16")
    assert np.array_equal(decoded(tmp_path / "deep.mkv", 64, 48, "rgb48le"), styled_rgb(job))


def test_codec_container_refusal_is_one_line(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    stylized(tmp_path, vpipe, film(tmp_path))
    result = vpipe("assemble", "--codec", "prores", "-o", str(tmp_path / "o.mp4"))
    assert result.exit_code == 2
    assert "prores cannot go into a .mp4 file: use .mov or .mkv" in result.output
    assert not (tmp_path / "o.mp4").exists()


def test_frames_out(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    job = stylized(tmp_path, vpipe, film(tmp_path), "--range", "1-12")
    out = tmp_path / "sequence"
    assert vpipe("assemble", "--frames-out", str(out)).exit_code == 1  # frames 13-15 missing, like the video
    assert not out.exists()
    result = vpipe("assemble", "--frames-out", str(out), "--fill", "original")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:06d}.png" for i in range(1, 16)]
    for name in names:
        origin = job / ("styled" if int(name[:6]) <= 12 else "frames") / name
        assert (out / name).read_bytes() == origin.read_bytes() and not (out / name).is_symlink()
    assert not (job / "output.mp4").exists()  # --frames-out alone writes no video
    assert not list(tmp_path.glob(".sequence*"))  # no partial folder left
    again = vpipe("assemble", "--frames-out", str(out), "--fill", "original")
    assert again.exit_code == 2 and "not empty" in again.output and "--force" in again.output
    (out / "stray.txt").write_text("x")
    assert vpipe("assemble", "--frames-out", str(out), "--fill", "original", "--force").exit_code == 0
    assert not (out / "stray.txt").exists() and len(list(out.iterdir())) == 15
    both = vpipe("assemble", "--frames-out", str(tmp_path / "seq2"), "--fill", "original", "-o", str(tmp_path / "v.mkv"))
    assert both.exit_code == 0, both.output
    assert len(list((tmp_path / "seq2").iterdir())) == 15 and video.count_frames(tmp_path / "v.mkv") == 15


@pytest.mark.parametrize("where", ["job", "styled", "jobs", "other job"])
def test_frames_out_refuses_job_folders(tmp_path: Path, vpipe: Callable[..., Result], where: str) -> None:
    job = stylized(tmp_path, vpipe, film(tmp_path))
    if where == "other job":
        assert vpipe("split", str(film(tmp_path)), "--job", "other").exit_code == 0
    folder = {"job": job, "styled": job / "styled", "jobs": job.parent, "other job": job.parent / "other" / "x"}[where]
    before = sorted(p.name for p in (job / "styled").iterdir())
    result = vpipe("assemble", "--frames-out", str(folder), "--force")
    assert result.exit_code == 2, result.output
    assert "job" in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in (job / "styled").iterdir()) == before


@pytest.mark.parametrize(("fmt", "quality"), [("webp", None), ("jpg", "80")])
def test_stylize_format_round_trip(tmp_path: Path, vpipe: Callable[..., Result], fmt: str, quality: str | None) -> None:
    extra = ["--quality", quality] if quality else []
    job = stylized(tmp_path, vpipe, film(tmp_path), "--range", "1-10", "--format", fmt, *extra)
    assert sorted(p.suffix for p in (job / "styled").iterdir()) == [f".{fmt}"] * 10
    refused = vpipe("stylize", "--format", "png")
    assert refused.exit_code == 2 and "format" in refused.output and "--restart" in refused.output
    resumed = vpipe("stylize")  # a resume keeps the job's format
    assert resumed.exit_code == 0, resumed.output
    assert len(list((job / "styled").glob(f"*.{fmt}"))) == 15
    assert "15 good, 0 bad" in vpipe("verify").output
    out = tmp_path / "out.mkv"
    result = vpipe("assemble", "-o", str(out), "--codec", "ffv1")  # lossless: what ffmpeg decoded is what is shown
    assert result.exit_code == 0, result.output
    frames, stored = decoded(out, 64, 48).astype(int), styled_rgb(job, fmt).astype(int)
    assert frames.shape == stored.shape == (15, 48, 64, 3)
    errors = np.abs(frames[:, None] - stored[None]).mean(axis=(2, 3, 4))  # every output frame against every stored
    assert list(errors.argmin(axis=1)) == list(range(15))  # in frame order
    # exactly the stored frames as ffmpeg decodes them (its 4:2:0 chroma upsampling differs from OpenCV's)
    assert np.array_equal(frames, decoded(job / "styled" / f"%06d.{fmt}", 64, 48))
    assert vpipe("assemble", "--frames-out", str(tmp_path / "seq")).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == [f"{i:06d}.{fmt}" for i in range(1, 16)]


def test_webp_styled_frames_filled_from_png_frames(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    stylized(tmp_path, vpipe, film(tmp_path), "--range", "1-5", "--format", "webp")
    out = tmp_path / "out.mp4"
    result = vpipe("assemble", "-o", str(out), "--fill", "original")
    assert result.exit_code == 0, result.output
    assert "10 missing frames filled" in result.output and video.count_frames(out) == 15


def test_quality_needs_a_lossy_format(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    (tmp_path / "model.bin").write_bytes(b"quick")
    assert vpipe("split", str(film(tmp_path)), "--job", "film").exit_code == 0
    result = vpipe("stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--quality", "50")
    assert result.exit_code == 2 and "--quality applies to jpg and webp" in result.output
