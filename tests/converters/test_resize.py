"""Interpolation converters (converters/resize.py) through the whole backend: F.interpolate
reaches the backend as one upsample op (tracing keeps it whole) and becomes one RESIZE layer."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import resize
from plugtrt.testing import assert_converts

from .strategies import FAST, converter_names, seeds, tensor

MODES = {1: ["nearest", "nearest-exact", "linear"], 2: ["nearest", "nearest-exact", "bilinear", "bicubic"],
         3: ["nearest", "nearest-exact", "trilinear"]}
FULL = {"require_full_compilation": True}


def test_registers_both_overloads_of_every_op():
    names = converter_names(resize)
    for op in ("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
               "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
               "upsample_linear1d", "upsample_bilinear2d", "upsample_trilinear3d",
               "upsample_bicubic2d", "_upsample_bilinear2d_aa"):
        assert {f"builtin.{op}.default", f"builtin.{op}.vec"} <= names


def _torch_nearest_differs(size_in: int, size_out: int, factor: float | None, exact: bool) -> bool:
    """Whether torch's float32 nearest indices differ from the exact rational ones (the only
    nearest cases the converter may decline)."""
    scale = np.float32(1.0 / factor) if factor else np.float32(size_in) / np.float32(size_out)
    dst = np.arange(size_out, dtype=np.float32)
    if exact:
        got = np.floor((dst + np.float32(0.5)) * scale)
        want = np.floor((np.arange(size_out) + 0.5) * (1 / factor if factor else size_in / size_out))
    else:
        got = np.floor(dst * scale)
        want = np.floor(np.arange(size_out) * (1 / factor if factor else size_in / size_out))
    return not np.array_equal(np.minimum(got, size_in - 1), np.minimum(want, size_in - 1))


@st.composite
def interpolation(draw):
    nd = draw(st.sampled_from([1, 2, 3]))
    mode = draw(st.sampled_from(MODES[nd]))
    lead = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    spatial = tuple(draw(st.integers(1, 5 if nd < 3 else 4)) for _ in range(nd))
    kwargs = {"mode": mode}
    if mode not in ("nearest", "nearest-exact"):
        kwargs["align_corners"] = draw(st.booleans())
    if draw(st.booleans()):
        kwargs["size"] = tuple(draw(st.integers(1, 9)) for _ in range(nd))
    else:
        factors = st.sampled_from([0.5, 0.75, 1.0, 1.5, 1.75, 2.0, 2.5, 3.0])
        kwargs["scale_factor"] = tuple(draw(factors) for _ in range(nd))
        if any(int(i * s) < 1 for i, s in zip(spatial, kwargs["scale_factor"])):
            kwargs["scale_factor"] = (2.0,) * nd
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, True]))
    return nd, lead + spatial, kwargs


@settings(**FAST)
@given(case=interpolation(), dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
       precision=st.sampled_from([torch.float32, torch.float16]), dynamic=st.booleans(), seed=seeds)
def test_interpolate(case, dtype, precision, dynamic, seed):
    nd, shape, kwargs = case
    x = tensor(shape, dtype, seed) * 10
    nearest = kwargs["mode"].startswith("nearest")
    out = F.interpolate(x.float(), **kwargs).shape
    # dynamo itself specialises the batch of a resize from or to unit sizes: not a dynamic case
    dynamic = dynamic and min(shape) > 1 and min(out) > 1
    run = assert_converts(lambda x: F.interpolate(x, **kwargs), [x], {"precision": precision},
                          engines=None, pytorch_ops=None, dynamic={0: [0]} if dynamic else None)
    if dynamic:  # symbolic tracing splits upsample ops (torch's C++ kernels specialise sizes)
        assert not [op for op in run.pytorch_ops if "upsample" in op], run.pytorch_ops
    elif run.pytorch_ops:  # only nearest cases whose float32 indices torch rounds differently
        assert nearest, run.pytorch_ops
        given = kwargs.get("scale_factor") if not kwargs.get("recompute_scale_factor") else None
        assert any(_torch_nearest_differs(i, o, given[k] if given else None,
                                          kwargs["mode"] == "nearest-exact")
                   for k, (i, o) in enumerate(zip(shape[2:], out[2:]))), run.pytorch_ops
    else:
        assert run.engines == 1
        assert run.reports[0].engines[0].layer_types.get("RESIZE") == 1


@settings(**{**FAST, "max_examples": 8})
@given(align_corners=st.booleans(), size=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       precision=st.sampled_from([torch.float32, torch.float16]), seed=seeds)
def test_bicubic_and_bilinear_are_one_resize_layer(align_corners, size, precision, seed):
    x = tensor((2, 3, 4, 5), torch.float32, seed)
    for mode in ("bilinear", "bicubic"):
        run = assert_converts(lambda x: F.interpolate(x, size, mode=mode, align_corners=align_corners),
                              [x], {"precision": precision, **FULL})
        types = run.reports[0].engines[0].layer_types
        # under half, the float32 input crosses into half through a saturating cast
        saturation = {"UNARY", "CONSTANT", "ELEMENTWISE", "ACTIVATION", "SELECT"}
        allowed = {"RESIZE", "CAST"} | (saturation if precision != torch.float32 else set())
        assert types.get("RESIZE") == 1 and set(types) <= allowed


def test_given_scale_factor_drives_the_coordinates():
    """5 * 1.6 = 8: torch samples at (dst + 0.5) / 1.6 - 0.5, not at (dst + 0.5) * 5 / 8 - 0.5."""
    x = tensor((1, 2, 5, 5), torch.float32, 3)
    for mode in ("bilinear", "bicubic", "nearest", "nearest-exact"):
        assert_converts(lambda x: F.interpolate(x, scale_factor=1.7, mode=mode), [x], FULL)


@settings(**{**FAST, "max_examples": 6})
@given(size=st.tuples(st.integers(4, 9), st.integers(5, 9)), seed=seeds)
def test_antialiased_bilinear_converts_when_it_enlarges(size, seed):
    x = tensor((2, 3, 4, 5), torch.float32, seed)
    assert_converts(lambda x: F.interpolate(x, size, mode="bilinear", antialias=True), [x], FULL)


def test_antialiased_shrinking_stays_in_pytorch():
    x = tensor((1, 2, 8, 8), torch.float32, 0)
    run = assert_converts(lambda x: F.interpolate(x, (3, 5), mode="bilinear", antialias=True), [x],
                          engines=None, pytorch_ops=None)
    assert "aten._upsample_bilinear2d_aa.default" in run.pytorch_ops


def test_nearest_where_torch_rounds_differently_is_decomposed():
    """torch's nearest source index floor(dst * float32(in/out)) differs from the exact one for
    in=5, out=3 (float32(5/3) * ... ) on some sizes: those nodes become gathers, still equal."""
    for size_in in range(2, 12):
        for size_out in range(1, 25):
            if _torch_nearest_differs(size_in, size_out, None, False):
                break
        else:
            continue
        break
    x = tensor((1, 2, size_in), torch.float32, 0)
    run = assert_converts(lambda x: F.interpolate(x, size_out, mode="nearest"), [x],
                          engines=None, pytorch_ops=None)
    assert "aten.upsample_nearest1d.default" not in run.pytorch_ops


def test_tracing_restores_torchs_python_kernels():
    """Tracing suspends torch's Python decompositions of upsample ops only while it runs."""
    from torch._C import DispatchKey

    op = torch.ops.aten.upsample_bilinear2d.default
    before = dict(op.py_kernels)
    assert DispatchKey.Autograd in before
    x = tensor((1, 2, 3, 3), torch.float32, 0)
    assert_converts(lambda x: F.interpolate(x, (5, 4), mode="bilinear"), [x], FULL)
    assert op.py_kernels == before
