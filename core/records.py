"""Typed, frozen records that registration hooks yield.

Validation happens in ``__init__`` (attrs validators), so a plugin that yields a bad
record fails when the core collects it, with a message naming the field.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from attrs import validators as v
from torch._ops import OpOverload

_NAME_RE = r"[a-z0-9_]+(\.[a-z0-9_\-]+)+"
_WORD_RE = r"[a-z][a-z0-9_\-]*"


def _normalize(value: object) -> str:
    if not isinstance(value, str):  # converters run before validators: check the type here
        raise TypeError(f"name must be a str, got {value!r}")
    return value.strip().lower()  # idempotent: evolve() runs converters again


def _overload_only(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if not isinstance(value, OpOverload):
        raise TypeError(
            f"{attribute.name} must be an OpOverload such as aten.mean.dim, got {value!r} "
            f"({type(value).__name__}); a packet like aten.mean is ambiguous, name one overload"
        )


def _always(_node: Any, _settings: Any) -> bool:
    return True


def _dotted_name():
    return attrs.field(converter=_normalize, validator=v.matches_re(_NAME_RE))


@attrs.frozen(kw_only=True)
class DecompositionSpec:
    """One aten decomposition offered by a plugin."""

    name: str = _dotted_name()
    """Unique dotted id ``<plugin>.<op>``."""
    target: OpOverload = attrs.field(validator=_overload_only)
    fn: Callable[..., Any] = attrs.field(validator=v.is_callable())
    """Takes the op's arguments and returns what it returns, using only ops traceable to aten."""
    experimental: bool = attrs.field(default=False, validator=v.instance_of(bool))
    """Applied only with ``enable_experimental_decompositions=True``."""
    always: bool = attrs.field(default=False, validator=v.instance_of(bool))
    """Decompose even when a converter accepts the op whole."""


@attrs.frozen(kw_only=True)
class LoweringPassSpec:
    """One graph transformation run on the aten graph before partitioning."""

    name: str = _dotted_name()
    fn: Callable[..., Any] = attrs.field(validator=v.is_callable())
    """``fn(gm: GraphModule, settings: CompilationSettings) -> GraphModule``."""
    order: int = attrs.field(default=0, validator=[v.instance_of(int), v.ge(-1000), v.le(1000)])
    """Passes run sorted by ``(order, name)``."""


@attrs.frozen(kw_only=True)
class ConverterSpec:
    """One aten -> TensorRT converter offered by a plugin."""

    name: str = _dotted_name()
    """Unique dotted id ``<plugin>.<op>``; shown in errors and reports."""
    target: OpOverload = attrs.field(validator=_overload_only)
    convert: Callable[..., Any] = attrs.field(validator=v.is_callable())
    """``convert(ctx, node, args, kwargs)`` -> ITensor or tuple of ITensors; ``args`` hold
    ITensors where the node had tensors, python values elsewhere."""
    is_supported: Callable[..., bool] = attrs.field(default=_always, validator=v.is_callable())
    """``is_supported(node, settings) -> bool``; pure, reads only the node and its meta."""
    priority: int = attrs.field(default=0, validator=[v.instance_of(int), v.ge(-100), v.le(100)])
    supports_dynamic_shapes: bool = attrs.field(default=False, validator=v.instance_of(bool))
    constant_args: frozenset[int] = attrs.field(
        default=frozenset(), converter=frozenset,
        validator=v.deep_iterable(v.and_(v.instance_of(int), v.ge(0))))
    """Positions of arguments the converter takes as ``torch.Tensor`` when the node reads a
    constant (a frozen weight or a folded value) there, instead of a constant layer's output:
    it can then fold them in torch (batch norm statistics) or hand them to TensorRT as layer
    weights (convolution kernels), and no constant layer is added for them."""


