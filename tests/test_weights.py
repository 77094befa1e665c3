"""Weight catalogue, search path, cache location, verified resumable downloads, safe loading.

Downloads run against a local HTTP server on 127.0.0.1 (``http.server`` in a
thread, with ``Range`` support) serving bytes the tests generate. The official
files in ../shared/weights are checked against the catalogue when present.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from weight_server import PAYLOAD, Server

import specxform
from specxform import weights
from specxform.errors import CheckpointError, UnknownNameError, WeightsError
from specxform.weights import WeightFile

ROOT = Path(__file__).resolve().parents[1]
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------ catalogue


@pytest.fixture
def no_search_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """``./dev`` points the search path at ../shared/weights: these tests need none."""
    monkeypatch.delenv(weights.SEARCH_PATH_ENV, raising=False)


def test_catalogue_holds_the_official_files() -> None:
    resnet, cnn = weights.get("pann-resnet38"), weights.get("pann-cnn14")
    assert resnet.filename == "ResNet38_mAP=0.434.pth"
    assert (
        resnet.url == "https://zenodo.org/record/3987831/files/ResNet38_mAP%3D0.434.pth?download=1"
    )
    assert (resnet.size, resnet.md5) == (299_615_982, "bf12f36aaabac4e0855e22d3c3239c1b")
    assert cnn.filename == "Cnn14_mAP=0.431.pth"
    assert cnn.url == "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth?download=1"
    assert (cnn.size, cnn.md5) == (327_428_481, "541141fa2ee191a88f24a3219fff024e")
    yamnet = weights.get("yamnet")
    assert yamnet.url == "https://storage.googleapis.com/audioset/yamnet.h5"
    # Google publishes no size or checksum for yamnet.h5: verify() can only parse it.
    assert (yamnet.size, yamnet.md5, yamnet.sha256) == (None, None, None)
    class_map = weights.get("yamnet-class-map")
    assert class_map.filename == "yamnet_class_map.csv"
    assert class_map.url.endswith("research/audioset/yamnet/yamnet_class_map.csv")
    assert (class_map.size, class_map.md5) == (14_096, "d0f051d19d88b16f07f7ecd88b8c9cf9")
    labels = weights.get("audioset-class-labels")
    assert (labels.size, labels.md5) == (14_675, "68c0b5c199d6cc789852b144cc3ab500")
    hub, spectra = weights.get("yamnet-tflite-hub"), weights.get("yamnet-tflite-spectra")
    assert hub.filename == "lite-model_yamnet_classification_tflite_1.tflite"
    assert hub.url == ("https://tfhub.dev/google/lite-model/yamnet/classification/tflite/1"
                       "?lite-format=tflite")
    assert (hub.size, hub.md5) == (4_126_810, "e962c7ac840c6af635959491bb65959a")
    assert spectra.filename == "yamnet_spectra_in.tflite"
    assert spectra.url == ("https://raw.githubusercontent.com/google-coral/coralmicro/main/"
                           "models/yamnet_spectra_in.tflite")
    assert (spectra.size, spectra.md5) == (4_047_424, "d933444d0e8034eb1a97ab5a02f04533")


def test_catalogue_is_the_registrys(monkeypatch: pytest.MonkeyPatch) -> None:
    """get() and catalogue() read the process registry: a plugin's file is found, the core
    holds none, and the removed module constant says where the files went."""
    from specxform import plugins

    extra = WeightFile(name="extra-file", filename="extra.bin", url="http://x/extra.bin")

    class Extra:
        @specxform.hookimpl
        def specxform_add_teachers(self, registry: specxform.Registry) -> None:
            registry.add_weight_file(extra)

    loaded = plugins.load_plugins(extra=[("extra", Extra())], autoload=False)
    monkeypatch.setattr(plugins, "loaded", lambda: loaded)
    assert weights.get("extra-file") is extra
    assert weights.catalogue() == loaded.registry.weight_files()
    assert extra in weights.catalogue() and weights.get("pann-cnn14").size == 327_428_481
    with pytest.raises(AttributeError, match="add_weight_file"):
        weights.CATALOGUE  # noqa: B018
    source = (ROOT / "specxform" / "weights.py").read_text(encoding="utf-8")
    for weight in loaded.registry.weight_files():
        assert weight.filename not in source and weight.url not in source, weight.name


def _readme_table() -> dict[str, tuple[int, str]]:
    """``file -> (bytes, md5)`` from the table of ../shared/weights/README.md."""
    text = (SHARED_WEIGHTS / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([^|\s]+) \| ([\d,]+) \| ([0-9a-f]{32}) \|", text, re.M)
    return {name: (int(size.replace(",", "")), md5) for name, size, md5 in rows}


def test_catalogue_matches_the_shared_official_files() -> None:
    """Every official file in ../shared/weights that a teacher can load is catalogued with
    the README's size and MD5, and the copy there verifies (full MD5, 16 MB in all)."""
    if not (SHARED_WEIGHTS / "README.md").is_file():
        pytest.skip(f"no official weight files at {SHARED_WEIGHTS} (a user's machine)")
    table = _readme_table()
    assert len(table) >= 6, "the README table did not parse"
    by_file = {w.filename: w for w in weights.catalogue()}
    # mn04_as.onnx is a third party's export used only as a test reference.
    expected = set(table) - {"mn04_as.onnx"}
    if "efficientat-mn04" not in {w.name for w in weights.catalogue()}:
        expected -= {"mn04_as_mAP_432.pt"}  # its plugin registers it
    assert expected <= set(by_file), f"not catalogued: {sorted(expected - set(by_file))}"
    for filename in sorted(expected):
        weight = by_file[filename]
        assert (weight.size, weight.md5) == table[filename], filename
        assert weights.verify(weight, SHARED_WEIGHTS / filename) == SHARED_WEIGHTS / filename


