"""A graph that needs gradients runs in PyTorch, so backward gives eager's gradients."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

import plugtrt
from plugtrt import backend

OPTIONS = {"runtime": "reference", "min_block_size": 1}


@pytest.fixture(autouse=True)
def _warn_again(monkeypatch):
    monkeypatch.setattr(backend, "_grad_warned", False)


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.0), nn.Linear(8, 2))


def test_training_gets_eager_gradients_and_one_warning_saying_how_to_get_engines():
    model = _model().train()
    eager = copy.deepcopy(model)
    compiled = torch.compile(model, backend="plugtrt", dynamic=False, options=OPTIONS)
    start = plugtrt.compile_count()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            x = torch.randn(3, 5)
            compiled(x).square().sum().backward()
            eager(x).square().sum().backward()
    messages = [str(w.message) for w in caught if "plugtrt" in str(w.message)]
    assert len(messages) == 1 and "needs gradients" in messages[0]
    assert "model.eval()" in messages[0] and "torch.no_grad()" in messages[0]
    for p, q in zip(model.parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
    assert plugtrt.compile_count() == start  # nothing was built


def test_input_that_requires_grad_gets_its_gradient():
    model = _model().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.randn(3, 5, requires_grad=True)
    compiled = torch.compile(model, backend="plugtrt", dynamic=False, options=OPTIONS)
    with pytest.warns(UserWarning, match="needs gradients"):
        compiled(x).sum().backward()
    want = torch.autograd.grad(model(x).sum(), x)[0]
    torch.testing.assert_close(x.grad, want)


def test_the_same_model_under_no_grad_builds_engines():
    model = _model().eval()
    compiled = torch.compile(model, backend="plugtrt", dynamic=False, options=OPTIONS)
    x = torch.randn(3, 5)
    start = plugtrt.compile_count()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no gradient warning
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), model(x))
        with torch.inference_mode():
            torch.testing.assert_close(compiled(x), model(x))
    new = plugtrt.compile_reports()[start - plugtrt.compile_count():]
    assert new and all(len(r.engines) == 1 for r in new)
