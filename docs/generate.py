"""Regenerate the documentation's generated sections from the code they describe.

    python docs/generate.py           # rewrite the sections in place
    python docs/generate.py --check   # exit 1, naming the stale pages, if any section is out of date

Two sections are generated: the options table (from ``CompilationSettings``' fields, their
defaults, valid values and docs) and the operator coverage (``python -m plugtrt ops --markdown``).
Each lives between marker comments in its page, so the page reads the same on the site and in
the repository.
"""
from __future__ import annotations

import sys
from pathlib import Path

import attrs

DOCS = Path(__file__).resolve().parent
OPTIONS_BEGIN = "<!-- docs/generate.py: options begin (generated, do not edit) -->"
OPTIONS_END = "<!-- docs/generate.py: options end -->"


def _default(field: attrs.Attribute) -> str:
    value = field.default
    if isinstance(value, frozenset):
        return "set()"
    if field.name == "engine_cache_size":
        return "5 << 30"
    return repr(value)


def options_markdown() -> str:
    """The options table: one row per ``CompilationSettings`` field, in definition order."""
    from plugtrt.settings import CompilationSettings

    lines = ["| option | default | valid values | in the engine key | meaning |",
             "| --- | --- | --- | --- | --- |"]
    for field in attrs.fields(CompilationSettings):
        meta = field.metadata
        cells = [f"`{field.name}`", f"`{_default(field)}`", meta["allowed"],
                 "yes" if meta["engine"] else "", meta["doc"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _sections() -> list[tuple[Path, str, str, str]]:
    from plugtrt.__main__ import OPS_BEGIN, OPS_END, ops_markdown

    return [(DOCS / "options.md", OPTIONS_BEGIN, OPTIONS_END, options_markdown()),
            (DOCS / "operators.md", OPS_BEGIN, OPS_END, ops_markdown())]


def _filled(text: str, begin: str, end: str, body: str, page: Path) -> str:
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise SystemExit(f"{page} lost its marker lines {begin!r} ... {end!r}")
    return f"{text[:start + len(begin)]}\n{body}{text[stop:]}"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for page, begin, end, body in _sections():
        text = page.read_text()
        new = _filled(text, begin, end, body, page)
        if new != text:
            stale.append(page.name)
            if not check:
                page.write_text(new)
    if check and stale:
        print(f"out of date: {', '.join(stale)}; run `python docs/generate.py`", file=sys.stderr)
        return 1
    print(f"{'stale' if check else 'updated'}: {', '.join(stale) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
