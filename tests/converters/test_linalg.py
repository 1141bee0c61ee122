"""baddbmm, addbmm, addmv, dot, vdot, addr, outer, cross products, distances and einsum."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import linalg
from plugtrt.testing import assert_converts

from .pre_dispatch import assert_pre_dispatch_converts
from .strategies import FAST, converter_names, seeds, tensor

aten = torch.ops.aten
FULL = {"require_full_compilation": True}
floats = st.sampled_from([torch.float32, torch.float16, torch.bfloat16])
precisions = st.sampled_from([torch.float32, torch.float16])
scalars = st.sampled_from([0, 1, 0.5, -2])


def test_registers_through_a_fresh_manager():
    assert converter_names(linalg) == {
        f"builtin.{n}" for n in ("baddbmm", "addbmm", "addmv", "dot", "vdot", "outer", "addr",
                                 "linalg_cross", "cross", "_cdist_forward", "_euclidean_dist", "_pdist_forward",
                                 "einsum")}


def _bias(shape, dtype, seed, nan: bool):
    """A bias, NaN everywhere when beta is 0: torch then ignores it, and so must the engine."""
    return torch.full(shape, math.nan, dtype=dtype) if nan else tensor(shape, dtype, seed)


@settings(**FAST)
@given(b=st.integers(1, 3), n=st.integers(1, 4), k=st.integers(1, 5), m=st.integers(1, 4),
       bias_rank=st.integers(0, 3), beta=scalars, alpha=scalars, dtype=floats,
       precision=precisions, dynamic=st.booleans(), seed=seeds)
def test_baddbmm(b, n, k, m, bias_rank, beta, alpha, dtype, precision, dynamic, seed):
    b += dynamic  # a dynamic batch of at least 2
    bias = _bias((b, n, m)[3 - bias_rank:], dtype, seed, beta == 0)
    inputs = [tensor((b, n, k), dtype, seed + 1), tensor((b, k, m), dtype, seed + 2), bias]

    def fn(x, y, c):
        return torch.baddbmm(c, x, y, beta=beta, alpha=alpha)
    marks = {0: [0], 1: [0], **({2: [0]} if bias_rank == 3 else {})}
    assert_converts(fn, inputs, {**FULL, "precision": precision}, dynamic=marks if dynamic else None)


@settings(**FAST)
@given(b=st.integers(1, 4), n=st.integers(1, 4), k=st.integers(1, 5), m=st.integers(1, 4),
       bias_rank=st.integers(0, 2), beta=scalars, alpha=scalars, dtype=floats, seed=seeds)
def test_addbmm(b, n, k, m, bias_rank, beta, alpha, dtype, seed):
    bias = _bias((n, m)[2 - bias_rank:], dtype, seed, beta == 0)

    def fn(x, y, c):
        return torch.addbmm(c, x, y, beta=beta, alpha=alpha)
    assert_converts(fn, [tensor((b, n, k), dtype, seed + 1), tensor((b, k, m), dtype, seed + 2), bias],
                    FULL)


@settings(**FAST)
@given(n=st.integers(1, 5), k=st.integers(1, 6), bias_rank=st.integers(0, 1), beta=scalars,
       alpha=scalars, dtype=floats, seed=seeds)
def test_addmv(n, k, bias_rank, beta, alpha, dtype, seed):
    bias = _bias((n,)[1 - bias_rank:], dtype, seed, beta == 0)

    def fn(a, v, c):
        return torch.addmv(c, a, v, beta=beta, alpha=alpha)
    assert_converts(fn, [tensor((n, k), dtype, seed + 1), tensor((k,), dtype, seed + 2), bias], FULL)


@settings(**FAST)
@given(n=st.integers(1, 8), dtype=floats, vdot=st.booleans(), dynamic=st.booleans(), seed=seeds)
def test_dot(n, dtype, vdot, dynamic, seed):
    op = torch.vdot if vdot else torch.dot
    assert_converts(lambda a, b: op(a, b) * 1.5, [tensor((n + dynamic,), dtype, seed),
                                                   tensor((n + dynamic,), dtype, seed + 1)],
                    FULL, dynamic={0: [0], 1: [0]} if dynamic else None)


def test_integer_dot_stays_in_pytorch():
    """TensorRT's matrix multiply takes floats only: an integer dot runs in PyTorch, exactly."""
    a = torch.tensor([2**20 + 1, 3, -7], dtype=torch.int64)
    run = assert_converts(lambda x, y: torch.dot(x, y), [a, a.flip(0)], engines=None, pytorch_ops=None)
    assert "aten.dot.default" in run.pytorch_ops


