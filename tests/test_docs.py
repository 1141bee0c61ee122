"""The README and the documentation site say what the code does: the site builds strictly, its
generated sections are current, every link resolves, and every code block runs here.

Code blocks are what a reader copies, so each is run as written:

- ```python blocks: all the blocks of one page, in order, in one fresh interpreter (a page may
  define a model in one block and use it in the next), with a private engine cache;
- ```console blocks: each ``$ `` command, from the repository root, except the few in
  ``NOT_RUN``, each with the reason and the test that covers it instead;
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
    "python -m pytest -m gpu": "needs a GPU whose TensorRT runs engines; the `gpu` tests skip here",
    "python -m plugtrt conformance": "minutes; tests/runtimes/ runs the conformance cases",
    "python -m plugtrt conformance --data": "minutes; tests/runtimes/ runs the conformance cases",
}
"""Documented commands the suite does not run as written, with why (prefix match)."""

NOT_RUN_PREFIXES = {
    "python -m pip install": "installs packages; `make` runs the CPU install line",
    ".venv/bin/python bench/": "benchmarks take minutes; each prints its table in the docs",
}


def _blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(page.read_text()) if lang == language]


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _commands() -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for page in PAGES:
        for block in _blocks(page, "console"):
            for line in block.splitlines():
                if line.startswith("$ "):
                    found.setdefault(line[2:].strip(), _rel(page))
    return sorted(found.items())


def _skip_reason(command: str) -> str | None:
    if command in NOT_RUN:
        return NOT_RUN[command]
    return next((why for prefix, why in NOT_RUN_PREFIXES.items() if command.startswith(prefix)), None)


def _env(tmp_path: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PLUGTRT_CACHE_DIR": str(tmp_path / "cache"), "NO_MKDOCS_2_WARNING": "1",
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


def test_site_builds_strictly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], capture_output=True, text=True, cwd=ROOT,
                          env=_env(tmp_path))
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "index.html").read_text().count("plugtrt.conversion") > 10


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "python")], ids=_rel)
def test_python_blocks_run(page, tmp_path):
    script = tmp_path / "page.py"
    script.write_text("\n\n".join(_blocks(page, "python")))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          env=_env(tmp_path), timeout=600)
    assert done.returncode == 0, f"a python block of {_rel(page)} fails:\n{done.stderr[-4000:]}"


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "toml")], ids=_rel)
def test_toml_blocks_parse(page):
    for block in _blocks(page, "toml"):
        tomllib.loads(block)


@pytest.mark.parametrize(("command", "page"), _commands(), ids=[c for c, _ in _commands()])
def test_console_commands_run(command, page, tmp_path):
    reason = _skip_reason(command)
    if reason is not None:
        pytest.skip(f"not run here ({page}): {reason}")
    argv = shlex.split(command)
    if argv[0] == "make":  # the venv running this test is the one make would build: don't rebuild it
        argv[1:1] = ["-o", ".venv/.plugtrt-installed"]
    elif argv[0] == "python":
        argv[0] = sys.executable
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=_env(tmp_path), timeout=600)
    assert done.returncode == 0, f"`{command}` ({page}) exits {done.returncode}:\n{done.stderr[-4000:]}"
