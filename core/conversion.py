"""The public conversion API: what a converter receives, what it must return, and the helpers
every built-in converter uses. Third-party converter packages use exactly this module.

The contract of ``ConverterSpec.convert(ctx, node, args, kwargs)``:

- ``ctx`` is a :class:`ConversionContext`: the ``INetworkDefinition`` under construction
  (``ctx.network``), the :class:`~plugtrt.settings.CompilationSettings` (``ctx.settings``)
  and helpers for naming layers, constants, casts and broadcasting.
- ``node`` is the aten ``torch.fx.Node``; ``node.meta["val"]`` holds the fake tensor (or tuple)
  that tracing recorded, so its shape and dtype are known before any layer is added.
- ``args`` and ``kwargs`` are the node's arguments with every FX node replaced by its value in
  the network: an ``ITensor`` for a tensor, already in its *engine dtype*
  (:meth:`ConversionContext.engine_dtype`: floats in ``settings.precision``, int64 as int32
  under ``truncate_long_and_double``); a raw, empty ``torch.Tensor`` for an empty constant
  (TensorRT has no empty weights, so a converter that accepts empty inputs must skip them);
  python scalars, lists, dtypes and ``None`` as the node has them. At the positions listed in
  the record's ``constant_args``, a constant (frozen weight or folded value) arrives as its
  ``torch.Tensor`` instead, in the model's dtype: the converter folds it in torch or hands it
  to TensorRT as layer weights (:meth:`ConversionContext.weights`), and no constant layer is
  added for it unless the converter asks (:meth:`ConversionContext.constant`,
  :meth:`~ConversionContext.operand`).

Lean networks: everything that depends only on constants is computed in torch and emitted as
one constant of its final shape and dtype (:meth:`ConversionContext.operand`); a constant or
scalar that several layers read is one layer (:meth:`ConversionContext.constant` caches by
storage, shape, strides and dtype); :meth:`~ConversionContext.reshape`,
:meth:`~ConversionContext.cast` and :meth:`~ConversionContext.shuffle` add no layer when
nothing changes, and ``shuffle`` extends the previous shuffle where only this node reads it.
- It returns one ``ITensor`` for a tensor result, or a tuple of ``ITensor`` (``None`` for an
  element nobody reads) for a tuple result. Each tensor must have the shape recorded in
  ``node.meta["val"]`` and its engine dtype; the interpreter checks both and raises a
  :class:`~plugtrt.errors.ConversionError` naming the converter when they differ.
- It raises :class:`~plugtrt.errors.ConversionError` (or anything else: the interpreter wraps it
  with the converter's and plugin's names) when it cannot build the node; the block then runs in
  PyTorch. Its ``is_supported(node, settings)`` should have declined such nodes: validators read
  only the node and its fake values (:func:`static`, :func:`dtypes_ok`, :func:`arg` ...).

Every layer a converter adds is named after the node and its source line (:meth:`ConversionContext.name`
and :meth:`~ConversionContext.finish`), so TensorRT's errors and the engine reports point at
the user's code.

What a converter package may use is ``__all__``, nothing else (tests/core/test_boundaries.py
holds the built-in converters and the example package to it):

- reading a node (validators): :func:`val`, :func:`arg` (the one way to read an argument, of the
  node or of the converter's mapped ``args``/``kwargs``), :func:`node_tensors`,
  :func:`static_shapes`, :func:`nonempty`, :func:`dtypes_ok`, :func:`only_first_output_used`,
  :func:`constant_value`, :func:`is_dynamic`, :func:`same_shape`, :func:`sizes_computable`,
  :func:`scalar_computable`, :func:`unbacked_symbols`, :func:`builder_refusal`;
- building validators: :func:`static` and :func:`typed` (dtypes, with or without static
  shapes), :func:`all_of`, :class:`Declined` (declining with a reason the coverage report
  shows); the dtype sets ``FLOATS``, ``INTS``, ``NUMERIC``;
- building layers: :class:`ConversionContext` (``ctx``), :func:`is_tensor` (an ITensor of the
  network, where an argument may also arrive as a constant), :func:`elementwise`, :func:`unary`,
  :func:`activation`, :func:`reduce`, :func:`select`, :func:`where`, :func:`broadcast_to`,
  :func:`wrap_index`,
  :func:`linspace_fill`, :func:`out_dtype`, :func:`rank_of`, :func:`norm_dim`,
  :func:`axes_mask`; for dynamic shapes :func:`shape_tensor`, :func:`size_tensor`,
  :func:`bind_sizes`, :func:`lift_rank`, :func:`reshape_to`, :func:`slice_to`, :func:`trt_dims`;
- naming: :func:`describe`, :func:`source_line`; ``aten`` is ``torch.ops.aten``.
"""
from __future__ import annotations

