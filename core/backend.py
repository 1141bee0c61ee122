"""The ``torch.compile`` backend: ``torch.compile(model, backend="plugtrt", options={...})``.

Dynamo calls the backend once per captured graph, on the first call. The callable returned
keeps one compiled module per input signature: with ``dynamic=False`` dynamo never sends a
second signature (a new shape recompiles the frame); a graph that dynamo made dynamic is
traced with its symbolic sizes and compiled once into engines with optimization profiles
(:mod:`plugtrt.dynamic`), rebuilt only when a call falls outside them. Frozen weights are
watched (``plugtrt.weights``): a change rebuilds the engines before the next call. A graph that
needs gradients runs in PyTorch: plugtrt is an inference backend.
"""
from __future__ import annotations

import collections
import importlib.util
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import attrs
import torch
import torch.fx

from plugtrt import graph_cache
from plugtrt.compiler import EngineFailedWithoutBlock, compile_aten
from plugtrt.decompositions import decomposition_table
from plugtrt.dynamic import DynamicSizes
from plugtrt.engine_cache import open_cache
from plugtrt.errors import InvalidOptionError, PlugtrtError, warn_user
from plugtrt.manager import PluginRegistry, default_registry
from plugtrt.report import MAX_REPORTS, CompileReport, record
from plugtrt.runtimes_select import select_runtime, warn_reference_runtime
from plugtrt.settings import CompilationSettings
from plugtrt.tracing import (
    check_metadata_writes, input_names, module_weight_indices, specialise_scalars, trace_to_aten,
)
from plugtrt.weights import FrozenWeights

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


def _signature(args: Sequence[Any], positions: Sequence[int]) -> tuple:
    """What one specialisation is compiled for: shapes, dtypes and devices (with their index:
    an engine lives on one GPU) of the inputs at ``positions`` (the non-frozen ones), and the
    values of those that are not tensors."""
    return tuple(
        (tuple(a.shape), a.dtype, a.device) if isinstance(a, torch.Tensor) else ("value", a)
        for a in map(args.__getitem__, positions))


def _is_concrete(args: Sequence[Any]) -> bool:
    """No symbolic sizes: dynamo hands a dynamic graph SymInts, not numbers."""
    for a in args:
        if isinstance(a, torch.SymInt) or (
                isinstance(a, torch.Tensor) and any(isinstance(d, torch.SymInt) for d in a.shape)):
            return False
    return True


def _hinted(args: Sequence[Any]) -> list[Any]:
    """``args`` with each ``SymInt`` as its example value (reading it with ``int()`` would add a
    guard specialising it)."""
    return [int(a.node.hint) if isinstance(a, torch.SymInt) else a for a in args]


def _run_traced(module: torch.fx.GraphModule, args: Any) -> Any:
    """Run a partitioned module, whose aten graph already holds every cast that the autocast
    state at tracing put there, with autocast off, as AOT autograd runs its graphs. Under the
    ambient autocast its ops would be cast again: a model's own bfloat16 region called under a
    float16 autocast ran its matmuls (in PyTorch, and in the reference runtime) in float16."""
    if torch._C._is_any_autocast_enabled():
        with torch._C._DisableAutocast():
            return module(*args)
    return module(*args)


def _needs_grad(args: Sequence[Any]) -> bool:
    return torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)


_DEMOTE_AFTER_CHANGES = 2
"""A frozen weight that changes this often is state, and becomes an engine input."""

_GRAD_WARNING = (
    "plugtrt: {graph} runs in PyTorch, without TensorRT engines, because it needs gradients "
    "(grad mode is on and an input or parameter requires grad); plugtrt is an inference "
    "backend. For engines, call the model after model.eval() inside torch.no_grad() or "
    "torch.inference_mode().")
_grad_warned = False


def _warn_grad(graph: str) -> None:
    """One warning per process: a training loop compiles many graphs, each for the same reason."""
    global _grad_warned
    if not _grad_warned:
        _grad_warned = True
        warn_user(_GRAD_WARNING.format(graph=graph))
    logger.debug(_GRAD_WARNING.format(graph=graph))


def _first_line(exc: Exception, limit: int = 300) -> str:
    """The exception's type and first line: some (AOT's) repr whole dataclasses, kilobytes long."""
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return text if len(text) <= limit else text[:limit] + " [...]"


