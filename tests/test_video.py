"""The ffmpeg boundary: pure parsers and argument builders, then real ffmpeg on synthetic clips."""

# ruff: noqa: E501  (the ffmpeg banners below are pasted verbatim)

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipeline import video
from pipeline.errors import MediaError
from pipeline.probe import AudioStream, VideoInfo, parse_ffmpeg_banner, parse_ffprobe, rational, snap_rate
from pipeline.video import Tools, assemble_args, output_audio_codecs, split_args

# ================================================================ pure: rates


@pytest.mark.parametrize(
    ("printed", "exact"),
    [
        (29.97, Fraction(30000, 1001)),
        (23.98, Fraction(24000, 1001)),
        (59.94, Fraction(60000, 1001)),
        (119.88, Fraction(120000, 1001)),
        (25.0, Fraction(25)),
        (30.0, Fraction(30)),
        (24.0, Fraction(24)),
        (60.0, Fraction(60)),
        (12.5, Fraction(25, 2)),
    ],
)
def test_snap_rate(printed: float, exact: Fraction) -> None:
    assert snap_rate(printed) == exact


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("30000/1001", Fraction(30000, 1001)),
        ("25/1", Fraction(25)),
        ("29.97", Fraction(2997, 100)),
        (" 24 ", Fraction(24)),
        ("0/0", None),
        ("0/1", None),
        ("N/A", None),
        ("", None),
        ("-25/1", None),
    ],
)
def test_rational(text: str, value: Fraction | None) -> None:
    assert rational(text) == value


# ================================================================ pure: ffprobe JSON


def probe_json(streams: list[dict], format_name: str = "mov,mp4,m4a,3gp,3g2,mj2", duration: str = "1.001000") -> str:
    return json.dumps({"streams": streams, "format": {"filename": "in.mp4", "nb_streams": len(streams),
                                                      "format_name": format_name, "duration": duration}})


H264 = {
    "index": 0, "codec_name": "h264", "codec_type": "video", "width": 1920, "height": 1080,
    "coded_width": 1920, "coded_height": 1088, "sample_aspect_ratio": "1:1", "display_aspect_ratio": "16:9",
    "pix_fmt": "yuv420p", "r_frame_rate": "30000/1001", "avg_frame_rate": "30000/1001", "time_base": "1/30000",
    "duration": "10.010000", "nb_frames": "300",
    "disposition": {"default": 1, "attached_pic": 0},
    "tags": {"language": "und", "handler_name": "VideoHandler"},
}


def aac(index: int, language: str) -> dict:
    return {"index": index, "codec_name": "aac", "codec_type": "audio", "sample_rate": "48000", "channels": 2,
            "channel_layout": "stereo", "disposition": {"default": int(index == 1), "attached_pic": 0},
            "tags": {"language": language, "handler_name": "SoundHandler"}}


def test_parse_ffprobe_full_sample() -> None:
    rotated = {**H264, "side_data_list": [{"side_data_type": "Display Matrix",
                                           "displaymatrix": "\n00000000:            0       65536           0\n",
                                           "rotation": 90}]}
    info = parse_ffprobe(probe_json([rotated, aac(1, "eng"), aac(2, "fra")]))
    assert (info.width, info.height) == (1920, 1080)
    assert info.rate == "30000/1001"
    assert info.avg_rate == "30000/1001"
    assert info.variable_rate is False
    assert info.frame_count == 300
    assert info.duration == pytest.approx(10.01)
    assert info.pix_fmt == "yuv420p"
    assert info.sar == "1:1"
    assert info.rotation == 90
    assert info.display_size == (1080, 1920)
    assert info.codec == "h264"
    assert info.container == "mov,mp4,m4a,3gp,3g2,mj2"
    assert info.audio == (AudioStream(1, "aac", 2, 48000, "eng"), AudioStream(2, "aac", 2, 48000, "fra"))


