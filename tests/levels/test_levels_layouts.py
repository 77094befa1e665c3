"""Level files as other tools and `specxform features` write them, and periods that do not fit.

Issue 12: item 6 (a CSV of 1 s steps read as 125 ms `cense`), item 7 (the
.h5 that `features` writes), item 21 (a CSV without its header line), item 22
(`--source` read from the file or the checkpoint) and section 5 (the
fast-to-ears layouts: HDF5 dataset `fast_125ms` and .npy, both shaped
(chunks, frames, 29)).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from levels_helpers import level_registry, make_checkpoint, sensor_levels

from specxform import plugins
from specxform.cli.main import main
from specxform.errors import InputError
from specxform.io import write_array, write_arrays
from specxform.levels.readers import open_levels
from specxform.levels.windows import WindowCutter
from specxform.representations.specs import Representation

CENTRES = [1000 * 10 ** ((i - 17) / 10) for i in range(29)]
FAST_TO_EARS = Path(__file__).resolve().parents[3] / "shared" / "data" / "fast-to-ears-levels"


@pytest.fixture(scope="module")
def cense() -> Representation:
    return level_registry().representation("cense")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "levels-checkpoint"
    best = folder / "run" / "best.pt"
    return best if best.is_file() else make_checkpoint(folder)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "get_registry", level_registry)


@pytest.fixture
def fast_to_ears() -> Path:
    if not (FAST_TO_EARS / "test.h5").is_file():
        pytest.skip(f"fast-to-ears samples not found at {FAST_TO_EARS}")
    return FAST_TO_EARS


def classify(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, dict[str, Any], str]:
    status = main(["classify", *map(str, argv), "--json"])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if status == 0 else {}), err


def cut_all(path: Path, source: Representation, frames_per_window: int = 8, **kw: Any
            ) -> WindowCutter:
    reader = open_levels(path, source, **kw)
    cutter = WindowCutter(reader, frames_per_window)
    for block in reader.blocks():
        list(cutter.feed(block))
    list(cutter.finish())
    return cutter


def csv_text(levels: np.ndarray, step_s: float, header: bool = True) -> str:
    lines = ["time," + ",".join(f"{c:.4g}" for c in CENTRES)] if header else []
    lines += [f"{i * step_s:.3f}," + ",".join(f"{v:.3f}" for v in row)
              for i, row in enumerate(levels)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- item 6


def test_a_period_that_does_not_fit_the_source_is_refused(tmp_path: Path,
                                                          cense: Representation) -> None:
    path = tmp_path / "slow.csv"
    path.write_text(csv_text(sensor_levels(5), 1.0))  # 40 frames one second apart
    with pytest.raises(InputError) as info:
        cut_all(path, cense)
    message = str(info.value)
    assert "1 s" in message and "0.125 s" in message and "slow_third_octave" in message, message
    slow = level_registry().representation("slow_third_octave")
    cutter = cut_all(path, slow, frames_per_window=1)
    assert cutter.n_segments == 1 and cutter.n_gaps == 0


def test_regular_frames_with_a_few_gaps_still_fit(tmp_path: Path, cense: Representation) -> None:
    levels = sensor_levels(10)
    times = 0.125 * np.arange(len(levels))
    times[40:] += 30.0  # one outage
    times[60:] += 5.0  # and another
    lines = ["time," + ",".join(f"{c:.4g}" for c in CENTRES)]
    lines += [f"{t:.3f}," + ",".join(f"{v:.2f}" for v in row)
              for t, row in zip(times, levels, strict=True)]
    (tmp_path / "gaps.csv").write_text("\n".join(lines) + "\n")
    assert cut_all(tmp_path / "gaps.csv", cense).n_gaps == 2


# ----------------------------------------------------------------------------- item 21


def test_a_csv_without_header_is_named_as_such(tmp_path: Path, cense: Representation) -> None:
    path = tmp_path / "bare.csv"
    path.write_text(csv_text(sensor_levels(2), 0.125, header=False))
    with pytest.raises(InputError) as info:
        open_levels(path, cense)
    message = str(info.value)
    assert "no header line" in message and "line 1 holds" in message, message
    assert "is not band" not in message


# ----------------------------------------------------------------------------- item 7


def test_features_h5_of_one_recording_is_a_level_file(tmp_path: Path,
                                                      cense: Representation) -> None:
    levels = sensor_levels(3)
    write_arrays(tmp_path / "one.h5", {"rec": levels}, cense)  # as `features a.wav -o one.h5`
    reader = open_levels(tmp_path / "one.h5", cense)
    np.testing.assert_array_equal(np.concatenate([b.levels for b in reader.blocks()]), levels)


def test_features_h5_round_trip_through_classify(registry: None, checkpoint: Path,
                                                 tmp_path: Path, cense: Representation,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    wav = tmp_path / "rec.wav"
    import soundfile

    rng = np.random.default_rng(0)
    soundfile.write(wav, (0.1 * rng.standard_normal(64_000)).astype(np.float32), 32_000)
    assert main(["features", "--rep", "cense", str(wav), "-o", str(tmp_path / "rec.h5")]) == 0
    capsys.readouterr()
    status, report, err = classify(capsys, "--source", "cense", "--checkpoint", checkpoint,
                                   tmp_path / "rec.h5")
    assert status == 0, err
    assert list(report["clips"]) == ["rec"] and report["clips"]["rec"]["frames"] == 16
    # Several recordings in one file (`features a.wav b.wav -o all.h5`): each is classified.
    write_arrays(tmp_path / "all.h5", {"a": sensor_levels(2), "b/c": sensor_levels(3)}, cense)
    status, report, err = classify(capsys, "--source", "cense", "--checkpoint", checkpoint,
                                   tmp_path / "all.h5")
    assert status == 0, err
    assert {n: c["frames"] for n, c in report["clips"].items()} == {"all/a": 16, "all/b/c": 24}


# ----------------------------------------------------------------------------- section 5


def test_fast_to_ears_layouts_are_read(fast_to_ears: Path, cense: Representation) -> None:
    for name in ("test.h5", "test.npy"):
        cutter = cut_all(fast_to_ears / name, cense, frames_per_window=80)
        # Each (480-frame, 60 s) chunk is a recording of its own: windows never span two.
        assert cutter.frames == 5 * 480 and cutter.n_segments == 5 and cutter.n_gaps == 0
        assert [s.windows for s in cutter.segments] == [6] * 5


def test_fast_to_ears_files_classify_alike(registry: None, checkpoint: Path, fast_to_ears: Path,
                                           tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("test.h5", "test.npy"):
        status, report, err = classify(capsys, "--checkpoint", checkpoint,
                                       fast_to_ears / name, "--db-offset", "-90")
        assert status == 0, err
        (clip,) = report["clips"].values()
        assert clip["n_segments"] == 5 and clip["db_offset"] == -90
        assert report["source"] == "cense"  # from the checkpoint: no --source needed
    # The chunked .h5 gives what its five chunks give as five files of their own (every
    # window weighs the same, and each chunk has 6 windows of 10 s).
    with h5py.File(fast_to_ears / "test.h5") as h5:
        chunks = h5["fast_125ms"][()]
    for i, chunk in enumerate(chunks):
        np.save(tmp_path / f"chunk{i}.npy", chunk)
    common = ("--checkpoint", checkpoint, "--db-offset", "-90", "--top", "4", "--window", "10")
    _, whole, _ = classify(capsys, *common, fast_to_ears / "test.h5")
    _, parts, _ = classify(capsys, *common, tmp_path)

    def probs(top: list[dict[str, Any]]) -> np.ndarray:
        return np.array([t["probability"] for t in sorted(top, key=lambda t: t["index"])])

    mean = np.mean([probs(c["top"]) for c in parts["clips"].values()], axis=0)
    # Float32 transcoding of the same windows in other batches: 1e-6 covers the rounding.
    np.testing.assert_allclose(probs(whole["clips"]["test"]["top"]), mean, atol=1e-6)


def test_a_dataset_of_another_name_is_named_with_an_option(
        registry: None, checkpoint: Path, tmp_path: Path, fast_to_ears: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with h5py.File(tmp_path / "archive.h5", "w") as h5:
        h5["slow"] = np.zeros((2, 8, 29), np.float32)
        h5["lorient/fast"] = sensor_levels(4)
    status, _, err = classify(capsys, "--checkpoint", checkpoint, tmp_path / "archive.h5")
    assert status == 2 and "--levels-key" in err and "lorient/fast" in err, err
    status, report, err = classify(capsys, "--checkpoint", checkpoint, tmp_path / "archive.h5",
                                   "--levels-key", "lorient/fast")
    assert status == 0, err
    assert report["clips"]["archive"]["frames"] == 32


# ----------------------------------------------------------------------------- item 22


def test_source_is_read_from_the_file(tmp_path: Path, cense: Representation,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_array(tmp_path / "rec.npz", sensor_levels(2), cense)
    status = main(["transcode", "--target", "pann", str(tmp_path / "rec.npz"),
                   "-o", str(tmp_path / "mel.npy"), "--json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert json.loads(out)["source"] == "cense"
    assert np.load(tmp_path / "mel.npy").shape[1] == 64
    status = main(["show", "--target", "pann", str(tmp_path / "rec.npz"),
                   "-o", str(tmp_path / "rec.png")])
    assert status == 0, capsys.readouterr().err
    np.save(tmp_path / "bare.npy", sensor_levels(2))  # records nothing
    status = main(["transcode", "--target", "pann", str(tmp_path / "bare.npy"),
                   "-o", str(tmp_path / "m2.npy")])
    err = capsys.readouterr().err
    assert status == 2 and "bare.npy" in err and "--source" in err, err