import collections
import functools
import operator
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.fx
import torch.utils._pytree as pytree

from plugtrt.errors import ConversionError
from plugtrt.shapes import (  # re-exported: part of this public API
    bind_sizes,
    is_dynamic,
    lift_rank,
    same_shape,
    reshape_to,
    scalar_computable,
    shape_tensor,
    size_tensor,
    sizes_computable,
    slice_to,
    trt_dims,
    unbacked_symbols,
)
from plugtrt.trt_adapter import to_torch_dtype, to_trt_dtype, trt

__all__ = [
    "ConversionContext", "Declined", "FLOATS", "INTS", "NUMERIC", "Validator", "activation", "all_of",
    "arg", "aten", "axes_mask", "bind_sizes", "broadcast_to", "builder_refusal",
    "constant_value", "describe", "dtypes_ok", "elementwise", "is_dynamic", "is_tensor", "lift_rank",
    "linspace_fill", "node_tensors", "nonempty", "norm_dim", "only_first_output_used",
    "out_dtype", "rank_of", "reduce", "reshape_to", "same_shape", "scalar_computable", "select",
    "shape_tensor", "size_tensor", "sizes_computable", "slice_to", "source_line", "static",
    "static_shapes", "trt_dims", "typed", "unary", "unbacked_symbols", "val", "where", "wrap_index",
]

_TORCH_DIR = os.path.dirname(torch.__file__)
aten = torch.ops.aten

FLOATS = frozenset({torch.float32, torch.float16, torch.bfloat16})
INTS = frozenset({torch.int32, torch.int64})
NUMERIC = FLOATS | INTS
Validator = Callable[[torch.fx.Node, Any], bool]


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


def default_float_dtype(settings: Any) -> torch.dtype | None:
    """The engine's float dtype from ``precision``: None (the model's own) for float32."""
    return None if settings.precision == torch.float32 else settings.precision


