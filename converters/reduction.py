"""Built-in converters for every op that reduces over dims: sums and means, extremes and their
indices, logical and counting reductions, softmax, moments and norms.

- ``sum``, ``mean``, ``amax``, ``amin``, ``prod``; ``max``/``min`` (whole tensor, and along a
  dim with indices), ``argmax``/``argmin``, ``aminmax``; ``any``/``all``, ``count_nonzero``;
  ``logsumexp``.
- softmax and log_softmax (``_softmax``, ``softmax.int``, ``_safe_softmax``, ``_log_softmax``,
  ``log_softmax.int``).
- ``var``/``std`` (``.correction``, ``.dim``), ``var_mean``/``std_mean`` (``.correction``),
  ``linalg_vector_norm`` and ``norm`` (``.Scalar``, ``.ScalarOpt_dim``).

Floats accumulate in float32 (``ctx.upcast``) whatever the engine's precision where the op
accumulates (sums, means, products, ``logsumexp``, moments, norms); the result is cast to its
own engine dtype afterwards. Extremes are exact in any dtype and are taken in the input's own.
Integer sums and products accumulate in the result's dtype (torch widens int32 and bool to
int64). An empty ``dim`` list, or None, reduces every dim (except ``any.dims``/``all.dims``,
where an empty list reduces none, as in torch).

Indices (``argmax``, ``max.dim`` ...) are exactly torch's: the FIRST position holding the
extreme. TensorRT's TopK layer does not document which of several equal values it reports, so
indices are computed as ``min(where(x == extreme, iota, int32 max))`` over the dim, with
``iota`` a constant, or a LINSPACE fill where the reduced dim is dynamic; argmax/argmin over the
whole (flattened) tensor need a static shape. NaN is not an extreme here as it is in torch
(whose ``max`` propagates NaN): inputs with NaN give TensorRT's answer. TensorRT's Reduce and
TopK layers take no bool tensors: bools are reduced as int32.

The variance is two-pass, ``sum((x - mean)^2) / (N - correction)``, as torch computes it (no
``E[x^2] - E[x]^2`` cancellation). ``N`` is a conversion-time constant, so the reduced dims must
be static (the others may be dynamic); as in torch the divisor is ``max(0, N - correction)``,
so too large a correction gives inf/NaN. Norms: ord 2 is ``sqrt(sum(x*x))``, 1 ``sum(|x|)``,
inf/-inf ``max/min(|x|)``, 0 the count of nonzeros, any other p ``sum(|x|^p)^(1/p)`` (no
rescaling by the max: torch does none either).
"""
from __future__ import annotations

from collections.abc import Iterator
import math
import operator

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, INTS, NUMERIC, arg, aten, elementwise, lift_rank, norm_dim, out_dtype, reduce,
    reshape_to, shape_tensor, typed, unary, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt


_IN = NUMERIC | {torch.bool}


def _dims(dim, rank: int) -> list[int]:
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(rank))
    return sorted({norm_dim(d, rank) for d in ([dim] if isinstance(dim, int) else dim)})


def _accumulate(ctx, node, x, dtype_arg):
    """``x`` in the dtype to reduce in: the result's (after ``dtype=``), float32 for floats."""
    dtype = out_dtype(ctx, node)
    if dtype_arg is not None:
        x = ctx.cast(x, ctx.engine_dtype(dtype_arg), node)
    x = ctx.cast(x, dtype, node)
    return ctx.upcast(x, node)


def _reduction(op: str, dims_index: int | None):
    """sum/mean/amax/amin; ``dims_index`` is where the dims argument is (None: all dims)."""
    def convert(ctx, node, args, kwargs):
        x = args[0]
        rank = len(x.shape)
        if dims_index is None:
            dims, keepdim, dtype_arg = list(range(rank)), False, arg(args, kwargs, 1, "dtype")
        else:
            dims = _dims(arg(args, kwargs, dims_index, "dim"), rank)
            keepdim = arg(args, kwargs, dims_index + 1, "keepdim", False)
            dtype_arg = arg(args, kwargs, dims_index + 2, "dtype") if op in ("SUM", "AVG") else None
        work = _accumulate(ctx, node, x, dtype_arg)
        out = reduce(ctx, work, op, dims, keepdim, node)
        return ctx.cast(out, out_dtype(ctx, node), node)
    return convert


