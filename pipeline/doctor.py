"""`vpipe doctor`: which ffmpeg, TensorFlow, devices, model folders and styles vpipe would use here."""

from __future__ import annotations

import os
import subprocess
import sys

from . import styles, video
from .errors import VpipeError
from .models import lookup


def doctor() -> list[tuple[str, str]]:
    """What vpipe would use here. TensorFlow is asked in a child process, as workers would."""
    rows: list[tuple[str, str]] = []
    try:
        tools = video.tools()
        version = video.run([tools.ffmpeg, "-version"], "ffmpeg -version").stdout.splitlines()[0]
        rows += [("ffmpeg", f"{tools.ffmpeg} ({tools.origin}; {version})"),
                 ("ffprobe", tools.ffprobe or "none (probing parses ffmpeg's stream listing)")]
    except VpipeError as exc:
        rows.append(("ffmpeg", f"MISSING: {exc}"))
    probe = ("import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import tensorflow as tf; "
             "print(tf.__version__); print(', '.join(d.device_type + ':' + d.name.split(':')[-1] "
             "for d in tf.config.list_physical_devices()))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    if done.returncode == 0:
        version, devices = (done.stdout.strip().splitlines() + ["", ""])[:2]
        rows += [("tensorflow", version), ("devices", devices)]
    else:
        rows.append(("tensorflow", f"MISSING: {(done.stderr.strip().splitlines() or ['?'])[-1]}"))
    rows.append(("model search path", " then ".join(str(p) for p in lookup.search_path())))
    rows.append(("styles", f"{styles.styles_dir()} ({', '.join(styles.available()) or 'none'})"))
    rows.append(("cpu cores", str(os.cpu_count())))
    from .engines.fast import engine as fast

    flags = fast.precisions.cpu_flags()
    try:
        chosen, backend = fast.choose("auto", False, flags)
        rows.append(("fast on a CPU", f"{chosen} on {backend} (native bf16: "
                     f"{', '.join(sorted(flags & fast.precisions.BF16_FLAGS)) or 'none'}; {fast.BACKEND_ENV} forces one)"))
    except VpipeError as exc:
        rows.append(("fast on a CPU", f"BAD: {exc}"))
    return rows