@settings(**FAST)
@given(n=st.integers(1, 5), m=st.integers(1, 5), bias_shape=st.sampled_from(["full", "row", "col", "scalar"]),
       beta=st.sampled_from([0, 1, 2, -3]), alpha=st.sampled_from([1, 2, -1]),
       dtype=st.sampled_from([torch.float32, torch.float16, torch.int32, torch.int64]), seed=seeds)
def test_addr(n, m, bias_shape, beta, alpha, dtype, seed):
    shape = {"full": (n, m), "row": (m,), "col": (n, 1), "scalar": ()}[bias_shape]
    bias = _bias(shape, dtype, seed, beta == 0 and dtype.is_floating_point)

    def fn(c, a, b):
        return torch.addr(c, a, b, beta=beta, alpha=alpha)
    assert_converts(fn, [bias, tensor((n,), dtype, seed + 1), tensor((m,), dtype, seed + 2)], FULL)


@settings(**FAST)
@given(n=st.integers(1, 5), m=st.integers(1, 5),
       dtype=st.sampled_from([torch.float32, torch.float16, torch.int32]), seed=seeds)
def test_outer(n, m, dtype, seed):
    """``outer`` is a composite: torch.compile decomposes it, pre-dispatch tracers keep it."""
    assert_pre_dispatch_converts(lambda a, b: aten.outer.default(a, b),
                                 [tensor((n,), dtype, seed), tensor((m,), dtype, seed + 1)], "builtin.outer")


@st.composite
def cross_shapes(draw):
    rank = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 4)) for _ in range(rank)]
    dim = draw(st.integers(-rank, rank - 1))
    shape[dim] = 3
    other = [1 if i != dim % rank and draw(st.booleans()) else d for i, d in enumerate(shape)]
    return tuple(shape), tuple(other), dim  # the same rank: linalg.cross wants it


@settings(**FAST)
@given(shapes=cross_shapes(), dtype=st.sampled_from([torch.float32, torch.float16, torch.int32,
                                                     torch.int64]), swap=st.booleans(), seed=seeds)
def test_linalg_cross(shapes, dtype, swap, seed):
    a, b, dim = shapes
    a, b = (b, a) if swap else (a, b)
    assert_converts(lambda x, y: torch.linalg.cross(x, y, dim=dim),
                    [tensor(a, dtype, seed), tensor(b, dtype, seed + 1)], FULL)


@settings(**FAST)
@given(batch=st.integers(1, 4), seed=seeds)
def test_linalg_cross_dynamic_batch(batch, seed):
    assert_converts(lambda x, y: torch.linalg.cross(x, y),
                    [tensor((batch + 1, 3), torch.float32, seed), tensor((batch + 1, 3), torch.float32, seed + 1)],
                    FULL, dynamic={0: [0], 1: [0]})


@settings(**FAST)
@given(lead=st.integers(2, 4), rest=st.integers(1, 3), dim=st.sampled_from([None, 0]), seed=seeds)
def test_cross_composite(lead, rest, dim, seed):
    """``cross`` (dim None: the first dim of size 3), as pre-dispatch tracers keep it."""
    shape = (3, lead, rest)
    assert_pre_dispatch_converts(lambda x, y: aten.cross.default(x, y, dim),
                                 [tensor(shape, torch.float32, seed), tensor(shape, torch.float32, seed + 1)],
                                 "builtin.cross")


