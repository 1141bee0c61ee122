"""Built-in converters for scaled dot-product attention, in every form it reaches a backend:

- ``_scaled_dot_product_cudnn_attention`` (CUDA, half and bfloat16) and
  ``_scaled_dot_product_efficient_attention`` (CUDA, float32; torch.compile pads its mask),
  ``_scaled_dot_product_flash_attention`` (CUDA, no mask) and
  ``_scaled_dot_product_flash_attention_for_cpu`` (CPU eager dispatch, and tracers that keep
  the fused op): what ``F.scaled_dot_product_attention`` becomes when it is traced on that
  device. (On CPU tensors plugtrt's own trace picks PyTorch's math formulation, which arrives
  as matmuls and ``_safe_softmax`` that other converters take.)
- ``scaled_dot_product_attention`` and ``_scaled_dot_product_attention_math`` (composites that
  pre-dispatch tracers keep).

``softmax(Q K^T * scale + mask) V`` as two matrix multiplies around a softmax: Q K^T, the mask
and the softmax in float32 whatever the precision, the weights cast back to the engine's float
dtype for the second product. A bool mask keeps where True (the math kernel, called directly, adds it as 0/1
instead, as eager does); a float mask is added; ``is_causal`` keeps ``j <= i`` (torch's top-left
alignment); ``enable_gqa`` shares each key/value head among ``Hq / Hkv`` query heads by a
broadcast in the matrix multiply (no copies). A row a mask removes entirely gives 0, as eager's
kernels do for -inf masks (see ``_attention`` for masks of float32's lowest value).

Where it is exact (``_iattention_exact``: rank 4, one float dtype, equal or grouped heads and
no mask) TensorRT's own ``IAttention`` (``add_attention_v2``) is used instead, with q scaled
first (the layer takes no scale) and ``CausalMaskKind.UPPER_LEFT`` for ``is_causal``; with a mask
the matmul form stays, since what IAttention does with a fully masked row is not specified.
Dropout (training) is declined, and so is any statistics output (logsumexp ...) that the graph
reads: only output 0 is built. Batch dims and sequence lengths may be dynamic (under
``is_causal`` the matmul form then builds its mask in the engine); the head size must be static.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, arg, aten, elementwise, is_dynamic, lift_rank, linspace_fill,
    only_first_output_used, out_dtype, reduce, same_shape, select, sizes_computable, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

_F32 = torch.float32


def _matmul(ctx, node, a, b, transpose_b: bool, suffix: str):
    none, tr = trt.MatrixOperation.NONE, trt.MatrixOperation.TRANSPOSE
    layer = ctx.network.add_matrix_multiply(a, none, b, tr if transpose_b else none)
    return ctx.name(layer, node, suffix).get_output(0)


def _grouped(ctx, node, x, fake, groups: int, repeat: bool):
    """``x`` ([..., H, S, E]) viewed as [..., H/groups, groups, S, E] (queries) or
    [..., H, 1, S, E] (keys and values, broadcast over the group)."""
    shape = tuple(fake.shape)
    lead, heads = shape[:-3], shape[-3]
    middle = (heads // groups, groups) if repeat else (heads, 1)
    return ctx.reshape(x, lead + middle + shape[-2:], node)


def _mask_operand(ctx, node, mask, fake, rank: int, hq: int, groups: int):
    """The mask lifted to the scores' rank (5-D under grouped queries: the head dim split as
    the queries' is)."""
    if groups == 1:
        if isinstance(mask, torch.Tensor):
            return mask.reshape((1,) * (rank - mask.dim()) + tuple(mask.shape))
        return lift_rank(ctx, mask, rank, node)
    shape = (1,) * (rank - 1 - fake.dim()) + tuple(fake.shape)  # rank 4 (the query's rank)
    heads = shape[-3]
    middle = (hq // groups, groups) if heads != 1 else (1, 1)
    target = shape[:-3] + middle + shape[-2:]
    if isinstance(mask, torch.Tensor):
        return mask.reshape(target)
    return ctx.reshape(mask, target, node)


def _causal_bias(ctx, node, rows, cols, rank: int):
    """0 where ``j <= i``, -inf elsewhere: a constant for static lengths, else built in the
    engine from ``column - row`` over the lengths' shape tensor."""
    if not is_dynamic((rows, cols)):
        keep = torch.ones(rows, cols, dtype=torch.bool).tril()
        return torch.zeros(rows, cols).masked_fill(~keep, -math.inf).reshape((1,) * (rank - 2) + (rows, cols))
    diff = linspace_fill(ctx, (rows, cols), 0, (-1, 1), torch.int32, node)  # column - row
    future = elementwise(ctx, diff, 0, "GREATER", node, torch.int32, "future")
    bias = select(ctx, future, ctx.scalar(-math.inf, _F32, 2, node), ctx.scalar(0.0, _F32, 2, node),
                  node, "causal_bias")
    return lift_rank(ctx, bias, rank, node)


def _attention(ctx, node, q, k, v, mask, mf, causal: bool, scale, gqa: bool, bool_fill: float | None,
               index: int | None, dead_at: float = -math.inf):
    """softmax(q k^T * scale + mask) v; ``mf`` is the mask's fake value, ``index`` the position
    of the attention output in a tuple result (None: not a tuple). A row whose scores are all
    ``dead_at`` or below gives 0: -inf for the CPU and math kernels (a row masked with float32's
    lowest finite value gives a uniform average there, as here), float32's lowest value for
    CUDA's efficient kernel, which zeroes such rows too."""
    qf, kf, vf = (val(node.args[i]) for i in range(3))
    dtype = out_dtype(ctx, node, index)
    q, k, v = (ctx.cast(t, dtype, node) for t in (q, k, v))
    if _iattention_exact(node, mask, gqa, dtype, scale):
        return _iattention(ctx, node, q, k, v, qf, causal, scale, dtype)
    rank = len(q.shape)
    groups = 1
    if gqa and qf.shape[-3] != kf.shape[-3]:
        groups = qf.shape[-3] // kf.shape[-3]
        q = _grouped(ctx, node, q, qf, groups, True)
        k = _grouped(ctx, node, k, kf, groups, False)
        v = _grouped(ctx, node, v, vf, groups, False)
        rank += 1
    # the scores in float32 from the start: rounded to half or bfloat16, large logits lose
    # whole units before the softmax (fused kernels keep them in float32 too)
    scores = _matmul(ctx, node, ctx.upcast(q, node), ctx.upcast(k, node), True, "scores")
    scale = 1.0 / math.sqrt(qf.shape[-1]) if scale is None else float(scale)
    scores = elementwise(ctx, scores, scale, "PROD", node, _F32, "scale")
    if causal:
        scores = elementwise(ctx, scores, _causal_bias(ctx, node, qf.shape[-2], kf.shape[-2], rank),
                             "SUM", node, _F32, "causal")
    safe = False
    if mask is not None:
        operand = _mask_operand(ctx, node, mask, mf, rank, qf.shape[-3], groups)
        if mf.dtype == torch.bool and bool_fill is None:  # the math kernel adds it as 0 / 1
            operand = operand.float() if isinstance(operand, torch.Tensor) else \
                ctx.cast(operand, _F32, node)
        elif mf.dtype == torch.bool and isinstance(operand, torch.Tensor):
            operand = torch.zeros(operand.shape).masked_fill(~operand, bool_fill)  # fold in torch
        if mf.dtype == torch.bool and bool_fill is not None and not isinstance(operand, torch.Tensor):
            layer = ctx.network.add_select(ctx.operand(operand, torch.bool, rank, node), scores,
                                           ctx.operand(bool_fill, _F32, rank, node))
            scores = ctx.name(layer, node, "mask").get_output(0)
        else:
            scores = elementwise(ctx, scores, operand if isinstance(operand, torch.Tensor)
                                 else ctx.upcast(operand, node), "SUM", node, _F32, "mask")
        safe = mf.dtype != torch.bool or bool_fill == -math.inf
    layer = ctx.network.add_softmax(scores)
    layer.axes = 1 << (rank - 1)
    weights = ctx.name(layer, node, "softmax").get_output(0)
    if safe:  # a row the mask removes entirely is 0, not NaN
        row_max = reduce(ctx, scores, "MAX", [rank - 1], True, node, "row_max")
        alive = elementwise(ctx, row_max, dead_at, "GREATER", node, _F32, "live_row")
        layer = ctx.network.add_select(alive, weights, ctx.operand(0.0, _F32, rank, node))
        weights = ctx.name(layer, node, "safe").get_output(0)
    out = _matmul(ctx, node, ctx.cast(weights, dtype, node), v, False, "context")
    if groups == 1:
        return out
    result = val(node)[index] if index is not None else val(node)
    return ctx.reshape(out, tuple(result.shape), node)


def _is_scaled_query(node, scale) -> bool:
    """Whether the keys are the queries times the very scale the IAttention path multiplies the
    queries by (``k = q * scale``): the builder then sees two identical products, merges them,
    and TensorRT-RTX 1.7's builder crashes the process (a segmentation fault, measured with a
    bare network: q and k from two identical PROD layers; one shared tensor builds)."""
    q, k = node.args[0], node.args[1]
    if not isinstance(k, torch.fx.Node) or k.target not in (aten.mul.Tensor, aten.mul.Scalar):
        return False
    others = [a for a in k.args if a is not q]
    if len(others) != 1 or not isinstance(others[0], (int, float)):
        return False
    qf = val(q)
    factor = 1.0 / math.sqrt(qf.shape[-1]) if scale is None else float(scale)
    return float(others[0]) == factor


def _iattention_exact(node, mask, gqa: bool, dtype: torch.dtype, scale) -> bool:
    """Whether TensorRT's ``IAttention`` computes exactly what torch does for this node: float
    q, k, v of one dtype (the engine's), rank 4 ([batch, heads, seq, dim]), no mask (what the
    layer gives a fully masked row is not specified, torch gives 0; causal alone never masks a
    whole row under top-left alignment), one batch size and head size for all three, and key /
    value heads equal to the query's or grouped (``Hq % Hkv == 0``: the layer shares each
    key/value head among ``Hq / Hkv`` query heads itself, which is also what broadcasting one
    key/value head does)."""
    qf, kf, vf = (val(node.args[i]) for i in range(3))
    if mask is not None or dtype not in FLOATS or _is_scaled_query(node, scale):
        return False
    if not (qf.dim() == kf.dim() == vf.dim() == 4 and qf.dtype == kf.dtype == vf.dtype):
        return False
    hq, hk, hv = qf.shape[1], kf.shape[1], vf.shape[1]
    if not all(isinstance(h, int) for h in (hq, hk, hv)) or hk != hv or hk == 0 or hq % hk:
        return False
    if hq != hk and not gqa and hk != 1:
        return False  # torch would not group these: the matmul form reports the mismatch
    if not (same_shape([qf.shape[0]], [kf.shape[0]]) and same_shape([kf.shape[0]], [vf.shape[0]])):
        return False  # batch broadcast: the layer wants one batch size
    if not same_shape([kf.shape[2]], [vf.shape[2]]):
        return False
    return all(isinstance(t.shape[3], int) for t in (qf, kf, vf)) and \
        qf.shape[3] == kf.shape[3] == vf.shape[3]


def _iattention(ctx, node, q, k, v, qf, causal: bool, scale, dtype: torch.dtype):
    """softmax(q k^T * scale) v as TensorRT's own attention layer (two layers in the network,
    ATTENTION_INPUT and ATTENTION_OUTPUT): the fused kernel on a GPU, decomposed by the builder
    where none exists (``decomposable``). The layer applies no scale, so q is scaled first in
    the engine dtype. Under ``precision=half`` q, k, v are cast to half as for the matmul form,
    and the layer, not plugtrt, chooses the precision of its scores and softmax (the matmul
    form keeps them in float32 explicitly; the reference runtime evaluates the layer's scores
    in float32, and the half tests match eager at half tolerances).
    ``is_causal`` is torch's top-left alignment: ``CausalMaskKind.UPPER_LEFT``."""
    scale = 1.0 / math.sqrt(qf.shape[-1]) if scale is None else float(scale)
    if scale != 1.0:
        q = elementwise(ctx, q, scale, "PROD", node, dtype, "scale")
    kind = trt.CausalMaskKind.UPPER_LEFT if causal else trt.CausalMaskKind.NONE
    attention = ctx.network.add_attention_v2(q, k, v, trt.AttentionNormalizationOp.SOFTMAX, kind)
    attention = ctx.name(attention, node, "attention")
    attention.decomposable = True  # the CPU build, and GPUs without a fused kernel for it
    return attention.get_output(0)


def _outputs(node, out, index):
    if index is None:
        return out
    return (out,) + (None,) * (len(val(node)) - 1)


def _sdpa(ctx, node, args, kwargs):
    """scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, *, scale, enable_gqa)."""
    return _attention(ctx, node, *args[:3], arg(args, kwargs, 3, "attn_mask"),
                      val(arg(node.args, node.kwargs, 3, "attn_mask")), arg(args, kwargs, 5, "is_causal", False),
                      kwargs.get("scale"), kwargs.get("enable_gqa", False), -math.inf, None)


def _math(ctx, node, args, kwargs):
    """_scaled_dot_product_attention_math: a bool mask is added as 0 / 1 (the composite
    converts it to a float mask before calling this kernel)."""
    out = _attention(ctx, node, *args[:3], arg(args, kwargs, 3, "attn_mask"),
                     val(arg(node.args, node.kwargs, 3, "attn_mask")), arg(args, kwargs, 5, "is_causal", False),
                     kwargs.get("scale"), kwargs.get("enable_gqa", False), None, 0)
    return _outputs(node, out, 0)


def _flash_cpu(ctx, node, args, kwargs):
    """The CPU kernel shares each key/value head among ``Hq / Hkv`` query heads by itself."""
    out = _attention(ctx, node, *args[:3], kwargs.get("attn_mask"),
                     val(node.kwargs.get("attn_mask")), arg(args, kwargs, 4, "is_causal", False),
                     kwargs.get("scale"), True, -math.inf, 0)
    return _outputs(node, out, 0)


def _with_bias(ctx, node, args, kwargs):
    """efficient and cudnn: (q, k, v, attn_bias, compute_log_sumexp, dropout_p, is_causal, ...)."""
    efficient = node.target is aten._scaled_dot_product_efficient_attention.default
    out = _attention(ctx, node, *args[:3], arg(args, kwargs, 3, "attn_bias"),
                     val(arg(node.args, node.kwargs, 3, "attn_bias")), arg(args, kwargs, 6, "is_causal", False),
                     kwargs.get("scale"), False, -math.inf, 0,
                     torch.finfo(_F32).min if efficient else -math.inf)
    return _outputs(node, out, 0)


def _flash(ctx, node, args, kwargs):
    out = _attention(ctx, node, *args[:3], None, None, arg(args, kwargs, 4, "is_causal", False),
                     kwargs.get("scale"), False, -math.inf, 0)
    return _outputs(node, out, 0)


# -- validators -------------------------------------------------------------------------------
def _broadcastable(a, b) -> bool:
    """Two sizes TensorRT broadcasts as torch does: equal (symbols as expressions), or a static 1."""
    return (isinstance(a, int) and a == 1) or (isinstance(b, int) and b == 1) or same_shape([a], [b])


def _supported(dropout_index: int, causal_index: int, mask: tuple[int, str] | None,
               tuple_result: bool, gqa: str | None = None,
               flags: tuple[tuple[int, str], ...] = ()):
    """``gqa``: None (heads must match or broadcast), "flag" (grouped when ``enable_gqa`` is
    set) or "implicit" (the kernel groups whenever the head counts differ)."""
    def check(node: torch.fx.Node, settings) -> bool:
        floats = FLOATS | ({torch.float64} if settings.truncate_long_and_double else set())
        q, k, v = (val(a) for a in node.args[:3])
        if not all(isinstance(t, torch.Tensor) and t.dtype in floats for t in (q, k, v)):
            return False
        if not (q.dtype == k.dtype == v.dtype and q.dim() == k.dim() == v.dim() >= 2):
            return False
        if arg(node.args, node.kwargs, dropout_index, "dropout_p", 0.0) != 0.0:
            return False  # training: random, and PyTorch's to draw
        if any(arg(node.args, node.kwargs, i, name, False) for i, name in flags):
            return False  # a debug mask requested
        if tuple_result and not only_first_output_used(node):
            return False  # statistics (logsumexp ...) for a backward pass are not built
        if not isinstance(q.shape[-1], int) or not isinstance(k.shape[-1], int):
            return False
        if not all(is_dynamic(t.shape) or t.numel() > 0 for t in (q, k, v)):
            return False
        causal = arg(node.args, node.kwargs, causal_index, "is_causal", False)
        if causal and not sizes_computable((q.shape[-2], k.shape[-2])):
            return False  # the causal mask is built from the sequence lengths
        asked = gqa == "implicit" or (gqa == "flag" and node.kwargs.get("enable_gqa", False))
        grouped = asked and q.dim() >= 3 and q.shape[-3] != k.shape[-3]
        if grouped and not (isinstance(q.shape[-3], int) and isinstance(k.shape[-3], int)
                            and q.shape[-3] % k.shape[-3] == 0 and k.shape[-3] == v.shape[-3]):
            return False
        lead = q.dim() - (3 if grouped else 2)
        for t in (k, v):  # batch dims equal or 1: a symbolic size never broadcasts
            if not all(_broadcastable(a, b) for a, b in zip(q.shape[:lead], t.shape[:lead])):
                return False
        m = None
        if mask is not None:
            m = arg(node.args, node.kwargs, *mask)
        if m is not None:
            mf = val(m)
            if not isinstance(mf, torch.Tensor) or mf.dim() > q.dim():
                return False
            if mf.dtype != torch.bool and mf.dtype not in floats:
                return False
            if grouped and mf.dim() >= 3 and mf.shape[-3] not in (1, q.shape[-3]):
                return False
            if grouped and mf.dim() >= 3 and not isinstance(mf.shape[-3], int):
                return False
        return True
    return check


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    yield ConverterSpec(name="builtin.scaled_dot_product_attention",
                        target=aten.scaled_dot_product_attention.default, convert=_sdpa,
                        is_supported=_supported(4, 5, (3, "attn_mask"), False, gqa="flag"),
                        constant_args={3}, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin._scaled_dot_product_attention_math",
                        target=aten._scaled_dot_product_attention_math.default, convert=_math,
                        is_supported=_supported(4, 5, (3, "attn_mask"), True, gqa="flag"),
                        constant_args={3}, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin._scaled_dot_product_flash_attention_for_cpu",
                        target=aten._scaled_dot_product_flash_attention_for_cpu.default,
                        convert=_flash_cpu,
                        is_supported=_supported(3, 4, (99, "attn_mask"), True, gqa="implicit"),
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin._scaled_dot_product_efficient_attention",
                        target=aten._scaled_dot_product_efficient_attention.default,
                        convert=_with_bias, is_supported=_supported(5, 6, (3, "attn_bias"), True),
                        constant_args={3}, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin._scaled_dot_product_cudnn_attention",
                        target=aten._scaled_dot_product_cudnn_attention.default,
                        convert=_with_bias,
                        is_supported=_supported(5, 6, (3, "attn_bias"), True,
                                                flags=((7, "return_debug_mask"),)),
                        constant_args={3}, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin._scaled_dot_product_flash_attention",
                        target=aten._scaled_dot_product_flash_attention.default, convert=_flash,
                        is_supported=_supported(3, 4, None, True,
                                                flags=((5, "return_debug_mask"),)),
                                                supports_dynamic_shapes=True)
