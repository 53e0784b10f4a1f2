"""The model store: catalogue, `vpipe models list|pull|import`, over real HTTP from a local server."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from click.testing import Result

from pipeline.errors import ModelError, UsageError
from pipeline.models import catalogue, lookup, store
from tests.helpers import ASSETS, assets_or_skip, make_clip, write_model


def one_line(result: Result, code: int, *words: str) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


# ---------------------------------------------------------------- the real catalogue


def test_catalogue_has_every_asked_model() -> None:
    names = set(catalogue.entries())
    assert {"vgg19", "squeezenet", "magenta_tflite", "lengstrom_fst/wave", "lengstrom_fst/scream",
            "lengstrom_fst/udnie", "lengstrom_fst/rain_princess"} <= names
    wave = catalogue.entries()["lengstrom_fst/wave"]
    assert wave.folder and len(wave.files) == 49
    assert all(f.url.startswith("https://raw.githubusercontent.com/reiinakano/fast-style-transfer-deeplearnjs/"
                                "bd3a0486e4ed4a02b0b4102a7f12a55e3c935d73/src/ckpts/wave/") for f in wave.files)
    vgg = catalogue.entries()["vgg19"]
    assert not vgg.folder and vgg.files[0].algorithm == "md5" and vgg.location == lookup.FEATURE_NETS["vgg19"]
    assert all(f.url.startswith("https://") for e in catalogue.entries().values() for f in e.files)


def test_catalogue_checksums_match_the_assets() -> None:
    sums_file = assets_or_skip("SHA256SUMS")
    sums = dict(reversed(line.split(None, 1)) for line in sums_file.read_text().splitlines() if line.strip())
    sums = {path.strip(): digest for path, digest in sums.items()}
    published = {f"models/{f.path}": f for e in catalogue.entries().values() for f in e.files}
    in_assets = {p for p in sums if p.startswith("models/")}
    assert in_assets <= set(published), in_assets - set(published)
    for path in in_assets:
        assert published[path].digest == sums[path], path
        assert published[path].size == (ASSETS / path).stat().st_size, path


def test_lookup_by_short_name_and_unknown_names() -> None:
    assert catalogue.lookup("wave").name == "lengstrom_fst/wave"
    assert catalogue.lookup("magenta_tflite").location == "magenta_tflite"
    with pytest.raises(UsageError, match="unknown model 'nope'.*lengstrom_fst/udnie"):
        catalogue.lookup("nope")
    for bad in ("../x", "/abs/x", "a/../b", ""):
        with pytest.raises(UsageError):
            catalogue.safe_location(bad)


def test_find_says_what_to_pull(dirs: dict[str, Path]) -> None:
    with pytest.raises(ModelError, match=r"place it at .*lengstrom_fst/wave.*vpipe models pull lengstrom_fst/wave"):
        lookup.find("lengstrom_fst/wave")


def test_list_shows_present_missing_and_damaged(dirs: dict[str, Path], vpipe: Callable[..., Result]) -> None:
    source = assets_or_skip("models/squeezenet")
    missing = vpipe("models", "list")
    assert missing.exit_code == 0, missing.output
    assert "vpipe models pull magenta_tflite" in missing.output
    assert all(line.split()[1] == "missing" for line in missing.output.splitlines()[1::3])  # entry, where, licence
    shutil.copytree(source, dirs["extra"] / "squeezenet")
    shutil.copytree(assets_or_skip("models/magenta_tflite"), dirs["extra"] / "magenta_tflite")
    (dirs["extra"] / "magenta_tflite" / "style_transfer_quantized_384.tflite").unlink()
    listed = vpipe("models", "list").output
    squeeze = next(line for line in listed.splitlines() if line.startswith("squeezenet "))
    assert squeeze.split()[1:4] == ["present", "3.0", "MB"]
    assert str(dirs["extra"] / lookup.FEATURE_NETS["squeezenet"]) in listed
    assert "incomplete (2/3 files)" in listed
    h5 = dirs["extra"] / lookup.FEATURE_NETS["squeezenet"]
    data = bytearray(h5.read_bytes())
    data[5000] ^= 0xFF  # same size, other bytes: only --verify can tell
    h5.write_bytes(bytes(data))
    assert "squeezenet                   present" in vpipe("models", "list").output
    assert "damaged (squeezenet_weights" in vpipe("models", "list", "--verify").output


# ---------------------------------------------------------------- pull, against a local catalogue served over HTTP


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def fake_catalogue(monkeypatch: pytest.MonkeyPatch, root: Path, url: str, corrupt: bool = False) -> None:
    """Two entries: one file, one folder of two files; their bytes are put under the served root."""
    blobs = {"one.bin": b"weights " * 1000, "pack/a.bin": b"\x00\x01" * 3000, "pack/b.json": b'{"k": 1}'}
    for name, data in blobs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)

    def item(name: str) -> dict[str, object]:
        digest = hashlib.sha256(blobs[name]).hexdigest()
        return {"sha256": ("0" * 64 if corrupt else digest), "size": len(blobs[name])}

    text = json.dumps({"entries": [
        {"name": "demo", "what": "a file", "location": "demo/one.bin", "url": url + "one.bin", **item("one.bin")},
        {"name": "family/pack", "what": "a folder", "location": "family/pack", "base_url": url + "pack/",
         "files": {"a.bin": item("pack/a.bin"), "b.json": item("pack/b.json")}},
    ]})
    monkeypatch.setattr(catalogue, "entries", lambda: catalogue.parse(text))


def leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob(".*")] if cache.exists() else []


def test_pull_downloads_verifies_and_installs(dirs: dict[str, Path], served: tuple[Path, str],
                                              monkeypatch: pytest.MonkeyPatch, vpipe: Callable[..., Result]) -> None:
    root, url = served
    fake_catalogue(monkeypatch, root, url)
    result = vpipe("models", "pull", "pack")  # the short name works
    assert result.exit_code == 0, result.output
    assert "family/pack: 2 files downloaded and verified" in result.output
    assert (dirs["cache"] / "family/pack/a.bin").read_bytes() == (root / "pack/a.bin").read_bytes()
    assert (dirs["cache"] / "family/pack/b.json").is_file()
    result = vpipe("models", "pull", "demo")
    assert result.exit_code == 0 and (dirs["cache"] / "demo/one.bin").read_bytes() == (root / "one.bin").read_bytes()
    assert leftovers(dirs["cache"]) == []
    again = vpipe("models", "pull", "demo")
    assert again.exit_code == 0 and "already present and verified" in again.output
    (dirs["cache"] / "family/pack/a.bin").write_bytes(b"damaged")  # a damaged copy is downloaded again
    assert "2 files downloaded" in vpipe("models", "pull", "family/pack").output
    assert (dirs["cache"] / "family/pack/a.bin").read_bytes() == (root / "pack/a.bin").read_bytes()
    listed = vpipe("models", "list").output
    assert "family/pack" in listed and str(dirs["cache"] / "family/pack") in listed


def test_pull_refuses_a_download_with_the_wrong_checksum(dirs: dict[str, Path], served: tuple[Path, str],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        vpipe: Callable[..., Result]) -> None:
    root, url = served
    fake_catalogue(monkeypatch, root, url, corrupt=True)
    one_line(vpipe("models", "pull", "family/pack"), 1, "does not match its published sha256", "nothing was installed",
             str(dirs["cache"] / "family/pack"))
    one_line(vpipe("models", "pull", "demo"), 1, "does not match")
    assert not (dirs["cache"] / "family/pack").exists() and not (dirs["cache"] / "demo/one.bin").exists()
    assert leftovers(dirs["cache"]) == []


def test_pull_offline_says_what_to_place_where(dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               vpipe: Callable[..., Result]) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused, as offline
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake_catalogue(monkeypatch, tmp_path, f"http://127.0.0.1:{port}/")
    line = one_line(vpipe("models", "pull", "family/pack"), 1, "cannot download family/pack",
                    f"place the folder family/pack (its 2 files from http://127.0.0.1:{port}/pack/)",
                    f"at {dirs['cache'] / 'family/pack'}", "vpipe models import")
    assert "refused" in line.lower()
    one_line(vpipe("models", "pull", "demo"), 1, f"place http://127.0.0.1:{port}/one.bin at {dirs['cache'] / 'demo/one.bin'}")
    assert leftovers(dirs["cache"]) == []


def test_pull_http_error_and_unknown_name(dirs: dict[str, Path], served: tuple[Path, str],
                                          monkeypatch: pytest.MonkeyPatch, vpipe: Callable[..., Result]) -> None:
    root, url = served
    fake_catalogue(monkeypatch, root, url)
    (root / "one.bin").unlink()
    one_line(vpipe("models", "pull", "demo"), 1, "HTTP 404")
    one_line(vpipe("models", "pull", "nothing-like-it"), 2, "unknown model 'nothing-like-it'")


# ---------------------------------------------------------------- import


def test_import_recognises_known_models_by_checksum(dirs: dict[str, Path], tmp_path: Path,
                                                    vpipe: Callable[..., Result]) -> None:
    wave = assets_or_skip("models/lengstrom_fst/wave")
    copy = tmp_path / "downloads" / "some folder"
    shutil.copytree(wave, copy)
    result = vpipe("models", "import", str(copy))
    assert result.exit_code == 0, result.output
    assert "lengstrom_fst/wave: 49 files imported" in result.output  # not scream: same names, other bytes
    assert lookup.find("lengstrom_fst/wave") == dirs["cache"] / "lengstrom_fst/wave"
    h5 = assets_or_skip("models/squeezenet/squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert vpipe("models", "import", str(h5)).exit_code == 0
    assert lookup.verified(lookup.FEATURE_NETS["squeezenet"]) == dirs["cache"] / lookup.FEATURE_NETS["squeezenet"]
    assert leftovers(dirs["cache"]) == []


def test_import_one_file_of_a_folder_model(dirs: dict[str, Path], vpipe: Callable[..., Result]) -> None:
    magenta = assets_or_skip("models/magenta_tflite")
    first = vpipe("models", "import", str(magenta / "style_predict_quantized_256.tflite"))
    assert first.exit_code == 0, first.output
    assert "magenta_tflite is incomplete: 1 of 3 files" in first.output
    second = vpipe("models", "import", str(magenta / "style_transfer_f16_384.tflite"), "--name", "magenta_tflite")
    assert second.exit_code == 0 and "2 of 3 files" in second.output  # the first file is kept
    assert sorted(p.name for p in (dirs["cache"] / "magenta_tflite").iterdir()) == [
        "style_predict_quantized_256.tflite", "style_transfer_f16_384.tflite"]


def test_import_refuses_a_damaged_copy_of_a_known_model(dirs: dict[str, Path], tmp_path: Path,
                                                        vpipe: Callable[..., Result]) -> None:
    h5 = assets_or_skip("models/squeezenet/squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5")
    damaged = tmp_path / "squeeze.h5"
    data = bytearray(h5.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    one_line(vpipe("models", "import", str(damaged), "--name", "squeezenet"), 1, "is not the published squeezenet",
             "sha256", "nothing was imported")
    folder = tmp_path / "wave"
    shutil.copytree(assets_or_skip("models/lengstrom_fst/wave"), folder)
    (folder / "Variable_7").write_bytes(b"\0" * (folder / "Variable_7").stat().st_size)
    one_line(vpipe("models", "import", str(folder), "--name", "wave"), 1, "not the published lengstrom_fst/wave",
             "Variable_7")
    one_line(vpipe("models", "import", str(folder)), 2, "matches no model in the catalogue", "--name")
    assert not dirs["cache"].exists() or not any(dirs["cache"].rglob("*.h5"))
    assert not (dirs["cache"] / "lengstrom_fst").exists()


def test_import_a_model_of_your_own(dirs: dict[str, Path], tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    own = tmp_path / "mine"
    own.mkdir()
    (own / "manifest.json").write_text("{}")
    (own / "Variable").write_bytes(b"\0" * 16)
    one_line(vpipe("models", "import", str(own)), 2, "matches no model", "--name NAME")
    result = vpipe("models", "import", str(own), "--name", "my_models/candy")
    assert result.exit_code == 0 and "without a checksum check" in result.output and "2 files imported" in result.output
    assert (dirs["cache"] / "my_models/candy/Variable").read_bytes() == b"\0" * 16
    one_line(vpipe("models", "import", str(own), "--name", "my_models/candy"), 2, "already exists", "--force")
    (own / "Variable").write_bytes(b"\1" * 16)
    assert vpipe("models", "import", str(own), "--name", "my_models/candy", "--force").exit_code == 0
    assert (dirs["cache"] / "my_models/candy/Variable").read_bytes() == b"\1" * 16
    one_line(vpipe("models", "import", str(own), "--name", "../escape"), 2, "relative name")
    one_line(vpipe("models", "import", str(tmp_path / "absent")), 2, "no such file or folder")
    assert leftovers(dirs["cache"]) == []


def test_an_unwritable_cache_is_one_line(dirs: dict[str, Path], tmp_path: Path, served: tuple[Path, str],
                                         monkeypatch: pytest.MonkeyPatch, vpipe: Callable[..., Result]) -> None:
    root, url = served
    fake_catalogue(monkeypatch, root, url)
    blocker = tmp_path / "not a folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    one_line(vpipe("models", "pull", "demo"), 1, "cannot write to the model cache", str(blocker))
    one_line(vpipe("models", "import", str(root / "one.bin")), 1, "cannot write to the model cache")


# ---------------------------------------------------------------- models on demand


def test_a_missing_catalogue_model_is_fetched_on_first_use(dirs: dict[str, Path], served: tuple[Path, str],
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    root, url = served
    fake_catalogue(monkeypatch, root, url)
    monkeypatch.delenv("VPIPE_OFFLINE")
    path = store.obtain("family/pack")
    assert path == dirs["cache"] / "family/pack" and (path / "a.bin").read_bytes() == (root / "pack/a.bin").read_bytes()
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("fetching family/pack (0.0 MB), licence: unknown")
    assert [line.split(":")[0].strip() for line in err[1:]] == ["a.bin", "b.json"]  # one line per file off a TTY
    assert "6000 bytes at" in err[1]
    (root / "pack/a.bin").unlink()  # a second use needs no network
    assert store.obtain("family/pack") == path and capsys.readouterr().err == ""
    assert leftovers(dirs["cache"]) == []


def test_on_demand_refuses_a_bad_checksum_and_offline_says_where(dirs: dict[str, Path], served: tuple[Path, str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root, url = served
    fake_catalogue(monkeypatch, root, url, corrupt=True)
    monkeypatch.delenv("VPIPE_OFFLINE")
    with pytest.raises(ModelError, match="does not match its published sha256"):
        store.obtain("demo/one.bin")
    assert not (dirs["cache"] / "demo/one.bin").exists() and leftovers(dirs["cache"]) == []
    monkeypatch.setenv("VPIPE_OFFLINE", "1")
    with pytest.raises(ModelError, match="not found: place it at"):
        store.obtain("demo/one.bin")
    with pytest.raises(ModelError, match="not found"):  # not a catalogue model: never fetched
        store.obtain("nobody/knows")


def test_a_run_fetches_the_model_its_style_needs(dirs: dict[str, Path], served: tuple[Path, str], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, vpipe: Callable[..., Result]) -> None:
    root, url = served
    net = write_model(root / "net", channels=(8, 16, 32))
    files = {p.name: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "size": p.stat().st_size}
             for p in net.iterdir()}
    text = json.dumps({"entries": [{"name": "family/net", "what": "a fast net", "location": "family/net",
                                    "base_url": url + "net/", "files": files, "licence": "CC0",
                                    "commercial_use": True}]})
    monkeypatch.setattr(catalogue, "entries", lambda: catalogue.parse(text))
    styles_dir = tmp_path / "styles"
    (styles_dir / "mine").mkdir(parents=True)
    (styles_dir / "mine" / "style.toml").write_text('engine = "fast"\nmodel = "family/net"\n')
    monkeypatch.setenv("VPIPE_STYLES_DIR", str(styles_dir))
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    assert vpipe("split", str(clip), "--job", "j").exit_code == 0
    offline = vpipe("stylize", "--job", "j", "--style", "mine")  # VPIPE_OFFLINE=1 from the fixture
    assert offline.exit_code != 0 and "not found: place it at" in offline.output
    assert not (dirs["cache"] / "family").exists()
    monkeypatch.delenv("VPIPE_OFFLINE")
    styled = vpipe("stylize", "--job", "j", "--style", "mine", "--workers", "1")
    assert styled.exit_code == 0, styled.output
    assert "6 frames styled, 0 failed" in styled.output and (dirs["cache"] / "family/net/manifest.json").is_file()
    flag = vpipe("--offline", "models", "list")  # the flag works like the variable
    assert flag.exit_code == 0


def test_on_a_terminal_the_download_shows_a_bar_with_size_and_rate(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    entry = catalogue.parse(json.dumps({"entries": [{"name": "m", "what": "", "location": "m/w.bin",
                                                      "url": "https://x/w.bin", "sha256": "0" * 64,
                                                      "size": 2_000_000}]}))["m"]
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    meter = store._Meter(entry, entry.files[0])
    meter(1_000_000)
    meter(2_000_000)
    err = capsys.readouterr().err
    assert err.startswith("\r  w.bin: 1.0/2.0 MB at ") and "\r  w.bin: 2.0/2.0 MB at " in err and err.endswith("MB/s\n")
