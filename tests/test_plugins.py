"""Plugin loading: entry points, failures, rollback, autoload switch, the example package.

Third-party plugins are real: each test writes a module and a ``.dist-info``
folder (METADATA + entry_points.txt) into a temporary directory, so the entry
points come from :mod:`importlib.metadata` with their distribution attached,
exactly as for an installed package.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import specxform
from specxform import plugins
from specxform.errors import PluginError, PluginLoadWarning
from specxform.plugins import DISABLE_AUTOLOAD_ENV, load_plugins
from specxform.registry import Origin

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "specxform-octave-bands"

EntryPoints = list[importlib.metadata.EntryPoint]
MakeDist = Callable[..., EntryPoints]

#: A valid source representation for fake plugins (two bands, Cense framing).
TOY = """
import specxform
from specxform import BandFilterbank, Framing, Representation

def toy(name):
    framing = Framing(sample_rate=32000, frame_length=4096, hop_length=4000, n_fft=4096,
                      padding="end")
    return Representation(name=name, framing=framing,
                          filterbank=BandFilterbank.from_edges([100.0, 200.0, 400.0]))
"""


def _builtin_entry_points() -> EntryPoints:
    eps = importlib.metadata.entry_points(group=plugins.ENTRY_POINT_GROUP)
    return [ep for ep in eps if ep.dist is not None and ep.dist.metadata["Name"] == "specxform"]


@pytest.fixture(scope="module")
def builtins() -> EntryPoints:
    return _builtin_entry_points()


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeDist:
    """Write a distribution holding plugin modules; return its entry points.

    ``make_dist("fake-dist", {"ep_name": "module source"}, version="1.2")``.
    Module names are made unique, so tests never share ``sys.modules`` entries.
    """
    # Metadata stays off sys.path: a fake "specxform" must not shadow the real one.
    code, meta = tmp_path / "code", tmp_path / "meta"
    code.mkdir()
    monkeypatch.syspath_prepend(str(code))

    def make(dist: str, modules: dict[str, str], version: str = "1.0") -> EntryPoints:
        lines = []
        for ep_name, source in modules.items():
            module = f"fake_{ep_name}_{uuid.uuid4().hex[:8]}"
            (code / f"{module}.py").write_text(TOY + textwrap.dedent(source))
            lines.append(f"{ep_name} = {module}")
        info = meta / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
        )
        (info / "entry_points.txt").write_text("[specxform]\n" + "\n".join(lines) + "\n")
        return list(importlib.metadata.PathDistribution(info).entry_points)

    return make


def _load(
    *entry_points: importlib.metadata.EntryPoint, extra: Sequence[tuple[str, object]] = ()
) -> plugins.LoadedPlugins:
    """The built-ins, then ``entry_points``, then ``extra``, with autoload on."""
    return load_plugins(
        entry_points=[*_builtin_entry_points(), *entry_points], extra=extra, autoload=True
    )


def _rep_names(loaded: plugins.LoadedPlugins) -> set[str]:
    return {r.name for r in loaded.registry.representations()}


GOOD = """
@specxform.hookimpl
def specxform_add_representations(registry):
    registry.add_representation(toy("good_rep"))
