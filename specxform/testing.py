"""Contract checks for plugin authors: representations, pairs, teachers, students, datasets.

specxform's own test suite runs these checks on everything registered (the
built-ins pass exactly these); a plugin's test suite can do the same for what
it registers::

    import pytest
    from specxform.plugins import get_registry
    from specxform.testing import (check_dataset, check_pair, check_representation,
                                   check_student, check_teacher)

    REGISTRY = get_registry()

    @pytest.mark.parametrize("rep", REGISTRY.representations(), ids=lambda r: r.name)
    def test_representation_contract(rep):
        check_representation(rep)

    @pytest.mark.parametrize("pair", REGISTRY.pairs(), ids=lambda p: p.name)
    def test_pair_contract(pair):
        check_pair(REGISTRY.representation(pair.source), REGISTRY.representation(pair.target))

    @pytest.mark.parametrize("teacher", [t.name for t in REGISTRY.teachers()])
    def test_teacher_contract(teacher):
        check_teacher(teacher, registry=REGISTRY)  # random weights: no file is read

    @pytest.mark.parametrize("pair", REGISTRY.pairs(), ids=lambda p: p.name)
    def test_student_contract(pair):
        check_student(pair.student, pair.source, pair.target, config=pair.student_config)

    @pytest.mark.parametrize("dataset", [d.name for d in REGISTRY.datasets()])
    def test_dataset_contract(dataset):
        check_dataset(dataset)  # on the tiny tree its `example` writes

Every check raises :class:`AssertionError` with a message that names the
representation, pair, teacher, student or dataset, the property that failed
and the numbers; none needs pytest or data files (signals are generated with
a fixed seed, dataset trees by the adapter's ``example``).
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import numpy as np
import torch

from specxform.errors import InputError, WeightsError
from specxform.registry import DatasetEntry, Registry, StudentEntry, TeacherEntry
from specxform.representations.filterbanks import filterbank_matrix
from specxform.representations.frontend import RepresentationTransform
from specxform.representations.specs import Representation
from specxform.teachers.base import Teacher
from specxform.transcoders.pinv import METHODS, PinvTranscoder, invert_scaling

__all__ = [
    "Consistency",
    "band_power_consistency",
    "check_dataset",
    "check_filterbank",
    "check_frontend",
    "check_pair",
    "check_pair_consistency",
    "check_pair_finite",
    "check_pair_frames",
    "check_representation",
    "check_round_trip",
    "check_student",
    "check_teacher",
    "check_teacher_aux",
    "check_teacher_facts",
    "check_teacher_forward",
    "check_teacher_labels",
    "check_teacher_signature",
    "contract_signals",
]

#: Input lengths in seconds the contract feeds to every front end.
DURATIONS = (1.0, 10.0)
#: Relative tolerance of exact identities evaluated in float64.
EXACT_RTOL = 1e-6


def contract_signals(sample_rate: int, seconds: float, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Waveforms every representation and pair must handle, at ``sample_rate``.

    Parameters
    ----------
    sample_rate : int
        Sample rate in Hz.
    seconds : float
        Duration in seconds.
    seed : int
        Seed of the noise generator (the signals are deterministic).

    Returns
    -------
    dict of str to np.ndarray, each of shape (round(seconds * sample_rate),), float32
        ``"silence"`` (all zeros), ``"noise"`` (white noise at full scale,
        peak 1), ``"clipped"`` (noise amplified 8x and hard-clipped at +-1)
        and ``"gaps"`` (noise, silence and a 1 kHz sine in turn: level steps
        of over 100 dB between frames and bands).
    """
    n = round(seconds * sample_rate)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n)
    t = np.arange(n) / sample_rate
    third = np.arange(n) * 3 // max(n, 1)  # 0, 1, 2 over the three thirds
    gaps = np.where(third == 0, 0.3 * noise, np.where(third == 2, np.sin(2e3 * np.pi * t), 0.0))
    signals = {
        "silence": np.zeros(n),
        "noise": noise / np.abs(noise).max(initial=1.0),
        "clipped": np.clip(8.0 * noise / np.abs(noise).max(initial=1.0), -1.0, 1.0),
        "gaps": gaps,
    }
    return {name: x.astype(np.float32) for name, x in signals.items()}


