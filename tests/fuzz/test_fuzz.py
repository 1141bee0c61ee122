"""Issue 9, "no silent wrong answers": random models through the whole backend equal eager.

A short run for the suite; ``bench/fuzz.py`` runs the long one. Hypothesis shrinks a failing
program and the assertion message prints it as a standalone reproducer.
"""
from __future__ import annotations

import warnings

import attrs
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings

from plugtrt.testing import run_through_backend

from .oracle import check_program, reference
from .programs import Autocast, Dynamic, Input, Program, ProgramModule, Step, programs

SETTINGS = dict(
    max_examples=40,
    deadline=None,  # the first example of a run also loads the plugins and TensorRT
    # filter_too_much: out-of-range examples are rejected by assume (see oracle.py); the
    # strategy keeps them rare but a short run may meet several in a row.
    # too_slow / data_too_large: a program is a few dozen draws, each example compiles engines.
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(**SETTINGS)
@given(program=programs())
def test_random_programs_equal_eager(program):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fallbacks warn by design; the oracle checks the answer
        outcome = check_program(program)
    assume(outcome.rejected is None)  # eager left the comparable range (float16 past 2**15 ...)


def _linear_program() -> Program:
    """``relu(Linear(x))``, small enough to read, with a float16 engine."""
    from .programs import _result
    from .ops import Value

    x = Value((3, 4), torch.float32, True)
    step = Step(op="linear", reads=(0,), args=(("bias", True), ("out", 5), ("scale", 4.0)))
    hidden = _result(step, [x])
    relu = Step(op="relu", reads=(1,), args=())
    return Program(inputs=(Input((3, 4), torch.float32, 30.0),), steps=(step, relu), outputs=(2,),
                   options=(("min_block_size", 1), ("precision", torch.float16)), seed=7,
                   values=(x, hidden, _result(relu, [hidden])))


def test_reproducer_runs_the_same_program():
    """The printed reproducer is a script that builds and runs exactly the module that ran."""
    program = _linear_program()
    namespace: dict = {}
    source = program.reproducer().replace("run = run_through_backend", "# run = ").replace(
        "print(run.outputs", "# print(")
    exec(compile(source, "<reproducer>", "exec"), namespace)  # noqa: S102
    module = ProgramModule(program).eval()
    with torch.no_grad():
        torch.testing.assert_close(namespace["Model"]().eval()(*namespace["inputs"]),
                                   module(*program.make_inputs()), rtol=0, atol=0)


def _everything_program() -> Program:
    """``_linear_program`` with a bfloat16 autocast region around its Linear, called under a
    float16 autocast, with inference-mode weights and a dynamic batch (bounds 2..5)."""
    from .programs import _result

    program = _linear_program()
    x, _, _ = program.values
    hidden = _result(program.steps[0], [x], torch.bfloat16)  # the region's dtype
    values = (x, hidden, _result(program.steps[1], [hidden], torch.float16))
    return attrs.evolve(program, values=values,
                        autocast=Autocast(region=(0, 1), region_dtype=torch.bfloat16, ambient=torch.float16),
                        inference_weights="loaded",
                        dynamic=Dynamic(dims=(-2,), bounds=((2, 5),), calls=((4,), (7,))))


def test_the_oracle_checks_sizes_autocast_and_inference_weights():
    """Each of issue 17's fuzzing dimensions is exercised, not just drawn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = check_program(_everything_program())
    assert outcome.rejected is None
    assert outcome.dynamic_graphs >= 1 and outcome.sizes_compared == 2 and outcome.size_compiles >= 1
    assert outcome.leak_checked and outcome.weights_checked


def test_the_reproducer_of_such_a_program_runs_it():
    """The reproducer marks the dims, builds the weights under inference_mode, opens both
    autocasts and makes the later calls."""
    source = _everything_program().reproducer()
    for line in ['with torch.autocast("cpu", dtype=torch.bfloat16):', "torch._dynamo.mark_dynamic(inputs[0], 0, "
                 "min=2, max=5)", "model.load_state_dict(state, assign=True)",
                 'with torch.inference_mode(), torch.autocast("cpu", dtype=torch.float16):', "for sizes in [(4,), (7,)]:"]:
        assert line in source
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(source, "<reproducer>", "exec"), namespace)  # noqa: S102
    assert namespace["model"].m1.weight.is_inference()
    assert namespace["run"].outputs[0].dtype == namespace["run"].expected[0].dtype == torch.bfloat16


def test_a_wrong_answer_is_reported_with_its_reproducer(monkeypatch):
    """The oracle is not vacuous: an engine that answers 10% high fails, and says how."""
    import tests.fuzz.oracle as oracle

    def wrong(*args, **kwargs):
        run = run_through_backend(*args, **kwargs)
        return type(run)(outputs=tuple(o * 1.1 for o in run.outputs), expected=run.expected,
                         reports=run.reports, compiled=run.compiled)

    monkeypatch.setattr(oracle, "run_through_backend", wrong)
    with pytest.raises(AssertionError, match=r"(?s)differs from eager.*class Model.*torch.nn.Linear\(4, 5"):
        check_program(_linear_program())


def test_out_of_range_programs_are_recognised():
    """float16 past 2**15 is out of the comparable range: such examples are rejected, not compared."""
    program = _linear_program()
    module = ProgramModule(program).eval()
    big = [x * 1000 for x in program.make_inputs()]
    assert reference(module, big, torch.float16).problems
    assert not reference(module, program.make_inputs(), torch.float16).problems


@pytest.mark.parametrize("module, shape", [(torch.nn.LayerNorm(3, dtype=torch.float64), (2, 3)),
                                           (torch.nn.BatchNorm2d(3, dtype=torch.float64), (2, 3, 4, 4))],
                         ids=["layer_norm", "batch_norm"])
def test_float64_norms_convert_under_truncate_long_and_double(module, shape):
    """Found by the fuzzer: the norm converters declined float64 even under truncation."""
    run = run_through_backend(module, [torch.randn(shape, dtype=torch.float64)],
                              {"truncate_long_and_double": True})
    assert run.pytorch_ops == [], f"left in PyTorch: {run.pytorch_ops}"


def test_an_explicit_float16_round_trip_rounds_at_float32_precision():
    """Found by the fuzzer: engines computed every float at the precision, so an explicit cast
    to float16 under precision=float32 did not round (2049 stayed 2049; eager gives 2048)."""
    run = run_through_backend(lambda x: x.to(torch.float16).to(torch.float32),
                              [torch.tensor([2049.0, 1.0001])], {"precision": torch.float32})
    assert run.engines == 1
    torch.testing.assert_close(run.outputs, run.expected, rtol=0, atol=0)


def test_float16_group_norm_statistics_do_not_overflow():
    """Found by the fuzzer: through enable_experimental_decompositions, group norm's variance
    (a sum of squares) was computed at float16 and overflowed for activations of a few
    hundred; plugtrt.precision keeps sums of squares in float32."""
    module = torch.nn.GroupNorm(1, 4)
    x = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(0)) * 300
    run = run_through_backend(module, [x], {"precision": torch.float16,
                                            "enable_experimental_decompositions": True})
    torch.testing.assert_close(run.outputs, run.expected, rtol=1e-2, atol=1e-2)
