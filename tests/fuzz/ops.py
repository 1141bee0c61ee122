"""The op pool the fuzzer draws programs from: ops plugtrt converts, and a few it does not.

Each op is a Python expression template over its operands (``{0}``, ``{1}``, ...) and its drawn
arguments (``{dim}``, ...). The same text is both what the fuzzed module evaluates and what the
reproducer prints, so a printed program is exactly the program that ran.

Two numeric rules shape the templates, so that a mismatch means a bug and not arithmetic:

- domains are made safe in the template itself (``log(|x| + 1)``, division by ``|b| + 1``,
  ``exp`` of ``x`` clamped to at most 8), never by rejecting values afterwards;
- ops whose result jumps under a rounding difference (comparisons, ``//``, float -> int or
  bool casts) only take *exact* operands: integers, booleans, or floats that went through no
  rounding step since the input (inputs are drawn exactly representable in every float dtype).
  A float computed at float16 inside the engine may legitimately differ from eager's float32
  in its last bits; comparing it with ``<`` would turn that into a different boolean.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import attrs
import torch
from hypothesis import strategies as st

FLOATS = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
"""float64 too: with truncate_long_and_double it runs in TensorRT at the engine's precision,
without it it stays in PyTorch."""
INTS = (torch.int32, torch.int64)


@attrs.frozen
class Value:
    """What the generator knows of a value while it builds a program."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    exact: bool
    """No rounding happened on the way from the inputs (always true for ints and bools)."""


def is_float(v: Value) -> bool:
    return v.dtype in FLOATS


def is_numeric(v: Value) -> bool:
    return v.dtype in FLOATS or v.dtype in INTS


def is_exact(v: Value) -> bool:
    return v.exact or not is_float(v)


def broadcastable(a: Value, b: Value) -> bool:
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        return False
    return True


@attrs.frozen
class Op:
    """One op of the pool.

    ``operands(values, first)`` says which values may be operand 0 (``first`` is None) or, for
    binary ops, operand 1 given operand 0. ``args(draw, operands)`` draws the template's
    keyword arguments; ``module(operands, args)`` builds the parameterised layer, if any.
    """

    name: str
    template: str
    arity: int
    first: Callable[[Value], bool]
    aten: tuple[str, ...]
    """aten packets the op lowers to: the candidates for ``torch_executed_ops``."""
    converted: bool = True
    """plugtrt has converters for it (False: it must run in PyTorch, splitting the graph)."""
    preserves_exact: bool = False
    """The result is exact when every operand is (no rounding: views, max, neg ...)."""
    second: Callable[[Value, Value], bool] | None = None
    args: Callable[[Any, list[Value]], dict[str, Any]] = lambda draw, vals: {}
    module: Callable[[list[Value], dict[str, Any]], str] | None = None
    """Source of the ``torch.nn`` layer this op calls as ``{layer}``."""


def _dim(draw, vals):
    return {"dim": draw(st.integers(-len(vals[0].shape), len(vals[0].shape) - 1))}


def _dims(draw, vals):
    rank = len(vals[0].shape)
    dims = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
    return {"dims": sorted(dims), "keepdim": draw(st.booleans())}


def _same_rank_cat(a: Value, b: Value) -> bool:
    return (len(a.shape) == len(b.shape) and a.dtype == b.dtype
            and sum(x != y for x, y in zip(a.shape, b.shape)) <= 1)


def _mask(a: Value, b: Value) -> bool:
    """masked_fill's mask: bool, and it broadcasts to the filled tensor's own shape."""
    return b.dtype == torch.bool and broadcastable(a, b) and \
        torch.broadcast_shapes(a.shape, b.shape) == a.shape


def _cat_args(draw, vals):
    a, b = vals
    differing = [i for i, (x, y) in enumerate(zip(a.shape, b.shape)) if x != y]
    return {"dim": differing[0] if differing else draw(st.integers(0, len(a.shape) - 1))}


def _permute(draw, vals):
    return {"perm": tuple(draw(st.permutations(range(len(vals[0].shape)))))}


def _transpose(draw, vals):
    rank = len(vals[0].shape)
    return {"a": draw(st.integers(0, rank - 1)), "b": draw(st.integers(-rank, rank - 1))}


