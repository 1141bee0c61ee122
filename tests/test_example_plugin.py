"""The example third-party package, pip-installed beside plugtrt and never imported here."""
from __future__ import annotations

import subprocess
import sys

import torch

from plugtrt.manager import default_registry
from plugtrt.testing import assert_converts

aten = torch.ops.aten


def test_installed_converter_package_is_discovered_through_its_entry_point():
    (reg,) = default_registry().converters[aten.erf.default]
    assert (reg.record.name, reg.plugin) == ("example.erf", "plugtrt_example.erf")


def test_its_converter_runs_a_model_in_tensorrt():
    assert_converts(lambda x: torch.erf(x) * 2, [torch.randn(4, 5)])


def test_plugins_command_lists_it_with_its_distribution():
    out = subprocess.run([sys.executable, "-m", "plugtrt", "plugins"], capture_output=True,
                         text=True, check=True).stdout
    assert "plugtrt_example.erf  (plugtrt-example 0.1.0)" in out
    assert "plugtrt_converters: example.erf" in out
