"""``python -m plugtrt``: ``plugins`` lists what is installed, ``conformance`` proves the
reference runtime against ONNX's conformance cases."""
from __future__ import annotations

import argparse
import importlib.metadata
import sys

from plugtrt.manager import GROUP, RECORD_TYPES, collect, default_registry


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
    parser.parse_args(argv)
    return list_plugins()


if __name__ == "__main__":
    sys.exit(main())
