"""A plain, picklable copy of a built ``INetworkDefinition``.

The reference runtime evaluates networks long after TensorRT built them (the snapshot is stored
in the engine cache next to the plan), so it must not hold TensorRT objects: those die with their
builder and cannot be pickled. ``snapshot_network`` reads every layer through the public Python
API, once, into frozen attrs records made of Python scalars, tuples, torch dtypes and numpy
copies of the weights.

Parameters are read generically: the layer is cast to the typed subclass matching its
``LayerType`` and every property that subclass adds is converted to a plain value (enums become
their member name, ``Dims`` and permutations tuples, ``DataType`` a torch dtype, weights numpy
copies). Reading generically keeps this module independent of which parameters the runtime
happens to need today.
"""
from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import torch

from plugtrt.trt_adapter import load, to_torch_dtype, trt

# LayerType names whose typed class is not simply "I" + CamelCase(name) + "Layer".
_CLASS_OVERRIDES = {
    "CONDITIONAL_INPUT": "IIfConditionalInputLayer",
    "CONDITIONAL_OUTPUT": "IIfConditionalOutputLayer",
    "PLUGIN_V2": "IPluginV2Layer",
    "PLUGIN_V3": "IPluginV3Layer",
}
# Properties that name an owning control-flow object; recorded by its name so that the runtime
# can group boundary layers of the same loop, conditional or attention.
_OWNER_PROPERTIES = ("loop", "conditional", "attention")


@attrs.frozen(kw_only=True)
class TensorSpec:
    """A tensor as TensorRT inferred it while the network was built."""

    name: str
    shape: tuple[int, ...] | None
    """Dims with -1 where dynamic; None where TensorRT could not report a shape (loop bodies)."""
    dtype: torch.dtype | str
    """torch dtype, or the ``DataType`` name where torch has none (``"INT4"``, ``"FP4"``)."""


@attrs.frozen(kw_only=True)
class LayerSnapshot:
    """One layer: its type, wiring, parameters and weights."""

    index: int
    name: str
    type: str
    """``trt.LayerType`` member name, e.g. ``"CONVOLUTION"``."""
    inputs: tuple[str | None, ...]
    """Producer tensor names; None for an unset optional input."""
    outputs: tuple[TensorSpec, ...]
    params: dict[str, Any] = attrs.field(factory=dict)
    """Typed-subclass properties as plain values; owners (``loop`` ...) as their names."""
    weights: dict[str, np.ndarray] = attrs.field(factory=dict)
    """``trt.Weights`` / numpy properties (``kernel``, ``bias``, ``weights`` ...) as numpy copies."""


@attrs.frozen(kw_only=True)
class NetworkSnapshot:
    """Everything the reference runtime needs from a network, free of TensorRT objects."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]
    layers: tuple[LayerSnapshot, ...]

    def layer_counts(self) -> dict[str, int]:
        """How many layers of each type the network holds (for reports)."""
        counts: dict[str, int] = {}
        for layer in self.layers:
            counts[layer.type] = counts.get(layer.type, 0) + 1
        return counts

    def layer_operations(self) -> frozenset[str]:
        """The distinct ``layer_operation`` labels of the network's layers."""
        return frozenset(layer_operation(layer) for layer in self.layers)


# What "operation" means per layer type: the parameters that select WHICH function the layer
# computes (not sizes, axes or weights). A layer type absent here computes one function.
_OPERATION_PARAMS = {
    "ACTIVATION": ("type",), "UNARY": ("op",), "ELEMENTWISE": ("op",), "REDUCE": ("op",),
    "TOPK": ("op",), "SCATTER": ("mode",), "SLICE": ("mode",), "FILL": ("operation",),
    "SCALE": ("mode",), "TRIP_LIMIT": ("kind",), "LOOP_OUTPUT": ("kind",),
    "KV_CACHE_UPDATE": ("cache_mode",), "CAST": ("to_type",),
    "MATRIX_MULTIPLY": ("op0", "op1"), "GRID_SAMPLE": ("interpolation_mode", "sample_mode"),
    "PLUGIN_V2": ("plugin_name",), "PLUGIN_V3": ("plugin_name",),
    "ATTENTION_INPUT": ("attention.norm_op",), "ATTENTION_OUTPUT": ("attention.norm_op",),
}


