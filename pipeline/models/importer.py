"""`vpipe models import`: copy a local model file or folder into the cache.

A catalogue model (named with --name, or recognised by its checksums) is verified file by file
before anything is written; a model of your own is copied as it is under the name you give. The
copy goes through the same staging-and-rename as a download (see pipeline/models/store.py).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from pipeline.errors import ModelError, UsageError
from pipeline.models import catalogue, lookup
from pipeline.models.catalogue import Entry, Remote
from pipeline.models.store import Result, discard, install, mismatch, own_target, staging_for
from pipeline.storage import feed, fsync_path


def _copy(source: Path, dest: Path) -> None:
    shutil.copyfile(source, dest)
    fsync_path(dest)


def _digests(path: Path) -> dict[str, str]:
    """sha256 and md5 of a file in one pass."""
    digests = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    feed(path, *digests.values())
    return {k: v.hexdigest() for k, v in digests.items()}


def verified_files(source: Path, entry: Entry) -> list[tuple[Path, Remote]]:
    """The entry's files that `source` (a file or a folder) holds, each checked against the catalogue."""
    if source.is_file():
        digests = _digests(source)
        pairs = [(source, r) for r in entry.files if digests[r.algorithm] == r.digest]
        if not pairs:
            first = entry.files[0]
            detail = f"{first.algorithm} {digests[first.algorithm][:12]}..., expected {first.digest[:12]}..." \
                if not entry.folder else f"its checksum matches none of the {len(entry.files)} files of {entry.name}"
            raise ModelError(f"{source} is not the published {entry.name} ({detail}): nothing was imported")
        return pairs[:1]
    pairs, wrong = [], []
    for remote in entry.files:
        path = source / entry.relative(remote)
        problem = mismatch(path, remote)
        if problem is None:
            pairs.append((path, remote))
        elif problem != "missing":
            wrong.append(f"{entry.relative(remote)}: {problem}")
    if wrong or not pairs:
        detail = "; ".join(wrong[:2]) or f"none of its {len(entry.files)} files is in that folder"
        raise ModelError(f"{source} is not the published {entry.name} ({detail}): nothing was imported")
    return pairs


def identify(source: Path) -> Entry | None:
    """The catalogue entry whose published file(s) `source` holds, found by checksum."""
    known = catalogue.entries().values()
    if source.is_file():
        digests = _digests(source)
        return next((e for e in known for r in e.files if digests[r.algorithm] == r.digest), None)
    for entry in known:
        try:
            verified_files(source, entry)
        except ModelError:
            continue
        return entry
    return None


def _entry_named(name: str) -> Entry | None:
    try:
        return catalogue.lookup(name)
    except UsageError:
        return None


def import_model(source: Path, name: str | None = None, force: bool = False) -> Result:
    """Copy a local model into the cache: verified when it is (or is named as) a catalogue entry."""
    if not source.exists():
        raise UsageError(f"{source}: no such file or folder")
    entry = _entry_named(name) if name else identify(source)
    if entry is None and source.is_file() and source.suffix.lower() == ".t7":  # Johnson's Torch models
        from . import torch7

        return torch7.import_t7(source, name or source.stem, force)
    if entry is None:
        if name is None:
            raise UsageError(f"{source} matches no model in the catalogue (checksums differ): give --name NAME "
                             "to copy it into the cache as a model of your own")
        return _import_own(source, catalogue.safe_location(name), force)
    pairs = verified_files(source, entry)
    target = lookup.cache_dir() / entry.location
    staging = staging_for(target)
    try:
        if entry.folder:
            staging.mkdir()
            have = {r for _, r in pairs}
            for remote in entry.files:  # files of the entry already in the cache that verify are kept
                kept = target / entry.relative(remote)
                if remote not in have and target.is_dir() and mismatch(kept, remote) is None:
                    pairs.append((kept, remote))
            for path, remote in pairs:
                _copy(path, staging / entry.relative(remote))
        else:
            _copy(pairs[0][0], staging)
        install(staging, target)
    finally:
        discard(staging)
    result = Result(entry.name, target, copied=len(pairs))
    if len(pairs) < len(entry.files):
        result.notes.append(f"{entry.name} is incomplete: {len(pairs)} of {len(entry.files)} files "
                            f"(`vpipe models pull {entry.name}` fetches them all)")
    return result


def _import_own(source: Path, location: str, force: bool) -> Result:
    target = own_target(location, force)
    staging = staging_for(target)
    try:
        if source.is_dir():
            shutil.copytree(source, staging, symlinks=False)
        else:
            _copy(source, staging)
        install(staging, target)
    finally:
        discard(staging)
    count = sum(1 for p in target.rglob("*") if p.is_file()) if target.is_dir() else 1
    return Result(location, target, copied=count, notes=["not in the catalogue: copied without a checksum check"])
