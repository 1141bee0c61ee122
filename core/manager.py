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
import re
import threading
import warnings
from collections import defaultdict
from typing import Any

import attrs
import pluggy

from plugtrt import hookspecs
from plugtrt.conversion import node_tensors
from plugtrt.errors import PluginConflictError, PluginLoadError
from plugtrt.shapes import is_dynamic
from plugtrt.records import (
    CommandSpec,
    ConverterSpec,
    DecompositionSpec,
    LayerEvaluatorSpec,
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
    "plugtrt_layer_evaluators": LayerEvaluatorSpec,
    "plugtrt_commands": CommandSpec,
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


def _strict_from_env() -> bool:
    return os.environ.get("PLUGTRT_STRICT_PLUGINS", "") not in ("", "0")


def is_builtin(plugin: str) -> bool:
    """Built-in plugins are plugtrt's own entry points, all named ``plugtrt.<folder>.<module>``."""
    return plugin.startswith("plugtrt.")


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    return None if raw is None else {item.strip() for item in raw.split(",") if item.strip()}


def normalize_distribution(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Plugtrt_Example`` -> ``plugtrt-example``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def load_entry_points(pm: pluggy.PluginManager, *, strict: bool | None = None,
                      distributions: frozenset[str] | None = None,
                      skipped: dict[str, str] | None = None) -> list[str]:
    """Register every ``plugtrt`` entry point on ``pm``; returns the names registered, and
    notes in ``skipped`` each entry point left out, with why (``python -m plugtrt plugins``).

    A built-in that fails to load always raises; a third-party one warns and is skipped,
    unless ``strict`` (default: ``PLUGTRT_STRICT_PLUGINS``) asks for an error.
    ``distributions`` limits loading to the entry points of these distributions (hermetic tests;
    names as :func:`normalize_distribution` spells them).
    """
    if strict is None:
        strict = _strict_from_env()
    builtin_only = os.environ.get("PLUGTRT_DISABLE_PLUGIN_AUTOLOAD", "") not in ("", "0")
    allowed = _env_list("PLUGTRT_LOAD_PLUGINS")
    blocked = _env_list("PLUGTRT_BLOCK_PLUGINS") or set()
    loaded = []
    for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "<unknown distribution>"
        builtin = dist == BUILTIN_DISTRIBUTION
        notes = {} if skipped is None else skipped
        if ep.name in blocked or pm.is_blocked(ep.name):
            notes[ep.name] = f"from {dist}: blocked (PLUGTRT_BLOCK_PLUGINS)"
            continue
        if pm.has_plugin(ep.name):
            continue
        if distributions is not None and normalize_distribution(dist) not in distributions:
            continue
        if not builtin and builtin_only:
            notes[ep.name] = f"from {dist}: PLUGTRT_DISABLE_PLUGIN_AUTOLOAD loads built-ins only"
            continue
        if not builtin and allowed is not None and dist not in allowed:
            notes[ep.name] = f"from {dist}: not in PLUGTRT_LOAD_PLUGINS"
            continue
        try:
            pm.register(ep.load(), name=ep.name)
            pm.check_pending()  # a misspelt hook name (plugtrt_convertors) does nothing otherwise
        except Exception as exc:
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            version = ep.dist.version if ep.dist is not None else "?"
            message = (f"plugin {ep.name!r} from {dist} {version} failed to load: {exc}. "
                       f"Fix or uninstall {dist}, or skip it with PLUGTRT_BLOCK_PLUGINS={ep.name}")
            if builtin or strict:
                raise PluginLoadError(message, (ep.name,)) from exc
            warnings.warn(message, stacklevel=2)
            notes[ep.name] = message
            continue
        loaded.append(ep.name)
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
    culprits: set[str] = set()
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        try:
            records = list(impl.function() or ())
        except Exception as exc:
            raise PluginLoadError(f"plugin {impl.plugin_name!r}: {hook_name}() raised {exc!r}",
                                  (impl.plugin_name,)) from exc
        for rec in records:
            if not isinstance(rec, record_type):
                problems.append(f"  - plugin {impl.plugin_name!r} yielded {rec!r} "
                                f"({type(rec).__name__}); {hook_name} yields {record_type.__name__}")
                culprits.add(impl.plugin_name)
                continue
            first = seen.setdefault(rec.name, Registered(rec, impl.plugin_name))
            if first.record is not rec:
                problems.append(f"  - name {rec.name!r} from {first.plugin} and {impl.plugin_name}")
                culprits.update((first.plugin, impl.plugin_name))
    if problems:
        raise PluginConflictError(
            f"{hook_name}: invalid registrations:\n" + "\n".join(problems)
            + "\nRecords must have the hook's type and unique names: fix or rename them, or "
            "block the plugin with PLUGTRT_BLOCK_PLUGINS=<plugin>.", tuple(sorted(culprits)))
    return tuple(sorted(seen.values(), key=lambda r: r.record.name))


class PluginRegistry:
    """All records of one plugin manager, validated and indexed; built once, then read-only.

    A third-party plugin that breaks a contract (a hook that raises, a record of the wrong type,
    a name or target it shares with another plugin at equal priority) is unregistered with a
    warning naming it, and the registry is built from the rest; with ``strict`` (default:
    ``PLUGTRT_STRICT_PLUGINS``) it raises instead. A broken built-in always raises.
    """

    def __init__(self, pm: pluggy.PluginManager, *, strict: bool | None = None,
                 skipped: dict[str, str] | None = None):
        strict = _strict_from_env() if strict is None else strict
        self.skipped: dict[str, str] = dict(skipped or {})
        """Plugins left out, with why: not loaded (blocked, not allowed, failed to import), or
        unregistered here for a broken registration."""
        while True:
            try:
                self._build(pm)
                return
            except PluginLoadError as exc:
                third_party = [p for p in exc.plugins if not is_builtin(p) and pm.has_plugin(p)]
                if strict or not third_party:
                    raise
                for plugin in third_party:
                    pm.unregister(name=plugin)
                    self.skipped[plugin] = str(exc)
                warnings.warn(f"plugtrt: skipping plugin(s) {', '.join(third_party)}: {exc}",
                              stacklevel=2)

    def _build(self, pm: pluggy.PluginManager) -> None:
        self.plugin_manager = pm
        self.decompositions = collect(pm, "plugtrt_decompositions")
        self.lowering_passes = tuple(sorted(
            collect(pm, "plugtrt_lowering_passes"), key=lambda r: (r.record.order, r.record.name)))
        self.partitioners = {r.record.name: r for r in collect(pm, "plugtrt_partitioners")}
        self.runtimes = {r.record.name: r for r in collect(pm, "plugtrt_runtimes")}
        self.engine_stores = {r.record.name: r for r in collect(pm, "plugtrt_engine_stores")}
        self.commands = {r.record.name: r for r in collect(pm, "plugtrt_commands")}
        self.converters = _by_priority(collect(pm, "plugtrt_converters"), "target", "plugtrt_converters")
        evaluators = _by_priority(collect(pm, "plugtrt_layer_evaluators"), "layer_type",
                                  "plugtrt_layer_evaluators")
        self.layer_evaluators = {kind: regs[0] for kind, regs in evaluators.items()}
        """Per layer type (or ``PLUGIN_V3:<name>``), the evaluator the reference runtime uses."""

    def converter_for(self, node, settings) -> Registered | None:
        """The first converter (by priority, then name) that accepts ``node``, or None.

        A validator that raises has declined: the node goes to the next candidate (or stays in
        PyTorch), with a warning naming the plugin, since a broken plugin must not stop a compile.
        """
        dynamic = any(is_dynamic(t.shape) for t in node_tensors(node))
        for reg in self.converters.get(node.target, ()):
            if dynamic and not reg.record.supports_dynamic_shapes:
                logger.debug("converter %s (%s) takes static shapes only; node %s has dynamic sizes",
                             reg.record.name, reg.plugin, node.name)
                continue
            try:
                accepted = reg.record.is_supported(node, settings)
            except Exception as exc:
                warnings.warn(
                    f"plugtrt: is_supported of converter {reg.record.name!r} (plugin {reg.plugin!r}) "
                    f"raised {exc!r} on node {node.name} ({node.target}); treating it as declined. "
                    f"Fix the plugin, or block it with PLUGTRT_BLOCK_PLUGINS={reg.plugin}",
                    stacklevel=2)
                accepted = False
            if accepted:
                return reg
            logger.debug("converter %s (%s) declined node %s%s", reg.record.name, reg.plugin, node.name,
                         f": {accepted.reason}" if hasattr(accepted, "reason") else "")
        return None

    def decline_reasons(self, node, settings) -> list[str]:
        """The reasons the converters for ``node``'s op gave for declining it (validators that
        return a :class:`~plugtrt.conversion.Declined`), for the coverage report."""
        reasons = []
        for reg in self.converters.get(node.target, ()):
            try:
                verdict = reg.record.is_supported(node, settings)
            except Exception:  # noqa: BLE001 - converter_for already warned about it
                continue
            if not verdict and hasattr(verdict, "reason"):
                reasons.append(verdict.reason)
        return reasons

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


def _by_priority(found: tuple[Registered, ...], key: str, hook: str) -> dict[Any, tuple[Registered, ...]]:
    """Records grouped by ``key`` (a converter's target, an evaluator's layer type), each group
    ordered by (-priority, name); equal priorities from two plugins are a load-time error."""
    groups: dict[Any, list[Registered]] = defaultdict(list)
    for reg in found:
        groups[getattr(reg.record, key)].append(reg)
    clashes: list[str] = []
    culprits: set[str] = set()
    for value, regs in groups.items():
        regs.sort(key=lambda r: (-r.record.priority, r.record.name))
        for a, b in zip(regs, regs[1:]):
            if a.record.priority == b.record.priority and a.plugin != b.plugin:
                clashes.append(f"  - {value} at priority {a.record.priority}: "
                               f"{a.record.name!r} from {a.plugin} and {b.record.name!r} from {b.plugin}")
                culprits.update((a.plugin, b.plugin))
    if clashes:
        raise PluginConflictError(
            f"{hook}: two plugins offer the same {key} at the same priority:\n" + "\n".join(clashes)
            + "\nA plugin that means to replace another's record gives its own a higher "
            "priority; otherwise block one plugin with PLUGTRT_BLOCK_PLUGINS=<plugin>.",
            tuple(sorted(culprits)))
    return {value: tuple(regs) for value, regs in groups.items()}


_lock = threading.Lock()
_default: PluginRegistry | None = None


def default_registry() -> PluginRegistry:
    """The process-wide registry: entry points loaded on first use, then reused."""
    global _default
    with _lock:
        if _default is None:
            pm, skipped = new_plugin_manager(), {}
            load_entry_points(pm, skipped=skipped)
            _default = PluginRegistry(pm, skipped=skipped)
        return _default


def registry_from(*plugins: object | tuple[str, object]) -> PluginRegistry:
    """A registry of exactly these plugins (module or object, or ``(name, plugin)``), no entry points."""
    pm = new_plugin_manager()
    for plugin in plugins:
        name, obj = plugin if isinstance(plugin, tuple) else (getattr(plugin, "__name__", None), plugin)
        pm.register(obj, name=name)
    pm.check_pending()
    return PluginRegistry(pm)