# -- representations ------------------------------------------------------------------


def check_round_trip(rep: Representation) -> None:
    """``from_dict(to_dict())`` (also through JSON) gives back an equal, equally hashed spec."""
    data = rep.to_dict()
    for label, plain in (("dict", data), ("JSON", json.loads(json.dumps(data)))):
        back = Representation.from_dict(plain)
        changed = [f.name for f in attrs.fields(Representation)
                   if getattr(back, f.name) != getattr(rep, f.name)]
        if type(back) is not type(rep):
            changed.insert(0, f"type {type(rep).__name__}")
        assert back == rep, f"{rep.name}: the {label} round trip changed the spec: {changed}"
        assert hash(back) == hash(rep), f"{rep.name}: the {label} round trip changed the hash"


def check_filterbank(rep: Representation) -> None:
    """The derived matrix is (n_bands, n_fft // 2 + 1), finite, non-negative, read-only,
    with at least one FFT bin per band."""
    matrix = filterbank_matrix(rep.filterbank, framing=rep.framing)
    expected = (rep.n_bands, rep.framing.n_bins)
    assert matrix.shape == expected, f"{rep.name}: matrix shape {matrix.shape}, expected {expected}"
    assert np.isfinite(matrix).all(), f"{rep.name}: the filterbank matrix is not finite"
    assert (matrix >= 0).all(), f"{rep.name}: the filterbank matrix has negative weights"
    assert not matrix.flags.writeable, f"{rep.name}: the cached matrix must be read-only"
    empty = np.flatnonzero(~matrix.any(axis=1))
    assert empty.size == 0, f"{rep.name}: bands {empty.tolist()} hold no FFT bin"


def check_frontend(rep: Representation, *, durations: Iterable[float] = DURATIONS) -> None:
    """The front end keeps its promises on every contract signal.

    For each duration and signal: output (frames, n_bands) float32 with
    ``rep.n_frames(samples)`` frames, finite; a batch gives the rows computed
    one by one. Inputs shorter than a frame either work or raise
    :class:`~specxform.errors.InputError` naming the representation.
    """
    transform = RepresentationTransform(rep)
    for seconds in durations:
        signals = contract_signals(rep.sample_rate, seconds)
        batch = torch.from_numpy(np.stack(list(signals.values())))
        out = transform(batch)
        n = batch.shape[-1]
        expected = (len(signals), rep.n_frames(n), rep.n_bands)
        assert tuple(out.shape) == expected, (
            f"{rep.name}: {n} samples gave shape {tuple(out.shape)}, expected {expected}"
        )
        assert out.dtype == torch.float32, f"{rep.name}: output dtype {out.dtype}, expected float32"
        for name, row in zip(signals, out, strict=True):
            assert torch.isfinite(row).all(), f"{rep.name}: non-finite output for {name}"
        single = transform(batch[1])
        gap = float((single - out[1]).abs().max())
        assert gap < 1e-3, f"{rep.name}: batched and single outputs differ by {gap:.3g}"
    _check_short_inputs(rep, transform)


