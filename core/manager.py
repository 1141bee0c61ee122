"""The plugin manager: entry-point discovery, validation of records, and the registry.

Plugins are found through the ``plugtrt`` entry-point group, lazily and once per process
(:func:`default_registry`), never as an import side effect. Built-in plugins take the same
route as third-party ones. Environment switches, as pytest and llm have them:

- ``PLUGTRT_DISABLE_PLUGIN_AUTOLOAD=1``: load the built-in plugins only;
- ``PLUGTRT_LOAD_PLUGINS=dist1,dist2``: load third-party plugins of these distributions only;
- ``PLUGTRT_BLOCK_PLUGINS=name1,name2``: skip these entry points (built-ins included);
- ``PLUGTRT_STRICT_PLUGINS=1``: a third-party plugin that fails to load raises instead of warning;
- ``PLUGTRT_TRACE_HOOKS=1``: print every hook call.
"""
from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
import warnings
from collections import defaultdict
from typing import Any

import attrs
import pluggy

from plugtrt import hookspecs
from plugtrt.errors import PluginConflictError, PluginLoadError
from plugtrt.records import (
    ConverterSpec,
    DecompositionSpec,
    EngineStoreSpec,
    LoweringPassSpec,
    PartitionerSpec,
    RuntimeSpec,
)

logger = logging.getLogger("plugtrt")

GROUP = "plugtrt"
BUILTIN_DISTRIBUTION = "plugtrt"

RECORD_TYPES: dict[str, type] = {
    "plugtrt_decompositions": DecompositionSpec,
    "plugtrt_lowering_passes": LoweringPassSpec,
    "plugtrt_converters": ConverterSpec,
    "plugtrt_partitioners": PartitionerSpec,
    "plugtrt_runtimes": RuntimeSpec,
    "plugtrt_engine_stores": EngineStoreSpec,
}


@attrs.frozen
class Registered:
    """A record and the plugin (entry-point name) that yielded it."""

    record: Any
    plugin: str


