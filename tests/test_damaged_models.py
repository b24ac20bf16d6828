"""Damaged and hostile `.tflite` files: one `error: <file>: <what>, <where>` line and exit 2,
or, where the damage leaves a well-formed model, outputs still exact with TFLite Micro.

Every model here is a real converter output damaged the way a bad copy, a bad
tool or an attacker would: through the flatbuffers schema (a field set to a
value the file format allows but a model must not have) or by editing bytes.
"""

import math
import re

import flatbuffers
import numpy as np
import pytest
import tensorflow as tf
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tinyml_ptq.cli import main
from tinyml_ptq.compiler.codegen import generate_model_sources
from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.core.errors import UserError

from harness import assert_bit_exact, convert_int8


@pytest.fixture(scope="module")
def small_cnn() -> bytes:
    """CONV_2D (stride 2, RELU), DEPTHWISE_CONV_2D (RELU6), AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX."""
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((8, 8, 2), batch_size=1)
    x = tf.keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = tf.keras.layers.AveragePooling2D(2)(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(3, activation="softmax")(x)
    return convert_int8(tf.keras.Model(inp, x), [(8, 8, 2)])


def edited(model: bytes, edit) -> bytes:
    """`model` re-packed after `edit(subgraph, tree)` changed its decoded tree."""
    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    edit(tree.subgraphs[0], tree)
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# Tensors of small_cnn by index (the converter numbers them the same way every time; Keras names vary).
TENSORS = {"xs_0": 0, "dense_1/MatMul1": 2, "arith.constant1": 4, "arith.constant11": 5, "conv2d_1/convolution": 6,
           "conv2d_1/Relu": 7, "flatten_1/Reshape": 10, "Identity": 12}


def tensor_of(sub, name: str):
    return sub.tensors[TENSORS[name]]


def op_of(sub, tree, opcode: str):
    code = getattr(schema.BuiltinOperator, opcode)
    return next(op for op in sub.operators if max(tree.operatorCodes[op.opcodeIndex].builtinCode,
                                                  tree.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == code)


def set_item(obj, field: str, index: int, value):
    """obj.field[index] = value (the decoded arrays are read-only views of the file)."""
    values = np.array(getattr(obj, field))
    values[index] = value
    setattr(obj, field, values)


def set_quant(name_part: str, scale=None, zero_point=None):
    def edit(sub, tree):
        q = tensor_of(sub, name_part).quantization
        if scale is not None:
            q.scale = [scale] * len(q.scale)
        if zero_point is not None:
            q.zeroPoint = [zero_point] * len(q.zeroPoint)
    return edit


def set_option(opcode: str, field: str, value):
    def edit(sub, tree):
        setattr(op_of(sub, tree, opcode).builtinOptions, field, value)
    return edit


def swap_first_two_operators(sub, tree):
    sub.operators[0], sub.operators[1] = sub.operators[1], sub.operators[0]


def short_weights(sub, tree):
    buffer = tree.buffers[tensor_of(sub, "conv2d_1/convolution").buffer]
    buffer.data = buffer.data[:-5]


# (damage, edit, the message expected after "<file>: ")
REFUSED = [
    ("tensor index out of range", lambda sub, tree: set_item(op_of(sub, tree, "CONV_2D"), "inputs", 0, 99),
     r"tensor index 99 out of range \(the subgraph has 13 tensors\), input 0 of operator 0 \(CONV_2D\)"),
    ("buffer index out of range", lambda sub, tree: setattr(tensor_of(sub, "conv2d_1/convolution"), "buffer", 999),
     r"buffer index 999 out of range \(the model has \d+ buffers\), tensor 6 'functional\w*/conv2d\w*/convolution'"),
    ("operator code index out of range", lambda sub, tree: setattr(sub.operators[2], "opcodeIndex", 77),
     r"operator code index 77 out of range \(the model has \d+ codes\), operator 2"),
    ("model output index out of range", lambda sub, tree: set_item(sub, "outputs", 0, 13),
     r"tensor index 13 out of range \(the subgraph has 13 tensors\), model output 0"),
    ("NaN scale", set_quant("conv2d_1/Relu", scale=math.nan),
     r"scale nan is not a finite positive number, tensor 7 "),
    ("infinite weight scale", set_quant("conv2d_1/convolution", scale=math.inf),
     r"scale inf is not a finite positive number, tensor 6 'functional\w*/conv2d\w*/convolution' channel 0"),
    ("zero weight scale", set_quant("dense_1/MatMul1", scale=0.0),
     r"scale 0 is not a finite positive number, tensor 2 'functional\w*/dense\w*/MatMul1' channel 0"),
    ("zero input scale", set_quant("xs_0", scale=0.0), r"scale 0 is not a finite positive number, tensor 0 'xs_0'"),
    ("negative scale", set_quant("Identity", scale=-0.5), r"scale -0.5 is not a finite positive number, tensor 12"),
    ("zero point 300", set_quant("xs_0", zero_point=300),
     r"zero point 300 outside INT8 range -128..127, tensor 0 'xs_0'"),
    ("per-channel scale count", lambda sub, tree: setattr(tensor_of(sub, "conv2d_1/convolution").quantization,
                                                          "scale", [0.01] * 3),
     r"3 scales but 4 zero points, tensor 6 "),
    ("weights buffer shorter than its shape", short_weights,
     r"buffer \d+ holds 67 bytes; shape \[4, 3, 3, 2\] of INT8 needs 72, tensor 6 "),
    ("negative dimension", lambda sub, tree: set_item(tensor_of(sub, "conv2d_1/Relu"), "shape", 1, -4),
     r"shape \[1, -4, 4, 4\] has a negative dimension, tensor 7 "),
    ("output shape along the graph (byte 1340 of the file flipped)",
     lambda sub, tree: set_item(tensor_of(sub, "Identity"), "shape", 0, 255),
     r"output shape \[255, 3\] differs from input shape \[1, 3\], operator 5 \(SOFTMAX\)"),
    ("reshape that requantizes", set_quant("flatten_1/Reshape", zero_point=100),
     r"output quantization .* differs from input .*; a reshape never requantizes, operator 3 \(RESHAPE\)"),
    ("reshape that changes the element count",
     lambda sub, tree: set_item(tensor_of(sub, "flatten_1/Reshape"), "shape", 1, 12),
     r"output shape \[1, 12\] holds 12 elements, input \[1, 2, 2, 4\] 16, operator 3 \(RESHAPE\)"),
    ("operators out of order", swap_first_two_operators,
     r"tensor 7 is read before any operator writes it, input 0 of operator 0 \(DEPTHWISE_CONV_2D\)"),
    ("fused activation outside its enum", set_option("CONV_2D", "fusedActivationFunction", 9),
     r"option fusedActivationFunction = 9 is not a ActivationFunctionType, operator 0 \(CONV_2D\)"),
    ("padding outside its enum", set_option("AVERAGE_POOL_2D", "padding", 7),
     r"option padding = 7 is not a Padding, operator 2 \(AVERAGE_POOL_2D\)"),
    ("stride 0", set_option("CONV_2D", "strideW", 0), r"option strideW = 0 must be at least 1, operator 0 \(CONV_2D\)"),
    ("pool filter 0", set_option("AVERAGE_POOL_2D", "filterHeight", 0),
     r"option filterHeight = 0 must be at least 1, operator 2 \(AVERAGE_POOL_2D\)"),
]


@pytest.mark.parametrize("damage, edit, message", REFUSED, ids=[r[0] for r in REFUSED])
def test_damaged_model_is_refused_with_what_and_where(small_cnn, damage, edit, message):
    damaged = edited(small_cnn, edit)
    with pytest.raises(UserError, match=f"^bad.tflite: {message}"):
        parse_tflite(damaged, origin="bad.tflite")


@pytest.mark.parametrize("command", ["generate", "verify"])
@pytest.mark.parametrize("damage, edit, message", REFUSED[:10:3], ids=[r[0] for r in REFUSED[:10:3]])
def test_cli_prints_one_error_line_and_exits_2(small_cnn, tmp_path, capsys, command, damage, edit, message):
    path = tmp_path / "bad.tflite"
    path.write_bytes(edited(small_cnn, edit))
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8, 2), np.int8))
    args = ["-o", str(tmp_path / "out")] if command == "generate" else ["--data", str(tmp_path / "x.npy")]
    assert main([command, str(path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_hostile_tensor_name_stays_on_one_printable_line(small_cnn):
    def edit(sub, tree):
        tensor = tensor_of(sub, "xs_0")
        tensor.name = b"in\nerror: fake\x1b[31m"
        tensor.quantization.zeroPoint = [-129]
    with pytest.raises(UserError) as info:
        parse_tflite(edited(small_cnn, edit), origin="m.tflite")
    assert str(info.value) == "m.tflite: zero point -129 outside INT8 range -128..127, tensor 0 'in?error: fake?[31m'"


def test_every_real_model_passes_validation(shared_models):
    """No false alarm: the MLPerf Tiny and TFLM example models (person_detect gives its biases
    per-channel scales on the filter's dimension 3) are read as before."""
    models = sorted(shared_models.parent.glob("*/*.tflite"))
    assert len(models) >= 10
    for path in models:
        parse_tflite(path.read_bytes(), origin=str(path))


# Damage that leaves a well-formed model: the toolkit accepts it and must then stay exact.


def test_weights_overwritten_with_0xff_stay_exact(small_cnn):
    data = bytearray(small_cnn)
    weights = bytes(schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(small_cnn, 0)).buffers[
        tensor_of(schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(small_cnn, 0)).subgraphs[0],
                  "conv2d_1/convolution").buffer].data.tobytes())
    start = data.find(weights) + 20
    data[start:start + 16] = b"\xff" * 16  # weights of -1 in the middle of the conv filter
    assert parse_tflite(bytes(data)).tensors[6].data.ravel()[20:36].tolist() == [-1] * 16
    assert_bit_exact(bytes(data), samples=16)


@pytest.mark.parametrize("limit", [2**31 - 1, -(2**31)])
def test_bias_at_the_int32_limit_stays_exact(small_cnn, limit):
    """The accumulator wraps past the limit in TFLM and in our runtime alike (two's complement)."""
    def edit(sub, tree):
        for name in ("arith.constant1", "arith.constant11"):  # conv and depthwise biases
            buffer = tree.buffers[tensor_of(sub, name).buffer]
            bias = np.frombuffer(buffer.data.tobytes(), "<i4").copy()
            bias[:] = limit
            buffer.data = np.frombuffer(bias.tobytes(), np.uint8)
    assert_bit_exact(edited(small_cnn, edit), samples=16)


def test_single_byte_damage_anywhere_is_refused_or_exact(small_cnn):
    """Every 37th byte set to 0xFF, then flipped: a clean refusal or outputs exact with TFLM."""
    outcomes = {"refused": 0, "exact": 0}
    for offset in range(8, len(small_cnn), 37):
        for value in (0xFF, small_cnn[offset] ^ 0xFF):
            data = bytearray(small_cnn)
            data[offset] = value
            try:
                generate_model_sources(parse_tflite(bytes(data)), bytes(data))
            except UserError:
                outcomes["refused"] += 1
                continue
            assert_bit_exact(bytes(data), samples=4)
            outcomes["exact"] += 1
    assert outcomes["refused"] and outcomes["exact"], outcomes


def test_concatenation_whose_shapes_contradict_is_one_error_line(tmp_path, capsys):
    from tinyml_ptq.cli import main

    model = convert_int8(lambda a, b: tf.concat([a, b], axis=-1), [(4, 3), (4, 5)])

    def widen_output(sub, tree):
        concat = op_of(sub, tree, "CONCATENATION")
        set_item(sub.tensors[concat.outputs[0]], "shape", 2, 9)  # 3 + 5 channels cannot make 9

    path = tmp_path / "concat.tflite"
    path.write_bytes(edited(model, widen_output))
    assert main(["generate", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"error: node \d+: CONCATENATION inputs \[\(1, 4, 3\), \(1, 4, 5\)\] do not make "
                        r"\(1, 4, 9\)\n", err), err
    assert not (tmp_path / "out").exists()
