"""int16x8 (16-bit activations, 8-bit weights) on the native runtime: DEPTHWISE_CONV_2D (depth
multipliers above 1 included), TRANSPOSE_CONV (with and without bias), AVERAGE_POOL_2D and MEAN
bit-exact against the TFLite Micro reference, randomized, on models the real converter builds in
EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8, with the reference and the DSP kernel
sets (the DSP set runs the reference 16x8 kernels); a SEANet TRANSPOSE_CONV model with the DSP set."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import (activation_for, assert_bit_exact, convert_int16x8, int16_samples, only_int16x8_op, random_range,
                     with_output_scale)

CASES = 8
SEANET = Path(__file__).resolve().parents[2] / "examples" / "models" / "tflm" / "seanet" / "transpose_conv"


def _kernel_sets(case):
    return ("reference", "dsp") if case % 3 == 0 else (["reference", "dsp"][case % 2],)


def _check(model, inputs, opcode, case):
    for kernels in _kernel_sets(case):
        sources = assert_bit_exact(model, inputs=inputs, kernels=kernels, expect_ops={opcode})
        assert not any("/dsp/" in s for s in sources.runtime_sources), sources.runtime_sources


@pytest.mark.parametrize("case", range(CASES))
def test_depthwise_conv2d_int16x8_random(case):
    rng = np.random.default_rng(26000 + case)
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    multiplier = [1, 2, 3][case % 3]
    dilation = (1, 1) if case % 4 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    strides = (1, 1) if dilation != (1, 1) else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = ["same", "valid"][case % 2]
    h = int(rng.integers((kh - 1) * dilation[0] + 1, 10))
    w = int(rng.integers((kw - 1) * dilation[1] + 1, 10))
    channels = int(rng.integers(1, 6))
    layer = tf.keras.layers.DepthwiseConv2D((kh, kw), strides=strides, padding=padding, depth_multiplier=multiplier,
                                            dilation_rate=dilation,
                                            depthwise_initializer=tf.keras.initializers.RandomNormal(0, 0.5, seed=case),
                                            bias_initializer=tf.keras.initializers.RandomUniform(0.05, 0.5,
                                                                                                 seed=case + 1))
    activation = activation_for(case)
    # Per-channel only: the converter fails on per-tensor depthwise filters in 16x8 mode.
    model = convert_int16x8(lambda x: activation(layer(x)) if activation else layer(x), [(h, w, channels)],
                            calib_range=random_range(rng), seed=case)
    graph, op = only_int16x8_op(model, "DEPTHWISE_CONV_2D")
    assert op.options["depth_multiplier"] == multiplier or graph.tensors[op.inputs[1]].shape[3] == channels * multiplier
    assert graph.tensors[op.inputs[2]].dtype == "int64"
    _check(model, int16_samples(rng, (h, w, channels)), "DEPTHWISE_CONV_2D", case)


@pytest.mark.parametrize("case", range(CASES))
def test_transpose_conv_int16x8_random(case):
    rng = np.random.default_rng(26100 + case)
    kernel = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    strides = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    padding = ["same", "valid"][case % 2]
    h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    cin, cout = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    use_bias = case % 4 != 3
    layer = tf.keras.layers.Conv2DTranspose(
        cout, kernel, strides=strides, padding=padding, use_bias=use_bias,
        kernel_initializer=tf.keras.initializers.RandomNormal(0, 0.5, seed=case),
        bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5, seed=case + 1))
    activation = activation_for(case) if use_bias else None
    model = convert_int16x8(lambda x: activation(layer(x)) if activation else layer(x), [(h, w, cin)],
                            calib_range=random_range(rng), per_tensor=case % 3 == 1, seed=case)
    graph, op = only_int16x8_op(model, "TRANSPOSE_CONV")
    has_bias = len(op.inputs) > 3 and op.inputs[3] >= 0
    assert has_bias == use_bias
    if has_bias:
        assert graph.tensors[op.inputs[3]].dtype == "int64"
    assert (op.options["stride_h"], op.options["stride_w"]) == strides
    _check(model, int16_samples(rng, (h, w, cin)), "TRANSPOSE_CONV", case)


def _with_int16_bias(model: bytes, values: np.ndarray) -> bytes:
    """The model with its TRANSPOSE_CONV's bias made an int16 tensor holding `values` (TFLM's 16x8
    kernel widens such a bias; the converter writes int64 ones)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    subgraph = tree.subgraphs[0]
    bias = subgraph.tensors[subgraph.operators[0].inputs[3]]
    bias.type = schema.TensorType.INT16
    tree.buffers[bias.buffer].data = np.frombuffer(values.astype("<i2").tobytes(), dtype=np.uint8)
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.parametrize("case", range(3))
def test_transpose_conv_int16x8_int16_bias(case):
    """An int16 bias (TFLM widens it to int64 before its 16x8 kernel): widened ahead of time, exact."""
    rng = np.random.default_rng(26700 + case)
    h, w, cin, cout = (int(d) for d in rng.integers(1, 6, size=4))
    layer = tf.keras.layers.Conv2DTranspose(
        cout, (3, 2), strides=(2, 1 + case % 2), padding=["same", "valid"][case % 2],
        kernel_initializer=tf.keras.initializers.RandomNormal(0, 0.5, seed=case),
        bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5, seed=case))
    model = convert_int16x8(layer, [(h, w, cin)], calib_range=random_range(rng), seed=case)
    graph, op = only_int16x8_op(model, "TRANSPOSE_CONV")
    assert graph.tensors[op.inputs[3]].dtype == "int64"
    values = rng.integers(-32768, 32768, size=cout).astype(np.int16)
    values[0] = [-32768, 32767, 0][case]
    narrow = _with_int16_bias(model, values)
    graph, op = only_int16x8_op(narrow, "TRANSPOSE_CONV")
    assert graph.tensors[op.inputs[3]].dtype == "int16"
    _check(narrow, int16_samples(rng, (h, w, cin)), "TRANSPOSE_CONV", case)


