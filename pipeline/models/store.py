"""The model store: what is present where, and `pull` from the canonical URL.

Downloads (and imports, pipeline/models/importer.py) go into the user cache (lookup.cache_dir())
through a hidden staging file or folder next to the target, are checked against the catalogue's
digest, then renamed into place: a model is complete under its name or absent. Nothing here loads
or runs a model file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline import storage
from pipeline.errors import ModelError, UsageError
from pipeline.models import catalogue, lookup
from pipeline.models.catalogue import Entry, Remote

TIMEOUT = 30.0


def mismatch(path: Path, remote: Remote) -> str | None:
    """None when `path` is the published file, else what differs (one phrase)."""
    if not path.is_file():
        return "missing"
    if remote.size is not None and path.stat().st_size != remote.size:
        return f"{path.stat().st_size} bytes, expected {remote.size}"
    got = storage.file_digest(path, remote.algorithm)
    return None if got == remote.digest else f"{remote.algorithm} {got[:12]}..., expected {remote.digest[:12]}..."


@dataclass(frozen=True)
class Presence:
    entry: Entry
    where: Path | None  # the copy find() would use: the first on the search path
    present: int = 0  # files of the entry found there
    size: int = 0  # their bytes
    damaged: tuple[str, ...] = ()  # files whose size (or, when verified, digest) is wrong

    @property
    def state(self) -> str:
        total = len(self.entry.files)
        if self.where is None:
            return "missing"
        if self.damaged:
            return f"damaged ({', '.join(self.damaged[:3])}{' ...' if len(self.damaged) > 3 else ''})"
        return "present" if self.present == total else f"incomplete ({self.present}/{total} files)"


def presence(entry: Entry, verify: bool = False) -> Presence:
    for root in lookup.search_path():
        where = root / entry.location
        if not where.exists():
            continue
        present, size, damaged = 0, 0, []
        for remote in entry.files:
            path = root / remote.path
            if not path.is_file():
                continue
            present, size = present + 1, size + path.stat().st_size
            wrong = mismatch(path, remote) if verify else (
                "size" if remote.size is not None and path.stat().st_size != remote.size else None)
            if wrong:
                damaged.append(entry.relative(remote))
        return Presence(entry, where, present, size, tuple(damaged))
    return Presence(entry, None)


def listing(verify: bool = False) -> list[Presence]:
    return [presence(entry, verify) for entry in catalogue.entries().values()]


# ---------------------------------------------------------------- writing into the cache


def install(staging: Path, target: Path) -> None:
    """Rename a complete staging file or folder to `target`, replacing what was there."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists() or target.is_symlink():
        os.replace(target, old)
    os.replace(staging, target)
    storage.fsync_path(target.parent)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    elif old.exists() or old.is_symlink():
        old.unlink()


def discard(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def own_target(location: str, force: bool) -> Path:
    """Where a model of your own named `location` goes in the cache, or a one-line refusal: never at, in or
    above a catalogue model's place (--force there would replace models vpipe verifies), an existing
    model only with --force, and never a folder of several models (--force replaces the one it names)."""
    mine = PurePosixPath(location)
    for entry in catalogue.entries().values():
        place = PurePosixPath(entry.location)
        if mine == place or place in mine.parents or mine in place.parents:
            raise UsageError(f"--name {location!r}: the catalogue model {entry.name} lives at {entry.location}; "
                             f"choose a name of your own, e.g. my_models/{mine.name}")
    target = lookup.cache_dir() / location
    if target.exists() or target.is_symlink():
        if not force:
            raise UsageError(f"{target} already exists: use --force to replace it")
        if target.is_dir() and not target.is_symlink() and any(p.is_dir() for p in target.iterdir()):
            raise UsageError(f"{target} is a folder that holds other folders (other models?): --force replaces "
                             "one model, never a folder of them; choose another --name")
    return target


def staging_for(target: Path) -> Path:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
        discard(staging)
        staging.touch()
        staging.unlink()
    except OSError as exc:
        raise ModelError(f"cannot write to the model cache {target.parent}: {exc.strerror or exc}") from None
    return staging


OFFLINE_ENV = "VPIPE_OFFLINE"
Progress = Callable[[int], None]  # bytes received so far


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def _https_opener() -> Any:
    """A URL opener that follows a redirect only to an https URL. The URL libraries (http.client and the
    rest: 25 ms) are imported here, at a download, not by every command that resolves a model."""
    import urllib.parse
    import urllib.request

    class HttpsRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                             newurl: str) -> urllib.request.Request | None:
            if urllib.parse.urlsplit(newurl).scheme != "https":
                raise ModelError(f"{req.full_url} redirects to {newurl}: vpipe follows redirects only to https; "
                                 "nothing was installed")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return urllib.request.build_opener(HttpsRedirects)


