"""Built-in converters for ops that create tensors: arange, linspace, full/zeros/ones/empty and
their ``_like`` and ``new_*`` forms, fill/zero, eye, tril/triu and lift_fresh_copy.

What these ops make depends only on their arguments and on the *metadata* of the tensors they
read (``x.new_zeros(...)``, ``torch.zeros_like(x)``), never on values (``fill.Tensor`` and
``tril``/``triu`` aside). Sizes come from the node's fake value, so:

- static sizes give one constant of the final shape and dtype (small) or a one-element constant
  broadcast by a stride-0 slice (large); the ``fold_constants`` lowering pass usually folds such
  nodes, and what they feed, before any converter sees them;
- symbolic sizes give the same broadcast with the sizes as a shape tensor, and ``arange`` and
  ``eye`` a TensorRT FILL layer (LINSPACE) whose shape is that tensor.

``empty``, ``empty_like``, ``empty_strided``, ``new_empty`` and ``new_empty_strided`` make
zeros: torch leaves their values undefined, so any values are correct, and zeros keep engines
(and the engine cache key of folded constants) deterministic.

``device`` and ``pin_memory`` are ignored as ``_to_copy`` ignores them (an engine's tensors live
on its device); ``requires_grad`` is ignored (engines are inference only); a layout other than
strided is declined.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS,
    INTS,
    NUMERIC,
    arg,
    aten,
    is_dynamic,
    lift_rank,
    linspace_fill,
    nonempty,
    select,
    shape_tensor,
    sizes_computable,
    slice_to,
    val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

_ANY = NUMERIC | {torch.bool}
_CONSTANT_LIMIT = 1 << 12
"""Static results up to this many elements are one constant of their final shape; larger ones
are a one-element constant broadcast by a stride-0 slice, so the network holds no big weights."""

# target -> the fill value (a number), or (position, keyword) of the argument holding it
_FILLS: dict = {
    aten.zeros.default: 0, aten.ones.default: 1, aten.empty.memory_format: 0,
    aten.empty_strided.default: 0, aten.zeros_like.default: 0, aten.ones_like.default: 1,
    aten.empty_like.default: 0, aten.new_zeros.default: 0, aten.new_ones.default: 1,
    aten.new_empty.default: 0, aten.new_empty_strided.default: 0, aten.zero.default: 0,
    aten.full.default: (1, "fill_value"), aten.full_like.default: (1, "fill_value"),
    aten.new_full.default: (2, "fill_value"), aten.fill.Scalar: (1, "value"),
}


# -- shared ---------------------------------------------------------------------------------
def _staged(dtype: torch.dtype) -> torch.dtype:
    """The dtype a torch constant is built in: bfloat16 goes through float32 (numpy has none)."""
    return torch.float32 if dtype == torch.bfloat16 else dtype


def broadcast(ctx, x, shape, node: torch.fx.Node):
    """``x`` (every dim 1, rank ``len(shape)``) repeated to ``shape`` by a stride-0 slice."""
    if not shape:
        return x
    if not is_dynamic(shape) and tuple(x.shape) == tuple(int(d) for d in shape):
        return x
    return slice_to(ctx, x, (0,) * len(shape), tuple(shape), (0,) * len(shape), node, "broadcast")


def _filled(ctx, node, value):
    """The node's result: ``value`` in every element."""
    out = val(node)
    dtype, shape = out.dtype, tuple(out.shape)
    engine = ctx.engine_dtype(dtype)
    exact = torch.tensor(value, dtype=_staged(dtype)).item()  # as torch rounds it to the dtype
    if not is_dynamic(shape) and math.prod(shape) <= _CONSTANT_LIMIT:
        return ctx.constant(torch.full(shape, exact, dtype=_staged(dtype)), node, dtype=engine)
    return broadcast(ctx, ctx.scalar(exact, engine, len(shape), node), shape, node)


def _is_number(x) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, torch.fx.Node)


def _plain_kwargs(node: torch.fx.Node) -> bool:
    layout = node.kwargs.get("layout")
    return (layout in (None, torch.strided) and node.kwargs.get("generator") is None)


def _holds(dtype: torch.dtype, settings, allowed=_ANY) -> bool:
    """``dtype`` is one of ``allowed``, or float64 where ``truncate_long_and_double`` makes it a
    float inside the engine."""
    return dtype in allowed or (dtype == torch.float64 and bool(allowed & FLOATS)
                                and getattr(settings, "truncate_long_and_double", False))


