"""Frame files on disk: decode, encode, and publish atomically (tmp, fsync, rename, fsync dir)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from .errors import JobError
from .frames import is_frame_name

if TYPE_CHECKING:  # numpy is imported where a frame is decoded (read_rgb), not by every command
    import numpy as np

TMP_MARK = ".tmp-"
PNG_LEVEL = 1  # fast, still lossless: frame I/O must not slow a fast engine down
# One fixed row filter ("up") instead of libpng's per-row choice among all five: a 640x360 frame encodes
# in 12 ms instead of 25 ms at the same size (measured on the real clip; cv2 builds without the option
# keep the default): `encode`. And zlib's run-length strategy (matches at distance 1 only): brush texture
# has few longer repeats to find, so styled 640x360 frames (starry_night, great_wave, wave) encoded 1.5-1.9x
# faster and 2-4% smaller, and decode no slower; footage 1.2-1.3x faster and 5-10% larger, flat colour fields
# smaller (bench/bench_png.py; README "Speed").
JPEG_QUALITY = 95
# Styled frames' storage (`stylize --format`); the default quality of each lossy format. WebP at
# quality 100 is stored lossless (OpenCV's "above 100").
FORMATS = ("png", "jpg", "webp")
DEFAULT_QUALITY = {"jpg": JPEG_QUALITY, "webp": 90}


# The most pixels an image (a painting, a frame) may declare: a small file can declare 60000x60000 and
# decode to gigabytes, so the size in its header is checked before anything is decoded.
MAX_PIXELS = 100_000_000


class TooLarge(ValueError):
    """An image whose header declares more than MAX_PIXELS pixels."""


def _u16(data: bytes, at: int, order: Literal["little", "big"] = "big") -> int:
    return int.from_bytes(data[at:at + 2], order)


def _u32(data: bytes, at: int, order: Literal["little", "big"] = "big") -> int:
    return int.from_bytes(data[at:at + 4], order)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's frame header (SOFn), walking the segments before it."""
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return _u16(data, at + 7), _u16(data, at + 5)
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
            continue
        at += 2 + _u16(data, at + 2)
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order: Literal["little", "big"] = "little" if data[:2] == b"II" else "big"
    ifd = _u32(data, 4, order)
    found: dict[int, int] = {}
    for k in range(_u16(data, ifd, order) if ifd + 2 <= len(data) else 0):
        entry = ifd + 2 + 12 * k
        tag, kind = _u16(data, entry, order), _u16(data, entry + 2, order)
        if tag in (256, 257):
            found[tag] = _u16(data, entry + 8, order) if kind == 3 else _u32(data, entry + 8, order)
    return (found[256], found[257]) if len(found) == 2 else None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as an image file's header declares them, without decoding it; None when the
    bytes are not a PNG, JPEG, WebP, BMP, GIF or TIFF header."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return _u32(data, 16), _u32(data, 20)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        chunk = data[12:16]
        if chunk == b"VP8 " and len(data) >= 30:
            return _u16(data, 26, "little") & 0x3FFF, _u16(data, 28, "little") & 0x3FFF
        if chunk == b"VP8L" and len(data) >= 25:
            bits = _u32(data, 21, "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X" and len(data) >= 30:
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
        return None
    if data[:2] == b"BM" and len(data) >= 26:
        if _u32(data, 14, "little") == 12:  # the OS/2 header: 16-bit sizes
            return _u16(data, 18, "little"), _u16(data, 20, "little")
        return abs(int.from_bytes(data[18:22], "little", signed=True)), abs(int.from_bytes(data[22:26], "little", signed=True))
    if data[:4] in (b"GIF8",) and len(data) >= 10:
        return _u16(data, 6, "little"), _u16(data, 8, "little")
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(data)
    return None


def check_pixels(name: str, width: int, height: int) -> None:
    """A one-line refusal of an image that would decode to more than MAX_PIXELS pixels."""
    if width * height > MAX_PIXELS:
        raise TooLarge(f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels): "
                       f"vpipe reads images up to {MAX_PIXELS / 1e6:.0f} megapixels; scale it down first")