"""

#: Representations every specxform install has (built-in plugins may add more).
CORE_REPS = {
    "bark", "cense", "cense_companion", "cense_rectangular", "pann", "slow_third_octave",
    "yamnet",
}


@pytest.fixture(scope="module")
def base_reps(builtins: EntryPoints) -> set[str]:
    """What the built-ins alone register: the baseline of every comparison below."""
    return _rep_names(load_plugins(entry_points=builtins))


# -- loading -----------------------------------------------------------------


def test_builtins_load_as_builtins(builtins: EntryPoints) -> None:
    loaded = load_plugins(entry_points=builtins)
    assert loaded.failures == ()
    assert _rep_names(loaded) >= CORE_REPS
    assert {p.name for p in loaded.plugins} == {ep.name for ep in builtins}
    for info in loaded.plugins:
        assert info.builtin and info.distribution == "specxform"
        assert info.version == specxform.__version__
        assert info.hooks and all(h.startswith("specxform_add_") for h in info.hooks)


def test_get_registry_is_loaded_once_with_the_builtins() -> None:
    assert plugins.get_registry() is plugins.get_registry() is plugins.loaded().registry
    assert {r.name for r in plugins.get_registry().representations()} >= CORE_REPS


def test_third_party_plugin_reports_distribution_version_and_hooks(make_dist: MakeDist) -> None:
    eps = make_dist("fake-good", {"good": GOOD}, version="2.5")
    loaded = _load(*eps)
    info = {p.name: p for p in loaded.plugins}["good"]
    assert (info.distribution, info.version, info.builtin) == ("fake-good", "2.5", False)
    assert info.hooks == ("specxform_add_representations",)
    assert loaded.registry.origin_of("representation", "good_rep") == Origin("good", "fake-good")


def test_extra_registers_plugin_objects() -> None:
    class Plugin:
        @specxform.hookimpl
        def specxform_add_pairs(self, registry: specxform.Registry) -> None:
            registry.add_pair("bark", "yamnet", description="from an object")

    loaded = _load(extra=[("obj", Plugin())])
    assert {p.name: p for p in loaded.plugins}["obj"] == plugins.PluginInfo(
        "obj", None, None, ("specxform_add_pairs",), False
    )
    pair = loaded.registry.pair("bark", "yamnet")
    assert pair.explicit and pair.origin == Origin("obj")


# -- third-party failures ------------------------------------------------------


def test_import_error_warns_and_keeps_the_others(
    make_dist: MakeDist, base_reps: set[str]
) -> None:
    good = make_dist("fake-good", {"good": GOOD})
    bad = make_dist("fake-broken", {"broken": "import not_a_module_anywhere\n"})
    with pytest.warns(PluginLoadWarning) as record:
        loaded = _load(*bad, *good)
    [warning] = record
    message = str(warning.message)
    assert "plugin 'broken' from distribution 'fake-broken' failed to load" in message
    assert "ModuleNotFoundError" in message and "not_a_module_anywhere" in message
    assert DISABLE_AUTOLOAD_ENV in message  # the remedy
    assert warning.filename == __file__  # points at the code that loaded the plugins
    assert _rep_names(loaded) == base_reps | {"good_rep"}
    assert "broken" not in {p.name for p in loaded.plugins}
    assert loaded.failures == (message.split(" — ")[0],)


def test_hook_error_rolls_back_partial_registrations(
    make_dist: MakeDist, base_reps: set[str]
) -> None:
    flaky = make_dist("fake-flaky", {"flaky": """
        @specxform.hookimpl
        def specxform_add_representations(registry):
            registry.add_representation(toy("flaky_rep"))
            raise RuntimeError("disk on fire")
    """})
    with pytest.warns(PluginLoadWarning, match="plugin 'flaky' from distribution 'fake-flaky' "
                      "failed in specxform_add_representations: RuntimeError: disk on fire") as rec:
        loaded = _load(*flaky, *make_dist("fake-good", {"good": GOOD}))
    assert rec[0].filename == __file__
    assert _rep_names(loaded) == base_reps | {"good_rep"}
    assert "flaky" not in {p.name for p in loaded.plugins}


def test_failure_in_a_later_hook_rolls_back_earlier_hooks_and_dependents(
    make_dist: MakeDist, base_reps: set[str]
) -> None:
    eps = make_dist("fake-two", {
        "late": """
            @specxform.hookimpl
            def specxform_add_representations(registry):
                registry.add_representation(toy("late_rep"))

            @specxform.hookimpl
            def specxform_add_datasets(registry):
                raise ValueError("no data")
        """,
        "user": """
            @specxform.hookimpl
            def specxform_add_students(registry):
                registry.add_student("user_student", factory=dict)

            @specxform.hookimpl
            def specxform_add_pairs(registry):
                registry.add_pair("late_rep", "pann")
        """,
    })
    with pytest.warns(PluginLoadWarning) as record:
        loaded = _load(*eps)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert "plugin 'late' from distribution 'fake-two' failed in specxform_add_datasets" in (
        messages[0]
    )
    # 'user' built on 'late': without it, its pair is refused and it goes too, named.
    assert "plugin 'user' from distribution 'fake-two' failed in specxform_add_pairs" in (
        messages[1]
    )
    assert "unknown representation 'late_rep'" in messages[1]
    assert _rep_names(loaded) == base_reps
    assert "user_student" not in {s.name for s in loaded.registry.students()}
    assert len(loaded.failures) == 2


def test_duplicate_between_third_party_plugins_names_both(make_dist: MakeDist) -> None:
    first = make_dist("fake-first", {"first": GOOD})
    second = make_dist("fake-second", {"second": GOOD})
    with pytest.warns(PluginLoadWarning) as record:
        loaded = _load(*first, *second)
    [warning] = record
    message = str(warning.message)
    assert "duplicate representation 'good_rep'" in message
    assert "plugin 'first' from distribution 'fake-first'" in message
    assert "plugin 'second' from distribution 'fake-second'" in message
    assert loaded.registry.origin_of("representation", "good_rep").plugin == "first"


def test_third_party_cannot_replace_a_builtin(make_dist: MakeDist) -> None:
    eps = make_dist("fake-squat", {"squat": """
        @specxform.hookimpl
        def specxform_add_representations(registry):
            registry.add_representation(toy("cense"))
    """})
    with pytest.warns(PluginLoadWarning, match="duplicate representation 'cense': registered by "
                      "plugin 'third_octave' from distribution 'specxform' and again by plugin "
                      "'squat' from distribution 'fake-squat'"):
        loaded = _load(*eps)
    assert loaded.registry.representation("cense").n_bands == 29


def test_entry_point_name_taken_twice(make_dist: MakeDist) -> None:
    first = make_dist("fake-a", {"same": GOOD})
    second = make_dist("fake-b", {"same": "\n"})
    with pytest.warns(PluginLoadWarning, match="plugin 'same' from distribution 'fake-b' failed "
                      "to load: PluginError: the entry-point name 'same' is already used by "
                      "plugin 'same' from distribution 'fake-a'"):
        loaded = _load(*first, *second)
    assert {p.distribution for p in loaded.plugins if p.name == "same"} == {"fake-a"}


def test_misspelt_hook_is_reported_with_the_right_name(make_dist: MakeDist) -> None:
    eps = make_dist("fake-typo", {"typo": """
        @specxform.hookimpl
        def specxform_add_representation(registry):
            registry.add_representation(toy("typo_rep"))
    """})
    with pytest.warns(PluginLoadWarning, match="unknown hooks 'specxform_add_representation' "
                      "\\(did you mean 'specxform_add_representations'\\?\\)"):
        loaded = _load(*eps)
    assert "typo" not in {p.name for p in loaded.plugins}


def test_undecorated_hook_is_reported(make_dist: MakeDist) -> None:
    eps = make_dist("fake-bare", {"bare": """
        def specxform_add_representations(registry):
            registry.add_representation(toy("bare_rep"))
    """})
    with pytest.warns(PluginLoadWarning, match="defines 'specxform_add_representations' without "
                      "@specxform.hookimpl"):
        _load(*eps)


def test_extra_plugin_with_a_bad_hook_raises_at_once() -> None:
    class Typo:
        @specxform.hookimpl
        def specxform_add_pair(self, registry: specxform.Registry) -> None:
            """Misspelt: pluggy alone would never call it."""

    with pytest.raises(PluginError, match="did you mean 'specxform_add_pairs'"):
        _load(extra=[("typo", Typo())])


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ('registry.add_pair("cense", "pan")',
         "pair cense->pan refers to unknown representation 'pan'. Did you mean 'pann'"),
        ('registry.add_pair("cense", "pann", teacher="toy_yam")',
         "teacher 'toy_yam' consumes 'yamnet', not 'pann'"),
    ],
)
def test_bad_pair_is_refused_naming_the_plugin(
    make_dist: MakeDist, declaration: str, message: str
) -> None:
    eps = make_dist("fake-pairs", {"pairer": f"""
        @specxform.hookimpl
        def specxform_add_teachers(registry):
            registry.add_teacher("toy_yam", target="yamnet", factory=dict, num_classes=521)

        @specxform.hookimpl
        def specxform_add_pairs(registry):
            {declaration}
    """})
    with pytest.warns(PluginLoadWarning) as record:
        loaded = _load(*eps)
    [warning] = record
    assert "plugin 'pairer' from distribution 'fake-pairs' failed in specxform_add_pairs" in str(
        warning.message
    )
    assert message in str(warning.message)
    assert "toy_yam" not in {t.name for t in loaded.registry.teachers()}  # rolled back too


# -- built-in failures -----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("raise ImportError('half-installed')\n", "failed to load: ImportError: half-installed"),
        ("""
            @specxform.hookimpl
            def specxform_add_students(registry):
                raise KeyError("bug")
         """, "failed in specxform_add_students: KeyError"),
    ],
)
def test_failing_builtin_raises(make_dist: MakeDist, source: str, what: str) -> None:
    eps = make_dist("specxform", {"core_bug": source})
    with pytest.raises(PluginError) as info:
        _load(*eps)
    assert f"plugin 'core_bug' from distribution 'specxform' {what}" in str(info.value)
    assert "a built-in plugin: please report this bug" in str(info.value)


# -- order ---------------------------------------------------------------------


def test_hooks_run_in_hook_order_across_plugins() -> None:
    """A pair can name a representation that a later-registered plugin provides."""

    class Pairs:
        @specxform.hookimpl
        def specxform_add_pairs(self, registry: specxform.Registry) -> None:
            registry.add_pair("early_rep", "pann")

    class Reps:
        @specxform.hookimpl
        def specxform_add_representations(self, registry: specxform.Registry) -> None:
            bark = registry.representation("bark")
            registry.add_representation(specxform.Representation(
                name="early_rep", framing=bark.framing, filterbank=bark.filterbank,
                scaling=bark.scaling,
            ))

    loaded = _load(extra=[("pairs_first", Pairs()), ("reps_later", Reps())])
    assert loaded.registry.pair("early_rep", "pann").origin == Origin("pairs_first")


def test_tryfirst_and_trylast_are_honoured() -> None:
    calls: list[str] = []

    def plugin(name: str, tryfirst: bool = False, trylast: bool = False) -> object:
        class Plugin:
            @specxform.hookimpl(tryfirst=tryfirst, trylast=trylast)
            def specxform_add_datasets(self, registry: specxform.Registry) -> None:
                calls.append(name)

        return Plugin()

    _load(extra=[("last", plugin("last", trylast=True)), ("plain", plugin("plain")),
                 ("first", plugin("first", tryfirst=True)), ("plain2", plugin("plain2"))])
    assert calls == ["first", "plain", "plain2", "last"]


# -- autoload switch -------------------------------------------------------------


@pytest.mark.parametrize(("value", "autoloads"), [
    ("1", False), ("true", False), ("yes", False), ("0", True), ("", True), ("false", True),
])
def test_disable_autoload_env_loads_only_builtins(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch, value: str, autoloads: bool
) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, value)
    eps = make_dist("fake-good", {"good": GOOD})
    loaded = load_plugins(entry_points=[*_builtin_entry_points(), *eps])
    assert ("good_rep" in _rep_names(loaded)) is autoloads
    assert all(p.builtin for p in loaded.plugins) is not autoloads


def test_disable_autoload_on_installed_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    loaded = load_plugins()
    assert loaded.plugins and all(p.builtin for p in loaded.plugins)
    assert {p.name for p in loaded.plugins} == {ep.name for ep in _builtin_entry_points()}


def test_autoload_argument_overrides_the_environment(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    eps = make_dist("fake-good", {"good": GOOD})
    loaded = load_plugins(entry_points=[*_builtin_entry_points(), *eps], autoload=True)
    assert "good_rep" in _rep_names(loaded)


# -- the example third-party package -------------------------------------------

CHECK_EXAMPLE = """
import contextlib, io, json, sys
import numpy as np, torch
from specxform.audio import load_audio
from specxform.cli.main import main
from specxform.representations.frontend import RepresentationTransform
from specxform.transcoders.pinv import PinvTranscoder
from specxform.plugins import get_registry, load_plugins
from specxform.testing import check_pair, check_representation

