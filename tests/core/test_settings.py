"""CompilationSettings from torch.compile options: defaults, validation, messages."""
from __future__ import annotations

import math

import attrs
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plugtrt import CompilationSettings, InvalidOptionError

ORIGINAL_DEFAULTS = {
    "precision": torch.float32, "debug": False, "workspace_size": 0, "min_block_size": 5,
    "torch_executed_ops": frozenset(), "pass_through_build_failures": False, "max_aux_streams": None,
    "version_compatible": False, "optimization_level": None, "use_python_runtime": False,
    "truncate_long_and_double": False, "use_fast_partitioner": True,
    "enable_experimental_decompositions": False, "device": None, "require_full_compilation": False,
}


def test_every_original_option_exists_with_its_default():
    settings = CompilationSettings.from_options({})
    assert {k: getattr(settings, k) for k in ORIGINAL_DEFAULTS} == ORIGINAL_DEFAULTS


def test_misspelt_option_names_the_closest_valid_one():
    with pytest.raises(InvalidOptionError, match=r"'precison' \(did you mean 'precision'\?\)") as info:
        CompilationSettings.from_options({"precison": torch.half})
    assert "valid options: precision, debug" in str(info.value)


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("optimization_level", 7, "an int from 0 to 5"),
    ("min_block_size", 0, "float('inf')"),
    ("precision", torch.int8, "torch.float16"),
    ("workspace_size", -1, "int >= 0"),
    ("device", True, "GPU index"),
    ("torch_executed_ops", {"aten.not_an_op"}, "aten.sub.Tensor"),
    ("debug", "yes", "True or False"),
    ("max_dynamic_size", 0, "int >= 1"),
])
def test_bad_value_names_option_value_and_what_is_allowed(key, value, allowed):
    with pytest.raises(InvalidOptionError) as info:
        CompilationSettings.from_options({key: value})
    message = str(info.value)
    assert repr(key) in message and repr(value) in message and allowed in message


@given(st.sampled_from([(torch.half, torch.float16), ("fp16", torch.float16), ("half", torch.float16),
                        ("torch.bfloat16", torch.bfloat16), ("bf16", torch.bfloat16),
                        ({torch.half}, torch.float16), ("FP32", torch.float32)]))
def test_precision_spellings(pair):
    spelling, dtype = pair
    settings = CompilationSettings.from_options({"precision": spelling})
    assert settings.precision == dtype
    assert attrs.evolve(settings, debug=True).precision == dtype  # converters are idempotent


def test_torch_executed_ops_accepts_overloads_packets_and_strings():
    settings = CompilationSettings.from_options({"torch_executed_ops": {
        torch.ops.aten.sub.Tensor, torch.ops.aten.add, "torch.ops.aten.mul.Tensor", "aten.relu"}})
    assert settings.torch_executed_ops == {"aten.sub.Tensor", "aten.add", "aten.mul.Tensor", "aten.relu"}


def test_device_spellings():
    assert CompilationSettings.from_options({"device": 1}).device == torch.device("cuda", 1)
    assert CompilationSettings.from_options({"device": "cuda:0"}).device == torch.device("cuda", 0)
    assert CompilationSettings.from_options({"device": torch.device("cpu")}).device == torch.device("cpu")


def test_dry_run_and_partitioner_mapping():
    assert CompilationSettings.from_options({"min_block_size": math.inf}).dry_run
    assert CompilationSettings.from_options({"use_fast_partitioner": False}).partitioner_name == "global"
    assert CompilationSettings.from_options({"partitioner": "global"}).partitioner_name == "global"
    with pytest.raises(InvalidOptionError, match="disagree"):
        CompilationSettings.from_options({"partitioner": "global", "use_fast_partitioner": True})


def test_engine_key_covers_build_options_only():
    base = CompilationSettings()
    assert base.engine_key() != attrs.evolve(base, optimization_level=3).engine_key()
    assert base.engine_key() != attrs.evolve(base, precision=torch.half).engine_key()
    assert base.engine_key() == attrs.evolve(base, debug=True, min_block_size=1).engine_key()

