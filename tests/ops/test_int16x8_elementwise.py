"""int16x8 SUB, MUL, LEAKY_RELU, LOGISTIC and TANH on the native runtime, bit-exact against the TFLite
Micro reference: randomized models the real converter builds in 16x8 mode, full-range int16 inputs with
the extremes."""

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.lowering.activations_lut import sigmoid_s16_rescale
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import activation_for, assert_bit_exact, convert_int16x8, int16_samples, only_int16x8_op, random_range

CASES = 8


def _binary_case(case, seed, opcode, combine):
    """A two-input model `combine(a, b)` (a fused activation on some cases, broadcast on odd ones),
    each input calibrated over its own random range, checked on full-range int16 inputs."""
    rng = np.random.default_rng(seed + case)
    shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 4))))  # rank <= 4 with the batch
    other = tuple(1 if rng.random() < 0.4 else d for d in shape) if case % 2 else shape
    activation = activation_for(case)

    def build(a, b):
        y = combine(a, b)
        return activation(y) if activation else y

    (lo1, hi1), (lo2, hi2) = random_range(rng), random_range(rng)
    calib = [[rng.uniform(lo1, hi1, size=(1, *shape)).astype(np.float32),
              rng.uniform(lo2, hi2, size=(1, *other)).astype(np.float32)] for _ in range(32)]
    model = convert_int16x8(build, [shape, other], calib=calib, seed=case)
    only_int16x8_op(model, opcode)
    inputs = np.concatenate([int16_samples(rng, shape), int16_samples(rng, other)], axis=1).view(np.int8)
    for kernels in ("reference", "dsp") if case < 3 else ("reference",):
        assert_bit_exact(model, inputs=inputs, kernels=kernels, expect_ops={opcode})


@pytest.mark.parametrize("case", range(CASES))
def test_sub_int16x8_random(case):
    _binary_case(case, 17000, "SUB", lambda a, b: a - b)


@pytest.mark.parametrize("case", range(CASES))
def test_mul_int16x8_random(case):
    _binary_case(case, 17100, "MUL", lambda a, b: a * b)


@pytest.mark.parametrize("case", range(CASES))
def test_sub_mul_int16x8_constant_operand(case):
    """A constant second operand (int16 in the model, as SEANet's SUB has) broadcast along the channels."""
    rng = np.random.default_rng(17200 + case)
    shape = tuple(int(d) for d in rng.integers(1, 7, size=3))
    constant = rng.uniform(-2.0, 2.0, size=shape[-1]).astype(np.float32)
    opcode = ["SUB", "MUL"][case % 2]
    model = convert_int16x8(lambda x: x - constant if opcode == "SUB" else x * constant, [shape],
                            calib_range=random_range(rng), seed=case)
    graph, op = only_int16x8_op(model, opcode)
    assert graph.tensors[op.inputs[1]].is_constant
    assert_bit_exact(model, inputs=int16_samples(rng, shape), expect_ops={opcode})


@pytest.mark.parametrize("case", range(CASES))
def test_leaky_relu_int16x8_random(case):
    rng = np.random.default_rng(17300 + case)
    shape = tuple(int(d) for d in rng.integers(1, 8, size=int(rng.integers(1, 4))))
    alpha = float([0.01, 0.2, 0.3, 0.5, 0.9, 1.5, -rng.uniform(0.05, 1.0), rng.uniform(1.0, 3.0)][case])
    # Calibrating the LEAKY_RELU alone gives input and output one scale; a scaling before it (an
    # operator of its own the converter keeps as MUL) gives them different ones on some cases.
    factor = float(rng.uniform(0.3, 3.0)) if case % 3 == 1 else None

    def build(x):
        return tf.nn.leaky_relu(x, alpha=alpha)

    model = convert_int16x8(build, [shape], calib_range=random_range(rng), seed=case)
    only_int16x8_op(model, "LEAKY_RELU")
    inputs = int16_samples(rng, shape)
    for kernels in ("reference", "dsp") if case < 3 else ("reference",):
        assert_bit_exact(model, inputs=inputs, kernels=kernels, expect_ops={"LEAKY_RELU"})
    if factor is not None:  # the output scale differs from the input's (identity multiplier != 1)
        scaled = convert_int16x8(lambda x: build(x * factor), [shape], calib_range=random_range(rng), seed=case)
        assert_bit_exact(scaled, inputs=inputs, expect_ops={"LEAKY_RELU", "MUL"})


def _sigmoid_case(case, seed, opcode, fn):
    rng = np.random.default_rng(seed + case)
    shape = tuple(int(d) for d in rng.integers(1, 8, size=int(rng.integers(1, 4))))
    # Input ranges from tiny (long left shifts) to wide (saturating most of the table).
    half = float([0.001, 0.05, 0.7, 2.0, 6.0, 10.0, 30.0, rng.uniform(0.01, 20.0)][case])
    model = convert_int16x8(fn, [shape], calib_range=(-half, half * float(rng.uniform(0.3, 1.0))), seed=case)
    only_int16x8_op(model, opcode)
    inputs = int16_samples(rng, shape, samples=12)
    inputs[3] = rng.integers(-600, 600, size=inputs.shape[1])  # small codes: the table's first entries
    inputs[4] = -inputs[5]  # mirrored values: the negative branch against the positive one
    for kernels in ("reference", "dsp") if case < 3 else ("reference",):
        assert_bit_exact(model, inputs=inputs, kernels=kernels, expect_ops={opcode})