def _merge(draw, vals):
    """A reshape that merges two neighbouring dims, or flattens everything."""
    shape = vals[0].shape
    if len(shape) < 2 or draw(st.booleans()):
        return {"shape": (-1,)}
    i = draw(st.integers(0, len(shape) - 2))
    return {"shape": shape[:i] + (shape[i] * shape[i + 1],) + shape[i + 2:]}


def _slice(draw, vals):
    shape = vals[0].shape
    dim = draw(st.integers(0, len(shape) - 1))
    start = draw(st.integers(0, shape[dim] - 1))
    stop = draw(st.integers(start + 1, shape[dim]))
    step = draw(st.integers(1, 2))
    return {"index": ", ".join([":"] * dim + [f"{start}:{stop}:{step}"])}


# Clamp bounds exactly representable in bfloat16 (8 significant bits), so that clamping an
# exact value keeps it exact in every precision.
_BOUNDS = [-1024, -96, -3, 0, 2.5, 40, 640]


def _clamp(draw, vals):
    low, high = sorted(draw(st.lists(st.sampled_from(_BOUNDS), min_size=2, max_size=2, unique=True)))
    return {"low": low, "high": high}


def _matmul_second(a: Value, b: Value) -> bool:
    """``a @ b.transpose(-1, -2)``: same last dim, batch dims that broadcast, one dtype."""
    if len(a.shape) < 2 or len(b.shape) < 2 or a.shape[-1] != b.shape[-1] or a.dtype != b.dtype:
        return False
    try:
        torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except RuntimeError:
        return False
    return True


def _scale(draw):
    """Weight magnitudes from small to large, exactly representable in every float dtype."""
    return draw(st.sampled_from([0.05, 0.5, 4.0]))


def _linear(draw, vals):
    return {"out": draw(st.integers(1, 6)), "bias": draw(st.booleans()), "scale": _scale(draw)}


