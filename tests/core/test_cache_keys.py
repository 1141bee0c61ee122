"""The graph and engine cache keys cover everything that changes a result: ambient torch state,
per-node float32 tags, the code of plugins without a source file, and the GPU model."""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import textwrap
import types
import warnings
from types import SimpleNamespace

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from plugtrt.engine_cache import wait_for_writes
from plugtrt.engine_key import engine_key
from plugtrt.manager import registry_from
from plugtrt.precision import _TAG as FLOAT32_TAG  # what mark_float32 leaves on a whole graph's nodes
from plugtrt.settings import CompilationSettings
from plugtrt.testing import plugin_registry, run_through_backend

from ..models import seeded_mlp

aten = torch.ops.aten


def test_a_plain_call_after_an_autocast_call_returns_eagers_float32():
    """Issue 17, item 2: the plain call's compile restored the graph traced under autocast."""
    model, x = seeded_mlp(), torch.randn(3, 8)
    compiled = torch.compile(model, backend="plugtrt", dynamic=False,
                             options={"runtime": "reference", "min_block_size": 1})
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert compiled(x).dtype == torch.bfloat16
        wait_for_writes()
        got, want = compiled(x), model(x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@contextlib.contextmanager
def _flag(get, set_, value):
    before = get()
    set_(value)
    try:
        yield
    finally:
        set_(before)


_AMBIENT = {
    "cpu-autocast": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    "cuda-autocast": lambda: _flag(lambda: torch.is_autocast_enabled("cuda"),
                                   lambda v: torch.set_autocast_enabled("cuda", v), True),
    "matmul-precision": lambda: _flag(torch.get_float32_matmul_precision, torch.set_float32_matmul_precision,
                                      "high"),
    "cuda-matmul-tf32": lambda: _flag(lambda: torch.backends.cuda.matmul.allow_tf32,
                                      lambda v: setattr(torch.backends.cuda.matmul, "allow_tf32", v), True),
    "cudnn-tf32": lambda: _flag(lambda: torch.backends.cudnn.allow_tf32,
                                lambda v: setattr(torch.backends.cudnn, "allow_tf32", v), False),
    "deterministic": lambda: _flag(torch.are_deterministic_algorithms_enabled,
                                   torch.use_deterministic_algorithms, True),
}


def _restored_and_cached(model, x) -> tuple[bool, list[bool]]:
    run = run_through_backend(model, [x], {})
    wait_for_writes()
    (report,) = run.reports
    return report.restored, [e.cached for e in report.engines]


@pytest.mark.parametrize("state", list(_AMBIENT))
def test_ambient_torch_state_changes_the_graph_and_engine_keys(state):
    x = torch.randn(3, 8)
    assert _restored_and_cached(seeded_mlp(), x) == (False, [False])
    assert _restored_and_cached(seeded_mlp(), x) == (True, [True])
    with _AMBIENT[state]():
        assert _restored_and_cached(seeded_mlp(), x) == (False, [False])
        assert _restored_and_cached(seeded_mlp(), x) == (True, [True])
    assert _restored_and_cached(seeded_mlp(), x) == (True, [True])


def _block() -> torch.fx.GraphModule:
    return make_fx(lambda x: aten.relu.default(aten.relu.default(x)))(torch.randn(2, 3))


def _key(block, registry=None, **options) -> str | None:
    key = engine_key(block, registry or plugin_registry(), CompilationSettings.from_options(options),
                     runtime="reference")
    return None if key is None else key.digest


def test_a_float32_tag_changes_the_engine_key():
    """Identical nodes tagged differently by marking their whole graph (a region a partition
    boundary cut) convert differently."""
    plain, tagged = _block(), _block()
    first = next(n for n in tagged.graph.nodes if n.op == "call_function")
    first.meta[FLOAT32_TAG] = True
    assert _key(plain, precision=torch.half) == _key(_block(), precision=torch.half)
    assert _key(tagged, precision=torch.half) != _key(plain, precision=torch.half)


_SOURCELESS = """
import torch
from plugtrt import ConverterSpec, hookimpl
from plugtrt.trt_adapter import trt

KIND = trt.ActivationType.{kind}
LIMITS = {{"alpha": 0.0, "beta": 1.0}}

def _activation(ctx, node, args, kwargs):
    layer = ctx.network.add_activation(args[0], KIND)
    return ctx.finish(layer, node)

@hookimpl
def plugtrt_converters():
    yield ConverterSpec(name="notebook.relu", target=torch.ops.aten.relu.default, convert=_activation,
                        priority=10)
"""


def _sourceless(kind: str, extra: str = "", prefix: str = "") -> types.ModuleType:
    """A converter plugin module as ``python -c`` or a notebook makes one: no ``__file__``."""
    module = types.ModuleType("notebook_plugin")
    exec(prefix + _SOURCELESS.format(kind=kind) + extra, module.__dict__)
    return module


def _registry_with(plugin):
    return registry_from(*plugin_registry().plugin_manager.list_name_plugin(), ("notebook", plugin))


def test_a_plugin_without_a_source_file_is_keyed_by_its_code():
    relu, again, sigmoid = (_registry_with(_sourceless(k)) for k in ("RELU", "RELU", "SIGMOID"))
    key = _key(_block(), relu)
    assert key is not None and key == _key(_block(), again)
    assert _key(_block(), sigmoid) != key  # an edited converter misses
    moved = _registry_with(_sourceless("RELU", prefix="# a cell above grew\n\n\n"))
    assert _key(_block(), moved) == key  # the same code on other lines


def test_a_code_fingerprint_is_the_same_in_every_process():
    script = textwrap.dedent(f"""
        import sys, types
        from plugtrt.code_fingerprint import code_fingerprint
        module = types.ModuleType("notebook_plugin")
        exec({_SOURCELESS.format(kind="RELU")!r} + "SETS = {{'a', 'b', 'c', 'd'}}\\ndef f(): return SETS\\n",
             module.__dict__)
        print(code_fingerprint(module))
    """)
    prints = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(prints) == 1 and len(prints.pop().strip()) == 16


def test_a_sourceless_plugin_the_digest_cannot_describe_is_not_cached(caplog):
    module = _sourceless("RELU", "\nWEIGHT = torch.ones(3)\ndef _activation(ctx, node, args, kwargs):\n"
                                 "    return WEIGHT\n")
    with caplog.at_level(logging.DEBUG, logger="plugtrt"):
        assert _key(_block(), _registry_with(module)) is None
    assert "plugin notebook has no source file" in caplog.text and "torch.Tensor" in caplog.text


def _gpu(monkeypatch, name="NVIDIA H200", sms=132, memory=150 << 30, capability=(9, 0)):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: SimpleNamespace(
        name=name, multi_processor_count=sms, total_memory=memory))