def test_parse_ffprobe_negative_rotation_and_old_rotate_tag() -> None:
    minus = {**H264, "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}
    assert parse_ffprobe(probe_json([minus])).rotation == 270
    tagged = {**H264, "tags": {"rotate": "90"}}  # the old tag is clockwise: 90 cw == -90 ccw
    assert parse_ffprobe(probe_json([tagged])).rotation == 270
    upside = {**H264, "side_data_list": [{"side_data_type": "Display Matrix", "rotation": 180}]}
    info = parse_ffprobe(probe_json([upside]))
    assert info.rotation == 180
    assert info.display_size == (1920, 1080)


def test_parse_ffprobe_attached_pic_only() -> None:
    cover = {"index": 0, "codec_name": "mjpeg", "codec_type": "video", "width": 600, "height": 600,
             "r_frame_rate": "90000/1", "avg_frame_rate": "0/0", "disposition": {"default": 0, "attached_pic": 1}}
    with pytest.raises(MediaError, match="no video stream"):
        parse_ffprobe(probe_json([aac(0, "eng"), cover], format_name="mp3"))


def test_parse_ffprobe_skips_attached_pic_before_the_video() -> None:
    cover = {"index": 0, "codec_name": "mjpeg", "codec_type": "video", "width": 600, "height": 600,
             "r_frame_rate": "90000/1", "avg_frame_rate": "0/0", "disposition": {"default": 0, "attached_pic": 1}}
    info = parse_ffprobe(probe_json([cover, {**H264, "index": 1}]))
    assert (info.width, info.height, info.codec) == (1920, 1080, "h264")


def test_parse_ffprobe_no_streams() -> None:
    with pytest.raises(MediaError, match="no video stream"):
        parse_ffprobe(probe_json([]))


def test_parse_ffprobe_variable_rate() -> None:
    vfr = {**H264, "r_frame_rate": "30/1", "avg_frame_rate": "24000/1001", "nb_frames": "N/A"}
    info = parse_ffprobe(probe_json([vfr]))
    assert info.variable_rate is True
    assert info.rate == "24000/1001"
    assert info.rate == info.avg_rate
    assert info.frame_count is None


def test_parse_ffprobe_rates_within_a_thousandth_are_constant() -> None:
    near = {**H264, "r_frame_rate": "30000/1001", "avg_frame_rate": "2997/100"}
    info = parse_ffprobe(probe_json([near]))
    assert info.variable_rate is False
    assert info.rate == "30000/1001"


def test_parse_ffprobe_missing_average_and_odd_sar() -> None:
    stream = {**H264, "avg_frame_rate": "0/0", "sample_aspect_ratio": "64:51", "duration": "N/A"}
    info = parse_ffprobe(probe_json([stream], duration="N/A"))
    assert info.rate == "30000/1001"
    assert info.avg_rate == "30000/1001"
    assert info.variable_rate is False
    assert info.sar == "64:51"
    assert info.duration is None
    unknown_sar = parse_ffprobe(probe_json([{**H264, "sample_aspect_ratio": "0:1"}]))
    assert unknown_sar.sar == "1:1"


def test_parse_ffprobe_no_rate_at_all() -> None:
    with pytest.raises(MediaError, match="no frame rate"):
        parse_ffprobe(probe_json([{**H264, "r_frame_rate": "0/0", "avg_frame_rate": "0/0"}]))


def test_video_info_dict_round_trip() -> None:
    info = parse_ffprobe(probe_json([H264, aac(1, "eng"), aac(2, "fra")]))
    data = json.loads(json.dumps(info.to_dict()))  # as stored in the manifest
    assert VideoInfo.from_dict(data) == info


# ================================================================ pure: ffmpeg banner
# Real stderr of `ffmpeg -hide_banner -i FILE` (ffmpeg n9.0.2 from imageio-ffmpeg) on synthetic clips.

BANNER_ONE_AAC = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'a.mp4':
  Metadata:
    major_brand     : isom
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    encoder         : Lavf63.1.102
  Duration: 00:00:01.00, start: 0.000000, bitrate: 110 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 64x48 [SAR 1:1 DAR 4:3], 18 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)
    Metadata:
      handler_name    : VideoHandler
      encoder         : Lavc63.1.102 libx264
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 70 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
At least one output file must be specified
"""

BANNER_ROTATED_MINUS_90 = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'rotm90.mp4':
  Metadata:
    major_brand     : isom
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    encoder         : Lavf63.1.102
  Duration: 00:00:01.00, start: 0.000000, bitrate: 110 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 64x48 [SAR 1:1 DAR 4:3], 18 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)
    Metadata:
      handler_name    : VideoHandler
      encoder         : Lavc63.1.102 libx264
    Side data:
      Display Matrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 70 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
At least one output file must be specified
"""

