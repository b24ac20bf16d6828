"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN over height and width bit-exactness against the TFLite Micro
reference, randomized (MEAN over other axes: test_reduce_minmax.py)."""

import flatbuffers
import numpy as np
import pytest
import tensorflow as tf

from harness import assert_bit_exact, convert_int8, only_op, random_range

POOL_CASES = 16
MEAN_CASES = 14






@pytest.mark.parametrize("case", range(POOL_CASES))
@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_random(kind, case):
    rng = np.random.default_rng((2000 if kind == "MAX_POOL_2D" else 3000) + case)
    pool = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    strides = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    padding = ["same", "valid"][case % 2]
    h, w = int(rng.integers(pool[0], 14)), int(rng.integers(pool[1], 14))
    channels = int(rng.integers(1, 9))
    activation = [None, tf.nn.relu, tf.nn.relu6, lambda t: tf.clip_by_value(t, -1.0, 1.0)][case % 4]
    layer_cls = tf.keras.layers.AveragePooling2D if kind == "AVERAGE_POOL_2D" else tf.keras.layers.MaxPooling2D
    layer = layer_cls(pool_size=pool, strides=strides, padding=padding)

    def build(x):
        y = layer(x)
        return activation(y) if activation else y

    model = convert_int8(build, [(h, w, channels)], calib_range=random_range(rng), seed=case)
    _, op = only_op(model, kind)
    assert (op.options["filter_height"], op.options["filter_width"]) == pool
    assert (op.options["stride_h"], op.options["stride_w"]) == strides
    assert op.options["padding"] == (0 if padding == "same" else 1)
    assert_bit_exact(model, samples=8, seed=case, expect_ops={kind})


def test_pool_fused_activations_really_fused():
    """The clamp cases above must reach the kernel as fused activations, not separate ops."""
    seen = set()
    for activation in (tf.nn.relu, tf.nn.relu6, lambda t: tf.clip_by_value(t, -1.0, 1.0)):
        layer = tf.keras.layers.AveragePooling2D(2)
        model = convert_int8(lambda x: activation(layer(x)), [(6, 6, 3)], calib_range=(-4, 4))
        _, op = only_op(model, "AVERAGE_POOL_2D")
        seen.add(op.options["fused_activation_function"])
        assert_bit_exact(model, samples=4)
    assert seen == {1, 2, 3}


def _force_same_quantization(model: bytes, opcode: str) -> bytes:
    """Give an operator's output the quantization of its input (the converter rarely does)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    subgraph = m.subgraphs[0]
    for op in subgraph.operators:
        if names[m.operatorCodes[op.opcodeIndex].builtinCode] == opcode:
            src = subgraph.tensors[op.inputs[0]].quantization
            dst = subgraph.tensors[op.outputs[0]].quantization
            dst.scale, dst.zeroPoint = list(src.scale), list(src.zeroPoint)
    builder = flatbuffers.Builder(0)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.parametrize("case", range(MEAN_CASES))
def test_mean_random(case):
    rng = np.random.default_rng(4000 + case)
    h, w = int(rng.integers(1, 12)), int(rng.integers(1, 12))
    channels = int(rng.integers(1, 12))
    keepdims = bool(case % 2)
    axis = [[1, 2], [2, 1], [-3, -2]][case % 3]
    if case % 4 == 3:
        gap = tf.keras.layers.GlobalAveragePooling2D(keepdims=keepdims)
        build = gap
    else:
        def build(x):
            return tf.reduce_mean(x, axis=axis, keepdims=keepdims)
    model = convert_int8(build, [(h, w, channels)], calib_range=random_range(rng), seed=case)
    if case % 5 == 4:
        model = _force_same_quantization(model, "MEAN")
    graph, op = only_op(model, "MEAN")
    assert len(graph.tensors[op.outputs[0]].shape) == (4 if keepdims else 2)
    inp, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if case % 5 == 4:
        assert (inp.scale, inp.zero_point) == (out.scale, out.zero_point)
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"MEAN"})


def test_mean_extreme_plane_and_scales():
    """A large plane; averaging uniform noise gives an output scale far below the input's."""
    model = convert_int8(lambda x: tf.reduce_mean(x, axis=[1, 2]), [(37, 29, 3)], calib_range=(-50, 80))
    graph, op = only_op(model, "MEAN")
    assert graph.tensors[op.inputs[0]].scale > 5 * graph.tensors[op.outputs[0]].scale
    assert_bit_exact(model, samples=8, expect_ops={"MEAN"})


def test_mean_after_pool_chain():
    """A small multi-op graph: max pool -> average pool -> global mean."""
    layers = [tf.keras.layers.MaxPooling2D(3, strides=2, padding="same"),
              tf.keras.layers.AveragePooling2D(2, padding="valid"),
              tf.keras.layers.GlobalAveragePooling2D()]

    def build(x):
        for layer in layers:
            x = layer(x)
        return x

    model = convert_int8(build, [(15, 13, 5)], calib_range=(-2, 3))
    assert_bit_exact(model, samples=8, expect_ops={"MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN"})
