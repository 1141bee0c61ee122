"""Stage 5: one TensorRT block (an FX partition of aten nodes) -> ``INetworkDefinition``.

The interpreter owns the network's boundary (inputs in their engine dtypes, outputs cast back
to what the runtime hands the model) and calls a converter per node. It checks every result
against the node's recorded fake value, so a converter bug fails its block with a message
naming the converter instead of building an engine that computes the wrong shape or dtype.
"""
from __future__ import annotations

import logging
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.fx

from plugtrt.conversion import ConversionContext, default_float_dtype, describe, val
from plugtrt.dynamic import Bounds, engine_profiles
from plugtrt.engine import BoundarySpec
from plugtrt.errors import ConversionError
from plugtrt.precision import float32_nodes
from plugtrt.shapes import bind_input, is_dynamic, is_size_node, size_tensor, trt_dims, unbacked_symbols
from plugtrt.shapes import bounds as shape_bounds
from plugtrt.trt_adapter import to_trt_dtype

logger = logging.getLogger("plugtrt")


def _symbolic_number(node: torch.fx.Node, index: int, arg: Any) -> bool:
    """``arg`` is a symbolic size at a Tensor or Scalar parameter of ``node``'s op."""
    if not isinstance(arg, torch.fx.Node) or not isinstance(val(arg), (torch.SymInt, torch.SymFloat)):
        return False
    schema = getattr(node.target, "_schema", None)
    if schema is None or index >= len(schema.arguments):
        return False
    return str(schema.arguments[index].type) in _TENSOR_OR_SCALAR


_TENSOR_OR_SCALAR = frozenset({"Tensor", "number", "Optional[Tensor]", "Optional[number]"})
"""Schema types of the parameters where a symbolic size arrives as a 0-d tensor."""