def test_unknown_catalogue_name_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="pann-resnet38") as info:
        weights.get("pann-resnet-38")
    assert isinstance(info.value, KeyError)


def test_weight_file_validates_digests_and_size() -> None:
    with pytest.raises(WeightsError, match="md5"):
        WeightFile(name="x", filename="x", url="http://x", md5="XYZ")
    with pytest.raises(WeightsError, match="size"):
        WeightFile(name="x", filename="x", url="http://x", size=0)
    with pytest.raises(WeightsError, match="bare file name"):
        WeightFile(name="x", filename="sub/x.pt", url="http://x")  # would escape the folders


def test_cache_dir_follows_specxform_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                         no_search_path: None) -> None:
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path))
    monkeypatch.delenv("SPECXFORM_WEIGHTS_PATH", raising=False)  # only the cache is searched
    assert weights.weights_dir() == tmp_path / "weights"
    assert weights.path(weights.get("yamnet")) == tmp_path / "weights" / "yamnet.h5"
    assert weights.cache_path(weights.get("yamnet")) == tmp_path / "weights" / "yamnet.h5"
    monkeypatch.delenv("SPECXFORM_HOME")
    assert weights.home().name == "specxform"


# -------------------------------------------------------------------------------- fetch


def test_fetch_downloads_verifies_and_caches(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    target = weights.fetch(wf, root=tmp_path)
    assert target == tmp_path / "model.pth"
    assert target.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]  # no .part left
    weights.fetch(wf, root=tmp_path)
    assert len(server.requests) == 1  # the verified cached file is reused


def test_fetch_reports_progress_in_bytes(server: Server, tmp_path: Path) -> None:
    """The download reports to the caller's callback (or to the ambient one the CLI sets),
    from the first byte to the file's size; the library draws nothing itself."""
    from specxform.progress import ProgressEvent

    wf = server.weight("model.pth")
    seen: list[ProgressEvent] = []
    assert weights.fetch(wf, root=tmp_path, progress=seen.append).read_bytes() == PAYLOAD
    assert seen[0].done == 0 and seen[-1].done == len(PAYLOAD) and seen[-1].finished
    assert all(e.task == "downloading model.pth" for e in seen)
    ambient: list[ProgressEvent] = []
    with weights.downloads_report_to(ambient.append):
        weights.fetch(server.weight("other.pth"), root=tmp_path)
    assert ambient and ambient[-1].finished