def _reduction_supported(allowed, dims_index: int | None):
    check = typed(allowed, _IN)

    def is_supported(node: torch.fx.Node, settings) -> bool:
        x = val(node.args[0])
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or not check(node, settings):
            return False
        if dims_index is not None:
            dim = node.args[dims_index] if len(node.args) > dims_index else node.kwargs.get("dim")
            if dim is not None and not (isinstance(dim, int) or all(isinstance(d, int) for d in dim)):
                return False
        return True
    return is_supported


def _softmax(log: bool):
    def convert(ctx, node, args, kwargs):
        x = args[0]
        dim = norm_dim(args[1], len(x.shape))
        dtype_arg = kwargs.get("dtype", args[2] if len(args) > 2 and not isinstance(args[2], bool)
                               else None)
        work = _accumulate(ctx, node, x, dtype_arg)
        if not log:  # TensorRT's softmax layer wants rank >= 2: lift a vector to a row
            lifted = lift_rank(ctx, work, 2, node)
            layer = ctx.network.add_softmax(lifted)
            layer.axes = 1 << (dim + len(lifted.shape) - len(work.shape))
            out = ctx.name(layer, node, "softmax").get_output(0)
            if lifted is not work:
                out = reshape_to(ctx, out, val(node.args[0]).shape, node)
        else:  # x - max - log(sum(exp(x - max))): stable for large logits
            shifted = elementwise(ctx, work, reduce(ctx, work, "MAX", [dim], True, node), "SUB",
                                  node, torch.float32, "shift")
            total = reduce(ctx, unary(ctx, shifted, "EXP", node), "SUM", [dim], True, node)
            out = elementwise(ctx, shifted, unary(ctx, total, "LOG", node), "SUB", node,
                              ctx.dtype(work), "log_softmax")
        return ctx.cast(out, out_dtype(ctx, node), node)
    return convert


def _safe_softmax(ctx, node, args, kwargs):
    """softmax, but 0 (not NaN) on rows that are all -inf: attention's fully masked rows."""
    out = _softmax(log=False)(ctx, node, args, kwargs)
    x = ctx.upcast(args[0], node)
    dim = norm_dim(args[1], len(x.shape))
    row_max = reduce(ctx, x, "MAX", [dim], True, node, "row_max")
    dead = elementwise(ctx, row_max, -math.inf, "EQUAL", node, torch.float32, "dead_row")
    rank = len(out.shape)
    layer = ctx.network.add_select(ctx.operand(dead, torch.bool, rank, node),
                                   ctx.operand(0.0, ctx.dtype(out), rank, node), out)
    return ctx.finish(layer, node, suffix="safe")


def _softmax_supported(node, settings) -> bool:
    x = val(node.args[0])
    return (isinstance(x, torch.Tensor) and x.dim() >= 1 and x.dtype in FLOATS
            and typed(FLOATS)(node, settings))


def _int_dims(dim) -> bool:
    return dim is None or isinstance(dim, int) or (
        isinstance(dim, (list, tuple)) and all(isinstance(d, int) for d in dim))


def _reads(node: torch.fx.Node, index: int) -> bool:
    """Some user reads element ``index`` of the node's tuple result."""
    return any(u.target is not operator.getitem or u.args[1] == index for u in node.users)


def _input(node: torch.fx.Node) -> torch.Tensor | None:
    x = val(node.args[0]) if node.args else None
    return x if isinstance(x, torch.Tensor) else None


def _reducible(ctx, x, node):
    """``x`` in a dtype TensorRT's Reduce layer takes (bool as int32)."""
    return ctx.cast(x, torch.int32, node) if ctx.dtype(x) == torch.bool else x