def fetch(url: str, dest: Path, algorithm: str, progress: Progress | None = None, size: int | None = None) -> str:
    """Download `url` to `dest` (fsynced), at most `size` bytes (the catalogue's); returns the digest of
    what arrived."""
    import urllib.request

    digest = hashlib.new(algorithm)
    request = urllib.request.Request(url, headers={"User-Agent": "vpipe"})
    received = 0
    opener = _https_opener()
    with opener.open(request, timeout=TIMEOUT) as response, dest.open("wb") as out:
        for block in iter(lambda: response.read(storage.BLOCK), b""):
            digest.update(block)
            received += len(block)
            if size is not None and received > size:
                raise ModelError(f"{url}: the server sends more than the catalogue's {size} bytes; "
                                 "nothing was installed")
            if progress:
                progress(received)
            try:
                out.write(block)
            except OSError as exc:  # the disk, not the network: no "place it at" advice
                raise ModelError(f"cannot write {dest}: {exc.strerror or exc}") from None
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _offline(entry: Entry, remote: Remote, target: Path, exc: BaseException) -> ModelError:
    import urllib.error
    import urllib.parse

    reason = f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) else \
        str(getattr(exc, "reason", None) or exc) or type(exc).__name__
    host = urllib.parse.urlsplit(remote.url).netloc or remote.url
    kind = f"the folder {entry.location} (its {len(entry.files)} files from {remote.url.rsplit('/', 1)[0]}/)" \
        if entry.folder else f"{remote.url}"
    return ModelError(f"cannot download {entry.name} from {host} ({reason}): place {kind} at {target}, "
                      f"or `vpipe models import PATH` a copy")


@dataclass
class Result:
    name: str
    path: Path
    copied: int = 0  # files downloaded or copied
    already: bool = False
    notes: list[str] = field(default_factory=list)


def pull(name: str, show: bool = False) -> Result:
    """Download a catalogue entry into the cache, unless a verified copy is already on the search path;
    `show`: progress on stderr (a bar on a terminal, one line per file otherwise)."""
    entry = catalogue.lookup(name)
    found = presence(entry, verify=True)
    if found.where is not None and found.state == "present":
        return Result(entry.name, found.where, already=True)
    for place in [entry.location, *(entry.relative(r) for r in entry.files if entry.folder)]:
        if not catalogue.plain(place):
            raise ModelError(f"catalogue entry {entry.name}: {place!r} is not a plain relative path; "
                             "nothing was downloaded")
    import urllib.error

    target = lookup.cache_dir() / entry.location
    staging = staging_for(target)
    try:
        if entry.folder:
            staging.mkdir()
        for remote in entry.files:
            dest = staging / entry.relative(remote) if entry.folder else staging
            try:
                got = fetch(remote.url, dest, remote.algorithm, _Meter(entry, remote) if show else None,
                            remote.size)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise _offline(entry, remote, target, exc) from None
            if got != remote.digest:
                raise ModelError(f"{remote.url}: the download does not match its published {remote.algorithm} "
                                 f"({got[:12]}..., expected {remote.digest[:12]}...); nothing was installed: "
                                 f"try again, or place a verified copy at {target}")
        install(staging, target)
    finally:
        discard(staging)
    result = Result(entry.name, target, copied=len(entry.files))
    if found.where is not None and found.where != target:
        result.notes.append(f"the {found.state} copy at {found.where} comes first on the search path: remove it")
    return result


def obtain(name: str) -> Path:
    """The model `name` on the search path, fetched first when it is a missing catalogue model, the way
    Keras and torch.hub fetch weights on first use; offline ($VPIPE_OFFLINE, --offline) it stays the
    one-line "place it here" error."""
    try:
        return lookup.find(name)
    except ModelError:
        entry = catalogue.covering(name)
        if entry is None or offline():
            raise
    print(f"fetching {entry.name} ({entry.size / 1e6:.1f} MB), {catalogue.licence_line(entry)}",
          file=sys.stderr, flush=True)
    pull(entry.name, show=True)
    return lookup.find(name)


class _Meter:
    """Download progress: a bar with size and rate on a terminal, one line per finished file otherwise."""

    def __init__(self, entry: Entry, remote: Remote) -> None:
        self.label = entry.relative(remote)
        self.total, self.started, self.tty = remote.size, time.monotonic(), sys.stderr.isatty()

    def __call__(self, received: int) -> None:
        rate = received / max(time.monotonic() - self.started, 1e-6)
        done = self.total is not None and received >= self.total
        if self.tty:
            size = f"{received / 1e6:.1f}/{self.total / 1e6:.1f} MB" if self.total else f"{received / 1e6:.1f} MB"
            print(f"\r  {self.label}: {size} at {rate / 1e6:.1f} MB/s", end="\n" if done else "", file=sys.stderr,
                  flush=True)
        elif done:
            print(f"  {self.label}: {received} bytes at {rate / 1e6:.1f} MB/s", file=sys.stderr, flush=True)
