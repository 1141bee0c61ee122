"""Helpers for the tests of data-dependent sizes (``nonzero``, ``x[mask]``, ``masked_select``,
``x[mask] = v``).

TensorRT-RTX 1.7's builder has no runner for the non-zero layer, so where it is the installed
TensorRT these ops cannot reach an engine through the backend, and the converters decline them.
:func:`one_network` still proves the converters: it traces a function as the backend does
(functionalised, with a shape environment, so each count is an unbacked symbol), lowers it with
the built-in passes, converts the whole graph into one real ``INetworkDefinition`` (TensorRT
infers every layer's shape and dtype), builds it where the builder can, and evaluates it with
the reference runtime for any number of inputs. Only the builder is skipped where it refuses.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from unittest import mock

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx
from torch.fx.experimental.symbolic_shapes import ShapeEnv

from plugtrt import engine
from plugtrt.compiler import lower
from plugtrt.converters import data_dependent
from plugtrt.interpreter import NetworkInterpreter
from plugtrt.network_snapshot import snapshot_network
from plugtrt.runtimes.reference import ReferenceProgram
from plugtrt.settings import CompilationSettings
from plugtrt.testing import plugin_registry

BUILDABLE = data_dependent.builder_refuses_non_zero() is None
"""Whether the installed TensorRT builds the non-zero layer (full TensorRT; not TensorRT-RTX 1.7)."""


def convertible() -> contextlib.AbstractContextManager:
    """Within it, the data-dependent converters accept their nodes even where the builder
    refuses them, for :func:`one_network` (which then skips the build)."""
    return mock.patch.object(data_dependent, "builder_refuses_non_zero", lambda: None)


def one_network(fn: Callable, example: Sequence[torch.Tensor], precision: torch.dtype = torch.float32
                ) -> tuple[Callable[..., list[torch.Tensor]], list, set[str]]:
    """``fn`` converted whole into one network for ``example``'s shapes and dtypes: a function
    evaluating it on new inputs, the output specs and the converters used."""
    mode = FakeTensorMode(shape_env=ShapeEnv())
    fakes = [mode.from_tensor(t, static_shapes=True) for t in example]
    with mode:
        gm = make_fx(torch.func.functionalize(fn, remove="mutations"), tracing_mode="fake")(*fakes)
    settings = CompilationSettings(precision=precision)
    registry = plugin_registry()
    gm = lower(gm, registry, settings)
    builder, network = engine.new_network()
    interpreter = NetworkInterpreter(gm, registry, settings, network)
    inputs, outputs = interpreter.run([n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder"])
    if BUILDABLE:
        snapshot = engine.build("data_dependent", builder, network, settings, tuple(inputs),
                                tuple(outputs)).network
    else:
        log = engine.tensorrt_logger()
        log.muted = True  # as engine.build does: reading a shape-tensor reshape back logs an error
        try:
            snapshot = snapshot_network(network)
        finally:
            log.muted = False
    program = ReferenceProgram(snapshot)

    def run(*values: torch.Tensor) -> list[torch.Tensor]:
        results = program.run({spec.name: v.to(spec.engine_dtype) for spec, v in zip(inputs, values)})
        return [results[spec.name].to(spec.model_dtype) for spec in outputs]

    return run, outputs, interpreter.converters_used


def masks_of(shape: Sequence[int], seed: int) -> list[torch.Tensor]:
    """A random mask of ``shape``, an all-False and an all-True one."""
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(shape, generator=g) > 0.5, torch.zeros(shape, dtype=torch.bool),
            torch.ones(shape, dtype=torch.bool)]