def _no_engine_message(report: CompileReport, settings: CompilationSettings, dynamic: bool) -> str | None:
    """Why a graph that has ops built no engine, and what to do: None where it built one, where
    it was not meant to (a dry run), or where a warning already said why (a failure, a dynamic
    graph's own warning)."""
    coverage = report.coverage
    if report.engines or report.dry_run or report.fallbacks or dynamic or not coverage or not coverage["total"]:
        return None
    total, supported = coverage["total"], coverage["supported"]
    head = f"plugtrt: {report.graph} builds no TensorRT engine and runs in PyTorch: "
    if supported == 0:
        worst = sorted(coverage["unsupported"].items(), key=lambda kv: -len(kv[1]["nodes"]))[:3]
        listed = "; ".join(f"{op}: {entry['reason']}" for op, entry in worst)
        return (head + f"none of its {total} ops can run in TensorRT ({listed}). Install a converter "
                "plugin for them, or list every op and why with options={'debug': True, "
                "'min_block_size': float('inf')}.")
    if settings.min_block_size <= 1:  # nothing smaller to ask for: the partitioner chose this
        return (head + f"{supported} of its {total} ops can run in TensorRT, but the "
                f"{settings.partitioner_name!r} partitioner put none of them in a TensorRT block. "
                "Pick another partitioner (options 'partitioner' or 'use_fast_partitioner').")
    return (head + f"{supported} of its {total} ops can run in TensorRT, but they form no block of "
            f"min_block_size={settings.min_block_size} ops. Set a smaller min_block_size in "
            "torch.compile's options to build engines for such small blocks.")


_BATCH_NORMS = {torch.nn.functional.batch_norm, torch.batch_norm}


def _train_mode_batch_norm(gm: torch.fx.GraphModule, graph: str) -> str | None:
    """The message for a graph that failed to trace because a batch norm in training mode
    writes its running statistics (AOT refuses the write under no_grad), or None."""
    from plugtrt.conversion import source_line

    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in _BATCH_NORMS:
            continue
        training = node.kwargs.get("training", node.args[5] if len(node.args) > 5 else False)
        if training is True:
            return (f"plugtrt: {graph} runs in PyTorch: its batch norm at {source_line(node)} is in "
                    "training mode, where it updates its running statistics, which an inference "
                    "engine cannot do. Call model.eval() before compiling to build engines.")
    return None


def _engine_settings(settings: CompilationSettings, args: Sequence[Any]) -> CompilationSettings:
    """Without a ``device`` option, the engines go on the inputs' GPU, so inputs on cuda:1
    get an engine on cuda:1 rather than one on the current device."""
    if settings.device is not None:
        return settings
    device = next((a.device for a in args if isinstance(a, torch.Tensor) and a.device.type == "cuda"), None)
    return settings if device is None else attrs.evolve(settings, device=device)


