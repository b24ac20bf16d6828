"""Helium (MVE) DEPTHWISE_CONV_2D, ADD/SUB, AVERAGE_POOL_2D and MAX_POOL_2D (firmware/runtime/kernels/
helium, tp_helium_dw.h, tp_helium_elementwise.h): bit-exact with TFLM on the emulated Cortex-M55
(mps3-an547), where the MVE instructions really run.

Each emulator run costs a build and a QEMU boot, so the randomized cases are chains: two
depthwise convolutions (multiplier 1: the MVE kernel; odd channel counts for its tail groups,
SAME and VALID, stride 1 and 2, dilation, per-channel and per-tensor, fused activations), a max
pool, an average pool and a residual ADD or SUB, each drawn at random. Plus the DSP tests'
depthwise shapes and a layer whose requantization shifts left (multiplier above one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ops.test_conv import ACTIVATIONS, channel_weights

from tinyml_ptq.compiler.lowering import lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import convert_int8
from test_dsp_kernels import depthwise_3x3_model, depthwise_model, needs_arm, run_on_board

BOARD = "mps3-an547"
HELIUM_KERNELS = {"tp_depthwise_conv2d_s8_helium", "tp_add_s8_helium", "tp_avg_pool_s8_helium",
                  "tp_max_pool_s8_helium"}


def _draw_depthwise(rng: np.random.Generator, channels: int, size: tuple[int, int]):
    """A depthwise layer's parameters (drawn before tracing: the build may be traced more than once)
    and the output size, VALID only where the input leaves room."""
    kernel = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    stride = [(1, 1), (2, 2), (1, 2), (2, 1)][int(rng.integers(0, 4))]
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if stride == (1, 1) else (1, 1)
    reach = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    valid = rng.integers(0, 2) == 1 and all(n >= r + 2 for n, r in zip(size, reach))
    out = tuple(-(-(n - r + 1 if valid else n) // s) for n, r, s in zip(size, reach, stride))
    weights = channel_weights(rng, (*kernel, channels), channel_axis=2)[..., None]
    bias = rng.normal(size=channels).astype(np.float32)
    _, activation, _ = ACTIVATIONS[int(rng.integers(0, len(ACTIVATIONS)))]

    def layer(x):
        y = tf.nn.depthwise_conv2d(x, weights, strides=[1, *stride, 1], padding="VALID" if valid else "SAME",
                                   dilations=dilation)
        return activation(tf.nn.bias_add(y, bias))

    return layer, out


def _draw_pool(rng: np.random.Generator, cls, size: tuple[int, int]):
    pool = tuple(int(v) for v in rng.integers(1, 4, size=2))
    strides = tuple(int(v) for v in rng.integers(1, 3, size=2))
    valid = rng.integers(0, 2) == 1 and all(n >= p for n, p in zip(size, pool))
    out = tuple(-(-(n - p + 1 if valid else n) // s) for n, p, s in zip(size, pool, strides))
    return cls(pool_size=pool, strides=strides, padding="valid" if valid else "same"), out


def chain_model(case: int) -> bytes:
    """depthwise -> depthwise -> max pool -> average pool -> ADD or SUB with a rescaled copy."""
    rng = np.random.default_rng(12000 + case)
    channels = [3, 13, 8, 21, 33, 16][case % 6]
    size = tuple(int(v) for v in rng.integers(14, 28, size=2))
    first, size1 = _draw_depthwise(rng, channels, size)
    second, size2 = _draw_depthwise(rng, channels, size1)
    max_pool, size3 = _draw_pool(rng, tf.keras.layers.MaxPooling2D, size2)
    avg_pool, _ = _draw_pool(rng, tf.keras.layers.AveragePooling2D, size3)
    gain = float(rng.uniform(1.5, 3.0))  # away from 1: z - y must not vanish (TFLM refuses a zero scale)
    _, join_activation, _ = ACTIVATIONS[case % len(ACTIVATIONS)]
    calib_range = (-float(rng.uniform(0.5, 4)), float(rng.uniform(0.5, 4)))

    def build(x):
        y = max_pool(second(first(x)))
        y = avg_pool(tf.nn.relu6(y) if case % 2 else y)
        z = tf.nn.relu(y) * gain
        return join_activation(z - y if case % 3 == 2 else y + z)  # z - y >= 0: a ReLU leaves it alive

    return convert_int8(build, [(*size, channels)], per_tensor=case % 4 == 1, calib_range=calib_range, seed=case)


def left_shift_model() -> bytes:
    """A depthwise layer whose filters sum to zero, calibrated on spatially flat inputs (VALID: no zero
    padding): its outputs (so its output scale) are tiny against input scale * filter scale, a
    multiplier above one (shift > 0)."""
    rng = np.random.default_rng(12345)
    channels = 11
    weights = rng.normal(size=(3, 3, channels)).astype(np.float32)
    weights -= weights.mean(axis=(0, 1))
    calib = [[np.full((1, 7, 9, channels), rng.uniform(-2, 2), dtype=np.float32)
              + rng.normal(scale=1e-3, size=(1, 7, 9, channels)).astype(np.float32)] for _ in range(16)]
    return convert_int8(lambda x: tf.nn.depthwise_conv2d(x, weights[..., None], strides=[1, 1, 1, 1], padding="VALID"),
                        [(7, 9, channels)], calib=calib)


def helium_calls(model: bytes) -> set[str]:
    steps = lower_graph(parse_tflite(model), kernels="helium")
    return {name for s in steps for name in HELIUM_KERNELS if s.call.startswith(name + "(")}


def test_helium_lowerings_chosen():
    """The chain's operators go to the MVE kernels; depth multiplier 2 falls back to the DSP set."""
    assert helium_calls(chain_model(0)) == HELIUM_KERNELS
    assert helium_calls(depthwise_model(4)) == set()  # multiplier 2
    assert helium_calls(depthwise_model(0)) == {"tp_depthwise_conv2d_s8_helium"}


