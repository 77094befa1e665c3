"""Level files (specxform.levels.readers) and their streaming classification (classify_levels)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import h5py
import numpy as np
import pytest
import torch
from levels_helpers import (
    LevelAuxTeacher,
    LevelTeacher,
    level_registry,
    make_checkpoint,
    sensor_levels,
)

from specxform.errors import CheckpointError, InputError
from specxform.levels.classify import (
    AUTO_TARGET_DB,
    LevelModel,
    LevelSettings,
    classify_level_file,
    estimate_offset,
    load_level_model,
    window_probs,
)
from specxform.levels.readers import open_levels
from specxform.levels.statistics import BroadbandHistogram, broadband_db
from specxform.levels.windows import WindowCutter, silence_levels, window_frames
from specxform.registry import Registry
from specxform.representations.specs import Representation

CENTRES = [1000 * 10 ** ((i - 17) / 10) for i in range(29)]


@pytest.fixture(scope="module")
def cense() -> Representation:
    return level_registry().representation("cense")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "levels-checkpoint"
    best = folder / "run" / "best.pt"
    return best if best.is_file() else make_checkpoint(folder)


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> LevelModel:
    torch.set_num_threads(1)
    return load_level_model(checkpoint, "cense", registry=level_registry())


def write_csv(path: Path, levels: np.ndarray, times: list[str], *, header: list[str] | None = None,
              delimiter: str = ",") -> Path:
    header = header or ["time", *(f"{c:.4g}" for c in CENTRES)]
    lines = [delimiter.join(header)]
    for t, row in zip(times, levels, strict=True):
        cells = ["" if np.isnan(v) else f"{v:.3f}" for v in row]
        lines.append(delimiter.join([t, *cells]))
    path.write_text("\n".join(lines) + "\n")
    return path


def iso_times(n: int, start: datetime = datetime(2024, 5, 1, 8), period: float = 0.125
              ) -> list[str]:
    return [(start + timedelta(seconds=period * i)).isoformat() for i in range(n)]


def read_all(path: Path, source: Representation, block_frames: int = 4096
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    reader = open_levels(path, source, block_frames=block_frames)
    blocks = list(reader.blocks())
    assert all(len(b.times_s) <= block_frames for b in blocks)
    return (np.concatenate([b.levels for b in blocks]), np.concatenate([b.times_s for b in blocks]),
            np.concatenate([b.positions for b in blocks]))


# ----------------------------------------------------------------------------- readers


def test_the_three_formats_read_the_same_levels(tmp_path: Path, cense: Representation) -> None:
    levels = sensor_levels(10)
    np.save(tmp_path / "a.npy", levels)
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        h5["levels"] = levels
    write_csv(tmp_path / "a.csv", levels, [f"{0.125 * i:.3f}" for i in range(len(levels))])
    for name in ("a.npy", "a.h5", "a.csv"):
        got, times, _ = read_all(tmp_path / name, cense, block_frames=7)
        np.testing.assert_allclose(got, levels, atol=5e-4, err_msg=name)
        np.testing.assert_allclose(times, 0.125 * np.arange(len(levels)), err_msg=name)
    # Positions: frame indices, or CSV lines (the header is line 1).
    assert list(read_all(tmp_path / "a.npy", cense)[2][:3]) == [0, 1, 2]
    assert list(read_all(tmp_path / "a.csv", cense)[2][:3]) == [2, 3, 4]


def test_hdf5_timestamps_and_start(tmp_path: Path, cense: Representation) -> None:
    levels = sensor_levels(3)
    stamps = 0.125 * np.arange(len(levels)) + 7.0
    with h5py.File(tmp_path / "t.h5", "w") as h5:
        h5["levels"] = levels
        h5["timestamps"] = stamps
        h5.attrs["start"] = "2024-05-01T08:00:00+02:00"
        h5.attrs["representation"] = json.dumps(cense.to_dict())
    reader = open_levels(tmp_path / "t.h5", cense)
    assert reader.origin == datetime.fromisoformat("2024-05-01T08:00:00+02:00")
    np.testing.assert_allclose(np.concatenate([b.times_s for b in reader.blocks()]), stamps)
    with h5py.File(tmp_path / "iso.h5", "w") as h5:
        h5["levels"] = levels
        h5["timestamps"] = np.array(iso_times(len(levels)), dtype="S")
    _, times, _ = read_all(tmp_path / "iso.h5", cense)
    np.testing.assert_allclose(times, 0.125 * np.arange(len(levels)))


def test_csv_band_names_delimiters_and_missing_cells(tmp_path: Path, cense: Representation
                                                     ) -> None:
    levels = sensor_levels(2)
    levels[3, 4] = np.nan
    names = ["t", "20Hz", "25 Hz", "31.5", *(f"LZeq_{c:.0f}" for c in CENTRES[3:-3]),
             "8k", "10kHz", "12.5k"]
    path = write_csv(tmp_path / "b.csv", levels, iso_times(len(levels)), header=names,
                     delimiter=";")
    got, times, _ = read_all(path, cense)
    assert np.isnan(got[3, 4]) and np.isfinite(np.delete(got.ravel(), 3 * 29 + 4)).all()
    np.testing.assert_allclose(times, 0.125 * np.arange(len(levels)))


@pytest.mark.parametrize(("name", "make", "needles"), [
    ("wide.npy", lambda p: np.save(p, np.zeros((8, 30), np.float32)), ("30 bands", "29")),
    ("flat.npy", lambda p: np.save(p, np.zeros(29, np.float32)), ("shape (29,)",)),
    ("empty.npy", lambda p: np.save(p, np.zeros((0, 29), np.float32)), ("no frames",)),
    ("text.npy", lambda p: np.save(p, np.array([["a"] * 29])), ("must be numbers",)),
    ("garbage.npy", lambda p: p.write_bytes(b"\x93NUMPY garbage"), ("cannot read",)),
    ("cut.npy", lambda p: p.write_bytes(_truncated()), ("truncated",)),
    ("garbage.h5", lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n junk"), ("cannot read",)),
    ("nolevels.h5", lambda p: _h5(p, mel=np.zeros((4, 29))), ("no dataset 'levels'",)),
    ("wide.h5", lambda p: _h5(p, levels=np.zeros((4, 28))), ("28 bands",)),
    ("stamps.h5", lambda p: _h5(p, levels=np.zeros((4, 29)), timestamps=np.zeros(3)),
     ("'timestamps'", "(4,)")),
    ("empty.csv", lambda p: p.write_bytes(b""), ("empty",)),
    ("header.csv", lambda p: p.write_text("time," + ",".join(map(str, CENTRES)) + "\n"),
     ("no frames",)),
    ("narrow.csv", lambda p: p.write_text("time,20,25\n0,1,2\n"), ("line 1", "2 band columns")),
    ("names.csv", lambda p: p.write_text("time," + ",".join(["a"] * 29) + "\n0" + ",1" * 29),
     ("line 1", "'a'", "does not name a frequency")),
    ("order.csv", lambda p: p.write_text("time," + ",".join(f"{c:.4g}" for c in CENTRES[::-1])
                                         + "\n0" + ",1" * 29), ("line 1", "not band 0")),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_files_name_the_file_and_fix(tmp_path: Path, cense: Representation, name: str,
                                         make, needles: tuple[str, ...]) -> None:
    path = tmp_path / name
    make(path)
    with pytest.raises(InputError) as info:
        reader = open_levels(path, cense)
        list(reader.blocks())
    assert str(path) in str(info.value)
    for needle in needles:
        assert needle in str(info.value)


def _truncated() -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.zeros((100, 29), np.float32))
    return buffer.getvalue()[:-40]


def _h5(path: Path, **datasets: np.ndarray) -> None:
    with h5py.File(path, "w") as h5:
        for key, value in datasets.items():
            h5[key] = value


@pytest.mark.parametrize(("row", "needles"), [
    ("0.250" + ",1" * 28, ("line 4", "29 columns, expected 30")),
    ("0.250" + ",1" * 28 + ",x", ("line 4", "column 30", "'x' is not a number")),
    ("nonsense" + ",1" * 29, ("line 4", "'nonsense' is not an ISO 8601 time")),
    ("2024-05-01T08:00:00" + ",1" * 29, ("line 4", "mix ISO 8601 times and numbers")),
])
def test_bad_csv_lines(tmp_path: Path, cense: Representation, row: str,
                       needles: tuple[str, ...]) -> None:
    path = tmp_path / "bad.csv"
    good = "".join(f"{0.125 * i:.3f}" + ",1" * 29 + "\n" for i in range(2))
    path.write_text("time," + ",".join(f"{c:.4g}" for c in CENTRES) + "\n" + good + row + "\n")
    with pytest.raises(InputError) as info:
        read_all(path, cense)
    for needle in (str(path), *needles):
        assert needle in str(info.value)


# ----------------------------------------------------------------------------- windows


def cut(path: Path, source: Representation, w: int, block_frames: int = 5
        ) -> tuple[list, WindowCutter]:
    reader = open_levels(path, source, block_frames=block_frames)
    cutter = WindowCutter(reader, w)
    batches = [b for block in reader.blocks() for b in cutter.feed(block)]
    batches += list(cutter.finish())
    return batches, cutter


def test_windows_follow_the_chunking_rule_per_segment(tmp_path: Path, cense: Representation
                                                      ) -> None:
    """Segments of 8k + r frames: a tail of >= 4 frames is padded with silence, a shorter
    one dropped; a segment shorter than half a window still gives one window."""
    rng = np.random.default_rng(1)
    lengths = [19, 20, 3, 8, 1, 33]  # frames per segment, separated by gaps or missing frames
    levels, times, t = [], [], 0.0
    for i, n in enumerate(lengths):
        levels.append(rng.normal(50, 5, size=(n, 29)))
        times += list(t + 0.125 * np.arange(n))
        t = times[-1] + 0.125
        if i % 2:  # a missing frame
            levels.append(np.full((1, 29), np.nan))
            times.append(t)
            t += 0.125
        else:  # a gap of 2 s
            t += 2.0
    path = tmp_path / "segments.csv"
    write_csv(path, np.concatenate(levels), [f"{x:.3f}" for x in times])
    batches, cutter = cut(path, cense, 8)
    expected = [max(1, int(np.floor(n / 8 + 0.5))) for n in lengths]
    assert cutter.n_segments == len(lengths) and cutter.missing_frames == 3
    assert cutter.n_gaps == 3  # after the 0th, 2nd and 4th segments
    assert [s.windows for s in cutter.segments] == expected
    assert [s.frames for s in cutter.segments] == lengths
    windows = np.concatenate([b.levels for b in batches])
    starts = np.concatenate([b.starts_s for b in batches])
    ends = np.concatenate([b.ends_s for b in batches])
    segments = np.concatenate([b.segments for b in batches])
    assert len(windows) == sum(expected) and np.isfinite(windows).all()
    silence = silence_levels(cense)
    for seg, first in zip(cutter.segments, np.cumsum([0, *expected[:-1]]), strict=True):
        assert (segments[first:first + seg.windows] == seg.index).all()
        for j in range(seg.windows):
            real = min(8, seg.frames - 8 * j)
            assert starts[first + j] == pytest.approx(seg.start_s + j)
            assert ends[first + j] == pytest.approx(starts[first + j] + 0.125 * real)
            # padded frames are silence; real frames are the file's (never across a gap)
            assert (windows[first + j, real:] == silence).all()
            assert (windows[first + j, :real] > 20).all()


def test_timestamp_errors_name_the_line(tmp_path: Path, cense: Representation) -> None:
    times = [f"{0.125 * i:.3f}" for i in range(6)]
    for bad, needle in ((["0.250"], "does not increase"), (["0.400"], "only 0.025 s")):
        path = write_csv(tmp_path / "t.csv", sensor_levels(1)[:6],
                         [*times[:3], "0.375", *bad, *times[5:]])
        with pytest.raises(InputError) as info:
            cut(path, cense, 8, block_frames=2)
        assert f"{path}, line 6" in str(info.value) and needle in str(info.value)


def test_all_missing_and_window_length(tmp_path: Path, cense: Representation) -> None:
    np.save(tmp_path / "nan.npy", np.full((16, 29), np.nan, np.float32))
    with pytest.raises(InputError, match="every one of its 16 frames"):
        cut(tmp_path / "nan.npy", cense, 8)
    assert window_frames(cense, 1.0) == 8 and window_frames(cense, 0.375) == 3
    with pytest.raises(InputError, match=r"8\.8 'cense' frames.*multiple of 0\.125"):
        window_frames(cense, 1.1)


# ----------------------------------------------------------------------------- offset


def test_broadband_and_streaming_percentile(tmp_path: Path, cense: Representation) -> None:
    levels = sensor_levels(600, seed=3)
    levels[10] = np.nan  # ignored
    expected = 10 * np.log10(np.sum(10 ** (levels.astype(np.float64) / 10), axis=1))
    np.testing.assert_allclose(broadband_db(levels[:5]), expected[:5])
    histogram = BroadbandHistogram()
    for start in range(0, len(levels), 777):
        histogram.add(levels[start:start + 777])
    finite = expected[np.isfinite(expected)]
    assert histogram.n == len(finite)
    exact = np.percentile(finite, 99, method="lower")
    assert abs(histogram.percentile(99) - exact) <= 0.005 + 1e-9
    np.save(tmp_path / "l.npy", levels)
    offset, p99 = estimate_offset(open_levels(tmp_path / "l.npy", cense, block_frames=100))
    higher = np.percentile(finite, 99, method="higher")  # auto's rank (see AUTO_TARGET_DB)
    assert offset == AUTO_TARGET_DB - p99 and abs(p99 - higher) <= 0.005 + 1e-9
    assert abs(histogram.percentile(99, higher=True) - higher) <= 0.005 + 1e-9


# ----------------------------------------------------------------------------- classification


def records(result) -> np.ndarray:
    return np.concatenate(list(result.store.blocks()))


def test_each_window_is_the_teacher_on_its_transcoded_levels(tmp_path: Path, model: LevelModel
                                                             ) -> None:
    levels = sensor_levels(5.5, seed=4)  # 44 frames: 5 windows, the last 4 frames padded
    np.save(tmp_path / "l.npy", levels)
    result = classify_level_file(model, tmp_path / "l.npy", "l",
                                 LevelSettings(db_offset=-90.0), tmp_path)
    got = records(result)
    shifted = levels - 90.0
    windows = np.concatenate([shifted, np.broadcast_to(silence_levels(model.source), (4, 29))])
    with torch.no_grad():
        mel = model.transcoder(torch.from_numpy(windows.reshape(6, 8, 29).astype(np.float32)))
        expected = model.classifier(mel).probs.double().numpy()
    np.testing.assert_allclose(got["probs"], expected, rtol=1e-6)
    np.testing.assert_allclose(result.probs, expected.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got["start"], np.arange(6.0))
    np.testing.assert_allclose(got["end"], [1, 2, 3, 4, 5, 5.5])
    assert result.db_offset == -90.0 and result.offset_mode == "given"


def test_blocks_give_the_whole_file_probabilities(tmp_path: Path, model: LevelModel) -> None:
    """Blocks of 13 frames (not whole windows) and batches of 3 windows, with a gap and missing
    frames, equal one block and one batch; for a teacher with aux inputs too."""
    levels = sensor_levels(40, seed=5)
    levels[100:103] = np.nan
    times = 0.125 * np.arange(len(levels))
    times[200:] += 5.0
    with h5py.File(tmp_path / "l.h5", "w") as h5:
        h5["levels"], h5["timestamps"] = levels, times
    aux_model = attrs.evolve(model, classifier=LevelAuxTeacher().eval())
    for m in (model, aux_model):
        small = classify_level_file(m, tmp_path / "l.h5", "l",
                                    LevelSettings(block_frames=13, batch_windows=3), tmp_path)
        whole = classify_level_file(m, tmp_path / "l.h5", "l",
                                    LevelSettings(block_frames=10_000, batch_windows=1_000),
                                    tmp_path)
        a, b = records(small), records(whole)
        assert len(a) == len(b) == small.windows and small.n_segments == 3
        for field in ("start", "end", "segment"):
            np.testing.assert_array_equal(a[field], b[field])
        np.testing.assert_allclose(a["probs"], b["probs"], rtol=1e-5, atol=1e-7)
        assert small.db_offset == whole.db_offset


def test_offset_shifts_the_levels_the_model_sees(tmp_path: Path, model: LevelModel) -> None:
    levels = sensor_levels(4, seed=6)
    np.save(tmp_path / "spl.npy", levels)
    np.save(tmp_path / "fs.npy", levels - 75.0)
    a = classify_level_file(model, tmp_path / "spl.npy", "a", LevelSettings(db_offset=-75.0),
                            tmp_path)
    b = classify_level_file(model, tmp_path / "fs.npy", "b", LevelSettings(db_offset=0.0),
                            tmp_path)
    np.testing.assert_allclose(records(a)["probs"], records(b)["probs"], rtol=1e-5)
    auto = classify_level_file(model, tmp_path / "spl.npy", "c", LevelSettings(), tmp_path)
    p99 = np.percentile(broadband_db(levels), 99, method="higher")
    assert auto.offset_mode == "auto" and abs(auto.db_offset - (AUTO_TARGET_DB - p99)) < 0.01
    shifted = levels + np.float32(auto.db_offset)
    assert abs(np.percentile(broadband_db(shifted), 99, method="higher") - AUTO_TARGET_DB) < 0.01
    direct = window_probs(model, shifted.reshape(4, 8, 29))
    np.testing.assert_allclose(records(auto)["probs"], direct, rtol=1e-5)


def test_checkpoint_source_must_match(checkpoint: Path) -> None:
    registry: Registry = level_registry()
    with pytest.raises(CheckpointError, match=r"trained on 'cense' levels, but `source` is "
                                              r"'slow_third_octave'.*`source=cense`"):
        load_level_model(checkpoint, "slow_third_octave", registry=registry)
    with pytest.raises(InputError, match="not a source representation"):
        load_level_model(checkpoint, "pann", registry=registry)


def test_window_too_short_for_the_teacher(tmp_path: Path, model: LevelModel) -> None:
    np.save(tmp_path / "l.npy", sensor_levels(2))
    with pytest.raises(InputError, match=r"needs at least 14; use a window of 0\.25 s or more"
                       ) as info:
        strict = attrs.evolve(model, classifier=_MinFrames().eval())
        classify_level_file(strict, tmp_path / "l.npy", "l", LevelSettings(window_s=0.125),
                            tmp_path)
    assert "0.125 s window gives" in str(info.value)


class _MinFrames(LevelTeacher):
    """Needs 14 PANN frames: 0.125 s of levels give 13, 0.25 s give 26."""

    min_frames = 14


def test_features_output_is_a_level_file(tmp_path: Path, cense: Representation) -> None:
    """An HDF5 file written like `specxform features -o x.h5` (levels + representation)."""
    from specxform.io import write_array

    levels = sensor_levels(2)
    write_array(tmp_path / "f.h5", levels, cense)
    got, times, _ = read_all(tmp_path / "f.h5", cense)
    np.testing.assert_array_equal(got, levels)
    np.testing.assert_allclose(times, 0.125 * np.arange(16))
    with pytest.raises(InputError, match="holds 'cense' levels, not 'slow_third_octave'"):
        open_levels(tmp_path / "f.h5", level_registry().representation("slow_third_octave"))
