"""The engine cache key: a digest of everything that changes a TensorRT block's engine.

It is computed from the FX block alone, before any conversion, so that a cache hit skips
both conversion and TensorRT's build. The key covers, in one canonical JSON document
hashed with SHA-256:

- the block's graph: every node in order, its op, its target (``aten.add.Tensor``), its
  args and kwargs (nodes referred to by position; floats by ``repr``, so ``-0.0``, ``nan``
  and ``inf`` stay distinct; dtypes, devices and layouts by name) and the shape and dtype
  tracing recorded for it, which includes the block's input shapes and dtypes (a dynamic
  size by its symbolic expression, ``s0`` or ``2*s0``);
- for a dynamic block, its optimization profiles: each symbol's (min, opt, max) in each, as
  :func:`plugtrt.dynamic.engine_profiles` splits the graph's bounds for the block's inputs;
- the value of every constant (frozen weights included): XXH3-128 over the tensor's full
  bytes, with its dtype and shape. Every byte is read, so two different tensors share a
  digest only by a 128-bit accident, or by weights crafted to collide, which takes control of
  the model being compiled (entries themselves are authenticated, :mod:`plugtrt.cache_auth`);
  XXH3 reads ResNet-50's 102 MB of weights in about 3 ms, SHA-256 in 50;
- whether each node computes in float32 under a reduced ``precision``
  (:func:`plugtrt.precision.float32_nodes`, which reads the tags that marking the whole graph
  left on the block's nodes): two blocks of identical nodes may be tagged differently;
- the converter each node would get (``registry.converter_for(node, settings)``): its record
  name, its plugin, the plugin's distribution and version, and a digest of the plugin
  package's source files, so an upgraded or locally edited converter package misses; a plugin
  without a source file (``python -c``, a notebook) by the digest of its code
  (:mod:`plugtrt.code_fingerprint`), or, where that cannot describe it, no key;
- every build-affecting setting (:meth:`CompilationSettings.engine_key`), and the runtime the
  engine is made for (an entry holds only the parts of the artifact that runtime reads);
- TensorRT's flavour and version, torch's version, plugtrt's version and a digest of the
  core's source files (the conversion context and builder config live there);
- the process-wide torch state that conversion and the build may read (:func:`ambient_state`:
  autocast, float32 matmul precision, the TF32 flags, deterministic algorithms);
- the target device: for ``settings.device`` (or the current device) its compute capability,
  name, SM count and memory (full TensorRT's plans are specific to a GPU model), or
  ``"none"`` where no GPU is visible.

A block the key cannot describe faithfully (a constant that is not a dense tensor, an
argument of an unknown type, a node without a converter) gets no key and is simply built.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import operator
import sys
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch
import torch.fx
import torch.utils._pytree as pytree
import xxhash

from plugtrt import trt_adapter
from plugtrt.code_fingerprint import NotFingerprintable, code_fingerprint
from plugtrt.dynamic import engine_profiles
from plugtrt.precision import float32_nodes

logger = logging.getLogger("plugtrt")

KEY_FORMAT = 4
"""Bumped whenever what the key covers changes, so older entries miss instead of matching."""


@attrs.frozen(kw_only=True)
class EngineKey:
    """A block's cache key and what the engine report needs on a hit."""

    digest: str
    """64 hex digits; the store's name for the entry."""
    converters: tuple[str, ...]
    """Names of the converters that the block's nodes get, sorted."""


class Uncacheable(Exception):
    """The block holds something the key cannot describe faithfully."""


