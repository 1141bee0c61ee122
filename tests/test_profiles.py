"""Optimization profiles that fit the range (issue 18): a dynamic dim whose range spans more
than 8× gets one profile per power-of-two bucket, one build serves the whole range, and every
call runs in the profile that holds it (:mod:`plugtrt.dynamic`, :func:`plugtrt.runtime.choose_profile`)."""
from __future__ import annotations

import logging
import math

import pytest
import sympy
import torch
import torch.fx.experimental._config as fx_config
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.fx.experimental.proxy_tensor import make_fx

from plugtrt import dynamic
from plugtrt.dynamic import MAX_PROFILES, PROFILE_SPAN, split_profiles
from plugtrt.engine_key import engine_key
from plugtrt.runtime import BoundarySpec, choose_profile
from plugtrt.settings import CompilationSettings
from plugtrt.testing import plugin_registry

from .test_dynamic import MLP, Records, check, compiled

S0, S1 = sympy.symbols("s0 s1", positive=True, integer=True)


# -- end to end: one build over 1..256 ------------------------------------------------------------

def _ranges(engine) -> list[tuple[int, int, int]]:
    """The (min, opt, max) per profile of an engine with one symbol."""
    (symbol,) = {s for p in engine.profiles for s in p}
    return [p[symbol] for p in engine.profiles]


@settings(max_examples=3, deadline=None)
@given(drawn=st.lists(st.integers(1, 256), min_size=3, max_size=3))
def test_a_range_of_1_to_256_is_one_build_with_several_profiles(drawn):
    """``mark_dynamic(x, 0, min=1, max=256)``: dynamo specialises size 1 unless
    ``backed_size_oblivious`` is set; with it, batch 1 is one more size of the same symbol, so
    one dynamo graph and one build serve 1, 37, 256 and the drawn sizes, each equal to eager."""
    model = MLP().eval()
    with fx_config.patch(backed_size_oblivious=True):
        result, run = compiled(model)
        for size in [37, 1, 256, *drawn]:
            x = torch.randn(size, 12) * 10
            torch._dynamo.mark_dynamic(x, 0, min=1, max=256)
            check(run, model, x)
    assert result.builds == [1]  # one dynamo graph (batch 1 did not make its own), built once
    (report,) = result.reports
    (engine,) = report.engines
    assert report.pytorch_ops == [] and report.fallbacks == []
    assert [lo_hi[::2] for lo_hi in _ranges(engine)] == [(1, 8), (9, 64), (65, 256)]
    assert "3 optimization profile(s)" in report.summary() and "[9, 64]" in report.summary()


def test_a_narrow_range_keeps_one_profile():
    model = MLP().eval()
    result, run = compiled(model)
    for size in (5, 2, 16):
        x = torch.randn(size, 12)
        torch._dynamo.mark_dynamic(x, 0, min=2, max=16)
        check(run, model, x)
    assert result.builds == [1]
    (engine,) = result.reports[0].engines
    assert _ranges(engine) == [(2, 5, 16)]


def test_a_call_beyond_every_profile_rebuilds_once_into_bucketed_profiles():
    """Unbounded: the first build covers 2..16 (one profile); batch 100 is beyond it, so the
    logged rebuild widens the range to 2..256, bucketed into three profiles that then serve
    batch 3 and 200 without another build."""
    model = MLP().eval()
    result, run = compiled(model, dynamic=True)
    logged = Records()
    logging.getLogger("plugtrt").addHandler(logged)
    try:
        for size in (5, 100, 3, 200):
            check(run, model, torch.randn(size, 12))
    finally:
        logging.getLogger("plugtrt").removeHandler(logged)
    assert result.builds == [2]
    assert sum("outside the profile" in r.getMessage() for r in logged.records) == 1
    first, second = (_ranges(r.engines[0]) for r in result.reports)
    assert first == [(2, 5, 16)]
    # opt: the call's (100 = 4·25), else the multiple of 4 nearest √(min·max)
    assert second == [(2, 4, 16), (17, 100, 128), (129, 180, 256)]