BANNER_SAR = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'sar.mp4':
  Metadata:
    major_brand     : isom
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    encoder         : Lavf63.1.102
  Duration: 00:00:01.00, start: 0.000000, bitrate: 27 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 64x48 [SAR 64:51 DAR 256:153], 17 kb/s, 25 fps, 25 tbr, 12800 tbn (default)
    Metadata:
      handler_name    : VideoHandler
      encoder         : Lavc63.1.102 libx264
At least one output file must be specified
"""

BANNER_TWO_AUDIO = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'two.mp4':
  Metadata:
    major_brand     : isom
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    encoder         : Lavf63.1.102
  Duration: 00:00:01.00, start: 0.000000, bitrate: 185 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 64x48 [SAR 1:1 DAR 4:3], 18 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)
    Metadata:
      handler_name    : VideoHandler
      encoder         : Lavc63.1.102 libx264
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 70 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
  Stream #0:2[0x3](fra): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 67 kb/s
    Metadata:
      handler_name    : SoundHandler
At least one output file must be specified
"""

BANNER_ODD_444 = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'odd.mp4':
  Metadata:
    major_brand     : isom
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    encoder         : Lavf63.1.102
  Duration: 00:00:01.00, start: 0.000000, bitrate: 31 kb/s
  Stream #0:0[0x1](und): Video: h264 (High 4:4:4 Predictive) (avc1 / 0x31637661), yuv444p(progressive), 67x45 [SAR 1:1 DAR 67:45], 21 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)
    Metadata:
      handler_name    : VideoHandler
      encoder         : Lavc63.1.102 libx264
At least one output file must be specified
"""

BANNER_MKV = """\
Input #0, matroska,webm, from 'two.mkv':
  Metadata:
    COMPATIBLE_BRANDS: isomiso2avc1mp41
    MAJOR_BRAND     : isom
    MINOR_VERSION   : 512
    ENCODER         : Lavf63.1.102
  Duration: 00:00:01.02, start: 0.000000, bitrate: 99 kb/s
  Stream #0:0: Video: h264 (High), yuv420p(progressive), 64x48 [SAR 1:1 DAR 4:3], 29.97 fps, 29.97 tbr, 1k tbn (default)
    Metadata:
      HANDLER_NAME    : VideoHandler
      ENCODER         : Lavc63.1.102 libx264
      DURATION        : 00:00:01.001000000
  Stream #0:1(eng): Audio: aac (LC), 44100 Hz, mono, fltp (default)
    Metadata:
      HANDLER_NAME    : SoundHandler
      DURATION        : 00:00:01.023000000
At least one output file must be specified
"""

BANNER_VFR = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'vfr.mp4':
  Metadata:
    major_brand     : isom
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    encoder         : Lavf63.1.102
  Duration: 00:00:01.80, start: 0.000000, bitrate: 19 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 64x48 [SAR 1:1 DAR 4:3], 13 kb/s, 22.22 fps, 30 tbr, 15360 tbn (default)
    Metadata:
      handler_name    : VideoHandler
      encoder         : Lavc63.1.102 libx264
At least one output file must be specified
"""

