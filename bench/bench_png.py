"""`make bench` (frame files): PNG encode settings for styled frames, on real frames of several kinds.

zlib level 1 with the "up" row filter (vpipe before), and the same with zlib's run-length strategy (vpipe
now, `storage.encode`) or its Huffman-only strategy: encode and decode ms per frame (min of ROUNDS
interleaved passes) and kB per frame, on footage (640x360 and 1280x720 clips, a small one), a posterized
copy (a cartoon's flat fields), and the styled output of two shipped styles and the 'wave' net.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
os.environ.setdefault("VPIPE_MODELS_DIR", str(ASSETS / "models"))
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pipeline import video  # noqa: E402
from pipeline.engines.fast.engine import FastEngine  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CLIPS = {"footage 640x360": "slow_traffic_small.mp4", "footage 1280x720": "cockatoo_yuv420.mp4",
         "footage 340x256": "mmaction2_demo.mp4"}
UP = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
SETTINGS = {"before": UP, "run-length (now)": UP + [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE],
            "Huffman only": UP + [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]}


def frames(clip: Path, count: int, work: Path) -> list[np.ndarray]:
    """The first frames of a clip, BGR."""
    folder = Path(tempfile.mkdtemp(dir=work))
    subprocess.run([video.tools().ffmpeg, "-v", "error", "-i", str(clip), "-frames:v", str(count),
                    str(folder / "%03d.png")], check=True)
    return [cv2.imread(str(p)) for p in sorted(folder.glob("*.png"))]


def styled(model: Path, images: list[np.ndarray]) -> list[np.ndarray]:
    out = FastEngine(model).stylize([cv2.cvtColor(i, cv2.COLOR_BGR2RGB) for i in images])
    return [cv2.cvtColor(o, cv2.COLOR_RGB2BGR) for o in out]


def measure(images: list[np.ndarray]) -> dict[str, tuple[float, float, float]]:
    """Per setting: (encode ms, decode ms, kB) per frame."""
    best = {name: [float("inf"), float("inf"), 0.0] for name in SETTINGS}
    for _ in range(ROUNDS):
        for name, params in SETTINGS.items():
            start = time.perf_counter()
            data = [cv2.imencode(".png", i, params)[1] for i in images]
            encode = (time.perf_counter() - start) / len(images)
            start = time.perf_counter()
            for d in data:
                cv2.imdecode(d, cv2.IMREAD_COLOR)
            decode = (time.perf_counter() - start) / len(images)
            row = best[name]
            row[0], row[1], row[2] = min(row[0], encode), min(row[1], decode), sum(map(len, data)) / len(data)
    return {name: (row[0] * 1e3, row[1] * 1e3, row[2] / 1e3) for name, row in best.items()}


def main() -> int:
    needed = [ASSETS / "video" / c for c in CLIPS.values()] + [ASSETS / "models/lengstrom_fst/wave"]
    missing = [p for p in needed if not p.exists()]
    if missing:
        print(f"bench_png: needs {missing[0]} (the ../shared/assets folder)")
        return 1
    with tempfile.TemporaryDirectory(prefix="vpipe-bench-png-") as tmp:
        sets = {label: frames(ASSETS / "video" / clip, 6, Path(tmp)) for label, clip in CLIPS.items()}
        source = sets["footage 640x360"]
        sets["posterized 640x360 (flat fields)"] = [(f // 64 * 64).astype(np.uint8) for f in source]
        for name, model in (("starry_night", ROOT / "styles/starry_night/model"),
                            ("great_wave", ROOT / "styles/great_wave/model"),
                            ("wave", ASSETS / "models/lengstrom_fst/wave")):
            sets[f"{name} output 640x360"] = styled(model, source)
        print(f"== PNG, zlib level 1, 'up' filter: encode / decode ms and kB per frame, min of {ROUNDS} interleaved passes")
        for label, images in sets.items():
            rows = measure(images)
            before = rows["before"]
            cells = [f"{name} {e:5.1f} / {d:4.1f} ms {kb:5.0f} kB" for name, (e, d, kb) in rows.items()]
            now = rows["run-length (now)"]
            print(f"  {label:<34} " + " | ".join(cells) +
                  f"  -> now: encode {before[0] / now[0]:.2f}x faster, size {now[2] / before[2]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
