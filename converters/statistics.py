"""Built-in converters for moments and norms: ``var``/``std`` (``.correction``, ``.dim``),
``var_mean``/``std_mean`` (``.correction``), ``linalg_vector_norm`` and ``norm``
(``.Scalar``, ``.ScalarOpt_dim``).

Everything accumulates in float32 (``ctx.upcast``) whatever the engine's precision and is cast
to the result's engine dtype at the end. The variance is two-pass, ``sum((x - mean)^2) /
(N - correction)``, as torch computes it (no ``E[x^2] - E[x]^2`` cancellation). ``N`` is a
conversion-time constant, so the reduced dims must be static (the others may be dynamic); as in
torch the divisor is ``max(0, N - correction)``, so too large a correction gives inf/NaN.

Norms: ord 2 is ``sqrt(sum(x*x))``, 1 ``sum(|x|)``, inf/-inf ``max/min(|x|)``, 0 the count of
nonzeros, any other p ``sum(|x|^p)^(1/p)`` (no rescaling by the max: torch does none either).
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import FLOATS, aten, arg, elementwise, norm_dim, out_dtype, reduce, \
    typed, unary, val
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec


def _dims(dim, rank: int) -> list[int]:
    """Sorted, normalised dims; None or an empty list is every dim."""
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(rank))
    return sorted({norm_dim(d, rank) for d in ([dim] if isinstance(dim, int) else dim)})


def _finish(ctx, node, out, index=None):
    return ctx.cast(out, out_dtype(ctx, node, index), node)


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


# -- validators -------------------------------------------------------------------------------
def _int_dims(dim) -> bool:
    return dim is None or isinstance(dim, int) or (
        isinstance(dim, (list, tuple)) and all(isinstance(d, int) for d in dim))


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
    specs = [
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