BANNER_AUDIO_ONLY = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.m4a':
  Metadata:
    major_brand     : M4A
    minor_version   : 512
    compatible_brands: M4A isomiso2
    encoder         : Lavf63.1.102
  Duration: 00:00:01.00, start: 0.000000, bitrate: 79 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 70 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
At least one output file must be specified
"""

BANNER_PNG = """\
Input #0, png_pipe, from 'still.png':
  Duration: N/A, bitrate: N/A
  Stream #0:0: Video: png, rgb24(pc, gbr/unknown/unknown), 64x48 [SAR 1:1 DAR 4:3], 25 fps, 25 tbr, 25 tbn
At least one output file must be specified
"""


def test_banner_one_aac() -> None:
    info = parse_ffmpeg_banner(BANNER_ONE_AAC)
    assert (info.width, info.height) == (64, 48)
    assert info.rate == "30000/1001"
    assert info.avg_rate == "30000/1001"
    assert info.variable_rate is False
    assert info.frame_count is None
    assert info.duration == pytest.approx(1.0)
    assert info.pix_fmt == "yuv420p"
    assert info.sar == "1:1"
    assert info.rotation == 0
    assert info.codec == "h264"
    assert info.container == "mov,mp4,m4a,3gp,3g2,mj2"
    assert info.audio == (AudioStream(index=1, codec="aac", channels=1, sample_rate=44100, language=None),)


def test_banner_display_matrix_minus_90_is_270() -> None:
    info = parse_ffmpeg_banner(BANNER_ROTATED_MINUS_90)
    assert info.rotation == 270
    assert (info.width, info.height) == (64, 48)
    assert info.display_size == (48, 64)
    assert len(info.audio) == 1


def test_banner_old_style_displaymatrix_line() -> None:
    old = BANNER_ONE_AAC.replace(
        "      encoder         : Lavc63.1.102 libx264\n",
        "      encoder         : Lavc63.1.102 libx264\n"
        "    Side data:\n      displaymatrix: rotation of 90.00 degrees\n")
    assert parse_ffmpeg_banner(old).rotation == 90


def test_banner_rotation_of_an_audio_stream_is_not_the_videos() -> None:
    text = BANNER_ONE_AAC + "    Side data:\n      Display Matrix: rotation of -90.00 degrees\n"
    assert parse_ffmpeg_banner(text.replace("At least one output file must be specified\n", "")).rotation == 0


def test_banner_sar() -> None:
    info = parse_ffmpeg_banner(BANNER_SAR)
    assert info.sar == "64:51"
    assert info.rate == "25"
    assert info.audio == ()


def test_banner_two_audio_languages() -> None:
    info = parse_ffmpeg_banner(BANNER_TWO_AUDIO)
    assert info.audio == (AudioStream(1, "aac", 1, 44100, "eng"), AudioStream(2, "aac", 1, 44100, "fra"))
    assert info.duration == pytest.approx(1.0)


def test_banner_odd_size_yuv444p() -> None:
    info = parse_ffmpeg_banner(BANNER_ODD_444)
    assert (info.width, info.height) == (67, 45)
    assert info.pix_fmt == "yuv444p"
    assert info.codec == "h264"


def test_banner_matroska() -> None:
    info = parse_ffmpeg_banner(BANNER_MKV)
    assert info.container == "matroska,webm"
    assert info.rate == "30000/1001"
    assert info.duration == pytest.approx(1.02)
    assert info.audio == (AudioStream(1, "aac", 1, 44100, "eng"),)


def test_banner_variable_rate() -> None:
    info = parse_ffmpeg_banner(BANNER_VFR)
    assert info.variable_rate is True
    assert Fraction(info.rate) == Fraction(200, 9)  # printed 22.22
    assert info.rate == info.avg_rate


def test_banner_audio_only() -> None:
    with pytest.raises(MediaError, match="no video stream"):
        parse_ffmpeg_banner(BANNER_AUDIO_ONLY)


def test_banner_png_container() -> None:
    info = parse_ffmpeg_banner(BANNER_PNG)
    assert info.container == "png_pipe"
    assert info.duration is None
    assert info.pix_fmt == "rgb24"
    assert info.codec == "png"


def test_banner_attached_pic_is_skipped() -> None:
    text = BANNER_AUDIO_ONLY.replace(
        "At least one output file must be specified\n",
        "  Stream #0:1[0x2]: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 600x600 "
        "[SAR 1:1 DAR 1:1], 90k tbr, 90k tbn (attached pic)\n")
    with pytest.raises(MediaError, match="no video stream"):
        parse_ffmpeg_banner(text)


# ================================================================ pure: audio codecs and argument lists


def test_output_audio_codecs() -> None:
    streams = (AudioStream(1, "aac"), AudioStream(2, "pcm_s16le"), AudioStream(3, "vorbis"), AudioStream(4, "mp3"))
    assert output_audio_codecs(streams, ".mp4") == ["copy", "aac", "aac", "copy"]
    assert output_audio_codecs(streams, ".mkv") == ["copy", "copy", "copy", "copy"]
    assert output_audio_codecs(streams, ".mov") == ["copy", "copy", "aac", "copy"]
    assert output_audio_codecs((), ".mp4") == []


def info_for(width: int = 64, height: int = 48, rotation: int = 0, audio: tuple[AudioStream, ...] = (),
             sar: str = "1:1", rate: str = "30000/1001") -> VideoInfo:
    return VideoInfo(width=width, height=height, rate=rate, avg_rate=rate, variable_rate=False, frame_count=30,
                     duration=1.0, pix_fmt="yuv420p", sar=sar, rotation=rotation, codec="h264",
                     container="mov,mp4,m4a,3gp,3g2,mj2", audio=audio)


def after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


SPACED_SOURCE = Path("/videos/my holiday (1).mp4")
SPACED_PATTERN = Path("/jobs/my job/frames/%06d.png")


def test_split_args_passthrough() -> None:
    args = split_args("/usr/bin/ffmpeg", SPACED_SOURCE, SPACED_PATTERN, "png")
    assert all(isinstance(a, str) for a in args)
    assert args[0] == "/usr/bin/ffmpeg"
    assert after(args, "-i") == str(SPACED_SOURCE)
    assert args[-1] == str(SPACED_PATTERN)
    assert after(args, "-fps_mode") == "passthrough"
    assert "-r" not in args
    assert after(args, "-map") == "0:v:0"
    assert after(args, "-pix_fmt") == "rgb24"
    assert after(args, "-start_number") == "1"
    assert after(args, "-f") == "image2"
    assert "-nostdin" in args
    assert "-noautorotate" not in args  # frames are written upright


def test_split_args_jpeg() -> None:
    args = split_args("ffmpeg", Path("in.mp4"), Path("f/%06d.jpg"), "jpg")
    assert after(args, "-fps_mode") == "passthrough"  # a variable-rate source too: one frame per coded frame
    assert "-vf" not in args and "-frames:v" not in args
    assert after(args, "-pix_fmt") == "yuvj444p"


def test_assemble_args_plain() -> None:
    audio = (AudioStream(1, "aac", 2, 48000, "eng"),)
    args = assemble_args("ffmpeg", SPACED_PATTERN, info_for(audio=audio), SPACED_SOURCE,
                         Path("/out/final cut.mp4"), 18)
    assert all(isinstance(a, str) for a in args)
    assert str(SPACED_PATTERN) in args
    assert str(SPACED_SOURCE) in args
    assert args[-1] == "/out/final cut.mp4"
    assert after(args, "-framerate") == "30000/1001"
    assert args.index("-framerate") < args.index(str(SPACED_PATTERN))
    assert "-display_rotation" not in args
    assert after(args, "-vf") == "setsar=1/1"
    assert after(args, "-pix_fmt") == "yuv420p"
    assert after(args, "-crf") == "18"
    assert after(args, "-c:v") == "libx264"
    assert after(args, "-c:a:0") == "copy"
    assert after(args, "-movflags") == "+faststart"
    maps = [args[i + 1] for i, a in enumerate(args) if a == "-map"]
    assert maps == ["0:v:0", "1:1"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "-i"] == [str(SPACED_PATTERN), str(SPACED_SOURCE)]


def test_assemble_args_rotated_odd_size_two_audio() -> None:
    audio = (AudioStream(1, "aac", 1, 44100, "eng"), AudioStream(3, "pcm_s16le", 2, 48000, "fra"))
    args = assemble_args("ffmpeg", Path("f/%07d.png"), info_for(67, 45, rotation=90, audio=audio, sar="64:51",
                                                                rate="24000/1001"),
                         Path("in.mov"), Path("out.MP4"), 23)
    assert after(args, "-display_rotation") == "90"
    assert "-noautorotate" in args
    first_input = args.index("-i")
    assert args.index("-display_rotation") < first_input  # an input option of the frames
    assert after(args, "-framerate") == "24000/1001"
    assert after(args, "-vf") == "transpose=clock,setsar=64/51"
    assert after(args, "-pix_fmt") == "yuv444p"
    maps = [args[i + 1] for i, a in enumerate(args) if a == "-map"]
    assert maps == ["0:v:0", "1:1", "1:3"]
    assert after(args, "-c:a:0") == "copy"
    assert after(args, "-c:a:1") == "aac"
    assert after(args, "-movflags") == "+faststart"


@pytest.mark.parametrize(("rotation", "filters"), [(180, "hflip,vflip,setsar=1/1"),
                                                   (270, "transpose=cclock,setsar=1/1")])
def test_assemble_args_other_rotations(rotation: int, filters: str) -> None:
    args = assemble_args("ffmpeg", Path("f/%06d.png"), info_for(rotation=rotation), Path("in.mp4"),
                         Path("out.mkv"), 18)
    assert after(args, "-display_rotation") == str(rotation)
    assert after(args, "-vf") == filters
    assert "-movflags" not in args  # not for Matroska
    assert args.count("-i") == 1  # no audio: the source is not an input
    assert "in.mp4" not in args


def test_assemble_args_even_size_but_one_odd_side() -> None:
    args = assemble_args("ffmpeg", Path("f/%06d.png"), info_for(64, 45), Path("in.mp4"), Path("o.mp4"), 18)
    assert after(args, "-pix_fmt") == "yuv444p"


# ================================================================ real ffmpeg


FFMPEG = video.tools().ffmpeg


def ff(*args: str) -> None:
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True)


def lavfi_testsrc(size: str) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=30000/1001"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    c = {name: d / f"{name}.mp4" for name in ("aac", "odd", "silent", "two", "rot90", "rotm90", "sar")}
    sine = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    h264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    ff(*lavfi_testsrc("64x48"), *sine, "-t", "1", "-map", "0", "-map", "1", *h264, "-c:a", "aac", str(c["aac"]))
    ff(*lavfi_testsrc("67x45"), "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv444p", str(c["odd"]))
    ff(*lavfi_testsrc("64x48"), "-t", "1", *h264, str(c["silent"]))
    ff(*lavfi_testsrc("64x48"), *sine, "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000", "-t", "1",
       "-map", "0", "-map", "1", "-map", "2", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
       *h264, "-c:a", "aac", str(c["two"]))
    ff("-display_rotation", "90", "-i", str(c["aac"]), "-c", "copy", str(c["rot90"]))
    ff("-display_rotation", "-90", "-i", str(c["aac"]), "-c", "copy", str(c["rotm90"]))
    ff("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-t", "1", "-vf", "setsar=64/51", *h264, str(c["sar"]))
    spaced = d / "with space" / "my clip (1).mp4"
    spaced.parent.mkdir()
    shutil.copy(c["aac"], spaced)
    c["spaced"] = spaced
    c["audio_only"] = d / "x.m4a"
    ff("-f", "lavfi", "-i", "sine", "-t", "1", str(c["audio_only"]))
    c["png"] = d / "still.png"
    ff("-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1", str(c["png"]))
    c["text"] = d / "x.mp4"
    c["text"].write_text("hello, I am not a video\n")
    return c


def ffprobe_tools() -> Tools | None:
    ffprobe = shutil.which("ffprobe")
    return Tools(FFMPEG, ffprobe, "test") if ffprobe else None


@pytest.fixture(params=["default", "fallback"])
def probe_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run probe tests with the tools found, then with the ffmpeg-banner fallback forced."""
    video.tools.cache_clear()
    if request.param == "fallback":
        forced = Tools(FFMPEG, None, "test")
        monkeypatch.setattr(video, "tools", lambda: forced)
    yield request.param
    monkeypatch.undo()
    video.tools.cache_clear()


