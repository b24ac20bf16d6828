"""TRANSPOSE_CONV bit-exactness against the TFLite Micro reference, randomized, and the
quantize stage accepting it (its int32 output-shape operand comes first).

Each random case draws the kernel, stride, padding, image size, channels, bias,
activation, per-channel or per-tensor weights and a calibration range from a fixed
seed; a third of the cases go through tf.nn.conv2d_transpose with any output size it
accepts (what Keras' output_padding gives), the rest through Keras Conv2DTranspose.
Each checks the converter made one TRANSPOSE_CONV with what was drawn, then compares
our generated C (host build) with TFLM byte for byte, with the reference kernel and
with the DSP kernel (portable C for the DSP instructions); one slow test runs both on
emulated Cortex-M cores and compares their instruction counts.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import MalformedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.interpreters.tflite_inspect import require_full_int8

from harness import assert_bit_exact, convert_int8, only_op, random_range, with_output_scale

CASES = 14
# TFLM's own TRANSPOSE_CONV models (int16x8), shipped with the repository.
SEANET = Path(__file__).resolve().parents[2] / "examples" / "models" / "tflm" / "seanet" / "transpose_conv"

# name, Keras activation, TFLite fused_activation_function (the converter fuses it only after a bias)
ACTIVATIONS = [("none", None, 0), ("relu", "relu", 1), ("relu6", tf.nn.relu6, 3)]


def draw_case(rng, case):
    kernel = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    padding = "SAME" if case % 2 == 0 else "VALID"
    image = (int(rng.integers(1, 9)), int(rng.integers(1, 9)))
    in_channels = 32 if case == 7 else int(rng.integers(1, 13))
    out_channels = int(rng.integers(1, 13))
    return kernel, stride, padding, image, in_channels, out_channels


def odd_output_size(rng, size, kernel, stride, padding):
    """An output size conv2d_transpose accepts: any whose forward convolution gives `size`."""
    if padding == "SAME":
        low, high = (size - 1) * stride + 1, size * stride
    else:
        low, high = (size - 1) * stride + kernel, size * stride + kernel - 1
    return int(rng.integers(low, high + 1))


def channel_weights(rng, kernel, out_channels, in_channels):
    """[kh, kw, out, in] weights (TF's transposed layout) whose magnitude differs per output channel."""
    magnitude = 10 ** rng.uniform(-2, 0.5, size=out_channels)
    return (rng.normal(size=(*kernel, out_channels, in_channels)) * magnitude.reshape(1, 1, -1, 1)).astype(np.float32)


_models: dict[int, bytes] = {}


def random_model(case: int) -> tuple[bytes, dict]:
    """Case `case`'s model, converted once per session, and what was drawn for it."""
    rng = np.random.default_rng(7000 + case)
    kernel, stride, padding, (height, width), in_channels, out_channels = draw_case(rng, case)
    per_channel = case % 4 != 1 and out_channels > 1
    use_bias = case % 5 != 4
    name, activation, fused = ACTIVATIONS[case % len(ACTIVATIONS)] if use_bias else ACTIVATIONS[0]
    weights = channel_weights(rng, kernel, out_channels, in_channels)
    bias = (rng.normal(size=out_channels) * rng.uniform(0.1, 3.0)).astype(np.float32)

    if case % 3 == 2:  # tf.nn with an output size of its own (Keras: output_padding)
        out_hw = tuple(odd_output_size(rng, s, k, st, padding) for s, k, st in zip((height, width), kernel, stride))
        act = {"none": lambda y: y, "relu": tf.nn.relu, "relu6": tf.nn.relu6}[name]

        def build(x):
            y = tf.nn.conv2d_transpose(x, weights, [1, *out_hw, out_channels], [1, *stride, 1], padding)
            return act(tf.nn.bias_add(y, bias) if use_bias else y)
    else:
        layer = tf.keras.layers.Conv2DTranspose(out_channels, kernel, strides=stride, padding=padding.lower(),
                                                use_bias=use_bias, activation=activation)
        layer.build((1, height, width, in_channels))
        layer.set_weights([weights, bias] if use_bias else [weights])

        def build(x):
            return layer(x)

    drawn = dict(kernel=kernel, stride=stride, padding=padding, fused=fused, per_channel=per_channel,
                 use_bias=use_bias, in_channels=in_channels, out_channels=out_channels)
    if case not in _models:
        _models[case] = convert_int8(build, [(height, width, in_channels)], per_tensor=not per_channel,
                                     calib_range=random_range(rng), seed=case)
    return _models[case], drawn


@pytest.mark.parametrize("case", range(CASES))
def test_transpose_conv_random(case):
    model, drawn = random_model(case)
    graph, op = only_op(model, "TRANSPOSE_CONV")
    options = op.options
    assert (options["stride_h"], options["stride_w"]) == drawn["stride"]
    assert options["padding"] == {"SAME": 0, "VALID": 1}[drawn["padding"]]
    assert options["fused_activation_function"] == drawn["fused"]
    shape, filt = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    assert shape.dtype == "int32" and shape.is_constant
    assert filt.shape == (drawn["out_channels"], *drawn["kernel"], drawn["in_channels"])
    assert filt.quantization.per_channel == drawn["per_channel"]
    assert (len(op.inputs) > 3 and op.inputs[3] >= 0) == drawn["use_bias"]
    require_full_int8(model)
    assert_bit_exact(model, samples=6, seed=case, expect_ops={"TRANSPOSE_CONV"})


def dsp_outputs(model: bytes, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Our outputs with the DSP kernels built natively (portable C for the DSP instructions),
    TFLM's, and the runtime sources linked."""
    import tempfile

    from tinyml_ptq.compiler.codegen import generate_model_sources
    from tinyml_ptq.interpreters.reference import ReferenceInterpreter
    from tinyml_ptq.pipeline.hostrun import build_host_runner, run_host

    sources = generate_model_sources(parse_tflite(model), model, kernels="dsp")
    ref = ReferenceInterpreter(model)
    inputs = np.random.default_rng(seed).integers(-128, 128, size=(samples, *ref.input.shape[1:]), dtype=np.int8)
    expected = np.asarray(ref.invoke_many(inputs)).reshape(samples, -1)
    with tempfile.TemporaryDirectory(prefix="tp-tconv-dsp-") as tmp:
        binary = build_host_runner(sources, Path(tmp), inputs[0].size, expected.shape[1])
        ours = run_host(binary, inputs.reshape(samples, -1))
    return ours, expected, sources.runtime_sources


@pytest.mark.parametrize("case", range(CASES))
def test_transpose_conv_dsp_kernel_on_host(case):
    """The DSP kernel's phases (including those no tap reaches), gathers and packing, natively."""
    model, _ = random_model(case)
    ours, expected, runtime_sources = dsp_outputs(model, samples=6, seed=case)
    assert "kernels/dsp/tp_transpose_conv2d_s8_dsp.c" in runtime_sources
    np.testing.assert_array_equal(ours, expected)


def test_transpose_conv_chain_and_no_scratch():
    """A Keras decoder: strided transposed convolutions (one unbiased, so a separate RELU6)
    between CONV_2D layers. The kernel gathers each output in a register: no scratch."""
    rng = np.random.default_rng(7100)
    decoder = tf.keras.Sequential([
        tf.keras.Input((3, 4, 6), batch_size=1),
        tf.keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu"),
        tf.keras.layers.Conv2DTranspose(4, (4, 2), strides=(2, 1), padding="valid", use_bias=False,
                                        activation="relu6"),
        tf.keras.layers.Conv2D(2, 3, padding="same"),
    ])
    decoder.set_weights([w + rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in decoder.get_weights()])
    model = convert_int8(lambda x: decoder(x), [(3, 4, 6)], calib_range=(-1.5, 2.5), seed=3)
    sources = assert_bit_exact(model, samples=6, seed=3, expect_ops={"TRANSPOSE_CONV"})
    assert sources.op_names == ["TRANSPOSE_CONV", "TRANSPOSE_CONV", "RELU6", "CONV_2D"]
    steps = lower_graph(parse_tflite(model))
    assert [s.scratch_bytes for s in steps if s.op.opcode == "TRANSPOSE_CONV"] == [0, 0]
    ours, expected, _ = dsp_outputs(model, samples=6, seed=3)
    np.testing.assert_array_equal(ours, expected)


def test_transpose_conv_multiplier_uses_double_scale_product():
    """As for CONV_2D (tests/ops/test_conv.py), TFLM's TRANSPOSE_CONV forms input_scale * filter_scale
    in double: an output scale making the float product hit exact ties separates the two."""
    from tinyml_ptq.compiler import quant_math

    weights = np.random.default_rng(6).normal(size=(1, 1, 1, 3)).astype(np.float32)
    model = convert_int8(lambda x: tf.nn.conv2d_transpose(x, weights, [1, 16, 16, 1], 1, "VALID"), [(16, 16, 3)],
                         per_tensor=True, calib_range=(-3.0, 5.0))
    graph, op = only_op(model, "TRANSPOSE_CONV")
    input_scale, filter_scale = graph.tensors[op.inputs[2]].scale, graph.tensors[op.inputs[1]].scale
    float_product = quant_math.f32(input_scale * filter_scale)
    output_scale = float_product * 2 ** 7
    assert quant_math.quantize_multiplier(float_product / output_scale) != quant_math.quantize_multiplier(
        input_scale * filter_scale / output_scale), "scales drawn do not separate float from double"
    rng = np.random.default_rng(1)
    inputs = np.stack([np.resize(rng.permutation(256) - 128, 16 * 16 * 3) for _ in range(4)]).astype(np.int8)
    assert_bit_exact(with_output_scale(model, output_scale), inputs=inputs, expect_ops={"TRANSPOSE_CONV"})


@pytest.fixture(scope="module")
def small_model():
    weights = np.random.default_rng(5).normal(size=(3, 3, 4, 2)).astype(np.float32)
    return convert_int8(lambda x: tf.nn.conv2d_transpose(x, weights, [1, 10, 10, 4], 2, "SAME"), [(5, 5, 2)])


def test_padding_is_tflms(small_model):
    """TFLM pads as for a forward convolution from the output size: SAME 10 -> 5 with a 3-tap
    filter at stride 2 has one row of total padding, all of it after (so 0 before)."""
    from tinyml_ptq.compiler.lowering.transpose_conv import transpose_conv_padding

    graph, op = only_op(small_model, "TRANSPOSE_CONV")
    assert transpose_conv_padding(op, graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]) == ((2, 2), (0, 0))


def test_refuses_an_output_shape_operand_the_output_does_not_have(small_model):
    graph, op = only_op(small_model, "TRANSPOSE_CONV")
    graph.tensors[op.inputs[0]].data = np.array([1, 9, 10, 4], dtype=np.int32)
    with pytest.raises(MalformedOperator, match=r"TRANSPOSE_CONV \(node 0\): output shape operand \[1, 9, 10, 4\] "
                                                r"differs .*; the model is inconsistent"):
        lower_graph(graph)


def test_int32_data_operand_is_still_refused(small_model):
    """The int32 allowance is for TRANSPOSE_CONV's output shape (operand 0), not its data operand."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(small_model, 0))
    sub = tree.subgraphs[0]
    sub.tensors[sub.operators[0].inputs[2]].type = schema.TensorType.INT32
    builder = flatbuffers.Builder(len(small_model) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(UserError, match=r"not fully int8: 1 operator blocks it: operator 0 TRANSPOSE_CONV has inputs "
                                        r"\(int32, int8, int32\)"):
        require_full_int8(bytes(builder.Output()))


def test_tflm_int16x8_models_are_not_int8():
    """TFLM's own TRANSPOSE_CONV models are int16x8: not what quantize --mode int8 promises (the
    native runtime runs them with its 16x8 kernel: tests/ops/test_int16x8_conv_pool.py)."""
    paths = sorted(SEANET.glob("*.tflite"))
    assert len(paths) == 3, paths
    for path in paths:
        with pytest.raises(UserError, match="not fully int8: 1 operator blocks it: operator 0 TRANSPOSE_CONV .*int16"):
            require_full_int8(path.read_bytes())


def test_quantize_conv2d_transpose_autoencoder(tmp_path):
    """The quantize stage takes a Keras Conv2DTranspose autoencoder (it used to refuse it as
    'not fully int8'), and the result runs bit-exact on our runtime."""
    import keras

    from tinyml_ptq.quantization.quantize import quantize

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((12, 12, 1)),
        keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same"),
    ])
    model.save(tmp_path / "autoencoder.keras")
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).uniform(0, 1, size=(16, 12, 12, 1)).astype(np.float32))
    result = quantize(tmp_path / "autoencoder.keras", str(tmp_path / "calib.npy"), tmp_path / "int8.tflite",
                      samples=16, calibration="minmax")
    tflite = result.output.read_bytes()
    require_full_int8(tflite)
    assert result.ops.count("TRANSPOSE_CONV") == 2, result.ops
    assert_bit_exact(tflite, samples=4, expect_ops={"TRANSPOSE_CONV"})


needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                               reason="arm-none-eabi-gcc and qemu-system-arm are needed (make apt installs them)")


def decoder_layer_model() -> bytes:
    """A decoder's upsampling layer: 8x8x16 -> 16x16x8, 3x3 at stride 2, SAME, ReLU."""
    rng = np.random.default_rng(7200)
    layer = tf.keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")
    layer.build((1, 8, 8, 16))
    layer.set_weights([rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in layer.get_weights()])
    return convert_int8(lambda x: layer(x), [(8, 8, 16)], calib_range=(-2.0, 2.0))


