"""plugtrt-example as a user installs it: found through its entry points, never imported here.

Each test compiles a model through the whole backend (``runtime="reference"``) with the
plugins of plugtrt and this package only, and shows one plugin in effect next to the outcome
without it.
"""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from plugtrt.testing import assert_converts, plugin_registry, run_through_backend

WITH_EXAMPLE = ("plugtrt", "plugtrt-example")


@pytest.fixture(scope="module", autouse=True)
def _plugins_loaded():
    """Loading the package's plugins defines its custom op, as it would in a user's process."""
    plugin_registry(WITH_EXAMPLE)


def _converters(run) -> set[str]:
    return {name for r in run.reports for e in r.engines for name in e.converters}


def test_its_plugins_are_discovered_through_entry_points():
    registry = plugin_registry(WITH_EXAMPLE)
    names = {name for name, _ in registry.plugin_manager.list_name_plugin()}
    assert {"plugtrt_example.border", "plugtrt_example.erf", "plugtrt_example.gelu",
            "plugtrt_example.logaddexp", "plugtrt_example.whole_graph"} <= names
    assert registry.layer_evaluators["PADDING"].plugin == "plugtrt_example.border"


class BorderNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(torch.ops.plugtrt_example.zero_border(self.conv(x), 2)) * 3


def test_custom_op_compiles_into_one_engine_with_the_graph_around_it():
    run = assert_converts(BorderNet(), [torch.randn(2, 3, 9, 11)], distributions=WITH_EXAMPLE)
    assert "example.zero_border" in _converters(run)
    assert run.reports[0].engines[0].layer_types["PADDING"] == 1


def test_without_the_package_the_custom_op_splits_the_graph():
    run = assert_converts(BorderNet(), [torch.randn(2, 3, 9, 11)], engines=None,
                          pytorch_ops=["plugtrt_example.zero_border.default"])
    assert run.engines == 2


@pytest.mark.parametrize("approximate, precision, chosen", [
    ("tanh", torch.float32, "example.gelu_tanh"),
    ("none", torch.float32, "builtin.gelu"),
    ("tanh", torch.float16, "builtin.gelu"),
])
def test_override_applies_only_where_its_validator_accepts(approximate, precision, chosen):
    run = assert_converts(lambda x: torch.nn.functional.gelu(x * 2, approximate=approximate),
                          [torch.randn(4, 33)], {"precision": precision}, distributions=WITH_EXAMPLE)
    (other,) = {"example.gelu_tanh", "builtin.gelu"} - {chosen}
    assert chosen in _converters(run) and other not in _converters(run)


def test_decomposition_puts_an_op_without_converter_into_the_engine():
    def model(a, b):
        return torch.logaddexp(a * 10, b * 10) - 1

    inputs = [torch.randn(5, 6), torch.randn(5, 6)]
    assert_converts(model, inputs, distributions=WITH_EXAMPLE)
    assert_converts(model, inputs, engines=2, pytorch_ops=["aten.logaddexp.default"])


def test_partitioner_selected_by_name_is_all_or_nothing():
    def model(x):
        return torch.sigmoid(torch.erfinv(torch.tanh(torch.relu(x) + 1))) * 2

    x = [torch.randn(6, 4)]
    whole = run_through_backend(model, x, {"partitioner": "whole_graph"}, distributions=WITH_EXAMPLE)
    assert whole.engines == 0 and "aten.erfinv.default" in whole.pytorch_ops
    torch.testing.assert_close(whole.outputs, whole.expected)
    split = run_through_backend(model, x, {"partitioner": "global"}, distributions=WITH_EXAMPLE)
    assert split.engines == 2
    assert_converts(lambda x: torch.sigmoid(torch.relu(x) + 1) * 2, x,
                    {"partitioner": "whole_graph"}, distributions=WITH_EXAMPLE)


def test_erf_converter_runs_a_model_in_tensorrt():
    assert_converts(lambda x: torch.erf(x) * 2, [torch.randn(4, 5)], distributions=WITH_EXAMPLE)


def test_plugins_command_lists_it_with_its_distribution():
    out = subprocess.run([sys.executable, "-m", "plugtrt", "plugins"], capture_output=True,
                         text=True, check=True).stdout
    assert "plugtrt_example.erf  (plugtrt-example 0.1.0)" in out
    assert "plugtrt_converters: example.erf" in out
    assert "plugtrt_partitioners: whole_graph" in out