class ConversionContext:
    """What a converter sees: the network under construction plus helpers.

    ``float_dtype`` is the dtype floats take inside the engine while the current node converts:
    None (``precision=float32``, the default) keeps every tensor in the model's own dtype, a
    half model computing in half as eager does; ``float16``/``bfloat16`` (the ``precision``
    option) casts float tensors to it; float32 in the regions :mod:`plugtrt.precision` keeps.
    """

    def __init__(self, network: Any, settings: Any):
        self.network = network
        self.settings = settings
        self.float_dtype: torch.dtype | None = default_float_dtype(settings)
        self._arrays: dict[int, np.ndarray] = {}  # trt.Weights does not copy: kept alive here
        self._constants: dict[tuple, Any] = {}  # one constant layer per value, shape and dtype
        self._casts: dict[tuple, Any] = {}  # (tensor name, dtype) -> the cast's output
        # shuffle output name -> [layer, first transpose, reshape, second transpose, FX node]
        self._shuffles: dict[str, list] = {}
        self.layers_saved: collections.Counter[str] = collections.Counter()
        """Layers not added, by reason (``shared constant``, ``merged shuffle``, ``no-op``):
        what the interpreter's debug line reports beside the layer count."""
        self._layer_count = 0
        self.symbols: dict[Any, Any] = {}
        """Symbolic size (sympy) -> its one-element int64 shape tensor (see :mod:`plugtrt.shapes`)."""

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
        if dtype in FLOATS:
            return self.float_dtype or dtype
        if dtype == torch.float64 and self.settings.truncate_long_and_double:
            return self.float_dtype or torch.float32
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
        """``tensor`` as ``dtype`` (no layer when it already is; one layer per tensor and dtype,
        however many readers ask)."""
        if self.dtype(tensor) == dtype:
            return tensor
        key = (tensor.name, dtype)
        if key not in self._casts:
            layer = self.network.add_cast(tensor, to_trt_dtype(dtype))
            self._casts[key] = self.name(layer, node, f"cast_{str(dtype).removeprefix('torch.')}").get_output(0)
        return self._casts[key]

    def saturating_cast(self, tensor: Any, dtype: torch.dtype, node: torch.fx.Node | None = None) -> Any:
        """``tensor`` as ``dtype``, with finite values beyond ``dtype``'s range clamped to its
        finite limits and inf and NaN kept: how a value crosses into the reduced precision that
        ``precision=half``/``bfloat16`` asks for. A plain cast would turn a finite float32 value
        (an attention mask of ``finfo(float32).min``, a large sum) into inf, and a fully masked
        softmax row into 0/0, where eager computes a finite answer. An explicit cast in the model
        is not this: it converts as eager casts, overflowing to inf.

        A plain :meth:`cast` where ``dtype`` holds every finite value of the tensor's type."""
        source = self.dtype(tensor)
        if not (source in FLOATS and dtype in FLOATS
                and torch.finfo(source).max > torch.finfo(dtype).max):
            return self.cast(tensor, dtype, node)
        key = (tensor.name, dtype, "saturated")
        if key not in self._casts:
            self._casts[key] = self.cast(self._clamp_finite(tensor, source, dtype, node), dtype, node)
        return self._casts[key]

    def _clamp_finite(self, x: Any, source: torch.dtype, target: torch.dtype,
                      node: torch.fx.Node | None) -> Any:
        """``x`` (of ``source`` dtype) with its finite values clamped into ``target``'s range:
        ``where(|x| < inf, clip(x, -limit, limit), x)``. The select keeps inf and NaN whatever
        TensorRT's CLIP does with them (a comparison with NaN is false)."""
        limit = torch.tensor(torch.finfo(target).max, dtype=source)
        if limit.double() > torch.finfo(target).max:  # rounded up (65504 in bfloat16 is 65536)
            limit = torch.nextafter(limit, torch.zeros_like(limit))
        limit = limit.item()
        finite = elementwise(self, unary(self, x, "ABS", node, "saturate_abs"), float("inf"),
                             "LESS", node, source, "saturate_finite")
        clamped = activation(self, x, "CLIP", node, -limit, limit, "saturate_clip")
        return self.finish(self.network.add_select(finite, clamped, x), node, suffix="saturate")

    def upcast(self, tensor: Any, node: torch.fx.Node | None = None) -> Any:
        """float32 view of a reduced-precision float tensor, for reductions and normalisations."""
        return self.cast(tensor, torch.float32, node) if self.dtype(tensor) in FLOATS else tensor

    # -- constants -------------------------------------------------------------
    def constant(self, value: Any, node: torch.fx.Node | None = None,
                 dtype: torch.dtype | None = None) -> Any:
        """A constant layer holding ``value`` (tensor, array or scalar), as ``dtype`` or its
        engine dtype; bfloat16 goes through a float32 constant and a cast (numpy has no bf16).

        The same tensor (same storage, shape and strides) asked for twice in one dtype gives the
        same constant layer, so a weight or scalar that several layers read is emitted once.
        Finite values beyond a half or bfloat16 range are clamped to its finite limits."""
        tensor = torch.as_tensor(value).detach()
        target = dtype or self.engine_dtype(tensor.dtype)
        key = (tensor.device, tensor.data_ptr(), tensor.dtype, tuple(tensor.shape),
               tensor.stride(), target)
        if key in self._constants:
            self.layers_saved["shared constant"] += 1
        else:
            self._constants[key] = self._new_constant(tensor, target, node)
        return self._constants[key][0]

    def _new_constant(self, tensor: torch.Tensor, target: torch.dtype,
                      node: torch.fx.Node | None) -> tuple[Any, torch.Tensor]:
        source = tensor
        if (target in (torch.float16, torch.bfloat16) and tensor.is_floating_point()
                and torch.finfo(tensor.dtype).max > torch.finfo(target).max):
            # a finite constant past the reduced type's range (a mask of finfo(float32).min) stays
            # finite at its limit, as a model written in that dtype would have it, not inf;
            # clamped in float32, where both types' limits are exact
            limit = torch.finfo(target)
            wide = tensor.float()
            tensor = torch.where(wide.isinf(), wide, wide.clamp(limit.min, limit.max))
        staged = torch.float32 if target == torch.bfloat16 else target
        # np.ascontiguousarray makes a 0-d array 1-d: reshape back, or a scalar gets rank 1
        array = self._keep(np.ascontiguousarray(tensor.to(device="cpu", dtype=staged).numpy()).reshape(
            tuple(tensor.shape)))
        layer = self.network.add_constant(tuple(array.shape), trt.Weights(array))
        out = self.name(layer, node, "const").get_output(0)
        # the source tensor stays referenced, so its address cannot be reused by another key
        return self.cast(out, target, node), source

    def weights(self, value: torch.Tensor, dtype: torch.dtype) -> Any:
        """``value`` as ``trt.Weights`` of ``dtype`` (float32, float16 or an integer type; numpy
        has no bfloat16) for a layer's own parameters (convolution kernels, scale
        coefficients), kept alive until the build."""
        if dtype == torch.bfloat16:
            raise ConversionError("layer weights cannot be bfloat16 (numpy has none); pass the "
                                  "value as a constant input (ctx.constant) instead")
        array = self._keep(np.ascontiguousarray(value.detach().to(device="cpu", dtype=dtype).numpy()))
        return trt.Weights(array)

    def _keep(self, array: np.ndarray) -> np.ndarray:
        self._arrays[array.ctypes.data] = array
        return array

    def weight_arrays(self) -> dict[int, np.ndarray]:
        """Address -> every array handed to TensorRT as weights so far."""
        return dict(self._arrays)

    def scalar(self, value: Any, dtype: torch.dtype, rank: int,
               node: torch.fx.Node | None = None) -> Any:
        """The python scalar ``value`` as a constant of ``dtype`` and ``rank`` unit dims, one
        per distinct (value, dtype, rank) in the network."""
        key = ("scalar", type(value), value, dtype, rank)
        if key in self._constants:
            self.layers_saved["shared constant"] += 1
        else:
            staged = torch.float32 if dtype == torch.bfloat16 else dtype
            tensor = torch.full((1,) * rank, value, dtype=staged)
            self._constants[key] = self._new_constant(tensor, dtype, node)
        return self._constants[key][0]

    # -- shapes ----------------------------------------------------------------
    def reshape(self, tensor: Any, shape: Sequence[Any], node: torch.fx.Node | None = None) -> Any:
        """``tensor`` reshaped (no layer when it has that shape already); sizes may be
        ``SymInt``s (see :func:`reshape_to`)."""
        if is_dynamic(shape):
            return reshape_to(self, tensor, shape, node)
        if tuple(tensor.shape) == tuple(shape):
            self.layers_saved["no-op"] += 1
            return tensor
        layer = self.network.add_shuffle(tensor)
        layer.reshape_dims = tuple(shape)
        return self.name(layer, node, "reshape").get_output(0)

    def shuffle(self, x: Any, node: torch.fx.Node, source: Any = None, *,
                shape: Sequence[Any] | None = None, perm: Sequence[int] | None = None) -> Any:
        """``x`` permuted by ``perm``, then reshaped to ``shape``: the layer of view, permute and
        the like, for ``node``. Adds no layer when nothing changes. ``source`` is the FX node
        whose value ``x`` is: when ``x`` is the output of another shuffle made here, and no
        node but ``node`` reads it (``source`` and the nodes passing it along unchanged, such as
        a ``clone``, have one user each), that layer is extended instead of adding one
        (``permute(view(x))`` is one shuffle, not two)."""
        if shape is not None and is_dynamic(shape):  # symbolic sizes: a shape tensor, not merged
            if perm is not None:
                x = self.shuffle(x, node, source, perm=perm)
            return reshape_to(self, x, shape, node)
        rank = len(x.shape)
        if perm is not None and tuple(perm) == tuple(range(rank)):
            perm = None
        if shape is not None and tuple(shape) == tuple(x.shape) and perm is None:
            shape = None
        if perm is None and shape is None:
            self.layers_saved["no-op"] += 1
            return x
        merged = self._shuffles.get(x.name)
        if (merged is not None and not x.is_network_output
                and self._only_reader(source, merged[4], node)
                and self._extend_shuffle(merged, perm, shape)):
            merged[4] = node
            self.layers_saved["merged shuffle"] += 1
            return x
        layer = self.network.add_shuffle(x)
        if perm is not None:
            layer.first_transpose = tuple(perm)
        if shape is not None:
            layer.reshape_dims = tuple(shape)
        out = self.finish(layer, node)
        self._shuffles[out.name] = [layer, tuple(perm) if perm is not None else None,
                                    tuple(shape) if shape is not None else None, None, node]
        return out

    @staticmethod
    def _only_reader(source: Any, producer: torch.fx.Node, node: torch.fx.Node) -> bool:
        """``node`` is the one reader of ``producer``'s value, which reaches it as ``source``
        through nodes that pass their first argument on unchanged."""
        for _ in range(8):  # a short chain of clones / no-op casts; longer ones are not merged
            if not isinstance(source, torch.fx.Node) or len(source.users) != 1:
                return False
            if source is producer:
                return True
            source = source.args[0] if source.args else None
        return False

    @staticmethod
    def _extend_shuffle(merged: list, perm: Sequence[int] | None,
                        shape: Sequence[int] | None) -> bool:
        """Fold ``perm`` then ``shape`` into an existing shuffle (first transpose, reshape,
        second transpose) when its form allows; False, changing nothing, when it does not."""
        layer, first, dims, second, _ = merged
        if perm is not None:
            if dims is None and second is None:  # transpose of a transpose: compose them
                first = tuple(first[i] for i in perm) if first is not None else tuple(perm)
            elif second is None:  # transpose after a reshape: the second transpose
                second = tuple(perm)
            else:
                second = tuple(second[i] for i in perm)
        if shape is not None:
            if second is not None:
                return False  # a reshape after the second transpose needs a layer of its own
            dims = tuple(shape)  # a reshape of a reshape is one reshape
        if first is not None:
            layer.first_transpose = first
        if dims is not None:
            layer.reshape_dims = dims
        if second is not None:
            layer.second_transpose = second
        merged[1:4] = [first, dims, second]
        return True

    def operand(self, x: Any, dtype: torch.dtype, rank: int, node: torch.fx.Node | None = None) -> Any:
        """``x`` (ITensor, python scalar or constant ``torch.Tensor``) as an ITensor of ``dtype``
        with ``rank`` dims (leading ones added): what TensorRT's elementwise and select layers
        need of each input. Constants are reshaped and cast in torch and emitted once, in
        their final shape and dtype, instead of as a constant plus shuffle and cast layers."""
        if isinstance(x, torch.Tensor):
            if x.dim() < rank:
                x = x.reshape((1,) * (rank - x.dim()) + tuple(x.shape))
            return self.constant(x, node, dtype=dtype)
        if not hasattr(x, "shape"):
            return self.scalar(x, dtype, rank, node)
        return lift_rank(self, self.cast(x, dtype, node), rank, node)


