"""The reference runtime against ONNX's conformance cases, through NVIDIA's ONNX importer.

Every node case (and every ``pytorch-converted``/``pytorch-operator`` model) that TensorRT's
importer parses and its builder builds is evaluated by the reference runtime and compared
with ONNX's expected outputs. Cases that do not match yet are
listed, with the reason, in ``conformance_expected_failures.txt``: an unlisted case that fails
and a listed case that passes both fail the suite, so the list can only shrink.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from plugtrt.runtimes.reference import conformance

EXPECTED_FAILURES = Path(__file__).with_name("conformance_expected_failures.txt")
UNPROVEN_OPERATIONS = Path(__file__).with_name("layer_operations_unproven.txt")


def _listed(path: Path) -> dict[str, str]:
    """name -> reason, from a list file (``name  # reason`` per line; ``#`` lines are comments)."""
    listed = {}
    for line in path.read_text().splitlines():
        name, _, reason = line.partition("#")
        if name.strip():
            listed[name.strip()] = reason.strip()
    return listed


def _expected_failures() -> dict[str, str]:
    """case name -> reason, from the expectation file."""
    return _listed(EXPECTED_FAILURES)


@pytest.fixture(scope="module")
def results() -> dict[str, conformance.CaseResult]:
    cases = conformance.node_cases() + conformance.quantization_cases() + conformance.data_cases()
    return {r.name: r for r in conformance.run_cases(cases, jobs=max(os.cpu_count() or 1, 2))}


def test_expectation_file_gives_a_reason_per_case():
    listed = _expected_failures()
    assert listed, "the expectation file is empty or missing"
    assert all(listed.values()), [n for n, why in listed.items() if not why]


def test_every_built_case_matches_onnx_unless_listed(results):
    listed = _expected_failures()
    failing = {name: f"{r.status}: {r.detail}" for name, r in results.items()
               if r.built and r.status != "match" and name not in listed}
    assert not failing, "cases that no longer match ONNX (fix, or list them with a reason):\n" + \
        "\n".join(f"  {n}: {why}" for n, why in sorted(failing.items()))


def test_listed_cases_still_fail(results):
    listed = _expected_failures()
    passing = sorted(n for n in listed if n in results and results[n].status == "match")
    assert not passing, f"these listed cases match now, remove them from {EXPECTED_FAILURES.name}: {passing}"
    unknown = sorted(n for n in listed if n not in results or not results[n].built)
    assert not unknown, f"listed cases that no longer exist or no longer build: {unknown}"


def test_at_least_95_percent_of_built_cases_match(results):
    built = [r for r in results.values() if r.built]
    matching = [r for r in built if r.status == "match"]
    assert len(built) > 900, f"only {len(built)} cases built: the importer or builder regressed"
    assert len(matching) / len(built) >= 0.95, conformance.format_table(list(results.values()))


def test_every_layer_operation_the_converters_emit_is_proven_or_listed(results, corpus_results,
                                                                      dynamic_corpus_results):
    """Each (layer type, operation) pair that plugtrt's converters emit over the whole converter
    corpus (fp32 and fp16, and with dynamic dims), as ``layer_operation`` names it
    (``UNARY/ASIN``, ``POOLING/MAX``, ``RESIZE/CUBIC+ALIGN_CORNERS+A=-0.75``, ``SHUFFLE``),
    appears in an ONNX case that matches through the reference runtime, or is listed with the
    reason in ``layer_operations_unproven.txt``. A listed pair that is proven now, or that no converter
    emits any more, fails too, so the list only shrinks."""
    emitted: dict[str, set[str]] = {}
    corpora = ("CORPUS", corpus_results), ("DYNAMIC_CORPUS", dynamic_corpus_results.values())
    for where, corpus in corpora:
        for r in corpus:
            for op in r.layer_operations if r is not None else ():
                emitted.setdefault(op, set()).add(f"{where}[{r.index}]")
    proven = {op for r in results.values() if r.status == "match" for op in r.layer_operations}
    listed = _listed(UNPROVEN_OPERATIONS)
    assert emitted and all(listed.values()), [op for op, why in listed.items() if not why]
    unproven = sorted(set(emitted) - proven - set(listed))
    assert not unproven, (
        "emitted by the converters but matched by no ONNX case; find one that matches, or list the pair "
        f"with its reason in {UNPROVEN_OPERATIONS.name}:\n"
        + "\n".join(f"  {op}  (emitted by {', '.join(sorted(emitted[op])[:4])})" for op in unproven))
    stale = sorted(op for op in listed if op in proven or op not in emitted)
    assert not stale, (f"remove these from {UNPROVEN_OPERATIONS.name}: proven by an ONNX case now, "
                       f"or no longer emitted: {stale}")


def test_main_conformance_filters_and_writes_json(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert conformance.main_conformance(["--filter", "^Relu$", "--jobs", "1", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "Relu" in table and "TOTAL" in table
    rows = json.loads(out.read_text())
    assert rows and all(row["op"] == "Relu" and row["status"] == "match" for row in rows)


def test_main_conformance_json_alone_prints_rows_as_ops_does(capsys):
    assert conformance.main_conformance(["--filter", "^Relu$", "--jobs", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)  # JSON only, no table
    assert rows and all(row["op"] == "Relu" for row in rows)