ps = st.sampled_from([2.0, 1.0, math.inf, 0.0, 3.0, 0.5])


@settings(**FAST)
@given(batch=st.lists(st.integers(2, 3), max_size=2), p_rows=st.integers(1, 6), r_rows=st.integers(1, 6),
       m=st.integers(1, 5), p=ps, precision=precisions, mode=st.sampled_from([None, 1, 2]),
       dynamic=st.booleans(), seed=seeds)
def test_cdist(batch, p_rows, r_rows, m, p, precision, mode, dynamic, seed):
    """Eager's cdist is float32 / float64 only on CPU. Its matrix-product form for p=2
    (compute_mode 1: ``_euclidean_dist``) rounds differently: compared with a looser tolerance."""
    a = tensor((*batch, p_rows, m), torch.float32, seed) * 3
    b = tensor((*batch, r_rows, m), torch.float32, seed + 1) * 3
    if p == 0.0:  # shared coordinates, so that some differences are exactly 0
        b[..., :1] = 0
        a[..., :1] = 0
    modes = {None: "use_mm_for_euclid_dist_if_necessary", 1: "use_mm_for_euclid_dist",
             2: "donot_use_mm_for_euclid_dist"}
    loose = 1e-3 if mode == 1 and p == 2.0 and precision == torch.float32 else None
    dyn = {0: [0], 1: [0]} if dynamic and batch else None
    assert_converts(lambda x, y: torch.cdist(x, y, p=p, compute_mode=modes[mode]), [a, b],
                    {**FULL, "precision": precision}, rtol=loose, atol=loose, dynamic=dyn)


@settings(**FAST)
@given(n=st.integers(2, 6), m=st.integers(1, 4), p=ps, precision=precisions, seed=seeds)
def test_pdist(n, m, p, precision, seed):
    assert_converts(lambda x: F.pdist(x, p=p), [tensor((n, m), torch.float32, seed)],
                    {**FULL, "precision": precision})


def test_pdist_of_one_row_stays_in_pytorch():
    """One row has no pairs: an empty result, which TensorRT cannot make."""
    run = assert_converts(lambda x: F.pdist(x), [torch.randn(1, 3)], engines=None, pytorch_ops=None)
    assert run.engines == 0


EQUATIONS = [("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ij,kj", [(3, 4), (5, 4)]),
             ("ijk->ki", [(2, 3, 4)]), ("i,j->ij", [(3,), (4,)]), ("ij->", [(3, 4)]),
             ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]), ("ij,ij->i", [(3, 4), (3, 4)])]


@settings(**FAST)
@given(case=st.sampled_from(EQUATIONS), dtype=st.sampled_from([torch.float32, torch.float16]),
       seed=seeds)
def test_einsum(case, dtype, seed):
    equation, shapes = case
    inputs = [tensor(s, dtype, seed + i) for i, s in enumerate(shapes)]
    assert_pre_dispatch_converts(lambda *t: aten.einsum.default(equation, list(t)), inputs,
                                 "builtin.einsum")


@given(case=st.sampled_from([("ii->i", [(3, 3)]), ("...ij->...ji", [(2, 3, 4)]),
                             ("ij,jk->ik", [(3, 1), (4, 5)])]))
@settings(max_examples=3, deadline=None)
def test_einsum_forms_tensorrt_lacks_are_declined(case):
    """Diagonals, ellipses and broadcasting a size-1 operand are declined."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from plugtrt.manager import default_registry
    from plugtrt.settings import CompilationSettings
    equation, shapes = case
    inputs = [torch.randn(s) for s in shapes]
    gm = make_fx(lambda *t: aten.einsum.default(equation, list(t)), tracing_mode="fake",
                 pre_dispatch=True)(*inputs)
    node = next(n for n in gm.graph.nodes if n.target is aten.einsum.default)
    assert default_registry().converter_for(node, CompilationSettings()) is None