def test_left_shift_model_shifts_left():
    steps = lower_graph(parse_tflite(left_shift_model()), kernels="helium")
    words = next(a.values for s in steps for a in s.arrays if a.name == "words").reshape(-1, 5, 8)
    assert words[:, 3].max() > 0  # some channel's left shift


@needs_arm
@pytest.mark.slow
def test_helium_chains_bit_exact_on_m55(tmp_path: Path):
    failures = {case: exact for case in range(6)
                if (exact := run_on_board(chain_model(case), BOARD, tmp_path, f"chain{case}", kernels="helium")) != 1.0}
    assert not failures, f"not bit-exact on {BOARD}: {failures}"


@needs_arm
@pytest.mark.slow
def test_helium_depthwise_bit_exact_on_m55(tmp_path: Path):
    models = {"left_shift": left_shift_model(),
              **{f"depthwise{c}": depthwise_model(c) for c in (0, 1, 2, 3, 5)},
              **{f"dw3x3_{c}": depthwise_3x3_model(c) for c in (0, 1, 2, 9, 10)}}
    failures = {name: exact for name, model in models.items()
                if (exact := run_on_board(model, BOARD, tmp_path, name, kernels="helium")) != 1.0}
    assert not failures, f"not bit-exact on {BOARD}: {failures}"


def exact_ties_add_model() -> bytes:
    """A residual ADD edited so both inputs share one scale and the output has twice it: the sum is
    (x1 + x2) / 2 exactly, so every odd pair is a tie, which TFLM rounds away from zero (the
    kernel's fix-up for negative values; round-half-up alone differs on every negative one)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from test_dsp_kernels import add_model

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(add_model(0), 0))
    graph = tree.subgraphs[0]
    add = next(op for op in graph.operators
               if tree.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.ADD)
    first, second = (graph.tensors[i].quantization for i in add.inputs)
    second.scale = list(first.scale)
    graph.tensors[add.outputs[0]].quantization.scale = [2 * first.scale[0]]
    builder = flatbuffers.Builder(4096)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@needs_arm
@pytest.mark.slow
def test_helium_add_rounds_exact_ties_as_tflm(tmp_path: Path):
    model = exact_ties_add_model()
    assert helium_calls(model) >= {"tp_add_s8_helium"}
    assert run_on_board(model, BOARD, tmp_path, "ties", samples=8, kernels="helium") == 1.0
