"""The graph cache: a restarted process restores a whole compiled graph without tracing it.

A hit in the engine cache skips conversion and TensorRT's build, but only after the graph has
been traced to aten, lowered and partitioned, since a block's key is computed from the block:
on a machine whose builder is fast, that is most of a warm compile. This layer keys the graph
dynamo hands over, before any of that, and stores what plugtrt made of it.

The key (one canonical JSON document, hashed with SHA-256) covers:

- dynamo's graph: every node's op, target, args and kwargs, encoded as the engine key encodes
  a block's (:mod:`plugtrt.engine_key`), subgraphs recursively, and every constant's value;
- every input's shape, strides, dtype, device and ``requires_grad``; which inputs are frozen
  weights, and each frozen weight's value (XXH3-128 over its bytes);
- every setting (:meth:`CompilationSettings.graph_key`), and the runtime the settings select;
- every registered plugin (name, distribution, version, source digest): lowering passes,
  partitioners and decompositions shape the module as much as converters do;
- the process-wide torch state tracing reads (:func:`plugtrt.engine_key.ambient_state`): an
  ambient ``torch.autocast`` puts its casts in the traced graph, so a graph compiled under it
  must not be restored for a call outside it; the float32 matmul precision, TF32 and
  deterministic-algorithm flags;
- TensorRT's flavour and version, torch's version and default dtype, plugtrt's core and the
  target device.

The entry holds the partitioned module, pickled with the frozen weights as references to the
call's inputs (rebound on a hit, so the module reads the model's own tensors as a freshly
compiled one does) and each engine as its engine-cache key (loaded on a hit like any cached
engine; a graph whose engine entry has been evicted is compiled again); the inputs the graph
writes; and its compile report's engines, coverage and fallbacks.

Not cached here (their engines still are, in the engine cache): graphs with symbolic sizes,
graphs calling something that is not torch's (a function dynamo keeps whole, or a custom
operator, whose implementation the key cannot see), graphs holding modules, and modules
whose pickle would need anything else.

A restored engine has no PyTorch block behind it: if it fails at run time, the whole graph
runs in PyTorch from then on (:class:`plugtrt.compiler.ContainedEngine` says so, once).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import operator
import pickle
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import torch
import torch.fx

from plugtrt import trt_adapter
from plugtrt.compiler import ContainedEngine
from plugtrt.engine_key import (EngineKey, Uncacheable, ambient_state, core_fingerprint, encode_argument,
                                plugin_fingerprint, target_device, target_name, tensor_digest)
from plugtrt.report import CompileReport, EngineReport

logger = logging.getLogger("plugtrt")

GRAPH_FORMAT = 2
"""Bumped whenever what the key covers or the entry holds changes."""

_TORCH_MODULES = ("torch", "_operator", "operator", "builtins", "math")
"""Where a dynamo graph's call targets may come from for the graph to be keyed by their names."""
_TORCH_NAMESPACES = ("aten", "prims")
"""Operator namespaces whose operators are torch's own (covered by torch's version)."""


@attrs.frozen(kw_only=True)
class GraphEntry:
    """What a graph cache entry holds."""

    module: bytes
    """The partitioned module, pickled by :class:`_ModulePickler`."""
    mutated: tuple[int, ...]
    engines: tuple[EngineReport, ...]
    coverage: Any
    pytorch_ops: tuple[str, ...]
    fallbacks: tuple[str, ...]


def graph_key(gm: torch.fx.GraphModule, args: Sequence[Any], frozen: Sequence[int], registry: Any,
              settings: Any, runtime: str) -> str | None:
    """The key of compiling ``gm`` on ``args`` with the inputs at ``frozen`` as weights, for
    the runtime named ``runtime``; None where the graph cannot be keyed faithfully."""
    try:
        document = {
            "format": GRAPH_FORMAT,
            "graph": _graph_document(gm),
            "inputs": [_input_spec(a) for a in args],
            "frozen": list(frozen),
            "weights": [tensor_digest(args[i]) for i in frozen],
            "settings": settings.graph_key(),
            "runtime": runtime,
            "plugins": sorted([name, plugin_fingerprint(registry, name)]
                              for name, _ in registry.plugin_manager.list_name_plugin()),
            "tensorrt": trt_adapter.version(),
            "torch": [torch.__version__, str(torch.get_default_dtype())],
            "plugtrt": core_fingerprint(),
            "ambient": ambient_state(),
            "device": target_device(settings),
        }
    except Exception as exc:  # Uncacheable, or a graph this code does not foresee: it still compiles
        logger.debug("no graph cache entry: %r", exc)
        return None
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return "graph-" + hashlib.sha256(text.encode()).hexdigest()


