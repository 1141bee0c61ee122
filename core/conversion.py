"""FX (aten) graph -> TensorRT ``INetworkDefinition``: the conversion context and interpreter.

Converters receive a :class:`ConversionContext` and use its helpers for what every converter
needs (naming layers after the FX node, constants, casts, broadcasting), so each converter
is only the op's own logic. Networks are strongly typed: ``precision`` is applied here, by
casting float inputs and constants to it, and casting outputs back to the model's dtypes.
"""
from __future__ import annotations

import operator
import os
import re
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import torch
import torch.fx
import torch.utils._pytree as pytree

from plugtrt.errors import ConversionError
from plugtrt.trt_adapter import to_torch_dtype, to_trt_dtype, trt

_TORCH_DIR = os.path.dirname(torch.__file__)
_FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def source_line(node: torch.fx.Node) -> str:
    """``file.py:42`` of the user code that produced ``node`` (the innermost frame outside
    torch itself); else the module it came from; else ``<unknown source>``."""
    frames = []
    for line in (node.meta.get("stack_trace") or "").splitlines():
        line = line.strip()
        if line.startswith("File "):
            parts = line.split(",")
            path = parts[0][len("File "):].strip().strip('"')
            lineno = parts[1].strip().removeprefix("line ") if len(parts) > 1 else "?"
            frames.append((path, lineno))
    if not frames:
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            path, kind = list(stack.values())[-1]
            path = re.sub(r"^L\['[^']+'\]\.?", "", str(path)) or "<root>"
            return f"module {path} ({getattr(kind, '__name__', kind)})"
        return "<unknown source>"
    user = [f for f in frames if not f[0].startswith(_TORCH_DIR)] or frames
    path, lineno = user[-1]
    return f"{path.rsplit('/', 1)[-1]}:{lineno}"


def describe(node: torch.fx.Node) -> str:
    """How errors and warnings name a node: op, FX name and source line."""
    return f"{node.target} (node {node.name!r} at {source_line(node)})"


class ConversionContext:
    """What a converter sees: the network under construction plus helpers.

    ``float_dtype`` is the dtype floats take inside the engine (the ``precision`` option).
    """

    def __init__(self, network: Any, settings: Any):
        self.network = network
        self.settings = settings
        self.float_dtype: torch.dtype = settings.precision
        self._keep_alive: list[np.ndarray] = []  # trt.Weights does not copy
        self._layer_count = 0

    # -- naming ----------------------------------------------------------------
    def name(self, layer: Any, node: torch.fx.Node | None, suffix: str = "") -> Any:
        """Name ``layer`` after its FX node and source line, unique within the network."""
        if layer is None:  # TensorRT returns no layer when an add_* call fails its checks
            where = describe(node) if node is not None else "the network's boundary"
            raise ConversionError(f"TensorRT rejected a layer for {where}; its log says why")
        self._layer_count += 1
        base = f"{node.name} [{node.target}] ({source_line(node)})" if node is not None else "plugtrt"
        layer.name = f"{base}{'.' + suffix if suffix else ''} #{self._layer_count}"
        return layer

    def finish(self, layer: Any, node: torch.fx.Node, output: int = 0, suffix: str = "") -> Any:
        """Name ``layer`` and return its output ``output``: the last line of most converters."""
        return self.name(layer, node, suffix).get_output(output)

    # -- dtypes ----------------------------------------------------------------
    @staticmethod
    def dtype(tensor: Any) -> torch.dtype:
        return to_torch_dtype(tensor.dtype)

    def engine_dtype(self, dtype: torch.dtype) -> torch.dtype:
        """The dtype a model tensor of ``dtype`` has inside the engine."""
        if dtype in _FLOATS:
            return self.float_dtype
        if dtype == torch.float64 and self.settings.truncate_long_and_double:
            return self.float_dtype
        if dtype == torch.int64 and self.settings.truncate_long_and_double:
            return torch.int32
        return dtype

    def boundary_dtype(self, dtype: torch.dtype) -> torch.dtype:
        """The dtype an engine input or output has for a model tensor of ``dtype``: the model's
        own, except what TensorRT lacks (float64, and int64 under truncate_long_and_double)."""
        if dtype == torch.float64:
            return torch.float32
        if dtype == torch.int64 and self.settings.truncate_long_and_double:
            return torch.int32
        return dtype

    def cast(self, tensor: Any, dtype: torch.dtype, node: torch.fx.Node | None = None) -> Any:
        """``tensor`` as ``dtype`` (no layer when it already is)."""
        if self.dtype(tensor) == dtype:
            return tensor
        layer = self.network.add_cast(tensor, to_trt_dtype(dtype))
        return self.name(layer, node, f"cast_{str(dtype).removeprefix('torch.')}").get_output(0)

    def upcast(self, tensor: Any, node: torch.fx.Node | None = None) -> Any:
        """float32 view of a reduced-precision float tensor, for reductions and normalisations."""
        return self.cast(tensor, torch.float32, node) if self.dtype(tensor) in _FLOATS else tensor

    # -- constants -------------------------------------------------------------
    def constant(self, value: Any, node: torch.fx.Node | None = None,
                 dtype: torch.dtype | None = None) -> Any:
        """A constant layer holding ``value`` (tensor, array or scalar), as ``dtype`` or its
        engine dtype; bfloat16 goes through a float32 constant and a cast (numpy has no bf16)."""
        tensor = torch.as_tensor(value).detach()
        target = dtype or self.engine_dtype(tensor.dtype)
        staged = torch.float32 if target == torch.bfloat16 else target
        # np.ascontiguousarray makes a 0-d array 1-d: reshape back, or a scalar gets rank 1
        array = np.ascontiguousarray(tensor.to(device="cpu", dtype=staged).numpy()).reshape(
            tuple(tensor.shape))
        self._keep_alive.append(array)
        layer = self.network.add_constant(tuple(array.shape), trt.Weights(array))
        out = self.name(layer, node, "const").get_output(0)
        return self.cast(out, target, node)

    # -- shapes ----------------------------------------------------------------
    def reshape(self, tensor: Any, shape: Sequence[int], node: torch.fx.Node | None = None) -> Any:
        layer = self.network.add_shuffle(tensor)
        layer.reshape_dims = tuple(shape)
        return self.name(layer, node, "reshape").get_output(0)

    def operand(self, x: Any, dtype: torch.dtype, rank: int, node: torch.fx.Node | None = None) -> Any:
        """``x`` (ITensor or python scalar) as an ITensor of ``dtype`` with ``rank`` dims (leading
        ones added): what TensorRT's elementwise and select layers need of each input."""
        if not hasattr(x, "shape") or isinstance(x, torch.Tensor):
            staged = torch.float32 if dtype == torch.bfloat16 else dtype
            return self.constant(torch.full((1,) * rank, x, dtype=staged), node, dtype=dtype)
        x = self.cast(x, dtype, node)
        if len(x.shape) < rank:
            x = self.reshape(x, (1,) * (rank - len(x.shape)) + tuple(x.shape), node)
        return x


