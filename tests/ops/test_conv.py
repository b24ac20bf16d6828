"""CONV_2D and DEPTHWISE_CONV_2D bit-exactness against the TFLite Micro reference, randomized.

Each case draws its geometry (kernel, stride or dilation, padding, image size,
channels, groups / depth multiplier), weight magnitudes per channel, calibration
range and fused activation from a fixed seed, converts through the real
converter, checks the converter kept what was drawn, then compares bytes.
"""

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import MalformedOperator, UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import assert_bit_exact, convert_int8, only_op, with_output_scale

CASES = 16

# name, TF function, TFLite fused_activation_function the converter should fuse it into
ACTIVATIONS = [
    ("none", lambda y: y, 0),
    ("relu", tf.nn.relu, 1),
    ("relu6", tf.nn.relu6, 3),
    ("clip", lambda y: tf.clip_by_value(y, -1.0, 1.0), 2),
]


def draw_geometry(rng, case, allow_dilation=True):
    """Kernel, stride, dilation, padding and an image size that is valid for them."""
    if case % 7 == 6:
        kernel = (10, 4)  # tall non-square kernel
    else:
        kernel = tuple(int(k) for k in rng.integers(1, 6, size=2))
    if allow_dilation and case % 3 == 2:
        stride, dilation = (1, 1), tuple(int(d) for d in rng.integers(1, 4, size=2))
    else:
        stride, dilation = tuple(int(s) for s in rng.integers(1, 4, size=2)), (1, 1)
    padding = "SAME" if case % 2 == 0 else "VALID"
    effective = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    low = effective if padding == "VALID" else [1, 1]
    image = tuple(int(rng.integers(lo, 18)) for lo in low)
    return kernel, stride, dilation, padding, image


def draw_calibration(rng):
    """A calibration range from tiny to large, not centred on zero."""
    scale = float(10 ** rng.uniform(-2, 1.5))
    offset = float(rng.uniform(-0.7, 0.7)) * scale
    return offset - scale, offset + scale


def channel_weights(rng, shape, channel_axis):
    """Normal weights whose magnitude differs per output channel by up to ~300x."""
    magnitude = 10 ** rng.uniform(-2, 0.5, size=shape[channel_axis])
    broadcast = [1] * len(shape)
    broadcast[channel_axis] = shape[channel_axis]
    return (rng.normal(size=shape) * magnitude.reshape(broadcast)).astype(np.float32)




def assert_options(graph, op, stride, dilation, padding, fused, per_channel):
    """The converter kept the geometry, activation and quantization granularity drawn."""
    options = op.options
    assert (options["stride_h"], options["stride_w"]) == stride
    assert (options["dilation_h_factor"], options["dilation_w_factor"]) == dilation
    assert options["padding"] == {"SAME": 0, "VALID": 1}[padding]
    assert options["fused_activation_function"] == fused
    filter_quant = graph.tensors[op.inputs[1]].quantization
    assert filter_quant.per_channel == per_channel


@pytest.mark.parametrize("case", range(CASES))
def test_conv2d_random(case):
    rng = np.random.default_rng(2000 + case)
    kernel, stride, dilation, padding, (height, width) = draw_geometry(rng, case)
    groups = 2 if case % 5 == 4 else 1
    group_depth = int(rng.integers(1, 13))
    filters_per_group = int(rng.integers(1, 13))
    in_channels, out_channels = group_depth * groups, filters_per_group * groups
    per_channel = case % 4 != 1 and out_channels > 1
    name, activation, fused = ACTIVATIONS[case % len(ACTIVATIONS)]
    use_bias = case % 6 != 5

    weights = channel_weights(rng, (*kernel, group_depth, out_channels), channel_axis=3)
    bias = rng.normal(size=out_channels).astype(np.float32) * float(rng.uniform(0.1, 3.0))

    def build(x):
        y = tf.nn.conv2d(x, weights, strides=[1, *stride, 1], padding=padding, dilations=[1, *dilation, 1])
        return activation(tf.nn.bias_add(y, bias) if use_bias else y)

    model = convert_int8(build, [(height, width, in_channels)], per_tensor=not per_channel,
                         calib_range=draw_calibration(rng), seed=case)
    graph, op = only_op(model, "CONV_2D")
    assert_options(graph, op, stride, dilation, padding, fused, per_channel)
    assert graph.tensors[op.inputs[1]].shape == (out_channels, *kernel, group_depth)
    assert_bit_exact(model, samples=6, seed=case, expect_ops={"CONV_2D"})


@pytest.mark.parametrize("case", range(CASES))
def test_depthwise_conv2d_random(case):
    rng = np.random.default_rng(3000 + case)
    kernel, stride, dilation, padding, (height, width) = draw_geometry(rng, case)
    in_channels = int(rng.integers(1, 25))
    multiplier = int(rng.integers(1, 4))
    out_channels = in_channels * multiplier
    per_channel = case % 4 != 1 and out_channels > 1
    name, activation, fused = ACTIVATIONS[(case + 1) % len(ACTIVATIONS)]
    use_bias = case % 6 != 5

    weights = channel_weights(rng, (*kernel, in_channels * multiplier), channel_axis=2)
    weights = weights.reshape(*kernel, in_channels, multiplier)
    bias = rng.normal(size=out_channels).astype(np.float32) * float(rng.uniform(0.1, 3.0))

    def build(x):
        y = tf.nn.depthwise_conv2d(x, weights, strides=[1, *stride, 1], padding=padding, dilations=dilation)
        return activation(tf.nn.bias_add(y, bias) if use_bias else y)

    model = convert_int8(build, [(height, width, in_channels)], per_tensor=not per_channel,
                         calib_range=draw_calibration(rng), seed=case)
    graph, op = only_op(model, "DEPTHWISE_CONV_2D")
    assert_options(graph, op, stride, dilation, padding, fused, per_channel)
    assert op.options["depth_multiplier"] == multiplier
    assert graph.tensors[op.inputs[1]].shape == (1, *kernel, out_channels)
    assert_bit_exact(model, samples=6, seed=case, expect_ops={"DEPTHWISE_CONV_2D"})


