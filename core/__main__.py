"""``python -m plugtrt``: ``plugins`` lists what is installed, ``conformance`` proves the
reference runtime against ONNX's conformance cases, ``cache`` shows or clears the engine cache."""
from __future__ import annotations

import argparse
import importlib.metadata
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
    if argv[:1] == ["conformance"]:  # its own parser and options: python -m plugtrt conformance -h
        from plugtrt.conformance import main_conformance

        return main_conformance(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m plugtrt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plugins", help="list installed plugins and their registrations")
    commands.add_parser("conformance", help="run ONNX conformance cases through the reference "
                        "runtime (conformance -h for its options)")
    cache = commands.add_parser("cache", help="show the engine cache (entries, size, hits); --clear empties it")
    cache.add_argument("--clear", action="store_true", help="remove every entry and the counters")
    cache.add_argument("--dir", default=None,
                       help="the cache directory (default: $PLUGTRT_CACHE_DIR, else the user cache directory)")
    cache.add_argument("--store", default="local", help="the engine store plugin (default: local)")
    args = parser.parse_args(argv)
    if args.command == "cache":
        return show_cache(args.clear, args.dir, args.store)
    return list_plugins()


if __name__ == "__main__":
    sys.exit(main())