# -- reading nodes: validators read only the node and its fake values ----------------------
def val(node: Any) -> Any:
    """The fake value (FakeTensor, tuple of them, or python value) tracing recorded for
    ``node``; None for a non-node."""
    return node.meta.get("val") if isinstance(node, torch.fx.Node) else None


def node_tensors(node: torch.fx.Node) -> list[torch.Tensor]:
    """The fake tensors of ``node``'s result and of every node it reads: what support checks
    (dtypes, static shapes) look at."""
    return _tensors([val(node)] + [val(arg) for arg in node.all_input_nodes])


def _tensors(value: Any) -> list[torch.Tensor]:
    return [t for t in pytree.tree_leaves(value) if isinstance(t, torch.Tensor)]


def static_shapes(node: torch.fx.Node, *, last: int | None = None, allow_empty: bool = False) -> bool:
    """Every tensor the node reads or makes has a known, concrete shape (no SymInt), and (unless
    ``allow_empty``) at least one element: what a converter that builds static-shape layers
    needs. With ``last``, only each tensor's last ``last`` dims must be static (the channels and
    spatial dims of a convolution or pooling; leading dims such as the batch may be dynamic),
    and emptiness is not checked. :func:`static` is the validator built on it."""
    tensors = node_tensors(node)
    if last is not None:
        return all(isinstance(d, int) for t in tensors for d in t.shape[-last:] if last)
    if not tensors or not all(isinstance(d, int) for t in tensors for d in t.shape):
        return False
    return allow_empty or all(t.numel() > 0 for t in tensors)