@pytest.mark.parametrize("per_tensor", [False, True])
def test_conv_depthwise_conv_chain(per_tensor):
    """Keras conv -> depthwise -> pointwise conv, the MobileNet block, with strides and activations."""
    rng = np.random.default_rng(4000 + per_tensor)
    model_layers = tf.keras.Sequential([
        tf.keras.Input((15, 13, 3), batch_size=1),
        tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6"),
        tf.keras.layers.DepthwiseConv2D((3, 5), depth_multiplier=2, padding="same", activation="relu"),
        tf.keras.layers.Conv2D(5, 1, padding="valid"),
    ])
    model_layers.set_weights([w + rng.normal(scale=0.3, size=w.shape).astype(np.float32)
                              for w in model_layers.get_weights()])
    model = convert_int8(lambda x: model_layers(x), [(15, 13, 3)], per_tensor=per_tensor,
                         calib_range=(-2.0, 3.0), seed=per_tensor)
    sources = assert_bit_exact(model, samples=8, seed=7, expect_ops={"CONV_2D", "DEPTHWISE_CONV_2D"})
    assert sources.op_names == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]


@pytest.mark.parametrize("opcode", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_multiplier_uses_double_scale_product(opcode):
    """TFLM forms input_scale * filter_scale in double for convolutions (and FULLY_CONNECTED). With the output scale set to f32(input_scale * filter_scale) * 2^7, the float
    product gives exactly 2^-7 and exact ties at every accumulator = 64 mod 128; the double
    product is a few LSB off and breaks those ties one way, so only the double path matches."""
    from tinyml_ptq.compiler import quant_math

    rng = np.random.default_rng(6)
    if opcode == "CONV_2D":
        weights = rng.normal(size=(1, 1, 1, 3)).astype(np.float32)
        build = lambda x: tf.nn.conv2d(x, weights, 1, "VALID")  # noqa: E731
    else:
        weights = rng.normal(size=(1, 1, 1, 3)).astype(np.float32)
        build = lambda x: tf.nn.depthwise_conv2d(x, weights, [1, 1, 1, 1], "VALID")  # noqa: E731
    model = convert_int8(build, [(16, 16, 1)], per_tensor=True, calib_range=(-3.0, 5.0))
    graph, op = only_op(model, opcode)
    input_scale = graph.tensors[op.inputs[0]].scale
    filter_scale = graph.tensors[op.inputs[1]].scale
    float_product = quant_math.f32(input_scale * filter_scale)
    output_scale = float_product * 2 ** 7
    assert quant_math.quantize_multiplier(float_product / output_scale) != quant_math.quantize_multiplier(
        input_scale * filter_scale / output_scale), "scales drawn do not separate float from double"

    edited = with_output_scale(model, output_scale)
    inputs = np.stack([rng.permutation(256) - 128 for _ in range(4)]).astype(np.int8)
    assert_bit_exact(edited, inputs=inputs, expect_ops={opcode})


@pytest.mark.parametrize("padding,in_size,filter_size,stride,dilation,expected", [
    ("SAME", 7, 4, 1, 1, (7, 1)),     # total padding 3: one before, two after
    ("SAME", 8, 3, 2, 1, (4, 0)),     # total padding 1 goes entirely after
    ("SAME", 5, 3, 1, 3, (5, 3)),     # dilated window of 7
    ("SAME", 1, 5, 3, 1, (1, 2)),
    ("VALID", 10, 3, 3, 1, (3, 0)),
    ("VALID", 9, 3, 1, 4, (1, 0)),
])
def test_output_size_and_padding(padding, in_size, filter_size, stride, dilation, expected):
    from tinyml_ptq.compiler.lowering.common import output_size_and_padding

    assert output_size_and_padding({"SAME": 0, "VALID": 1}[padding], in_size, filter_size, stride,
                                   dilation) == expected


@pytest.fixture(scope="module")
def small_conv_graph():
    weights = np.random.default_rng(5).normal(size=(3, 3, 2, 4)).astype(np.float32)
    model = convert_int8(lambda x: tf.nn.conv2d(x, weights, 1, "SAME"), [(5, 5, 2)])
    return model


def test_unsupported_fused_activation(small_conv_graph):
    graph = parse_tflite(small_conv_graph)
    graph.operators[0].options["fused_activation_function"] = 4  # TANH
    with pytest.raises(UnsupportedOperator, match="fused activation TANH"):
        lower_graph(graph)


def test_unsupported_asymmetric_filter(small_conv_graph):
    graph = parse_tflite(small_conv_graph)
    conv = graph.operators[0]
    quant = graph.tensors[conv.inputs[1]].quantization
    quant.zero_point = np.full_like(quant.zero_point, 3)
    with pytest.raises(UnsupportedOperator, match="nonzero zero points"):
        lower_graph(graph)


def test_inconsistent_output_shape_is_refused(small_conv_graph):
    graph = parse_tflite(small_conv_graph)
    graph.operators[0].options["padding"] = 1  # VALID would give 3x3, the tensor says 5x5
    with pytest.raises(MalformedOperator, match=r"VALID padding gives a 3x3 output .*; the model is inconsistent"):
        lower_graph(graph)
