"""Import boundaries of the plugin API: the core never imports a plugin package, and the
built-in converters (and the example package) use only the public API."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_PACKAGES = ("plugtrt.converters", "plugtrt.partitioners", "plugtrt.runtimes", "plugtrt.lowering")
CONVERTER_API = {"plugtrt", "plugtrt.conversion", "plugtrt.records", "plugtrt.hookspecs",
                 "plugtrt.trt_adapter"}


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_plugin_package(path):
    leaks = {m for m in _imports(path) if m in PLUGIN_PACKAGES or m.startswith(tuple(p + "." for p in PLUGIN_PACKAGES))}
    assert not leaks, f"core/{path.name} imports plugin packages {sorted(leaks)}"


@pytest.mark.parametrize("path", sorted((ROOT / "converters").glob("*.py"))
                         + sorted((ROOT / "plugins_example" / "plugtrt_example").glob("*.py")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_converter_modules_use_only_the_public_api(path):
    private = {m for m in _imports(path) if m.startswith("plugtrt") and m not in CONVERTER_API
               and m != "plugtrt.blocks" and not m.startswith("plugtrt_example")}
    assert not private, f"{path.name} imports {sorted(private)}, which is not the public conversion API"


def test_core_import_path_does_not_load_onnx_or_the_conformance_tool():
    code = ("import sys, torch, plugtrt.backend, plugtrt.testing\n"
            "from plugtrt.manager import default_registry\n"
            "default_registry()\n"
            "print(sorted(m for m in sys.modules if m == 'onnx' or m.endswith('conformance')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_builtin_plugin_loads_without_tensorrt():
    """A machine without TensorRT still loads the plugins (the coverage dry run, a GPU machine
    that only traces): a module that touches ``trt`` at import time breaks every compile there."""
    code = ("import sys\n"
            "class NoTensorRT:\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[0] in ('tensorrt', 'tensorrt_rtx', 'tensorrt_bindings',\n"
            "                                  'tensorrt_rtx_bindings'):\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, NoTensorRT())\n"
            "from plugtrt.manager import default_registry\n"
            "print(len(default_registry().converters))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) > 300