class CompiledGraph:
    """What dynamo calls in place of its graph: dispatches to the compiled specialisation.

    Calls may come from several threads: one lock covers the weight check, the lookup and
    compiling, so a specialisation is built once; running it happens outside the lock.
    """

    def __init__(self, gm: torch.fx.GraphModule, example_inputs: Sequence[Any],
                 settings: CompilationSettings, registry: PluginRegistry):
        self.gm = gm
        self.settings = settings
        self.registry = registry
        self.name = f"graph_{next(_graph_ids)}"
        self._input_names = input_names(gm)  # now: dynamo drops the sources once compiled
        self._told: set[str] = set()
        """Warnings given about this graph: each once, however often it recompiles."""
        self.needs_grad = _needs_grad(example_inputs)
        """Dynamo guards grad mode and requires_grad, so this holds for every call."""
        self.frozen: tuple[int, ...] = ()
        """Inputs frozen into the engines: parameters and buffers the graph does not write."""
        self.mutated: tuple[int, ...] = ()
        """Inputs the graph writes (state): engine inputs, written back in PyTorch."""
        self._weights: FrozenWeights | None = None
        self._changes: collections.Counter[int] = collections.Counter()
        """Per frozen input, how many times it changed after compiling."""
        self._frozen_set: frozenset[int] = frozenset()
        self._unfrozen: tuple[int, ...] = ()
        """The other inputs' positions: a call's signature reads only these."""
        self._lock = threading.Lock()
        self._warned_aliased = False
        self.specialisations: dict[tuple, Any] = {}
        self.modules: dict[tuple, torch.fx.GraphModule | None] = {}
        """Per signature, the partitioned module (None where the graph runs as dynamo gave it)."""
        self.reports: collections.deque[CompileReport] = collections.deque(maxlen=MAX_REPORTS)
        concrete = _is_concrete(example_inputs)
        self.dynamic = None if concrete or self.needs_grad else DynamicSizes.of(gm)
        """For a graph with symbolic sizes: its symbols and the profile its engines serve."""
        self._traced_gm, self._scalars = (gm, {}) if self.dynamic is None else \
            specialise_scalars(gm, example_inputs)
        if self.needs_grad:
            _warn_grad(self.name)
        elif concrete or self.dynamic is not None:
            self._classify(_hinted(example_inputs))
            self._compile(example_inputs)
        else:
            logger.debug("%s takes a size only as an int argument: it compiles one specialisation "
                         "per concrete size, on the first call with that size", self.name)

    def __call__(self, *args: Any) -> Any:
        if self.needs_grad:
            return self.gm.forward(*args)
        with self._lock:
            if self._weights is None:
                self._classify(args)
            elif changed := self._weights.changed(args):
                self._rebuild_for(changed, args)
            self._check_traced_values(args)
            compiled = self.specialisations.get(self._key(args))
            if compiled is None:
                compiled = self._compile(args)
        return compiled(*args)

    def _classify(self, args: Sequence[Any]) -> None:
        """Find the weights to freeze: the model's parameters and buffers, until tracing says
        which of them the graph writes (:meth:`_found_writes`)."""
        weights = module_weight_indices(self.gm, args) if self.settings.weights == "frozen" else ()
        self._set_frozen(tuple(i for i in weights if i not in self.mutated), args)

    def _found_writes(self, mutated: tuple[int, ...], args: Sequence[Any]) -> None:
        """The inputs the graph writes are state, not weights: engine inputs, written back."""
        if mutated != self.mutated:
            self.mutated = mutated
            self._set_frozen(tuple(i for i in self.frozen if i not in mutated), args)
            logger.debug("%s writes inputs %s: they stay engine inputs and are written back in PyTorch",
                         self.name, list(mutated))

    def _set_frozen(self, frozen: tuple[int, ...], args: Sequence[Any]) -> None:
        self.frozen = frozen
        self._frozen_set = frozenset(frozen)
        self._unfrozen = tuple(i for i in range(len(args)) if i not in self._frozen_set)
        self._weights = FrozenWeights(args, frozen)

    def _rebuild_for(self, changed: Sequence[int], args: Sequence[Any]) -> None:
        """Drop the engines built with the old values of ``changed``. A weight that keeps
        changing (updated outside the compiled region every step) would rebuild the engines
        every call: after its second change it becomes an engine input instead. So does one
        replaced by an inference tensor (``p.data = t`` under ``inference_mode``), whose later
        writes bump no version counter."""
        self._changes.update(changed)
        restless = [i for i in changed
                    if self._changes[i] >= _DEMOTE_AFTER_CHANGES or args[i].is_inference()]
        if restless:
            logger.warning("plugtrt: weights %s of %s changed %d times since compiling, or became "
                           "inference tensors; they are engine inputs from now on, not constants",
                           self._names(restless), self.name, _DEMOTE_AFTER_CHANGES)
            self._set_frozen(tuple(i for i in self.frozen if i not in restless), args)
        else:
            logger.warning("plugtrt: frozen weights %s of %s changed since their engines were "
                           "built; rebuilding them", self._names(changed), self.name)
        self.specialisations.clear()
        self.modules.clear()

    def _run_aliased(self, args: Sequence[Any]) -> Any:
        if not self._warned_aliased:
            self._warned_aliased = True
            warn_user(f"plugtrt: {self.name} writes an input that shares memory with another "
                      "input; calls like this one run in PyTorch. Pass separate tensors (or "
                      ".clone() one) to use the engines.")
        return self.gm.forward(*args)

    def _names(self, inputs: Sequence[int]) -> list[str]:
        """The model's names for graph inputs (``seq.0.weight``), for messages about weights."""
        names = self._input_names
        return [names[i] if i < len(names) else f"input {i}" for i in inputs]

    def _key(self, args: Sequence[Any]) -> tuple:
        """One specialisation per signature; a dynamic graph has one for all sizes in its profile."""
        return ("dynamic",) if self.dynamic is not None else _signature(args, self._unfrozen)

    def _check_traced_values(self, args: Sequence[Any]) -> None:
        """Drop the engines when a value baked into them no longer holds: a python scalar
        dynamo passed as a tensor, or a size outside the profile of a dynamic graph."""
        if changed := [i for i, value in self._scalars.items() if args[i].item() != value]:
            logger.warning("plugtrt: a python scalar of %s that its engines hold as a constant changed; "
                           "rebuilding them", self.name)
            self._traced_gm, self._scalars = specialise_scalars(self.gm, args)
            self.specialisations.clear()
            self.modules.clear()
        if self.dynamic is not None and not self.dynamic.covers(self.dynamic.values(args)):
            built = any(r.engines for r in self.reports)
            logger.warning("plugtrt: %s is called with sizes %s, outside the profile %s built for "
                           "(%s); %s with a wider one", self.name, self.dynamic.values(args),
                           "its engines were" if built else "it was compiled",
                           DynamicSizes.describe(self.dynamic.built),
                           "rebuilding them" if built else "recompiling it")
            self.specialisations.clear()
            self.modules.clear()

    def _compile(self, args: Sequence[Any]) -> Any:
        report = CompileReport(graph=f"{self.name}.{len(self.specialisations)}",
                               dynamic=self.dynamic is not None)
        start = time.perf_counter()
        settings = _engine_settings(self.settings, args)
        try:
            cache, runtime, key = self._graph_cache_key(args, settings, report)
            module = self._restore(cache, runtime, key, args, settings, report) if key is not None else None
            if module is None:
                module = self._trace_and_compile(args, settings, report)
                if key is not None and module is not None:
                    graph_cache.save(cache, key, module, args, self.frozen, self.mutated, report)
        except PlugtrtError:
            raise
        except Exception as exc:
            if self.settings.pass_through_build_failures:
                raise
            message = _train_mode_batch_norm(self.gm, report.graph) or (
                f"plugtrt could not compile {report.graph} and runs it in PyTorch: "
                f"{_first_line(exc)}. Set pass_through_build_failures=True to raise instead "
                "(debug=True logs the whole error).")
            logger.debug("%s failed to compile", report.graph, exc_info=exc)
            if message not in self._told:  # a recompile (a weight changed) fails alike
                self._told.add(message)
                warn_user(message)
            report.fallbacks.append(message)
            module = None
        report.stage_seconds["total"] = time.perf_counter() - start
        key = self._key(args)  # after tracing: the inputs it found written are not frozen
        user = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and i not in self._frozen_set]
        report.input_shapes = [tuple(args[i].shape) for i in user]
        record(report)
        self.reports.append(report)
        logger.debug("%s", report.summary())
        warn_reference_runtime(self.registry, settings, report)
        why = _no_engine_message(report, settings, self.dynamic is not None)
        if why is not None and why not in self._told:
            self._told.add(why)
            warn_user(why)
        if self.dynamic is not None and not report.engines and report.pytorch_ops:
            ops = ", ".join(f"{op} x{n}" for op, n in collections.Counter(report.pytorch_ops).most_common(5))
            logger.warning("plugtrt: %s has symbolic sizes and builds no engine: it runs in PyTorch "
                           "(%s). Calls at the sizes it was first compiled for run here too, since "
                           "dynamo now sends them to this graph; mark fewer dims dynamic "
                           "(torch._dynamo.mark_static) or compile with dynamic=False to keep "
                           "engines per size", report.graph, ops)
        if module is None:
            compiled = self.gm.forward
        else:
            def compiled(*call_args: Any, _module=module, _user=user, _mutated=self.mutated, _key=key) -> Any:
                if _mutated and _writes_shared_memory(call_args, _mutated, _user):
                    return self._run_aliased(call_args)
                try:
                    outputs = _run_traced(_module, [call_args[i] for i in _user])
                except EngineFailedWithoutBlock:  # a restored engine failed: as a failed build would
                    self.specialisations[_key] = self.gm.forward
                    return self.gm.forward(*call_args)
                if not _mutated:
                    return outputs
                # the graph's writes to its inputs, done on the real tensors, as eager does
                # (a resized input takes its new shape first: check_metadata_writes admits no
                # other change of shape)
                count = len(outputs) - len(_mutated)
                with torch.no_grad():
                    for i, value in zip(_mutated, outputs[count:]):
                        if call_args[i].shape != value.shape:
                            call_args[i].resize_(value.shape)
                        call_args[i].copy_(value)
                return outputs[:count]
        self.specialisations[key] = compiled
        self.modules[key] = module
        return compiled

    def _trace_and_compile(self, args: Sequence[Any], settings: CompilationSettings,
                           report: CompileReport) -> torch.fx.GraphModule | None:
        table = decomposition_table(self.registry, self.settings)
        bounds = None
        if self.dynamic is not None:
            bounds = self.dynamic.bounds_for(self.dynamic.values(args), settings.max_dynamic_size)
            logger.debug("%s is dynamic: its engines' profiles cover %s (a range wider than 8x is split "
                         "into several)", self.name, DynamicSizes.describe(bounds))
        t0 = time.perf_counter()
        check_metadata_writes(self._traced_gm)
        aten, mutated = trace_to_aten(self._traced_gm, args, self.frozen, table,
                                      symbolic=self.dynamic is not None,
                                      keep_whole=self.registry.converters.keys())
        self._found_writes(mutated, args)
        report.stage_seconds["trace"] = time.perf_counter() - t0
        logger.debug("aten graph of %s:\n%s", report.graph, aten.code)
        return compile_aten(aten, self.registry, settings, report, bounds)

    def _graph_cache_key(self, args: Sequence[Any], settings: CompilationSettings,
                         report: CompileReport) -> tuple[Any, Any, str | None]:
        """The cache, the runtime the engines get and this compile's graph cache key; the key is
        None without a cache, for a dynamic graph, a dry run, or a graph the key cannot describe
        (its engines are still cached)."""
        if self.dynamic is not None or settings.dry_run:
            return None, None, None
        t0 = time.perf_counter()
        cache, runtime, key = open_cache(self.registry, settings), None, None
        if cache is not None:
            try:
                runtime = select_runtime(self.registry, settings)
            except PlugtrtError:  # compiling says why, in full
                runtime = None
            if runtime is not None:
                key = graph_cache.graph_key(self._traced_gm, args, self.frozen, self.registry, settings,
                                            runtime.record.name)
        report.stage_seconds["cache"] = time.perf_counter() - t0
        return cache, runtime, key

    def _restore(self, cache: Any, runtime: Any, key: str, args: Sequence[Any],
                 settings: CompilationSettings, report: CompileReport) -> torch.fx.GraphModule | None:
        t0 = time.perf_counter()
        restored = graph_cache.restore(cache, key, args, self.registry, settings, runtime, report)
        report.stage_seconds["cache"] += time.perf_counter() - t0
        if restored is None:
            return None
        module, mutated = restored
        self._found_writes(mutated, args)
        return module


