"""In-place steps: an output written over its dying input, bit-exact with TFLite Micro,
and arenas below the live-tensor bound of separate buffers on the MLPerf Tiny models.

Each model here is built so the planner takes the in-place offer at a known step
(checked on the plan), then our generated C runs on the host against the TFLM
reference with random int8 inputs.
"""

import numpy as np
import pytest
import tensorflow as tf

from harness import assert_bit_exact, convert_int8
from tinyml_ptq.codegen import generate_model_sources
from tinyml_ptq.planner import plan_memory
from tinyml_ptq.tflite_reader import parse_tflite


def _plan(model: bytes):
    sources = generate_model_sources(parse_tflite(model), model)
    return sources, {sources.op_names[i] for i in sources.plan.inplace_steps}


def _conv_layer(kind, rng, in_channels, filters, kernel, strides, padding, dilation=(1, 1), multiplier=1):
    if kind == "depthwise":
        w = rng.normal(0, 0.5, size=(*kernel, in_channels, multiplier)).astype(np.float32)
        return lambda x: tf.nn.depthwise_conv2d(x, w, strides=(1, *strides, 1), padding=padding,
                                                dilations=dilation)
    w = rng.normal(0, 0.5, size=(*kernel, in_channels, filters)).astype(np.float32)
    b = rng.normal(0, 0.1, size=filters).astype(np.float32)
    return lambda x: tf.nn.conv2d(x, w, strides=strides, padding=padding, dilations=dilation) + b


# (kind, input HxWxC, filters or depth multiplier, kernel, strides, padding, dilation, ring order)
CONV_CASES = [
    ("depthwise", (12, 10, 8), 1, (3, 3), (1, 1), "SAME", (1, 1), "top-down"),  # MobileNet / DS-CNN block
    ("depthwise", (15, 13, 6), 1, (3, 3), (2, 2), "SAME", (1, 1), "top-down"),
    ("depthwise", (17, 15, 4), 1, (3, 2), (1, 1), "VALID", (2, 3), "top-down"),
    ("depthwise", (10, 9, 3), 2, (3, 3), (1, 1), "SAME", (1, 1), "bottom-up"),  # output twice the input
    ("conv", (12, 12, 8), 16, (1, 1), (1, 1), "VALID", (1, 1), "bottom-up"),  # pointwise expansion
    ("conv", (9, 11, 16), 8, (1, 1), (1, 1), "VALID", (1, 1), "top-down"),  # pointwise reduction
    ("conv", (10, 10, 8), 8, (3, 3), (1, 1), "SAME", (1, 1), "top-down"),  # ResNet block
    ("conv", (16, 7, 12), 5, (4, 1), (2, 1), "VALID", (1, 1), "top-down"),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}-{'x'.join(map(str, c[1]))}-k{c[3][0]}{c[3][1]}"
                         f"-s{c[4][0]}-{c[5]}-d{c[6][0]}{c[6][1]}-{c[7]}")
def test_convolution_over_its_own_input_is_bit_exact(case):
    kind, shape, filters, kernel, strides, padding, dilation, order = case
    rng = np.random.default_rng(len(CONV_CASES) + shape[0])
    layer = _conv_layer(kind, rng, shape[2], filters, kernel, strides, padding, dilation, multiplier=filters)
    model = convert_int8(layer, [shape])
    opcode = "DEPTHWISE_CONV_2D" if kind == "depthwise" else "CONV_2D"
    sources, inplace_ops = _plan(model)
    assert inplace_ops == {opcode}
    step = next(i for i in sources.plan.inplace_steps)
    ring = next(s for s in sources.steps[step].inplace.structs if s.name == "rows").initializer
    assert ring.endswith(", 1}" if order == "bottom-up" else ", 0}"), ring
    # Shared buffer plus the ring: less than two separate buffers.
    separate = plan_memory(parse_tflite(model), sources.steps, inplace=False)
    assert sources.arena_bytes < separate.arena_bytes
    assert_bit_exact(model, samples=6, expect_ops=[opcode])


def test_input_read_later_is_not_overwritten():
    """A residual block: the depthwise input is read again by the ADD, so the depthwise
    step keeps separate buffers while the ADD (whose inputs both die) runs in place."""
    rng = np.random.default_rng(3)
    depthwise = _conv_layer("depthwise", rng, 6, 1, (3, 3), (1, 1), "SAME")
    model = convert_int8(lambda x: tf.nn.relu(depthwise(x)) + x, [(9, 8, 6)])
    sources, inplace_ops = _plan(model)
    assert "DEPTHWISE_CONV_2D" in sources.op_names and "DEPTHWISE_CONV_2D" not in inplace_ops
    assert "ADD" in inplace_ops
    assert_bit_exact(model, samples=6, expect_ops=["DEPTHWISE_CONV_2D", "ADD"])


def test_elementwise_chain_runs_in_place():
    """Unary and binary elementwise kernels writing over an input that dies at the step."""
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.5, size=(1, 1, 8, 8)).astype(np.float32)

    def chain(x):
        y = tf.nn.conv2d(x, w, strides=1, padding="VALID")
        a = tf.math.tanh(y)
        b = tf.math.sigmoid(y)
        c = tf.nn.leaky_relu(a * b, alpha=0.2)
        d = c - tf.nn.relu6(b * 4.0)
        return tf.nn.relu(d + y)

    model = convert_int8(chain, [(6, 5, 8)], calib_range=(-2.0, 2.0))
    sources, inplace_ops = _plan(model)
    assert {"MUL", "LEAKY_RELU", "SUB", "ADD"} <= inplace_ops, (sources.op_names, inplace_ops)
    assert_bit_exact(model, samples=8, expect_ops=["TANH", "LOGISTIC", "MUL", "LEAKY_RELU", "SUB", "ADD"])


@pytest.mark.parametrize("name", ["kws_ref_model_int8", "vww_96_int8", "resnet8_cifar10_int8"])
def test_mlperf_models_in_place_are_bit_exact(shared_models, name):
    model = (shared_models / f"{name}.tflite").read_bytes()
    sources = assert_bit_exact(model, samples=3)
    assert sources.plan.inplace_steps
    assert sources.arena_bytes < sources.live_lower_bound


@pytest.mark.parametrize("name", ["kws_ref_model_int8", "vww_96_int8", "resnet8_cifar10_int8", "ad01_int8"])
def test_mlperf_arena_at_or_below_the_live_tensor_bound(shared_models, name):
    model = (shared_models / f"{name}.tflite").read_bytes()
    graph = parse_tflite(model)
    sources = generate_model_sources(graph, model)
    separate = plan_memory(graph, sources.steps, inplace=False)
    assert separate.arena_bytes == sources.live_lower_bound
    assert sources.arena_bytes <= sources.live_lower_bound
    if name in ("kws_ref_model_int8", "vww_96_int8"):
        assert sources.arena_bytes < sources.live_lower_bound
