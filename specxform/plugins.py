"""Plugin loading: the only code that calls the ``specxform_add_*`` hooks.

Entry points of the group ``specxform`` are read with :mod:`importlib.metadata`
(built-ins included: they are declared in specxform's own ``pyproject.toml``
exactly as a third-party package declares its plugins). A third-party plugin
that fails to import, or whose hook raises, is skipped with a
:class:`~specxform.errors.PluginLoadWarning` naming it and its distribution,
and whatever it registered is rolled back; a failing built-in is a bug and
raises :class:`~specxform.errors.PluginError`.

Set ``SPECXFORM_DISABLE_PLUGIN_AUTOLOAD=1`` to load only the built-ins.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import warnings
from collections.abc import Iterable
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


def _distribution(ep: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _hook_names(plugin: Any) -> tuple[str, ...]:
    return tuple(name for name in hookspecs.HOOK_ORDER if callable(getattr(plugin, name, None)))


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    unique = {(ep.name, ep.value): ep for ep in eps}  # an egg-link can list a dist twice
    return sorted(
        unique.values(), key=lambda ep: (_distribution(ep)[0] != BUILTIN_DISTRIBUTION, ep.name)
    )


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
        Defaults to the installed entry points of the group ``specxform``.
    extra : iterable of (name, plugin)
        Plugin objects to register after the entry points (tests, notebooks).
    autoload : bool, optional
        Load third-party entry points; defaults to true unless
        ``SPECXFORM_DISABLE_PLUGIN_AUTOLOAD`` is set.
    """
    if autoload is None:
        autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    origins: dict[str, Origin] = {}
    infos: dict[str, PluginInfo] = {}
    failures: list[str] = []

    for ep in _entry_points() if entry_points is None else entry_points:
        dist, version = _distribution(ep)
        builtin = dist == BUILTIN_DISTRIBUTION
        if not (builtin or autoload):
            continue
        origin = Origin(ep.name, dist)
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:
            _fail(origin, "failed to load", exc, builtin, failures)
            continue
        origins[ep.name] = origin
        infos[ep.name] = PluginInfo(ep.name, dist, version, _hook_names(plugin), builtin)
    for name, plugin in extra:
        pm.register(plugin, name=name)
        origins[name] = Origin(name)
        infos[name] = PluginInfo(name, None, None, _hook_names(plugin), False)

    registry = Registry()
    for hook_name in hookspecs.HOOK_ORDER:
        # Call each implementation ourselves (in registration order) so that
        # every entry is attributed to its plugin and one failure stays local.
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name not in infos:
                continue  # dropped after an earlier failure
            origin = origins[impl.plugin_name]
            try:
                with registry.registering_as(origin):
                    impl.function(registry=registry)
            except Exception as exc:
                builtin = infos[impl.plugin_name].builtin
                _fail(origin, f"failed in {hook_name}", exc, builtin, failures)
                del infos[impl.plugin_name]
    return LoadedPlugins(registry, tuple(infos.values()), tuple(failures))


def _fail(origin: Origin, what: str, exc: Exception, builtin: bool, failures: list[str]) -> None:
    message = f"specxform {origin} {what}: {type(exc).__name__}: {exc}"
    if builtin:
        raise PluginError(message + " (a built-in plugin: please report this bug)") from exc
    failures.append(message)
    warnings.warn(
        message + " — it was skipped; fix or uninstall it, or set "
        f"{DISABLE_AUTOLOAD_ENV}=1 to load only the built-ins.",
        PluginLoadWarning,
        stacklevel=3,
    )


@functools.lru_cache(maxsize=1)
def loaded() -> LoadedPlugins:
    """The process-wide plugins, loaded once."""
    return load_plugins()


def get_registry() -> Registry:
    """The process-wide registry filled by every installed plugin."""
    return loaded().registry
