"""Plugin loading: the only code that calls the ``specxform_add_*`` hooks.

Entry points of the group ``specxform`` are read with :mod:`importlib.metadata`
(built-ins included: they are declared in specxform's own ``pyproject.toml``
exactly as a third-party package declares its plugins). A third-party plugin
that fails to import, or whose hook raises, is skipped with a
:class:`~specxform.errors.PluginLoadWarning` naming it and its distribution,
and everything it registered, in any hook, is rolled back; a failing built-in
is a bug and raises :class:`~specxform.errors.PluginError`.

Set ``SPECXFORM_DISABLE_PLUGIN_AUTOLOAD=1`` to load only the built-ins.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import os
import warnings
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

import attrs
import pluggy

from specxform import hookspecs
from specxform.errors import PluginError, PluginLoadWarning
from specxform.registry import Origin, Registry

ENTRY_POINT_GROUP = "specxform"
BUILTIN_DISTRIBUTION = "specxform"
DISABLE_AUTOLOAD_ENV = "SPECXFORM_DISABLE_PLUGIN_AUTOLOAD"
_FALSE_VALUES = ("", "0", "false", "no", "off")


@attrs.frozen
class PluginInfo:
    """What ``specxform plugins`` reports about one loaded plugin."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    builtin: bool


@attrs.frozen
class LoadedPlugins:
    """The filled registry, the plugins that loaded and the ones that failed."""

    registry: Registry
    plugins: tuple[PluginInfo, ...]
    failures: tuple[str, ...]


class _HookFailure(Exception):
    """A hook implementation raised: the plugin to blame, the hook and the error."""

    def __init__(self, plugin: str, hook: str, error: Exception) -> None:
        super().__init__(plugin, hook, error)
        self.plugin, self.hook, self.error = plugin, hook, error