registry = get_registry()
octave, pann = registry.representation("octave"), registry.representation("pann")
check_representation(octave)
check_pair(octave, pann, methods=["pinv"])
audio, _ = load_audio(sys.argv[1], sample_rate=octave.sample_rate)
x = torch.from_numpy(audio)
levels = RepresentationTransform(octave)(x)
mel = PinvTranscoder(octave, pann)(levels)
true = RepresentationTransform(pann)(x)
with contextlib.redirect_stdout(io.StringIO()) as listing:  # `specxform list --json`
    status = main(["list", "--json"])
print(json.dumps({
    "plugins": [[p.name, p.distribution, p.version] for p in load_plugins().plugins],
    "builtins_only": [r.name for r in load_plugins(autoload=False).registry.representations()],
    "pairs": [p.name for p in registry.pairs()],
    "explicit": [p.name for p in registry.pairs() if p.explicit],
    "levels": list(levels.shape), "mel": list(mel.shape), "true": list(true.shape),
    "finite": bool(torch.isfinite(mel).all()),
    "corr": float(np.corrcoef(mel.flatten().numpy(), true.flatten().numpy())[0, 1]),
    "cli_status": status, "cli": json.loads(listing.getvalue()),
}))
"""


def test_example_package_installs_and_transcodes(tmp_path: Path, excerpt_files: list[Path]) -> None:
    """pip-install the example plugin into a folder; a fresh process then uses it.

    The process runs the contract checks, ``specxform list --json`` and a PINV
    transcoding of a real clip, with no change to specxform.
    """
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is needed to build the example package")
    source = tmp_path / "src"  # build from a copy: no build/ or egg-info in the checkout
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                   "__pycache__"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if k != DISABLE_AUTOLOAD_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    clip = next(f for f in excerpt_files if f.parent.name == "siren")
    out = subprocess.run([sys.executable, "-c", CHECK_EXAMPLE, str(clip)], env=env,
                         capture_output=True, text=True, check=True, timeout=300)
    result = json.loads(out.stdout)

    assert ["octave", "specxform-octave-bands", "0.1.0"] in result["plugins"]
    assert "octave" not in result["builtins_only"]
    assert {"octave->pann", "octave->yamnet"} <= set(result["pairs"])
    assert "octave->pann" in result["explicit"] and "octave->yamnet" not in result["explicit"]
    assert result["levels"] == [32, 9]  # 4 s at 32 kHz: ceil(128000 / 4000) frames, 9 octaves
    assert result["mel"] == result["true"] == [401, 64]  # 1 + 128000 // 320 PANN frames
    assert result["finite"]
    # Nine octaves cannot give the Mel's detail, but the PINV Mel must follow the
    # true one: over the 102 excerpt clips the correlation is 0.75 to 0.97 (median 0.93).
    assert result["corr"] > 0.7

    assert result["cli_status"] == 0
    assert "octave" in [r["name"] for r in result["cli"]["representations"]]
    cli_pairs = {f"{p['source']}->{p['target']}" for p in result["cli"]["pairs"]}
    assert {"octave->pann", "octave->yamnet"} <= cli_pairs


def _imports(source: str) -> list[tuple[str, str, int]]:
    """(module, name, line) of every import, at any depth (lazy imports in functions too)."""
    imported: list[tuple[str, str, int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            imported += [(alias.name, "", node.lineno) for alias in node.names]
    return imported


def _private_core_imports(source: str) -> list[str]:
    """The imports of core names outside the public API (``specxform.__all__`` and
    ``specxform.PUBLIC_MODULES``), and of underscored names from public modules."""
    bad = []
    for module, name, line in _imports(source):
        if module.split(".")[0] != "specxform":
            continue  # specxform_builtins, torch, ...: not the core
        if module == "specxform" and name:
            public = name in specxform.__all__ or f"specxform.{name}" in specxform.PUBLIC_MODULES
            if not public:
                bad.append(f"line {line}: from specxform import {name}")
        elif module not in specxform.PUBLIC_MODULES:
            bad.append(f"line {line}: {module} (private module)")
        elif name.startswith("_"):
            bad.append(f"line {line}: {module}.{name} (private name)")
    return bad


def test_example_package_uses_only_the_public_api() -> None:
    """Every specxform name the plugin imports is exported by ``import specxform``."""
    source = (EXAMPLE / "src" / "specxform_octave_bands" / "__init__.py").read_text()
    ours = [(m, n) for m, n, _ in _imports(source) if m.startswith("specxform")]
    assert ("specxform", "") in ours
    assert all(module == "specxform" for module, _ in ours), ours
    assert {name for _, name in ours if name} <= set(specxform.__all__)
    assert not _private_core_imports(source)


BUILTINS = ROOT / "plugins" / "specxform_builtins"


@pytest.mark.parametrize("module", sorted(p.relative_to(BUILTINS).as_posix()
                                          for p in BUILTINS.rglob("*.py")))
def test_builtin_plugins_use_only_the_public_api(module: str) -> None:
    """The built-ins are held to the rule of third-party plugins: they import the core only
    through ``specxform.__all__`` and the modules of ``specxform.PUBLIC_MODULES``."""
    bad = _private_core_imports((BUILTINS / module).read_text(encoding="utf-8"))
    assert not bad, f"plugins/specxform_builtins/{module} imports private core code: {bad}"


def test_the_public_api_check_catches_private_imports() -> None:
    source = ("from specxform.transcoders.pinv import PinvTranscoder\n"
              "def f():\n    from specxform import loudness\n"
              "from specxform.weights import _remember\n"
              "from specxform.teachers.base import Teacher\nfrom specxform import Registry\n")
    assert sorted(_private_core_imports(source)) == [
        "line 1: specxform.transcoders.pinv (private module)",
        "line 3: from specxform import loudness",
        "line 4: specxform.weights._remember (private name)"]


def test_public_modules_exist_and_the_core_imports_no_plugin() -> None:
    for module in specxform.PUBLIC_MODULES:
        assert importlib.util.find_spec(module) is not None, module
    core = ROOT / "specxform"
    offenders = [f"{path.relative_to(ROOT)}: {m}"
                 for path in sorted(core.rglob("*.py"))
                 for m, _, _ in _imports(path.read_text(encoding="utf-8"))
                 if m.split(".")[0] == "specxform_builtins"]
    assert not offenders, f"the core imports the built-in plugins: {offenders}"


def test_no_warnings_when_everything_loads(builtins: EntryPoints) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_plugins(entry_points=builtins)


# -- wrappers and failures through the hook callers ----------------------------------


@pytest.mark.parametrize("flag", ["hookwrapper", "wrapper"])
def test_a_wrapper_plugin_is_refused_at_registration_naming_it(flag: str) -> None:
    ran: list[str] = []

    class Wrapping:
        @specxform.hookimpl(**{flag: True})
        def specxform_add_datasets(self, registry: specxform.Registry):  # type: ignore[no-untyped-def]
            ran.append("before")
            yield
            ran.append("after")

    with pytest.raises(PluginError, match=r"plugin 'wrapping' implements "
                       r"'specxform_add_datasets' as a wrapper.*would never run"):
        _load(extra=[("wrapping", Wrapping())])
    assert ran == []


def test_a_third_party_wrapper_is_skipped_with_a_warning_naming_it(
    make_dist: MakeDist, base_reps: set[str]
) -> None:
    eps = make_dist("fake-wrap", {"wrap": """
        @specxform.hookimpl
        def specxform_add_representations(registry):
            registry.add_representation(toy("wrap_rep"))

        @specxform.hookimpl(hookwrapper=True)
        def specxform_add_students(registry):
            yield
    """})
    with pytest.warns(PluginLoadWarning, match=r"plugin 'wrap' from distribution 'fake-wrap' "
                      r"failed to load: PluginError: .*'specxform_add_students' as a wrapper"):
        loaded = _load(*eps)
    assert "wrap" not in {p.name for p in loaded.plugins}
    assert _rep_names(loaded) == base_reps  # its plain hook was not run either


def test_an_ordinary_failing_extra_plugin_is_still_named() -> None:
    class Failing:
        @specxform.hookimpl
        def specxform_add_datasets(self, registry: specxform.Registry) -> None:
            raise ValueError("no such folder")

    with pytest.warns(PluginLoadWarning, match=r"plugin 'failing' failed in "
                      r"specxform_add_datasets: ValueError: no such folder") as record:
        loaded = _load(extra=[("failing", Failing())])
    assert len(record) == 1
    assert "failing" not in {p.name for p in loaded.plugins}
    assert any("plugin 'failing'" in failure for failure in loaded.failures)
