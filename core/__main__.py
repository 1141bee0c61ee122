"""``python -m plugtrt``: ``plugins`` lists what is installed, ``ops`` the aten targets that
convert, ``cache`` shows or clears the engine cache, ``triton`` writes a Triton model
repository for a saved program and ``serve`` serves one from Triton; plugins add more commands
(the ``reference`` runtime adds ``conformance``)."""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path

# plugtrt.manager and plugtrt.settings import torch: imported where a command needs them, so
# that --help answers at once
GROUP = "plugtrt"
BUILTIN_COMMANDS = ("plugins", "ops", "cache")


def list_plugins() -> int:
    """One line per plugin: name, distribution and version, and what each hook registered."""
    from plugtrt.manager import RECORD_TYPES, collect, default_registry

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
    if registry.skipped:
        print(f"skipped ({len(registry.skipped)}):")
        for name, why in sorted(registry.skipped.items()):
            print(f"  {name}: {why}")
    return 0


def _ops_rows(plugins: set[str] | None) -> list[dict]:
    from plugtrt.manager import default_registry

    rows = []
    for target, regs in sorted(default_registry().converters.items(), key=lambda item: str(item[0])):
        for reg in regs:
            if plugins is None or reg.plugin in plugins:
                doc = (getattr(reg.record.is_supported, "__doc__", None) or "").strip()
                note = " ".join(doc.split("\n\n")[0].split())  # the first paragraph, on one line
                rows.append({"target": str(target), "converter": reg.record.name, "plugin": reg.plugin,
                             "priority": reg.record.priority,
                             "dynamic_shapes": reg.record.supports_dynamic_shapes, "notes": note})
    return rows


def _plugins_named(name: str) -> set[str] | None:
    """The plugins ``--plugin NAME`` means: the entry point of that name, or every entry point
    of the distribution of that name; None when neither exists."""
    from plugtrt.manager import default_registry, normalize_distribution

    pm = default_registry().plugin_manager
    if pm.has_plugin(name):
        return {name}
    wanted = normalize_distribution(name)
    mine = {ep.name for ep in importlib.metadata.entry_points(group=GROUP)
            if ep.dist is not None and normalize_distribution(ep.dist.name) == wanted}
    return mine or None


def _known_plugin_names() -> list[str]:
    from plugtrt.manager import default_registry

    names = {name for name, _ in default_registry().plugin_manager.list_name_plugin()}
    dists = {ep.dist.name for ep in importlib.metadata.entry_points(group=GROUP) if ep.dist is not None}
    return sorted(names | dists)


def list_ops(json_to: str | None, plugin: str | None) -> int:
    """Every aten target a converter is registered for, with its converters in the order they
    are tried: converter, plugin, whether it takes dynamic sizes, and its validator's note.
    ``json_to``: ``-`` prints JSON rows instead of the table, a path writes them there."""
    plugins = None
    if plugin is not None:
        plugins = _plugins_named(plugin)
        if plugins is None:
            print(f"python -m plugtrt ops: no plugin or distribution named {plugin!r}; known: "
                  + ", ".join(_known_plugin_names()), file=sys.stderr)
            return 2
    rows = _ops_rows(plugins)
    if json_to == "-":
        print(json.dumps(rows, indent=1))
        return 0
    if json_to is not None:
        Path(json_to).write_text(json.dumps(rows, indent=1))
    print(f"{'TARGET':<48} {'CONVERTER':<40} {'PLUGIN':<36} {'SHAPES':<8} NOTES")
    for row in rows:
        dynamic = "dynamic" if row["dynamic_shapes"] else "static"
        print(f"{row['target']:<48} {row['converter']:<40} {row['plugin']:<36} {dynamic:<8} {row['notes']}")
    print(f"{len({r['target'] for r in rows})} targets, {len(rows)} converters")
    return 0


OPS_BEGIN = "<!-- python -m plugtrt ops --markdown: begin (generated, do not edit) -->"
OPS_END = "<!-- python -m plugtrt ops --markdown: end -->"
OPS_UPDATE = "python docs/generate.py"


def ops_markdown() -> str:
    """The documentation's coverage section (docs/operators.md): plugtrt's built-in converters
    (whatever else is installed), one table per plugin module, and the count of distinct aten
    overloads."""
    from plugtrt.manager import is_builtin

    rows = [r for r in _ops_rows(None) if is_builtin(r["plugin"])]
    overloads = {r["target"] for r in rows if r["target"].startswith("aten.")}
    lines = [f"**{len(overloads)} distinct aten overloads** convert with the built-in converters "
             f"(generated by `{OPS_UPDATE}`).", ""]
    for plugin in sorted({r["plugin"] for r in rows}):
        mine = [r for r in rows if r["plugin"] == plugin]
        lines += [f"<details markdown=\"1\"><summary><code>{plugin}</code>: {len(mine)} targets</summary>", "",
                  "| target | dynamic dims | notes |", "|---|---|---|"]
        for r in mine:
            note = r["notes"].replace("|", "\\|")
            lines.append(f"| `{r['target']}` | {'yes' if r['dynamic_shapes'] else 'no'} | {note} |")
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def readme_ops_section(text: str) -> str | None:
    """The generated part of ``text`` between the ops markers, or None without markers."""
    begin, end = text.find(OPS_BEGIN), text.find(OPS_END)
    if begin < 0 or end < begin:
        return None
    return text[begin + len(OPS_BEGIN):end].strip("\n") + "\n"


