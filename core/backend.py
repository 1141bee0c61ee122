"""The ``torch.compile`` backend: ``torch.compile(model, backend="plugtrt", options={...})``.

Dynamo calls the backend once per captured graph, on the first call. The callable returned
keeps one compiled module per input signature: with ``dynamic=False`` dynamo never sends a
second signature (a new shape recompiles the frame); a graph that dynamo made dynamic is
traced with its symbolic sizes and compiled once into engines with optimization profiles
(:mod:`plugtrt.dynamic`), rebuilt only when a call falls outside them. Frozen weights are
watched: an in-place change rebuilds the engines before the next call.
"""
from __future__ import annotations

import importlib.util
import itertools
import logging
import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.fx

from plugtrt.compiler import compile_aten
from plugtrt.decompositions import decomposition_table
from plugtrt.dynamic import DynamicSizes
from plugtrt.errors import PlugtrtError
from plugtrt.manager import PluginRegistry, default_registry
from plugtrt.report import CompileReport, record
from plugtrt.settings import CompilationSettings
from plugtrt.tracing import frozen_input_indices, specialise_scalars, trace_to_aten

logger = logging.getLogger("plugtrt")
_graph_ids = itertools.count()


def _configure_logging(settings: CompilationSettings) -> None:
    if settings.debug:
        logger.setLevel(logging.DEBUG)
        tensorrt_log = logging.getLogger("plugtrt.tensorrt")
        if tensorrt_log.level == logging.NOTSET:
            tensorrt_log.setLevel(logging.WARNING)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("[plugtrt %(levelname)s] %(message)s"))
            logger.addHandler(handler)


def _signature(args: Sequence[Any], skip: frozenset[int]) -> tuple:
    return tuple(
        (tuple(a.shape), a.dtype, a.device.type) if isinstance(a, torch.Tensor) else ("value", a)
        for i, a in enumerate(args) if i not in skip)


def _is_concrete(args: Sequence[Any]) -> bool:
    """No symbolic sizes: dynamo hands a dynamic graph SymInts, not numbers."""
    for a in args:
        if isinstance(a, torch.SymInt) or (
                isinstance(a, torch.Tensor) and any(isinstance(d, torch.SymInt) for d in a.shape)):
            return False
    return True


def _version_of(tensor: torch.Tensor) -> tuple[int, int]:
    return tensor._version, tensor.untyped_storage().data_ptr()


