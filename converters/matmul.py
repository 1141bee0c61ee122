"""Built-in converters for matrix products: mm, bmm, mv, addmm, linear and matmul
(``t`` lives in the shape family).

All go through TensorRT's matrix-multiply layer, whose operands must have equal rank (leading
dims broadcast where they are 1); floats only, computed in the engine's float dtype.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

from plugtrt.conversion import (
    FLOATS, all_of, arg, aten, elementwise, lift_rank, out_dtype, typed, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

_FLOAT_OK = typed(FLOATS)


def _matmul(ctx, node, a, b, transpose_b: bool = False, suffix: str = ""):
    """``a @ b`` (``a @ b.mT``) for operands of rank >= 1, torch.matmul's rules."""
    dtype = out_dtype(ctx, node)
    rank = max(len(a.shape), len(b.shape))
    a, op_a = _operand(ctx, node, a, dtype, rank, False)
    b, op_b = _operand(ctx, node, b, dtype, rank, transpose_b)
    layer = ctx.network.add_matrix_multiply(a, op_a, b, op_b)
    return ctx.name(layer, node, suffix or "matmul").get_output(0)


def _operand(ctx, node, x, dtype, rank: int, transpose: bool):
    """``x`` in ``dtype`` with ``rank`` dims (a vector stays a vector), and its matrix operation.

    A constant gets its leading unit dims in torch (one constant of the final shape), and a
    transposed view of a weight (``t(weight)`` folded at lowering) is handed over as stored,
    with TensorRT's transpose flag, instead of as a transposed copy."""
    if len(x.shape) == 1:
        x = ctx.constant(x, node, dtype=dtype) if isinstance(x, torch.Tensor) else \
            ctx.cast(x, dtype, node)
        return x, trt.MatrixOperation.VECTOR
    lead = (1,) * (rank - len(x.shape))
    if isinstance(x, torch.Tensor):
        if not x.is_contiguous() and x.mT.is_contiguous():
            x, transpose = x.mT, not transpose
        x = ctx.constant(x.reshape(lead + tuple(x.shape)), node, dtype=dtype)
    else:
        x = lift_rank(ctx, ctx.cast(x, dtype, node), rank, node)
    return x, trt.MatrixOperation.TRANSPOSE if transpose else trt.MatrixOperation.NONE


def _mm(ctx, node, args, kwargs):
    return _matmul(ctx, node, args[0], args[1])


def _linear(ctx, node, args, kwargs):
    out = _matmul(ctx, node, args[0], args[1], transpose_b=True)
    bias = arg(args, kwargs, 2, "bias")
    if bias is None:
        return out
    return elementwise(ctx, out, bias, "SUM", node, out_dtype(ctx, node), suffix="bias")


def _addmm(ctx, node, args, kwargs):
    bias, m1, m2 = args[:3]
    beta, alpha = arg(args, kwargs, 3, "beta", 1), arg(args, kwargs, 4, "alpha", 1)
    dtype = out_dtype(ctx, node)
    out = _matmul(ctx, node, m1, m2)
    if alpha != 1:
        out = elementwise(ctx, out, alpha, "PROD", node, dtype, suffix="alpha")
    if beta == 0:  # torch ignores the input then, nan and inf included
        return out
    if beta != 1:
        bias = elementwise(ctx, bias, beta, "PROD", node, dtype, suffix="beta")
    return elementwise(ctx, out, bias, "SUM", node, dtype, suffix="bias")


def _ranks(*allowed: tuple[int, ...]):
    def check(node, settings) -> bool:
        ranks = tuple(len(val(n).shape) for n in node.args[:len(allowed[0])])
        return ranks in allowed
    return check


def _matmul_ranks(node, settings) -> bool:
    """Both operands have rank >= 1; a vector meets at most a matrix (no batched vectors)."""
    ranks = (val(node.args[0]).dim(), val(node.args[1]).dim())
    return min(ranks) >= 1 and (min(ranks) > 1 or max(ranks) <= 2)


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    yield ConverterSpec(name="builtin.mm", target=aten.mm.default, convert=_mm,
                        is_supported=all_of(_FLOAT_OK, _ranks((2, 2))), constant_args={0, 1},
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.bmm", target=aten.bmm.default, convert=_mm,
                        is_supported=all_of(_FLOAT_OK, _ranks((3, 3))), constant_args={0, 1},
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.mv", target=aten.mv.default, convert=_mm,
                        is_supported=all_of(_FLOAT_OK, _ranks((2, 1))), constant_args={0, 1},
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.matmul", target=aten.matmul.default, convert=_mm,
                        is_supported=all_of(_FLOAT_OK, _matmul_ranks), constant_args={0, 1},
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.addmm", target=aten.addmm.default, convert=_addmm,
                        is_supported=all_of(_FLOAT_OK, _ranks((1, 2, 2), (2, 2, 2), (0, 2, 2))),
                        constant_args={0, 1, 2},
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.linear", target=aten.linear.default, convert=_linear,
                        is_supported=all_of(_FLOAT_OK, _matmul_ranks), constant_args={0, 1, 2},
                        supports_dynamic_shapes=True)
