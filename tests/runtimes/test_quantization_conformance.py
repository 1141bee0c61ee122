"""QUANTIZE and DEQUANTIZE in the reference runtime against ONNX's QuantizeLinear and
DequantizeLinear, through NVIDIA's ONNX importer: ONNX's own node cases, and the int8 /
float8e4m3fn per-tensor, per-axis and blocked cases of ``conformance.quantization_cases``
(expected outputs from ONNX's reference implementation). Fast: the full conformance suite
covers the same cases, this file runs them alone."""
from __future__ import annotations

import re

import pytest

from plugtrt.runtimes.reference import conformance

PARSED_NOT_BUILT = {
    "test_quantizelinear": "the zero point is a graph input: TensorRT's builder takes initializers only",
    "test_quantizelinear_axis": "the zero point is a graph input: TensorRT's builder takes initializers only",
    "test_quantizelinear_int4": "the zero point is a graph input: TensorRT's builder takes initializers only",
    "test_quantizelinear_float4e2m1": "the zero point is a graph input: TensorRT's builder takes initializers only",
    "test_quantizelinear_blocked_asymmetric": "the zero point is a graph input: TensorRT's builder takes "
                                              "initializers only",
}
"""ONNX node cases the importer parses but the builder refuses, and why (the rest fail to parse:
uint8, int16, 2/4-bit and float8e5m2 types TensorRT-RTX's importer does not take)."""


@pytest.fixture(scope="module")
def results() -> dict[str, conformance.CaseResult]:
    cases = [c for c in conformance.node_cases() + conformance.quantization_cases()
             if re.fullmatch(r"(Dynamic)?(Quantize|Dequantize)Linear", c.op)]
    return {r.name: r for r in conformance.run_cases(cases)}


def test_every_parsed_case_matches_or_is_listed_with_its_reason(results):
    parsed = {name: r for name, r in results.items() if r.parsed}
    wrong = {name: f"{r.status}: {r.detail}" for name, r in parsed.items()
             if r.status != "match" and name not in PARSED_NOT_BUILT}
    assert not wrong, wrong
    stale = sorted(name for name in PARSED_NOT_BUILT if name not in parsed or parsed[name].built)
    assert not stale, f"these build now (or no longer parse): remove them from PARSED_NOT_BUILT: {stale}"


def test_int8_and_fp8_per_tensor_per_axis_and_blocked_are_proven(results):
    matched = {name for name, r in results.items() if r.status == "match"}
    for op in ("quantizelinear", "dequantizelinear"):
        for dtype in ("int8", "e4m3fn"):
            for form in ("per_tensor", "axis0", "axis1", "axis2", "blocked_axis1"):
                assert f"plugtrt_{op}_{dtype}_{form}" in matched, (op, dtype, form)
    assert {"test_quantizelinear_e4m3fn", "test_dequantizelinear_e4m3fn"} <= matched