@needs_arm
@pytest.mark.slow
def test_transpose_conv_on_emulated_cortex_m(tmp_path):
    """Under QEMU, bit-exact with TFLM: the reference kernel on the Cortex-M3 (mps2-an385), the
    DSP kernel with the real SMLAD/SXTB16 on the Cortex-M4 (mps2-an386), which runs the decoder
    layer in well under half the reference kernel's instructions (about 4.7x fewer when measured)."""
    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.device.run import run
    from tinyml_ptq.interpreters.reference import ReferenceInterpreter
    from tinyml_ptq.target.build import build

    models = {"decoder": decoder_layer_model(), "case4": random_model(4)[0], "case8": random_model(8)[0]}
    instructions = {}
    for name, model in models.items():
        (tmp_path / f"{name}.tflite").write_bytes(model)
        shape = ReferenceInterpreter(model).input.shape[1:]
        np.save(tmp_path / f"{name}.npy", np.random.default_rng(2).integers(-128, 128, size=(3, *shape), dtype=np.int8))
        runs = [("mps2-an385", "reference"), ("mps2-an386", "dsp")]
        if name == "decoder":
            runs.append(("mps2-an386", "reference"))
        for board, kernels in runs:
            project = tmp_path / f"{name}-{board}-{kernels}"
            assert generate(tmp_path / f"{name}.tflite", project, board=board, kernels=kernels).kernels == kernels
            build(project)
            result = run(project, tmp_path / f"{name}.npy")
            assert result.exact == 1.0, (name, board, kernels, result.mismatches)
            instructions[name, board, kernels] = result.per_op[0].mean
    assert instructions["decoder", "mps2-an386", "dsp"] < 0.4 * instructions["decoder", "mps2-an386", "reference"]
