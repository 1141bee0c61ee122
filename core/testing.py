"""Public helpers for testing converters and models through the whole backend.

Converter packages use these too: a one-op module goes through ``torch.compile`` with the
``plugtrt`` backend (tracing, lowering, partitioning, conversion, a real engine build) and is
evaluated by the ``reference`` runtime, then compared with eager PyTorch.

Defaults, so that a test means the same on every machine:

- plugins: only plugtrt's built-ins (``distributions=("plugtrt",)``), never whatever else happens
  to be installed; a package tests itself with ``distributions=("plugtrt", "my-package")``;
- options: ``runtime="reference"`` and ``min_block_size=1``, over which ``options`` apply;
- shapes: static (``dynamic=False``) unless ``dynamic`` names input dims to mark with
  ``torch._dynamo.mark_dynamic``; the module is put in ``eval()`` mode and run under
  ``torch.no_grad()``;
- tolerances per dtype (:func:`tolerance`): float32 1e-4, float16 1e-2, bfloat16 5e-2, the
  coarser of the result's dtype and ``precision``.
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import torch
import torch.utils._pytree as pytree

from plugtrt.backend import compile_graph
from plugtrt.manager import PluginRegistry, load_entry_points, new_plugin_manager, normalize_distribution
from plugtrt.report import CompileReport
from plugtrt.settings import CompilationSettings

BUILTINS = ("plugtrt",)


@functools.cache
def _registry(distributions: frozenset[str]) -> PluginRegistry:
    pm = new_plugin_manager()
    load_entry_points(pm, strict=True, distributions=distributions)
    return PluginRegistry(pm, strict=True)  # a test must fail on a bad record, not skip it


def plugin_registry(distributions: Sequence[str] = BUILTINS) -> PluginRegistry:
    """A registry of the ``plugtrt`` entry points of exactly these installed distributions
    (``"plugtrt"`` is the built-ins); built once per set and reused. A plugin of them that fails
    to load, or yields a bad record (a packet as ``target``), raises, whatever
    ``PLUGTRT_STRICT_PLUGINS`` says."""
    installed = frozenset(normalize_distribution(d) for d in distributions)
    return _registry(installed)


_TOLERANCES = {
    torch.float32: (1e-4, 1e-4),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (5e-2, 5e-2),
}


@attrs.frozen(kw_only=True)
class BackendRun:
    """The outcome of one module through the backend, next to eager."""

    outputs: Any
    expected: Any
    reports: tuple[CompileReport, ...]
    compiled: Any
    """The ``torch.compile``'d module: call it again (under ``torch.no_grad()``, as the first call
    ran) to check what a second call does, for instance after changing a weight in place."""

    @property
    def engines(self) -> int:
        return sum(len(r.engines) for r in self.reports)

    @property
    def pytorch_ops(self) -> list[str]:
        return [op for r in self.reports for op in r.pytorch_ops]

    @property
    def converters(self) -> set[str]:
        """The names of the converters that built layers of this run's engines."""
        return {name for r in self.reports for engine in r.engines for name in engine.converters}

    @property
    def fallbacks(self) -> list[str]:
        return [f for r in self.reports for f in r.fallbacks]


def run_through_backend(module: torch.nn.Module | Any, inputs: Sequence[Any],
                        options: dict[str, Any] | None = None,
                        registry: PluginRegistry | None = None,
                        distributions: Sequence[str] = BUILTINS,
                        dynamic: Mapping[int, Sequence[int]] | bool | None = None) -> BackendRun:
    """Compile ``module`` with ``torch.compile(backend=plugtrt)`` (``runtime="reference"`` unless
    given) and run it once on ``inputs``, next to an eager run on a copy of the inputs.

    The plugins are ``registry``'s when given, else those of ``distributions``. ``dynamic`` maps
    an input's position to the dims marked dynamic (``{0: [0]}``: the first input's batch), so
    dynamo traces them as symbolic sizes and the engines get an optimization profile; ``True``
    compiles with ``torch.compile(dynamic=True)`` (every size symbolic but 0 and 1). Dims the
    caller marked itself (``mark_dynamic(x, d, min=, max=)``) hold with either."""
    registry = registry or plugin_registry(distributions)
    options = {"runtime": "reference", "min_block_size": 1, **(options or {})}
    settings = CompilationSettings.from_options(options)
    reports: list[CompileReport] = []

    def backend(gm, example_inputs, **_):
        compiled = compile_graph(gm, example_inputs, settings, registry)
        reports.extend(compiled.reports)
        return compiled

    if isinstance(module, torch.nn.Module):
        module.eval()  # not reassigned: PT2E's exported modules return None from eval()
    with torch.no_grad():
        expected = module(*copy.deepcopy(list(inputs)))
        torch._dynamo.reset()
        for index, dims in ({} if dynamic is True else dynamic or {}).items():
            torch._dynamo.mark_dynamic(inputs[index], list(dims))
        compiled = torch.compile(module, backend=backend,
                                 dynamic=True if dynamic is True else None if dynamic else False)
        outputs = compiled(*inputs)
    return BackendRun(outputs=outputs, expected=expected, reports=tuple(reports), compiled=compiled)