def layer_operation(layer: LayerSnapshot) -> str:
    """``"TYPE/OPERATION"`` (``"UNARY/ASIN"``, ``"RESIZE/CUBIC+ALIGN_CORNERS+A=-0.75"``), or just
    ``"TYPE"`` for layer types that compute one function (``"SHUFFLE"``, ``"CONVOLUTION"``).

    The one place that defines what counts as a distinct operation of a layer type, for proving
    each one against ONNX's conformance cases: the parameters in ``_OPERATION_PARAMS`` (joined
    with ``+``; dtypes by torch name, so ``CAST/float16`` names the target type), plus flags that
    change the function computed: pooling's padding count and ceil rounding, cumulative's
    exclusive/reverse, gather's element-wise (batch) dims, resize's coordinate transformation,
    rounding and cubic coefficient, grid sample's and attention's corner/causal switches,
    normalization's groups, a reversed loop iterator, interleaved rotary embedding."""
    p = layer.params
    parts = [_label(p.get(name)) for name in _OPERATION_PARAMS.get(layer.type, ()) if name in p]
    if layer.type == "POOLING":
        parts.append(_label(p.get("type")))
        padded = any(p.get("pre_padding") or ()) or any(p.get("post_padding") or ())
        if p.get("type") != "MAX" and padded and not p.get("average_count_excludes_padding", True):
            parts.append("COUNT_PADDING")
        if p.get("padding_mode") == "EXPLICIT_ROUND_UP":
            parts.append("CEIL")
        elif p.get("padding_mode", "EXPLICIT_ROUND_DOWN") != "EXPLICIT_ROUND_DOWN":
            parts.append(_label(p.get("padding_mode")))
    elif layer.type == "CUMULATIVE":
        parts += [_label(p.get("op"))] + [flag.upper() for flag in ("exclusive", "reverse") if p.get(flag)]
    elif layer.type == "GATHER":
        parts.append(_label(p.get("mode")))
        if p.get("num_elementwise_dims"):
            parts.append(f"BATCH_DIMS={p['num_elementwise_dims']}")
    elif layer.type == "RESIZE":
        mode = p.get("resize_mode")
        parts += [_label(mode), _label(p.get("coordinate_transformation"))]
        if mode == "NEAREST":
            parts.append(_label(p.get("nearest_rounding")))
        if mode == "CUBIC":
            parts.append(f"A={p.get('cubic_coeff', 0.0):g}")
            if p.get("exclude_outside"):
                parts.append("EXCLUDE_OUTSIDE")
    elif layer.type == "GRID_SAMPLE" and p.get("align_corners"):
        parts.append("ALIGN_CORNERS")
    elif layer.type in ("ATTENTION_INPUT", "ATTENTION_OUTPUT"):
        if p.get("attention.causal"):  # the alignment is part of the function: torch's is UPPER_LEFT
            parts.append(_label(p.get("attention.causal_kind", "CAUSAL")))
        if p.get("attention.has_mask"):
            parts.append("MASK")
    elif layer.type == "NORMALIZATION" and (p.get("num_groups") or 1) > 1:
        parts.append("GROUPS")
    elif layer.type == "ITERATOR" and p.get("reverse"):
        parts.append("REVERSE")
    elif layer.type == "ROTARY_EMBEDDING" and p.get("interleaved"):
        parts.append("INTERLEAVED")
    return "/".join([layer.type, "+".join(parts)]) if parts else layer.type


def _label(value: Any) -> str:
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    return str(value)


def snapshot_network(network, private: Mapping[int, np.ndarray] | None = None) -> NetworkSnapshot:
    """Copy ``network`` (a live ``trt.INetworkDefinition``) into a ``NetworkSnapshot``.

    Weights are copied out of TensorRT, whose views die with the network, except those found
    in ``private`` (address -> array): arrays the conversion made and nothing else holds, which
    the snapshot keeps by reference (half of a compile's copying, for a model whose weights
    the conversion folds or transposes)."""
    private = private or {}
    inputs = tuple(_tensor_spec(network.get_input(i)) for i in range(network.num_inputs))
    outputs = tuple(network.get_output(i).name for i in range(network.num_outputs))
    layers = tuple(_layer_snapshot(i, network.get_layer(i), private) for i in range(network.num_layers))
    return NetworkSnapshot(inputs=inputs, outputs=outputs, layers=layers)