class PoolUp(torch.nn.Module):
    """Takes only even heights: the pooled and upsampled half is concatenated to the input."""

    def forward(self, x):
        up = torch.nn.functional.interpolate(torch.nn.functional.max_pool2d(x, 2), scale_factor=2.0)
        return torch.cat([x, up], 1) * 2


def test_profiles_that_tensorrt_refuses_become_one_profile(monkeypatch):
    """TensorRT checks the network's shape constraints at each profile's opt: with an odd opt
    (the policy never picks one for an even call size; forced here) it refuses the profiles, and
    the engine is built again with one profile over the range, quietly (DEBUG), whole."""
    monkeypatch.setattr(dynamic, "_opt_in", lambda low, high, opt: opt if low <= opt <= high else low | 1)
    model = PoolUp()
    result, run = compiled(model, dynamic=True)
    logged = Records()
    logged.setLevel(logging.DEBUG)
    plugtrt_log = logging.getLogger("plugtrt")
    level, plugtrt_log.level = plugtrt_log.level, logging.DEBUG
    plugtrt_log.addHandler(logged)
    try:
        for height in (32, 4, 64):
            check(run, model, torch.randn(1, 2, height, 6))
    finally:
        plugtrt_log.removeHandler(logged)
        plugtrt_log.setLevel(level)
    assert result.builds == [1]
    (report,) = result.reports
    (engine,) = report.engines
    assert report.pytorch_ops == [] and report.fallbacks == [] and len(engine.profiles) == 1
    assert any("refused its 2 optimization profiles" in r.getMessage() for r in logged.records)
    assert not [r for r in logged.records if r.levelno >= logging.ERROR]


# -- the policy: buckets and the profile choice ---------------------------------------------------

def _specs(profiles, symbol) -> tuple[BoundarySpec, ...]:
    """An input of shape (symbol, 12) with the profiles' shapes, as the interpreter gives it."""
    shapes = tuple(tuple((p[symbol][k], 12) for k in range(3)) for p in profiles)
    return (BoundarySpec(name="input_0", shape=(-1, 12), model_dtype=torch.float32,
                         engine_dtype=torch.float32, profiles=shapes),)


ranges = st.integers(1, 5000).flatmap(lambda low: st.tuples(st.just(low), st.integers(low, low * 2 ** 30)))
"""(min, max) of a symbol's range, up to 2^30 wide: beyond MAX_PROFILES buckets of 8x."""


