"""``python -m plugtrt``: ``plugins`` lists what is installed; plugins add more commands
(the ``reference`` runtime adds ``conformance``)."""
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
    plugin_commands = default_registry().commands
    if argv[:1] and argv[0] in plugin_commands:  # each parses its own options: <command> -h
        return plugin_commands[argv[0]].record.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m plugtrt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plugins", help="list installed plugins and their registrations")
    for name, reg in sorted(plugin_commands.items()):
        commands.add_parser(name, help=f"{reg.record.help} [plugin {reg.plugin}]")
    parser.parse_args(argv)
    return list_plugins()


if __name__ == "__main__":
    sys.exit(main())