@attrs.frozen(kw_only=True)
class BoundarySpec:
    """One engine input or output: the runtime casts ``model_dtype`` <-> ``engine_dtype``."""

    name: str
    shape: tuple[int, ...]
    model_dtype: torch.dtype
    engine_dtype: torch.dtype


def fake_value(node: torch.fx.Node) -> Any:
    """The FakeTensor (or tuple of them) that tracing recorded for ``node``."""
    return node.meta.get("val")


def node_tensors(node: torch.fx.Node) -> list[torch.Tensor]:
    """The fake tensors of ``node``'s result and of every node it reads: what support checks
    (dtypes, static shapes) look at."""
    values = [fake_value(node)] + [fake_value(arg) for arg in node.all_input_nodes]
    return [t for t in pytree.tree_leaves(values) if isinstance(t, torch.Tensor)]


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

    def run(self, input_values: Sequence[torch.Tensor]) -> tuple[list[BoundarySpec], list[BoundarySpec]]:
        """Convert the block; returns the specs of the network's inputs and outputs."""
        env: dict[torch.fx.Node, Any] = {}
        placeholders = [n for n in self.gm.graph.nodes if n.op == "placeholder"]
        inputs = []
        for node, value in zip(placeholders, input_values, strict=True):
            spec = BoundarySpec(name=f"input_{len(inputs)}", shape=tuple(value.shape),
                              model_dtype=value.dtype, engine_dtype=self.ctx.boundary_dtype(value.dtype))
            tensor = self.ctx.network.add_input(spec.name, to_trt_dtype(spec.engine_dtype), spec.shape)
            env[node] = self.ctx.cast(tensor, self.ctx.engine_dtype(value.dtype), node)
            inputs.append(spec)
        for node in self.gm.graph.nodes:
            if node.op == "get_attr":
                value = operator.attrgetter(node.target)(self.gm)
                # TensorRT has no empty constants; converters that accept empty inputs skip them
                env[node] = self.ctx.constant(value, node) if value.numel() else value
            elif node.op == "call_function":
                env[node] = self._call(node, env)
            elif node.op == "output":
                return inputs, self._mark_outputs(node, env)
        raise ConversionError("graph has no output node")

    def _call(self, node: torch.fx.Node, env: dict) -> Any:
        args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: env[n])
        if node.target is operator.getitem:
            return args[0][args[1]]
        reg = self.registry.converter_for(node, self.ctx.settings)
        if reg is None:
            raise ConversionError(f"no converter accepts {describe(node)}")
        self.converters_used.add(reg.record.name)
        try:
            return reg.record.convert(self.ctx, node, args, kwargs)
        except ConversionError:
            raise
        except Exception as exc:
            raise ConversionError(
                f"converter {reg.record.name!r} (plugin {reg.plugin!r}) failed on {describe(node)}: "
                f"{exc!r}") from exc

    def _mark_outputs(self, node: torch.fx.Node, env: dict) -> list[BoundarySpec]:
        results = node.args[0] if isinstance(node.args[0], (tuple, list)) else (node.args[0],)
        specs = []
        for i, result in enumerate(results):
            value = fake_value(result)
            spec = BoundarySpec(name=f"output_{i}", shape=tuple(value.shape), model_dtype=value.dtype,
                              engine_dtype=self.ctx.boundary_dtype(value.dtype))
            tensor = self.ctx.cast(env[result], spec.engine_dtype, result)
            if tensor.is_network_input or tensor.is_network_output:
                tensor = self.ctx.finish(self.ctx.network.add_identity(tensor), result, suffix="output")
            tensor.name = spec.name
            self.ctx.network.mark_output(tensor)
            specs.append(spec)
        return specs
