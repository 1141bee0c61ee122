"""What a new user meets: warnings that say why and what to do, once, attributed to the user's
own line, naming weights and blocks as the user knows them."""
from __future__ import annotations

import logging
import warnings

import pytest
import torch
from torch import nn

import plugtrt
from plugtrt.blocks import PYTORCH_BLOCK_PREFIX


def _compile_warnings(fn, x, options) -> list[warnings.WarningMessage]:
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = torch.compile(fn, backend="plugtrt", dynamic=False, options=options)(x)
    torch.testing.assert_close(out, fn(x))
    return [w for w in caught if "plugtrt" in str(w.message)]


def test_a_graph_smaller_than_min_block_size_says_why_no_engine_and_what_to_do_once():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU()).eval()
    caught = _compile_warnings(model, torch.randn(2, 4), {"min_block_size": 100})
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert "builds no TensorRT engine" in message and "min_block_size=100" in message
    assert "smaller min_block_size" in message
    assert "evaluated by the 'reference' runtime" not in message  # no engine was built
    assert caught[0].filename == __file__


def test_a_partitioner_that_forms_no_block_is_named_instead_of_min_block_size():
    """At min_block_size=1 there is nothing smaller to ask for: the partitioner made the choice
    (the example package's all-or-nothing one, with one op forced to PyTorch)."""
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    caught = _compile_warnings(model, torch.randn(2, 4), {
        "min_block_size": 1, "partitioner": "whole_graph", "runtime": "reference",
        "torch_executed_ops": {"aten.relu.default"}})
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert "'whole_graph' partitioner put none of them in a TensorRT block" in message
    assert "smaller min_block_size" not in message


def test_a_graph_whose_every_op_is_declined_names_the_ops_and_the_dry_run():
    caught = _compile_warnings(lambda x: torch.special.bessel_j0(x), torch.randn(3),
                               {"min_block_size": 1})
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert "aten.special_bessel_j0.default: no converter is registered" in message
    assert "'min_block_size': float('inf')" in message


def test_the_dry_run_prints_its_coverage_once_with_source_lines(capsys):
    def f(x):
        return torch.special.bessel_j0(x).relu() + 1

    with torch.no_grad():
        torch.compile(f, backend="plugtrt", options={"debug": True, "min_block_size": float("inf")})(
            torch.randn(3))
    out = capsys.readouterr()
    printed = out.out + out.err
    assert printed.count("plugtrt operator coverage of") == 1
    assert "UNSUPPORTED  aten.special_bessel_j0.default" in printed
    assert "at aten.special_bessel_j0.default (node 'special_bessel_j0' at test_messages.py:" in printed


def test_weight_warnings_name_parameters_not_input_indices(caplog):
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    compiled = torch.compile(model, backend="plugtrt", dynamic=False, options={"min_block_size": 1})
    x = torch.randn(2, 4)
    with torch.no_grad():
        compiled(x)
        model[2].weight.add_(1)
        with caplog.at_level(logging.WARNING, logger="plugtrt"):
            torch.testing.assert_close(compiled(x), model(x))
    message = next(r.getMessage() for r in caplog.records if "changed since" in r.getMessage())
    assert "['2.weight']" in message, message


def test_pytorch_blocks_are_not_named_after_a_gpu():
    """The blocks left to PyTorch run wherever PyTorch runs them (here, on the CPU)."""
    from plugtrt.backend import compile_graph
    from plugtrt.settings import CompilationSettings

    graphs = []

    def backend(gm, example_inputs):
        graphs.append(compile_graph(gm, example_inputs, CompilationSettings.from_options(
            {"min_block_size": 1, "runtime": "reference"})))
        return graphs[-1]

    fn = lambda x: torch.special.bessel_j0(x.relu() * 2 + 1) - 3  # noqa: E731
    with torch.no_grad():
        torch.compile(fn, backend=backend, dynamic=False)(torch.randn(4))
    names = [name for module in graphs[0].modules.values() for name, _ in module.named_children()]
    assert any(name.startswith(PYTORCH_BLOCK_PREFIX) for name in names), names
    assert not any("gpu" in name for name in names), names


def test_the_reference_runtime_warning_points_at_the_users_line():
    plugtrt.runtimes_select._warned.clear()
    caught = _compile_warnings(lambda x: (x.relu() * 2).sin(), torch.randn(3), {"min_block_size": 1})
    reference = [w for w in caught if "'reference' runtime" in str(w.message)]
    if torch.cuda.is_available():
        pytest.skip("a GPU runs engines on the tensorrt runtime")
    assert len(reference) == 1 and reference[0].filename == __file__


def test_a_record_with_a_bad_target_raises_under_plugtrt_testing(fake_distribution, monkeypatch):
    """Outside tests a third-party plugin with a bad record is skipped with a warning; a test
    through plugtrt.testing must fail on it instead, with the record's own message."""
    from plugtrt import PluginLoadError
    from plugtrt.testing import plugin_registry

    fake_distribution("acme-badtarget", {"acme_badtarget.converters": """
        import torch
        import plugtrt

        @plugtrt.hookimpl
        def plugtrt_converters():
            yield plugtrt.ConverterSpec(name="acme.erf", target=torch.ops.aten.erf,
                                        convert=lambda ctx, node, args, kwargs: args[0])
    """})
    monkeypatch.setenv("PLUGTRT_STRICT_PLUGINS", "0")
    with pytest.raises(PluginLoadError, match="acme_badtarget.converters.*target must be an OpOverload"):
        plugin_registry(["plugtrt", "acme-badtarget"])


def test_assert_converts_failures_give_the_coverage_reason():
    from plugtrt.testing import assert_converts

    with pytest.raises(AssertionError) as failed:
        assert_converts(lambda x: torch.special.bessel_j0(x) + 1, [torch.randn(3)], {"min_block_size": 1})
    assert "aten.special_bessel_j0.default: no converter is registered" in str(failed.value)
