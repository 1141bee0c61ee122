"""Weights changed after compiling are noticed; state the graph writes is never frozen."""
from __future__ import annotations

import time

import pytest
import torch
from torch import nn

import plugtrt
from plugtrt.weights import FrozenWeights

OPTIONS = {"runtime": "reference", "min_block_size": 1}


def _compile(model: nn.Module, **options):
    return torch.compile(model, backend="plugtrt", dynamic=False, options={**OPTIONS, **options})


def _engines_since(count: int) -> int:
    new = plugtrt.compile_count() - count
    return sum(len(r.engines) for r in plugtrt.compile_reports()[-new:]) if new else 0


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 3), nn.ReLU()).eval()


def _load_state_dict(m):
    m.load_state_dict({k: v * 2 for k, v in m.state_dict().items()})


def _copy(m):
    m[0].weight.copy_(torch.randn(3, 6))


def _in_place(m):
    m[0].bias.add_(1.0)


def _data_assignment(m):
    m[0].weight.data = m[0].weight.data * -1


def _parameter_reassignment(m):
    m[0].weight = nn.Parameter(torch.randn(3, 6))


def _data_in_place_then_told(m):
    m[0].weight.data.mul_(2)  # invisible: .data has its own version counter
    plugtrt.weights_changed(m)


@pytest.mark.parametrize("change", [_load_state_dict, _copy, _in_place, _data_assignment,
                                    _parameter_reassignment, _data_in_place_then_told])
def test_changed_weights_rebuild_before_the_next_call(change):
    model = _model()
    compiled = _compile(model)
    x = torch.randn(2, 6)
    with torch.no_grad():
        start = plugtrt.compile_count()
        torch.testing.assert_close(compiled(x), model(x))
        assert _engines_since(start) == 1
        assert plugtrt.compile_reports()[-1].input_shapes == [(2, 6)]  # weights are constants
        change(model)
        start = plugtrt.compile_count()
        torch.testing.assert_close(compiled(x), model(x))
        assert _engines_since(start) == 1
        start = plugtrt.compile_count()
        torch.testing.assert_close(compiled(x), model(x))
    assert plugtrt.compile_count() == start  # and only once


def test_weights_as_inputs_see_even_data_writes_without_rebuilding():
    model = _model()
    compiled = _compile(model, weights="inputs")
    x = torch.randn(2, 6)
    with torch.no_grad():
        start = plugtrt.compile_count()
        torch.testing.assert_close(compiled(x), model(x))
        assert _engines_since(start) == 1
        assert len(plugtrt.compile_reports()[-1].input_shapes) == 3  # x, weight, bias
        model[0].weight.data.mul_(2)
        start = plugtrt.compile_count()
        torch.testing.assert_close(compiled(x), model(x))
    assert plugtrt.compile_count() == start


def test_weights_changed_takes_tensors_and_rejects_other_things():
    p = nn.Parameter(torch.randn(2))
    before = p._version
    plugtrt.weights_changed(p)
    plugtrt.weights_changed([p, torch.zeros(1)])
    assert p._version == before + 2
    with pytest.raises(TypeError, match="module, a tensor or tensors; got int"):
        plugtrt.weights_changed([p, 3])


def test_the_per_call_check_does_not_read_the_weights():
    def seconds(size: int) -> float:
        args = [torch.zeros(size) for _ in range(4)]
        watch = FrozenWeights(args, range(4))
        start = time.perf_counter()
        for _ in range(200):
            assert watch.changed(args) == ()
        return time.perf_counter() - start

    small, large = min(seconds(4) for _ in range(3)), min(seconds(1 << 22) for _ in range(3))
    assert large < 5 * small + 2e-3, (small, large)  # reading 64 MB 200 times would take seconds