def _finish(ctx, node, out, index=None):
    """``out`` in the result's engine dtype and recorded shape (a keepdim over every dim)."""
    out = ctx.cast(out, out_dtype(ctx, node, index), node)
    want = val(node) if index is None else val(node)[index]
    if len(out.shape) != want.dim():
        out = ctx.reshape(out, tuple(want.shape), node)
    return out


def _nonzero(ctx, x, node):
    """bool ``x != 0`` (NaN counts as nonzero, as in torch)."""
    if ctx.dtype(x) == torch.bool:
        return x
    zero = elementwise(ctx, x, 0, "EQUAL", node, ctx.dtype(x), "is_zero")
    return unary(ctx, zero, "NOT", node, "nonzero")


# -- prod --------------------------------------------------------------------------------
def _prod(all_dims: bool):
    def convert(ctx, node, args, kwargs):
        x = args[0]
        rank = len(x.shape)
        if all_dims:
            dims, keepdim = list(range(rank)), False
        else:
            dims, keepdim = _dims(args[1], rank), arg(args, kwargs, 2, "keepdim", False)
        work = ctx.upcast(ctx.cast(x, out_dtype(ctx, node), node), node)
        return _finish(ctx, node, reduce(ctx, work, "PROD", dims, keepdim, node))
    return convert


# -- extremes and their indices ----------------------------------------------------------
def _iota(ctx, n, axis: int, rank: int, node):
    """int32 positions ``0..n-1`` along ``axis``, unit dims elsewhere: a constant for a static
    ``n``, a LINSPACE fill shaped by the symbolic size otherwise."""
    shape = [1] * rank
    shape[axis] = n
    if isinstance(n, int):
        return ctx.constant(torch.arange(n, dtype=torch.int32).reshape(shape), node,
                            dtype=torch.int32)
    layer = ctx.network.add_fill((1,) * rank, trt.FillOperation.LINSPACE, trt.int32)
    layer.set_input(0, shape_tensor(ctx, shape, node))
    layer.set_input(1, ctx.constant(torch.tensor(0, dtype=torch.int32), node, dtype=torch.int32))
    step = torch.zeros(rank, dtype=torch.int32)
    step[axis] = 1
    layer.set_input(2, ctx.constant(step, node, dtype=torch.int32))
    return ctx.name(layer, node, "iota").get_output(0)


def _first_index(ctx, node, x, extreme, axis: int, keepdim: bool, n: int):
    """int32 index of the first element of ``x`` along ``axis`` equal to ``extreme`` (which has
    ``axis`` kept)."""
    rank = len(x.shape)
    hit = elementwise(ctx, x, extreme, "EQUAL", node, ctx.dtype(x), "is_extreme")
    # where no element hits (NaN rows), any position beyond the last: int32's max
    layer = ctx.network.add_select(hit, _iota(ctx, n, axis, rank, node),
                                   ctx.scalar(torch.iinfo(torch.int32).max, torch.int32, rank, node))
    candidates = ctx.name(layer, node, "candidates").get_output(0)
    return reduce(ctx, candidates, "MIN", [axis], keepdim, node, "first_index")


def _extreme_dim(op: str):
    """max.dim / min.dim: (values, indices) along one dim."""
    def convert(ctx, node, args, kwargs):
        x = _reducible(ctx, args[0], node)
        axis = norm_dim(args[1], len(x.shape))
        keepdim = arg(args, kwargs, 2, "keepdim", False)
        kept = reduce(ctx, x, op, [axis], True, node)
        values = None
        if _reads(node, 0):
            values = kept if keepdim else ctx.reshape(kept, tuple(val(node)[0].shape), node)
            values = _finish(ctx, node, values, 0)
        indices = None
        if _reads(node, 1):
            n = val(node.args[0]).shape[axis]
            indices = _finish(ctx, node, _first_index(ctx, node, x, kept, axis, keepdim, n), 1)
        return values, indices
    return convert


