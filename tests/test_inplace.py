"""In-place steps: an output written over its dying input, bit-exact with TFLite Micro,
and arenas below the live-tensor bound of separate buffers on the MLPerf Tiny models.

Each model here is built so the planner takes the in-place offer at a known step
(checked on the plan), then our generated C runs on the host against the TFLM
reference with random int8 inputs.
"""

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.codegen import generate_model_sources
from tinyml_ptq.compiler.planner import plan_memory
from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.interpreters.reference import ReferenceInterpreter
from tinyml_ptq.pipeline.hostrun import build_host_runner, run_host

from harness import assert_bit_exact, convert_int8


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


# The same in-place steps on the DSP kernels (`--kernels dsp`, the default on M4/M7/M33 boards): CONV_2D
# row by row under the same ring schedule, pointwise convolutions a block of pixels at a time, the
# depthwise kernel over its input as it is (it unpacks every input line before outputs land on it),
# or with a depth multiplier above 1 row by row too.
# Natively the DSP kernels build with portable C for the instructions; slow, on the emulated M4.

def _dsp_sources(model: bytes):
    sources = generate_model_sources(parse_tflite(model), model, kernels="dsp")
    return sources, {sources.op_names[i] for i in sources.plan.inplace_steps}


def _dsp_host_outputs(model: bytes, sources, samples: int, seed: int = 0):
    ref = ReferenceInterpreter(model)
    x = np.random.default_rng(seed).integers(-128, 128, size=(samples, *ref.input.shape[1:]), dtype=np.int8)
    expected = np.asarray(ref.invoke_many(x)).reshape(samples, -1)
    with tempfile.TemporaryDirectory(prefix="tp-inplace-dsp-") as tmp:
        binary = build_host_runner(sources, Path(tmp), x[0].size, expected.shape[1])
        return run_host(binary, x.reshape(samples, -1)), expected


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}-{'x'.join(map(str, c[1]))}-k{c[3][0]}{c[3][1]}"
                         f"-s{c[4][0]}-{c[5]}-d{c[6][0]}{c[6][1]}-{c[7]}")
def test_dsp_convolution_over_its_own_input_is_bit_exact(case):
    kind, shape, filters, kernel, strides, padding, dilation, _ = case
    rng = np.random.default_rng(len(CONV_CASES) + shape[0])
    model = convert_int8(_conv_layer(kind, rng, shape[2], filters, kernel, strides, padding, dilation,
                                     multiplier=filters), [shape])
    sources, inplace_ops = _dsp_sources(model)
    assert inplace_ops == {"DEPTHWISE_CONV_2D" if kind == "depthwise" else "CONV_2D"}
    step = sources.steps[next(iter(sources.plan.inplace_steps))]
    if kind == "conv":
        assert step.inplace.header == "tp_dsp_inplace.h", step.inplace.call
    elif filters == 1:  # the DSP depthwise kernel itself runs over its input
        assert step.inplace.call == "" and "dsp" in step.call, step.call
    else:  # a multiplier above 1: a DSP kernel row by row through the ring
        assert step.inplace.header == "tp_dsp_inplace.h" and "_dsp" in step.inplace.call, step.inplace.call
    separate = plan_memory(parse_tflite(model), sources.steps, inplace=False)
    assert sources.arena_bytes < separate.arena_bytes
    ours, expected = _dsp_host_outputs(model, sources, samples=6)
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("name", ["kws_ref_model_int8", "vww_96_int8", "resnet8_cifar10_int8", "ad01_int8"])
def test_mlperf_dsp_arena_and_in_place_bit_exact(shared_models, name):
    model = (shared_models / f"{name}.tflite").read_bytes()
    sources, _ = _dsp_sources(model)
    separate = plan_memory(parse_tflite(model), sources.steps, inplace=False)
    assert sources.arena_bytes <= separate.lower_bound
    if name in ("kws_ref_model_int8", "vww_96_int8"):
        assert sources.arena_bytes < separate.lower_bound
        assert any(sources.steps[i].inplace.header == "tp_dsp_inplace.h" for i in sources.plan.inplace_steps)
    ours, expected = _dsp_host_outputs(model, sources, samples=2)
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_dsp_convolutions_in_place_on_emulated_cortex_m4(tmp_path):
    """The cases above with the real DSP instructions (mps2-an386, dsp kernels, planned in place)."""
    from test_dsp_kernels import run_on_board

    failures = {}
    for n, (kind, shape, filters, kernel, strides, padding, dilation, _) in enumerate(CONV_CASES):
        rng = np.random.default_rng(len(CONV_CASES) + shape[0])
        model = convert_int8(_conv_layer(kind, rng, shape[2], filters, kernel, strides, padding, dilation,
                                         multiplier=filters), [shape])
        assert _dsp_sources(model)[0].plan.inplace_steps
        if (exact := run_on_board(model, "mps2-an386", tmp_path, f"case{n}")) != 1.0:
            failures[n] = exact
    assert not failures, failures
