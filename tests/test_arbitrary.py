"""The arbitrary engine with the real Magenta TF Lite models from ../shared/assets (skipped without them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import storage, tiles, video
from pipeline.errors import ModelError, UsageError
from tests.helpers import assets_or_skip, cut_lines

arbitrary = pytest.importorskip("pipeline.engines.arbitrary")


@pytest.fixture(scope="module")
def magenta() -> Path:
    return assets_or_skip("models/magenta_tflite")


@pytest.fixture(scope="module")
def painting() -> np.ndarray:
    return storage.read_rgb(assets_or_skip("styles/starry_night.jpg"))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return storage.read_rgb(assets_or_skip("content/tubingen.jpg"))  # 1024x768


@pytest.fixture(scope="module")
def engine(magenta: Path, painting: np.ndarray) -> arbitrary.ArbitraryEngine:
    return arbitrary.ArbitraryEngine(magenta, painting, threads=2)


def window_net(engine: arbitrary.ArbitraryEngine) -> tiles.Network:
    return lambda window: engine.transfer(content_image=window[None], mobilenet=engine.style_vector)[0]


def as_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


def test_odd_size_keeps_shape_and_is_stylized(engine: arbitrary.ArbitraryEngine, photo: np.ndarray) -> None:
    frame = np.ascontiguousarray(cv2.resize(photo, (517, 333), interpolation=cv2.INTER_AREA))
    out = engine.stylize([frame])[0]
    assert out.shape == (333, 517, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frame).mean() > 20  # visibly the painting's look, not the photo


def test_full_hd_frame_keeps_shape(engine: arbitrary.ArbitraryEngine, tmp_path: Path) -> None:
    clip = assets_or_skip("video/video_for_blend_modes.mp4")
    still = tmp_path / "frame.png"
    subprocess.run([video.tools().ffmpeg, "-v", "error", "-ss", "2", "-i", str(clip), "-frames:v", "1", str(still)],
                   check=True)
    frame = storage.read_rgb(still)
    out = engine.stylize([frame])[0]
    assert frame.shape == out.shape == (1080, 1920, 3)
    assert seam_ratio(out, axis=1) < 2.0 and seam_ratio(out, axis=0) < 2.0


def test_a_384_frame_is_one_single_pass(engine: arbitrary.ArbitraryEngine, photo: np.ndarray) -> None:
    frame = np.ascontiguousarray(photo[100:484, 300:684])
    single = window_net(engine)(as_float(frame))
    out = engine.stylize([frame])[0]
    assert np.abs(out.astype(np.float32) - np.round(single * 255)).max() <= 1


def test_tiles_are_single_passes_blended(engine: arbitrary.ArbitraryEngine, photo: np.ndarray) -> None:
    """384x640: windows at x=0 and x=256. Where only one window reaches, the output is that window's
    own single pass; in the overlap it lies between the two passes (a convex blend, no seam of its own)."""
    frame = np.ascontiguousarray(photo[:384, :640])
    net = window_net(engine)
    left, right = net(as_float(frame[:, :384])), net(as_float(frame[:, 256:]))
    out = as_float(engine.stylize([frame])[0])
    np.testing.assert_allclose(out[:, :256], left[:, :256], atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(out[:, 384:], right[:, 128:], atol=1 / 255 + 1e-6)
    low, high = np.minimum(left[:, 256:], right[:, :128]), np.maximum(left[:, 256:], right[:, :128])
    assert np.all(out[:, 256:384] >= low - 1 / 255) and np.all(out[:, 256:384] <= high + 1 / 255)


def seam_ratio(image: np.ndarray, axis: int) -> float:
    """Step across the lines where windows meet, over the median step (16-pixel blocks along the line,
    so a tone shift that runs along the seam counts and texture averages out); ~1 means no seam."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gray = gray if axis == 1 else gray.T
    blocks = gray[: gray.shape[0] // 16 * 16].reshape(-1, 16, gray.shape[1]).mean(axis=1)
    steps = np.abs(np.diff(blocks, axis=1)).mean(axis=0)
    lines = cut_lines(gray.shape[1], arbitrary.TILE, arbitrary.OVERLAP)
    return float(max(steps[x - 1] for x in lines) / np.median(steps))


def test_no_seams_where_tiles_meet(magenta: Path, photo: np.ndarray) -> None:
    """The Scream on tubingen (1024x768: 4x3 windows): cutting hard between windows leaves a seam the
    measure sees (3.5x the median step); the feathered blend stays at the level of the rest."""
    engine = arbitrary.ArbitraryEngine(magenta, storage.read_rgb(assets_or_skip("styles/the_scream.jpg")), threads=2)
    out = engine.stylize([photo])[0]
    assert out.shape == photo.shape
    assert seam_ratio(out, axis=1) < 1.5  # 3 vertical lines
    assert seam_ratio(out, axis=0) < 1.5  # 2 horizontal lines
    hard = tiles.tiled(as_float(photo), window_net(engine), arbitrary.TILE, arbitrary.OVERLAP, feather=False)
    assert seam_ratio(np.round(hard * 255).astype(np.uint8), axis=1) > 2.0


def test_strength_zero_is_the_frame_styled_by_itself(magenta: Path, painting: np.ndarray, photo: np.ndarray) -> None:
    frame = np.ascontiguousarray(cv2.resize(photo, (384, 288), interpolation=cv2.INTER_AREA))
    by_itself = arbitrary.ArbitraryEngine(magenta, frame, threads=2).stylize([frame])[0].astype(np.float32)
    zero = arbitrary.ArbitraryEngine(magenta, painting, strength=0.0, threads=2)
    half = arbitrary.ArbitraryEngine(magenta, painting, strength=0.5, threads=2)
    full = arbitrary.ArbitraryEngine(magenta, painting, strength=1.0, threads=2)
    distance = {name: np.abs(e.stylize([frame])[0] - by_itself).mean() for name, e in
                (("zero", zero), ("half", half), ("full", full))}
    assert distance["zero"] < 1.0
    assert distance["zero"] < distance["half"] < distance["full"]
    assert distance["full"] > 15


def test_style_vector_is_computed_once(magenta: Path, painting: np.ndarray, photo: np.ndarray) -> None:
    frame = np.ascontiguousarray(photo[:200, :300])
    full = arbitrary.ArbitraryEngine(magenta, painting, threads=2)
    full.stylize([frame, frame])
    assert full.predict.calls == 1  # the painting, at load time only
    blended = arbitrary.ArbitraryEngine(magenta, painting, strength=0.7, threads=2)
    blended.stylize([frame, frame])
    assert blended.predict.calls == 3  # plus each frame's own vector


def test_int8_transfer_and_upsample_mode(magenta: Path, painting: np.ndarray, photo: np.ndarray) -> None:
    frame = np.ascontiguousarray(cv2.resize(photo, (640, 360), interpolation=cv2.INTER_AREA))
    f16 = arbitrary.ArbitraryEngine(magenta, painting, threads=2).stylize([frame])[0]
    int8 = arbitrary.ArbitraryEngine(magenta, painting, transfer="int8", threads=2)
    assert int8.transfer.path.name == arbitrary.TRANSFER["int8"]
    out = int8.stylize([frame])[0]
    assert out.shape == frame.shape and np.abs(out.astype(int) - f16).mean() < 20  # quantisation noise only
    upsampled = arbitrary.ArbitraryEngine(magenta, painting, mode="upsample", threads=2).stylize([frame])[0]
    assert upsampled.shape == frame.shape and np.abs(upsampled.astype(int) - frame).mean() > 15


def test_missing_model_files_say_what_to_do(tmp_path: Path, magenta: Path, painting: np.ndarray) -> None:
    with pytest.raises(ModelError, match="vpipe models pull magenta_tflite"):
        arbitrary.ArbitraryEngine(tmp_path / "nowhere", painting)
    only_predict = tmp_path / "partial"
    only_predict.mkdir()
    shutil.copy(magenta / arbitrary.PREDICT, only_predict)
    with pytest.raises(ModelError, match="style_transfer_f16_384.tflite or style_transfer_quantized_384.tflite missing"):
        arbitrary.ArbitraryEngine(only_predict, painting)
    shutil.copy(magenta / arbitrary.TRANSFER["int8"], only_predict)  # the other transfer net is used instead
    assert arbitrary.ArbitraryEngine(only_predict, painting).transfer.path.name == arbitrary.TRANSFER["int8"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / arbitrary.PREDICT).write_bytes(b"not a flatbuffer")
    shutil.copy(magenta / arbitrary.TRANSFER["f16"], broken)
    with pytest.raises(ModelError, match="not a usable TF Lite model"):
        arbitrary.ArbitraryEngine(broken, painting)


def test_bad_options(tmp_path: Path, magenta: Path, painting: np.ndarray) -> None:
    with pytest.raises(UsageError, match="between 0 and 1"):
        arbitrary.ArbitraryEngine(magenta, painting, strength=1.5)
    with pytest.raises(UsageError, match="mode"):
        arbitrary.ArbitraryEngine(magenta, painting, mode="stretch")
    with pytest.raises(UsageError, match="style image"):
        arbitrary.load(magenta, {})
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ModelError, match="not a readable image"):
        arbitrary.load(magenta, {"style_image": str(bad)})


