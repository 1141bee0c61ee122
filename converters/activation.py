"""Built-in converters for pointwise activations, as TensorRT activation layers.

relu, sigmoid, tanh, gelu (erf and tanh forms), silu (x * sigmoid(x)), hardtanh (CLIP),
leaky_relu, elu and softplus. Activation layers take floats only; an int ``relu`` is
``max(x, 0)``. Converting silu/hardtanh/leaky_relu/elu/softplus whole also keeps the core from
decomposing them.
"""
from __future__ import annotations

from collections.abc import Iterator

from plugtrt.conversion import FLOATS, INTS, activation, arg, aten, elementwise, out_dtype, typed
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec

_GELU = {"none": "GELU_ERF", "tanh": "GELU_TANH"}
_FLOAT_OK = typed(FLOATS)


def _activation(kind: str):
    def convert(ctx, node, args, kwargs):
        return activation(ctx, args[0], kind, node)
    return convert


def _relu(ctx, node, args, kwargs):
    if out_dtype(ctx, node) in FLOATS:
        return activation(ctx, args[0], "RELU", node)
    return elementwise(ctx, args[0], 0, "MAX", node, out_dtype(ctx, node), suffix="relu")


def _gelu(ctx, node, args, kwargs):
    return activation(ctx, args[0], _GELU[arg(args, kwargs, 1, "approximate", "none")], node)


def _gelu_supported(node, settings) -> bool:
    approximate = node.kwargs.get("approximate", node.args[1] if len(node.args) > 1 else "none")
    return approximate in _GELU and _FLOAT_OK(node, settings)


def _silu(ctx, node, args, kwargs):
    x = args[0]
    return elementwise(ctx, x, activation(ctx, x, "SIGMOID", node), "PROD", node, out_dtype(ctx, node))


def _hardtanh(ctx, node, args, kwargs):
    low, high = arg(args, kwargs, 1, "min_val", -1.0), arg(args, kwargs, 2, "max_val", 1.0)
    return activation(ctx, args[0], "CLIP", node, float(low), float(high))


def _hardtanh_supported(node, settings) -> bool:
    low = node.args[1] if len(node.args) > 1 else node.kwargs.get("min_val", -1.0)
    high = node.args[2] if len(node.args) > 2 else node.kwargs.get("max_val", 1.0)
    return low <= high and _FLOAT_OK(node, settings)


def _leaky_relu(ctx, node, args, kwargs):
    return activation(ctx, args[0], "LEAKY_RELU", node,
                      float(arg(args, kwargs, 1, "negative_slope", 0.01)))


def _elu(ctx, node, args, kwargs):
    return activation(ctx, args[0], "ELU", node, float(arg(args, kwargs, 1, "alpha", 1.0)))


def _elu_supported(node, settings) -> bool:
    scale = node.args[2] if len(node.args) > 2 else node.kwargs.get("scale", 1)
    input_scale = node.args[3] if len(node.args) > 3 else node.kwargs.get("input_scale", 1)
    return scale == 1 and input_scale == 1 and _FLOAT_OK(node, settings)


def _softplus(ctx, node, args, kwargs):
    beta = float(arg(args, kwargs, 1, "beta", 1.0))
    return activation(ctx, args[0], "SOFTPLUS", node, 1.0 / beta, beta)


def _softplus_supported(node, settings) -> bool:
    """TensorRT has no threshold: beyond it torch returns x, which equals softplus to within
    float32 rounding only for thresholds of about 15 and up (the default is 20)."""
    beta = node.args[1] if len(node.args) > 1 else node.kwargs.get("beta", 1.0)
    threshold = node.args[2] if len(node.args) > 2 else node.kwargs.get("threshold", 20.0)
    return beta > 0 and threshold >= 15 and _FLOAT_OK(node, settings)


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    yield ConverterSpec(name="builtin.relu", target=aten.relu.default, convert=_relu,
                        is_supported=typed(FLOATS | INTS),
                        supports_dynamic_shapes=True)
    for name, op, kind in [("sigmoid", aten.sigmoid.default, "SIGMOID"),
                           ("tanh", aten.tanh.default, "TANH")]:
        yield ConverterSpec(name=f"builtin.{name}", target=op, convert=_activation(kind),
                            is_supported=_FLOAT_OK,
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.gelu", target=aten.gelu.default, convert=_gelu,
                        is_supported=_gelu_supported,
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.silu", target=aten.silu.default, convert=_silu,
                        is_supported=_FLOAT_OK,
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.hardtanh", target=aten.hardtanh.default, convert=_hardtanh,
                        is_supported=_hardtanh_supported,
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.leaky_relu", target=aten.leaky_relu.default,
                        convert=_leaky_relu, is_supported=_FLOAT_OK,
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.elu", target=aten.elu.default, convert=_elu,
                        is_supported=_elu_supported,
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.softplus", target=aten.softplus.default, convert=_softplus,
                        is_supported=_softplus_supported,
                        supports_dynamic_shapes=True)