def _check_short_inputs(rep: Representation, transform: RepresentationTransform) -> None:
    for n in sorted({1, 16, rep.framing.frame_length // 2, rep.framing.frame_length}):
        try:
            out = transform(torch.ones(n) * 0.5)
        except InputError as exc:
            assert rep.name in str(exc), f"{rep.name}: the error for {n} samples omits the name"
            continue
        assert out.shape[0] == rep.n_frames(n), (
            f"{rep.name}: {n} samples gave {out.shape[0]} frames, expected {rep.n_frames(n)}"
        )
        assert torch.isfinite(out).all(), f"{rep.name}: non-finite output for {n} samples"


def check_representation(rep: Representation) -> None:
    """All representation checks: round trip, filterbank, front end."""
    check_round_trip(rep)
    check_filterbank(rep)
    check_frontend(rep)


# -- pairs ----------------------------------------------------------------------------


def _source_levels(source: Representation, audio: np.ndarray) -> torch.Tensor:
    return RepresentationTransform(source)(torch.from_numpy(audio))


class Consistency(NamedTuple):
    """Band powers before and after a PINV round trip (see :func:`band_power_consistency`)."""

    power: np.ndarray  # (frames, bands): raw source band powers P
    reconstructed: np.ndarray  # (frames, bands): group_columns @ S
    unclipped: np.ndarray | None  # (frames, bands): the same before clipping; None for nnls
    psd: np.ndarray  # (frames, groups): the reconstructed group PSD S


def band_power_consistency(transcoder: PinvTranscoder, levels: torch.Tensor) -> Consistency:
    """Source band powers and the band powers of the transcoder's reconstructed spectrum.

    Follows the model of :mod:`specxform.transcoders.pinv`: the source levels map back to
    raw band powers ``P`` (inverse scaling), the transcoder reconstructs a
    PSD ``S`` (mean square per Hz) per bin group, and the source filterbank
    applied to it gives ``group_columns @ S``. Runs on a float64 copy of the
    transcoder, so that the check measures the algebra, not float32 rounding
    of the levels.

    Parameters
    ----------
    transcoder : PinvTranscoder
    levels : torch.Tensor, shape (frames, source bands)
        Source levels in the source's unit.

    Returns
    -------
    Consistency
        NumPy arrays of shape (frames, source bands), the PSD (frames, groups).
    """
    model = copy.deepcopy(transcoder).double()
    batch = levels.double()[None]
    power = invert_scaling(batch, model.source.scaling, gain=model.source_gain,
                           mean=model.src_mean, std=model.src_std)
    psd = model.group_psd(batch)[0].numpy()
    columns = model.mats.group_columns.T
    unclipped = None
    if model.inverse_t is not None:
        unclipped = (power @ model.inverse_t)[0].numpy() @ columns
    return Consistency(power[0].numpy(), psd @ columns, unclipped, psd)


def check_pair_consistency(source: Representation, target: Representation, method: str,
                           *, seconds: float = 1.0) -> None:
    """The reconstructed spectrum gives back the source band powers, as ``method`` promises.

    ``"nnls"``: exactly, since levels computed from audio always have an
    exact non-negative solution (the true spectrum's group means). ``"pinv"``
    and ``"ridge"``: the PSD is never negative and clipping only adds power
    (``group_columns >= 0``), so band powers are at least the unclipped
    solution's; for ``"pinv"`` the unclipped solution is exact when the
    source bands are linearly independent. Errors are relative to the frame's
    loudest band, the scale of the solvers' rounding.
    """
    transcoder = PinvTranscoder(source, target, method=method)
    pair = f"{source.name}->{target.name} ({method})"
    for name, audio in contract_signals(source.sample_rate, seconds).items():
        result = band_power_consistency(transcoder, _source_levels(source, audio))
        assert (result.psd >= 0).all(), f"{pair}: negative PSD reconstructed for {name}"
        scale = result.power.max(axis=1, keepdims=True)
        if result.unclipped is None:
            error = float((np.abs(result.reconstructed - result.power) / scale).max())
            assert error <= EXACT_RTOL, f"{pair}: band powers off by {error:.3g} for {name}"
            continue
        removed = float(((result.unclipped - result.reconstructed) / scale).max())
        assert removed <= EXACT_RTOL, f"{pair}: clipping removed power ({removed:.3g}) for {name}"
        if method == "pinv":
            error = float((np.abs(result.unclipped - result.power) / scale).max())
            rank = np.linalg.matrix_rank(transcoder.mats.group_columns)
            assert error <= EXACT_RTOL, (
                f"{pair}: the pseudo-inverse misses the band powers by {error:.3g} for {name}; "
                f"the source filterbank has rank {rank} for {source.n_bands} bands"
            )


def check_pair_frames(source: Representation, target: Representation, method: str,
                      *, durations: Iterable[float] = DURATIONS) -> None:
    """The transcoder yields as many frames as the target front end for the same audio."""
    transcoder = PinvTranscoder(source, target, method=method)
    for seconds in durations:
        audio = contract_signals(source.sample_rate, seconds)["noise"]
        out = transcoder(_source_levels(source, audio))
        expected = (target.n_frames(round(seconds * target.sample_rate)), target.n_bands)
        assert tuple(out.shape) == expected, (
            f"{source.name}->{target.name} ({method}): {seconds} s gave shape "
            f"{tuple(out.shape)}, the target front end gives {expected}"
        )


def check_pair_finite(source: Representation, target: Representation, method: str,
                      *, seconds: float = 1.0) -> None:
    """No NaN or infinity for silence, full-scale noise, clipped audio or level gaps."""
    transcoder = PinvTranscoder(source, target, method=method)
    for name, audio in contract_signals(source.sample_rate, seconds).items():
        out = transcoder(_source_levels(source, audio))
        assert torch.isfinite(out).all(), (
            f"{source.name}->{target.name} ({method}): non-finite output for {name}"
        )


def check_pair(source: Representation, target: Representation, *,
               methods: Iterable[str] = METHODS) -> None:
    """All pair checks (frames, finiteness, consistency) for each PINV method."""
    for method in methods:
        check_pair_frames(source, target, method)
        check_pair_finite(source, target, method)
        check_pair_consistency(source, target, method)


# -- teachers -------------------------------------------------------------------------

#: Shortest audio (seconds) fed to a teacher's forward pass by :func:`check_teacher`:
#: long enough for every teacher's ``min_frames``, short enough to stay fast.
TEACHER_SECONDS = 1.0
#: Audio (seconds) on which ``aux_from_audio`` and ``aux_from_source`` must agree in shape.
AUX_SECONDS = 1.0


def _registry(registry: Registry | None) -> Registry:
    if registry is not None:
        return registry
    from specxform.plugins import get_registry

    return get_registry()


def _entries(what: object, registry: Registry, kind: str, entry_type: type) -> list[Any]:
    """The registered entries ``what`` designates: an entry, a name, or a factory."""
    if isinstance(what, entry_type):
        return [what]
    if isinstance(what, str):
        getter = getattr(registry, kind)
        return [getter(what)]
    if callable(what):
        found = [e for e in getattr(registry, f"{kind}s")() if e.factory is what]
        name = getattr(what, "__qualname__", repr(what))
        assert found, (
            f"factory {name} is not registered as a {kind} in this registry; register it "
            f"with registry.add_{kind}(..., factory={name}) or pass registry=..."
        )
        return found
    raise AssertionError(
        f"expected a {entry_type.__name__}, a registered {kind} name or its factory, "
        f"got {what!r}"
    )


def check_teacher_signature(entry: TeacherEntry) -> None:
    """The factory accepts the calls specxform makes: ``factory()``,
    ``factory(weights=path_or_None)`` and ``factory(pretrained=False)``."""
    try:
        signature = inspect.signature(entry.factory)
    except (TypeError, ValueError):  # some builtins have no signature: nothing to check
        return
    for call in ({}, {"weights": None}, {"weights": "teacher.pt"}, {"pretrained": False}):
        try:
            signature.bind(**call)
        except TypeError as exc:
            raise AssertionError(
                f"teacher {entry.name}: factory{signature} cannot be called as "
                f"factory({', '.join(f'{k}={v!r}' for k, v in call.items())}) ({exc}); "
                "define it as factory(weights=None, *, pretrained=True)"
            ) from None


def check_teacher_facts(entry: TeacherEntry, teacher: Teacher, target: Representation) -> None:
    """What the entry declares is what the model is: classes, aux inputs, parameters,
    Mel bands, and a chunking whose chunks give at least ``min_frames`` frames."""
    from specxform.training.cache import Chunking

    name = entry.name
    assert isinstance(teacher, Teacher), (
        f"teacher {name}: factory(pretrained=False) returned {type(teacher).__name__}, not a "
        "specxform.teachers.base.Teacher"
    )
    assert teacher.num_classes == entry.num_classes, (
        f"teacher {name}: the model has {teacher.num_classes} classes, the entry declares "
        f"num_classes={entry.num_classes}"
    )
    assert tuple(teacher.aux_inputs) == entry.aux_inputs, (
        f"teacher {name}: the model's aux_inputs {tuple(teacher.aux_inputs)} differ from the "
        f"entry's {entry.aux_inputs}"
    )
    if entry.parameter_count is not None:
        count = teacher.trainable_parameter_count()
        assert count == entry.parameter_count, (
            f"teacher {name}: {count:,} parameters, the entry declares "
            f"parameter_count={entry.parameter_count:,}"
        )
    assert teacher.n_mels == target.n_bands, (
        f"teacher {name}: n_mels={teacher.n_mels}, but its target {target.name!r} has "
        f"{target.n_bands} bands"
    )
    assert isinstance(teacher.min_frames, int) and teacher.min_frames >= 1, (
        f"teacher {name}: min_frames must be an int >= 1, got {teacher.min_frames!r}"
    )
    chunking = Chunking.for_teacher(entry)
    frames = target.n_frames(chunking.samples(target.sample_rate))
    assert frames >= teacher.min_frames, (
        f"teacher {name}: its {chunking.seconds} s chunks give {frames} {target.name} frames, "
        f"fewer than its min_frames={teacher.min_frames}; declare a longer chunk_seconds"
    )


def _teacher_seconds(teacher: Teacher, target: Representation) -> float:
    """At least :data:`TEACHER_SECONDS`, and long enough for ``min_frames`` frames."""
    needed = target.framing.covered_samples(teacher.min_frames) / target.sample_rate
    return max(TEACHER_SECONDS, math.ceil(needed * 10) / 10)


def check_teacher_forward(entry: TeacherEntry, teacher: Teacher, target: Representation,
                          aux: dict[str, torch.Tensor] | None = None,
                          *, seconds: float | None = None) -> None:
    """Forward on the target's log-Mel of silence and of level gaps (batch of 2).

    ``logits`` and ``probs`` are ``(batch, num_classes)`` float32, finite, with
    ``probs == sigmoid(logits)``; a clip alone gives its row of the batch; a
    Mel with the wrong band count or rank raises :class:`InputError`.
    ``aux``: batched aux inputs for the 2 clips (built by :func:`check_teacher`).
    """
    name = entry.name
    seconds = seconds or _teacher_seconds(teacher, target)
    signals = contract_signals(target.sample_rate, seconds)
    audio = torch.from_numpy(np.stack([signals["silence"], signals["gaps"]]))
    mel = RepresentationTransform(target)(audio)
    teacher.eval()
    with torch.no_grad():
        out = teacher(mel, aux)
        single = teacher(mel[1:], None if aux is None else {k: v[1:] for k, v in aux.items()})
    expected = (2, entry.num_classes)
    for field in ("logits", "probs"):
        value = getattr(out, field)
        assert tuple(value.shape) == expected, (
            f"teacher {name}: {field} shape {tuple(value.shape)}, expected {expected}"
        )
        assert value.dtype == torch.float32, f"teacher {name}: {field} dtype {value.dtype}"
        assert torch.isfinite(value).all(), f"teacher {name}: non-finite {field}"
    gap = float((out.probs - torch.sigmoid(out.logits)).abs().max())
    assert gap <= 1e-6, f"teacher {name}: probs differ from sigmoid(logits) by {gap:.3g}"
    # float32 kernels may sum in another order for another batch size.
    scale = max(1.0, float(out.logits.abs().max()))
    gap = float((single.logits[0] - out.logits[1]).abs().max())
    assert gap <= 1e-3 * scale, (
        f"teacher {name}: a clip alone gives logits {gap:.3g} away from its row of the batch"
    )
    _check_refuses_bad_mels(name, teacher, mel, aux)


def _check_refuses_bad_mels(name: str, teacher: Teacher, mel: torch.Tensor,
                            aux: dict[str, torch.Tensor] | None) -> None:
    wider = torch.cat([mel, mel[..., :1]], dim=-1)
    for label, bad in (("one band too many", wider), ("no batch axis", mel[0])):
        try:
            with torch.no_grad():
                teacher(bad, aux)
        except InputError:
            continue
        raise AssertionError(
            f"teacher {name}: a Mel with {label} (shape {tuple(bad.shape)}) was accepted; "
            "call self.check_input(mel, aux) first in forward"
        )


def check_teacher_aux(entry: TeacherEntry, teacher: Teacher, source: Representation,
                      target: Representation, *, seconds: float = AUX_SECONDS) -> None:
    """A teacher with aux inputs computes them from audio and from ``source`` levels, with
    the names of ``aux_inputs``, finite, and the same shapes for the same audio."""
    name = entry.name
    for method in ("aux_from_audio", "aux_from_source"):
        assert callable(getattr(teacher, method, None)), (
            f"teacher {name}: aux_inputs {entry.aux_inputs} but no {method}() method; see "
            "specxform.teachers.base"
        )
    provider: Any = teacher  # the two methods are duck-typed (specxform.training.cache.AuxProvider)
    audio = contract_signals(source.sample_rate, seconds)["noise"] * 0.1
    from_source = provider.aux_from_source(_source_levels(source, audio).numpy(), source)
    at_target = contract_signals(target.sample_rate, seconds)["noise"] * 0.1
    from_audio = provider.aux_from_audio(at_target, target.sample_rate)
    for label, values in (("aux_from_source", from_source), ("aux_from_audio", from_audio)):
        assert set(values) == set(entry.aux_inputs), (
            f"teacher {name}: {label} returned {sorted(values)}, expected {list(entry.aux_inputs)}"
        )
        for key, value in values.items():
            assert np.isfinite(np.asarray(value)).all(), f"teacher {name}: {label} {key} not finite"
    for key in entry.aux_inputs:
        shapes = np.shape(from_source[key]), np.shape(from_audio[key])
        assert shapes[0] == shapes[1], (
            f"teacher {name}: {seconds} s give {key} of shape {shapes[0]} from {source.name} "
            f"levels but {shapes[1]} from audio"
        )


def _aux_batch(teacher: Teacher, source: Representation, seconds: float
               ) -> dict[str, torch.Tensor]:
    """Student-side aux inputs for 2 clips of ``seconds`` (silence and level gaps)."""
    signals = contract_signals(source.sample_rate, seconds)
    provider: Any = teacher
    rows = [provider.aux_from_source(_source_levels(source, signals[s]).numpy(), source)
            for s in ("silence", "gaps")]
    return {key: torch.from_numpy(np.stack([np.asarray(r[key], dtype=np.float32) for r in rows]))
            for key in teacher.aux_inputs}


def check_teacher_labels(entry: TeacherEntry, teacher: Teacher) -> None:
    """``labels()`` gives ``num_classes`` non-empty names, or raises :class:`WeightsError`
    (its label file is not on this machine)."""
    try:
        names = type(teacher).labels()
    except WeightsError:
        return
    except NotImplementedError as exc:
        raise AssertionError(f"teacher {entry.name}: {exc}") from None
    assert len(names) == entry.num_classes, (
        f"teacher {entry.name}: labels() gives {len(names)} names for {entry.num_classes} classes"
    )
    bad = [n for n in names if not (isinstance(n, str) and n.strip())]
    assert not bad, f"teacher {entry.name}: labels() holds empty or non-string names {bad[:3]}"


def check_teacher(teacher: TeacherEntry | str | Callable[..., Any], *,
                  registry: Registry | None = None) -> None:
    """Every teacher check, on a registered teacher built with random weights.

    The check the built-in teachers pass (specxform's own suite runs it on every
    registered teacher); no weight file is read (``factory(pretrained=False)``).

    Parameters
    ----------
    teacher : TeacherEntry, str or callable
        The entry, its registered name, or the factory a plugin registered
        (every entry with that factory is checked).
    registry : Registry, optional
        Where it is registered; defaults to the installed plugins' registry.

    Raises
    ------
    AssertionError
        Naming the teacher, the property that failed and the numbers.
    """
    registry = _registry(registry)
    for entry in _entries(teacher, registry, "teacher", TeacherEntry):
        check_teacher_signature(entry)
        model = entry.factory(pretrained=False)
        target = registry.representation(entry.target)
        check_teacher_facts(entry, model, target)
        sources = registry.accepted_sources(entry.name)
        assert sources, f"teacher {entry.name}: accepts no registered source; it cannot train"
        aux = None
        if entry.aux_inputs:
            source = registry.representation(sources[0])
            check_teacher_aux(entry, model, source, target)
            aux = _aux_batch(model, source, _teacher_seconds(model, target))
        check_teacher_forward(entry, model, target, aux)
        check_teacher_labels(entry, model)


# -- students -------------------------------------------------------------------------


def check_student(student: StudentEntry | str | Callable[..., Any],
                  source: Representation | str, target: Representation | str, *,
                  config: Mapping[str, Any] | None = None,
                  registry: Registry | None = None, seconds: float = 1.0) -> None:
    """A student refines the PINV Mel of (``source``, ``target``) as the trainer uses it.

    ``factory(source, target, **config)`` returns an ``nn.Module`` that maps the
    PINV log-Mel of the contract signals, ``(4, frames, target bands)``, to a
    finite float32 tensor of the same shape, through which gradients reach
    every trainable parameter (a student without parameters is allowed).

    Parameters
    ----------
    student : StudentEntry, str or callable
        The entry, its registered name, or its registered factory.
    source, target : Representation or str
        The pair (names are looked up in ``registry``).
    config : mapping, optional
        Keyword arguments of the factory (a pair's ``student_config``).
    registry : Registry, optional
        Defaults to the installed plugins' registry.
    seconds : float
        Duration of the contract signals.
    """
    registry = _registry(registry)
    src = registry.representation(source) if isinstance(source, str) else source
    tgt = registry.representation(target) if isinstance(target, str) else target
    signals = contract_signals(src.sample_rate, seconds)
    levels = _source_levels(src, np.stack(list(signals.values())))
    mel = PinvTranscoder(src, tgt)(levels)
    for entry in _entries(student, registry, "student", StudentEntry):
        where = f"student {entry.name} on {src.name}->{tgt.name}"
        module = entry.factory(src, tgt, **dict(config or {}))
        assert isinstance(module, torch.nn.Module), (
            f"{where}: the factory returned {type(module).__name__}, not a torch.nn.Module"
        )
        module.train()
        out = module(mel)
        assert isinstance(out, torch.Tensor) and out.shape == mel.shape, (
            f"{where}: output {getattr(out, 'shape', type(out))}, expected {tuple(mel.shape)}"
        )
        assert out.dtype == torch.float32, f"{where}: output dtype {out.dtype}"
        assert torch.isfinite(out).all(), f"{where}: non-finite output"
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not params:  # a fixed student (the PINV alone) has nothing to train
            continue
        out.square().mean().backward()
        dead = [n for n, p in params if p.grad is None or not torch.isfinite(p.grad).all()]
        assert not dead, f"{where}: no finite gradient reaches {dead[:5]}"


# -- datasets -------------------------------------------------------------------------


def check_dataset(dataset: DatasetEntry | str | Callable[..., Any],
                  root: str | Path | None = None, *, registry: Registry | None = None,
                  options: Mapping[str, Any] | None = None) -> None:
    """A dataset adapter lists a tree as the trainer and the evaluation need it.

    On ``root``, else on the tiny tree its ``example`` writes into a temporary
    folder: ``factory(root, **options)`` returns an
    :class:`~specxform.datasets.AudioDataset` whose clips
    are sorted by name, unique, existing files under the root named by their
    relative POSIX path, with a group and a label (or labels); its
    :meth:`~specxform.datasets.AudioDataset.split` is deterministic, keeps every
    group in one part, trains on something and uses only listed clips; a
    second listing gives the same clips; official cross-validation folds, if
    any, test every clip once.

    Raises
    ------
    AssertionError
        Naming the dataset, the clip and the property that failed.
    """
    registry = _registry(registry)
    for entry in _entries(dataset, registry, "dataset", DatasetEntry):
        if root is not None:
            _check_dataset_tree(entry, Path(root), options)
            continue
        assert entry.example is not None, (
            f"dataset {entry.name}: pass root=... or register it with example=, a function "
            "that writes a tiny tree in its layout"
        )
        with tempfile.TemporaryDirectory(prefix=f"specxform-{entry.name}-") as folder:
            entry.example(Path(folder))
            _check_dataset_tree(entry, Path(folder), options)


def _check_dataset_tree(entry: DatasetEntry, root: Path,
                        options: Mapping[str, Any] | None) -> None:
    from specxform.datasets import AudioDataset

    name = entry.name
    listed = entry.factory(root, **dict(options or {}))
    assert isinstance(listed, AudioDataset), (
        f"dataset {name}: the factory returned {type(listed).__name__}, not an AudioDataset"
    )
    _check_clips(name, listed)
    again = entry.factory(root, **dict(options or {}))
    assert again.clips == listed.clips, f"dataset {name}: a second listing gives other clips"
    split = listed.split()
    assert listed.split() == split, f"dataset {name}: split() differs between two calls"
    _check_split(name, listed, split)
    for k, fold in enumerate(listed.cross_validation() if listed.folds else (), start=1):
        _check_split(f"{name} fold {k}", listed, fold)
    if listed.folds:
        tested = sorted(c.name for fold in listed.cross_validation() for c in fold.test)
        assert tested == sorted(c.name for c in listed.clips), (
            f"dataset {name}: the cross-validation folds do not test every clip once"
        )


def _check_clips(name: str, listed: Any) -> None:
    clips, root = listed.clips, Path(listed.root)
    assert clips, f"dataset {name}: no clip listed"
    names = [c.name for c in clips]
    assert names == sorted(names), f"dataset {name}: clips are not sorted by name"
    assert len(set(names)) == len(names), f"dataset {name}: a clip name is listed twice"
    for clip in clips:
        where = f"dataset {name}: clip {clip.name}"
        assert clip.path.is_file(), f"{where}: {clip.path} is not a file"
        assert Path(clip.path).resolve() == (root / clip.name).resolve(), (
            f"{where}: its name is not its path relative to the root {root}"
        )
        assert "\\" not in clip.name and not clip.name.startswith("/"), (
            f"{where}: the name must be a relative POSIX path"
        )
        assert isinstance(clip.group, str) and clip.group, f"{where}: empty group"
        assert clip.label is None or (isinstance(clip.label, str) and clip.label), (
            f"{where}: label must be a non-empty str or None, got {clip.label!r}"
        )
    assert listed.classes, f"dataset {name}: no clip has a label"


def _check_split(name: str, listed: Any, split: Any) -> None:
    parts = {"train": split.train, "valid": split.valid, "test": split.test}
    assert split.train, f"dataset {name}: the split trains on nothing"
    known = {c.name for c in listed.clips}
    groups = {part: {c.group for c in clips} for part, clips in parts.items()}
    for part, clips in parts.items():
        unknown = [c.name for c in clips if c.name not in known]
        assert not unknown, f"dataset {name}: {part} holds unlisted clips {unknown[:3]}"
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        shared = sorted(groups[a] & groups[b])
        assert not shared, f"dataset {name}: groups {shared[:3]} are in both {a} and {b}"
    back = split.to_dict()
    assert all(back[p] == [c.name for c in clips] for p, clips in parts.items()), (
        f"dataset {name}: Split.to_dict() does not list the clips of each part"
    )