def test_probe_one_aac(clips: dict[str, Path], probe_mode: str) -> None:
    info = video.probe(clips["aac"])
    assert (info.width, info.height) == (64, 48)
    assert info.rate == "30000/1001"
    assert info.variable_rate is False
    assert info.rotation == 0
    assert info.display_size == (64, 48)
    assert info.codec == "h264"
    assert info.pix_fmt == "yuv420p"
    assert info.sar == "1:1"
    assert info.duration == pytest.approx(1.0, abs=0.05)
    assert [(a.index, a.codec, a.channels, a.sample_rate) for a in info.audio] == [(1, "aac", 1, 44100)]


def test_probe_odd_size(clips: dict[str, Path], probe_mode: str) -> None:
    info = video.probe(clips["odd"])
    assert (info.width, info.height) == (67, 45)
    assert info.pix_fmt == "yuv444p"
    assert info.rate == "30000/1001"
    assert info.audio == ()


def test_probe_no_audio(clips: dict[str, Path], probe_mode: str) -> None:
    info = video.probe(clips["silent"])
    assert info.audio == ()
    assert (info.width, info.height, info.rate) == (64, 48, "30000/1001")


def test_probe_two_audio_tracks(clips: dict[str, Path], probe_mode: str) -> None:
    info = video.probe(clips["two"])
    assert [(a.index, a.codec, a.language) for a in info.audio] == [(1, "aac", "eng"), (2, "aac", "fra")]
    assert [a.sample_rate for a in info.audio] == [44100, 48000]