def _arg_extreme(op: str):
    """argmax / argmin, along a dim or over the flattened tensor (dim None)."""
    def convert(ctx, node, args, kwargs):
        x = _reducible(ctx, args[0], node)
        dim = arg(args, kwargs, 1, "dim")
        keepdim = arg(args, kwargs, 2, "keepdim", False)
        shape = tuple(val(node.args[0]).shape)
        if dim is None:
            x = ctx.reshape(x, (math.prod(shape),), node)
            axis, n = 0, math.prod(shape)
        else:
            axis = norm_dim(dim, len(shape))
            n = shape[axis] if shape else 1
            if not shape:
                x = ctx.reshape(x, (1,), node)
        kept = reduce(ctx, x, op, [axis], True, node)
        return _finish(ctx, node, _first_index(ctx, node, x, kept, axis, keepdim and dim is not None, n))
    return convert


def _extreme_all(op: str):
    def convert(ctx, node, args, kwargs):
        x = _reducible(ctx, args[0], node)
        return _finish(ctx, node, reduce(ctx, x, op, range(len(x.shape)), False, node))
    return convert


def _aminmax(ctx, node, args, kwargs):
    x = _reducible(ctx, args[0], node)
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    keepdim = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
    dims = _dims(dim, len(x.shape))
    return tuple(_finish(ctx, node, reduce(ctx, x, op, dims, keepdim, node), i) if _reads(node, i)
                 else None for i, op in enumerate(("MIN", "MAX")))


# -- any, all, count_nonzero ----------------------------------------------------------------
def _logical(op: str, kind: str):
    """any/all (``op`` MAX/MIN over 0/1 values); ``kind``: default, dim or dims. An empty dims
    list reduces no dim (``any.dims(x, [])`` is ``x != 0``), unlike None, which reduces all."""
    def convert(ctx, node, args, kwargs):
        x = args[0]
        rank = len(x.shape)
        if kind == "default":
            dims, keepdim = list(range(rank)), False
        else:
            dim = arg(args, kwargs, 1, "dim")
            if isinstance(dim, (list, tuple)) and len(dim) == 0:  # torch reduces nothing here
                return _finish(ctx, node, _nonzero(ctx, x, node))
            dims = _dims(dim, rank)
            keepdim = arg(args, kwargs, 2, "keepdim", False)
        flags = ctx.cast(_nonzero(ctx, x, node), torch.int32, node)
        return _finish(ctx, node, reduce(ctx, flags, op, dims, keepdim, node))
    return convert


def _count_nonzero(ctx, node, args, kwargs):
    x = args[0]
    dims = _dims(arg(args, kwargs, 1, "dim"), len(x.shape))
    flags = ctx.cast(_nonzero(ctx, x, node), out_dtype(ctx, node), node)
    return _finish(ctx, node, reduce(ctx, flags, "SUM", dims, False, node))


# -- logsumexp ------------------------------------------------------------------------------
def _logsumexp(ctx, node, args, kwargs):
    """``m + log(sum(exp(x - m)))`` with ``m`` the max, or 0 where the max is infinite (torch's
    rule: a row of -inf gives -inf, a row holding +inf gives +inf, not NaN)."""
    x = ctx.upcast(ctx.cast(args[0], out_dtype(ctx, node), node), node)
    dims = _dims(args[1], len(x.shape))
    keepdim = arg(args, kwargs, 2, "keepdim", False)
    rank = len(x.shape)
    top = reduce(ctx, x, "MAX", dims, True, node, "max")
    infinite = unary(ctx, top, "ISINF", node)
    layer = ctx.network.add_select(infinite, ctx.scalar(0.0, torch.float32, rank, node), top)
    shift = ctx.name(layer, node, "finite_max").get_output(0)
    centred = elementwise(ctx, x, shift, "SUB", node, torch.float32, "centre")
    total = reduce(ctx, unary(ctx, centred, "EXP", node), "SUM", dims, keepdim, node)
    if not keepdim:
        shift = ctx.reshape(shift, tuple(val(node).shape), node)
    out = elementwise(ctx, unary(ctx, total, "LOG", node), shift, "SUM", node, torch.float32)
    return _finish(ctx, node, out)