def dtypes_ok(node: torch.fx.Node, allowed: Iterable[torch.dtype],
              inputs: Iterable[torch.dtype] | None = None) -> bool:
    """The node's result dtypes are in ``allowed`` and its tensor inputs' in ``inputs``
    (default: ``allowed``)."""
    allowed = frozenset(allowed)
    inputs = allowed if inputs is None else frozenset(inputs)
    results = _tensors(val(node))
    if not results or any(t.dtype not in allowed for t in results):
        return False
    return all(t.dtype in inputs for arg in node.all_input_nodes for t in _tensors(val(arg)))


def only_first_output_used(node: torch.fx.Node) -> bool:
    """Every user of a tuple-returning node reads element 0 (``getitem(node, 0)``)."""
    return all(u.op == "call_function" and u.target is operator.getitem and u.args[1] == 0
               for u in node.users)


class Declined:
    """What a validator returns to decline a node *with a reason*: false as a bool, and the reason
    is shown in the coverage report beside the op (``its converters decline these arguments:
    <reason>``), so a user learns what to change rather than only that the op stays in PyTorch."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Declined({self.reason!r})"


def arg(args: Sequence[Any], kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    """Argument ``index`` (positional) or keyword ``name`` of an op, else ``default``: the one
    way to read an argument, in a validator (``arg(node.args, node.kwargs, ...)``: FX nodes and
    python values) and in a converter (``arg(args, kwargs, ...)``: ITensors in place of nodes)."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def all_of(*checks: Validator) -> Validator:
    """A validator accepting a node when every check does."""
    def is_supported(node: torch.fx.Node, settings: Any) -> bool:
        return all(check(node, settings) for check in checks)
    return is_supported


