"""``python -m plugtrt``: ``plugins`` lists what is installed, ``ops`` the aten targets that
convert, ``cache`` shows or clears the engine cache; plugins add more commands (the
``reference`` runtime adds ``conformance``)."""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys

from plugtrt.errors import PlugtrtError
from plugtrt.manager import GROUP, RECORD_TYPES, collect, default_registry
from plugtrt.settings import CompilationSettings


def list_plugins() -> int:
    """One line per plugin: name, distribution and version, and what each hook registered."""
    registry = default_registry()
    pm = registry.plugin_manager
    dists = {ep.name: ep.dist for ep in importlib.metadata.entry_points(group=GROUP)}
    for name, _plugin in sorted(pm.list_name_plugin()):
        dist = dists.get(name)
        origin = f"{dist.name} {dist.version}" if dist is not None else "registered directly"
        print(f"{name}  ({origin})")
        for hook in sorted(RECORD_TYPES):
            names = [r.record.name for r in collect(pm, hook) if r.plugin == name]
            if names:
                print(f"    {hook}: {', '.join(names)}")
    return 0


def list_ops(as_json: bool, plugin: str | None) -> int:
    """Every aten target a converter is registered for, with its converters in the order they
    are tried: converter, plugin, whether it takes dynamic sizes, and its validator's note."""
    rows = []
    for target, regs in sorted(default_registry().converters.items(), key=lambda item: str(item[0])):
        for reg in regs:
            if plugin is None or reg.plugin == plugin:
                note = (getattr(reg.record.is_supported, "__doc__", None) or "").strip().split("\n")[0]
                rows.append({"target": str(target), "converter": reg.record.name, "plugin": reg.plugin,
                             "priority": reg.record.priority,
                             "dynamic_shapes": reg.record.supports_dynamic_shapes, "notes": note})
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        dynamic = "dynamic" if row["dynamic_shapes"] else "static"
        print(f"{row['target']:<48} {row['converter']:<40} {row['plugin']:<36} {dynamic:<8} {row['notes']}")
    print(f"{len({r['target'] for r in rows})} targets, {len(rows)} converters")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    raise AssertionError("unreachable")


def show_cache(clear: bool, directory: str | None, store: str) -> int:
    """The engine cache's location, entries, size and hit counts; with ``clear``, empty it first."""
    try:
        settings = CompilationSettings.from_options({"engine_cache_dir": directory, "engine_cache_store": store})
        engine_store = default_registry().pick("engine store", store).record.create(settings)
    except PlugtrtError as exc:
        print(exc, file=sys.stderr)
        return 2
    if clear:
        engine_store.clear()
        print(f"cleared the engine cache at {engine_store.location}")
    stats = engine_store.stats()
    print(f"engine cache ({store} store): {stats.location}")
    print(f"  entries: {stats.entries}")
    print(f"  size: {_size(stats.size_bytes)} of {_size(stats.max_bytes)}")
    print(f"  hits: {stats.hits}, misses: {stats.misses}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    plugin_commands = default_registry().commands
    if argv[:1] and argv[0] in plugin_commands:  # each parses its own options: <command> -h
        return plugin_commands[argv[0]].record.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m plugtrt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plugins", help="list installed plugins and their registrations")
    ops = commands.add_parser("ops", help="list the aten targets that convert, and by which converters")
    ops.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    ops.add_argument("--plugin", default=None, help="only this plugin's converters (an entry-point name)")
    for name, reg in sorted(plugin_commands.items()):
        commands.add_parser(name, help=f"{reg.record.help} [plugin {reg.plugin}]")
    cache = commands.add_parser("cache", help="show the engine cache (entries, size, hits); --clear empties it")
    cache.add_argument("--clear", action="store_true", help="remove every entry and the counters")
    cache.add_argument("--dir", default=None,
                       help="the cache directory (default: $PLUGTRT_CACHE_DIR, else the user cache directory)")
    cache.add_argument("--store", default="local", help="the engine store plugin (default: local)")
    args = parser.parse_args(argv)
    if args.command == "cache":
        return show_cache(args.clear, args.dir, args.store)
    if args.command == "ops":
        return list_ops(args.json, args.plugin)
    return list_plugins()


if __name__ == "__main__":
    sys.exit(main())