def _writes_shared_memory(args: Sequence[Any], mutated: Sequence[int], inputs: Sequence[int]) -> bool:
    """Whether an input the graph writes shares memory with another input (``f(x, x[0])``):
    the traced graph treats them as independent, eager sees the write through both. Dynamo
    does not guard this, so it is checked per call, for graphs that write inputs only."""
    written = {args[i].untyped_storage().data_ptr() for i in mutated} - {0}
    hits = sum(1 for i in inputs if args[i].untyped_storage().data_ptr() in written)
    return hits > len(written)


def _check_device_exists(settings: CompilationSettings) -> None:
    """A ``device`` option naming a GPU this machine lacks fails now, not at the first engine."""
    device = settings.device
    if device is None or device.type != "cuda":
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.index is None and count or device.index is not None and device.index < count:
        return
    available = ", ".join(["cpu", *(f"cuda:{i}" for i in range(count))])
    raise InvalidOptionError(
        f"option 'device' is {device}, but this machine has {count} CUDA device(s); use None "
        f"(the inputs' device) or one of: {available}")


def compile_graph(gm: torch.fx.GraphModule, example_inputs: Sequence[Any],
                  settings: CompilationSettings, registry: PluginRegistry | None = None) -> CompiledGraph:
    """The backend with explicit settings and registry: what tests and embedders call."""
    _configure_logging(settings)
    _check_device_exists(settings)
    registry = registry or default_registry()
    # a misspelt plugin name fails now, even for a graph that would build no engine
    registry.pick("partitioner", settings.partitioner_name)
    if settings.runtime != "auto":
        registry.pick("runtime", settings.runtime)
    return CompiledGraph(gm, example_inputs, settings, registry)


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