# -- validators ---------------------------------------------------------------------------------
def _supported(results, inputs=_IN, dims_at: int | None = None, dims_name: str = "dim",
               static_dim: bool = False, dim_optional: bool = False, min_rank: int = 1):
    """Input of ``inputs`` dtypes with at least ``min_rank`` dims, results of ``results``;
    the dims argument (at ``dims_at``) made of ints; with ``static_dim`` a None dim (the whole
    tensor, flattened) needs a static shape."""
    check = typed(results, inputs)

    def is_supported(node: torch.fx.Node, settings) -> bool:
        x = _input(node)
        if x is None or x.dim() < min_rank or not check(node, settings):
            return False
        if dims_at is None:
            return True
        dim = arg(node.args, node.kwargs, dims_at, dims_name)
        if not _int_dims(dim) or (dim is None and not dim_optional):
            return False
        if isinstance(dim, (list, tuple)) and len(dim) == 0 and not dim_optional:
            return False
        if static_dim and dim is None:  # flattened to one static axis
            return all(isinstance(s, int) for s in x.shape)
        return True
    return is_supported


def _aminmax_supported(node, settings) -> bool:
    x = _input(node)
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    return (x is not None and x.dim() >= 1 and (dim is None or isinstance(dim, int))
            and typed(_IN)(node, settings))


# -- variance ---------------------------------------------------------------------------------
def _moments(ctx, node, x, dims, correction, keepdim):
    """(variance, mean) in float32; the mean keeps the reduced dims."""
    work = ctx.upcast(x, node)
    shape = val(node.args[0]).shape
    count = math.prod(shape[d] for d in dims)
    mean = reduce(ctx, work, "AVG", dims, True, node, "mean")
    centred = elementwise(ctx, work, mean, "SUB", node, torch.float32, "centre")
    squares = elementwise(ctx, centred, centred, "PROD", node, torch.float32, "square")
    total = reduce(ctx, squares, "SUM", dims, keepdim, node, "sum_squares")
    divisor = float(max(0, count - correction))  # torch clamps: 0/0 is NaN, more is inf
    var = elementwise(ctx, total, divisor, "DIV", node, torch.float32, "var")
    return var, mean


def _variance(kind: str, std: bool, with_mean: bool):
    """``kind`` "correction": (x, dim=None, *, correction=None, keepdim=False); "dim":
    (x, dim, unbiased=True, keepdim=False)."""
    def convert(ctx, node, args, kwargs):
        x = args[0]
        rank = len(x.shape)
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        if kind == "correction":
            correction = kwargs.get("correction")
            correction = 1 if correction is None else correction
            keepdim = kwargs.get("keepdim", False)
        else:
            unbiased = args[2] if len(args) > 2 else kwargs.get("unbiased", True)
            correction = 1 if unbiased else 0
            keepdim = args[3] if len(args) > 3 else kwargs.get("keepdim", False)
        dims = _dims(dim, rank)
        var, mean = _moments(ctx, node, x, dims, correction, keepdim)
        if std:
            var = unary(ctx, var, "SQRT", node, "std")
        if not with_mean:
            return _finish(ctx, node, var)
        if not keepdim:
            mean = ctx.reshape(mean, tuple(val(node)[1].shape), node)
        return _finish(ctx, node, var, 0), _finish(ctx, node, mean, 1)
    return convert


