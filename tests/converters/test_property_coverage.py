"""Every built-in converter has a hypothesis property test through the whole backend (issue 10).

tests/conftest.py records which built-in converters built layers of an engine during the
hypothesis tests of this directory (through ``plugtrt.testing.assert_converts`` or
``run_through_backend``) and runs this test last. Under pytest-xdist no worker sees the whole
session: the workers leave this test out and send their records to the controller, which
judges them all with :func:`missing_property_tests` and reports the verdict under this test's
name. It only judges a session that ran the whole directory: a ``-k`` run, a single file or a
single test skips it.

CompositeImplicitAutograd overloads (``aten.linear``, ``aten.reshape``, ``aten.batch_norm``...)
are exempt: ``torch.compile`` decomposes them before any backend sees them, so no test through
the backend can reach their converters. They serve graphs traced before dispatch, and the
converter corpus (``corpus.py``, traced pre-dispatch) still proves each of them against eager.
So are kernels that exist only on a GPU, on a machine without one (eager cannot run them to
compare; ``tests/converters/pre_dispatch.py`` checks them against a float64 reference), and the
overloads in ``UNREACHABLE``, which tracing always rewrites into another overload. And the
data-dependent ones (``nonzero``, ``x[mask]``...), where the installed builder cannot build
TensorRT's non-zero layer (TensorRT-RTX 1.7): no engine can hold them, and
``test_data_dependent.py`` proves them against eager in one real network per function instead.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plugtrt.converters import data_dependent
from plugtrt.testing import plugin_registry

HERE = Path(__file__).parent
UNREACHABLE = {
    "aten.native_batch_norm.default": "the python dispatcher's inference rule rewrites it into "
                                      "_native_batch_norm_legit_no_training while tracing",
    "aten.rrelu_with_noise.default": "it writes its noise argument; functionalization turns it "
                                     "into rrelu_with_noise_functional",
    "aten.scalar_tensor.default": "it reads no input: constant folding always replaces it with "
                                  "its value",
    "aten.alias.default": "functionalization drops it: a view that changes nothing",
    "aten.lift_fresh_copy.default": "tracing turns the tensor it lifts into a constant",
    "aten.hardshrink.default": "torch's Python decomposition splits it while tracing",
    "aten.softshrink.default": "torch's Python decomposition splits it while tracing",
    "aten._embedding_bag.default": "without gradients torch picks _embedding_bag_forward_only, "
                                   "and plugtrt compiles only graphs that need none",
}
"""Targets no graph that ``torch.compile`` hands a backend contains, with the reason."""


def _builtin_converters() -> dict[str, tuple[object, str]]:
    """Built-in converter name -> (its target, its plugin)."""
    return {reg.record.name: (target, reg.plugin)
            for target, regs in plugin_registry().converters.items() for reg in regs
            if reg.plugin.startswith("plugtrt.converters.")}


def _decomposed_by_tracing(target) -> bool:
    """A CompositeImplicitAutograd overload: torch.compile's tracing always decomposes it."""
    name = getattr(target, "name", None)
    return callable(name) and torch._C._dispatch_has_kernel_for_dispatch_key(name(), "CompositeImplicitAutograd")


def _runs_only_on_a_gpu(target) -> bool:
    """A kernel for CUDA alone (the fused attention kernels), on a machine without a GPU."""
    name = getattr(target, "name", None)
    if torch.cuda.is_available() or not callable(name):
        return False
    return not any(torch._C._dispatch_has_kernel_for_dispatch_key(name(), key) for key in
                   ("CPU", "CompositeExplicitAutograd", "CompositeExplicitAutogradNonFunctional",
                    "CompositeImplicitAutograd"))


def _where(plugin: str) -> str:
    test_file = HERE / f"test_{plugin.removeprefix('plugtrt.converters.')}.py"
    return f"tests/converters/{test_file.name}" + ("" if test_file.exists() else " (new file)")


def missing_property_tests(coverage) -> str | None:
    """Why ``coverage`` (every converter test's conversions of a whole session) fails the check,
    or None when each reachable built-in converter ran in a property test. Called by the test
    below in a single-process session, and by tests/conftest.py on the xdist controller once
    every worker has sent what it saw."""
    builtins = _builtin_converters()
    unbuildable = data_dependent.builder_refuses_non_zero() is not None
    unreachable = {name for name, (target, plugin) in builtins.items()
                   if _decomposed_by_tracing(target) or _runs_only_on_a_gpu(target) or str(target) in UNREACHABLE
                   or (unbuildable and plugin == "plugtrt.converters.data_dependent")}
    missing = sorted(set(builtins) - unreachable - set(coverage.converters))
    if not missing:
        return None
    lines = [f"  {name} ({builtins[name][0]}): add a @given test that converts it with "
             f"plugtrt.testing.assert_converts to {_where(builtins[name][1])}" for name in missing]
    failed = (f"\n({len(coverage.failed)} converter tests failed in this run, so some of "
              "these may only be missing because their test failed first)") if coverage.failed else ""
    return (f"{len(missing)} built-in converters ran in no hypothesis property test of "
            "tests/converters:\n" + "\n".join(lines) + failed + "\n(a test that draws its op "
            "with st.sampled_from reaches only the ops its examples happened to draw: "
            "parametrize over the ops instead, so every run converts each of them)")


def test_every_builtin_converter_has_a_property_test(property_coverage):
    if property_coverage.narrowed:
        pytest.skip("judged only when the session runs all of tests/converters: "
                    + "; ".join(property_coverage.narrowed[:3]))
    problem = missing_property_tests(property_coverage)
    assert problem is None, problem