def _conv(draw, vals):
    n, c, h, w = vals[0].shape
    kernel = draw(st.integers(1, min(3, h, w)))
    groups = draw(st.sampled_from([g for g in (1, c) if c % g == 0]))
    return {"out": groups * draw(st.integers(1, 3)), "kernel": kernel, "groups": groups,
            "stride": draw(st.integers(1, 2)), "padding": draw(st.integers(0, kernel // 2)),
            "bias": draw(st.booleans()), "scale": _scale(draw)}


def _norm(draw, vals):
    return {"scale": _scale(draw)}


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype)  # "torch.float16": valid source


def _cast_args(draw, vals):
    v = vals[0]
    targets = [*FLOATS, *INTS, torch.bool]
    if not is_exact(v):  # float -> int/bool truncates: a rounding difference would show
        targets = list(FLOATS)
    return {"dtype": _dtype_name(draw(st.sampled_from([t for t in targets if t != v.dtype])))}


def _pool(draw, vals):
    n, c, h, w = vals[0].shape
    kernel = draw(st.integers(1, min(3, h, w)))
    return {"kernel": kernel, "stride": draw(st.integers(1, 2)), "padding": draw(st.integers(0, kernel // 2))}


def _avg_pool(draw, vals):
    return {**_pool(draw, vals), "include_pad": draw(st.booleans())}


def _adaptive(draw, vals):
    return {"size": (draw(st.integers(1, vals[0].shape[2])), draw(st.integers(1, vals[0].shape[3])))}


def _expand(draw, vals):
    """Dims of size 1 grow, and maybe a new leading dim appears."""
    shape = tuple(draw(st.integers(1, 4)) if d == 1 else d for d in vals[0].shape)
    lead = (draw(st.integers(1, 3)),) if draw(st.booleans()) else ()
    return {"shape": lead + shape}


def _select(draw, vals):
    shape = vals[0].shape
    dim = draw(st.integers(0, len(shape) - 1))
    return {"index": ", ".join([":"] * dim + [str(draw(st.integers(-shape[dim], shape[dim] - 1)))])}


def _chunk(draw, vals):
    dim = draw(st.integers(0, len(vals[0].shape) - 1))
    n = draw(st.integers(1, 3))
    pieces = len(range(0, vals[0].shape[dim], -(-vals[0].shape[dim] // n)))
    return {"n": n, "dim": dim, "k": draw(st.integers(0, pieces - 1))}


def _int_div(draw, vals):
    return {"mode": repr(draw(st.sampled_from(["trunc", "floor"])))}


def _groups(draw, vals):
    channels = vals[0].shape[1]
    return {"groups": draw(st.sampled_from([g for g in range(1, channels + 1) if channels % g == 0])),
            "scale": _scale(draw)}


def _embedding(draw, vals):
    return {"rows": draw(st.integers(1, 6)), "width": draw(st.integers(1, 5)), "scale": _scale(draw)}


def _index_select(draw, vals):
    return {"dim": draw(st.integers(0, len(vals[0].shape) - 1))}


def _pow(draw, vals):
    return {"exponent": draw(st.sampled_from([2, 3]))}


def _scalar(draw, vals):
    return {"c": draw(st.sampled_from([2, -3, 0.5, 2.5]))}


def _fill(draw, vals):
    return {"c": draw(st.sampled_from([0, -7, 1.5]))}


def _binary(name, template, aten, accepts=is_numeric, **kw) -> Op:
    return Op(name=name, template=template, arity=2, first=accepts, aten=aten,
              second=lambda a, b: accepts(b) and broadcastable(a, b), **kw)


def _compare(name, symbol) -> Op:
    """Both operands exact, and both floats or neither: promoting an integer to a float rounds
    it differently at each precision (1001 is a float16 but not a bfloat16)."""
    def exact_numeric(v):
        return is_exact(v) and (is_numeric(v) or v.dtype == torch.bool)
    return Op(name=name, template=f"{{0}} {symbol} {{1}}", arity=2, first=exact_numeric,
              aten=(f"aten.{name}",), preserves_exact=True,
              second=lambda a, b: exact_numeric(b) and broadcastable(a, b) and is_float(a) == is_float(b))


def _unary(name, template, aten, accepts=is_float, **kw) -> Op:
    return Op(name=name, template=template, arity=1, first=accepts, aten=aten, **kw)


def _has_rank(low, high=8, accepts=is_numeric):
    return lambda v: low <= len(v.shape) <= high and accepts(v)


OPS: dict[str, Op] = {op.name: op for op in [
    # -- elementwise, converted ------------------------------------------------------------
    _binary("add", "{0} + {1}", ("aten.add",)),
    _binary("sub", "{0} - {1}", ("aten.sub",)),
    _binary("mul", "{0} * {1}", ("aten.mul",)),
    _binary("div", "{0} / ({1}.abs() + 1)", ("aten.div", "aten.abs", "aten.add")),
    # Integer divisors of both signs, never zero: b + 1 where b >= 0, else b.
    _binary("floor_divide", "{0} // torch.where({1} >= 0, {1} + 1, {1})",
            ("aten.floor_divide", "aten.where", "aten.ge", "aten.add"), accepts=lambda v: v.dtype in INTS),
    _binary("div_mode", "torch.div({0}, torch.where({1} >= 0, {1} + 1, {1}), rounding_mode={mode})",
            ("aten.div", "aten.where", "aten.ge", "aten.add"), accepts=lambda v: v.dtype in INTS,
            args=_int_div),
    _unary("rsub", "{c} - {0}", ("aten.rsub", "aten.sub"), accepts=is_numeric, args=_scalar),
    _binary("maximum", "torch.maximum({0}, {1})", ("aten.maximum",), preserves_exact=True),
    _binary("minimum", "torch.minimum({0}, {1})", ("aten.minimum",), preserves_exact=True),
    _unary("add_scalar", "{0} + {c}", ("aten.add",), accepts=is_numeric, args=_scalar),
    _unary("mul_scalar", "{0} * {c}", ("aten.mul",), accepts=is_numeric, args=_scalar),
    _compare("lt", "<"), _compare("gt", ">"), _compare("le", "<="), _compare("ge", ">="),
    _compare("eq", "=="), _compare("ne", "!="),
    Op(name="where", template="torch.where({0}, {1}, {2})", arity=3,
       first=lambda v: v.dtype == torch.bool, aten=("aten.where",), preserves_exact=True,
       second=lambda a, b: is_numeric(b) and broadcastable(a, b)),
    Op(name="where_scalar", template="torch.where({0}, {1}, {c})", arity=2,
       first=lambda v: v.dtype == torch.bool, aten=("aten.where",), args=_fill,
       second=lambda a, b: is_numeric(b) and broadcastable(a, b)),
    Op(name="masked_fill", template="{0}.masked_fill({1}, {c})", arity=2, first=is_numeric,
       aten=("aten.masked_fill",), second=_mask, args=_fill, preserves_exact=True),
    _unary("neg", "-{0}", ("aten.neg",), accepts=is_numeric, preserves_exact=True),
    _unary("abs", "{0}.abs()", ("aten.abs",), accepts=is_numeric, preserves_exact=True),
    _unary("relu", "torch.relu({0})", ("aten.relu",), preserves_exact=True),
    _unary("sigmoid", "torch.sigmoid({0})", ("aten.sigmoid",)),
    _unary("tanh", "torch.tanh({0})", ("aten.tanh",)),
    _unary("gelu", "F.gelu({0})", ("aten.gelu",)),
    _unary("leaky_relu", "F.leaky_relu({0}, 0.125)", ("aten.leaky_relu",)),
    _unary("silu", "F.silu({0})", ("aten.silu",)),
    _unary("hardtanh", "F.hardtanh({0}, -3.0, 40.0)", ("aten.hardtanh",)),
    # floor is discontinuous: exact operands only (multiples of 1/4 floor exactly everywhere).
    _unary("floor", "torch.floor({0})", ("aten.floor",), accepts=lambda v: is_float(v) and v.exact,
           preserves_exact=True),
    _unary("exp", "torch.exp({0}.clamp(max=8))", ("aten.exp", "aten.clamp")),
    _unary("log", "torch.log({0}.abs() + 1)", ("aten.log", "aten.abs", "aten.add")),
    _unary("sqrt", "torch.sqrt({0}.abs())", ("aten.sqrt", "aten.abs")),
    _unary("pow", "{0} ** {exponent}", ("aten.pow",), args=_pow),
    _unary("clamp", "{0}.clamp({low}, {high})", ("aten.clamp",), accepts=is_numeric,
           args=_clamp, preserves_exact=True),
    _unary("cast", "{0}.to({dtype})", ("aten._to_copy",), accepts=lambda v: True,
           args=_cast_args, preserves_exact=True),
    # -- reductions and normalisation ------------------------------------------------------
    _unary("sum", "{0}.sum(dim={dims}, keepdim={keepdim})", ("aten.sum",),
           accepts=_has_rank(1), args=_dims),
    _unary("mean", "{0}.mean(dim={dims}, keepdim={keepdim})", ("aten.mean",),
           accepts=_has_rank(1, accepts=is_float), args=_dims),
    _unary("amax", "{0}.amax(dim={dims}, keepdim={keepdim})", ("aten.amax",),
           accepts=_has_rank(1), args=_dims, preserves_exact=True),
    _unary("amin", "{0}.amin(dim={dims}, keepdim={keepdim})", ("aten.amin",),
           accepts=_has_rank(1), args=_dims, preserves_exact=True),
    _unary("log_softmax", "torch.log_softmax({0}, dim={dim})", ("aten._log_softmax", "aten.log_softmax"),
           accepts=_has_rank(1, accepts=is_float), args=_dim),
    # correction=0: a variance over one element is 0, not a NaN. var, std and group norm convert
    # only through enable_experimental_decompositions: "converted" is False, the settings decide.
    _unary("var", "{0}.var(dim={dims}, correction=0, keepdim={keepdim})", ("aten.var",),
           accepts=_has_rank(1, accepts=is_float), args=_dims, converted=False),
    _unary("std", "{0}.std(dim={dims}, correction=0, keepdim={keepdim})", ("aten.std", "aten.var"),
           accepts=_has_rank(1, accepts=is_float), args=_dims, converted=False),
    _unary("softmax", "torch.softmax({0}, dim={dim})", ("aten._softmax", "aten.softmax"),
           accepts=_has_rank(1, accepts=is_float), args=_dim),
    # -- matmul and layers with weights ----------------------------------------------------
    Op(name="matmul", template="{0} @ {1}.transpose(-1, -2)", arity=2, aten=("aten.matmul",
       "aten.bmm", "aten.mm", "aten.transpose"), first=_has_rank(2, accepts=is_float),
       second=_matmul_second),
    _unary("linear", "{layer}({0})", ("aten.linear", "aten.addmm", "aten.mm"),
           accepts=_has_rank(1, accepts=is_float), args=_linear,
           module=lambda vals, a: f"torch.nn.Linear({vals[0].shape[-1]}, {a['out']}, "
                                  f"bias={a['bias']}, dtype={vals[0].dtype})"),
    _unary("conv2d", "{layer}({0})", ("aten.convolution",),
           accepts=lambda v: len(v.shape) == 4 and is_float(v), args=_conv,
           module=lambda vals, a: f"torch.nn.Conv2d({vals[0].shape[1]}, {a['out']}, {a['kernel']}, "
                                  f"stride={a['stride']}, padding={a['padding']}, groups={a['groups']}, "
                                  f"bias={a['bias']}, dtype={vals[0].dtype})"),
    _unary("layer_norm", "{layer}({0})", ("aten.native_layer_norm", "aten.layer_norm"),
           accepts=_has_rank(1, accepts=is_float), args=_norm,
           module=lambda vals, a: f"torch.nn.LayerNorm({vals[0].shape[-1]}, dtype={vals[0].dtype})"),
    _unary("batch_norm", "{layer}({0})", ("aten._native_batch_norm_legit_no_training",),
           accepts=lambda v: len(v.shape) == 4 and is_float(v), args=_norm,
           module=lambda vals, a: f"torch.nn.BatchNorm2d({vals[0].shape[1]}, dtype={vals[0].dtype})"),
    _unary("group_norm", "{layer}({0})", ("aten.native_group_norm",),
           accepts=lambda v: len(v.shape) == 4 and is_float(v), args=_groups, converted=False,
           module=lambda vals, a: f"torch.nn.GroupNorm({a['groups']}, {vals[0].shape[1]}, dtype={vals[0].dtype})"),
    # Indices clamped into range: an out-of-range index is an error in eager, not a result.
    _unary("embedding", "{layer}({0}.clamp(0, {rows} - 1))", ("aten.embedding", "aten.clamp"),
           accepts=lambda v: v.dtype in INTS, args=_embedding,
           module=lambda vals, a: f"torch.nn.Embedding({a['rows']}, {a['width']})"),
    _unary("attention", "F.scaled_dot_product_attention({0}, {0}, {0}, is_causal={causal})",
           ("aten._scaled_dot_product_flash_attention_for_cpu", "aten.bmm", "aten._softmax"),
           accepts=_has_rank(2, 4, accepts=is_float),
           args=lambda draw, vals: {"causal": draw(st.booleans())}),
    _unary("max_pool2d", "F.max_pool2d({0}, {kernel}, stride={stride}, padding={padding})",
           ("aten.max_pool2d", "aten.max_pool2d_with_indices"),
           accepts=lambda v: len(v.shape) == 4 and is_float(v), args=_pool, preserves_exact=True),
    _unary("avg_pool2d", "F.avg_pool2d({0}, {kernel}, stride={stride}, padding={padding}, "
           "count_include_pad={include_pad})", ("aten.avg_pool2d",),
           accepts=lambda v: len(v.shape) == 4 and is_float(v), args=_avg_pool),
    _unary("adaptive_avg_pool2d", "F.adaptive_avg_pool2d({0}, {size})",
           ("aten._adaptive_avg_pool2d", "aten.adaptive_avg_pool2d"),
           accepts=lambda v: len(v.shape) == 4 and is_float(v), args=_adaptive),
    # -- shapes ----------------------------------------------------------------------------
    _unary("reshape", "{0}.reshape({shape})", ("aten.view", "aten.reshape", "aten._unsafe_view"),
           accepts=_has_rank(1, accepts=lambda v: True), args=_merge, preserves_exact=True),
    _unary("permute", "{0}.permute({perm})", ("aten.permute",),
           accepts=_has_rank(1, accepts=lambda v: True), args=_permute, preserves_exact=True),
    _unary("transpose", "{0}.transpose({a}, {b})", ("aten.transpose",),
           accepts=_has_rank(1, accepts=lambda v: True), args=_transpose, preserves_exact=True),
    _unary("unsqueeze", "{0}.unsqueeze({dim})", ("aten.unsqueeze",),
           accepts=_has_rank(0, 3, accepts=lambda v: True),
           args=lambda draw, vals: {"dim": draw(st.integers(-len(vals[0].shape) - 1, len(vals[0].shape)))},
           preserves_exact=True),
    _unary("slice", "{0}[{index}]", ("aten.slice",), accepts=_has_rank(1, accepts=lambda v: True),
           args=_slice, preserves_exact=True),
    _unary("expand", "{0}.expand({shape})", ("aten.expand",), accepts=_has_rank(1, accepts=lambda v: True),
           args=_expand, preserves_exact=True),
    _unary("select", "{0}[{index}]", ("aten.select",), accepts=_has_rank(1, accepts=lambda v: True),
           args=_select, preserves_exact=True),
    _unary("squeeze", "{0}.squeeze({dim})", ("aten.squeeze",), accepts=_has_rank(1, accepts=lambda v: True),
           args=_dim, preserves_exact=True),
    _unary("chunk", "{0}.chunk({n}, {dim})[{k}]", ("aten.split", "aten.split_with_sizes"),
           accepts=_has_rank(1, accepts=lambda v: True), args=_chunk, preserves_exact=True),
    # The bound is read from the operand, so that the program runs at the other sizes of a dynamic dim.
    Op(name="index_select", template="{0}.index_select({dim}, {1}.flatten().clamp(0, {0}.shape[{dim}] - 1))",
       arity=2,
       aten=("aten.index_select", "aten.clamp", "aten.view"), first=_has_rank(1, accepts=lambda v: True),
       second=lambda a, b: b.dtype in INTS, args=_index_select, preserves_exact=True),
    Op(name="cat", template="torch.cat([{0}, {1}], dim={dim})", arity=2, aten=("aten.cat",),
       first=_has_rank(1, accepts=lambda v: True), second=_same_rank_cat, args=_cat_args,
       preserves_exact=True),
    # -- no converter: these run in PyTorch and split the graph ----------------------------
    _unary("cumsum", "{0}.cumsum({dim})", ("aten.cumsum",), accepts=_has_rank(1), args=_dim,
           converted=False),
    _unary("sort", "{0}.sort(dim={dim}).values", ("aten.sort",), accepts=_has_rank(1), args=_dim,
           converted=False, preserves_exact=True),
    _unary("flip", "{0}.flip({dim})", ("aten.flip",), accepts=_has_rank(1, accepts=lambda v: True),
           args=_dim, converted=False, preserves_exact=True),
    # Splits the model into two dynamo graphs, each compiled on its own.
    _unary("graph_break", "torch._dynamo.graph_break() or {0}", (), accepts=lambda v: True,
           converted=False, preserves_exact=True),
    _unary("erfinv", "torch.erfinv(torch.tanh({0}) * 0.5)", ("aten.erfinv", "aten.tanh", "aten.mul"),
           converted=False),
]}

# Every aten packet an op of the pool lowers to, for drawing torch_executed_ops.
ATEN_PACKETS = sorted(set(itertools.chain.from_iterable(op.aten for op in OPS.values())))

# The generator picks a family first, then an op in it, so that the few ops with weights or the
# ones that split the graph come up as often as a whole family of arithmetic.
FAMILIES: dict[str, tuple[str, ...]] = {
    "arithmetic": ("add", "sub", "mul", "div", "floor_divide", "div_mode", "maximum", "minimum",
                   "add_scalar", "mul_scalar", "rsub", "neg", "abs", "clamp", "cast"),
    "compare_select": ("lt", "gt", "le", "ge", "eq", "ne", "where", "where_scalar", "masked_fill"),
    "activation": ("relu", "sigmoid", "tanh", "gelu", "leaky_relu", "silu", "hardtanh", "floor", "exp",
                   "log", "sqrt", "pow"),
    "reduction": ("sum", "mean", "amax", "amin", "var", "std", "softmax", "log_softmax"),
    "dense": ("matmul", "linear", "layer_norm", "embedding", "attention"),
    "image": ("conv2d", "batch_norm", "group_norm", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"),
    "shape": ("reshape", "permute", "transpose", "unsqueeze", "slice", "expand", "select", "squeeze",
              "chunk", "index_select", "cat"),
    "unconverted": ("cumsum", "sort", "flip", "erfinv", "graph_break"),
}
assert sorted(n for names in FAMILIES.values() for n in names) == sorted(OPS), "every op in one family"