@pytest.mark.parametrize(("name", "rotation"), [("rot90", 90), ("rotm90", 270)])
def test_probe_rotated(clips: dict[str, Path], probe_mode: str, name: str, rotation: int) -> None:
    info = video.probe(clips[name])
    assert info.rotation == rotation
    assert (info.width, info.height) == (64, 48)
    assert info.display_size == (48, 64)
    assert len(info.audio) == 1


def test_probe_sar(clips: dict[str, Path], probe_mode: str) -> None:
    info = video.probe(clips["sar"])
    assert info.sar == "64:51"
    assert info.rate == "25"


def test_probe_path_with_spaces(clips: dict[str, Path], probe_mode: str) -> None:
    info = video.probe(clips["spaced"])
    assert (info.width, info.height, info.rate, len(info.audio)) == (64, 48, "30000/1001", 1)


def test_probe_text_file(clips: dict[str, Path], probe_mode: str) -> None:
    with pytest.raises(MediaError, match="cannot read x.mp4 as a video"):
        video.probe(clips["text"])


def test_probe_missing_file(tmp_path: Path, probe_mode: str) -> None:
    with pytest.raises(MediaError, match="absent.mp4"):
        video.probe(tmp_path / "absent.mp4")


def test_probe_still_image(clips: dict[str, Path], probe_mode: str) -> None:
    with pytest.raises(MediaError, match="still image"):
        video.probe(clips["png"])


