"""Every built-in converter, called directly on its aten overload, against eager PyTorch.

The property tests reach converters through ``torch.compile``; composite ops such as
``aten.linear`` never survive that tracing, so the corpus calls each overload itself.
"""
from __future__ import annotations

import pytest
import torch

from plugtrt.converters import data_dependent
from plugtrt.manager import default_registry
from plugtrt.testing import tolerance

from .corpus import CORPUS, DYNAMIC_CORPUS


def _builtin_converters(dynamic_only: bool = False) -> set[str]:
    """The built-in converters this machine's builder can build (TensorRT-RTX has no non-zero
    layer runner: the data-dependent converters decline everything there)."""
    unbuildable = data_dependent.builder_refuses_non_zero() is not None
    return {reg.record.name for regs in default_registry().converters.values() for reg in regs
            if reg.plugin.startswith("plugtrt.converters.")
            and not (unbuildable and reg.plugin == "plugtrt.converters.data_dependent")
            and (reg.record.supports_dynamic_shapes or not dynamic_only)}


def test_corpus_uses_every_builtin_converter(corpus_results):
    used = set().union(*(r.converters for r in corpus_results))
    missing = _builtin_converters() - used
    assert not missing, f"add an entry to tests/converters/corpus.py for: {sorted(missing)}"


