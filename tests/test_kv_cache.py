"""Decoding with a static KV cache: the cache is state the graph writes, never a weight."""
from __future__ import annotations

import pytest
import torch

import plugtrt

transformers = pytest.importorskip("transformers")


def _decode(model, config, forward, steps: int = 3) -> list[torch.Tensor]:
    """Prefill eagerly, then ``steps`` greedy decode steps through ``forward``."""
    cache = transformers.StaticCache(config=config, max_cache_len=12)
    with torch.no_grad():
        logits = model(torch.tensor([[1, 2, 3]]), past_key_values=cache, use_cache=True,
                       cache_position=torch.arange(3)).logits
        out = []
        for step in range(steps):
            token = logits[:, -1:].argmax(-1)
            logits = forward(token, past_key_values=cache, use_cache=True,
                             cache_position=torch.tensor([3 + step])).logits
            out.append(logits)
    return out


@pytest.mark.filterwarnings("ignore:`past_key_values` is deprecated:FutureWarning")  # older releases lack `cache`
def test_static_cache_decoding_compiles_once_and_matches_eager():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1, vocab_size=50,
                                      max_position_embeddings=32)
    model = transformers.LlamaForCausalLM(config).eval()
    want = _decode(model, config, model)
    compiled = torch.compile(model, backend="plugtrt", dynamic=False,
                             options={"runtime": "reference", "min_block_size": 1})
    start = plugtrt.compile_count()
    got = _decode(model, config, compiled)
    assert plugtrt.compile_count() == start + 1  # the cache's writes rebuild nothing
    report = plugtrt.compile_reports()[-1]
    assert report.engines and not report.fallbacks
    assert report.pytorch_ops == []  # the cache write (index_copy_ on the real cache) included
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
