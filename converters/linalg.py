"""Built-in converters for linear algebra beyond mm/bmm/addmm/linear (those are in ``matmul``):
baddbmm, addbmm, addmv, dot, vdot (real tensors), addr, outer, linalg_cross / cross,
_cdist_forward, _euclidean_dist, _pdist_forward and einsum.

- Products go through TensorRT's matrix-multiply layer: floats only (TensorRT's matmul has no
  integer form, and casting integers through float32 is exact only below 2**24), computed in the
  engine's float dtype. ``alpha``/``beta`` scale the product and the input; ``beta=0`` ignores
  the input, NaN and inf included, as torch does. ``addbmm`` sums its batch of products in
  float32.
- ``addr``/``outer`` and the cross product are elementwise (integers too).
- Distances (``cdist``/``pdist``) are computed from the differences, in float32: ``p=2`` the
  root of the sum of squares, ``p=1`` the sum of magnitudes, ``p=inf`` their maximum, ``p=0`` the
  count of differing coordinates, any other ``p`` the p-norm. (Eager's matrix-product shortcut
  for ``p=2`` on large inputs rounds differently; the difference form is the exact one.)
  ``pdist`` gathers the upper triangle of the square distance matrix.
- ``einsum`` is TensorRT's einsum layer for the equations it defines: one or two operands of
  lowercase subscripts, no ellipsis, no subscript repeated within an operand (diagonals), no
  broadcasting between sizes.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, NUMERIC, arg, aten, elementwise, is_dynamic, norm_dim, out_dtype, reduce,
    same_shape, slice_to, typed, unary, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

_F32 = torch.float32
_NONE, _VEC = "NONE", "VECTOR"
"""trt.MatrixOperation names, looked up when a layer is built: the module loads without TensorRT."""


def _mm(ctx, node, a, b, dtype, op_a=_NONE, op_b=_NONE, suffix="matmul"):
    layer = ctx.network.add_matrix_multiply(ctx.cast(a, dtype, node), getattr(trt.MatrixOperation, op_a),
                                            ctx.cast(b, dtype, node), getattr(trt.MatrixOperation, op_b))
    return ctx.name(layer, node, suffix).get_output(0)


def _scaled_sum(ctx, node, product, bias, args, kwargs, dtype):
    """``beta * bias + alpha * product`` with torch's rules: beta 0 ignores ``bias``."""
    beta, alpha = kwargs.get("beta", 1), kwargs.get("alpha", 1)
    if alpha != 1:
        product = elementwise(ctx, product, alpha, "PROD", node, dtype, "alpha")
    if beta == 0:
        return product
    if beta != 1:
        bias = elementwise(ctx, bias, beta, "PROD", node, dtype, "beta")
    return elementwise(ctx, product, bias, "SUM", node, dtype, "bias")