@pytest.mark.parametrize("precision", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_entry_matches_eager(index, precision, corpus_results):
    """Each entry's result, as the session's corpus run built it (once, for every test here
    and the conformance check of the layers it emits)."""
    result = corpus_results[2 * index + (precision == torch.float16)]
    assert result.index == index  # the fixture holds fp32, fp16 per entry, in order
    for got, want in zip(result.outputs, result.expected, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        rtol, atol = tolerance(want.dtype, precision)
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol, equal_nan=True)


@pytest.fixture(scope="module")
def dynamic_results(dynamic_corpus_results):
    return dynamic_corpus_results


def test_every_converter_declaring_dynamic_shapes_is_exercised_with_a_dynamic_dim(dynamic_results):
    declared = _builtin_converters(dynamic_only=True)
    used = set().union(*(r.converters for r in dynamic_results.values() if r is not None))
    missing = declared - used
    assert not missing, ("these converters declare supports_dynamic_shapes=True but no dynamic corpus "
                         f"entry exercises them; add one to DYNAMIC_EXTRA: {sorted(missing)}")


_NORMALIZED = "the normalized dims are the weight's shape, which is static"
_SORTED = "a sort or scan along a symbolic dim: TopK's K and the scan's length must be static"
_PIECES = "how many pieces come out depends on the split dim's size, so a trace pins it"
LEADING_DIMS_ONLY = {
    "builtin._adaptive_avg_pool2d": "a POOLING window; the .any_size converter takes symbolic sizes",
    "builtin._adaptive_avg_pool3d": "a POOLING window; the .any_size converter takes symbolic sizes",
    "builtin.adaptive_avg_pool2d": "a POOLING window; the .any_size converter takes symbolic sizes",
    "builtin.adaptive_avg_pool3d": "a POOLING window; the .any_size converter takes symbolic sizes",
    "builtin._cdist_forward": "the pairwise distance matrix's point dims must be static",
    "builtin._euclidean_dist": "the pairwise distance matrix's point dims must be static",
    "builtin._fused_rms_norm": _NORMALIZED,
    "builtin.layer_norm": _NORMALIZED,
    "builtin.native_layer_norm": _NORMALIZED,
    "builtin.rms_norm": _NORMALIZED,
    "builtin.native_group_norm": "the group reshape needs static spatial sizes",
    **{f"builtin.{name}": "the head dim must be static (symbolic sequence lengths: tests/test_llm.py)"
       for name in ("_scaled_dot_product_attention_math", "_scaled_dot_product_cudnn_attention",
                    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_flash_attention",
                    "_scaled_dot_product_flash_attention_for_cpu", "scaled_dot_product_attention")},
    **{f"builtin.{name}.{overload}": "antialiasing depends on whether the size shrinks"
       for name in ("_upsample_bilinear2d_aa",) for overload in ("default", "vec")},
    **{f"builtin.{name}.{overload}": ("nearest to a given size: TensorRT's in/out source index can "
                                      "round differently from torch's for some sizes")
       for name in ("_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
                    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d")
       for overload in ("default", "vec") if (name, overload) != ("upsample_nearest1d", "vec")},
    "builtin.upsample_bilinear2d.default": "a given scale (1.6) that is not exact in float32",
    "builtin.argsort": _SORTED, "builtin.argsort.stable": _SORTED, "builtin.sort": _SORTED,
    "builtin.sort.stable": _SORTED, "builtin.cummax": _SORTED, "builtin.cummin": _SORTED,
    "builtin.cumprod": _SORTED, "builtin.logcumsumexp": _SORTED,
    "builtin.diag_embed": "the diagonal's length must be static",
    "builtin.diagonal": "the diagonal's length must be static",
    "builtin.diagonal_scatter": "the diagonal's length must be static",
    "builtin.glu": "halving a symbolic dim",
    "builtin.index_copy": "the indexed dim must be static",
    "builtin.index_fill_scalar": "the indexed dim must be static",
    "builtin.index_fill_tensor": "the indexed dim must be static",
    "builtin.select_scatter": "the scattered dim must be static",
    "builtin.slice_scatter": "the scattered dim must be static",
    "builtin.max_pool1d": "its corpus entry's dilation, which TensorRT's pooling lacks",
    "builtin.pixel_shuffle": "static channel and spatial dims (fixed-size reshapes)",
    "builtin.pixel_unshuffle": "static channel and spatial dims (fixed-size reshapes)",
    "builtin.repeat_interleave.self_int": "repeating along a symbolic dim",
    "builtin.unfold_copy": "how many windows come out depends on the size",
    "builtin.unbind_copy": _PIECES, "builtin.tensor_split.sections": _PIECES,
    "builtin.unsafe_split": _PIECES, "builtin.unsafe_split_with_sizes": _PIECES,
    "builtin.split_with_sizes_copy": _PIECES,
    **{f"builtin.{name}": "the divisor N - correction of a symbolic N"
       for name in ("std.correction", "std.dim", "std_mean.correction", "var.correction", "var.dim",
                    "var_mean.correction")},
}
"""Built-in converters that declare ``supports_dynamic_shapes`` but take symbolic leading dims
only (the batch, a sequence), never symbolic spatial or last dims, and why."""


def test_every_dynamic_converter_takes_symbolic_spatial_dims_or_says_why_not(dynamic_results):
    """The trailing mode makes an image's height and width (a matrix's last dim) symbolic with
    the batch static: every converter that declares dynamic shapes is exercised that way, or
    is listed in LEADING_DIMS_ONLY with its reason (and leaves the list once it is)."""
    declared = _builtin_converters(dynamic_only=True)
    used = set().union(*(r.converters for (_, _, dims), r in dynamic_results.items()
                         if r is not None and dims == "trailing"))
    assert not (declared - used) - LEADING_DIMS_ONLY.keys(), (
        "exercise these with symbolic trailing dims (DYNAMIC_EXTRA) or list them in LEADING_DIMS_ONLY: "
        f"{sorted((declared - used) - LEADING_DIMS_ONLY.keys())}")
    assert not LEADING_DIMS_ONLY.keys() & used, (
        f"these now take symbolic trailing dims; remove them from LEADING_DIMS_ONLY: "
        f"{sorted(LEADING_DIMS_ONLY.keys() & used)}")


def test_dynamic_entries_match_eager_at_another_size(dynamic_results):
    """Entries whose sizes are pinned (None) are not dynamic cases; the coverage test above
    makes sure every converter still has one that is."""
    built = {key: r for key, r in dynamic_results.items() if r is not None}
    assert len(built) >= len(DYNAMIC_CORPUS)
    for (index, every_input, dims), result in built.items():
        for got, want in zip(result.outputs, result.expected, strict=True):
            where = f"DYNAMIC_CORPUS[{index}] (every_input={every_input}, {dims} dims symbolic)"
            assert got.dtype == want.dtype and got.shape == want.shape, where
            rtol, atol = tolerance(want.dtype, torch.float32)
            torch.testing.assert_close(got, want, rtol=rtol, atol=atol, equal_nan=True,
                                       msg=lambda m, where=where: f"{where}: {m}")
