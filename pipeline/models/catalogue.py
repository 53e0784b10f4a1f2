"""The models vpipe knows (pipeline/models/catalogue.json): where each comes from and its checksum.

Pure data and lookups; no network, no file writes. An entry is one file (a Keras .h5) or one
folder of files (a lengstrom network, the Magenta TF Lite pair), addressed by its `location`
under a models folder, e.g. "lengstrom_fst/wave".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath

from pipeline.errors import UsageError

DATA = Path(__file__).with_name("catalogue.json")


@dataclass(frozen=True)
class Remote:
    """One published file: its place under a models folder, URL, digest and size in bytes."""

    path: str  # relative, e.g. "lengstrom_fst/wave/Variable_3"
    url: str
    digest: str
    algorithm: str  # "sha256", or "md5" where Keras publishes only that
    size: int | None


@dataclass(frozen=True)
class Entry:
    name: str
    what: str
    source: str
    location: str  # a file or a folder under a models folder
    files: tuple[Remote, ...]
    licence: str = "unknown"
    commercial_use: bool = False  # False: the licence rules out commercial work (shown where it is used)

    @property
    def folder(self) -> bool:
        return not (len(self.files) == 1 and self.files[0].path == self.location)

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)

    def relative(self, remote: Remote) -> str:
        """The file's name inside the entry (its own name for a one-file entry)."""
        return remote.path[len(self.location) + 1:] if self.folder else PurePosixPath(remote.path).name


def _digest(item: dict[str, object]) -> tuple[str, str]:
    algorithm = "sha256" if "sha256" in item else "md5"
    return str(item[algorithm]), algorithm


def parse(text: str) -> dict[str, Entry]:
    """catalogue.json -> entries by name (a file has url + digest; a folder has base_url + files)."""
    out = {}
    for raw in json.loads(text)["entries"]:
        location = str(raw["location"])
        if "files" in raw:
            files = tuple(Remote(f"{location}/{name}", str(raw["base_url"]) + name, *_digest(item), item.get("size"))
                          for name, item in raw["files"].items())
        else:
            files = (Remote(location, str(raw["url"]), *_digest(raw), raw.get("size")),)
        out[str(raw["name"])] = Entry(str(raw["name"]), str(raw["what"]), str(raw.get("source", "")), location, files,
                                      str(raw.get("licence", "unknown")), raw.get("commercial_use") is True)
    return out


@cache
def entries() -> dict[str, Entry]:
    return parse(DATA.read_text(encoding="utf-8"))


def lookup(name: str, known: dict[str, Entry] | None = None) -> Entry:
    """An entry by its name, or by the last part of it when that is unique ("wave")."""
    known = entries() if known is None else known
    if name in known:
        return known[name]
    matches = [e for e in known.values() if e.name.rsplit("/", 1)[-1] == name.rstrip("/")]
    if len(matches) == 1:
        return matches[0]
    raise UsageError(f"unknown model {name!r} (known: {', '.join(known)}; see `vpipe models list`)")


def covering(location: str, known: dict[str, Entry] | None = None) -> Entry | None:
    """The entry that holds `location` (the entry itself, or one of its files)."""
    known = entries() if known is None else known
    for entry in known.values():
        if entry.location == location or any(f.path == location for f in entry.files):
            return entry
    return None


def holding(path: Path, known: dict[str, Entry] | None = None) -> Entry | None:
    """The entry whose location a model path ends with (a catalogue model found under any models folder)."""
    known = entries() if known is None else known
    parts = path.parts
    for entry in known.values():
        location = PurePosixPath(entry.location).parts
        if parts[-len(location):] == location:
            return entry
    return None


def licence_line(entry: Entry) -> str:
    """One line on what the licence allows, for every listing and for a model's first use."""
    limit = "" if entry.commercial_use else "; NOT for commercial work"
    return f"licence: {entry.licence}{limit} (source: {entry.source or 'see catalogue'})"


def plain(name: str) -> bool:
    """Whether `name` is a relative path that stays where it is joined: not absolute, no '..' or '.' parts,
    no empty parts, no backslash."""
    return bool(name) and not name.startswith("/") and "\\" not in name \
        and not any(p in ("..", ".", "") for p in name.split("/"))


def safe_location(name: str) -> str:
    """A user-given model name as a relative location: no absolute paths, no '..', no empty parts."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or any(p in ("..", ".") for p in parts) or "\\" in name:
        raise UsageError(f"--name {name!r}: use a relative name such as 'my_models/candy' (no '..', not absolute)")
    return "/".join(parts)