class _Counter(nn.Module):
    """A step counter and a KV cache, both written by forward."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.register_buffer("n", torch.zeros(()))
        self.register_buffer("cache", torch.zeros(3, 4))

    def forward(self, x, pos):
        self.n.add_(1)
        y = self.lin(x).relu() * self.n
        self.cache.index_copy_(0, pos, y)
        self.cache[2:] = self.cache[:1] + 1
        return y, self.cache.sum(0)


def test_state_written_by_the_graph_stays_an_input_and_matches_eager_without_rebuilds():
    model, eager = _Counter().eval(), _Counter().eval()
    eager.load_state_dict(model.state_dict())
    compiled = _compile(model)
    with torch.no_grad():
        start = plugtrt.compile_count()
        for step in range(3):
            x, pos = torch.randn(1, 4), torch.tensor([step % 2])
            got, want = compiled(x, pos), eager(x, pos)
            for g, w in zip(got, want):
                torch.testing.assert_close(g, w)
            torch.testing.assert_close(model.n, eager.n)
            torch.testing.assert_close(model.cache, eager.cache)
    assert plugtrt.compile_count() == start + 1 and _engines_since(start) >= 1
    assert model.n.item() == 3


class _StaticTable(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.table = torch.randn(4)  # a plain attribute marked static: state, not a weight
        torch._dynamo.mark_static_address(self.table)

    def forward(self, x):
        return self.lin(x) + self.table


def test_static_address_tensors_are_engine_inputs():
    model = _StaticTable().eval()
    compiled = _compile(model)
    x = torch.randn(2, 4)
    with torch.no_grad():
        start = plugtrt.compile_count()
        torch.testing.assert_close(compiled(x), model(x))
        assert _engines_since(start) == 1
        model.table.data.mul_(3)  # invisible to a version check: right only as an input
        torch.testing.assert_close(compiled(x), model(x))
    assert plugtrt.compile_count() == start + 1


class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.register_buffer("scale", torch.ones(()))

    def forward(self, x):
        return self.lin(x).relu() * self.scale


def test_a_buffer_updated_outside_the_graph_every_step_becomes_an_input():
    model = _Scaled().eval()
    compiled = _compile(model)
    x = torch.randn(2, 4)
    with torch.no_grad():
        start = plugtrt.compile_count()
        for step in range(5):
            torch.testing.assert_close(compiled(x), model(x))
            model.scale.add_(1)  # e.g. a schedule stepped by the training loop
    # built, rebuilt once for the change, once more when it became an input, then reused
    assert plugtrt.compile_count() == start + 3
    assert plugtrt.compile_reports()[-1].input_shapes == [(2, 4), ()]
    assert plugtrt.compile_reports()[-1].engines


def test_a_written_input_that_a_later_call_aliases_runs_that_call_in_pytorch():
    def f(cache, row):
        cache.add_(1)
        return (row * 2).relu()

    compiled = _compile(f)
    with torch.no_grad():
        start = plugtrt.compile_count()
        compiled(torch.randn(3, 4), torch.randn(4))  # compiled for separate tensors
        assert _engines_since(start) == 1
        cache = torch.randn(3, 4)
        eager_cache = cache.clone()
        want = f(eager_cache, eager_cache[0])
        with pytest.warns(UserWarning, match="shares memory with another input"):
            got = compiled(cache, cache[0])  # dynamo does not recompile for this
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(cache, eager_cache)


def test_weights_made_under_inference_mode_are_inputs_that_see_every_write():
    """Issue 17, item 3: an inference tensor has no version counter, so compiling a model built
    (or loaded) under torch.inference_mode() raised "Inference tensors do not track version
    counter", and freezing it would have missed a write. Such weights are engine inputs."""
    with torch.inference_mode():
        model = _model()
        compiled = _compile(model)
        x = torch.randn(2, 6)
        start = plugtrt.compile_count()
        torch.testing.assert_close(compiled(x), model(x))
        assert _engines_since(start) == 1
        assert sorted(plugtrt.compile_reports()[-1].input_shapes) == [(2, 6), (3,), (3, 6)]
        model[0].weight.mul_(-2)  # an inference tensor: written without a version bump
        torch.testing.assert_close(compiled(x), model(x))
    assert plugtrt.compile_count() == start + 1


def test_a_frozen_weight_replaced_by_an_inference_tensor_becomes_an_input():
    model = _model()
    compiled = _compile(model)
    x = torch.randn(2, 6)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(x), model(x))
        model[0].weight.data = torch.randn(3, 6)  # now an inference tensor
        torch.testing.assert_close(compiled(x), model(x))
        model[0].weight.mul_(3)
        torch.testing.assert_close(compiled(x), model(x))
