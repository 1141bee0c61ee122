"""Ops that read only an input's metadata fold into constants with what is computed from them.

``x.new_zeros(...)``, ``torch.zeros_like(x)`` and the like depend on ``x``'s shape, dtype and
device, never its values: with static result shapes the ``fold_constants`` pass evaluates them
(and every node computed from them alone) at compile time. With symbolic sizes they stay, and
their converters compute the sizes inside the engine.
"""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.fx.experimental.proxy_tensor import make_fx

from plugtrt import CompilationSettings
from plugtrt.lowering.constant_folding import fold_constants
from plugtrt.testing import assert_converts

aten = torch.ops.aten
FAST = dict(max_examples=10, deadline=None)


def _targets(gm):
    return {n.target for n in gm.graph.nodes if n.op == "call_function"}


class ShiftedWindowMask(torch.nn.Module):
    """swin_t's attention mask for shifted windows, built as torchvision builds it: a
    ``new_zeros`` image of region ids filled by slice assignment, cut into windows, compared."""

    def __init__(self, window: int, shift: int):
        super().__init__()
        self.window, self.shift = window, shift

    def forward(self, x):  # x: (B, H, W, C)
        H, W = x.shape[1], x.shape[2]
        ws, ss = self.window, self.shift
        mask = x.new_zeros((H, W))
        regions = (slice(0, -ws), slice(-ws, -ss), slice(-ss, None))
        count = 0
        for h in regions:
            for w in regions:
                mask[h, w] = count
                count += 1
        windows = mask.view(H // ws, ws, W // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
        attn = windows.unsqueeze(1) - windows.unsqueeze(2)
        attn = attn.masked_fill(attn != 0, -100.0).masked_fill(attn == 0, 0.0)
        scores = x.reshape(x.shape[0], -1, 1, 1)[:, : attn.shape[0]] + attn
        return torch.softmax(scores, -1)


@settings(**FAST)
@given(windows=st.integers(2, 3), window=st.sampled_from([2, 4]), batch=st.integers(1, 3),
       dynamic=st.booleans())
def test_shifted_window_mask_folds_into_constants(windows, window, batch, dynamic):
    side = windows * window
    model = ShiftedWindowMask(window, window // 2)
    x = torch.randn(batch + (1 if dynamic else 0), side, side, 4)
    gm = make_fx(torch.func.functionalize(model), tracing_mode="fake")(x)  # as AOT tracing gives it
    made = {aten.new_zeros.default, aten.slice_scatter.default, aten.fill.Scalar, aten.copy.default,
            aten.sub.Tensor, aten.ne.Scalar, aten.eq.Scalar, aten.masked_fill.Scalar, aten.lift_fresh_copy.default}
    assert _targets(gm) & made  # what the mask is made of, before folding
    folded = fold_constants(gm, CompilationSettings())
    assert not _targets(folded) & made, _targets(folded) & made
    torch.testing.assert_close(folded(x), model(x))
    # through the backend: one engine, nothing in PyTorch, also with a dynamic batch
    run = assert_converts(model, [x], {"require_full_compilation": True},
                          dynamic={0: [0]} if dynamic else None)
    (engine,) = [e for r in run.reports for e in r.engines]
    assert engine.ops <= 8, engine  # reshape, slice, add, softmax: not the mask's construction


@settings(**FAST)
@given(form=st.sampled_from(["zeros_like", "ones_like", "full_like", "empty_like", "new_zeros",
                             "new_ones", "new_full", "new_empty"]),
       dtype=st.sampled_from([torch.float32, torch.float16, torch.int32]))
def test_metadata_only_ops_fold(form, dtype):
    fns = {
        "zeros_like": lambda x: torch.zeros_like(x) + x,
        "ones_like": lambda x: torch.ones_like(x).cumsum(0) + x,
        "full_like": lambda x: torch.full_like(x, 3) * 2 + x,
        "empty_like": lambda x: torch.empty_like(x) * 0 + x,
        "new_zeros": lambda x: x.new_zeros(x.shape[1]) + x,
        "new_ones": lambda x: x.new_ones((1, 4)) + x,
        "new_full": lambda x: x.new_full((4,), 2) + x,
        "new_empty": lambda x: x.new_empty((4,)).fill_(1) + x,
    }
    x = (torch.randn(3, 4) * 10).to(dtype)
    gm = make_fx(torch.func.functionalize(fns[form]), tracing_mode="fake")(x)
    folded = fold_constants(gm, CompilationSettings())
    assert _targets(folded) <= {aten.add.Tensor}, _targets(folded)
    # eager's empty_like holds whatever memory held (NaN * 0 is NaN): compare with its zeros
    want = fns["zeros_like"](x) if form == "empty_like" else fns[form](x)
    torch.testing.assert_close(folded(x), want)


def test_empty_folds_to_zeros_so_constants_are_deterministic():
    gm = make_fx(lambda x: torch.empty_like(x), tracing_mode="fake")(torch.randn(64))
    folded = fold_constants(gm, CompilationSettings())
    assert not folded(torch.randn(64)).any()


def test_values_and_random_draws_are_not_metadata():
    """``rand_like`` reads only metadata but is random; ``x * 0`` reads values: both stay."""
    gm = make_fx(lambda x: torch.rand_like(x) + x * 0, tracing_mode="fake")(torch.randn(3))
    folded = fold_constants(gm, CompilationSettings())
    assert {aten.rand_like.default, aten.mul.Tensor} <= _targets(folded)


def test_sizes_from_a_dynamic_input_stay_for_the_converters():
    """``zeros_like`` of a dynamic input has symbolic sizes: no fold, and one engine computes it."""
    run = assert_converts(lambda x: torch.ones_like(x) * 2 + x, [torch.randn(3, 4)],
                          {"require_full_compilation": True}, dynamic={0: [0]})
    assert not run.pytorch_ops
