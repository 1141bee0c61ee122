"""Converting ops that ``torch.compile`` never hands over whole (composites such as
``aten.rms_norm``, ``aten.scaled_dot_product_attention``, ``aten.einsum``) but pre-dispatch
tracers (``torch.export``, ``make_fx(pre_dispatch=True)``) keep: trace, convert with the built-in
converters, build the engine, evaluate it with the reference runtime, compare with eager."""
from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

import torch
import torch.utils._pytree as pytree

from plugtrt.testing import tolerance


def assert_pre_dispatch_converts(fn: Callable, inputs: Sequence[torch.Tensor], converter: str,
                                 precision: torch.dtype = torch.float32, rtol: float | None = None,
                                 atol: float | None = None, expected: Callable | None = None) -> None:
    """:func:`convert_pre_dispatch`, and ``converter`` is among the converters used."""
    used = convert_pre_dispatch(fn, inputs, precision, rtol, atol, expected)
    assert converter in used, sorted(used)


def convert_pre_dispatch(fn: Callable, inputs: Sequence[torch.Tensor],
                         precision: torch.dtype = torch.float32, rtol: float | None = None,
                         atol: float | None = None, expected: Callable | None = None) -> set[str]:
    """``fn(*inputs)`` traced pre-dispatch converts entirely, and the engine's outputs equal
    eager's (``expected(*inputs)``'s, for kernels that exist only on CUDA: tracing on CPU uses
    their meta functions). Returns the converters used."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from plugtrt import engine
    from plugtrt.interpreter import NetworkInterpreter
    from plugtrt.manager import default_registry
    from plugtrt.runtimes.reference import evaluate
    from plugtrt.settings import CompilationSettings

    expected = pytree.tree_leaves((expected or fn)(*inputs))
    gm = make_fx(fn, tracing_mode="fake", pre_dispatch=True)(*inputs)
    gm.graph.eliminate_dead_code()
    settings = CompilationSettings(precision=precision)
    declined = [n.target for n in gm.graph.nodes if n.op == "call_function"
                and n.target is not operator.getitem
                and default_registry().converter_for(n, settings) is None]
    assert not declined, f"validators decline {declined}"
    builder, network = engine.new_network()
    interpreter = NetworkInterpreter(gm, default_registry(), settings, network)
    specs_in, specs_out = interpreter.run([n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder"])
    artifact = engine.build("pre_dispatch", builder, network, settings, tuple(specs_in), tuple(specs_out))
    results = evaluate(artifact.network, {s.name: t for s, t in zip(specs_in, inputs)})
    outputs = [results[s.name].to(s.model_dtype) for s in specs_out]
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected):
        assert got.dtype == want.dtype and got.shape == want.shape, (got.shape, want.shape)
        r, a = tolerance(want.dtype, precision)
        torch.testing.assert_close(got, want, rtol=r if rtol is None else rtol,
                                   atol=a if atol is None else atol, equal_nan=True)
    return set(interpreter.converters_used)