@attrs.frozen(kw_only=True)
class PartitionerSpec:
    """A partitioner: splits an aten graph into TensorRT and PyTorch submodules."""

    name: str = attrs.field(converter=_normalize, validator=v.matches_re(_WORD_RE))
    partition: Callable[..., Any] = attrs.field(validator=v.is_callable())
    """``partition(gm, is_supported, settings) -> GraphModule`` whose ``call_module`` nodes named
    ``_run_on_acc_<i>`` are the TensorRT blocks; ``is_supported(node) -> bool`` comes from the core."""


@attrs.frozen(kw_only=True)
class RuntimeSpec:
    """A runtime: turns a built engine into a callable ``torch.nn.Module``."""

    name: str = attrs.field(converter=_normalize, validator=v.matches_re(_WORD_RE))
    create: Callable[..., Any] = attrs.field(validator=v.is_callable())
    """``create(artifact: EngineArtifact, settings, registry) -> torch.nn.Module`` (see
    :mod:`plugtrt.runtime`); the module takes the engine inputs positionally and returns a tuple
    of outputs. ``registry`` holds every plugin's records (e.g. ``registry.layer_evaluators``)."""
    available: Callable[..., str | None] = attrs.field(validator=v.is_callable())
    """``available(settings) -> None`` when usable here, else the reason it is not."""
    reads: frozenset[str] = attrs.field(default=frozenset({"plan", "network"}), converter=frozenset,
                                        validator=v.deep_iterable(v.in_({"plan", "network"})))
    """The parts of an :class:`EngineArtifact` that ``create`` uses: the serialized ``plan``,
    the ``network`` snapshot, or both (the default). The engine cache stores only these."""


@attrs.frozen(kw_only=True)
class LayerEvaluatorSpec:
    """How the ``reference`` runtime computes one kind of TensorRT layer with torch ops.

    A package whose converters emit a layer the reference runtime does not know (a TensorRT
    plugin layer, say) registers an evaluator for it, and its tests then run on a CPU with the
    same per-layer shape and dtype checks as every built-in layer.
    """

    name: str = _dotted_name()
    layer_type: str = attrs.field(validator=v.matches_re(r"[A-Z][A-Z0-9_]*(:.+)?"))
    """A ``trt.LayerType`` member name (``"PADDING"``), or ``"PLUGIN_V3:<plugin name>"`` /
    ``"PLUGIN_V2:<plugin type>"`` for a TensorRT plugin layer."""
    evaluate: Callable[..., Any] = attrs.field(validator=v.is_callable())
    """``evaluate(layer: LayerSnapshot, inputs: list[Tensor | None], context) -> list[Tensor]``:
    inputs in TensorRT's order, outputs in order, with the dtypes and shapes TensorRT inferred."""
    priority: int = attrs.field(default=0, validator=[v.instance_of(int), v.ge(-100), v.le(100)])
    """The highest-priority evaluator of a layer type is used; equal priorities clash."""


@attrs.frozen(kw_only=True)
class CommandSpec:
    """A ``python -m plugtrt <name>`` subcommand."""

    name: str = attrs.field(converter=_normalize, validator=v.matches_re(_WORD_RE))
    help: str = attrs.field(validator=v.instance_of(str))
    """One line for ``python -m plugtrt --help``."""
    main: Callable[..., int] = attrs.field(validator=v.is_callable())
    """``main(argv: list[str]) -> int``: parses its own arguments, returns the exit status.
    Import heavy dependencies inside it, so that listing commands stays cheap."""


@attrs.frozen(kw_only=True)
class EngineStoreSpec:
    """An engine store: where the engine cache keeps its entries (a directory, a server ...)."""

    name: str = attrs.field(converter=_normalize, validator=v.matches_re(_WORD_RE))
    create: Callable[..., Any] = attrs.field(validator=v.is_callable())
    """``create(settings) -> plugtrt.engine_cache.EngineStore``; called once per compiled block,
    so it must be cheap (no I/O until the store is used). Entries are opaque, checksummed bytes
    that the core encodes and verifies; the store keeps them, and evicts as its size cap asks."""