def read_rgb(path: Path, side: int | None = None) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB; raises ValueError when it is missing or does not decode, and
    TooLarge, before decoding anything, when its header declares more than MAX_PIXELS pixels. `side`:
    decoded at 1/2, 1/4 or 1/8 of its size where its long side stays at least `side` (a thumbnail)."""
    import numpy as np

    data = np.fromfile(path, dtype=np.uint8)  # np.fromfile: any file name, unlike cv2.imread
    size = image_size(data[:1 << 16].tobytes())
    if size is None and data.size > 1 << 16:  # a JPEG whose frame header, a TIFF whose directory, comes later
        size = image_size(data.tobytes())
    if size is None or 0 in size:
        raise ValueError(f"{path.name} does not decode as an image")
    check_pixels(path.name, *size)
    import cv2  # here, as numpy: commands that only move files (split, assemble) import neither

    reduced = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))
    flag = next((f for k, f in reduced if side and max(size) // k >= side), cv2.IMREAD_COLOR)
    image = cv2.imdecode(data, flag)
    if image is None:
        raise ValueError(f"{path.name} does not decode as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encode(rgb: np.ndarray, ext: str, quality: int | None = None) -> bytes:
    import cv2  # as in read_rgb

    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if ext == "png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE] + (
            [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP] if hasattr(cv2, "IMWRITE_PNG_FILTER_UP") else [])
    elif ext == "webp":
        chosen = quality or DEFAULT_QUALITY["webp"]
        params = [cv2.IMWRITE_WEBP_QUALITY, 101 if chosen >= 100 else chosen]
    else:
        params = [cv2.IMWRITE_JPEG_QUALITY, quality or JPEG_QUALITY]
    ok, buffer = cv2.imencode("." + ext, bgr, params)
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} frame as {ext}")
    return buffer.tobytes()


def styled_format(frames_ext: str, fmt: str | None, quality: int | None) -> tuple[str | None, int | None]:
    """The (format, quality) a job's settings record for its styled frames: (None, None) for the
    default (the frames' own format at its default quality), so jobs from before --format compare equal."""
    ext = fmt or frames_ext
    if quality is not None and ext not in DEFAULT_QUALITY:
        raise ValueError(f"--quality applies to jpg and webp, not {ext}")
    if quality == DEFAULT_QUALITY.get(ext):
        quality = None
    return (None if ext == frames_ext else ext), quality


def styled_ext(settings: dict[str, Any] | None, frames_ext: str) -> str:
    """The file extension of a job's styled frames: its --format, else the frames' own."""
    return str((settings or {}).get("format") or frames_ext)


def bit_depth(path: Path) -> int:
    """Bits per channel of an image file (16 for a 16-bit PNG, else 8), from its header."""
    with path.open("rb") as handle:
        head = handle.read(25)
    return 16 if image_size(head) and head[:4] == b"\x89PNG" and head[24] == 16 else 8


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


BLOCK = 1 << 20


def feed(path: Path, *digests: Any) -> None:
    """Stream a file's bytes into one or more hashlib objects (one read for all)."""
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            for item in digests:
                item.update(block)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    hashed = hashlib.new(algorithm)
    feed(path, hashed)
    return hashed.hexdigest()


def fsync_path(path: Path) -> None:
    """fsync a file, or a folder (so a rename in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _no_checkpoint(point: str) -> None:
    pass


def publish(path: Path, data: bytes, checkpoint: Callable[[str], None] = _no_checkpoint) -> None:
    """Make `path` hold `data` durably, or not exist under that name at all.

    A crash at any point leaves at most a stale tmp file (swept at the next run), never a partial
    file under the final name. `checkpoint` is called after each step (crash-point tests).
    """
    tmp = tmp_name(path)
    fd = open_own(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        checkpoint("written")
        os.fsync(fd)
    finally:
        os.close(fd)
    checkpoint("synced")
    os.replace(tmp, path)
    fsync_path(path.parent)
    checkpoint("renamed")


def open_own(path: Path, flags: int) -> int:
    """os.open for a file vpipe writes (lock, logs, tmp files): never through a symbolic link, so a link
    planted in a job folder cannot redirect a write or a truncate to someone else's file."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise JobError(f"{path} is a symbolic link: vpipe does not write through links "
                           "(remove the link, or point it at a folder instead)") from None
        raise


def open_log(path: Path) -> IO[str]:
    """A log file opened for appending lines (created if need be), never through a symbolic link."""
    return os.fdopen(open_own(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a", buffering=1)


def append_fd(path: Path) -> int:
    """A file descriptor appending to `path` (a child's stderr log), never through a symbolic link."""
    return open_own(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)


def remove_own(path: Path) -> bool:
    """Remove a file vpipe wrote: a regular file only. A symbolic link (to anything) or a folder in its
    place is left alone, so nothing outside vpipe's own files is ever deleted. True when removed."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def own_frames(folder: Path) -> list[Path]:
    """The frame files vpipe wrote in `folder` (NNNNNN.png|jpg|webp, regular files): what --restart or a
    failed split may remove. A user's own file in a frames or styled folder never matches."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if is_frame_name(p.name) and stat.S_ISREG(os.lstat(p).st_mode)]


def remove_own_folder(folder: Path) -> None:
    """Remove a folder vpipe made, with the frame files (and their tmp files) vpipe wrote in it. A link
    or a file in its place, or a folder that holds anything else, is left as it is (JobError)."""
    if not folder.exists() and not folder.is_symlink():
        return
    if folder.is_symlink() or not folder.is_dir():
        raise JobError(f"{folder} is not a folder vpipe made (a link or a file): move it away and run the "
                       "command again")
    for path in own_frames(folder) + tmp_files(folder):
        path.unlink()
    try:
        folder.rmdir()
    except OSError:
        raise JobError(f"{folder} holds files vpipe did not write: move them away and run the command again") from None


def tmp_name(path: Path) -> Path:
    """Where this process writes `path` before the rename: hidden, and marked with its pid."""
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


def is_tmp_name(name: str) -> bool:
    """A frame's tmp name as tmp_name() makes it: ".NNNNNN.png.tmp-PID"."""
    head, mark, pid = name.partition(TMP_MARK)
    return bool(mark) and pid.isdigit() and head.startswith(".") and is_frame_name(head[1:])


def tmp_files(folder: Path) -> list[Path]:
    """Frame tmp files in `folder` (a live writer's, or stale ones left by writers that died)."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if is_tmp_name(p.name) and stat.S_ISREG(os.lstat(p).st_mode)]


def sweep_tmp(folder: Path) -> int:
    """Remove frame tmp files left by writers that died (only those: nothing else in the folder); how many."""
    return sum(remove_own(path) for path in tmp_files(folder))