def _made(node: torch.fx.Node, settings, allowed=_ANY) -> bool:
    """A tensor result of a dtype the engine holds, with elements, sizes it can compute."""
    out = val(node)
    return (isinstance(out, torch.Tensor) and _holds(out.dtype, settings, allowed) and _plain_kwargs(node)
            and (is_dynamic(out.shape) or out.numel() > 0) and sizes_computable(out.shape))


# -- full, zeros, ones, empty and their _like / new_ forms, fill, zero -----------------------
def _fill(ctx, node, args, kwargs):
    how = _FILLS[node.target]
    value = how if not isinstance(how, tuple) else arg(node.args, node.kwargs, *how)
    return _filled(ctx, node, value)


def _fill_supported(node, settings) -> bool:
    how = _FILLS[node.target]
    if isinstance(how, tuple) and not _is_number(arg(node.args, node.kwargs, *how)):
        return False
    return _made(node, settings)


def _fill_tensor(ctx, node, args, kwargs):
    """fill.Tensor: the one-element value tensor, cast and repeated to the input's shape."""
    out = val(node)
    value = ctx.cast(args[1], ctx.engine_dtype(out.dtype), node)
    rank = len(out.shape)
    value = ctx.reshape(value, (1,) * rank, node)
    return broadcast(ctx, value, tuple(out.shape), node)


def _fill_tensor_supported(node, settings) -> bool:
    value = val(node.args[1])
    return (isinstance(value, torch.Tensor) and value.dim() == 0 and _holds(value.dtype, settings)
            and _made(node, settings) and nonempty(node))


# -- arange, linspace, eye --------------------------------------------------------------------
def _arange_args(node: torch.fx.Node):
    """(start, end, step) of any arange overload; ``end`` may be a node."""
    args = list(node.args)
    if node.target is aten.arange.default:
        return 0, args[0], 1
    if node.target is aten.arange.start:
        return args[0], args[1], 1
    return args[0], args[1], args[2] if len(args) > 2 else node.kwargs.get("step", 1)


def _arange(ctx, node, args, kwargs):
    out = val(node)
    engine = ctx.engine_dtype(out.dtype)
    start, end, step = _arange_args(node)
    if not is_dynamic(out.shape):
        length = int(out.shape[0])
        values = (torch.arange(length, dtype=torch.float64) * step + start).to(_staged(out.dtype)) \
            if out.dtype.is_floating_point else torch.arange(length, dtype=out.dtype) * step + start
        return ctx.constant(values, node, dtype=engine)
    fill_dtype = engine if engine in INTS else torch.float32
    ramp = linspace_fill(ctx, tuple(out.shape), start, (step,), fill_dtype, node)
    return ctx.cast(ramp, engine, node)


def _arange_supported(node, settings) -> bool:
    out = val(node)
    start, end, step = _arange_args(node)
    if not (_is_number(start) and _is_number(step) and step != 0 and _made(node, settings, NUMERIC)):
        return False
    if not isinstance(end, (int, float, torch.fx.Node)):
        return False
    if isinstance(end, torch.fx.Node) and not isinstance(val(end), torch.SymInt):
        return False
    # integer results take integer start and step (TensorRT fills them in the integer type)
    return out.dtype.is_floating_point or (float(start).is_integer() and float(step).is_integer())


def _linspace(ctx, node, args, kwargs):
    """One constant, as torch computes it. No dynamic form: dynamo specialises a size passed as
    ``steps`` (its values depend on it, not only its shape), so ``steps`` is always an int here."""
    out = val(node)
    start, end, steps = node.args[0], node.args[1], node.args[2]
    values = torch.linspace(start, end, steps, dtype=out.dtype)
    return ctx.constant(values.to(_staged(out.dtype)), node, dtype=ctx.engine_dtype(out.dtype))


def _linspace_supported(node, settings) -> bool:
    return (len(node.args) >= 3 and all(_is_number(a) for a in node.args[:3])
            and not is_dynamic(val(node).shape) and _made(node, settings, NUMERIC))


def _eye_supported(node, settings) -> bool:
    """eye: sizes are its arguments (ints or symbolic sizes), checked through the result."""
    return _made(node, settings)