def test_probe_audio_only(clips: dict[str, Path], probe_mode: str) -> None:
    with pytest.raises(MediaError, match="no video stream"):
        video.probe(clips["audio_only"])


def test_fallback_agrees_with_ffprobe(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The banner parser and ffprobe describe the same clips the same way (when ffprobe exists)."""
    names = ("aac", "odd", "silent", "two", "rot90", "rotm90", "sar")

    def key(info: VideoInfo) -> tuple:
        return (info.width, info.height, info.rate, info.variable_rate, info.rotation, info.sar,
                [(a.index, a.codec, a.channels, a.sample_rate) for a in info.audio])

    forced = Tools(FFMPEG, None, "test")
    video.tools.cache_clear()
    monkeypatch.setattr(video, "tools", lambda: forced)
    try:
        fallback = {n: key(video.probe(clips[n])) for n in names}
    finally:
        monkeypatch.undo()
        video.tools.cache_clear()
    assert fallback["rot90"][4] == 90
    assert fallback["two"][6] == [(1, "aac", 1, 44100), (2, "aac", 1, 48000)]

    with_probe = ffprobe_tools()
    if with_probe is None:
        pytest.skip("no ffprobe on PATH: only the fallback parser was exercised")
    monkeypatch.setattr(video, "tools", lambda: with_probe)
    try:
        probed = {n: key(video.probe(clips[n])) for n in names}
    finally:
        monkeypatch.undo()
        video.tools.cache_clear()
    assert probed == fallback


def test_count_frames(clips: dict[str, Path]) -> None:
    assert video.count_frames(clips["aac"]) == 30
    assert video.count_frames(clips["sar"]) == 25


def test_count_frames_of_garbage(clips: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="counting frames of x.mp4"):
        video.count_frames(clips["text"])


def test_progress_frames() -> None:
    text = "frame=10\nfps=0.0\nprogress=continue\nframe=30\nfps=0.0\nprogress=end\n"
    assert video.progress_frames(text) == 30
    assert video.progress_frames("") == 0


def rgb_first_frame(path: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3).astype(int)


@pytest.mark.parametrize("name", ["rot90", "odd", "two"])
def test_split_then_assemble_round_trip(clips: dict[str, Path], tmp_path: Path, name: str) -> None:
    """The built argument lists run on the real ffmpeg and give back the source's geometry and audio."""
    source = clips[name]
    info = video.probe(source)
    frames = tmp_path / "frames dir"
    frames.mkdir()
    video.run(split_args(FFMPEG, source, frames / "%06d.png", "png"), "splitting")
    names = sorted(p.name for p in frames.iterdir())
    assert names == [f"{i:06d}.png" for i in range(1, 31)]

    output = tmp_path / "out put.mp4"
    video.run(assemble_args(FFMPEG, frames / "%06d.png", info, source, output, 18), "assembling")
    out = video.probe(output)
    assert (out.width, out.height, out.rate, out.rotation, out.sar) == (
        info.width, info.height, info.rate, info.rotation, info.sar)
    assert [(a.codec, a.language) for a in out.audio] == [(a.codec, a.language) for a in info.audio]
    assert video.count_frames(output) == 30
    w, h = info.display_size
    before, again = rgb_first_frame(source, w, h), rgb_first_frame(output, w, h)
    assert np.abs(before - again).mean() < 12  # upright and the same picture, not flipped or turned
    assert np.abs(before[::-1, ::-1] - again).mean() > 40


def test_run_failure_carries_the_last_line(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="doing it failed: .*") as caught:
        video.run([FFMPEG, "-nostdin", "-hide_banner", "-i", str(tmp_path / "nope.mp4")], "doing it")
    assert "No such file or directory" in str(caught.value) or "nope.mp4" in str(caught.value)


def test_run_cannot_start(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="could not start"):
        video.run([str(tmp_path / "no-such-ffmpeg")], "probing")