@pytest.mark.parametrize("other", [{"name": "NVIDIA H100 80GB HBM3"}, {"sms": 114}, {"memory": 80 << 30},
                                   {"capability": (8, 0)}], ids=["name", "sm-count", "memory", "capability"])
def test_the_gpu_model_changes_the_engine_key(monkeypatch, other):
    _gpu(monkeypatch)
    h200 = _key(_block())
    assert h200 == _key(_block())
    _gpu(monkeypatch, **other)
    assert _key(_block()) != h200


class _BfloatRegion(torch.nn.Module):
    """A linear layer inside the model's own ``torch.autocast(bfloat16)`` region; with torch_executed_ops
    (``torch_ops``) its matmul stays in PyTorch."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 5)

    def forward(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return torch.relu(self.linear(x))


@pytest.mark.parametrize("torch_ops", [[], ["aten.addmm"]], ids=["engine", "pytorch"])
def test_a_models_autocast_region_under_an_ambient_autocast_of_another_dtype(torch_ops):
    """Found by the fuzzer: the graph traced under an ambient float16 autocast holds both
    autocasts' casts, yet the partitioned module ran under the ambient autocast again, so the
    reference runtime's matmul and PyTorch's addmm were cast to float16: float16 answers
    where eager gives the region's bfloat16."""
    torch.manual_seed(0)
    model, x = _BfloatRegion().eval(), torch.randn(3, 8)
    with torch.autocast("cpu", dtype=torch.float16), warnings.catch_warnings():
        warnings.simplefilter("error")  # the reference runtime noticed, and fell back at run time
        run = run_through_backend(model, [x], {"torch_executed_ops": torch_ops})
    assert run.outputs.dtype == run.expected.dtype == torch.bfloat16
    torch.testing.assert_close(run.outputs, run.expected, rtol=0, atol=0)