def _tensor_spec(tensor) -> TensorSpec:
    try:
        shape = tuple(int(d) for d in tensor.shape)
    except (RuntimeError, ValueError):  # TensorRT cannot size some tensors inside loops
        shape = None
    return TensorSpec(name=tensor.name, shape=shape, dtype=_dtype(tensor.dtype))


def _layer_snapshot(index: int, layer, private: Mapping[int, np.ndarray]) -> LayerSnapshot:
    type_name = layer.type.name
    inputs = tuple(None if t is None else t.name
                   for t in (layer.get_input(j) for j in range(layer.num_inputs)))
    outputs = tuple(_tensor_spec(layer.get_output(k)) for k in range(layer.num_outputs))
    params: dict[str, Any] = {}
    weights: dict[str, np.ndarray] = {}
    typed = _typed_class(type_name)
    if typed is not None:
        layer.__class__ = typed
        for prop in _typed_properties(typed):
            try:
                value = getattr(layer, prop)
            except (RuntimeError, ValueError, TypeError):  # unset in this mode (e.g. dynamic)
                continue
            if prop in _OWNER_PROPERTIES:
                params[prop] = value.name
                if prop == "attention":
                    params.update(_attention_params(value))
            elif isinstance(value, (np.ndarray, trt.Weights)):
                weights[prop] = _weights_of(value, private)
            else:
                params[prop] = _plain(value)
    if type_name in ("PLUGIN_V2", "PLUGIN_V3"):
        params["plugin_name"] = _plugin_name(layer)
    return LayerSnapshot(index=index, name=layer.name, type=type_name, inputs=inputs,
                         outputs=outputs, params=params, weights=weights)


def _plugin_name(layer) -> str:
    """The name a plugin layer's creator registered (what ``LayerEvaluatorSpec`` keys on)."""
    plugin = layer.plugin
    if hasattr(plugin, "plugin_type"):  # IPluginV2
        return plugin.plugin_type
    return plugin.get_capability_interface(trt.PluginCapabilityType.CORE).plugin_name


@functools.cache
def _typed_class(type_name: str):
    """The ``trt.I*Layer`` subclass for a ``LayerType`` name, or None when TensorRT has none."""
    wanted = _CLASS_OVERRIDES.get(type_name)
    if wanted is None:
        key = type_name.replace("_", "").lower()
        for attr in dir(load()):
            if attr.startswith("I") and attr.endswith("Layer") and attr[1:-5].lower() == key:
                wanted = attr
                break
    return getattr(trt, wanted, None) if wanted else None


@functools.cache
def _typed_properties(typed) -> tuple[str, ...]:
    """Properties the typed class adds to ``ILayer`` (incl. its own ``type``, e.g. pooling)."""
    base = trt.ILayer
    return tuple(sorted(
        name for name in dir(typed)
        if not name.startswith("_") and isinstance(getattr(typed, name), property)
        and getattr(typed, name) is not getattr(base, name, None)
    ))


def _attention_params(attention) -> dict[str, Any]:
    """The owning ``IAttention``'s settings, prefixed ``attention.``: its causal kind, norm op
    ... as plain values, and ``attention.has_mask`` (the mask itself is a tensor, wired in as
    the input layer's fourth input)."""
    mask = attention.mask
    out = {"attention.has_mask": mask is not None,
           "attention.mask": None if mask is None else mask.name}
    for name in dir(type(attention)):
        if name.startswith("_") or not isinstance(getattr(type(attention), name), property):
            continue
        if name == "mask":
            continue
        try:
            out[f"attention.{name}"] = _plain(getattr(attention, name))
        except (RuntimeError, ValueError, TypeError):
            continue
    return out


def _weights_of(value, private: Mapping[int, np.ndarray]) -> np.ndarray:
    view = value if isinstance(value, np.ndarray) else value.numpy()
    array = private.get(view.ctypes.data)
    if array is not None and array.dtype == view.dtype and array.size == view.size:
        return array.reshape(view.shape)
    return np.array(view, copy=True)


def _dtype(trt_dtype) -> torch.dtype | str:
    try:
        return to_torch_dtype(trt_dtype)
    except TypeError:
        return trt_dtype.name


def _plain(value: Any) -> Any:
    """A TensorRT property value as a picklable Python value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, trt.DataType):
        return _dtype(value)
    if isinstance(value, enum.Enum) or hasattr(value, "__members__") or hasattr(type(value), "__members__"):
        return value.name
    if isinstance(value, (tuple, list)) or hasattr(value, "__len__"):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)