def static(allowed: Iterable[torch.dtype] = NUMERIC, inputs: Iterable[torch.dtype] | None = None
           ) -> Validator:
    """Static shapes, results of ``allowed`` dtypes and inputs of ``inputs`` dtypes; float64
    counts as a float where ``truncate_long_and_double`` makes it one inside the engine."""
    check = typed(allowed, inputs)
    return lambda node, settings: static_shapes(node) and check(node, settings)


def typed(allowed: Iterable[torch.dtype] = NUMERIC, inputs: Iterable[torch.dtype] | None = None
          ) -> Validator:
    """As :func:`static`, but shapes may be dynamic: the validator of a converter whose layers
    take ``-1`` dims (declare ``supports_dynamic_shapes=True``). A static tensor must still have
    elements (TensorRT has no empty tensors); a dynamic one has at least dynamo's lower bound."""
    allowed = frozenset(allowed)
    inputs = allowed if inputs is None else frozenset(inputs)

    def widen(dtypes: frozenset, settings: Any) -> frozenset:
        truncate = getattr(settings, "truncate_long_and_double", False)
        return dtypes | {torch.float64} if truncate and dtypes & FLOATS else dtypes

    def check(node: torch.fx.Node, settings: Any) -> bool:
        return nonempty(node) and dtypes_ok(node, widen(allowed, settings), widen(inputs, settings))
    return check


def nonempty(node: torch.fx.Node) -> bool:
    """The node reads or makes tensors, none of them statically empty (a dynamic size is at least
    dynamo's lower bound, so never 0)."""
    tensors = node_tensors(node)
    return bool(tensors) and all(is_dynamic(t.shape) or t.numel() > 0 for t in tensors)


def norm_dim(dim: int, rank: int) -> int:
    """``dim`` in ``[0, rank)`` (a scalar, rank 0, takes dims 0 and -1)."""
    return dim % max(rank, 1)


def out_dtype(ctx: Any, node: torch.fx.Node, index: int | None = None) -> torch.dtype:
    """The engine dtype of the node's result (element ``index`` of a tuple result)."""
    value = val(node)
    if index is not None:
        value = value[index]
    return ctx.engine_dtype(value.dtype)


# -- building layers (converters) ----------------------------------------------------------
def is_tensor(x: Any) -> bool:
    """``x`` is a TensorRT ITensor of the network being built (not a ``torch.Tensor`` constant or
    a Python number, as arguments named in ``constant_args`` or folded scalars arrive)."""
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, torch.Tensor)