@pytest.mark.parametrize("case", range(CASES))
def test_average_pool_int16x8_random(case):
    rng = np.random.default_rng(26200 + case)
    pool = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    strides = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    h, w = int(rng.integers(pool[0], 12)), int(rng.integers(pool[1], 12))
    channels = int(rng.integers(1, 6))
    layer = tf.keras.layers.AveragePooling2D(pool_size=pool, strides=strides, padding=["same", "valid"][case % 2])
    activation = activation_for(case)
    model = convert_int16x8(lambda x: activation(layer(x)) if activation else layer(x), [(h, w, channels)],
                            calib_range=random_range(rng), seed=case)
    only_int16x8_op(model, "AVERAGE_POOL_2D")
    _check(model, int16_samples(rng, (h, w, channels)), "AVERAGE_POOL_2D", case)


def _mean_case(rng, case):
    """(input shape without batch, axes, keep_dims): rank 2 to 4 with the batch, a random non-empty
    set of axes (some negative), every reduced axis but the batch longer than 1."""
    rank = int(rng.integers(2, 5)) if case % 4 in (1, 3) else 4
    shape = [int(d) for d in rng.integers(1, 7, size=rank - 1)]
    axes = sorted(int(a) for a in rng.choice(range(1, rank), size=int(rng.integers(1, rank)), replace=False))
    if case % 4 == 0:
        axes = [1, 2]  # the global average pool
    elif case % 4 == 2:
        axes = [1, 3]  # two separate reduced runs
    for a in axes:
        shape[a - 1] = max(shape[a - 1], 2)
    axes = [a - rank if rng.integers(0, 2) else a for a in axes]
    return tuple(shape), axes, bool(case % 2)


@pytest.mark.parametrize("case", range(CASES))
def test_mean_int16x8_random(case):
    rng = np.random.default_rng(26300 + case)
    shape, axes, keep_dims = _mean_case(rng, case)
    model = convert_int16x8(lambda x: tf.reduce_mean(x, axis=axes, keepdims=keep_dims), [shape],
                            calib_range=random_range(rng), seed=case)
    graph, op = only_int16x8_op(model, "MEAN")
    assert op.options["keep_dims"] == keep_dims
    assert sorted(np.asarray(graph.tensors[op.inputs[1]].data).ravel().tolist()) == sorted(axes)
    if case % 3 == 2:
        # Output scales the converter would not pick: rescales from far below 1 to far above.
        model = with_output_scale(model, graph.tensors[op.inputs[0]].scale * float(rng.choice([0.01, 0.3, 4.0, 60.0])))
    _check(model, int16_samples(rng, shape), "MEAN", case)


def test_mean_int16x8_too_many_elements_is_refused():
    """The int32 sum of more than 65536 int16 elements could overflow: refused by name."""
    model = convert_int16x8(lambda x: tf.reduce_mean(x, axis=[1, 2]), [(300, 240, 1)])
    with pytest.raises(UnsupportedOperator, match=r"MEAN \(node \d+\) sums 72000 int16 elements into each "
                                                  r"output; supported: at most 8388608 int8 elements \(int16: 65536\)"):
        lower_graph(parse_tflite(model))


def test_depthwise_pool_transpose_mean_chain_int16x8():
    """All four in one 16x8 model, each kernel set, with full-range inputs."""
    rng = np.random.default_rng(26400)
    init = tf.keras.initializers.RandomNormal(0, 0.4, seed=5)
    model = tf.keras.Sequential([
        tf.keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu",
                                        depthwise_initializer=init),
        tf.keras.layers.AveragePooling2D(2),
        tf.keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", kernel_initializer=init),
        tf.keras.layers.Lambda(lambda t: tf.reduce_mean(t, axis=[1, 2], keepdims=True)),
    ])
    converted = convert_int16x8(model, [(8, 8, 2)], calib_range=(-1.0, 1.0))
    inputs = int16_samples(rng, (8, 8, 2))
    for kernels in ("reference", "dsp"):
        assert_bit_exact(converted, inputs=inputs, kernels=kernels,
                         expect_ops={"DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "TRANSPOSE_CONV", "MEAN"})


def test_seanet_transpose_conv_int16x8_dsp_kernels():
    """The smallest SEANet TRANSPOSE_CONV with the DSP kernel set (which runs the 16x8 reference kernel);
    its first input, the run-time output shape, is fed the true shape and a wrong one (both ignored)."""
    path = min(SEANET.glob("*.tflite"), key=lambda p: p.stat().st_size)
    model = path.read_bytes()
    graph, op = only_int16x8_op(model, "TRANSPOSE_CONV")
    assert graph.inputs == [op.inputs[0], op.inputs[2]]
    output_shape = np.array(graph.tensors[op.outputs[0]].shape, dtype=np.int32)
    values = int16_samples(np.random.default_rng(26600), graph.tensors[op.inputs[2]].shape[1:], samples=4)
    shapes = np.stack([output_shape, output_shape, output_shape * 2, np.zeros(4, np.int32)])
    inputs = np.concatenate([shapes.view(np.int8), values.view(np.int8)], axis=1)
    for kernels in ("reference", "dsp"):
        sources = assert_bit_exact(model, inputs=inputs, kernels=kernels, expect_ops={"TRANSPOSE_CONV"})
        assert not any("/dsp/" in s for s in sources.runtime_sources), sources.runtime_sources