# -- norms ------------------------------------------------------------------------------------
def _vector_norm(ctx, node, x, p, dims, keepdim):
    """The float32 p-norm of float32 ``x`` over ``dims``."""
    if p == 2:
        squares = elementwise(ctx, x, x, "PROD", node, torch.float32, "square")
        return unary(ctx, reduce(ctx, squares, "SUM", dims, keepdim, node), "SQRT", node)
    if p == 0:
        zero = elementwise(ctx, x, 0.0, "EQUAL", node, torch.float32, "is_zero")
        nonzero = ctx.cast(unary(ctx, zero, "NOT", node), torch.float32, node)
        return reduce(ctx, nonzero, "SUM", dims, keepdim, node)
    magnitude = unary(ctx, x, "ABS", node)
    if p == 1:
        return reduce(ctx, magnitude, "SUM", dims, keepdim, node)
    if math.isinf(p):
        return reduce(ctx, magnitude, "MAX" if p > 0 else "MIN", dims, keepdim, node)
    powered = elementwise(ctx, magnitude, float(p), "POW", node, torch.float32, "pow_p")
    total = reduce(ctx, powered, "SUM", dims, keepdim, node)
    return elementwise(ctx, total, 1.0 / p, "POW", node, torch.float32, "root_p")


def _norm(kind: str):
    """``kind``: "linalg" (x, ord=2, dim=None, keepdim=False, *, dtype=None); "scalar"
    (x, p=2); "dim" (x, p, dim, keepdim=False)."""
    def convert(ctx, node, args, kwargs):
        x = args[0]
        rank = len(x.shape)
        if kind == "linalg":
            p = args[1] if len(args) > 1 else kwargs.get("ord", 2)
            dim = args[2] if len(args) > 2 else kwargs.get("dim")
            keepdim = args[3] if len(args) > 3 else kwargs.get("keepdim", False)
        elif kind == "scalar":
            p = args[1] if len(args) > 1 else kwargs.get("p", 2)
            dim, keepdim = None, False
        else:
            p = args[1] if len(args) > 1 else kwargs.get("p")
            dim = args[2] if len(args) > 2 else kwargs.get("dim")
            keepdim = args[3] if len(args) > 3 else kwargs.get("keepdim", False)
        p = 2 if p is None else p
        # the result's dtype (after ``dtype=``) first, then float32 to accumulate
        work = ctx.upcast(ctx.cast(x, out_dtype(ctx, node), node), node)
        return _finish(ctx, node, _vector_norm(ctx, node, work, float(p), _dims(dim, rank), keepdim))
    return convert


def _variance_supported(node: torch.fx.Node, settings) -> bool:
    x = val(node.args[0]) if node.args else None
    if not isinstance(x, torch.Tensor) or x.dim() == 0 or not typed(FLOATS)(node, settings):
        return False
    dim = arg(node.args, node.kwargs, 1, "dim")
    correction = node.kwargs.get("correction")
    if not _int_dims(dim) or not isinstance(correction, (int, float, type(None))):
        return False
    return all(isinstance(x.shape[d], int) for d in _dims(dim, x.dim()))  # N is a constant


