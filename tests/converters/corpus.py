"""One call per built-in converter: the corpus whose networks the conformance suite vouches for.

Each entry calls one aten overload directly (so composite ops that tracing would decompose,
``aten.linear`` or ``aten.reshape``, reach their converters too). ``T(shape, dtype)`` marks a
tensor input. A test checks that the corpus uses every built-in converter, so a new
converter must add its entry: here, or in a family module ``corpus_<family>.py`` beside this
one that defines ``CORPUS`` (and optionally ``DYNAMIC_EXTRA`` and ``STATIC_ONLY``) in the same
form; every such module is appended, in name order.
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import attrs
import torch
import torch.utils._pytree as pytree

aten = torch.ops.aten


@attrs.frozen
class T:
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    positive: bool = False
    below: int | None = None
    """Integer inputs only: an index tensor with values in ``[0, below)``."""


def x(*shape: int, dtype: torch.dtype = torch.float32, positive: bool = False,
      below: int | None = None) -> T:
    return T(shape, dtype, positive, below)


F, I, B = torch.float32, torch.int32, torch.bool
CORPUS: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
    # elementwise
    (aten.add.Tensor, (x(2, 3), x(3))), (aten.add.Scalar, (x(2, 3), 2.5)),
    (aten.sub.Tensor, (x(2, 3), x(2, 1))), (aten.sub.Scalar, (x(2, 3, dtype=I), 3)),
    (aten.mul.Tensor, (x(2, 3), x(2, 3, dtype=I))), (aten.mul.Scalar, (x(4), 0.5)),
    (aten.div.Tensor, (x(2, 3, dtype=I), x(3, dtype=I, positive=True))), (aten.div.Scalar, (x(3), 4.0)),
    (lambda a, b: aten.div.Tensor_mode(a, b, rounding_mode="floor"), (x(5, dtype=I), x(5, dtype=I, positive=True))),
    (lambda a: aten.div.Scalar_mode(a, 2.0, rounding_mode="trunc"), (x(5),)), (aten.floor_divide.default, (x(5), x(5, positive=True))),
    (aten.pow.Tensor_Scalar, (x(4), 2.0)), (aten.pow.Tensor_Scalar, (x(2, 3, dtype=I), 3)), (aten.pow.Tensor_Tensor, (x(4, positive=True), x(4))),
    (aten.pow.Scalar, (2.0, x(4))), (aten.maximum.default, (x(3), x(3))), (aten.minimum.default, (x(3), x(3))),
    (aten.neg.default, (x(3, dtype=I),)), (aten.abs.default, (x(3),)), (aten.sqrt.default, (x(3, positive=True),)),
    (aten.rsqrt.default, (x(3, positive=True),)), (aten.exp.default, (x(3),)), (aten.log.default, (x(3, positive=True),)),
    (aten.reciprocal.default, (x(3, positive=True),)), (aten.floor.default, (x(3),)), (aten.ceil.default, (x(3),)),
    (aten.sin.default, (x(3),)), (aten.cos.default, (x(3),)),
    (aten.eq.Tensor, (x(3, dtype=I), x(3, dtype=I))), (aten.eq.Scalar, (x(3, dtype=I), 1)),
    (aten.ne.Tensor, (x(3), x(3))), (aten.ne.Scalar, (x(3), 0.0)),
    (aten.lt.Tensor, (x(3), x(3))), (aten.lt.Scalar, (x(3), 0.0)), (aten.le.Tensor, (x(3), x(3))),
    (aten.le.Scalar, (x(3), 0.0)), (aten.gt.Tensor, (x(3), x(3))), (aten.gt.Scalar, (x(3), 0.0)),
    (aten.ge.Tensor, (x(3), x(3))), (aten.ge.Scalar, (x(3), 0.0)),
    (aten.where.self, (x(3, dtype=B), x(3), x(3))),
    (aten.masked_fill.Scalar, (x(2, 3), x(3, dtype=B), -1.5)),
    (aten.masked_fill.Tensor, (x(2, 3, dtype=I), x(2, 1, dtype=B), x(dtype=I))), (aten.clamp.default, (x(4), -0.5, 0.5)),
    (aten.clamp_min.default, (x(4), 0.0)), (aten.clamp_max.default, (x(4), 0.0)),
    (lambda t: aten._to_copy.default(t, dtype=torch.int32), (x(4),)),
    (lambda t: aten.scalar_tensor.default(3.0) + t, (x(2),)),
    # activation
    (aten.relu.default, (x(3),)), (aten.sigmoid.default, (x(3),)), (aten.tanh.default, (x(3),)),
    (aten.gelu.default, (x(3),)), (aten.silu.default, (x(3),)), (aten.hardtanh.default, (x(3),)),
    (aten.leaky_relu.default, (x(3),)), (aten.elu.default, (x(3),)), (aten.softplus.default, (x(3), 1.0, 20.0)),
    # matmul
    (aten.mm.default, (x(2, 3), x(3, 4))), (aten.bmm.default, (x(2, 2, 3), x(2, 3, 2))),
    (aten.mv.default, (x(2, 3), x(3))), (aten.matmul.default, (x(2, 2, 3), x(3, 4))),
    (aten.addmm.default, (x(4), x(2, 3), x(3, 4))), (aten.linear.default, (x(2, 3), x(4, 3), x(4))),
    (aten.t.default, (x(2, 3),)),
    # convolution and pooling
    (lambda i, w, b: aten.convolution.default(i, w, b, [1, 1], [1, 1], [1, 1], False, [0, 0], 1),
     (x(1, 2, 5, 5), x(3, 2, 3, 3), x(3))),
    (lambda i, w: aten.convolution.default(i, w, None, [2, 2], [1, 1], [1, 1], True, [1, 1], 1),
     (x(1, 2, 4, 4), x(2, 3, 3, 3))),
    (lambda t: aten.max_pool2d_with_indices.default(t, [2, 2])[0], (x(1, 2, 4, 4),)),
    (aten.max_pool2d.default, (x(1, 2, 4, 4), [2, 2])),
    (lambda t: aten.max_pool3d_with_indices.default(t, [2, 2, 2])[0], (x(1, 1, 4, 4, 4),)),
    (aten.max_pool3d.default, (x(1, 1, 4, 4, 4), [2, 2, 2])),
    (aten.avg_pool2d.default, (x(1, 2, 4, 4), [2, 2])), (aten.avg_pool3d.default, (x(1, 1, 4, 4, 4), [2, 2, 2])),
    (aten.adaptive_avg_pool2d.default, (x(1, 2, 4, 4), [2, 2])),
    (aten._adaptive_avg_pool2d.default, (x(1, 2, 4, 4), [1, 1])),
    (aten.adaptive_avg_pool3d.default, (x(1, 1, 4, 4, 4), [2, 2, 2])),
    (aten._adaptive_avg_pool3d.default, (x(1, 1, 4, 4, 4), [1, 1, 1])),
    # normalization
    (lambda t, w, b, m, v: aten._native_batch_norm_legit_no_training.default(t, w, b, m, v, 0.1, 1e-5)[0],
     (x(2, 3, 4), x(3), x(3), x(3), x(3, positive=True))),
    (lambda t, w, b, m, v: aten.native_batch_norm.default(t, w, b, m, v, False, 0.1, 1e-5)[0],
     (x(2, 3, 4), x(3), x(3), x(3), x(3, positive=True))),
    (lambda t, w, b, m, v: aten.batch_norm.default(t, w, b, m, v, False, 0.1, 1e-5, False),
     (x(2, 3, 4), x(3), x(3), x(3), x(3, positive=True))),
    (lambda t, w, b: aten.native_layer_norm.default(t, [3, 4], w, b, 1e-5)[0], (x(2, 3, 4), x(3, 4), x(3, 4))),
    # indexing
    (aten.embedding.default, (x(5, 3), x(2, 4, dtype=torch.int64, below=5))),
    (lambda t, i: aten.index_select.default(t, 1, i), (x(3, 4), x(2, dtype=torch.int64, below=4))),
    (lambda t, i: aten.gather.default(t, 0, i), (x(3, 4), x(3, 4, dtype=torch.int64, below=3))),
    # shape
    (aten.view.default, (x(2, 6), [3, 4])), (aten._unsafe_view.default, (x(2, 6), [12])),
    (aten.reshape.default, (x(2, 6), [4, -1])), (aten.flatten.using_ints, (x(2, 3, 2), 1)),
    (aten.unsqueeze.default, (x(2, 3), -1)), (aten.squeeze.default, (x(2, 1, 3),)),
    (aten.squeeze.dim, (x(2, 1, 3), 1)), (aten.squeeze.dims, (x(1, 2, 1), [0, 2])),
    (aten.permute.default, (x(2, 3, 4), [2, 0, 1])), (aten.transpose.int, (x(2, 3, 4), 0, 2)),
    (aten.expand.default, (x(3, 1), [2, 3, 4])), (aten.cat.default, ([x(2, 3), x(1, 3, dtype=I)], 0)),
    (aten.slice.Tensor, (x(6, 4), 0, 1, 5, 2)), (aten.select.int, (x(3, 4), 1, -1)),
    (lambda t: aten.split.Tensor(t, 2, 1)[1], (x(3, 5),)),
    (lambda t: aten.split_with_sizes.default(t, [1, 3], 1)[1], (x(3, 4),)),
    (aten.clone.default, (x(3),)), (aten.copy.default, (x(2, 3), x(3, dtype=I))),
    # reduction
    (aten.sum.dim_IntList, (x(2, 3, 4), [1, -1], True)), (aten.sum.default, (x(2, 3, dtype=I),)),
    (aten.mean.dim, (x(2, 3, 4), [0])), (aten.mean.default, (x(2, 3),)),
    (aten.amax.default, (x(2, 3), [1])), (aten.amin.default, (x(2, 3), [0])),
    (aten._softmax.default, (x(2, 5), -1, False)), (aten.softmax.int, (x(2, 5), 0)),
    (lambda t, m: aten._safe_softmax.default(t + aten.log.default(aten._to_copy.default(m, dtype=F)), -1),
     (x(3, 4), x(3, 4, dtype=B))),
    (aten._log_softmax.default, (x(2, 5), 1, False)), (aten.log_softmax.int, (x(2, 5), -1)),
]


# Entries whose sizes can vary with dim 0 of their first input, for converters whose CORPUS
# entry pins every size (a fixed reshape target, a batch of 1, an index of the data's shape).
DYNAMIC_EXTRA: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
    (lambda t: aten.view.default(t, [t.shape[0] * 2, -1]), (x(3, 4),)),
    (lambda t: aten._unsafe_view.default(t, [t.shape[0], 6]), (x(3, 2, 3),)),
    (lambda t: aten.reshape.default(t, [-1, 2]), (x(3, 4),)),
    (lambda t: aten.squeeze.dims(t, [1, 3]), (x(3, 1, 2, 1),)),
    (lambda t: aten.expand.default(t, [2, t.shape[0], 4]), (x(3, 1),)),
    (lambda t: aten.gather.default(t, 1, aten.clamp_max.default(
        aten._to_copy.default(aten.abs.default(t), dtype=torch.int64), t.shape[1] - 1)), (x(3, 4),)),
    (lambda t, w, b: aten.convolution.default(t, w, b, [1, 1], [1, 1], [1, 1], False, [0, 0], 1),
     (x(2, 3, 6, 6), x(4, 3, 3, 3), x(4))),
    (lambda t: aten.max_pool2d.default(t, [2, 2], [2, 2]), (x(2, 3, 6, 6),)),
    (lambda t: aten.max_pool2d_with_indices.default(t, [2, 2], [2, 2])[0], (x(2, 3, 6, 6),)),
    (lambda t: aten.max_pool3d.default(t, [2, 2, 2], [2, 2, 2]), (x(2, 2, 4, 4, 4),)),
    (lambda t: aten.max_pool3d_with_indices.default(t, [2, 2, 2], [2, 2, 2])[0], (x(2, 2, 4, 4, 4),)),
    (lambda t: aten.avg_pool2d.default(t, [3, 3], [2, 2], [1, 1]), (x(2, 3, 7, 7),)),
    (lambda t: aten.avg_pool3d.default(t, [2, 2, 2], [2, 2, 2]), (x(2, 2, 4, 4, 4),)),
    (lambda t: aten._adaptive_avg_pool2d.default(t, [2, 3]), (x(2, 3, 4, 6),)),
    (lambda t: aten.adaptive_avg_pool2d.default(t, [1, 1]), (x(2, 3, 4, 6),)),
    (lambda t: aten._adaptive_avg_pool3d.default(t, [2, 2, 1]), (x(2, 2, 4, 4, 3),)),
    (lambda t: aten.adaptive_avg_pool3d.default(t, [1, 1, 1]), (x(2, 2, 4, 4, 3),)),
]


def _family_modules() -> list:
    """The ``corpus_<family>`` modules beside this one, in name order."""
    import importlib
    from pathlib import Path

    names = sorted(p.stem for p in Path(__file__).parent.glob("corpus_*.py"))
    return [importlib.import_module(f"{__package__}.{name}") for name in names]


STATIC_ONLY: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
"""Entries torch cannot trace with symbolic sizes (ops without a meta kernel, such as fake
quantization): in the corpus, not in the dynamic corpus."""
for _family in _family_modules():
    CORPUS += _family.CORPUS
    DYNAMIC_EXTRA += getattr(_family, "DYNAMIC_EXTRA", [])
    STATIC_ONLY += getattr(_family, "STATIC_ONLY", [])
DYNAMIC_CORPUS = CORPUS + DYNAMIC_EXTRA
CORPUS += STATIC_ONLY


@attrs.frozen(kw_only=True)
class CorpusResult:
    index: int
    converters: frozenset[str]
    layer_types: frozenset[str]
    layer_operations: frozenset[str]
    """``layer_operation`` labels of the built network (``"UNARY/ASIN"``)."""
    outputs: tuple[torch.Tensor, ...]
    expected: tuple[torch.Tensor, ...]


def _materialise(spec: T, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if spec.dtype == torch.bool:
        return torch.randint(0, 2, spec.shape, generator=g).bool()
    if spec.dtype.is_floating_point:
        value = torch.randn(spec.shape, generator=g)
        return (value.abs() + 0.5 if spec.positive else value).to(spec.dtype)
    if spec.below is not None:
        return torch.randint(0, spec.below, spec.shape, generator=g).to(spec.dtype)
    return torch.randint(1 if spec.positive else -9, 10, spec.shape, generator=g).to(spec.dtype)


def _entry(corpus: list, index: int) -> tuple[list, list[int], list[torch.Tensor], Callable[..., Any]]:
    """Entry ``index`` of ``corpus``: its flattened arguments, where the tensors go, the
    tensors materialised, and a function of those tensors alone."""
    import torch.utils._pytree as pytree

    fn, args = corpus[index]
    leaves, spec = pytree.tree_flatten(args)
    slots = [i for i, leaf in enumerate(leaves) if isinstance(leaf, T)]
    inputs = [_materialise(leaves[i], seed=index * 7 + i) for i in slots]

    def call(*tensors):
        filled = list(leaves)
        for slot, tensor in zip(slots, tensors):
            filled[slot] = tensor
        return fn(*pytree.tree_unflatten(filled, spec))
    return leaves, slots, inputs, call


def run_entry(index: int, precision: torch.dtype = torch.float32) -> CorpusResult:
    """Trace entry ``index`` (pre-dispatch, so composite ops stay whole), convert the whole
    graph with the built-in converters, build the engine and evaluate it with the reference
    runtime."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from plugtrt import engine
    from plugtrt.interpreter import NetworkInterpreter
    from plugtrt.manager import default_registry
    from plugtrt.runtimes.reference import evaluate
    from plugtrt.settings import CompilationSettings

    leaves, slots, inputs, call = _entry(CORPUS, index)

    expected = call(*inputs)
    # constants an entry closes over (a quantization scale) become get_attr nodes, as frozen
    # weights are in the backend
    gm = make_fx(call, tracing_mode="fake", _allow_non_fake_inputs=True, pre_dispatch=True)(*inputs)
    gm.graph.eliminate_dead_code()  # as lowering does: tracing leaves unread getitems
    settings = CompilationSettings(precision=precision)
    builder, network = engine.new_network()
    interpreter = NetworkInterpreter(gm, default_registry(), settings, network)
    specs_in, specs_out = interpreter.run([n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder"])
    artifact = engine.build(f"corpus_{index}", builder, network, settings, tuple(specs_in), tuple(specs_out))
    results = evaluate(artifact.network, {s.name: t for s, t in zip(specs_in, inputs)})
    outputs = tuple(results[s.name].to(s.model_dtype) for s in specs_out)
    return CorpusResult(index=index, converters=frozenset(interpreter.converters_used),
                        layer_types=frozenset(artifact.network.layer_counts()),
                        layer_operations=artifact.network.layer_operations(), outputs=outputs,
                        expected=tuple(expected) if isinstance(expected, (tuple, list)) else (expected,))


def _symbolic_dims(rank: int, dims: str) -> list[bool]:
    """Which dims of a tensor of ``rank`` are symbolic: dim 0 for ``batch``; for ``trailing``
    the spatial dims (2 onward) of a rank 3+ tensor, the last dim of a matrix, dim 0 of a vector."""
    if dims == "batch" or rank == 1:
        return [i == 0 for i in range(rank)]
    return [i >= 2 if rank >= 3 else i == rank - 1 for i in range(rank)]


def _marked_inputs(inputs: list[torch.Tensor], every_input: bool) -> frozenset[int]:
    """The positions of the tensor inputs whose dims become symbolic: the first input, or every
    input with ``every_input``; a 0-d tensor has no dim to make symbolic."""
    return frozenset(i for i, t in enumerate(inputs) if t.dim() and (every_input or i == 0))


def dynamic_modes(index: int) -> dict[tuple[bool, str], tuple[frozenset[int], str]]:
    """``(every_input, dims)`` -> what that mode makes symbolic in ``DYNAMIC_CORPUS[index]``.
    Modes that mark the same inputs (every mode of an entry with one tensor input) trace the
    same graph, so a caller runs each distinct marking once."""
    inputs = _entry(DYNAMIC_CORPUS, index)[2]
    return {(every, dims): (_marked_inputs(inputs, every), dims)
            for every in (False, True) for dims in ("batch", "trailing")}


def run_entry_dynamic(index: int, every_input: bool, dims: str = "batch") -> CorpusResult | None:
    """Entry ``index`` of ``DYNAMIC_CORPUS`` with dim 0 of its first tensor input symbolic (of
    every tensor input with ``every_input``), or its trailing dims (``dims="trailing"``: the
    height and width of an image) with the batch static: traced with those sizes, built once
    with an optimization profile, and evaluated at sizes one larger than traced. Returns None
    when tracing left no size symbolic (the entry's shapes pin every dim), a validator declines
    the dynamic sizes, or the larger sizes are not valid for the op."""
    import sympy
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext

    from plugtrt import engine
    from plugtrt.errors import NetworkRejectedError
    from plugtrt.interpreter import NetworkInterpreter
    from plugtrt.manager import default_registry
    from plugtrt.runtimes.reference import evaluate
    from plugtrt.settings import CompilationSettings

    leaves, slots, inputs, call = _entry(DYNAMIC_CORPUS, index)

    marked = _marked_inputs(inputs, every_input)
    mode = FakeTensorMode(shape_env=ShapeEnv(), allow_non_fake_inputs=True)
    fakes = [mode.from_tensor(t, symbolic_context=StatelessSymbolicContext(dynamic_sizes=[
        DimDynamic.DYNAMIC if symbolic else DimDynamic.STATIC for symbolic in _symbolic_dims(t.dim(), dims)]))
        if i in marked else mode.from_tensor(t, static_shapes=True) for i, t in enumerate(inputs)]
    gm = make_fx(call, tracing_mode="fake", _allow_non_fake_inputs=True, pre_dispatch=True)(*fakes)
    gm.graph.eliminate_dead_code()
    values = [n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder"]
    symbols = {s for v in values if isinstance(v, torch.Tensor) for d in v.shape
               if isinstance(d, torch.SymInt) for s in d.node.expr.free_symbols}
    if not symbols:
        return None
    registry = default_registry()
    if any(registry.converter_for(n, CompilationSettings()) is None for n in gm.graph.nodes
           if n.op == "call_function" and n.target is not operator.getitem
           and not isinstance(n.meta.get("val"), torch.SymInt)):
        return None  # a validator declines these dynamic sizes (a weight's dim, say)
    traced = {s: int(mode.shape_env.var_to_val[s]) for s in symbols}
    bounds = {s: (1, v, v + 3) for s, v in traced.items()}
    settings = CompilationSettings()
    for split in (True, False):  # as the compiler does: profiles TensorRT refuses become one
        builder, network = engine.new_network()
        interpreter = NetworkInterpreter(gm, registry, settings, network)
        specs_in, specs_out = interpreter.run(values, bounds, split)
        try:
            artifact = engine.build(f"corpus_dynamic_{index}", builder, network, settings, tuple(specs_in),
                                    tuple(specs_out), retried=len(interpreter.profiles) > 1)
            break
        except NetworkRejectedError:
            if len(interpreter.profiles) < 2:
                raise
    bigger = {s: v + 1 for s, v in traced.items()}
    resized = [_materialise(attrs.evolve(leaves[slot], shape=tuple(
        int(sympy.sympify(d.node.expr if isinstance(d, torch.SymInt) else d).xreplace(bigger))
        for d in value.shape)), seed=index * 7 + slot) for slot, value in zip(slots, values)]
    try:
        expected = call(*resized)
    except RuntimeError:  # e.g. a reshape to a fixed size: the op itself pins the traced size
        return None
    traced_out = [n for n in gm.graph.nodes if n.op == "output"][0].args[0]
    want = [tuple(int(sympy.sympify(d.node.expr if isinstance(d, torch.SymInt) else d).xreplace(bigger))
                  for d in o.meta["val"].shape) for o in pytree.tree_leaves(traced_out)]
    if want != [tuple(t.shape) for t in pytree.tree_leaves(expected)]:
        return None  # the trace guarded a size (how many pieces a split makes): dynamo retraces
    results = evaluate(artifact.network, {s.name: t for s, t in zip(specs_in, resized)})
    outputs = tuple(results[s.name].to(s.model_dtype) for s in specs_out)
    return CorpusResult(index=index, converters=frozenset(interpreter.converters_used),
                        layer_types=frozenset(artifact.network.layer_counts()),
                        layer_operations=artifact.network.layer_operations(), outputs=outputs,
                        expected=tuple(expected) if isinstance(expected, (tuple, list)) else (expected,))
