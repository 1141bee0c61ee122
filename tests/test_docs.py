"""The README and the documentation site say what the code does: the site builds strictly, its
generated sections are current, every link resolves, and every code block runs here.

Code blocks are what a reader copies, so each is run as written:

- ```python blocks: all the blocks of one page, in order, in one fresh interpreter (a page may
  define a model in one block and use it in the next), in a scratch directory, with a private
  engine cache;
- ```console blocks: then each ``$ `` command of the page, in the same scratch directory (a
  command may read the program a python block saved), ``make`` targets from the repository
  root; except the few in ``NOT_RUN``, each with the reason and what covers it instead;
- ```toml blocks parse.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 300
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")

NOT_RUN = {
    "make test": "it is the command that runs this test",
    "make docs": "test_make_docs_builds_the_site_strictly runs it",
    "python -m pytest -m gpu": "needs a GPU whose TensorRT runs engines; the `gpu` tests skip here",
    "python -m plugtrt conformance": "minutes; tests/runtimes/ runs the conformance cases",
    "python -m plugtrt conformance --data": "minutes; tests/runtimes/ runs the conformance cases",
}
"""Documented commands the suite does not run as written, with why (prefix match)."""

NOT_RUN_PREFIXES = {
    "python -m pip install": "installs packages; `make` runs the CPU install line",
    "pip install": "installs packages; `make` runs the CPU install line with every extra",
    "python -m plugtrt serve": "serves until stopped; tests/test_serve.py starts it on loopback and stops it",
    ".venv/bin/python bench/": "benchmarks take minutes; each prints its table in the docs",
}


def _blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(page.read_text()) if lang == language]


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _commands(page: Path) -> list[str]:
    return [line[2:].strip() for block in _blocks(page, "console") for line in block.splitlines()
            if line.startswith("$ ")]


_NO_REINSTALL = ["-o", ".venv/.plugtrt-installed"]
"""``make`` flags that run a target without reinstalling the venv running this very test."""


def _first_page(command: str) -> Path:
    return next(page for page in PAGES if command in _commands(page))


def _skip_reason(command: str) -> str | None:
    if command in NOT_RUN:
        return NOT_RUN[command]
    return next((why for prefix, why in NOT_RUN_PREFIXES.items() if command.startswith(prefix)), None)


@pytest.fixture(scope="module")
def engine_cache(tmp_path_factory) -> Path:
    """One engine cache for every page's examples on this worker: pages that compile the same
    model (the README's and getting started's ResNet-18, the demo) restore it, as a reader's
    second run would."""
    return tmp_path_factory.mktemp("docs-engine-cache")


def _env(cache: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PLUGTRT_CACHE_DIR": str(cache), "NO_MKDOCS_2_WARNING": "1",
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_readme_is_short():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_links_resolve_inside_the_repository(page):
    broken = []
    for target in _LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            if page.name == "README.md":
                broken.append(f"{target} (the README links only into the repository and the site)")
            continue
        path = target.split("#", 1)[0]
        if path and not (page.parent / path).resolve().exists():
            broken.append(target)
        elif path and not (page.parent / path).resolve().is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
    assert not broken, f"{_rel(page)} links to {broken}"


def test_generated_sections_are_current():
    done = subprocess.run([sys.executable, str(DOCS / "generate.py"), "--check"], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_make_docs_builds_the_site_strictly(engine_cache):
    _run(["make", *_NO_REINSTALL, "docs"], ROOT, engine_cache, "`make docs`")
    assert (ROOT / "build" / "site" / "api" / "index.html").read_text().count("plugtrt.conversion") > 10


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "toml")], ids=_rel)
def test_toml_blocks_parse(page):
    for block in _blocks(page, "toml"):
        tomllib.loads(block)


def _run(argv: list[str], cwd: Path, cache: Path, what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=_env(cache), timeout=600)
    assert done.returncode == 0, f"{what} exits {done.returncode}:\n{done.stderr[-4000:]}"


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "python") or _commands(p)], ids=_rel)
def test_code_blocks_run(page, tmp_path, engine_cache):
    work = tmp_path / "work"
    work.mkdir()
    if _blocks(page, "python"):
        script = work / "page.py"
        script.write_text("\n\n".join(_blocks(page, "python")))
        _run([sys.executable, str(script)], work, engine_cache, f"the python blocks of {_rel(page)}")
    for command in _commands(page):
        if _skip_reason(command) is not None or _first_page(command) != page:
            continue
        argv = shlex.split(command)
        if argv[0] == "make":
            _run([argv[0], *_NO_REINSTALL, *argv[1:]], ROOT, engine_cache, f"`{command}`")
            continue
        if argv[0] == "python":
            argv[0] = sys.executable
        # a repository path (bench/demo.py) names the checkout's file; anything else is the page's
        argv = [str(ROOT / a) if not (work / a).exists() and (ROOT / a).is_file() else a for a in argv]
        _run(argv, work, engine_cache, f"`{command}` ({_rel(page)})")
