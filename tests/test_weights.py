"""Weight catalogue, cache location, verified resumable downloads and safe loading.

Downloads run against a local HTTP server on 127.0.0.1 (``http.server`` in a
thread, with ``Range`` support) serving bytes the tests generate.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from weight_server import PAYLOAD, Server

from specxform import weights
from specxform.errors import CheckpointError, UnknownNameError, WeightsError
from specxform.weights import WeightFile


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------ catalogue


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


def test_unknown_catalogue_name_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="pann-resnet38") as info:
        weights.get("pann-resnet-38")
    assert isinstance(info.value, KeyError)


def test_weight_file_validates_digests_and_size() -> None:
    with pytest.raises(WeightsError, match="md5"):
        WeightFile(name="x", filename="x", url="http://x", md5="XYZ")
    with pytest.raises(WeightsError, match="size"):
        WeightFile(name="x", filename="x", url="http://x", size=0)


def test_cache_dir_follows_specxform_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path))
    assert weights.weights_dir() == tmp_path / "weights"
    assert weights.path(weights.get("yamnet")) == tmp_path / "weights" / "yamnet.h5"
    monkeypatch.delenv("SPECXFORM_HOME")
    assert weights.home().name == "specxform"


# -------------------------------------------------------------------------------- fetch


def test_fetch_downloads_verifies_and_caches(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    target = weights.fetch(wf, root=tmp_path, progress=False)
    assert target == tmp_path / "model.pth"
    assert target.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]  # no .part left
    weights.fetch(wf, root=tmp_path, progress=False)
    assert len(server.requests) == 1  # the verified cached file is reused


def test_fetch_with_progress_bar(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    assert weights.fetch(wf, root=tmp_path, progress=True).read_bytes() == PAYLOAD


def test_corrupt_download_raises_and_leaves_nothing(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    server.files["/model.pth"] = bytes(len(PAYLOAD))  # right size, wrong content
    with pytest.raises(WeightsError, match=f"md5 .* expected {wf.md5}"):
        weights.fetch(wf, root=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_resumes_with_range(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    server.cut_after["/model.pth"] = [12_345]  # the first response stops early
    target = weights.fetch(wf, root=tmp_path, progress=False)
    assert target.read_bytes() == PAYLOAD
    assert server.requests == [("/model.pth", None), ("/model.pth", "bytes=12345-")]


def test_partial_file_from_an_earlier_run_is_resumed(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    (tmp_path / "model.pth.part").write_bytes(PAYLOAD[:20_000])
    assert weights.fetch(wf, root=tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests == [("/model.pth", "bytes=20000-")]


def test_server_ignoring_range_restarts_cleanly(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    server.ignore_range = True
    (tmp_path / "model.pth.part").write_bytes(b"stale" * 100)
    assert weights.fetch(wf, root=tmp_path, progress=False).read_bytes() == PAYLOAD


def test_repeated_interruptions_keep_the_part_for_later(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    server.cut_after["/model.pth"] = [100, 100]
    with pytest.raises(WeightsError, match="interrupted 2 times"):
        weights.fetch(wf, root=tmp_path, progress=False, attempts=2)
    assert (tmp_path / "model.pth.part").stat().st_size == 200
    assert not (tmp_path / "model.pth").exists()
    assert weights.fetch(wf, root=tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/model.pth", "bytes=200-")


def test_corrupt_cached_file_is_replaced(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    (tmp_path / "model.pth").write_bytes(b"x" * len(PAYLOAD))
    assert weights.fetch(wf, root=tmp_path, progress=False).read_bytes() == PAYLOAD


def test_offline_error_says_where_to_put_the_file(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/ResNet38.pth"  # nothing listens: refused
    wf = WeightFile(name="r", filename="ResNet38.pth", url=url, size=10)
    with pytest.raises(WeightsError) as info:
        weights.fetch(wf, root=tmp_path, progress=False)
    message = str(info.value)
    for needed in ("ResNet38.pth", url, str(tmp_path / "ResNet38.pth"), "--weights PATH"):
        assert needed in message
    assert "SPECXFORM_HOME" in message


def test_http_error_is_reported(server: Server, tmp_path: Path) -> None:
    wf = WeightFile(name="gone", filename="gone.pth", url=f"{server.base}/gone.pth")
    with pytest.raises(WeightsError, match="HTTP 404"):
        weights.fetch(wf, root=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ resolve and verify


def test_resolve_prefers_explicit_then_cache(server: Server, tmp_path: Path) -> None:
    wf = server.weight("model.pth")
    mine = tmp_path / "mine.pth"
    mine.write_bytes(b"fine-tuned")
    assert weights.resolve(wf, mine, root=tmp_path / "cache") == mine
    with pytest.raises(WeightsError, match="--weights"):
        weights.resolve(wf, tmp_path / "missing.pth", root=tmp_path / "cache")
    with pytest.raises(WeightsError, match="--weights PATH"):
        weights.resolve(wf, root=tmp_path / "cache", download=False)
    cached = weights.resolve(wf, root=tmp_path / "cache", progress=False)
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
        weights.fetch(wf, root=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


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