class NetworkInterpreter:
    """Walks one TensorRT block (a partition submodule) and fills ``network``.

    ``input_values`` are the fake tensors of the block's inputs, in placeholder order; they
    give each network input its name, shape and dtype.
    """

    def __init__(self, gm: torch.fx.GraphModule, registry: Any, settings: Any, network: Any):
        self.gm = gm
        self.registry = registry
        self.ctx = ConversionContext(network, settings)
        self.converters_used: set[str] = set()
        self.float32 = float32_nodes(gm, settings.precision)
        """Nodes computed in float32 whatever the precision (see :mod:`plugtrt.precision`)."""
        self.profiles: tuple[Bounds, ...] = ()
        """The engine's optimization profiles (:func:`plugtrt.dynamic.engine_profiles`), set by
        :meth:`run`."""

    def run(self, input_values: Sequence[Any], bounds: Mapping[Any, tuple[int, int, int]] | None = None,
            split: bool = True) -> tuple[list[BoundarySpec], list[BoundarySpec]]:
        """Convert the block; returns the specs of the network's inputs and outputs.

        ``input_values`` are the placeholders' fake values (tensors, or ``SymInt`` sizes computed
        outside the block); ``bounds`` maps each symbolic size to its (min, opt, max), which
        :func:`plugtrt.dynamic.engine_profiles` splits into the engine's optimization profiles
        (several where a range spans more than 8×, unless ``split`` is False); every dynamic
        input gets its shapes in each.
        """
        env: dict[torch.fx.Node, Any] = {}
        placeholders = [n for n in self.gm.graph.nodes if n.op == "placeholder"]
        values = dict(zip(placeholders, input_values, strict=True))
        self.profiles = engine_profiles(bounds, input_values, split)
        inputs = []
        self._input_symbols = {s for v in values.values() if isinstance(v, torch.Tensor)
                               for d in v.shape if isinstance(d, torch.SymInt) for s in d.node.expr.free_symbols}
        for node, value in values.items():
            if isinstance(value, torch.Tensor):
                spec = self._input_spec(f"input_{len(inputs)}", value)
                tensor = self.ctx.network.add_input(spec.name, to_trt_dtype(spec.engine_dtype), spec.shape)
                bind_input(self.ctx, tensor, value, node)
                env[node] = tensor  # each reader casts it to its own precision (see _tensor)
                inputs.append(spec)
        for node, value in values.items():
            if not isinstance(value, torch.Tensor):  # a size computed in PyTorch: recomputed here
                symbolic = isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool))
                env[node] = size_tensor(self.ctx, value, node) if symbolic else value
        for node in self.gm.graph.nodes:
            if node.op == "get_attr":
                # A constant becomes a layer only where a converter reads it as an ITensor
                # (see _arguments): converters that fold it in torch or take it as layer
                # weights leave no unused constant layer behind.
                env[node] = operator.attrgetter(node.target)(self.gm)
            elif node.op == "call_function":
                env[node] = self._call(node, env)
            elif node.op == "output":
                outputs = self._mark_outputs(node, env)
                saved = ", ".join(f"{n} {why}" for why, n in self.ctx.layers_saved.most_common())
                logger.debug("converted %d nodes into %d layers (not added: %s)",
                             len(self.gm.graph.nodes), self.ctx.network.num_layers, saved or "none")
                return inputs, outputs
        raise ConversionError("graph has no output node")

    def _input_spec(self, name: str, value: torch.Tensor) -> BoundarySpec:
        profiles: tuple = ()
        if is_dynamic(value.shape):
            if not self.profiles:
                raise ConversionError(f"engine input {name} has symbolic sizes {tuple(value.shape)} but "
                                      "no bounds were given for an optimization profile")
            profiles = tuple(tuple(shape_bounds(value.shape, {s: b[k] for s, b in profile.items()})
                                   for k in range(3)) for profile in self.profiles)
        return BoundarySpec(name=name, shape=trt_dims(value.shape), model_dtype=value.dtype,
                            engine_dtype=self.ctx.boundary_dtype(value.dtype), profiles=profiles)

    def _call(self, node: torch.fx.Node, env: dict) -> Any:
        default = default_float_dtype(self.ctx.settings)
        self.ctx.float_dtype = torch.float32 if node in self.float32 else default
        try:
            return self._convert(node, env)
        finally:
            self.ctx.float_dtype = default

    def _tensor(self, node: torch.fx.Node, env: dict) -> Any:
        """``node``'s value as converters read it: a constant as a (shared) constant layer's
        output, except an empty one (TensorRT has no empty constants; converters that accept
        empty inputs skip them); an ITensor in its engine dtype under the converting node's
        precision (a cast where a float32 region or input meets a reduced-precision reader,
        saturating: see :meth:`~plugtrt.conversion.ConversionContext.saturating_cast`)."""
        value, fake = env[node], val(node)
        if node.op == "get_attr" and isinstance(value, torch.Tensor) and value.numel():
            return self.ctx.constant(value, node)
        if hasattr(value, "dtype") and not isinstance(value, torch.Tensor) and isinstance(fake, torch.Tensor):
            return self.ctx.saturating_cast(value, self.ctx.engine_dtype(fake.dtype), node)
        return value

    def _arguments(self, node: torch.fx.Node, env: dict, constant_args: frozenset[int]) -> tuple:
        """The converter's ``args`` and ``kwargs``; at ``constant_args`` positions, a constant
        arrives as its ``torch.Tensor``."""
        args = tuple(
            env[a] if i in constant_args and isinstance(a, torch.fx.Node) and a.op == "get_attr"
            else self._scalar(node, i, a, env) if _symbolic_number(node, i, a)
            else torch.fx.node.map_arg(a, lambda n: self._tensor(n, env))
            for i, a in enumerate(node.args))
        return args, torch.fx.node.map_arg(node.kwargs, lambda n: self._tensor(n, env))

    def _scalar(self, node: torch.fx.Node, index: int, arg: torch.fx.Node, env: dict) -> Any:
        """A size passed where the op takes a Tensor or a Scalar: a 0-d tensor, as torch wraps a
        Python number (a size tensor has one element, which would add a dim to the result)."""
        return self.ctx.reshape(env[arg], (), node)

    def _convert(self, node: torch.fx.Node, env: dict) -> Any:
        if node.target is operator.getitem:
            return env[node.args[0]][node.args[1]]
        if is_size_node(node):
            return size_tensor(self.ctx, val(node), node)
        reg = self.registry.converter_for(node, self.ctx.settings)
        if reg is None:
            raise ConversionError(f"no converter accepts {describe(node)}")
        args, kwargs = self._arguments(node, env, reg.record.constant_args)
        self.converters_used.add(reg.record.name)
        try:
            result = reg.record.convert(self.ctx, node, args, kwargs)
        except ConversionError:
            raise
        except Exception as exc:
            raise ConversionError(
                f"converter {reg.record.name!r} (plugin {reg.plugin!r}) failed on {describe(node)}: "
                f"{exc!r}") from exc
        self._check_result(node, result, reg)
        return self._pin_static_sizes(node, result)

    def _pin_static_sizes(self, node: torch.fx.Node, result: Any) -> Any:
        """Each result reshaped where TensorRT computes a size at runtime (-1) that tracing
        knows as a number: dynamo's guards can fix a size (a 32x32 image's last ResNet stage is
        1x1) that TensorRT derives from dynamic ones, and later layers (a flatten, a linear)
        need it static."""
        def pin(got: Any, want: Any) -> Any:
            if got is None or isinstance(got, torch.Tensor) or not isinstance(want, torch.Tensor):
                return got
            known = trt_dims(want.shape)
            if all(g != -1 or w == -1 for g, w in zip(got.shape, known)):
                return got
            return self.ctx.reshape(got, tuple(want.shape), node)

        expected = val(node)
        if isinstance(result, (tuple, list)):
            return type(result)(pin(g, w) for g, w in zip(result, expected))
        return pin(result, expected)

    def _check_result(self, node: torch.fx.Node, result: Any, reg: Any) -> None:
        """Each tensor the converter returned has the recorded shape and its engine dtype."""
        expected = val(node)
        got_all = tuple(result) if isinstance(result, (tuple, list)) else (result,)
        want_all = tuple(expected) if isinstance(expected, (tuple, list)) else (expected,)
        where = f"converter {reg.record.name!r} (plugin {reg.plugin!r}) on {describe(node)}"
        if len(got_all) != len(want_all):
            raise ConversionError(f"{where} returned {len(got_all)} values where the op returns "
                                  f"{len(want_all)}; return a tuple shaped like the op's result "
                                  "(None for elements nobody reads)")
        for i, (got, want) in enumerate(zip(got_all, want_all)):
            if got is None or not isinstance(want, torch.Tensor) or isinstance(got, torch.Tensor):
                continue  # unread element, non-tensor result, or an empty constant passed through
            shape, dtype = tuple(got.shape), self.ctx.dtype(got)
            want_shape, want_dtype = trt_dims(want.shape), self.ctx.engine_dtype(want.dtype)
            agree = len(shape) == len(want_shape) and all(  # -1: a size known at runtime
                w == -1 or g in (w, -1) for g, w in zip(shape, want_shape))
            if not agree or dtype != want_dtype:
                raise ConversionError(
                    f"{where} returned result {i} of shape {shape} and dtype {dtype}; the op gives "
                    f"shape {want_shape} and, inside the engine, dtype {want_dtype}. The converter "
                    "is wrong for these arguments: fix it, or make its is_supported decline them")

    def _mark_outputs(self, node: torch.fx.Node, env: dict) -> list[BoundarySpec]:
        results = node.args[0] if isinstance(node.args[0], (tuple, list)) else (node.args[0],)
        specs = []
        for i, result in enumerate(results):
            value = val(result)
            # a size that no input's shape gives is counted inside the engine: known after running
            data_dependent = bool(unbacked_symbols(value.shape) - self._input_symbols)
            spec = BoundarySpec(name=f"output_{i}", shape=trt_dims(value.shape), model_dtype=value.dtype,
                                engine_dtype=self.ctx.boundary_dtype(value.dtype),
                                data_dependent=data_dependent)
            # read at the precision its producer computed it in: a float32 statistic that leaves
            # the engine must not round-trip through half on the way out
            default = default_float_dtype(self.ctx.settings)
            self.ctx.float_dtype = torch.float32 if result in self.float32 else default
            try:
                tensor = self.ctx.cast(self._tensor(result, env), spec.engine_dtype, result)
            finally:
                self.ctx.float_dtype = default
            if tensor.is_network_input or tensor.is_network_output:
                tensor = self.ctx.finish(self.ctx.network.add_identity(tensor), result, suffix="output")
            tensor.name = spec.name
            self.ctx.network.mark_output(tensor)
            specs.append(spec)
        return specs