def tolerance(dtype: torch.dtype, precision: torch.dtype = torch.float32) -> tuple[float, float]:
    """(rtol, atol) for comparing a result of ``dtype`` computed at ``precision`` with eager."""
    coarsest = max((_TOLERANCES.get(d, (0.0, 0.0)) for d in (dtype, precision)), key=lambda t: t[0])
    return coarsest


def assert_close_to_eager(run: BackendRun, rtol: float | None = None, atol: float | None = None,
                          precision: torch.dtype = torch.float32) -> None:
    """Every output equals eager's: same structure, dtype and shape, values within tolerance."""
    got, want = pytree.tree_leaves(run.outputs), pytree.tree_leaves(run.expected)
    assert len(got) == len(want), f"{len(got)} outputs, eager gave {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if not isinstance(w, torch.Tensor):
            assert g == w, f"output {i}: {g!r} != eager {w!r}"
            continue
        assert g.dtype == w.dtype, f"output {i}: dtype {g.dtype}, eager {w.dtype}"
        assert g.shape == w.shape, f"output {i}: shape {tuple(g.shape)}, eager {tuple(w.shape)}"
        r, a = tolerance(w.dtype, precision)
        torch.testing.assert_close(g, w, rtol=r if rtol is None else rtol, atol=a if atol is None else atol,
                                   equal_nan=True, msg=lambda m, i=i: f"output {i}: {m}")


def _why(run: BackendRun) -> str:
    """Why ops stayed in PyTorch, as the coverage check gave it (``static shapes only``, ``no
    converter is registered``): what a failing :func:`assert_converts` needs to be acted on."""
    lines = [f"  {op}: {entry['reason']}" for report in run.reports if report.coverage
             for op, entry in sorted(report.coverage["unsupported"].items())]
    return "\nwhy, per op the coverage check declined:\n" + "\n".join(lines) if lines else ""


def assert_converts(module: torch.nn.Module | Any, inputs: Sequence[Any],
                    options: dict[str, Any] | None = None, *, engines: int | None = 1,
                    pytorch_ops: Sequence[str] | None = (), rtol: float | None = None,
                    atol: float | None = None, registry: PluginRegistry | None = None,
                    distributions: Sequence[str] = BUILTINS,
                    dynamic: Mapping[int, Sequence[int]] | bool | None = None) -> BackendRun:
    """Run ``module`` through the backend and assert it matches eager, with ``engines`` engines
    and exactly ``pytorch_ops`` left in PyTorch (None skips either count); the plugins and
    ``dynamic`` dims are as :func:`run_through_backend` takes them. With ``dynamic``, every graph
    must have been compiled with symbolic sizes (dynamo did not specialise them away)."""
    run = run_through_backend(module, inputs, options, registry, distributions, dynamic)
    if dynamic:
        static = [r.graph for r in run.reports if not r.dynamic]
        assert not static, f"dims {dynamic} were marked dynamic but {static} compiled with static sizes"
    assert not run.fallbacks, "blocks fell back to PyTorch:\n" + "\n".join(run.fallbacks)
    if engines is not None:
        assert run.engines == engines, f"{run.engines} engines built, expected {engines}" + _why(run)
    if pytorch_ops is not None:
        assert sorted(run.pytorch_ops) == sorted(pytorch_ops), \
            f"ops left in PyTorch: {run.pytorch_ops}, expected {list(pytorch_ops)}" + _why(run)
    precision = CompilationSettings.from_options({**(options or {}), "runtime": "reference"}).precision
    assert_close_to_eager(run, rtol, atol, precision)
    return run