class CompiledGraph:
    """What dynamo calls in place of its graph: dispatches to the compiled specialisation."""

    def __init__(self, gm: torch.fx.GraphModule, example_inputs: Sequence[Any],
                 settings: CompilationSettings, registry: PluginRegistry):
        self.gm = gm
        self.settings = settings
        self.registry = registry
        self.name = f"graph_{next(_graph_ids)}"
        self.frozen = frozen_input_indices(gm, example_inputs)
        self._frozen_set = frozenset(self.frozen)
        self._versions = [_version_of(example_inputs[i]) for i in self.frozen]
        self.specialisations: dict[tuple, Any] = {}
        self.modules: dict[tuple, torch.fx.GraphModule | None] = {}
        """Per signature, the partitioned module (None where the graph runs as dynamo gave it)."""
        self.reports: list[CompileReport] = []
        concrete = _is_concrete(example_inputs)
        self.dynamic = None if concrete else DynamicSizes.of(gm)
        """For a graph with symbolic sizes: its symbols and the profile its engines serve."""
        self._traced_gm, self._scalars = (gm, {}) if self.dynamic is None else \
            specialise_scalars(gm, example_inputs)
        if concrete or self.dynamic is not None:
            self._compile(example_inputs)
        else:
            logger.debug("%s takes a size only as an int argument: it compiles one specialisation "
                         "per concrete size, on the first call with that size", self.name)

    def __call__(self, *args: Any) -> Any:
        versions = [_version_of(args[i]) for i in self.frozen]
        if versions != self._versions:
            logger.warning("plugtrt: a frozen weight of %s changed in place since its engines were "
                           "built; rebuilding them", self.name)
            self.specialisations.clear()
            self.modules.clear()
            self._versions = versions
        changed = [i for i, value in self._scalars.items() if args[i].item() != value]
        if changed:
            logger.warning("plugtrt: a python scalar of %s that its engines hold as a constant changed; "
                           "rebuilding them", self.name)
            self._scalars.update({i: args[i].item() for i in changed})
            self._traced_gm, _ = specialise_scalars(self.gm, args)
            self.specialisations.clear()
            self.modules.clear()
        if self.dynamic is not None and not self.dynamic.covers(self.dynamic.values(args)):
            logger.warning("plugtrt: %s is called with sizes %s, outside the profile its engines were "
                           "built for (%s); rebuilding them with a wider one", self.name,
                           self.dynamic.values(args), DynamicSizes.describe(self.dynamic.built))
            self.specialisations.clear()
            self.modules.clear()
        compiled = self.specialisations.get(self._key(args))
        if compiled is None:
            compiled = self._compile(args)
        return compiled(*args)

    def _key(self, args: Sequence[Any]) -> tuple:
        """One specialisation per signature; a dynamic graph has one for all sizes in its profile."""
        return ("dynamic",) if self.dynamic is not None else _signature(args, self._frozen_set)

    def _compile(self, args: Sequence[Any]) -> Any:
        key = self._key(args)
        report = CompileReport(graph=f"{self.name}.{len(self.specialisations)}",
                               input_shapes=[tuple(a.shape) for i, a in enumerate(args)
                                             if isinstance(a, torch.Tensor) and i not in self._frozen_set])
        start = time.perf_counter()
        user = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and i not in self._frozen_set]
        try:
            table = decomposition_table(self.registry, self.settings)
            bounds = None
            if self.dynamic is not None:
                bounds = self.dynamic.bounds_for(self.dynamic.values(args))
                logger.debug("%s is dynamic: one profile for %s", self.name, DynamicSizes.describe(bounds))
            t0 = time.perf_counter()
            aten = trace_to_aten(self._traced_gm, args, self.frozen, table, symbolic=self.dynamic is not None)
            report.stage_seconds["trace"] = time.perf_counter() - t0
            logger.debug("aten graph of %s:\n%s", report.graph, aten.code)
            module = compile_aten(aten, self.registry, self.settings, report, bounds)
        except PlugtrtError:
            raise
        except Exception as exc:
            if self.settings.pass_through_build_failures:
                raise
            message = (f"plugtrt could not compile {report.graph} and runs it in PyTorch: {exc!r}. "
                       "Set pass_through_build_failures=True to raise instead.")
            warnings.warn(message, stacklevel=2)
            report.fallbacks.append(message)
            module = None
        report.stage_seconds["total"] = time.perf_counter() - start
        record(report)
        self.reports.append(report)
        logger.debug("%s", report.summary())
        if module is None:
            compiled = self.gm.forward
        else:
            def compiled(*call_args: Any, _module=module, _user=user) -> Any:
                return _module(*(call_args[i] for i in _user))
        self.specialisations[key] = compiled
        self.modules[key] = module
        return compiled


def compile_graph(gm: torch.fx.GraphModule, example_inputs: Sequence[Any],
                  settings: CompilationSettings, registry: PluginRegistry | None = None) -> CompiledGraph:
    """The backend with explicit settings and registry: what tests and embedders call."""
    _configure_logging(settings)
    return CompiledGraph(gm, example_inputs, settings, registry or default_registry())


def plugtrt_backend(gm: torch.fx.GraphModule, example_inputs: Sequence[Any],
                    options: dict[str, Any] | None = None, **kwargs: Any) -> CompiledGraph:
    """The ``torch_dynamo_backends`` entry point ``plugtrt``; ``options`` are the backend's."""
    if kwargs:
        raise PlugtrtError(f"unexpected backend arguments {sorted(kwargs)}; pass plugtrt's settings "
                           "as torch.compile(..., options={...})")
    return compile_graph(gm, example_inputs, CompilationSettings.from_options(options))


def torch_tensorrt_backend(gm: torch.fx.GraphModule, example_inputs: Sequence[Any],
                           options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """``backend="torch_tensorrt"``: the original backend when its package is installed, else
    plugtrt, so the original backend's snippets run unchanged."""
    if importlib.util.find_spec("torch_tensorrt") is not None:
        from torch_tensorrt.dynamo.backend import torch_tensorrt_backend as original

        return original(gm, example_inputs, options=options, **kwargs)
    return plugtrt_backend(gm, example_inputs, options=options, **kwargs)
