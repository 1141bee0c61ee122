"""NetworkSnapshot: a real network built through TensorRT's API, read back and evaluated."""
from __future__ import annotations

import pickle

import attrs
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from plugtrt.errors import ReferenceMismatchError, UnsupportedLayerError
from plugtrt.network_snapshot import NetworkSnapshot, layer_operation, snapshot_network
from plugtrt.runtimes.reference import ReferenceProgram, evaluate
from plugtrt.trt_adapter import to_trt_dtype, trt


@pytest.fixture(scope="module")
def built():
    """conv(3x3, pad 1) -> relu -> transpose+reshape -> + constant, built for real."""
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    addend = rng.standard_normal((1, 4 * 5 * 5)).astype(np.float32)
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", to_trt_dtype(torch.float32), (1, 2, 5, 5))
    conv = network.add_convolution_nd(x, 4, (3, 3), trt.Weights(kernel), trt.Weights(bias))
    conv.padding_nd = (1, 1)
    relu = network.add_activation(conv.get_output(0), trt.ActivationType.RELU)
    shuffle = network.add_shuffle(relu.get_output(0))
    shuffle.first_transpose = trt.Permutation([0, 2, 3, 1])
    shuffle.reshape_dims = (1, -1)
    const = network.add_constant((1, 4 * 5 * 5), trt.Weights(addend))
    total = network.add_elementwise(shuffle.get_output(0), const.get_output(0),
                                    trt.ElementWiseOperation.SUM)
    total.get_output(0).name = "y"
    network.mark_output(total.get_output(0))
    config = builder.create_builder_config()
    assert builder.build_serialized_network(network, config) is not None
    snapshot = snapshot_network(network)
    return snapshot, (kernel, bias, addend)


def _walk(value):
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _walk(item)
    elif attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            yield from _walk(getattr(value, field.name))


def test_snapshot_holds_no_tensorrt_objects_and_pickles(built):
    snapshot, _ = built
    modules = {type(v).__module__.split(".")[0] for v in _walk(snapshot)}
    assert not modules & {"tensorrt", "tensorrt_rtx"}, modules
    again = pickle.loads(pickle.dumps(snapshot))
    assert isinstance(again, NetworkSnapshot)
    assert [layer.type for layer in again.layers] == ["CONVOLUTION", "ACTIVATION", "SHUFFLE",
                                                      "CONSTANT", "ELEMENTWISE"]


def test_snapshot_records_parameters_and_weight_copies(built):
    snapshot, (kernel, bias, _) = built
    conv = snapshot.layers[0]
    assert conv.params["padding_nd"] == (1, 1) and conv.params["num_output_maps"] == 4
    np.testing.assert_array_equal(conv.weights["kernel"].reshape(kernel.shape), kernel)
    np.testing.assert_array_equal(conv.weights["bias"], bias)
    assert snapshot.layers[1].params["type"] == "RELU"
    assert snapshot.inputs[0].shape == (1, 2, 5, 5) and snapshot.outputs == ("y",)
    assert snapshot.layers[-1].outputs[0].shape == (1, 100)


def test_reference_matches_torch(built):
    snapshot, (kernel, bias, addend) = built
    x = torch.randn(1, 2, 5, 5)
    want = F.relu(F.conv2d(x, torch.from_numpy(kernel), torch.from_numpy(bias), padding=1))
    want = want.permute(0, 2, 3, 1).reshape(1, -1) + torch.from_numpy(addend)
    torch.testing.assert_close(evaluate(snapshot, {"x": x})["y"], want)
    after_pickle = pickle.loads(pickle.dumps(snapshot))
    torch.testing.assert_close(ReferenceProgram(after_pickle).run({"x": x})["y"], want)


def test_wrong_inferred_shape_is_reported_at_the_layer(built):
    snapshot, _ = built
    relu = snapshot.layers[1]
    wrong = attrs.evolve(relu, outputs=(attrs.evolve(relu.outputs[0], shape=(1, 4, 5, 6)),))
    broken = attrs.evolve(snapshot, layers=(snapshot.layers[0], wrong, *snapshot.layers[2:]))
    with pytest.raises(ReferenceMismatchError, match=r"ACTIVATION.*\(1, 4, 5, 6\).*\(1, 4, 5, 5\)"):
        evaluate(broken, {"x": torch.randn(1, 2, 5, 5)})


def test_unknown_layer_type_is_unsupported(built):
    snapshot, _ = built
    plugin = attrs.evolve(snapshot.layers[1], type="PLUGIN_V3")
    broken = attrs.evolve(snapshot, layers=(snapshot.layers[0], plugin, *snapshot.layers[2:]))
    with pytest.raises(UnsupportedLayerError, match="PLUGIN_V3"):
        evaluate(broken, {"x": torch.randn(1, 2, 5, 5)})


def test_layer_operation_names_the_function_each_layer_computes(built):
    snapshot, _ = built
    assert snapshot.layer_operations() == {"CONVOLUTION", "ACTIVATION/RELU", "SHUFFLE", "CONSTANT",
                                           "ELEMENTWISE/SUM"}
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network(0)
    x = network.add_input("x", to_trt_dtype(torch.float32), (1, 1, 4, 4))
    asin = network.add_unary(x, trt.UnaryOperation.ASIN)
    resize = network.add_resize(asin.get_output(0))
    resize.shape = (1, 1, 8, 8)
    resize.resize_mode = trt.InterpolationMode.CUBIC
    resize.coordinate_transformation = trt.ResizeCoordinateTransformation.ALIGN_CORNERS
    resize.cubic_coeff = -0.75
    pool = network.add_pooling_nd(resize.get_output(0), trt.PoolingType.AVERAGE, (3, 3))
    pool.padding_nd = (1, 1)
    pool.average_count_excludes_padding = False
    pool.padding_mode = trt.PaddingMode.EXPLICIT_ROUND_UP
    cumsum = network.add_cumulative(pool.get_output(0), network.add_constant(
        (), trt.Weights(np.array(3, dtype=np.int32))).get_output(0), trt.CumulativeOperation.SUM,
        exclusive=True, reverse=False)
    half = network.add_cast(cumsum.get_output(0), to_trt_dtype(torch.float16))
    network.mark_output(half.get_output(0))
    labels = [layer_operation(layer) for layer in snapshot_network(network).layers]
    assert labels == ["UNARY/ASIN", "RESIZE/CUBIC+ALIGN_CORNERS+A=-0.75",
                      "POOLING/AVERAGE+COUNT_PADDING+CEIL", "CONSTANT", "CUMULATIVE/SUM+EXCLUSIVE",
                      "CAST/float16"]