def _eye(ctx, node, args, kwargs):
    out = val(node)
    engine = ctx.engine_dtype(out.dtype)
    shape = tuple(out.shape)
    if not is_dynamic(shape):
        return ctx.constant(torch.eye(*shape, dtype=_staged(out.dtype)), node, dtype=engine)
    diff = linspace_fill(ctx, shape, 0, (1, -1), torch.int32, node)  # row - column
    zero = ctx.scalar(0, torch.int32, 2, node)
    on_diagonal = ctx.finish(ctx.network.add_elementwise(diff, zero, trt.ElementWiseOperation.EQUAL),
                             node, suffix="diagonal")
    return _from_bool(ctx, on_diagonal, engine, node)


def _from_bool(ctx, mask, dtype: torch.dtype, node):
    """A bool tensor as 1/0 of ``dtype`` (a select: casts from bool are not every type's)."""
    if dtype == torch.bool:
        return mask
    rank = len(mask.shape)
    layer = ctx.network.add_select(mask, ctx.scalar(1, dtype, rank, node), ctx.scalar(0, dtype, rank, node))
    return ctx.finish(layer, node, suffix="to_number")


# -- tril, triu ------------------------------------------------------------------------------
def _triangle(ctx, node, args, kwargs):
    """Keep the elements with ``column - row <= diagonal`` (tril) or ``>= diagonal`` (triu) of
    the last two dims, zero the rest: one select with a mask built once."""
    x = args[0]
    source = val(node.args[0])
    diagonal = arg(node.args, node.kwargs, 1, "diagonal", 0)
    lower = node.target is aten.tril.default
    rank = source.dim()
    dims = tuple(source.shape[-2:])
    if not is_dynamic(dims):
        ones = torch.ones(dims, dtype=torch.bool)
        keep = ones.tril(diagonal) if lower else ones.triu(diagonal)
        mask = ctx.constant(keep.reshape((1,) * (rank - 2) + dims), node, dtype=torch.bool)
    else:
        diff = linspace_fill(ctx, dims, 0, (-1, 1), torch.int32, node)  # column - row
        bound = ctx.scalar(diagonal + 1 if lower else diagonal - 1, torch.int32, 2, node)
        op = trt.ElementWiseOperation.LESS if lower else trt.ElementWiseOperation.GREATER
        mask = lift_rank(ctx, ctx.finish(ctx.network.add_elementwise(diff, bound, op), node,
                                         suffix="mask"), rank, node)
    dtype = ctx.dtype(x)
    return select(ctx, mask, x, ctx.scalar(False if dtype == torch.bool else 0, dtype, rank, node), node)


def _triangle_supported(node, settings) -> bool:
    source = val(node.args[0])
    return (isinstance(source, torch.Tensor) and source.dim() >= 2
            and isinstance(arg(node.args, node.kwargs, 1, "diagonal", 0), int) and source.dtype in _ANY
            and val(node).dtype in _ANY and nonempty(node) and sizes_computable(source.shape[-2:]))


# -- lift_fresh_copy -------------------------------------------------------------------------
def _identity(ctx, node, args, kwargs):
    return args[0]  # values are immutable inside an engine: a fresh copy is the tensor itself


def _identity_supported(node, settings) -> bool:
    value = val(node)
    return isinstance(value, torch.Tensor) and value.dtype in _ANY and nonempty(node)


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    for target in _FILLS:
        overload = target._overloadname.lower()
        name = f"builtin.{target._opname}" + ("" if overload == "default" else f".{overload}")
        yield ConverterSpec(name=name, target=target, convert=_fill, is_supported=_fill_supported,
        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.fill.tensor", target=aten.fill.Tensor, convert=_fill_tensor,
                        is_supported=_fill_tensor_supported, supports_dynamic_shapes=True)
    for target in (aten.arange.default, aten.arange.start, aten.arange.start_step):
        overload = target._overloadname.lower()
        yield ConverterSpec(name="builtin.arange" + ("" if overload == "default" else f".{overload}"),
                            target=target, convert=_arange, is_supported=_arange_supported,
                            supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.linspace", target=aten.linspace.default, convert=_linspace,
                        is_supported=_linspace_supported)
    yield ConverterSpec(name="builtin.eye", target=aten.eye.default, convert=_eye,
                        is_supported=_eye_supported, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.eye.m", target=aten.eye.m, convert=_eye,
                        is_supported=_eye_supported, supports_dynamic_shapes=True)
    for target in (aten.tril.default, aten.triu.default):
        yield ConverterSpec(name=f"builtin.{target._opname}", target=target, convert=_triangle,
                            is_supported=_triangle_supported, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.lift_fresh_copy", target=aten.lift_fresh_copy.default,
                        convert=_identity, is_supported=_identity_supported,
                        supports_dynamic_shapes=True)

