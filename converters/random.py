"""Built-in converters for random ops and dropout in every mode.

Random ops go through TensorRT's FILL layer (RANDOM_UNIFORM and RANDOM_NORMAL): rand, randn,
randint, their ``_like`` forms, bernoulli, uniform, normal and dropout in training mode
(``native_dropout``, and ``dropout`` as tracers that keep composite ops give it). Dropout that
drops nothing (``train=False``, or ``p == 0``) is the identity, converted by its own records
first; only where they decline does the random form take it. In ``eval()`` mode ``nn.Dropout``
and ``F.dropout(training=False)`` vanish while dynamo and AOT trace, so the identity forms
serve tracers that keep composite ops (pre-dispatch ``make_fx``, ``torch.export``).

Each op draws from the same distribution as torch's: ``U[low, high)`` for rand and uniform,
``N(mean, std)`` for randn and normal, the integers ``low .. high - 1`` with equal chances for
randint (``floor`` of a uniform float draw, clamped below ``high``), ``P(1) = p`` for bernoulli.
**The values are not torch's**: TensorRT draws from its own generator, so a seed set with
``torch.manual_seed`` does not reproduce them and two engines (or two calls) give different
samples. That is why the support check keeps random ops in PyTorch unless the user sets
``random_ops_in_engines=True``. An op given a ``generator`` is declined (it stays in PyTorch,
where that generator is honoured). TensorRT's random fills make float32 or float16 only; other
dtypes are cast from float32. randint draws through float32, so ranges wider than 2**24 are
declined.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, NUMERIC, arg, aten, elementwise, is_dynamic, nonempty, select, shape_tensor,
    sizes_computable, slice_to, unary, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt


_EXACT_FLOAT_INTS = 1 << 24


def random_fill(ctx, node, shape, uniform: bool, alpha: float, beta: float):
    """A float32 FILL of ``shape``: ``U[alpha, beta)`` or ``N(alpha, beta)``."""
    op = trt.FillOperation.RANDOM_UNIFORM if uniform else trt.FillOperation.RANDOM_NORMAL
    dynamic = is_dynamic(shape)
    layer = ctx.network.add_fill((1,) * len(shape) if dynamic else tuple(int(d) for d in shape),
                                 op, trt.DataType.FLOAT)
    if dynamic:
        layer.set_input(0, shape_tensor(ctx, shape, node))
    layer.alpha = float(alpha)
    layer.beta = float(beta)
    return ctx.finish(layer, node, suffix="uniform" if uniform else "normal")


def _out(node):
    out = val(node)
    return out, tuple(out.shape)


def _sized_ok(node, settings, allowed=FLOATS) -> bool:
    """A result of ``allowed`` dtypes (float64 too where ``truncate_long_and_double`` makes it
    float32), no generator, strided, with elements and sizes the engine can compute."""
    out = val(node)
    truncated = out.dtype == torch.float64 and getattr(settings, "truncate_long_and_double", False) \
        if isinstance(out, torch.Tensor) else False
    return (isinstance(out, torch.Tensor) and (out.dtype in allowed or truncated)
            and node.kwargs.get("generator") is None
            and node.kwargs.get("layout") in (None, torch.strided)
            and (is_dynamic(out.shape) or out.numel() > 0) and sizes_computable(out.shape))


# -- rand, randn, uniform, normal ---------------------------------------------------------------
def _continuous(uniform: bool, params):
    """``params(node) -> (alpha, beta)`` of the distribution."""
    def convert(ctx, node, args, kwargs):
        out, shape = _out(node)
        alpha, beta = params(node)
        return ctx.cast(random_fill(ctx, node, shape, uniform, alpha, beta), ctx.engine_dtype(out.dtype), node)
    return convert


def _numbers(*positions):
    def check(node, settings) -> bool:
        values = [arg(node.args, node.kwargs, i, name, default) for i, name, default in positions]
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) \
            and _sized_ok(node, settings)
    return check


_UNIT = lambda node: (0.0, 1.0)  # noqa: E731


def _uniform_params(node):
    return arg(node.args, node.kwargs, 1, "from", 0.0), arg(node.args, node.kwargs, 2, "to", 1.0)


def _normal_params(node):
    return arg(node.args, node.kwargs, 1, "mean", 0.0), arg(node.args, node.kwargs, 2, "std", 1.0)


def _normal_float_float_params(node):
    return arg(node.args, node.kwargs, 0, "mean"), arg(node.args, node.kwargs, 1, "std")


def _normal_tensor(ctx, node, args, kwargs):
    """normal.Tensor_float / float_Tensor / Tensor_Tensor: ``mean + std * N(0, 1)``, broadcast."""
    out, shape = _out(node)
    dtype = ctx.engine_dtype(out.dtype)
    mean, std = arg(node.args, node.kwargs, 0, "mean"), arg(node.args, node.kwargs, 1, "std", 1.0)
    mean = args[0] if isinstance(mean, torch.fx.Node) else mean
    std = (args[1] if len(args) > 1 else kwargs["std"]) if isinstance(std, torch.fx.Node) else std
    noise = ctx.cast(random_fill(ctx, node, shape, False, 0.0, 1.0), dtype, node)
    scaled = elementwise(ctx, noise, std, "PROD", node, dtype, suffix="std")
    return elementwise(ctx, scaled, mean, "SUM", node, dtype, suffix="mean")


def _normal_tensor_supported(node, settings) -> bool:
    mean, std = arg(node.args, node.kwargs, 0, "mean"), arg(node.args, node.kwargs, 1, "std", 1.0)
    for value in (mean, std):
        if isinstance(value, torch.fx.Node):
            if not (isinstance(val(value), torch.Tensor) and val(value).dtype in FLOATS):
                return False
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
    return _sized_ok(node, settings) and nonempty(node)


# -- randint --------------------------------------------------------------------------------------
def _randint_bounds(node):
    if node.target in (aten.randint.default,):
        return 0, node.args[0]
    if node.target is aten.randint.low:
        return node.args[0], node.args[1]
    if node.target is aten.randint_like.default:
        return 0, arg(node.args, node.kwargs, 1, "high")
    # randint_like.low_dtype
    return arg(node.args, node.kwargs, 1, "low"), arg(node.args, node.kwargs, 2, "high")


def _randint(ctx, node, args, kwargs):
    """``floor(U[low, high))``, clamped to ``high - 1`` (a float32 draw may round up to high)."""
    out, shape = _out(node)
    dtype = ctx.engine_dtype(out.dtype)
    low, high = _randint_bounds(node)
    draw = unary(ctx, random_fill(ctx, node, shape, True, low, high), "FLOOR", node)
    draw = elementwise(ctx, draw, float(high - 1), "MIN", node, torch.float32, suffix="below_high")
    return ctx.cast(draw, dtype, node)


def _randint_supported(node, settings) -> bool:
    low, high = _randint_bounds(node)
    return (isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool)
            and low < high and high - low <= _EXACT_FLOAT_INTS
            and max(abs(low), abs(high)) <= _EXACT_FLOAT_INTS and _sized_ok(node, settings, NUMERIC))


# -- bernoulli, dropout -------------------------------------------------------------------------------
def _below(ctx, node, shape, p):
    """The bool tensor ``U[0, 1) < p`` (``p`` a number or a float32 ITensor)."""
    draw = random_fill(ctx, node, shape, True, 0.0, 1.0)
    return elementwise(ctx, draw, p, "LESS", node, torch.float32, suffix="below_p")


def _bernoulli(ctx, node, args, kwargs):
    out, shape = _out(node)
    dtype = ctx.engine_dtype(out.dtype)
    if node.target is aten.bernoulli.p:
        p = float(arg(node.args, node.kwargs, 1, "p", 0.5))
    else:
        p = ctx.cast(args[0], torch.float32, node)
    hit = _below(ctx, node, shape, p)
    return _to_numbers(ctx, hit, dtype, node)


def _to_numbers(ctx, mask, dtype, node):
    if dtype == torch.bool:
        return mask
    rank = len(mask.shape)
    layer = ctx.network.add_select(mask, ctx.scalar(1, dtype, rank, node), ctx.scalar(0, dtype, rank, node))
    return ctx.finish(layer, node, suffix="to_number")


def _bernoulli_supported(node, settings) -> bool:
    if node.target is aten.bernoulli.p:
        p = arg(node.args, node.kwargs, 1, "p", 0.5)
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            return False
    elif not (isinstance(val(node.args[0]), torch.Tensor) and val(node.args[0]).dtype in FLOATS):
        return False
    return _sized_ok(node, settings, NUMERIC | {torch.bool}) and nonempty(node)


def _native_dropout(ctx, node, args, kwargs):
    """Training-mode dropout: keep each element with chance ``1 - p`` and scale it by
    ``1 / (1 - p)``; the mask says which were kept."""
    x = args[0]
    out = tuple(val(node.args[0]).shape)
    p = float(arg(node.args, node.kwargs, 1, "p"))
    keep = _below(ctx, node, out, 1.0 - p)
    dtype = ctx.dtype(x)
    rank = len(out)
    scaled = elementwise(ctx, x, 1.0 / (1.0 - p), "PROD", node, dtype, suffix="scale")
    zero = ctx.scalar(0, dtype, rank, node)
    result = select(ctx, keep, scaled, zero, node, "dropped")
    return result, keep


def _dropout(ctx, node, args, kwargs):
    """dropout.default in training mode (from tracers that keep the composite op): the result
    of native_dropout alone."""
    return _native_dropout(ctx, node, args, kwargs)[0]


def _native_dropout_supported(node, settings) -> bool:
    x = val(node.args[0])
    p = arg(node.args, node.kwargs, 1, "p")
    train = arg(node.args, node.kwargs, 2, "train")
    if node.target is aten.dropout.default and train is not True:
        return False
    return (train is not False and isinstance(p, (int, float)) and 0 < p < 1
            and isinstance(x, torch.Tensor) and x.dtype in FLOATS and nonempty(node)
            and sizes_computable(x.shape))


_DROPOUTS = (aten.dropout.default, aten.alpha_dropout.default, aten.feature_dropout.default,
             aten.feature_alpha_dropout.default)


def _identity(ctx, node, args, kwargs):
    return args[0]


def _dropout_supported(node, settings) -> bool:
    x = val(node.args[0])
    return (arg(node.args, node.kwargs, 2, "train") is False and isinstance(x, torch.Tensor)
            and x.dtype in NUMERIC and nonempty(node))


def _native_dropout_identity(ctx, node, args, kwargs):
    """``(x, mask)`` where nobody is dropped: the mask is all True (one constant, broadcast)."""
    x = args[0]
    mask_value = val(node)[1]
    shape = tuple(mask_value.shape)
    mask = None
    if any(u.args[1] == 1 for u in node.users):
        mask = ctx.scalar(True, torch.bool, len(shape), node)
        if shape and (is_dynamic(shape) or any(d != 1 for d in shape)):
            mask = slice_to(ctx, mask, (0,) * len(shape), shape, (0,) * len(shape), node, "mask")
    return x, mask


def native_dropout_is_identity(node: torch.fx.Node) -> bool:
    """``native_dropout`` that drops nothing: ``train=False``, or ``p == 0``."""
    train = arg(node.args, node.kwargs, 2, "train")
    return train is False or arg(node.args, node.kwargs, 1, "p") == 0


def _native_dropout_identity_supported(node, settings) -> bool:
    x = val(node.args[0])
    return (native_dropout_is_identity(node) and isinstance(x, torch.Tensor)
            and x.dtype in NUMERIC and nonempty(node)
            and all(u.op == "call_function" and u.args[1] in (0, 1) for u in node.users))


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    sized = [  # (name, target, uniform?, params, validator)
        ("rand", aten.rand.default, True, _UNIT, _numbers()),
        ("randn", aten.randn.default, False, _UNIT, _numbers()),
        ("rand_like", aten.rand_like.default, True, _UNIT, _numbers()),
        ("randn_like", aten.randn_like.default, False, _UNIT, _numbers()),
        ("uniform", aten.uniform.default, True, _uniform_params,
         _numbers((1, "from", 0.0), (2, "to", 1.0))),
        ("normal_functional", aten.normal_functional.default, False, _normal_params,
         _numbers((1, "mean", 0.0), (2, "std", 1.0))),
        ("normal.float_float", aten.normal.float_float, False, _normal_float_float_params,
         _numbers((0, "mean", None), (1, "std", None))),
    ]
    for name, target, uniform, params, check in sized:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_continuous(uniform, params),
                            is_supported=check, supports_dynamic_shapes=True)
    for target in (aten.normal.Tensor_float, aten.normal.float_Tensor, aten.normal.Tensor_Tensor):
        yield ConverterSpec(name=f"builtin.normal.{target._overloadname.lower()}", target=target,
                            convert=_normal_tensor, is_supported=_normal_tensor_supported,
                            supports_dynamic_shapes=True)
    for target in (aten.randint.default, aten.randint.low, aten.randint_like.default,
                   aten.randint_like.low_dtype):
        overload = target._overloadname.lower()
        yield ConverterSpec(name=f"builtin.{target._opname}" + ("" if overload == "default" else f".{overload}"),
                            target=target, convert=_randint, is_supported=_randint_supported,
                            supports_dynamic_shapes=True)
    for target in (aten.bernoulli.default, aten.bernoulli.p):
        overload = target._overloadname.lower()
        yield ConverterSpec(name="builtin.bernoulli" + ("" if overload == "default" else f".{overload}"),
                            target=target, convert=_bernoulli, is_supported=_bernoulli_supported,
                            supports_dynamic_shapes=True)
    # after the identity form (builtin.native_dropout) declines: p > 0 in training mode
    yield ConverterSpec(name="builtin.native_dropout.train", target=aten.native_dropout.default,
                        convert=_native_dropout, is_supported=_native_dropout_supported,
                        priority=-1, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.dropout.train", target=aten.dropout.default,
                        convert=_dropout, is_supported=_native_dropout_supported,
                        priority=-1, supports_dynamic_shapes=True)
    for target in _DROPOUTS:
        yield ConverterSpec(name=f"builtin.{target._opname}", target=target, convert=_identity,
                            is_supported=_dropout_supported, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.native_dropout", target=aten.native_dropout.default,
                        convert=_native_dropout_identity, is_supported=_native_dropout_identity_supported,
                        supports_dynamic_shapes=True)
