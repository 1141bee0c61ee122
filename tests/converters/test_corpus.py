"""Every built-in converter, called directly on its aten overload, against eager PyTorch.

The property tests reach converters through ``torch.compile``; composite ops such as
``aten.linear`` never survive that tracing, so the corpus calls each overload itself.
"""
from __future__ import annotations

import pytest
import torch

from plugtrt.manager import default_registry
from plugtrt.testing import tolerance

from .corpus import CORPUS, DYNAMIC_CORPUS, run_entry


def _builtin_converters() -> set[str]:
    return {reg.record.name for regs in default_registry().converters.values() for reg in regs
            if reg.plugin.startswith("plugtrt.converters.")}


def test_corpus_uses_every_builtin_converter(corpus_results):
    used = set().union(*(r.converters for r in corpus_results))
    missing = _builtin_converters() - used
    assert not missing, f"add an entry to tests/converters/corpus.py for: {sorted(missing)}"


@pytest.mark.parametrize("precision", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_entry_matches_eager(index, precision):
    result = run_entry(index, precision)
    for got, want in zip(result.outputs, result.expected, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        rtol, atol = tolerance(want.dtype, precision)
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol, equal_nan=True)


@pytest.fixture(scope="module")
def dynamic_results(dynamic_corpus_results):
    return dynamic_corpus_results


def test_every_converter_declaring_dynamic_shapes_is_exercised_with_a_dynamic_dim(dynamic_results):
    declared = {reg.record.name for regs in default_registry().converters.values() for reg in regs
                if reg.plugin.startswith("plugtrt.converters.") and reg.record.supports_dynamic_shapes}
    used = set().union(*(r.converters for r in dynamic_results.values() if r is not None))
    missing = declared - used
    assert not missing, ("these converters declare supports_dynamic_shapes=True but no dynamic corpus "
                         f"entry exercises them; add one to DYNAMIC_EXTRA: {sorted(missing)}")


def test_dynamic_entries_match_eager_at_another_size(dynamic_results):
    """Entries whose sizes are pinned (None) are not dynamic cases; the coverage test above
    makes sure every converter still has one that is."""
    built = {key: r for key, r in dynamic_results.items() if r is not None}
    assert len(built) >= len(DYNAMIC_CORPUS)
    for (index, every_input), result in built.items():
        for got, want in zip(result.outputs, result.expected, strict=True):
            where = f"DYNAMIC_CORPUS[{index}] (every_input={every_input})"
            assert got.dtype == want.dtype and got.shape == want.shape, where
            rtol, atol = tolerance(want.dtype, torch.float32)
            torch.testing.assert_close(got, want, rtol=rtol, atol=atol, equal_nan=True,
                                       msg=lambda m, where=where: f"{where}: {m}")