def _graph_document(gm: torch.fx.GraphModule) -> list:
    index: dict[torch.fx.Node, int] = {}
    nodes = []
    for node in gm.graph.nodes:
        index[node] = len(index)
        entry = [node.op, encode_argument(node.args, index), encode_argument(node.kwargs, index)]
        if node.op == "call_function":
            _check_target(node.target)
            entry.append(target_name(node.target))
        elif node.op == "call_method":
            entry.append(node.target)
        elif node.op == "get_attr":
            value = operator.attrgetter(node.target)(gm)
            entry.append(_graph_document(value) if isinstance(value, torch.fx.GraphModule)
                         else tensor_digest(value))
        elif node.op not in ("placeholder", "output"):
            raise Uncacheable(f"{node.op} node {node.name}")
        nodes.append(entry)
    return nodes


def _check_target(target: Any) -> None:
    """Raise :class:`Uncacheable` for a call the key would name without covering what it does:
    a function from outside torch that dynamo keeps whole, or a custom operator (its Python
    implementation, which tracing may have inlined, can change with no name changing)."""
    if isinstance(target, torch._ops.HigherOrderOperator):
        return  # its subgraphs are get_attr nodes, covered recursively
    if isinstance(target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        if str(target).split(".")[0] not in _TORCH_NAMESPACES:  # aten.add, aten.add.Tensor
            raise Uncacheable(f"custom operator {target_name(target)}")
        return
    if getattr(target, "__module__", "").split(".")[0] not in _TORCH_MODULES:
        raise Uncacheable(f"call to {target_name(target)}, whose source the key cannot see")


def _input_spec(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        if type(value) not in (torch.Tensor, torch.nn.Parameter) or value.layout != torch.strided:
            raise Uncacheable(f"input of type {type(value).__name__}, layout {value.layout}")
        return [list(value.shape), list(value.stride()), value.storage_offset(), str(value.dtype),
                str(value.device), value.requires_grad]
    if isinstance(value, torch.SymInt):
        raise Uncacheable("a symbolic size")
    return encode_argument(value, {})


class _ModulePickler(pickle.Pickler):
    """Pickles a partitioned module with each tensor in a frozen input's memory as a reference
    to that input, and each engine as its engine-cache key."""

    def __init__(self, file: io.BytesIO, weights: Mapping[int, int]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._weights = weights

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            index = self._weights.get(obj.untyped_storage().data_ptr())
            if index is None:
                return None
            return ("input", index, str(obj.dtype), tuple(obj.shape), tuple(obj.stride()),
                    obj.storage_offset())
        if isinstance(obj, ContainedEngine):
            if obj.cache_key is None:
                raise Uncacheable(f"{obj.where} has no engine cache key")
            return ("engine", obj.cache_key.digest, obj.cache_key.converters, obj.target, obj.where)
        if isinstance(obj, torch.nn.Module) and not isinstance(obj, torch.fx.GraphModule):
            raise Uncacheable(f"a {type(obj).__name__} module")
        return None

    def reducer_override(self, obj: Any) -> Any:
        """A GraphModule is unpickled by tracing its code again, with the tracer that made it,
        each submodule a leaf. make_fx's tracer (behind a partition that keeps the traced
        module's class) calls submodules anyway, which would run the engines on proxies: the
        entry names fx's own tracer instead."""
        if not isinstance(obj, torch.fx.GraphModule):
            return NotImplemented
        function, (body, *rest) = obj.__reduce__()
        return function, ({**body, "_tracer_cls": None, "_tracer_extras": {}}, *rest)


class _ModuleUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, args: Sequence[Any], load_engine: Callable[..., Any]):
        super().__init__(file)
        self._args, self._load_engine = args, load_engine

    def persistent_load(self, pid: Any) -> Any:
        if pid[0] == "input":
            _, index, dtype, shape, stride, offset = pid
            base = self._args[index].detach()
            if str(base.dtype) != dtype:
                raise pickle.UnpicklingError(f"input {index} is {base.dtype}, the entry expects {dtype}")
            return base.as_strided(shape, stride, offset)
        if pid[0] == "engine":
            return self._load_engine(*pid[1:])
        raise pickle.UnpicklingError(f"unknown reference {pid[0]!r}")


class _EngineMissing(Exception):
    """An engine the graph entry names is no longer in the engine cache."""


def save(cache: Any, key: str, module: torch.fx.GraphModule, args: Sequence[Any],
         frozen: Sequence[int], mutated: Sequence[int], report: CompileReport) -> None:
    """Hand the graph entry of ``module`` to the cache's writer; a module that cannot be
    pickled faithfully is simply not cached (debug log)."""
    weights = {args[i].untyped_storage().data_ptr(): i for i in frozen}
    weights.pop(0, None)
    buffer = io.BytesIO()
    try:
        _ModulePickler(buffer, weights).dump(module)
    except Exception as exc:  # whatever the module holds, not caching it never fails a compile
        logger.debug("%s: no graph cache entry: %r", report.graph, exc)
        return
    cache.save_entry(key, GraphEntry(
        module=buffer.getvalue(), mutated=tuple(mutated), engines=tuple(report.engines),
        coverage=report.coverage, pytorch_ops=tuple(report.pytorch_ops),
        fallbacks=tuple(report.fallbacks)))


def restore(cache: Any, key: str, args: Sequence[Any], registry: Any, settings: Any, runtime: Any,
            report: CompileReport) -> tuple[torch.fx.GraphModule, tuple[int, ...]] | None:
    """The module and written inputs stored under ``key``, with the model's weights rebound
    from ``args`` and the engines loaded from the engine cache; None on a miss (the report
    is left as it was). A hit fills ``report`` as the original compile did."""
    entry = cache.load_entry(key, GraphEntry, f"graph {report.graph}")
    if entry is None:
        return None
    engines: list[ContainedEngine] = []

    def load_engine(digest: str, converters: tuple[str, ...], target: str, where: str) -> ContainedEngine:
        name = f"{report.graph}.{target}"
        artifact = cache.load(EngineKey(digest=digest, converters=converters), name)
        if artifact is None:
            raise _EngineMissing(name)
        module = ContainedEngine(runtime.record.create(artifact, settings, registry), None, target, where,
                                 settings, report, cache_key=EngineKey(digest=digest, converters=converters))
        engines.append(module)
        return module

    try:
        module = _ModuleUnpickler(io.BytesIO(entry.module), args, load_engine).load()
    except _EngineMissing as exc:
        logger.debug("%s: the graph cache entry's engine %s is gone; compiling", report.graph, exc)
        return None
    except Exception as exc:  # a verified entry that does not load was written by other code
        warnings.warn(f"plugtrt: graph cache entry {key[6:22]} does not load ({exc!r}); compiling "
                      f"{report.graph} again. If this repeats in every process, clear the cache "
                      "(python -m plugtrt cache --clear) and report the message.", stacklevel=4)
        return None
    for message in entry.fallbacks:  # the compile it replaces warned these
        warnings.warn(message, stacklevel=4)
    prefix = report.graph
    report.engines.extend(attrs.evolve(e, name=f"{prefix}.{e.name.rsplit('.', 1)[-1]}", cached=True,
                                       build_seconds=0.0) for e in entry.engines)
    report.coverage = entry.coverage
    report.pytorch_ops.extend(entry.pytorch_ops)
    report.fallbacks.extend(entry.fallbacks)
    report.restored = True
    logger.debug("%s: restored from the graph cache (%s), %d engine(s)", report.graph, key[6:22],
                 len(engines))
    return module, entry.mutated