def rank_of(*xs: Any) -> int:
    """The largest rank among ``xs``' ITensors and constant torch tensors (0 for scalars)."""
    return max((len(x.shape) for x in xs if is_tensor(x) or isinstance(x, torch.Tensor)),
               default=0)


def elementwise(ctx: Any, a: Any, b: Any, op: str, node: torch.fx.Node, dtype: torch.dtype,
                suffix: str = "") -> Any:
    """``a <op> b`` computed in ``dtype`` (``op`` names a ``trt.ElementWiseOperation``)."""
    rank = rank_of(a, b)
    a, b = ctx.operand(a, dtype, rank, node), ctx.operand(b, dtype, rank, node)
    layer = ctx.network.add_elementwise(a, b, getattr(trt.ElementWiseOperation, op))
    return ctx.name(layer, node, suffix or op.lower()).get_output(0)


def select(ctx: Any, condition: Any, a: Any, b: Any, node: torch.fx.Node, suffix: str = "") -> Any:
    """``where(condition, a, b)`` of three tensors of one rank. Bool ``a`` and ``b`` become
    ``condition AND a OR NOT condition AND b``: TensorRT-RTX's builder fails on a select of bool
    values (``MyelinCheckException: host_instr.cpp:2989``), as in ``tril`` of a bool causal mask."""
    if ctx.dtype(a) != torch.bool:
        return ctx.name(ctx.network.add_select(condition, a, b), node, suffix).get_output(0)
    kept = elementwise(ctx, condition, a, "AND", node, torch.bool, f"{suffix}kept")
    other = elementwise(ctx, unary(ctx, condition, "NOT", node, f"{suffix}not"), b, "AND", node,
                        torch.bool, f"{suffix}other")
    return elementwise(ctx, kept, other, "OR", node, torch.bool, suffix or "select")


def where(ctx: Any, condition: Any, a: Any, b: Any, node: torch.fx.Node, dtype: torch.dtype,
          suffix: str = "select") -> Any:
    """``torch.where(condition, a, b)`` in ``dtype``: ``a`` and ``b`` may be ITensors, constants or
    Python scalars, and all three broadcast to one rank (through :meth:`ConversionContext.operand`)
    before :func:`select`."""
    rank = rank_of(condition, a, b)
    condition = ctx.operand(condition, torch.bool, rank, node)
    a, b = ctx.operand(a, dtype, rank, node), ctx.operand(b, dtype, rank, node)
    return select(ctx, condition, a, b, node, suffix)


def linspace_fill(ctx, shape, alpha, beta, dtype: torch.dtype, node):
    """A FILL LINSPACE of ``shape`` (ints or SymInts): ``alpha + sum_k beta[k] * index_k``, in
    ``dtype`` (int32, int64 or float32). Alpha and beta go in as tensors (a 0-d one and one of
    ``len(shape)`` elements), as TensorRT takes them for a rank above 1 or a dynamic shape."""
    trt_type = {torch.int32: trt.DataType.INT32, torch.int64: trt.DataType.INT64,
                torch.float32: trt.DataType.FLOAT}[dtype]
    dynamic = is_dynamic(shape)
    dims = (1,) * len(shape) if dynamic else tuple(int(d) for d in shape)
    layer = ctx.network.add_fill(dims, trt.FillOperation.LINSPACE, trt_type)
    if dynamic:  # the sizes as a shape tensor replace the static dims
        layer.set_input(0, shape_tensor(ctx, shape, node))
    layer.set_input(1, ctx.constant(torch.tensor(alpha, dtype=dtype), node, dtype=dtype))
    layer.set_input(2, ctx.constant(torch.tensor(list(beta), dtype=dtype), node, dtype=dtype))
    return ctx.finish(layer, node, suffix="linspace")


def unary(ctx: Any, x: Any, op: str, node: torch.fx.Node, suffix: str = "") -> Any:
    """``op(x)`` (``op`` names a ``trt.UnaryOperation``)."""
    layer = ctx.network.add_unary(x, getattr(trt.UnaryOperation, op))
    return ctx.name(layer, node, suffix or op.lower()).get_output(0)


def activation(ctx: Any, x: Any, kind: str, node: torch.fx.Node, alpha: float | None = None,
               beta: float | None = None, suffix: str = "") -> Any:
    """``kind(x)`` (``kind`` names a ``trt.ActivationType``; ``alpha``/``beta`` as it defines them)."""
    layer = ctx.network.add_activation(x, getattr(trt.ActivationType, kind))
    if alpha is not None:
        layer.alpha = alpha
    if beta is not None:
        layer.beta = beta
    return ctx.name(layer, node, suffix or kind.lower()).get_output(0)


