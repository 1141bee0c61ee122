"""Helpers the padding and layout tests share."""
from __future__ import annotations

import torch
import torch.utils._pytree as pytree

from plugtrt.testing import BackendRun, tolerance


def converters_used(run: BackendRun) -> set[str]:
    """The converters that built ``run``'s engines."""
    return {name for report in run.reports for engine in report.engines for name in engine.converters}


def convert_directly(fn, inputs, precision: torch.dtype = torch.float32) -> set[str]:
    """Trace ``fn`` as export's tracer does (pre-dispatch, so composite ops such as ``chunk``
    or ``pad`` stay whole, as they never do through torch.compile), convert every node with the
    built-in converters (a declined node fails), build the engine, evaluate it with the
    reference runtime and compare with eager. Returns the converters used."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from plugtrt import engine
    from plugtrt.interpreter import NetworkInterpreter
    from plugtrt.manager import default_registry
    from plugtrt.runtimes.reference import evaluate
    from plugtrt.settings import CompilationSettings

    expected = pytree.tree_leaves(fn(*inputs))
    gm = make_fx(fn, tracing_mode="fake", pre_dispatch=True)(*inputs)
    gm.graph.eliminate_dead_code()
    settings = CompilationSettings(precision=precision)
    builder, network = engine.new_network()
    interpreter = NetworkInterpreter(gm, default_registry(), settings, network)
    specs_in, specs_out = interpreter.run([n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder"])
    artifact = engine.build("direct", builder, network, settings, tuple(specs_in), tuple(specs_out))
    results = evaluate(artifact.network, {s.name: t for s, t in zip(specs_in, inputs)})
    outputs = [results[s.name].to(s.model_dtype) for s in specs_out]
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected):
        assert got.dtype == want.dtype and got.shape == want.shape, (got.shape, want.shape)
        rtol, atol = tolerance(want.dtype, precision)
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol, equal_nan=True)
    return set(interpreter.converters_used)