@settings(max_examples=300, deadline=None)
@given(bounds=ranges, data=st.data())
def test_every_size_in_the_range_is_in_exactly_the_profile_chosen(bounds, data):
    low, high = bounds
    opt = data.draw(st.integers(low, high), label="opt")
    profiles = split_profiles({S0: (low, opt, high)})
    spans = [(p[S0][0], p[S0][2]) for p in profiles]
    # contiguous, disjoint, exactly the range
    assert spans[0][0] == low and spans[-1][1] == high
    assert all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:]))
    # each spans at most 8x (but a capped last one), and the count grows with log8 of the range
    assert all(hi <= PROFILE_SPAN * lo for lo, hi in spans[:MAX_PROFILES - 1])
    assert len(spans) == 1 if high <= PROFILE_SPAN * low else 2 <= len(spans) <= MAX_PROFILES
    assert len(spans) == 1 or 4 * PROFILE_SPAN ** (len(spans) - 2) * low < high
    assert len(spans) <= max(1, math.ceil(math.log(high / low, PROFILE_SPAN)) + 1)
    # opt lies in its bucket; the compiling call's size stays the opt of the bucket holding it;
    # elsewhere it shares the call size's power-of-two factor where the bucket holds a multiple
    assert all(p[S0][0] <= p[S0][1] <= p[S0][2] for p in profiles)
    assert any(p[S0][1] == opt for p in profiles)
    factor = opt & -opt
    assert all(p[S0][1] % factor == 0 for p in profiles if p[S0][2] // factor * factor >= p[S0][0])
    specs = _specs(profiles, S0)
    for size in {low, high, opt, data.draw(st.integers(low, high), label="size"),
                 *(hi for _, hi in spans), *(lo for lo, _ in spans)}:
        chosen = choose_profile(specs, [(size, 12)])
        holding = [k for k, (lo, hi) in enumerate(spans) if lo <= size <= hi]
        assert holding == [chosen]
    assert choose_profile(specs, [(high + 1, 12)]) is None
    assert low == 1 or choose_profile(specs, [(low - 1, 12)]) is None
    assert choose_profile(specs, [(low, 13)]) is None  # a static dim that differs


@settings(max_examples=100, deadline=None)
@given(a=ranges, b=ranges)
def test_with_two_symbols_only_the_widest_is_bucketed(a, b):
    bounds = {S0: (a[0], a[0], a[1]), S1: (b[0], b[1], b[1])}
    profiles = split_profiles(bounds)
    widest = S0 if a[1] / a[0] >= b[1] / b[0] else S1
    other = S1 if widest is S0 else S0
    assert all(p[other] == bounds[other] for p in profiles)
    assert len(profiles) == len(split_profiles({widest: bounds[widest]}))


def test_a_graph_symbol_missing_from_an_engines_inputs_does_not_split_it():
    """An engine whose inputs carry only the narrow symbol keeps one profile, even though the
    graph's other symbol spans 1..256."""
    x = make_fx(lambda t: t, tracing_mode="symbolic")(torch.randn(5, 3))
    value = next(n for n in x.graph.nodes if n.op == "placeholder").meta["val"]
    symbol = value.shape[0].node.expr
    assert len(dynamic.engine_profiles({symbol: (2, 5, 16), S1: (1, 37, 256)}, [value])) == 1
    assert len(dynamic.engine_profiles({symbol: (1, 5, 256), S1: (2, 5, 16)}, [value])) == 3


# -- the engine cache key covers the profiles ------------------------------------------------------

def _dynamic_block() -> tuple[torch.fx.GraphModule, sympy.Symbol]:
    gm = make_fx(lambda x: torch.ops.aten.relu.default(x), tracing_mode="symbolic")(torch.randn(5, 3))
    symbol = next(n for n in gm.graph.nodes if n.op == "placeholder").meta["val"].shape[0].node.expr
    return gm, symbol


def _key(block, bounds) -> str:
    return engine_key(block, plugin_registry(), CompilationSettings.from_options({}), bounds,
                      runtime="reference").digest


def test_the_engine_key_differs_when_the_profiles_differ(monkeypatch):
    block, s = _dynamic_block()
    narrow, wide = {s: (1, 5, 8)}, {s: (1, 5, 256)}
    assert _key(block, narrow) == _key(_dynamic_block()[0], narrow)
    assert _key(block, narrow) != _key(block, wide)
    # the same bounds split differently (a narrower span per profile): another engine
    before = _key(block, narrow)
    monkeypatch.setattr(dynamic, "PROFILE_SPAN", 4)
    assert len(split_profiles(narrow)) == 2
    assert _key(block, narrow) != before


@pytest.mark.parametrize("low, high, expected", [
    (1, 256, [(1, 8), (9, 64), (65, 256)]),
    (2, 256, [(2, 16), (17, 128), (129, 256)]),
    (1, 65, [(1, 8), (9, 65)]),  # a last bucket within 8x of the one before joins it
    (2, 16, [(2, 16)]),
    (2, 4096, [(2, 16), (17, 128), (129, 1024), (1025, 4096)]),
])
def test_buckets_end_at_powers_of_two(low, high, expected):
    assert dynamic.buckets(low, high) == expected
