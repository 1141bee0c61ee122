"""Every built-in converter, called directly on its aten overload, against eager PyTorch.

The property tests reach converters through ``torch.compile``; composite ops such as
``aten.linear`` never survive that tracing, so the corpus calls each overload itself.
"""
from __future__ import annotations

import pytest
import torch

from plugtrt.manager import default_registry
from plugtrt.testing import tolerance

from .corpus import CORPUS, run_entry


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