@pytest.mark.parametrize("case", range(CASES))
def test_logistic_int16x8_random(case):
    _sigmoid_case(case, 17400, "LOGISTIC", tf.sigmoid)


@pytest.mark.parametrize("case", range(CASES))
def test_tanh_int16x8_random(case):
    _sigmoid_case(case, 17500, "TANH", tf.tanh)


@pytest.mark.parametrize("opcode, fn, top", [("LOGISTIC", tf.sigmoid, 8.0), ("TANH", tf.tanh, 8.0),
                                             ("TANH", tf.tanh, 16.0)])
def test_sigmoid_int16x8_power_of_two_input_scale(opcode, fn, top):
    """Input scales 2^-12 (and for TANH 2^-11): TFLM's power-of-two case, multiplier 3 << shift."""
    rng = np.random.default_rng(17600)
    edge = top * 32767 / 32768  # the calibration maximum that makes the scale top / 2^15 exactly
    calib = [[np.array([[edge, -edge, *rng.uniform(-edge, edge, size=6)]], dtype=np.float32)]]
    model = convert_int16x8(fn, [(8,)], calib=calib)
    graph, op = only_int16x8_op(model, opcode)
    inp = graph.tensors[op.inputs[0]]
    assert inp.scale == pytest.approx(top / 32768, rel=1e-6)
    assert sigmoid_s16_rescale(op, inp)[1] == 0  # no rescale shift: the power-of-two form
    inputs = int16_samples(rng, (8,), samples=16)
    inputs[3] = np.arange(-4, 4) * 97
    assert_bit_exact(model, inputs=inputs, expect_ops={opcode})


@pytest.mark.parametrize("opcode, fn, half", [("LOGISTIC", tf.sigmoid, 0.3), ("LOGISTIC", tf.sigmoid, 9.0),
                                              ("TANH", tf.tanh, 1.5), ("TANH", tf.tanh, 25.0),
                                              ("LEAKY_RELU", lambda x: tf.nn.leaky_relu(x, alpha=-0.7), 4.0)])
def test_unary_int16x8_on_every_int16_value(opcode, fn, half):
    """Every one of the 65536 input codes once, in a single sample."""
    model = convert_int16x8(fn, [(4096,)], calib_range=(-half, half))
    only_int16x8_op(model, opcode)
    assert_bit_exact(model, inputs=np.arange(-32768, 32768, dtype=np.int16).reshape(16, 4096), expect_ops={opcode})


def test_logistic_int16x8_with_other_output_scale_is_refused():
    """TFLM refuses an int16 LOGISTIC whose output is not Q0.15; so does the lowering."""
    from harness import with_output_scale

    model = with_output_scale(convert_int16x8(tf.sigmoid, [(4,)]), 1.0 / 1000)
    with pytest.raises(UnsupportedOperator, match=r"LOGISTIC \(node \d+\) has int16 output scale 0.001; supported: "
                                                  r"the fixed output encoding .*, scale 2\^-15 \(int16\)"):
        lower_graph(parse_tflite(model))


def test_int16x8_elementwise_chain_both_kernel_sets():
    """SUB, MUL, LEAKY_RELU, TANH and LOGISTIC (and ADD) in one 16x8 model, on both kernel sets."""
    rng = np.random.default_rng(17700)
    shape = (3, 5, 4)

    def build(a, b):
        d = a - b
        y = tf.nn.leaky_relu(d * a, alpha=0.25)
        return tf.tanh(y) + tf.sigmoid(d)

    calib = [[rng.uniform(-3, 3, size=(1, *shape)).astype(np.float32),
              rng.uniform(-1, 2, size=(1, *shape)).astype(np.float32)] for _ in range(32)]
    model = convert_int16x8(build, [shape, shape], calib=calib)
    ops = {op.opcode for op in parse_tflite(model).operators}
    assert ops == {"SUB", "MUL", "LEAKY_RELU", "TANH", "LOGISTIC", "ADD"}
    inputs = np.concatenate([int16_samples(rng, shape), int16_samples(rng, shape)], axis=1).view(np.int8)
    for kernels in ("reference", "dsp"):
        assert_bit_exact(model, inputs=inputs, kernels=kernels, expect_ops=ops)


@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385"])  # the DSP kernel set, and the reference one
def test_int16x8_elementwise_chain_under_qemu(board, tmp_path):
    """The chain above cross-compiled for the board and run on the emulated device, exact against TFLM."""
    import shutil

    from tinyml_ptq import build, run
    from tinyml_ptq.compiler.project import generate

    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm are needed")
    rng = np.random.default_rng(17800)
    shape = (3, 5, 4)
    calib = [[rng.uniform(-3, 3, size=(1, *shape)).astype(np.float32),
              rng.uniform(-1, 2, size=(1, *shape)).astype(np.float32)] for _ in range(16)]
    model = tmp_path / "chain.tflite"
    chain = lambda a, b: tf.tanh(tf.nn.leaky_relu((a - b) * a, alpha=0.25)) + tf.sigmoid(a - b)  # noqa: E731
    model.write_bytes(convert_int16x8(chain, [shape, shape], calib=calib))
    data = tmp_path / "x.npz"
    np.savez(data, x0=int16_samples(rng, shape, samples=4).reshape(4, *shape),
             x1=int16_samples(rng, shape, samples=4).reshape(4, *shape))
    project = generate(model, tmp_path / "fw", board=board).project_dir
    build(project)
    result = run(project, str(data))
    assert result.samples == 4 and result.exact == 1.0, f"outputs differ from TFLM on samples {result.mismatches}"