def _baddbmm(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    return _scaled_sum(ctx, node, _mm(ctx, node, args[1], args[2], dtype), args[0], args, kwargs,
                       dtype)


def _addbmm(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    products = ctx.upcast(_mm(ctx, node, args[1], args[2], dtype), node)
    total = ctx.cast(reduce(ctx, products, "SUM", [0], False, node), dtype, node)
    return _scaled_sum(ctx, node, total, args[0], args, kwargs, dtype)


def _addmv(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    return _scaled_sum(ctx, node, _mm(ctx, node, args[1], args[2], dtype, _NONE, _VEC), args[0],
                       args, kwargs, dtype)


def _dot(ctx, node, args, kwargs):
    return _mm(ctx, node, args[0], args[1], out_dtype(ctx, node), _VEC, _VEC, "dot")


def _outer_product(ctx, node, a, b, fa, fb, dtype):
    a = ctx.reshape(ctx.cast(a, dtype, node), (fa.shape[0], 1), node)
    b = ctx.reshape(ctx.cast(b, dtype, node), (1, fb.shape[0]), node)
    return elementwise(ctx, a, b, "PROD", node, dtype, "outer")


def _outer(ctx, node, args, kwargs):
    return _outer_product(ctx, node, args[0], args[1], val(node.args[0]), val(node.args[1]),
                          out_dtype(ctx, node))


def _addr(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    product = _outer_product(ctx, node, args[1], args[2], val(node.args[1]), val(node.args[2]),
                             dtype)
    return _scaled_sum(ctx, node, product, args[0], args, kwargs, dtype)


# -- cross product ----------------------------------------------------------------------------
def _cross_dim(node) -> int:
    """The dim of the cross product, in the result's rank."""
    out = val(node)
    if node.target is aten.linalg_cross.default:
        dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else -1)
    else:
        dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim")
        if dim is None:  # the first dim of size 3
            a, b = val(node.args[0]), val(node.args[1])
            dim = next(i for i, d in enumerate(a.shape) if isinstance(d, int) and d == 3)
            dim += out.dim() - a.dim()
    return norm_dim(dim, out.dim())


def _component(ctx, node, x, fake, dim: int, index: int):
    shape = list(fake.shape)
    starts = [0] * len(shape)
    starts[dim] = index
    shape[dim] = 1
    return slice_to(ctx, x, starts, shape, [1] * len(shape), node, f"component{index}")


def _cross(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    rank = val(node).dim()
    dim = _cross_dim(node)
    parts = []
    for x, fake in ((args[0], val(node.args[0])), (args[1], val(node.args[1]))):
        local = dim - (rank - fake.dim())
        parts.append([_component(ctx, node, ctx.cast(x, dtype, node), fake, local, i)
                      for i in range(3)])
    a, b = parts
    out = []
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        left = elementwise(ctx, a[j], b[k], "PROD", node, dtype, f"c{i}_l")
        right = elementwise(ctx, a[k], b[j], "PROD", node, dtype, f"c{i}_r")
        out.append(elementwise(ctx, left, right, "SUB", node, dtype, f"c{i}"))
    layer = ctx.network.add_concatenation(out)
    layer.axis = dim
    return ctx.finish(layer, node, suffix="cross")


def _cross_supported(node: torch.fx.Node, settings) -> bool:
    if not typed(NUMERIC)(node, settings):
        return False
    a, b, out = val(node.args[0]), val(node.args[1]), val(node)
    try:
        dim = _cross_dim(node)
    except StopIteration:
        return False
    for t in (a, b):
        local = dim - (out.dim() - t.dim())
        if local < 0 or not isinstance(t.shape[local], int) or t.shape[local] != 3:
            return False
    # both operands' sizes agree where neither is a static 1 (symbols never broadcast)
    for x, y in zip(reversed(a.shape), reversed(b.shape)):
        if not ((isinstance(x, int) and x == 1) or (isinstance(y, int) and y == 1)
                or same_shape([x], [y])):
            return False
    return True


# -- distances --------------------------------------------------------------------------------
def _pairwise(ctx, node, x1, x2, f1, f2, p: float):
    """Distances [*, P, R] between the rows of x1 [*, P, M] and x2 [*, R, M], in float32."""
    x1, x2 = ctx.upcast(x1, node), ctx.upcast(x2, node)
    s1, s2 = tuple(f1.shape), tuple(f2.shape)
    a = ctx.reshape(x1, s1[:-1] + (1, s1[-1]), node)
    b = ctx.reshape(x2, s2[:-2] + (1,) + s2[-2:], node)
    diff = elementwise(ctx, a, b, "SUB", node, _F32, "diff")
    last = len(s1)  # the coordinate axis of [*, P, R, M]
    if p == 0:
        differs = elementwise(ctx, diff, 0.0, "EQUAL", node, _F32, "same")
        differs = unary(ctx, differs, "NOT", node)
        return reduce(ctx, ctx.cast(differs, _F32, node), "SUM", [last], False, node)
    magnitude = unary(ctx, diff, "ABS", node)
    if p == math.inf:
        return reduce(ctx, magnitude, "MAX", [last], False, node)
    if p == 1:
        return reduce(ctx, magnitude, "SUM", [last], False, node)
    if p == 2:
        square = elementwise(ctx, diff, diff, "PROD", node, _F32, "square")
        return unary(ctx, reduce(ctx, square, "SUM", [last], False, node), "SQRT", node)
    powered = elementwise(ctx, magnitude, float(p), "POW", node, _F32, "pow")
    total = reduce(ctx, powered, "SUM", [last], False, node)
    return elementwise(ctx, total, 1.0 / p, "POW", node, _F32, "root")


def _cdist(ctx, node, args, kwargs):
    out = _pairwise(ctx, node, args[0], args[1], val(node.args[0]), val(node.args[1]),
                    float(args[2]))
    return ctx.cast(out, out_dtype(ctx, node), node)


def _cdist_supported(node: torch.fx.Node, settings) -> bool:
    if not typed(FLOATS)(node, settings):
        return False
    a, b = val(node.args[0]), val(node.args[1])
    p = node.args[2] if node.target is aten._cdist_forward.default else 2.0
    if a.dim() < 2 or a.dim() != b.dim() or not isinstance(p, (int, float)) or p < 0 or math.isnan(p):
        return False
    if not isinstance(a.shape[-1], int) or not same_shape(a.shape[-1:], b.shape[-1:]):
        return False
    return all(same_shape([x], [y]) for x, y in zip(a.shape[:-2], b.shape[:-2]))


def _euclidean(ctx, node, args, kwargs):
    """_euclidean_dist (cdist's matrix-product form for p=2), computed from the differences."""
    out = _pairwise(ctx, node, args[0], args[1], val(node.args[0]), val(node.args[1]), 2.0)
    return ctx.cast(out, out_dtype(ctx, node), node)


def _pdist(ctx, node, args, kwargs):
    fake = val(node.args[0])
    n = fake.shape[0]
    p = float(arg(args, kwargs, 1, "p", 2.0))
    square = _pairwise(ctx, node, args[0], args[0], fake, fake, p)  # [N, N]
    flat = ctx.reshape(square, (n * n,), node)
    rows, cols = torch.triu_indices(n, n, offset=1)
    index = ctx.constant((rows * n + cols).to(torch.int32), node, dtype=torch.int32)
    layer = ctx.network.add_gather(flat, index, 0)
    return ctx.cast(ctx.finish(layer, node, suffix="upper"), out_dtype(ctx, node), node)


def _pdist_supported(node: torch.fx.Node, settings) -> bool:
    x = val(node.args[0])
    p = node.args[1] if len(node.args) > 1 else node.kwargs.get("p", 2.0)
    return (typed(FLOATS)(node, settings) and x.dim() == 2 and not is_dynamic(x.shape)
            and x.shape[0] >= 2 and isinstance(p, (int, float)) and p >= 0 and not math.isnan(p))


# -- einsum -----------------------------------------------------------------------------------
def _einsum(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    operands = [ctx.cast(t, dtype, node) for t in args[1]]
    layer = ctx.network.add_einsum(operands, args[0].replace(" ", ""))
    return ctx.finish(layer, node, suffix="einsum")


def _einsum_supported(node: torch.fx.Node, settings) -> bool:
    equation, tensors = node.args[0], node.args[1]
    if not isinstance(equation, str) or "..." in equation or node.kwargs.get("path") is not None:
        return False
    if not typed(FLOATS)(node, settings) or not 1 <= len(tensors) <= 2:
        return False
    equation = equation.replace(" ", "")
    inputs, _, output = equation.partition("->")
    terms = inputs.split(",")
    fakes = [val(t) for t in tensors]
    if len(terms) != len(fakes) or not all(isinstance(f, torch.Tensor) for f in fakes):
        return False
    letters = set("abcdefghijklmnopqrstuvwxyz")
    sizes: dict[str, object] = {}
    for term, fake in zip(terms, fakes):
        if len(term) != fake.dim() or len(set(term)) != len(term) or not set(term) <= letters:
            return False  # a diagonal, or a subscript TensorRT does not take
        for letter, size in zip(term, fake.shape):
            if letter in sizes and not same_shape([sizes[letter]], [size]):
                return False  # broadcasting a size-1 operand: not in TensorRT's einsum
            sizes[letter] = size
    if "->" in equation and (len(set(output)) != len(output) or not set(output) <= set(sizes)):
        return False
    return True


# -- validators for the products --------------------------------------------------------------
def _ranks(*ranks: int, bias_ranks: tuple[int, ...] | None = None):
    """Float operands of these ranks (the bias, argument 0, of ``bias_ranks``; it broadcasts)."""
    def check(node: torch.fx.Node, settings) -> bool:
        if not typed(FLOATS)(node, settings):
            return False
        operands = node.args[len(node.args) - len(ranks):] if bias_ranks is None else node.args[1:3]
        if tuple(val(n).dim() for n in operands) != ranks:
            return False
        if bias_ranks is not None and val(node.args[0]).dim() not in bias_ranks:
            return False
        return all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in (node.kwargs.get("beta", 1), node.kwargs.get("alpha", 1)))
    return check


def _outer_supported(count: int):
    def check(node: torch.fx.Node, settings) -> bool:
        if not typed(NUMERIC)(node, settings):
            return False
        vectors = node.args[-2:]
        if any(val(v).dim() != 1 for v in vectors):
            return False
        if count == 3 and val(node.args[0]).dim() > 2:
            return False
        dtype = val(node).dtype
        return all(dtype.is_floating_point or isinstance(v, int) and not isinstance(v, bool)
                   for v in (node.kwargs.get("beta", 1), node.kwargs.get("alpha", 1)))
    return check


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    def spec(name, target, convert, check, dynamic=True):
        return ConverterSpec(name=f"builtin.{name}", target=target, convert=convert,
                             is_supported=check, supports_dynamic_shapes=dynamic)
    yield spec("baddbmm", aten.baddbmm.default, _baddbmm, _ranks(3, 3, bias_ranks=(0, 1, 2, 3)))
    yield spec("addbmm", aten.addbmm.default, _addbmm, _ranks(3, 3, bias_ranks=(0, 1, 2)))
    yield spec("addmv", aten.addmv.default, _addmv, _ranks(2, 1, bias_ranks=(0, 1)))
    yield spec("dot", aten.dot.default, _dot, _ranks(1, 1))
    yield spec("vdot", aten.vdot.default, _dot, _ranks(1, 1))
    yield spec("outer", aten.outer.default, _outer, _outer_supported(2))
    yield spec("addr", aten.addr.default, _addr, _outer_supported(3))
    yield spec("linalg_cross", aten.linalg_cross.default, _cross, _cross_supported)
    yield spec("cross", aten.cross.default, _cross, _cross_supported)
    yield spec("_cdist_forward", aten._cdist_forward.default, _cdist, _cdist_supported)
    yield spec("_euclidean_dist", aten._euclidean_dist.default, _euclidean, _cdist_supported)
    yield spec("_pdist_forward", aten._pdist_forward.default, _pdist, _pdist_supported,
               dynamic=False)
    yield spec("einsum", aten.einsum.default, _einsum, _einsum_supported)