@pytest.mark.skipif(not arbitrary.openvino_cpu.available(), reason="the openvino package is not installed")
def test_the_transfer_net_on_openvino_equals_litert(engine: arbitrary.ArbitraryEngine, photo: np.ndarray) -> None:
    """On the CPUs where OpenVINO is preferred the transfer net runs on it (faster); its windows equal LiteRT's."""
    want_backend = "openvino" if arbitrary.openvino_cpu.preferred(arbitrary.cpu_flags()) else "litert"
    assert engine.transfer.backend == want_backend
    window = as_float(np.ascontiguousarray(cv2.resize(photo, (arbitrary.TILE, arbitrary.TILE))))[None]
    lite = arbitrary.Net(engine.transfer.path, 2, "litert")
    want = lite(content_image=window, mobilenet=engine.style_vector)
    got = arbitrary.Net(engine.transfer.path, 2, "openvino")(content_image=window, mobilenet=engine.style_vector)
    assert got.shape == want.shape == (1, arbitrary.TILE, arbitrary.TILE, 3)
    assert np.abs(got - want).max() < 1 / 255  # within one level of 8-bit output


@pytest.mark.skipif(not arbitrary.openvino_cpu.available(), reason="the openvino package is not installed")
def test_the_transfer_net_runs_on_openvino_on_the_cpus_where_the_fast_engine_does(
        magenta: Path, painting: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both CPU kinds, whatever this machine is: the flags are stated."""
    for flags, want in [(frozenset({"avx", "avx2", "fma"}), "litert"),
                        (frozenset({"avx2", "avx512f", "avx512_bf16"}), "openvino"),
                        (frozenset({"avx512_bf16", "amx_tile", "amx_bf16"}), "openvino")]:
        monkeypatch.setattr(arbitrary, "cpu_flags", lambda flags=flags: flags)
        assert arbitrary.ArbitraryEngine(magenta, painting, threads=1).transfer.backend == want, sorted(flags)