def engine_key(block: torch.fx.GraphModule, registry: Any, settings: Any,
               bounds: Mapping[Any, tuple[int, int, int]] | None = None, *, runtime: str) -> EngineKey | None:
    """The key of ``block`` (a TensorRT partition) under ``registry``, ``settings`` and, for a
    dynamic block, the (min, opt, max) ``bounds`` its optimization profiles split, for the runtime
    named ``runtime`` (an entry holds only what that runtime reads), or None where it cannot be
    keyed faithfully (the block is then built and not cached)."""
    index: dict[torch.fx.Node, int] = {}
    nodes: list[Any] = []
    converters: dict[str, list[str]] = {}
    float32 = float32_nodes(block, settings.precision)
    inputs = [n.meta.get("val") for n in block.graph.nodes if n.op == "placeholder"]
    try:
        for node in block.graph.nodes:
            index[node] = len(index)
            entry: list[Any] = [node.op, encode_argument(node.args, index),
                                encode_argument(node.kwargs, index),
                                _value_spec(node.meta.get("val"))]
            if node.op == "get_attr":
                entry.append(tensor_digest(operator.attrgetter(node.target)(block)))
            elif node.op == "call_function":
                entry += [target_name(node.target), node in float32]
                if node.target is not operator.getitem:
                    reg = registry.converter_for(node, settings)
                    if reg is None:
                        return None  # conversion raises the error that says why
                    converters[reg.record.name] = [reg.plugin, plugin_fingerprint(registry, reg.plugin)]
                    entry.append(reg.record.name)
            elif node.op not in ("placeholder", "output"):
                return None  # the interpreter converts only functions; let it say so
            nodes.append(entry)
    except Uncacheable:
        return None
    document = {
        "format": KEY_FORMAT,
        "graph": nodes,
        "profiles": [sorted([str(symbol), list(b)] for symbol, b in profile.items())
                     for profile in engine_profiles(bounds, inputs)],
        "converters": converters,
        "settings": settings.engine_key(),
        "runtime": runtime,
        "tensorrt": trt_adapter.version(),
        "torch": torch.__version__,
        "plugtrt": core_fingerprint(),
        "ambient": ambient_state(),
        "device": target_device(settings),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return EngineKey(digest=hashlib.sha256(text.encode()).hexdigest(),
                     converters=tuple(sorted(converters)))


def tensor_digest(value: Any) -> str:
    """XXH3-128 of a dense tensor's dtype, shape and every byte of its data."""
    if not isinstance(value, torch.Tensor) or value.layout != torch.strided or value.is_quantized:
        raise Uncacheable(f"constant {type(value).__name__}")
    tensor = value.detach().to("cpu").contiguous().reshape(-1)
    digest = xxhash.xxh3_128(f"{tensor.dtype}{tuple(value.shape)}".encode())
    digest.update(tensor.view(torch.uint8).numpy())
    return digest.hexdigest()


def encode_argument(value: Any, index: dict[torch.fx.Node, int]) -> Any:
    """A node argument as JSON that identifies it exactly; node references by position."""
    if isinstance(value, torch.fx.Node):
        return ["node", index[value]]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if value is Ellipsis:
        return ["ellipsis"]
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [encode_argument(v, index) for v in value]]
    if isinstance(value, dict):
        return ["dict", [[str(k), encode_argument(v, index)] for k, v in sorted(value.items())]]
    if isinstance(value, slice):
        return ["slice", [encode_argument(v, index) for v in (value.start, value.stop, value.step)]]
    if isinstance(value, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
        return [type(value).__name__, str(value)]
    if isinstance(value, torch.Tensor):
        return ["tensor", tensor_digest(value)]
    raise Uncacheable(f"argument {type(value).__name__}")


def _value_spec(value: Any) -> Any:
    """Shape and dtype of each tensor that tracing recorded for a node."""
    leaves = []
    for leaf in pytree.tree_leaves(value):
        if isinstance(leaf, torch.Tensor):
            # a symbolic size by its expression: int() would specialise it in dynamo's guards
            leaves.append([[d if isinstance(d, int) else str(d.node.expr) for d in leaf.shape],
                           str(leaf.dtype)])
        else:
            leaves.append(repr(leaf))  # python scalars; repr keeps 1, 1.0 and True apart
    return leaves


def target_name(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"higher_order.{target.name()}"
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def target_device(settings: Any) -> Any:
    """The GPU the engine is built for: compute capability (``sm_90``), name, SM count and
    total memory, since full TensorRT tunes a plan to one GPU model; ``none`` without a GPU."""
    if not torch.cuda.is_available():
        return "none"
    device = settings.device
    if device is None or device.type != "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    major, minor = torch.cuda.get_device_capability(device)
    props = torch.cuda.get_device_properties(device)
    return [f"sm_{major}{minor}", props.name, props.multi_processor_count, props.total_memory]


_AUTOCAST_DEVICES = ("cpu", "cuda")


def ambient_state() -> dict[str, Any]:
    """Process-wide torch state that changes what tracing produces or what a build does, yet
    no node or setting records: autocast per device type (tracing under it inserts its casts;
    dynamo does not put an ambient autocast in the graph), the float32 matmul precision and
    the TF32 flags (whether float32 matmuls may use TF32), and deterministic algorithms."""
    return {
        "autocast": {device: str(torch.get_autocast_dtype(device)) if torch.is_autocast_enabled(device) else None
                     for device in _AUTOCAST_DEVICES},
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "allow_tf32": [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32],
        "deterministic": [torch.are_deterministic_algorithms_enabled(),
                          torch.is_deterministic_algorithms_warn_only_enabled()],
    }


# -- versions and sources --------------------------------------------------------
_plugin_fingerprints: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plugin_fingerprint(registry: Any, plugin: str) -> str:
    """``dist==version source-digest`` of a registered plugin, memoised per registry (one
    scan of the installed distributions per registry, not per plugin). A plugin without a
    source file gets ``code-<digest>`` of its code instead, computed on every call (a notebook
    redefines functions in place); :class:`Uncacheable`, with a debug line, where even that
    cannot describe it."""
    if registry not in _plugin_fingerprints:
        _plugin_fingerprints[registry] = (_entry_point_distributions(), {})
    dists, memo = _plugin_fingerprints[registry]
    if plugin in memo:
        return memo[plugin]
    obj = registry.plugin_manager.get_plugin(plugin)
    module = obj if isinstance(obj, type(sys)) else sys.modules.get(type(obj).__module__)
    distribution = _distribution(dists.get(plugin), module)
    if getattr(module, "__file__", None):
        memo[plugin] = f"{distribution} {_module_sources(module)}"
        return memo[plugin]
    try:
        return f"{distribution} code-{code_fingerprint(obj)}"
    except NotFingerprintable as exc:
        logger.debug("plugin %s has no source file and its code reaches %s: what it builds is not "
                     "cached", plugin, exc)
        raise Uncacheable(f"plugin {plugin}") from exc


def _distribution(dist: str | None, module: Any) -> str:
    """The distribution (``name==version``) that provides a plugin: ``dist``, its entry point's,
    else the one its module's package belongs to; ``unpackaged`` when neither says."""
    if dist is not None:
        return dist
    top = (getattr(module, "__name__", "") or "").split(".")[0]
    for name in _packages_distributions().get(top, []):
        return f"{name}=={importlib.metadata.version(name)}"
    return "unpackaged"


def _entry_point_distributions() -> dict[str, str]:
    """Entry-point name -> ``name==version`` of its distribution, for the ``plugtrt`` group; each
    distribution's metadata is parsed once (it is an email parse, a millisecond each)."""
    labels: dict[Any, str] = {}
    found = {}
    for ep in importlib.metadata.entry_points(group="plugtrt"):
        if ep.dist is not None:
            if ep.dist not in labels:
                labels[ep.dist] = f"{ep.dist.name}=={ep.dist.version}"
            found[ep.name] = labels[ep.dist]
    return found


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _module_sources(module: Any) -> str:
    """Digest of the Python sources of ``module``'s package (recursively), or of the module
    alone when it is top-level: a converter's helpers live beside it."""
    if getattr(module, "__package__", None):
        package = sys.modules.get(module.__package__)
        if package is not None and getattr(package, "__path__", None):
            return _sources_digest(tuple(sorted(package.__path__)))
    return _sources_digest((module.__file__,))


@functools.cache
def core_fingerprint() -> str:
    """plugtrt's version and a digest of the core's sources (``plugtrt`` package only)."""
    import plugtrt

    return f"{plugtrt.__version__} {_sources_digest(tuple(sorted(plugtrt.__path__)))}"


@functools.cache
def _sources_digest(paths: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for root in map(Path, paths):
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for file in files:
            digest.update(str(file.relative_to(root.parent)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]