def _distribution(ep: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _autoload_from_env() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() in _FALSE_VALUES


def _hook_names(pm: pluggy.PluginManager, plugin: Any) -> tuple[str, ...]:
    implemented = {caller.name for caller in pm.get_hookcallers(plugin) or ()}
    return tuple(name for name in hookspecs.HOOK_ORDER if name in implemented)


def _wrappers(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    """The hooks ``plugin`` implements as a pluggy (hook)wrapper."""
    return sorted(
        caller.name
        for caller in pm.get_hookcallers(plugin) or ()
        for impl in caller.get_hookimpls()
        if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper)
    )


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """Register ``plugin``, refusing hooks that would otherwise be silently ignored.

    Misspelt hooks, undecorated ones and wrappers (``hookwrapper=True`` or
    ``wrapper=True``) are refused: :func:`_run_hooks` calls each
    implementation itself, to attribute every entry to its plugin, so a
    wrapper would be listed but never run.
    """
    pm.register(plugin, name=name)
    implemented = {caller.name for caller in pm.get_hookcallers(plugin) or ()}
    unknown = sorted(implemented - set(hookspecs.HOOK_ORDER))
    undecorated = [
        hook for hook in hookspecs.HOOK_ORDER
        if hook not in implemented and callable(getattr(plugin, hook, None))
    ]
    wrappers = _wrappers(pm, plugin)
    if not (unknown or undecorated or wrappers):
        return
    pm.unregister(plugin)
    if wrappers:
        raise PluginError(
            f"plugin {name!r} implements {', '.join(map(repr, wrappers))} as a wrapper "
            "(hookwrapper=True or wrapper=True); specxform calls each hook implementation "
            "directly, so a wrapper would never run. Register with a plain "
            "@specxform.hookimpl (tryfirst/trylast set the order)."
        )
    if unknown:
        hints = []
        for hook in unknown:
            close = difflib.get_close_matches(hook, hookspecs.HOOK_ORDER, n=1)
            hints.append(f"{hook!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise PluginError(
            f"implements unknown hooks {', '.join(hints)}; "
            f"the hooks are {', '.join(hookspecs.HOOK_ORDER)}."
        )
    raise PluginError(
        f"defines {', '.join(map(repr, undecorated))} without @specxform.hookimpl, "
        "so it would never be called; decorate it."
    )


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    unique = {(ep.name, ep.value): ep for ep in eps}  # an egg-link can list a dist twice
    return sorted(
        unique.values(), key=lambda ep: (_distribution(ep)[0] != BUILTIN_DISTRIBUTION, ep.name)
    )


def _call_order(impls: Sequence[pluggy.HookImpl]) -> list[pluggy.HookImpl]:
    """Registration order, with ``tryfirst`` implementations first and ``trylast`` last.

    pluggy lists implementations as trylast, plain (registration order),
    tryfirst, and calls them last to first; specxform calls plain ones first
    to first (built-ins before third parties), so it sorts instead.
    """
    return sorted(impls, key=lambda impl: 0 if impl.tryfirst else 2 if impl.trylast else 1)


def _run_hooks(pm: pluggy.PluginManager, origins: dict[str, Origin]) -> Registry:
    """Call every hook, in :data:`~specxform.hookspecs.HOOK_ORDER`, into a fresh registry.

    Each implementation is called here (not through ``pm.hook``) so that every
    entry is attributed to its plugin and a failure names the plugin to blame;
    this is why :func:`_register` refuses wrapper implementations.
    """
    registry = Registry()
    for hook_name in hookspecs.HOOK_ORDER:
        for impl in _call_order(getattr(pm.hook, hook_name).get_hookimpls()):
            try:
                with registry.registering_as(origins[impl.plugin_name]):
                    impl.function(registry=registry)
            except Exception as exc:
                raise _HookFailure(impl.plugin_name, hook_name, exc) from exc
    return registry


def load_plugins(
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    *,
    extra: Iterable[tuple[str, ModuleType | object]] = (),
    autoload: bool | None = None,
) -> LoadedPlugins:
    """Load plugins and run every hook into a fresh :class:`Registry`.

    Parameters
    ----------
    entry_points : iterable of EntryPoint, optional
        Defaults to the installed entry points of the group ``specxform``
        (built-ins first, then by name). An entry point whose distribution is
        ``specxform`` is a built-in.
    extra : iterable of (name, plugin)
        Plugin objects (modules, instances) to register after the entry
        points, for tests and notebooks; they count as third-party, and one
        with a misspelt or undecorated hook raises PluginError at once.
    autoload : bool, optional
        Load third-party entry points; defaults to true unless
        ``SPECXFORM_DISABLE_PLUGIN_AUTOLOAD`` is set to a true value
        (anything but empty, ``0``, ``false``, ``no``, ``off``).

    Returns
    -------
    LoadedPlugins
        A registry holding exactly what the plugins that loaded registered.

    Raises
    ------
    PluginError
        A built-in plugin failed (a bug in specxform).

    Warns
    -----
    PluginLoadWarning
        A third-party plugin failed to load or raised in a hook; it is
        dropped with all its registrations.
    """
    if autoload is None:
        autoload = _autoload_from_env()
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    state = _Loaded(pm)
    for ep in _entry_points() if entry_points is None else entry_points:
        state.add_entry_point(ep, autoload=autoload)
    for name, plugin in extra:
        _register(pm, plugin, name)
        state.add(name, Origin(name), PluginInfo(name, None, None, _hook_names(pm, plugin), False))
    while True:
        # A failing plugin is dropped and every hook re-run without it, so that
        # nothing it registered (in any hook) survives, nor anything another
        # plugin built on it: that plugin then fails in turn, with its own name.
        try:
            registry = _run_hooks(pm, state.origins)
        except _HookFailure as failure:
            state.drop(failure.plugin, f"failed in {failure.hook}", failure.error)
            continue
        return LoadedPlugins(registry, tuple(state.infos.values()), tuple(state.failures))


class _Loaded:
    """Book-keeping of :func:`load_plugins`: who is registered, who failed."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.origins: dict[str, Origin] = {}
        self.infos: dict[str, PluginInfo] = {}
        self.failures: list[str] = []

    def add(self, name: str, origin: Origin, info: PluginInfo) -> None:
        self.origins[name], self.infos[name] = origin, info

    def add_entry_point(self, ep: importlib.metadata.EntryPoint, *, autoload: bool) -> None:
        dist, version = _distribution(ep)
        builtin = dist == BUILTIN_DISTRIBUTION
        if not (builtin or autoload):
            return
        origin = Origin(ep.name, dist)
        try:
            if ep.name in self.origins:
                raise PluginError(
                    f"the entry-point name {ep.name!r} is already used by "
                    f"{self.origins[ep.name]}; rename one of them."
                )
            _register(self.pm, ep.load(), ep.name)
        except Exception as exc:
            _fail(origin, "failed to load", exc, builtin, self.failures)
            return
        hooks = _hook_names(self.pm, self.pm.get_plugin(ep.name))
        self.add(ep.name, origin, PluginInfo(ep.name, dist, version, hooks, builtin))

    def drop(self, name: str, what: str, exc: Exception) -> None:
        info, origin = self.infos.pop(name), self.origins.pop(name)
        self.pm.unregister(name=name)
        _fail(origin, what, exc, info.builtin, self.failures)


def _fail(origin: Origin, what: str, exc: Exception, builtin: bool, failures: list[str]) -> None:
    message = f"specxform {origin} {what}: {type(exc).__name__}: {exc}"
    if builtin:
        raise PluginError(message + " (a built-in plugin: please report this bug)") from exc
    failures.append(message)
    warnings.warn(
        message + " — it was skipped; fix or uninstall it, or set "
        f"{DISABLE_AUTOLOAD_ENV}=1 to load only the built-ins.",
        PluginLoadWarning,
        stacklevel=4,  # _fail, _Loaded, load_plugins, then the caller
    )


@functools.lru_cache(maxsize=1)
def loaded() -> LoadedPlugins:
    """The process-wide plugins, loaded once."""
    return load_plugins()


def get_registry() -> Registry:
    """The process-wide registry filled by every installed plugin."""
    return loaded().registry
