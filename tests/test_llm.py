"""Decoder LLMs from ``transformers`` (tiny random-weight configs, default ``sdpa`` attention,
grouped-query heads): forward, prefill and decode each one whole engine, matching eager.

Every test here fails when any block falls back to PyTorch: a model that runs correctly but
unaccelerated is the failure these tests exist for.
"""
from __future__ import annotations

import pytest
import torch

import plugtrt

transformers = pytest.importorskip("transformers")

_SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=100, max_position_embeddings=1024, pad_token_id=0)
_CONFIGS = {
    "llama": lambda: transformers.LlamaConfig(**_SMALL),
    # a sliding window makes transformers' static cache guard a Python int that changes every
    # token, so dynamo recompiles per token whatever the backend (Mistral v0.2 and later have none)
    "mistral": lambda: transformers.MistralConfig(**_SMALL, sliding_window=None),
    "qwen2": lambda: transformers.Qwen2Config(**_SMALL),
    "gemma": lambda: transformers.GemmaConfig(**_SMALL, head_dim=16),
    "phi3": lambda: transformers.Phi3Config(**_SMALL),
}
_OPTIONS = {"runtime": "reference", "min_block_size": 1}


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(_CONFIGS[name]()).eval()


def _assert_whole(reports) -> None:
    """One engine per graph, nothing in PyTorch, nothing that failed to build."""
    assert reports
    for report in reports:
        assert not report.fallbacks, report.fallbacks
        assert report.pytorch_ops == [], (report.graph, report.pytorch_ops)
        assert len(report.engines) == 1, (report.graph, [e.name for e in report.engines])


def _new_reports(start: int) -> list:
    count = plugtrt.compile_count() - start
    return plugtrt.compile_reports()[-count:] if count else []


@pytest.mark.parametrize("precision", [torch.float32, torch.half])
@pytest.mark.parametrize("name", sorted(_CONFIGS))
def test_forward_is_one_engine_and_matches_eager(name, precision):
    """float32 matches eager closely; half (computed in half inside, returned as the model's
    float32) keeps the logits within 1% relative error."""
    model = _model(name)
    ids = torch.randint(1, 100, (2, 12))
    start = plugtrt.compile_count()
    with torch.no_grad():
        want = model(ids).logits
        got = torch.compile(model, backend="plugtrt", dynamic=False,
                            options={**_OPTIONS, "precision": precision})(ids).logits
    _assert_whole(_new_reports(start))
    assert got.dtype == torch.float32
    if precision == torch.float32:
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    else:
        assert ((got - want).norm() / want.norm()).item() < 1e-2


@pytest.mark.parametrize("name", sorted(_CONFIGS))
def test_generate_with_a_static_cache_gives_eagers_tokens_from_two_engines(name):
    model = _model(name)
    ids = torch.randint(1, 100, (1, 8))
    options = dict(max_new_tokens=8, do_sample=False, cache_implementation="static")
    with torch.no_grad():
        want = model.generate(ids, **options)
        start = plugtrt.compile_count()
        model.forward = torch.compile(model.forward, backend="plugtrt", dynamic=False, options=_OPTIONS)
        got = model.generate(ids, **options)
    reports = _new_reports(start)
    assert len(reports) <= 3  # prefill and decode; never one per token
    _assert_whole(reports)
    assert torch.equal(got, want)


@pytest.mark.filterwarnings("ignore:`past_key_values` is deprecated:FutureWarning")  # older releases lack `cache`
@pytest.mark.parametrize("name", sorted(_CONFIGS))
def test_prompts_of_varying_length_share_one_dynamic_prefill_engine(name):
    """A second prompt length makes dynamo trace the prefill with a symbolic length; with
    ``max_dynamic_size`` its engine's profile covers every later length up to it, and the
    static cache's writes (``index_copy_`` at the cache positions) stay inside the engine."""
    model = _model(name)
    config = model.config
    cache = transformers.StaticCache(config=config, max_cache_len=512 + 4)
    lengths = (8, 20, 100, 512, 33)
    prompts = [torch.randint(1, 100, (1, n)) for n in lengths]
    options = dict(max_new_tokens=4, do_sample=False, past_key_values=cache)
    with torch.no_grad():
        want = []
        for ids in prompts:
            cache.reset()
            want.append(model.generate(ids, **options))
        start = plugtrt.compile_count()
        model.forward = torch.compile(model.forward, backend="plugtrt",
                                      options={**_OPTIONS, "max_dynamic_size": 512})
        for ids, expected in zip(prompts, want):
            cache.reset()
            assert torch.equal(model.generate(ids, **options), expected)
    reports = _new_reports(start)
    # the first prompt's static prefill, the decode step, and one dynamic prefill for the rest
    assert len(reports) == 3
    assert sum(r.dynamic for r in reports) == 1
    _assert_whole(reports)
