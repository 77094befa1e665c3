"""Chunking and the feature cache: contents, reuse, keys, resumed builds, aux inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from training_helpers import TinyAuxTeacher, TinyTeacher

from specxform.audio import load_audio, resample
from specxform.datasets import Clip
from specxform.errors import InputError, PluginError, SpecError
from specxform.registry import Registry
from specxform.representations.frontend import RepresentationTransform
from specxform.training import cache as cache_module
from specxform.training.cache import (
    CacheSpec,
    Chunking,
    FeatureCache,
    _Featurizer,
    atomic_path,
    atomic_write_bytes,
    build_cache,
    chunk_clip,
    open_cache,
    teacher_digest,
)


def _build(clips: list[Clip], registry: Registry, root: Path, teacher=None, **options):
    return build_cache(clips, source=registry.representation("cense"),
                       target=registry.representation("pann"),
                       teacher=teacher or TinyTeacher(), teacher_name="tiny", root=root, **options)


# ---------------------------------------------------------------------------- chunking


@pytest.mark.parametrize(("seconds", "expected"), [(2.6, 3), (2.4, 2), (0.3, 1), (3.0, 3)])
def test_trailing_half_chunk_counts_and_short_clip_gives_one(seconds: float, expected: int):
    sr = 8000
    audio = np.full(round(seconds * sr), 0.5, dtype=np.float32)
    (at_16k, at_8k), kept = chunk_clip(audio, sr, rates=(16000,), chunking=Chunking())
    assert at_16k.shape == (expected, 16000) and at_8k.shape == (expected, 8000)
    assert list(kept) == list(range(expected))


def test_chunks_are_peak_normalised_cut_in_order_and_zero_padded():
    sr = 1000
    audio = np.concatenate([np.full(1000, 0.25), np.full(1000, -0.5), np.full(600, 0.1)])
    (chunks, native), _ = chunk_clip(audio.astype(np.float32), sr, rates=(sr,),
                                     chunking=Chunking())
    assert np.allclose(chunks[0], 0.5) and np.allclose(chunks[1], -1.0)
    assert np.allclose(chunks[2, :600], 0.2) and np.all(chunks[2, 600:] == 0)
    assert np.array_equal(chunks, native)
    (raw, _), _ = chunk_clip(audio.astype(np.float32), sr, rates=(sr,),
                             chunking=Chunking(normalise="none"))
    assert np.allclose(raw[1], -0.5)


def test_silent_chunks_are_dropped_unless_min_peak_is_zero():
    audio = np.concatenate([np.zeros(2000), np.full(1000, 0.3), np.zeros(1000)]).astype(np.float32)
    (chunks, _), kept = chunk_clip(audio, 1000, rates=(1000,), chunking=Chunking())
    assert list(kept) == [2] and np.allclose(chunks, 1.0)
    _, kept_all = chunk_clip(audio, 1000, rates=(1000,), chunking=Chunking(min_peak=0))
    assert list(kept_all) == [0, 1, 2, 3]


def test_bad_chunking_is_named():
    with pytest.raises(SpecError, match="-1"):
        Chunking(seconds=-1)
    with pytest.raises(SpecError, match="'rms'"):
        Chunking(normalise="rms")
    with pytest.raises(SpecError, match=r"4414\.41 samples"):
        Chunking(seconds=0.1001).samples(44100)


# ---------------------------------------------------------------------- cache contents


def test_cache_holds_the_features_and_teacher_outputs_of_each_chunk(tiny_cache: FeatureCache,
                                                                    few: list[Clip],
                                                                    registry: Registry):
    n = len(tiny_cache)
    assert tiny_cache.source.shape == (n, 8, 29) and tiny_cache.target.shape == (n, 101, 64)
    assert tiny_cache.probs.shape == (n, TinyTeacher.num_classes)
    assert isinstance(tiny_cache.source, np.memmap)
    assert tiny_cache.files == tuple(sorted(c.name for c in few))
    # Recompute the last chunk of one clip independently.
    row = n - 1
    clip = next(c for c in few if c.name == tiny_cache.files[tiny_cache.file_index[row]])
    k = int(tiny_cache.chunk_index[row])
    audio, sr = load_audio(clip.path)
    audio = audio / np.abs(audio).max()
    levels = RepresentationTransform(registry.representation("cense"))(
        torch.from_numpy(resample(audio, orig_sr=sr, target_sr=32000)[k * 32000:][:32000]))
    mel = RepresentationTransform(registry.representation("pann"))(
        torch.from_numpy(resample(audio, orig_sr=sr, target_sr=32000)[k * 32000:][:32000]))
    assert np.allclose(tiny_cache.source[row], levels.numpy(), atol=1e-4)
    assert np.allclose(tiny_cache.target[row], mel.numpy(), atol=1e-4)
    with torch.no_grad():
        probs = TinyTeacher()(mel[None]).probs[0]
    assert np.allclose(tiny_cache.probs[row], probs.numpy(), atol=1e-5)


def test_teacher_runs_in_bounded_batches_with_the_same_result(
        tiny_cache: FeatureCache, few: list[Clip], registry: Registry, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):
    sizes: list[int] = []
    original = TinyTeacher.forward

    def spy(self, mel, aux=None):
        sizes.append(len(mel))
        return original(self, mel, aux)

    monkeypatch.setattr(cache_module, "_TEACHER_BATCH", 2)
    monkeypatch.setattr(TinyTeacher, "forward", spy)
    batched = _build(few[:3], registry, tmp_path)
    assert max(sizes) == 2 and sum(sizes) == len(batched)
    rows = tiny_cache.rows(batched.files)
    assert np.allclose(batched.probs, tiny_cache.probs[rows], atol=1e-6)


def test_take_and_rows_select_clips(tiny_cache: FeatureCache):
    name = tiny_cache.files[1]
    rows = tiny_cache.rows([name])
    assert len(rows) and np.all(np.asarray(tiny_cache.file_index)[rows] == 1)
    batch = tiny_cache.take(rows[::-1])
    assert np.array_equal(batch["source"], tiny_cache.source[rows])
    with pytest.raises(InputError, match=r"'missing\.wav'"):
        tiny_cache.rows(["missing.wav"])


def test_rerun_reuses_the_cache(tiny_cache: FeatureCache, few: list[Clip], registry: Registry,
                                monkeypatch: pytest.MonkeyPatch):
    def fail(self, clip):
        raise AssertionError("recomputed a cached clip")

    monkeypatch.setattr(_Featurizer, "__call__", fail)
    again = _build(few, registry, tiny_cache.folder.parent)
    assert again.folder == tiny_cache.folder
    assert open_cache(again.folder).key == tiny_cache.key
    spec = CacheSpec.of(few, source=registry.representation("cense"),
                        target=registry.representation("pann"), teacher=TinyTeacher(),
                        teacher_name="tiny", chunking=Chunking())
    assert tiny_cache.key == spec.key and tiny_cache.folder.name.endswith(spec.key[:16])


def test_every_spec_is_in_the_key(few: list[Clip], registry: Registry):
    cense, pann = registry.representation("cense"), registry.representation("pann")

    def key(**change) -> str:
        spec = {"source": cense, "target": pann, "teacher": TinyTeacher(), "teacher_name": "tiny",
                "chunking": Chunking()} | change
        return CacheSpec.of(few, **spec).key

    base = key()
    assert key() == base
    others = [
        key(source=cense.with_offset(-88.0)),
        key(source=registry.representation("cense_companion")),
        key(target=registry.representation("yamnet")), key(teacher=TinyTeacher(seed=1)),
        key(teacher_name="other"), key(chunking=Chunking(seconds=2.0)),
        key(chunking=Chunking(normalise="none")),
    ]
    assert len({base, *others}) == len(others) + 1
    assert CacheSpec.of(few[:-1], source=cense, target=pann, teacher=TinyTeacher(),
                        teacher_name="tiny", chunking=Chunking()).key != base


def test_key_follows_file_contents_not_modification_times(few: list[Clip], registry: Registry,
                                                          tmp_path: Path):
    """A copied or re-mounted dataset (new mtimes, same bytes) keeps its cache and its runs."""
    copies = []
    for clip in few:
        copy = tmp_path / clip.path.name
        copy.write_bytes(clip.path.read_bytes())
        copies.append(Clip(copy, clip.name, clip.label, clip.group))

    def key(clips: list[Clip]) -> str:
        return CacheSpec.of(clips, source=registry.representation("cense"),
                            target=registry.representation("pann"), teacher=TinyTeacher(),
                            teacher_name="tiny", chunking=Chunking()).key

    base = key(few)
    os.utime(copies[0].path, ns=(1_000_000_000, 1_000_000_000))
    assert key(copies) == base
    data = bytearray(copies[0].path.read_bytes())
    data[-1] ^= 1  # same size, one bit of the last sample changed
    copies[0].path.write_bytes(bytes(data))
    assert key(copies) != base


def test_teacher_digest_follows_the_weights():
    teacher = TinyTeacher()
    digest = teacher_digest(teacher)
    assert teacher_digest(TinyTeacher()) == digest
    with torch.no_grad():
        teacher.fc.bias[0] += 1e-6
    assert teacher_digest(teacher) != digest
    # Buffers count too, 0-d ones included (BatchNorm's num_batches_tracked).
    norm = torch.nn.BatchNorm1d(3)
    before = teacher_digest(norm)
    norm(torch.randn(4, 3))
    assert teacher_digest(norm) != before
    with torch.no_grad():
        norm.running_mean.zero_(), norm.running_var.fill_(1)
    assert teacher_digest(norm) != before  # num_batches_tracked alone differs


def test_interrupted_build_resumes_where_it_stopped(tiny_cache: FeatureCache, few: list[Clip],
                                                    registry: Registry, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    original = _Featurizer.__call__
    calls: list[str] = []

    def crash_on_third(self, clip):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(clip.name)
        return original(self, clip)

    monkeypatch.setattr(_Featurizer, "__call__", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        _build(few, registry, tmp_path)
    folder = next(tmp_path.iterdir())
    assert sorted(p.name for p in (folder / "parts").iterdir()) == ["000000.npz", "000001.npz"]
    assert not (folder / "complete.json").exists()
    with pytest.raises(InputError, match="not a complete feature cache"):
        open_cache(folder)

    def count(self, clip):
        calls.append(clip.name)
        return original(self, clip)

    monkeypatch.setattr(_Featurizer, "__call__", count)
    resumed = _build(few, registry, tmp_path)
    assert len(calls) == len(few)  # 2 before the crash, the rest after: none twice
    assert len(set(calls)) == len(few)
    for name in ("source", "target", "probs", "file_index", "chunk_index"):
        assert np.array_equal(getattr(resumed, name), getattr(tiny_cache, name)), name
    assert not (resumed.folder / "parts").exists()
    assert json.loads((resumed.folder / "complete.json").read_text())["chunks"] == len(resumed)


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path: Path):
    target = tmp_path / "state.json"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed while writing")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]


# ------------------------------------------------------------------------- aux inputs


def test_aux_inputs_come_from_audio_for_the_teacher_and_from_levels_for_the_student(
        few: list[Clip], registry: Registry, tmp_path: Path):
    teacher = TinyAuxTeacher()
    cache = _build(few[:2], registry, tmp_path, teacher=teacher)
    assert cache.aux_names == ("level",)
    levels = np.asarray(cache.source)
    expected = [teacher.aux_from_source(chunk, registry.representation("cense"))["level"]
                for chunk in levels]
    assert np.allclose(cache.aux_student["level"], np.stack(expected), atol=1e-4)
    # The teacher side comes from audio: close to, but not, the band-level estimate.
    assert np.allclose(cache.aux_teacher["level"], cache.aux_student["level"], atol=3.0)
    assert not np.allclose(cache.aux_teacher["level"], cache.aux_student["level"], atol=1e-3)
    with torch.no_grad():
        probs = teacher(torch.from_numpy(np.array(cache.target)),
                        {"level": torch.from_numpy(np.array(cache.aux_teacher["level"]))}).probs
    assert np.allclose(cache.probs, probs.numpy(), atol=1e-5)
    assert set(cache.take(np.arange(2))) >= {"aux_teacher.level", "aux_student.level"}


class _NoAuxMethods(TinyTeacher):
    aux_inputs: ClassVar[tuple[str, ...]] = ("loudness",)


def test_teacher_needing_aux_without_the_hook_methods_is_refused(few: list[Clip],
                                                                 registry: Registry,
                                                                 tmp_path: Path):
    with pytest.raises(PluginError, match="aux_from_audio"):
        _build(few[:1], registry, tmp_path, teacher=_NoAuxMethods())


def test_chunks_that_do_not_fit_the_pair_or_the_teacher_are_refused(few: list[Clip],
                                                                    registry: Registry,
                                                                    tmp_path: Path):
    # 0.1 s: one 125 ms Cense frame covers more audio than the chunk's PANN frames.
    with pytest.raises(SpecError, match="whole number of cense hops"):
        _build(few[:1], registry, tmp_path, chunking=Chunking(seconds=0.1))
    with pytest.raises(SpecError, match="101 pann frames, fewer than the 200"):
        _build(few[:1], registry, tmp_path, teacher=_LongInput())


class _LongInput(TinyTeacher):
    min_frames: ClassVar[int] = 200


def test_teacher_digest_ignores_the_module_the_class_lives_in():
    """A teacher moved to another module (core -> plugin) keeps its caches and checkpoints."""
    moved = type("TinyTeacher", (TinyTeacher,), {"__module__": "elsewhere.teachers"})
    assert moved.__qualname__ == TinyTeacher.__qualname__
    assert teacher_digest(moved()) == teacher_digest(TinyTeacher())
    renamed = type("OtherTeacher", (TinyTeacher,), {})
    assert teacher_digest(renamed()) != teacher_digest(TinyTeacher())