def test_corrupt_download_raises_and_leaves_nothing(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    server.files["/model.pth"] = bytes(len(PAYLOAD))  # right size, wrong content
    with pytest.raises(WeightsError, match=f"md5 .* expected {wf.md5}"):
        weights.fetch(wf, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_resumes_with_range(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    server.cut_after["/model.pth"] = [12_345]  # the first response stops early
    target = weights.fetch(wf, root=tmp_path)
    assert target.read_bytes() == PAYLOAD
    assert server.requests == [("/model.pth", None), ("/model.pth", "bytes=12345-")]


def test_partial_file_from_an_earlier_run_is_resumed(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    (tmp_path / "model.pth.part").write_bytes(PAYLOAD[:20_000])
    assert weights.fetch(wf, root=tmp_path).read_bytes() == PAYLOAD
    assert server.requests == [("/model.pth", "bytes=20000-")]


def test_server_ignoring_range_restarts_cleanly(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    server.ignore_range = True
    (tmp_path / "model.pth.part").write_bytes(b"stale" * 100)
    assert weights.fetch(wf, root=tmp_path).read_bytes() == PAYLOAD


def test_repeated_interruptions_keep_the_part_for_later(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    server.cut_after["/model.pth"] = [100, 100]
    with pytest.raises(WeightsError, match="interrupted 2 times"):
        weights.fetch(wf, root=tmp_path, attempts=2)
    assert (tmp_path / "model.pth.part").stat().st_size == 200
    assert not (tmp_path / "model.pth").exists()
    assert weights.fetch(wf, root=tmp_path).read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/model.pth", "bytes=200-")


def test_corrupt_cached_file_is_replaced(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    (tmp_path / "model.pth").write_bytes(b"x" * len(PAYLOAD))
    assert weights.fetch(wf, root=tmp_path).read_bytes() == PAYLOAD


def test_offline_error_says_where_to_put_the_file(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/ResNet38.pth"  # nothing listens: refused
    wf = WeightFile(name="r", filename="ResNet38.pth", url=url, size=10)
    with pytest.raises(WeightsError) as info:
        weights.fetch(wf, root=tmp_path)
    message = str(info.value)
    for needed in ("ResNet38.pth", url, str(tmp_path / "ResNet38.pth"), "`weights=PATH`"):
        assert needed in message
    assert "SPECXFORM_HOME" in message


def test_http_error_is_reported(server: Server, tmp_path: Path) -> None:
    wf = WeightFile(name="gone", filename="gone.pth", url=f"{server.base}/gone.pth")
    with pytest.raises(WeightsError, match="HTTP 404"):
        weights.fetch(wf, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ resolve and verify


def test_resolve_prefers_explicit_then_cache(server: Server, tmp_path: Path,
                                             no_search_path: None) -> None:
    wf = server.weight("model.pth")
    mine = tmp_path / "mine.pth"
    mine.write_bytes(b"fine-tuned")
    assert weights.resolve(wf, mine, root=tmp_path / "cache") == mine
    with pytest.raises(WeightsError, match="`weights="):
        weights.resolve(wf, tmp_path / "missing.pth", root=tmp_path / "cache")
    with pytest.raises(WeightsError, match="`weights=PATH`"):
        weights.resolve(wf, root=tmp_path / "cache", download=False)
    cached = weights.resolve(wf, root=tmp_path / "cache")
    assert cached.read_bytes() == PAYLOAD
    assert weights.resolve(wf, root=tmp_path / "cache") == cached
    assert len(server.requests) == 1


def test_verify_checks_size_and_digest(tmp_path: Path) -> None:
    file = tmp_path / "w.bin"
    file.write_bytes(PAYLOAD)
    wf = WeightFile(
        name="w",
        filename="w.bin",
        url="http://x",
        size=len(PAYLOAD),
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
    )
    assert weights.verify(wf, file) == file
    with pytest.raises(WeightsError, match="bytes, expected"):
        weights.verify(attrs_evolve(wf, size=len(PAYLOAD) + 1), file)
    with pytest.raises(WeightsError, match="sha256"):
        weights.verify(attrs_evolve(wf, sha256="0" * 64), file)
    with pytest.raises(WeightsError, match="not found"):
        weights.verify(wf, tmp_path / "nope.bin")


def attrs_evolve(wf: WeightFile, **changes: object) -> WeightFile:
    import attrs

    return attrs.evolve(wf, **changes)


def test_verify_without_checksum_parses_the_file(tmp_path: Path) -> None:
    wf = WeightFile(name="y", filename="yamnet.h5", url="http://x")
    good = tmp_path / "yamnet.h5"
    with h5py.File(good, "w") as h5:
        h5["layer1/conv/layer1/conv/kernel:0"] = np.zeros((3, 3, 1, 32), np.float32)
    assert weights.verify(wf, good) == good
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"<html>not found</html>")
    with pytest.raises(WeightsError, match="does not parse"):
        weights.verify(wf, bad)
    csv_wf = WeightFile(name="c", filename="map.csv", url="http://x")
    csv_file = tmp_path / "map.csv"
    csv_file.write_text("index,mid,display_name\n0,/m/09x0r,Speech\n")
    assert weights.verify(csv_wf, csv_file) == csv_file


def test_fetch_of_file_without_checksum_checks_it_parses(server: Server, tmp_path: Path) -> None:
    wf = server.weight("yamnet.h5", b"<html>quota exceeded</html>", size=None, md5=None)
    with pytest.raises(WeightsError, match="does not parse"):
        weights.fetch(wf, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------------- search path


@pytest.fixture
def folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two search-path folders (``first`` before ``second``) and an empty cache."""
    first, second, cache = tmp_path / "first", tmp_path / "second", tmp_path / "cache"
    for folder in (first, second):
        folder.mkdir()
    monkeypatch.setenv(weights.SEARCH_PATH_ENV,
                       os.pathsep.join([str(first), "", str(second)]))
    return first, second, cache


def test_search_path_splits_on_pathsep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(weights.SEARCH_PATH_ENV, os.pathsep.join(["/a", "", " ", "~/w"]))
    assert weights.search_path() == [Path("/a"), Path("~/w").expanduser()]
    monkeypatch.delenv(weights.SEARCH_PATH_ENV)
    assert weights.search_path() == []


def test_resolve_uses_the_search_path_before_the_cache(
    server: Server, folders: tuple[Path, Path, Path]
) -> None:
    first, second, cache = folders
    wf = server.weight("model.pth")
    (second / "model.pth").write_bytes(PAYLOAD)
    cache.mkdir()
    (cache / "model.pth").write_bytes(PAYLOAD)
    assert weights.resolve(wf, root=cache) == second / "model.pth"
    assert weights.find(wf, cache) == weights.Location(second / "model.pth", "search path", True)
    (first / "model.pth").write_bytes(PAYLOAD)  # the earlier folder wins
    assert weights.resolve(wf, root=cache, download=False) == first / "model.pth"
    assert weights.path(wf, cache) == first / "model.pth"
    assert weights.cache_path(wf, cache) == cache / "model.pth"
    assert server.requests == []  # nothing was downloaded


def test_a_bad_copy_on_the_search_path_is_refused(
    server: Server, folders: tuple[Path, Path, Path]
) -> None:
    first, _, cache = folders
    wf = server.weight("model.pth")
    (first / "model.pth").write_bytes(bytes(len(PAYLOAD)))  # right size, wrong content
    assert weights.find(wf, cache) == weights.Location(first / "model.pth", "search path", True)
    with pytest.raises(WeightsError) as info:
        weights.resolve(wf, root=cache)
    message = str(info.value)
    assert f"md5 {hashlib.md5(bytes(len(PAYLOAD))).hexdigest()}" in message
    assert weights.SEARCH_PATH_ENV in message and str(first) in message
    assert server.requests == []  # not replaced behind the user's back
    (first / "model.pth").write_bytes(b"short")
    assert weights.find(wf, cache) == weights.Location(first / "model.pth", "search path", False)


def test_without_a_copy_resolve_downloads_into_the_cache(
    server: Server, folders: tuple[Path, Path, Path]
) -> None:
    first, second, cache = folders
    wf = server.weight("model.pth")
    assert weights.find(wf, cache) is None
    with pytest.raises(WeightsError, match=weights.SEARCH_PATH_ENV):  # offline says where to put it
        weights.resolve(wf, root=cache, download=False)
    assert weights.resolve(wf, root=cache) == cache / "model.pth"
    assert not (first / "model.pth").exists() and not (second / "model.pth").exists()
    assert weights.find(wf, cache) == weights.Location(cache / "model.pth", "cache", True)


def test_verify_once_reads_a_file_once_per_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[Path] = []
    digests = weights._digests

    def counting(file: Path) -> dict[str, str]:
        calls.append(file)
        return digests(file)

    monkeypatch.setattr(weights, "_digests", counting)
    file = tmp_path / "w.bin"
    file.write_bytes(PAYLOAD)
    wf = WeightFile(name="w", filename="w.bin", url="http://x", size=len(PAYLOAD),
                    md5=hashlib.md5(PAYLOAD).hexdigest())
    for _ in range(3):
        assert weights.verify_once(wf, file) == file
    assert len(calls) == 1
    # Another description of the same bytes is checked on its own.
    with pytest.raises(WeightsError, match="md5"):
        weights.verify_once(attrs_evolve(wf, md5="0" * 32), file)
    # A new version of the file (same size, new content and time) is read again.
    file.write_bytes(bytes(len(PAYLOAD)))
    os.utime(file, ns=(1, 1))
    with pytest.raises(WeightsError, match="md5"):
        weights.verify_once(wf, file)
    with pytest.raises(WeightsError, match="not found"):
        weights.verify_once(wf, tmp_path / "gone.bin")


def test_resolve_verifies_a_cached_file_once(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_search_path: None
) -> None:
    wf = server.weight("model.pth")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "model.pth").write_bytes(bytes(len(PAYLOAD)))  # corrupt, right size
    with pytest.raises(WeightsError, match="md5"):
        weights.resolve(wf, root=cache)  # the digest is checked, not only the size
    (cache / "model.pth").write_bytes(PAYLOAD)
    calls: list[Path] = []
    monkeypatch.setattr(weights, "_digests", lambda f: calls.append(f) or {"md5": wf.md5})
    for _ in range(2):
        assert weights.resolve(wf, root=cache) == cache / "model.pth"
    assert len(calls) == 1


# ------------------------------------------------------------ ./dev and CI set the path


def _fake_venv(tmp_path: Path, repo: Path) -> Path:
    """A venv whose python, ruff and mypy only print the search path, marked as set up."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for tool in ("python", "ruff", "mypy"):
        script = venv / "bin" / tool
        script.write_text(f'#!/bin/sh\necho "{tool}: ${{{weights.SEARCH_PATH_ENV}-unset}}"\n')
        script.chmod(0o755)
    stamp = hashlib.sha256((repo / "pyproject.toml").read_bytes() + (repo / "dev").read_bytes())
    (venv / ".specxform-installed").write_text(stamp.hexdigest() + "\n")
    return venv


def _run_script(script: Path, venv: Path, *args: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != weights.SEARCH_PATH_ENV}
    environ.update(SPECXFORM_VENV=str(venv), **env)
    out = subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                         env=environ, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_dev_and_ci_point_the_search_path_at_shared_weights(tmp_path: Path) -> None:
    if not SHARED_WEIGHTS.is_dir():
        pytest.skip(f"{SHARED_WEIGHTS} is absent: nothing for ./dev to point at")
    venv = _fake_venv(tmp_path, ROOT)
    def pointed(output: str) -> Path:
        assert output.startswith("python: "), output
        return Path(output.removeprefix("python: ")).resolve()  # ../shared may be a link

    assert pointed(_run_script(ROOT / "dev", venv, "bench").strip()) == SHARED_WEIGHTS.resolve()
    assert pointed(_run_script(ROOT / ".ci" / "run", venv).splitlines()[-1]) == (
        SHARED_WEIGHTS.resolve())
    # A value the user set is kept.
    mine = _run_script(ROOT / "dev", venv, "bench", SPECXFORM_WEIGHTS_PATH="/my/weights")
    assert mine.strip() == "python: /my/weights"


def test_dev_leaves_the_search_path_unset_without_shared_weights(tmp_path: Path) -> None:
    repo = tmp_path / "checkout" / "repo"  # no ../shared/weights next to it
    repo.mkdir(parents=True)
    for name in ("dev", "pyproject.toml"):
        shutil.copy2(ROOT / name, repo / name)
    venv = _fake_venv(tmp_path, repo)
    assert _run_script(repo / "dev", venv, "bench").strip() == "python: unset"


# --------------------------------------------------------------------------------- load


class PickledCode:
    """Stands for arbitrary code a pickle would run on load."""


def test_load_torch_file_reads_plain_checkpoints(tmp_path: Path) -> None:
    file = tmp_path / "ok.pth"
    torch.save({"model": {"w": torch.ones(2)}, "iteration": 3}, file)
    loaded = weights.load_torch_file(file)
    assert loaded["iteration"] == 3
    assert torch.equal(loaded["model"]["w"], torch.ones(2))


def test_load_torch_file_refuses_pickled_code(tmp_path: Path) -> None:
    file = tmp_path / "evil.pth"
    torch.save({"model": {}, "extra": PickledCode()}, file)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        weights.load_torch_file(file)


def test_load_torch_file_reports_garbage_and_missing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(CheckpointError, match=r"junk\.pth"):
        weights.load_torch_file(junk)
    with pytest.raises(WeightsError, match="does not exist"):
        weights.load_torch_file(tmp_path / "missing.pth")
