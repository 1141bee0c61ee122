"""Real models with random weights (no downloads): compile, match eager, count what TensorRT runs."""
from __future__ import annotations

import pytest
import torch
import torchvision
import transformers

from plugtrt.testing import assert_close_to_eager, assert_converts, run_through_backend

from .models import LastHiddenState


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "squeezenet1_1"])
def test_torchvision_model_is_one_engine(name):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    assert_converts(model, [torch.randn(2, 3, 64, 64)], {"min_block_size": 5})


def test_resnet18_in_half_precision_returns_float32_close_to_eager():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    run = assert_converts(model, [torch.randn(1, 3, 64, 64)], {"precision": torch.half}, rtol=5e-2, atol=5e-2)
    assert run.outputs.dtype == torch.float32


def test_gpt2_from_config_is_one_engine():
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=100, n_positions=32)
    model = LastHiddenState(transformers.GPT2Model(config).eval())
    assert_converts(model, [torch.randint(0, 100, (2, 8))], rtol=1e-4, atol=1e-4)


def test_bert_from_config_matches_eager():
    torch.manual_seed(0)
    config = transformers.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128, vocab_size=100)
    run = run_through_backend(LastHiddenState(transformers.BertModel(config).eval()),
                              [torch.randint(0, 100, (2, 8))], {"min_block_size": 5})
    assert not run.fallbacks and run.engines >= 1
    assert set(run.pytorch_ops) <= {"aten.gather.default"}  # token-type ids: a partial-shape gather
    assert_close_to_eager(run)


@pytest.mark.parametrize("name", ["swin_t", "convnext_tiny"])
def test_window_attention_and_convnext_compile_fully_into_one_engine(name):
    """swin_t's shifted windows (padding, roll, the attention mask built from ``new_zeros`` and
    slice assignment) and convnext's channels-last layer norm leave nothing in PyTorch."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    run = assert_converts(model, [torch.randn(1, 3, 112, 112)], {"require_full_compilation": True},
                          engines=None, rtol=1e-3, atol=1e-3)
    assert run.engines == len(run.reports)  # one engine per dynamo graph


def test_bert_model_from_config_compiles_fully_into_one_engine():
    torch.manual_seed(0)
    config = transformers.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128, vocab_size=100)
    run = assert_converts(LastHiddenState(transformers.BertModel(config).eval()),
                          [torch.randint(0, 100, (2, 8))], {"require_full_compilation": True},
                          engines=None, rtol=1e-4, atol=1e-4)
    assert run.engines == len(run.reports)