def axes_mask(dims: Iterable[int], rank: int) -> int:
    mask = 0
    for d in dims:
        mask |= 1 << norm_dim(d, rank)
    return mask


def reduce(ctx: Any, x: Any, op: str, dims: Iterable[int], keepdim: bool,
           node: torch.fx.Node, suffix: str = "") -> Any:
    """Reduce ``x`` over ``dims`` with ``trt.ReduceOperation.<op>``."""
    layer = ctx.network.add_reduce(x, getattr(trt.ReduceOperation, op),
                                   axes_mask(dims, len(x.shape)), keepdim)
    return ctx.name(layer, node, suffix or f"reduce_{op.lower()}").get_output(0)


# -- helpers several converter families share ----------------------------------------------

def constant_value(node: Any) -> torch.Tensor | None:
    """The tensor a ``get_attr`` node holds (a frozen weight or folded constant); None otherwise."""
    if not isinstance(node, torch.fx.Node) or node.op != "get_attr" or node.graph.owning_module is None:
        return None
    try:
        value = operator.attrgetter(node.target)(node.graph.owning_module)
    except AttributeError:
        return None
    return value if isinstance(value, torch.Tensor) else None


def wrap_index(ctx, index: Any, size: Any, node: torch.fx.Node) -> Any:
    """``index`` with negative entries counted from the end of a dim of ``size`` (int or SymInt):
    ``where(index < 0, index + size, index)`` in the index's dtype."""
    dtype = ctx.dtype(index)
    rank = len(index.shape)
    if isinstance(size, int):
        bound = size
    else:
        bound = ctx.cast(size_tensor(ctx, size, node), dtype, node)
        bound = lift_rank(ctx, ctx.reshape(bound, (1,), node), max(rank, 1), node)
        if rank == 0:
            bound = ctx.reshape(bound, (), node)
    negative = elementwise(ctx, index, 0, "LESS", node, dtype, "negative")
    shifted = elementwise(ctx, index, bound, "SUM", node, dtype, "wrap")
    return ctx.finish(ctx.network.add_select(negative, shifted, index), node, suffix="wrapped")


def broadcast_to(ctx, x: Any, shape: tuple, node: torch.fx.Node, source: tuple | None = None) -> Any:
    """``x`` (of torch shape ``source``, default its own) broadcast to ``shape`` by a zero-stride
    slice; no layer when it has that shape already."""
    source = tuple(x.shape) if source is None else tuple(source)
    if same_shape(source, shape):
        return x
    source = (1,) * (len(shape) - len(source)) + source
    # a static size other than 1 is what the dim has (torch checked it equals the target's)
    shape = tuple(s if isinstance(s, int) and s != 1 else o for s, o in zip(source, shape))
    if same_shape(source, shape):
        return lift_rank(ctx, x, len(shape), node)
    x = lift_rank(ctx, x, len(shape), node)
    stride = tuple(0 if (isinstance(s, int) and s == 1 and not (isinstance(o, int) and o == 1)) else 1
                   for s, o in zip(source, shape))
    return slice_to(ctx, x, (0,) * len(shape), shape, stride, node, "broadcast")


# -- what the installed builder can build ----------------------------------------------------
@functools.cache
def builder_refusal(probe: Callable[[Any], None]) -> str | None:
    """Why the installed TensorRT cannot build a tiny network that ``probe(network)`` fills
    (a layer some flavours have no runner for: TensorRT-RTX 1.7's non-zero layer), or None when
    it builds it. Built once per process per probe; a validator declines its nodes on a refusal."""
    from plugtrt.engine import new_network, tensorrt_logger

    try:
        builder, network = new_network()
    except Exception as exc:  # TensorRT missing: nothing converts anyway
        return f"TensorRT is unavailable ({exc})"
    probe(network)
    log = tensorrt_logger()
    log.muted = True  # the refusal is the answer, not an error to show
    try:
        plan = builder.build_serialized_network(network, builder.create_builder_config())
    finally:
        log.muted = False
    return None if plan is not None else "the builder returned no engine for it"
