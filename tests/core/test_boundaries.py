"""Import boundaries of the plugin API: the core never imports a plugin package, and the
built-in converters (and the example package) use only the public API: the modules in
``CONVERTER_API``, and of ``plugtrt.conversion`` only the names in its ``__all__``."""
from __future__ import annotations

import ast
import subprocess
import textwrap
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_PACKAGES = ("plugtrt.converters", "plugtrt.partitioners", "plugtrt.runtimes", "plugtrt.lowering",
                   "plugtrt.stores")
CONVERTER_API = {"plugtrt", "plugtrt.conversion", "plugtrt.records", "plugtrt.hookspecs", "plugtrt.quantization",
                 "plugtrt.trt_adapter"}


CONVERTER_MODULES = (sorted((ROOT / "converters").glob("*.py"))
                     + sorted((ROOT / "plugins_example" / "plugtrt_example").glob("*.py")))


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


@pytest.mark.parametrize("path", CONVERTER_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_converter_modules_use_only_the_public_api(path):
    private = {m for m in _imports(path) if m.startswith("plugtrt") and m not in CONVERTER_API
               and m != "plugtrt.blocks" and not m.startswith("plugtrt_example")}
    assert not private, f"{path.name} imports {sorted(private)}, which is not the public conversion API"


def _conversion_names(path: Path) -> set[str]:
    """The names ``path`` takes from ``plugtrt.conversion``: imported from it, or read off it as
    ``plugtrt.conversion.X`` / ``conversion.X``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "plugtrt.conversion":
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Attribute) and ast.unparse(node.value) in ("plugtrt.conversion", "conversion"):
            names.add(node.attr)
    return names


@pytest.mark.parametrize("path", CONVERTER_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_converter_modules_use_only_names_in_conversion_all(path):
    from plugtrt import conversion

    outside = _conversion_names(path) - set(conversion.__all__)
    assert not outside, (f"{path.name} uses {sorted(outside)} from plugtrt.conversion, which its "
                         "__all__ does not offer: use a name in plugtrt.conversion.__all__, or keep "
                         "a family's own helper in its converter module")


def test_conversion_all_names_what_the_module_has():
    from plugtrt import conversion

    assert len(set(conversion.__all__)) == len(conversion.__all__)
    assert [n for n in conversion.__all__ if not hasattr(conversion, n)] == []


def test_the_boundary_check_sees_a_name_outside_all(tmp_path):
    """The check above would fail a converter that reaches past ``__all__``."""
    module = tmp_path / "rogue.py"
    module.write_text("from plugtrt.conversion import val, default_float_dtype\n"
                      "import plugtrt.conversion\nx = plugtrt.conversion.bind_input\n")
    from plugtrt import conversion

    assert _conversion_names(module) - set(conversion.__all__) == {"default_float_dtype", "bind_input"}


def test_core_import_path_does_not_load_onnx_or_the_conformance_tool():
    code = ("import sys, torch, plugtrt.backend, plugtrt.testing\n"
            "from plugtrt.manager import default_registry\n"
            "default_registry()\n"
            "print(sorted(m for m in sys.modules if m == 'onnx' or m.endswith('conformance')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


_NO_TENSORRT = textwrap.dedent("""
    import importlib.machinery, sys
    class Missing:
        def create_module(self, spec):
            raise ImportError(f"no module named {spec.name!r} (blocked by the test)")
        def exec_module(self, module):
            pass
    class NoTensorRT:
        def find_spec(self, name, path, target=None):
            if name.split('.')[0] in ('tensorrt', 'tensorrt_rtx', 'tensorrt_bindings',
                                      'tensorrt_rtx_bindings'):
                return importlib.machinery.ModuleSpec(name, Missing())
    sys.meta_path.insert(0, NoTensorRT())
""")


def test_every_builtin_plugin_loads_without_tensorrt():
    """A machine without TensorRT still loads the plugins (the coverage dry run, a GPU machine
    that only traces): a module that touches ``trt`` at import time breaks every compile there."""
    code = _NO_TENSORRT + "from plugtrt.manager import default_registry\nprint(len(default_registry().converters))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) > 300


def test_a_compile_that_builds_no_engine_needs_no_tensorrt(engine_cache_dir):
    """Keys of the engine and graph caches name TensorRT's version without importing it: a graph
    left to PyTorch compiles, is cached and restored where TensorRT is missing."""
    code = _NO_TENSORRT + textwrap.dedent("""
        import torch, plugtrt
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()).eval()
        x = torch.randn(2, 4)
        for _ in range(2):
            torch._dynamo.reset()
            with torch.no_grad():
                got = torch.compile(model, backend="plugtrt", dynamic=False,
                                    options={"min_block_size": 100})(x)
                torch.testing.assert_close(got, model(x))
            plugtrt.engine_cache.wait_for_writes()
        print([r.restored for r in plugtrt.compile_reports()])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[False, True]"