def new_plugin_manager() -> pluggy.PluginManager:
    """A bare manager with plugtrt's hook specs and no plugins: what hermetic tests use."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs.PlugtrtSpecs)
    return pm


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    return None if raw is None else {item.strip() for item in raw.split(",") if item.strip()}


def load_entry_points(pm: pluggy.PluginManager, *, strict: bool | None = None) -> list[str]:
    """Register every ``plugtrt`` entry point on ``pm``; returns the names registered.

    A built-in that fails to load always raises; a third-party one warns and is skipped,
    unless ``strict`` (default: ``PLUGTRT_STRICT_PLUGINS``) asks for an error.
    """
    if strict is None:
        strict = os.environ.get("PLUGTRT_STRICT_PLUGINS", "") not in ("", "0")
    builtin_only = os.environ.get("PLUGTRT_DISABLE_PLUGIN_AUTOLOAD", "") not in ("", "0")
    allowed = _env_list("PLUGTRT_LOAD_PLUGINS")
    blocked = _env_list("PLUGTRT_BLOCK_PLUGINS") or set()
    loaded = []
    for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "<unknown distribution>"
        builtin = dist == BUILTIN_DISTRIBUTION
        if ep.name in blocked or pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        if not builtin and (builtin_only or (allowed is not None and dist not in allowed)):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:
            version = ep.dist.version if ep.dist is not None else "?"
            message = (f"plugin {ep.name!r} from {dist} {version} failed to load: {exc!r}. "
                       f"Fix or uninstall {dist}, or skip it with PLUGTRT_BLOCK_PLUGINS={ep.name}")
            if builtin or strict:
                raise PluginLoadError(message) from exc
            warnings.warn(message, stacklevel=2)
            continue
        loaded.append(ep.name)
    pm.check_pending()
    if os.environ.get("PLUGTRT_TRACE_HOOKS", "") not in ("", "0"):
        pm.trace.root.setwriter(print)
        pm.enable_tracing()
    return loaded


def collect(pm: pluggy.PluginManager, hook_name: str) -> tuple[Registered, ...]:
    """Every record of one registration hook, validated, sorted by name.

    Collects all problems (wrong record types, duplicate names) and raises once, naming
    each plugin involved and what to do.
    """
    record_type = RECORD_TYPES[hook_name]
    seen: dict[str, Registered] = {}
    problems: list[str] = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        try:
            records = list(impl.function() or ())
        except Exception as exc:
            raise PluginLoadError(f"plugin {impl.plugin_name!r}: {hook_name}() raised {exc!r}") from exc
        for rec in records:
            if not isinstance(rec, record_type):
                problems.append(f"  - plugin {impl.plugin_name!r} yielded {rec!r} "
                                f"({type(rec).__name__}); {hook_name} yields {record_type.__name__}")
                continue
            first = seen.setdefault(rec.name, Registered(rec, impl.plugin_name))
            if first.record is not rec:
                problems.append(f"  - name {rec.name!r} from {first.plugin} and {impl.plugin_name}")
    if problems:
        raise PluginConflictError(
            f"{hook_name}: invalid registrations:\n" + "\n".join(problems)
            + "\nRecord names must be unique: rename one, or block one plugin with "
            "PLUGTRT_BLOCK_PLUGINS=<plugin>.")
    return tuple(sorted(seen.values(), key=lambda r: r.record.name))


class PluginRegistry:
    """All records of one plugin manager, validated and indexed; built once, then read-only."""

    def __init__(self, pm: pluggy.PluginManager):
        self.plugin_manager = pm
        self.decompositions = collect(pm, "plugtrt_decompositions")
        self.lowering_passes = tuple(sorted(
            collect(pm, "plugtrt_lowering_passes"), key=lambda r: (r.record.order, r.record.name)))
        self.partitioners = {r.record.name: r for r in collect(pm, "plugtrt_partitioners")}
        self.runtimes = {r.record.name: r for r in collect(pm, "plugtrt_runtimes")}
        self.engine_stores = {r.record.name: r for r in collect(pm, "plugtrt_engine_stores")}
        self.converters = self._index_converters(collect(pm, "plugtrt_converters"))

    @staticmethod
    def _index_converters(found: tuple[Registered, ...]) -> dict[Any, tuple[Registered, ...]]:
        by_target: dict[Any, list[Registered]] = defaultdict(list)
        for reg in found:
            by_target[reg.record.target].append(reg)
        clashes = []
        for target, regs in by_target.items():
            regs.sort(key=lambda r: (-r.record.priority, r.record.name))
            for a, b in zip(regs, regs[1:]):
                if a.record.priority == b.record.priority and a.plugin != b.plugin:
                    clashes.append(f"  - {target} at priority {a.record.priority}: "
                                   f"{a.record.name!r} from {a.plugin} and {b.record.name!r} from {b.plugin}")
        if clashes:
            raise PluginConflictError(
                "plugtrt_converters: two plugins offer the same target at the same priority:\n"
                + "\n".join(clashes)
                + "\nA plugin that means to replace a converter gives its ConverterSpec a higher "
                "priority; otherwise block one plugin with PLUGTRT_BLOCK_PLUGINS=<plugin>.")
        return {t: tuple(regs) for t, regs in by_target.items()}

    def converter_for(self, node, settings) -> Registered | None:
        """The first converter (by priority, then name) that accepts ``node``, or None."""
        for reg in self.converters.get(node.target, ()):
            try:
                accepted = reg.record.is_supported(node, settings)
            except Exception as exc:
                raise PluginLoadError(
                    f"plugin {reg.plugin!r}: is_supported of converter {reg.record.name!r} raised "
                    f"{exc!r} on node {node.name} ({node.target})") from exc
            if accepted:
                return reg
            logger.debug("converter %s (%s) declined node %s", reg.record.name, reg.plugin, node.name)
        return None

    def pick(self, kind: str, name: str) -> Registered:
        """The partitioner, runtime or engine store called ``name``, or an error listing the
        ones installed."""
        table, option = {"partitioner": (self.partitioners, "partitioner"),
                         "runtime": (self.runtimes, "runtime"),
                         "engine store": (self.engine_stores, "engine_cache_store")}[kind]
        if name not in table:
            raise PluginLoadError(
                f"no {kind} named {name!r} is registered; installed: {', '.join(sorted(table)) or 'none'}. "
                f"Set option {option!r} to one of these, or install the plugin that provides {name!r}.")
        return table[name]


_lock = threading.Lock()
_default: PluginRegistry | None = None


def default_registry() -> PluginRegistry:
    """The process-wide registry: entry points loaded on first use, then reused."""
    global _default
    with _lock:
        if _default is None:
            pm = new_plugin_manager()
            load_entry_points(pm)
            _default = PluginRegistry(pm)
        return _default


def registry_from(*plugins: object | tuple[str, object]) -> PluginRegistry:
    """A registry of exactly these plugins (module or object, or ``(name, plugin)``), no entry points."""
    pm = new_plugin_manager()
    for plugin in plugins:
        name, obj = plugin if isinstance(plugin, tuple) else (getattr(plugin, "__name__", None), plugin)
        pm.register(obj, name=name)
    pm.check_pending()
    return PluginRegistry(pm)


