"""Where model weights come from: $VPIPE_MODELS_DIR first, then the user cache.

Models are addressed by a relative name laid out like ../shared/assets/models, e.g.
"lengstrom_fst/wave". Nothing here imports TensorFlow or executes code from a model file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline import storage
from pipeline.errors import ModelError
from pipeline.models import catalogue

MODELS_ENV = "VPIPE_MODELS_DIR"

# Feature networks for perceptual losses (Keras "notop" weight files), by network name.
FEATURE_NETS = {
    "squeezenet": "squeezenet/squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "vgg19": "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
}


@dataclass(frozen=True)
class Known:
    """A published weight file: where it comes from and its digest (Keras publishes md5)."""

    url: str
    digest: str
    algorithm: str = "sha256"


# Every published file of the catalogue (pipeline/catalogue.json), by its place under a models folder.
KNOWN = {r.path: Known(r.url, r.digest, r.algorithm) for e in catalogue.entries().values() for r in e.files}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vpipe" / "models"


def search_path() -> list[Path]:
    extra = os.environ.get(MODELS_ENV)
    return ([Path(extra)] if extra else []) + [cache_dir()]


def find(name: str) -> Path:
    """The first folder or file named `name` on the search path, or an error saying where to put it."""
    for base in search_path():
        candidate = base / name
        if candidate.exists():
            return candidate
    places = " or ".join(str(base / name) for base in search_path())
    source = f"; download: {KNOWN[name].url}" if name in KNOWN else ""
    entry = catalogue.covering(name)
    if entry:
        source += f"; or run `vpipe models pull {entry.name}`"
    raise ModelError(f"model {name!r} not found: place it at {places} "
                     f"(or point {MODELS_ENV} at a folder that has {name}){source}")


def verified(name: str) -> Path:
    """find(), then check the file against its published digest when one is known."""
    path = find(name)
    known = KNOWN.get(name)
    if known and path.is_file():
        got = storage.file_digest(path, known.algorithm)
        if got != known.digest:
            raise ModelError(f"model file {path} is damaged or not the published one ({known.algorithm} "
                             f"{got[:12]}..., expected {known.digest[:12]}...): replace it with "
                             f"{known.url}")
    return path


def fingerprint(path: Path) -> str:
    """sha256 over a model file, or over every file of a model folder (names and contents)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        storage.feed(file, digest)
    return digest.hexdigest()