def markdown_ops(update: str | None) -> int:
    """Print the coverage section, or with ``update`` write it between the markers of that file."""
    section = ops_markdown()
    if update is None:
        print(section, end="")
        return 0
    path = Path(update)
    text = path.read_text()
    if readme_ops_section(text) is None:
        print(f"{update} has no lines {OPS_BEGIN!r} ... {OPS_END!r} to fill", file=sys.stderr)
        return 2
    head, tail = text[:text.find(OPS_BEGIN) + len(OPS_BEGIN)], text[text.find(OPS_END):]
    path.write_text(f"{head}\n{section}{tail}")
    print(f"updated the coverage section of {update}")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    raise AssertionError("unreachable")


def show_cache(clear: bool, directory: str | None, store: str) -> int:
    """The engine cache's location, entries, size and hit counts, and the files beside its
    entries that are not plugtrt's (never deleted); with ``clear``, delete the entries first.
    A bad ``--dir`` or a store that cannot be read or cleared is one line on stderr, exit 2."""
    from plugtrt.errors import PlugtrtError
    from plugtrt.manager import default_registry
    from plugtrt.settings import CompilationSettings

    if directory is not None and not Path(directory).is_dir():
        what = "is not a directory" if Path(directory).exists() else "does not exist"
        print(f"plugtrt cache: --dir {directory} {what}; give the engine cache's directory", file=sys.stderr)
        return 2
    try:
        settings = CompilationSettings.from_options({"engine_cache_dir": directory, "engine_cache_store": store})
        engine_store = default_registry().pick("engine store", store).record.create(settings)
    except PlugtrtError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        if clear:
            engine_store.clear()
            print(f"cleared the engine cache at {engine_store.location}")
        stats = engine_store.stats()
    except OSError as exc:
        action = "clear" if clear else "read"
        print(f"plugtrt cache: cannot {action} {engine_store.location}: {exc.strerror or exc}"
              f"{f' ({exc.filename})' if exc.filename else ''}; check its permissions", file=sys.stderr)
        return 2
    print(f"engine cache ({store} store): {stats.location}")
    print(f"  entries: {stats.entries}")
    print(f"  size: {_size(stats.size_bytes)} of {_size(stats.max_bytes)}")
    print(f"  hits: {stats.hits}, misses: {stats.misses}")
    if stats.foreign:
        print(f"  other files, not plugtrt's (kept): {len(stats.foreign)}")
        for line in stats.foreign:
            print(f"    {line}")
    return 0


def _triton(argv: list[str]) -> int:
    from plugtrt.triton_repository import main as triton_main

    return triton_main(argv)


def _serve(argv: list[str]) -> int:
    from plugtrt.serve import main as serve_main

    return serve_main(argv)


DEPLOY_COMMANDS = {
    "triton": (_triton, "write a Triton model repository for a saved plugtrt.export program (triton -h)"),
    "serve": (_serve, "serve a saved plugtrt.export program from Triton Inference Server (serve -h)"),
}
"""Built-in commands that parse their own options, as plugin commands do."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in DEPLOY_COMMANDS:
        return DEPLOY_COMMANDS[argv[0]][0](argv[1:])
    plugin_commands = {}
    if argv[:1] and not argv[0].startswith("-") and argv[0] not in BUILTIN_COMMANDS:
        from plugtrt.manager import default_registry  # a plugin's command: load the plugins

        plugin_commands = default_registry().commands
        if argv[0] in plugin_commands:  # each parses its own options: <command> -h
            return plugin_commands[argv[0]].record.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m plugtrt", description=__doc__,
        epilog="Plugins add commands (the reference runtime adds conformance): python -m plugtrt "
               "plugins lists them, python -m plugtrt COMMAND -h shows a command's options.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plugins", help="list installed plugins and their registrations")
    ops = commands.add_parser("ops", help="list the aten targets that convert, and by which converters")
    ops.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                     help="JSON rows: on stdout instead of the table, or into FILE (as for conformance)")
    ops.add_argument("--plugin", default=None,
                     help="only this plugin's converters: an entry-point name or a distribution name")
    ops.add_argument("--markdown", action="store_true",
                     help="print the coverage section of docs/operators.md: built-in converters, "
                          "one table per plugin")
    ops.add_argument("--update", default=None, metavar="FILE",
                     help="with --markdown: write the section between its marker comments in FILE")
    for name, (_, text) in DEPLOY_COMMANDS.items():
        commands.add_parser(name, help=text)
    for name, reg in sorted(plugin_commands.items()):
        commands.add_parser(name, help=f"{reg.record.help} [plugin {reg.plugin}]")
    cache = commands.add_parser("cache", help="show the engine cache (entries, size, hits); --clear empties it")
    cache.add_argument("--clear", action="store_true",
                       help="remove every entry and the counters; other files are listed and kept")
    cache.add_argument("--dir", default=None,
                       help="the cache directory (default: $PLUGTRT_CACHE_DIR, else the user cache directory)")
    cache.add_argument("--store", default="local", help="the engine store plugin (default: local)")
    args = parser.parse_args(argv)
    if args.command == "cache":
        return show_cache(args.clear, args.dir, args.store)
    if args.command == "ops":
        if args.update is not None and not args.markdown:
            parser.error("ops: --update FILE writes the --markdown section; add --markdown")
        if args.markdown:
            return markdown_ops(args.update)
        return list_ops(args.json, args.plugin)
    return list_plugins()


if __name__ == "__main__":
    sys.exit(main())