def _norm_supported(p_at: int, p_name: str, dim_at: int | None):
    def is_supported(node: torch.fx.Node, settings) -> bool:
        x = val(node.args[0]) if node.args else None
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or not typed(FLOATS)(node, settings):
            return False
        p = arg(node.args, node.kwargs, p_at, p_name, 2)
        if not isinstance(p, (int, float, type(None))) or (isinstance(p, float) and math.isnan(p)):
            return False
        return dim_at is None or _int_dims(arg(node.args, node.kwargs, dim_at, "dim"))
    return is_supported


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    table = [  # (name, target, trt op, dims index, result dtypes)
        ("sum.dim_intlist", aten.sum.dim_IntList, "SUM", 1, NUMERIC),
        ("sum", aten.sum.default, "SUM", None, NUMERIC),
        ("mean.dim", aten.mean.dim, "AVG", 1, FLOATS),
        ("mean", aten.mean.default, "AVG", None, FLOATS),
        ("amax", aten.amax.default, "MAX", 1, NUMERIC),
        ("amin", aten.amin.default, "MIN", 1, NUMERIC),
    ]
    for name, target, op, dims_index, allowed in table:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_reduction(op, dims_index),
                            is_supported=_reduction_supported(allowed, dims_index),
                            supports_dynamic_shapes=True)
    for name, target, log in [("_softmax", aten._softmax.default, False),
                              ("softmax.int", aten.softmax.int, False),
                              ("_log_softmax", aten._log_softmax.default, True),
                              ("log_softmax.int", aten.log_softmax.int, True)]:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_softmax(log),
                            is_supported=_softmax_supported, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin._safe_softmax", target=aten._safe_softmax.default,
                        convert=_safe_softmax, is_supported=_softmax_supported,
                        supports_dynamic_shapes=True)
    prod_out = NUMERIC | {torch.bool}
    specs = [
        ("prod", aten.prod.default, _prod(True), _supported(prod_out)),
        ("prod.dim_int", aten.prod.dim_int, _prod(False), _supported(prod_out, dims_at=1)),
        ("max", aten.max.default, _extreme_all("MAX"), _supported(_IN)),
        ("min", aten.min.default, _extreme_all("MIN"), _supported(_IN)),
        ("max.dim", aten.max.dim, _extreme_dim("MAX"),
         _supported(_IN, dims_at=1, static_dim=True)),
        ("min.dim", aten.min.dim, _extreme_dim("MIN"),
         _supported(_IN, dims_at=1, static_dim=True)),
        ("argmax", aten.argmax.default, _arg_extreme("MAX"),
         _supported(INTS, FLOATS | INTS, dims_at=1, static_dim=True, dim_optional=True, min_rank=0)),
        ("argmin", aten.argmin.default, _arg_extreme("MIN"),
         _supported(INTS, FLOATS | INTS, dims_at=1, static_dim=True, dim_optional=True, min_rank=0)),
        ("aminmax", aten.aminmax.default, _aminmax, _aminmax_supported),
        ("any", aten.any.default, _logical("MAX", "default"), _supported({torch.bool})),
        ("any.dim", aten.any.dim, _logical("MAX", "dim"), _supported({torch.bool}, dims_at=1)),
        ("any.dims", aten.any.dims, _logical("MAX", "dims"),
         _supported({torch.bool}, dims_at=1, dim_optional=True)),
        ("all", aten.all.default, _logical("MIN", "default"), _supported({torch.bool})),
        ("all.dim", aten.all.dim, _logical("MIN", "dim"), _supported({torch.bool}, dims_at=1)),
        ("all.dims", aten.all.dims, _logical("MIN", "dims"),
         _supported({torch.bool}, dims_at=1, dim_optional=True)),
        ("count_nonzero", aten.count_nonzero.default, _count_nonzero,
         _supported(INTS, dims_at=1, dim_optional=True)),
        ("count_nonzero.dim_intlist", aten.count_nonzero.dim_IntList, _count_nonzero,
         _supported(INTS, dims_at=1, dim_optional=True)),
        ("logsumexp", aten.logsumexp.default, _logsumexp,
         _supported(FLOATS, FLOATS | INTS | {torch.bool}, dims_at=1)),
        ("var.correction", aten.var.correction, _variance("correction", False, False), _variance_supported),
        ("std.correction", aten.std.correction, _variance("correction", True, False), _variance_supported),
        ("var_mean.correction", aten.var_mean.correction, _variance("correction", False, True),
         _variance_supported),
        ("std_mean.correction", aten.std_mean.correction, _variance("correction", True, True),
         _variance_supported),
        ("var.dim", aten.var.dim, _variance("dim", False, False), _variance_supported),
        ("std.dim", aten.std.dim, _variance("dim", True, False), _variance_supported),
        ("linalg_vector_norm", aten.linalg_vector_norm.default, _norm("linalg"),
         _norm_supported(1, "ord", 2)),
        ("norm.scalar", aten.norm.Scalar, _norm("scalar"), _norm_supported(1, "p", None)),
        ("norm.scalaropt_dim", aten.norm.ScalarOpt_dim, _norm("dim"), _norm_supported(1, "p", 2)),
    ]
    for name, target, convert, check in specs:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=convert,
                            is_supported=check, supports_dynamic_shapes=True)
