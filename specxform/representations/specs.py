"""Value objects that define a spectral representation exactly.

A :class:`Representation` is the full recipe from audio to a 2-D array
(frames, bands): sample rate and :class:`Framing`, a filterbank
(:class:`BandFilterbank` for rectangular bands such as third octaves or Bark,
:class:`MelFilterbank` for the classifiers' Mel front ends) and a
:class:`Scaling` (power or magnitude, reference, log, floor, offset,
standardisation).

Specs are frozen and validated at construction; they hold numbers and strings
only (no arrays), so they hash, compare, and round-trip through plain dicts
(:meth:`Representation.to_dict` / :meth:`Representation.from_dict`), which is
how checkpoints and caches record the exact representation that made them.
Matrices are derived on demand by :mod:`specxform.representations.filterbanks`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs

from specxform.errors import SpecError
from specxform.representations.filterbanks import filterbank_matrix

WindowName = Literal["hann", "tukey", "rectangular"]
Padding = Literal["center", "none", "end"]
Domain = Literal["power", "magnitude"]
Reference = Literal["raw", "mean_square"]
LogKind = Literal["db", "ln", "none"]
BinRule = Literal["partition", "ceil_inclusive"]
MelScale = Literal["slaney", "htk"]
Role = Literal["source", "target"]

_WINDOWS = ("hann", "tukey", "rectangular")


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise SpecError(f"{attribute.name} must be > 0, got {value!r}.")


def _one_of(*choices: str):
    def check(instance: object, attribute: attrs.Attribute, value: str) -> None:
        if value not in choices:
            raise SpecError(
                f"{attribute.name} must be one of {', '.join(map(repr, choices))}, got {value!r}."
            )

    return check


def _float_tuple(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


# ----------------------------------------------------------------------------
# Framing
# ----------------------------------------------------------------------------


@attrs.frozen
class Framing:
    """How audio is cut into windowed frames before the FFT.

    Parameters
    ----------
    sample_rate : int
        Audio sample rate in Hz.
    frame_length : int
        Window length in samples.
    hop_length : int
        Samples between the starts of consecutive frames.
    n_fft : int
        FFT size in samples; the window is zero-padded *at the end* up to it
        (TensorFlow's convention, which YAMNet relies on). Padding it on both
        sides instead (``torch.stft`` with ``win_length < n_fft``) windows the
        same samples and only shifts the phase, so powers and magnitudes are
        identical.
    window : {"hann", "tukey", "rectangular"}
        Window name; Hann and Tukey are periodic (``scipy.signal.get_window``
        default) unless ``symmetric_window``.
    window_param : float or None
        Tukey's alpha (fraction of the window that is tapered).
    padding : {"center", "none", "end"}
        ``"center"``: ``frame_length // 2`` samples of ``pad_mode`` padding on
        both sides, ``1 + N // hop`` frames (librosa, PANN). ``"none"``: only
        whole frames, ``1 + (N - frame_length) // hop`` (YAMNet). ``"end"``:
        one frame per started hop, the last ones zero-padded at the end,
        ``ceil(N / hop)`` frames (a sensor that outputs one level every hop).
    pad_mode : {"reflect", "constant"}
        Padding used by ``"center"``.
    symmetric_window : bool
        Use the symmetric (DFT-odd, ``periodic=False``) Hann or Tukey window
        (EfficientAT) instead of the periodic one.
    preemphasis : float
        Coefficient ``a`` of a pre-emphasis ``y[n] = x[n] - a x[n - 1]`` applied to
        the audio before framing, in [0, 1); 0 (default) applies none. The filtered
        signal is one sample shorter (``y`` starts at ``x[1]``), which frame counts
        and frame centres account for.
    """

    sample_rate: int = attrs.field(validator=_positive)
    frame_length: int = attrs.field(validator=_positive)
    hop_length: int = attrs.field(validator=_positive)
    n_fft: int = attrs.field(validator=_positive)
    window: str = attrs.field(default="hann", validator=_one_of(*_WINDOWS))
    window_param: float | None = None
    padding: str = attrs.field(default="center", validator=_one_of("center", "none", "end"))
    pad_mode: str = attrs.field(default="reflect", validator=_one_of("reflect", "constant"))
    symmetric_window: bool = False
    preemphasis: float = attrs.field(default=0.0, converter=float)

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.preemphasis < 1.0:
            raise SpecError(
                f"preemphasis must be in [0, 1), got {self.preemphasis!r}; "
                "use e.g. 0.97, or 0 for none."
            )
        if self.n_fft < self.frame_length:
            raise SpecError(
                f"n_fft ({self.n_fft}) must be >= frame_length ({self.frame_length}); "
                f"set n_fft to at least {self.frame_length}."
            )
        if self.window == "tukey" and (
            self.window_param is None or not 0.0 <= self.window_param <= 1.0
        ):
            raise SpecError(
                f"a Tukey window needs window_param (alpha) in [0, 1], got {self.window_param!r}."
            )

    @property
    def n_bins(self) -> int:
        """Number of one-sided FFT bins, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def bin_width(self) -> float:
        """FFT bin spacing in Hz."""
        return self.sample_rate / self.n_fft

    @property
    def _lag(self) -> int:
        """Samples the pre-emphasis removes from the start (1 with pre-emphasis, else 0)."""
        return 1 if self.preemphasis else 0

    def n_frames(self, n_samples: int) -> int:
        """Number of frames this framing yields for ``n_samples`` of audio."""
        n_samples = max(0, n_samples - self._lag)
        if self.padding == "center":
            return 1 + n_samples // self.hop_length
        if self.padding == "end":
            return max(1, math.ceil(n_samples / self.hop_length))
        if n_samples < self.frame_length:
            return 0
        return 1 + (n_samples - self.frame_length) // self.hop_length

    def min_samples(self) -> int:
        """Shortest input that yields one frame."""
        return (self.frame_length if self.padding == "none" else 1) + self._lag

    def frame_centre(self, index: Any) -> Any:
        """Time in seconds of the centre of frame ``index`` (int, float or array)."""
        start = index * self.hop_length + self._lag
        offset = 0.0 if self.padding == "center" else self.frame_length / 2
        return (start + offset) / self.sample_rate

    def covered_samples(self, n_frames: int) -> int:
        """Audio length in samples that ``n_frames`` frames describe.

        Used to map a source representation with no audio to the target frame
        count of the same duration: ``"end"`` frames cover exactly one hop each.
        """
        if self.padding == "end":  # with pre-emphasis too: n * hop samples give n frames
            return n_frames * self.hop_length
        if self.padding == "center":
            return max(0, n_frames - 1) * self.hop_length + self._lag
        return max(0, n_frames - 1) * self.hop_length + self.frame_length + self._lag

    @property
    def frame_seconds(self) -> float:
        """Hop in seconds (the representation's time resolution)."""
        return self.hop_length / self.sample_rate


# ----------------------------------------------------------------------------
# Filterbanks
# ----------------------------------------------------------------------------


def _check_bands(edges: tuple[tuple[float, float], ...]) -> None:
    if not edges:
        raise SpecError("a band filterbank needs at least one band, got none.")
    for i, (low, high) in enumerate(edges):
        if not (math.isfinite(low) and math.isfinite(high)) or low < 0:
            raise SpecError(f"band {i} has invalid edges ({low!r}, {high!r}) Hz.")
        if not high > low:
            raise SpecError(
                f"band {i} is empty: its upper edge {high!r} Hz is not above its lower edge "
                f"{low!r} Hz; give strictly increasing edges."
            )
    lows = [low for low, _ in edges]
    if any(b <= a for a, b in itertools.pairwise(lows)):
        raise SpecError(f"band lower edges must be strictly increasing, got {lows!r}.")


def _edge_pairs(value: Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    return tuple((float(low), float(high)) for low, high in value)


@attrs.frozen
class BandFilterbank:
    """Rectangular bands on the FFT power spectrum (third octaves, Bark, octaves).

    Parameters
    ----------
    edges : tuple of (low, high)
        Band edges in Hz, one pair per band, lower edges strictly increasing.
    centres : tuple of float
        Nominal centre frequency of each band in Hz (labels and plots).
    bin_rule : {"partition", "ceil_inclusive"}
        How FFT bins map to bands. ``"partition"``: each bin is the interval
        ``[f_k - df/2, f_k + df/2)`` and a band takes the fraction of it that
        its edges cover, so contiguous bands split the spectrum exactly.
        ``"ceil_inclusive"``: 0/1 weights on bins ``ceil(lo/df) .. ceil(hi/df)``
        inclusive, the Cense companion code's rule (neighbours share a bin).
    """

    kind: ClassVar[str] = "bands"
    edges: tuple[tuple[float, float], ...] = attrs.field(converter=_edge_pairs)
    centres: tuple[float, ...] = attrs.field(converter=_float_tuple)
    bin_rule: str = attrs.field(
        default="partition", validator=_one_of("partition", "ceil_inclusive")
    )

    def __attrs_post_init__(self) -> None:
        _check_bands(self.edges)
        if len(self.centres) != len(self.edges):
            raise SpecError(
                f"{len(self.centres)} centres for {len(self.edges)} bands; "
                "give one centre per band."
            )

    @classmethod
    def third_octave(
        cls, *, first: int = 0, last: int = 28, bin_rule: str = "partition"
    ) -> BandFilterbank:
        """Base-10 third-octave bands (IEC 61260): ``f_i = 1000 * 10**((i - 17) / 10)`` Hz.

        Edges are ``f_i * 10**(-1/20)`` and ``f_i * 10**(1/20)``; bands 0..28
        run from 19.95 Hz to 12.59 kHz (the Cense sensor's 29 bands).
        """
        centres = [1000.0 * 10 ** ((i - 17) / 10) for i in range(first, last + 1)]
        edges = [(c * 10 ** (-1 / 20), c * 10 ** (1 / 20)) for c in centres]
        return cls(edges=edges, centres=centres, bin_rule=bin_rule)

    @classmethod
    def from_edges(cls, edges: Sequence[float], *, bin_rule: str = "partition") -> BandFilterbank:
        """Contiguous bands from a list of ``n + 1`` edges in Hz (e.g. Zwicker's Bark bands)."""
        pairs = list(itertools.pairwise(edges))
        centres = [math.sqrt(lo * hi) if lo > 0 else hi / 2 for lo, hi in pairs]
        return cls(edges=pairs, centres=centres, bin_rule=bin_rule)

    @property
    def n_bands(self) -> int:
        return len(self.edges)

    @property
    def max_frequency(self) -> float:
        return self.edges[-1][1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "edges": [list(e) for e in self.edges],
            "centres": list(self.centres),
            "bin_rule": self.bin_rule,
        }


@attrs.frozen
class MelFilterbank:
    """Triangular Mel filterbank of a classifier's front end.

    Parameters
    ----------
    n_mels : int
        Number of Mel bands.
    fmin, fmax : float
        Lowest and highest frequency in Hz.
    scale : {"slaney", "htk"}
        Mel formula: Slaney's (linear below 1 kHz, log above; librosa's
        default) or HTK's ``1127 ln(1 + f / 700)``.
    norm : {"slaney", None}
        ``"slaney"`` divides each triangle by its width (area normalisation);
        ``None`` keeps peak 1 (TensorFlow).
    triangles_in : {"hz", "mel"}
        Whether triangle weights are linear in Hz (librosa) or in Mel
        (TensorFlow's ``linear_to_mel_weight_matrix``).
    zero_dc : bool
        Force the DC bin's weights to zero (TensorFlow).
    zero_nyquist : bool
        Force the Nyquist bin's weights to zero (Kaldi's banks cover the
        ``n_fft / 2`` bins below Nyquist; EfficientAT appends a zero column).
    """

    kind: ClassVar[str] = "mel"
    n_mels: int = attrs.field(validator=_positive)
    fmin: float = attrs.field(converter=float)
    fmax: float = attrs.field(converter=float)
    scale: str = attrs.field(default="slaney", validator=_one_of("slaney", "htk"))
    norm: str | None = attrs.field(default="slaney")
    triangles_in: str = attrs.field(default="hz", validator=_one_of("hz", "mel"))
    zero_dc: bool = False
    zero_nyquist: bool = False

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.fmin < self.fmax:
            raise SpecError(
                f"Mel range must satisfy 0 <= fmin < fmax, got fmin={self.fmin}, fmax={self.fmax}."
            )
        if self.norm not in ("slaney", None):
            raise SpecError(f"norm must be 'slaney' or None, got {self.norm!r}.")

    @classmethod
    def slaney(cls, *, n_mels: int, fmin: float, fmax: float) -> MelFilterbank:
        """librosa's default bank: Slaney scale, area-normalised, linear in Hz."""
        return cls(n_mels=n_mels, fmin=fmin, fmax=fmax)

    @classmethod
    def tensorflow(cls, *, n_mels: int, fmin: float, fmax: float) -> MelFilterbank:
        """``tf.signal.linear_to_mel_weight_matrix``: HTK scale, peak 1, linear in Mel, DC zero."""
        return cls(
            n_mels=n_mels,
            fmin=fmin,
            fmax=fmax,
            scale="htk",
            norm=None,
            triangles_in="mel",
            zero_dc=True,
        )

    @classmethod
    def kaldi(cls, *, n_mels: int, fmin: float, fmax: float) -> MelFilterbank:
        """``torchaudio.compliance.kaldi.get_mel_banks`` without VTLN warping (EfficientAT).

        HTK scale, peak 1, triangles linear in Mel, Nyquist bin zero.
        """
        return cls(
            n_mels=n_mels,
            fmin=fmin,
            fmax=fmax,
            scale="htk",
            norm=None,
            triangles_in="mel",
            zero_nyquist=True,
        )

    @property
    def n_bands(self) -> int:
        return self.n_mels

    @property
    def max_frequency(self) -> float:
        return self.fmax

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **attrs.asdict(self)}


Filterbank = BandFilterbank | MelFilterbank
_FILTERBANKS: dict[str, type[BandFilterbank] | type[MelFilterbank]] = {
    "bands": BandFilterbank,
    "mel": MelFilterbank,
}


def filterbank_from_dict(data: Mapping[str, Any]) -> Filterbank:
    """Rebuild a filterbank spec from :meth:`to_dict` output."""
    fields = dict(data)
    kind = fields.pop("kind", None)
    if kind not in _FILTERBANKS:
        raise SpecError(
            f"unknown filterbank kind {kind!r}; expected one of {sorted(_FILTERBANKS)}."
        )
    return _FILTERBANKS[kind](**fields)


# ----------------------------------------------------------------------------
# Scaling
# ----------------------------------------------------------------------------


@attrs.frozen
class Scaling:
    """From filterbank output to the stored values.

    Parameters
    ----------
    domain : {"power", "magnitude"}
        Whether the filterbank weights ``|X|**2`` or ``|X|``.
    reference : {"raw", "mean_square"}
        ``"raw"``: unscaled FFT values (the classifiers). ``"mean_square"``:
        power scaled by ``2 / (n_fft * sum(w**2))`` so that a band holds the
        signal's mean square in that band (a full-scale sine reads 0.5 =
        -3.01 dB): the sound-level-meter convention of Cense.
    log : {"db", "ln", "none"}
        ``"db"``: ``10 log10`` of power (``20 log10`` of magnitude); ``"ln"``:
        natural log.
    floor : float
        Values are clamped to at least ``floor`` before the log (librosa's
        ``amin``); keeps silence finite.
    add : float
        Added inside the log, ``log(x + add)`` (YAMNet's 0.001).
    offset : float
        Added after the log, in its unit (a sensor calibration in dB).
    mean, std : tuple of float or None
        Per-band standardisation ``(x - mean) / std`` applied last.
    """

    domain: str = attrs.field(default="power", validator=_one_of("power", "magnitude"))
    reference: str = attrs.field(default="raw", validator=_one_of("raw", "mean_square"))
    log: str = attrs.field(default="db", validator=_one_of("db", "ln", "none"))
    floor: float = attrs.field(default=1e-10, converter=float)
    add: float = attrs.field(default=0.0, converter=float)
    offset: float = attrs.field(default=0.0, converter=float)
    mean: tuple[float, ...] | None = attrs.field(default=None, converter=_float_tuple)
    std: tuple[float, ...] | None = attrs.field(default=None, converter=_float_tuple)

    def __attrs_post_init__(self) -> None:
        if self.floor < 0 or self.add < 0 or (self.log != "none" and self.floor + self.add <= 0):
            raise SpecError(
                f"log scaling needs floor + add > 0 (floor={self.floor}, add={self.add}); "
                "use floor=1e-10 for dB."
            )
        if (self.mean is None) != (self.std is None):
            raise SpecError("give both mean and std for standardisation, or neither.")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise SpecError(f"standard deviations must be > 0, got {self.std!r}.")

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        for key in ("mean", "std"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data


# ----------------------------------------------------------------------------
# Representation
# ----------------------------------------------------------------------------


def _roles(value: Iterable[str]) -> frozenset[str]:
    roles = frozenset(value)
    if not roles or not roles <= {"source", "target"}:
        raise SpecError(
            f"roles must be a non-empty subset of {{'source', 'target'}}, got {value!r}."
        )
    return roles


@attrs.frozen
class Representation:
    """A complete, exact definition of a spectral representation.

    Output arrays are ``(frames, n_bands)`` in :attr:`unit`.
    """

    name: str
    framing: Framing
    filterbank: Filterbank
    scaling: Scaling = attrs.field(factory=Scaling)
    roles: frozenset[str] = attrs.field(default=frozenset({"source"}), converter=_roles)
    unit: str = "dB"
    description: str = ""

    def __attrs_post_init__(self) -> None:
        nyquist = self.framing.sample_rate / 2
        if self.filterbank.max_frequency > nyquist + 1e-9:
            raise SpecError(
                f"{self.name}: the filterbank reaches {self.filterbank.max_frequency:.6g} Hz, "
                f"above the Nyquist frequency {nyquist:.6g} Hz of {self.framing.sample_rate} Hz "
                "audio; raise the sample rate or drop the top bands."
            )
        for key in ("mean", "std"):
            values = getattr(self.scaling, key)
            if values is not None and len(values) not in (1, self.n_bands):
                raise SpecError(
                    f"{self.name}: scaling.{key} has {len(values)} values for "
                    f"{self.n_bands} bands; give one value or one per band."
                )
        weights = filterbank_matrix(self.filterbank, framing=self.framing)
        empty = [i for i, row in enumerate(weights) if not row.any()]
        if empty:
            raise SpecError(
                f"{self.name}: bands {empty} contain no FFT bin at n_fft={self.framing.n_fft} "
                f"({self.framing.bin_width:.4g} Hz bins); raise n_fft or widen the bands."
            )

    @property
    def n_bands(self) -> int:
        return self.filterbank.n_bands

    @property
    def sample_rate(self) -> int:
        return self.framing.sample_rate

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` of audio at :attr:`sample_rate`."""
        return self.framing.n_frames(n_samples)

    def with_offset(self, offset: float) -> Representation:
        """The same representation with a calibration offset (in its log unit)."""
        return attrs.evolve(self, scaling=attrs.evolve(self.scaling, offset=offset))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "framing": attrs.asdict(self.framing),
            "filterbank": self.filterbank.to_dict(),
            "scaling": self.scaling.to_dict(),
            "roles": sorted(self.roles),
            "unit": self.unit,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Representation:
        """Rebuild a representation from :meth:`to_dict` output (e.g. a checkpoint)."""
        try:
            return cls(
                name=data["name"],
                framing=Framing(**data["framing"]),
                filterbank=filterbank_from_dict(data["filterbank"]),
                scaling=Scaling(**data["scaling"]),
                roles=data["roles"],
                unit=data.get("unit", "dB"),
                description=data.get("description", ""),
            )
        except (KeyError, TypeError) as exc:
            raise SpecError(
                f"not a representation dict ({exc}); expected Representation.to_dict() output."
            ) from exc
