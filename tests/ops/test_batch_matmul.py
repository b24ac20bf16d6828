"""BATCH_MATMUL bit-exactness against the TFLite Micro reference, randomized over ranks (2 to 5),
batch broadcasts in both directions and between ranks, adj_x / adj_y, matrix sizes, zero points
and scales, between two activations and with a constant operand, with the reference kernel and
the DSP one (portable C on the host; the real SMLAD on the emulated Cortex-M4 in the slow test);
the double scale product TFLM forms; the generator's batch folding against numpy; and what the
lowering refuses."""

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.ir import Quantization
from tinyml_ptq.compiler.lowering import MalformedOperator, UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.lowering.batch_matmul import DSP_SCRATCH_BYTES, matmul_layout
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import assert_bit_exact, convert_int8, only_op, random_range, with_output_scale

ACTIVATION_CASES = 32
CONSTANT_CASES = 12
SAMPLES = 6
CALIB_COUNT = 24


def assert_dsp_bit_exact(model: bytes, samples: int = SAMPLES, seed: int = 0, inputs=None):
    """The DSP kernel set's generated C on the host against TFLM (assert_bit_exact runs the
    reference set); returns the generated sources."""
    from tinyml_ptq.compiler.codegen import generate_model_sources
    from tinyml_ptq.interpreters.reference import ReferenceInterpreter
    from tinyml_ptq.pipeline.hostrun import build_host_runner, run_host

    sources = generate_model_sources(parse_tflite(model), model, kernels="dsp")
    ref = ReferenceInterpreter(model)
    sizes = [t.nbytes for t in ref.inputs]
    if inputs is None:
        inputs = np.random.default_rng(seed).integers(-128, 128, size=(samples, sum(sizes)), dtype=np.int8)
    expected = np.stack([ref.invoke_bytes(row) for row in inputs])
    with tempfile.TemporaryDirectory(prefix="tp-bmm-dsp-") as tmp:
        binary = build_host_runner(sources, Path(tmp), sum(sizes), expected.shape[1])
        ours = run_host(binary, inputs)
    np.testing.assert_array_equal(ours, expected)
    return sources


def _matrix(rng, large):
    return int(rng.integers(1, 40 if large else 10))


def _draw(rng, case, constant=False):
    """(lhs shape, rhs shape, adj_x, adj_y) of a random product: up to three batch dimensions in
    all, each operand taking a suffix of them (a lower rank broadcasts) with some set to 1. Two
    rank-2 activations convert to TRANSPOSE + FULLY_CONNECTED: one of them gets a batch of 1.
    A constant operand (the right-hand one here; the caller may swap) takes every batch
    dimension, the last one 2 or more: a constant without a batch converts to FULLY_CONNECTED."""
    batch_rank = case % 4 if not constant else 1 + case % 3
    batch = [int(rng.integers(1, 4)) for _ in range(batch_rank)]
    if constant:
        batch[-1] = int(rng.integers(2, 4))
    shapes = []
    for side in range(2):
        if constant and side == 1:
            shapes.append(batch)
            continue
        own = batch[int(rng.integers(0, batch_rank + 1)) if rng.integers(0, 3) == 0 else 0:]
        shapes.append([d if rng.integers(0, 4) else 1 for d in own])
    if not shapes[0] and not shapes[1]:
        shapes[(case // 4) % 2] = [1]
    rows, depth, cols = (_matrix(rng, case % 5 == 4 and i == 1) for i in range(3))
    adj_x = bool(case & 1)
    adj_y = bool(case & 2) if not constant else bool(rng.integers(0, 2))
    lhs = (*shapes[0], depth, rows) if adj_x else (*shapes[0], rows, depth)
    rhs = (*shapes[1], cols, depth) if adj_y else (*shapes[1], depth, cols)
    return tuple(lhs), tuple(rhs), adj_x, adj_y


def _input_and_reshape(shape):
    """The harness's input shape for an operand (it adds a batch axis of 1), and the shape to
    reshape to inside the model where that axis is not the operand's first (None: none)."""
    if len(shape) >= 3 and shape[0] == 1:
        return shape[1:], None
    return shape, shape


def _calibration(rng, shapes):
    ranges = [random_range(rng) for _ in shapes]
    return [[rng.uniform(lo, hi, size=(1, *s)).astype(np.float32) for s, (lo, hi) in zip(shapes, ranges)]
            for _ in range(CALIB_COUNT)]


def _activation_case(case):
    rng = np.random.default_rng(31000 + case)
    lhs, rhs, adj_x, adj_y = _draw(rng, case)
    (lhs_in, lhs_reshape), (rhs_in, rhs_reshape) = _input_and_reshape(lhs), _input_and_reshape(rhs)

    def build(x, y):
        x = tf.reshape(x, lhs_reshape) if lhs_reshape else x
        y = tf.reshape(y, rhs_reshape) if rhs_reshape else y
        return tf.matmul(x, y, transpose_a=adj_x, transpose_b=adj_y)

    return build, [lhs_in, rhs_in], _calibration(rng, [lhs_in, rhs_in]), (lhs, rhs, adj_x, adj_y)


@pytest.mark.parametrize("case", range(ACTIVATION_CASES))
def test_batch_matmul_two_activations_random(case):
    build, inputs, calib, (lhs, rhs, adj_x, adj_y) = _activation_case(case)
    model = convert_int8(build, inputs, calib=calib, seed=case)
    graph, op = only_op(model, "BATCH_MATMUL")
    assert [tuple(graph.tensors[i].shape) for i in op.inputs] == [lhs, rhs]
    assert (op.options.get("adj_x", False), op.options.get("adj_y", False)) == (adj_x, adj_y)
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"BATCH_MATMUL"})
    sources = assert_dsp_bit_exact(model, seed=case)
    assert "kernels/dsp/tp_batch_matmul_s8_dsp.c" in sources.runtime_sources


def _constant_case(case):
    """An activation times a constant of rank 3 or more (a rank-2 right-hand constant converts to
    FULLY_CONNECTED), the constant on the right or (every fourth case) on the left."""
    rng = np.random.default_rng(32000 + case)
    lhs, rhs, adj_x, adj_y = _draw(rng, case, constant=True)
    constant_left = case % 4 == 3
    if constant_left:  # the product transposed, (lhs rhs)^T = rhs^T lhs^T: the constant on the left
        lhs, rhs, adj_x, adj_y = rhs, lhs, not adj_y, not adj_x
    const_shape = lhs if constant_left else rhs
    value = (rng.normal(size=const_shape) * rng.uniform(0.05, 3.0) + rng.uniform(-1, 1)).astype(np.float32)
    x_shape = rhs if constant_left else lhs
    x_in, x_reshape = _input_and_reshape(x_shape)

    def build(x):
        x = tf.reshape(x, x_reshape) if x_reshape else x
        if constant_left:
            return tf.matmul(tf.constant(value), x, transpose_a=adj_x, transpose_b=adj_y)
        return tf.matmul(x, tf.constant(value), transpose_a=adj_x, transpose_b=adj_y)

    return build, x_in, _calibration(rng, [x_in]), constant_left


@pytest.mark.parametrize("case", range(CONSTANT_CASES))
def test_batch_matmul_constant_operand_random(case):
    build, x_in, calib, constant_left = _constant_case(case)
    model = convert_int8(build, [x_in], calib=calib, seed=case)
    graph, op = only_op(model, "BATCH_MATMUL")
    assert graph.tensors[op.inputs[0 if constant_left else 1]].is_constant
    assert_bit_exact(model, samples=SAMPLES, seed=case, expect_ops={"BATCH_MATMUL"})
    assert_dsp_bit_exact(model, seed=case)


def test_batch_matmul_cases_really_vary():
    """Guard the generators: every adj combination, ranks 2 to 5 on both sides, operands of
    different ranks, broadcasts from either side, constants on either side."""
    seen = set()
    for case in range(ACTIVATION_CASES):
        _, _, _, (lhs, rhs, adj_x, adj_y) = _activation_case(case)
        seen.add(("adj", adj_x, adj_y))
        seen.update({("rank", len(lhs)), ("rank", len(rhs))})
        if len(lhs) != len(rhs):
            seen.add("ranks differ")
        rank = max(len(lhs), len(rhs))
        ext = [(1,) * (rank - len(s)) + s for s in (lhs, rhs)]
        for a, b in zip(ext[0][:-2], ext[1][:-2]):
            if a != b:
                seen.add("lhs broadcasts" if a == 1 else "rhs broadcasts")
    sides = {_constant_case(case)[3] for case in range(CONSTANT_CASES)}
    expected = {("adj", x, y) for x in (False, True) for y in (False, True)} | {("rank", r) for r in range(2, 6)}
    assert expected | {"ranks differ", "lhs broadcasts", "rhs broadcasts"} <= seen and sides == {False, True}


def test_multiplier_uses_double_scale_product():
    """The tflite_micro interpreter forms lhs_scale * rhs_scale in double (its
    GetQuantizedConvolutionMultipler without a bias widens both scales first; the source text of
    some TFLM trees, shared/tflm's among them, multiplies them in float). With the output
    scale set to the float product * 2^7 a float product would give exactly 2^-7 and rounding
    ties at every accumulator that is an odd multiple of 64; only the double product matches."""
    from tinyml_ptq.compiler import quant_math

    model = convert_int8(lambda x, y: tf.matmul(x, y), [(1, 1), (1, 256)], calib_range=(-3.0, 5.0))
    graph, op = only_op(model, "BATCH_MATMUL")
    lhs_scale, rhs_scale = (graph.tensors[i].scale for i in op.inputs)
    float_product = quant_math.f32(lhs_scale * rhs_scale)
    output_scale = float_product * 2 ** 7
    assert quant_math.quantize_multiplier(float_product / output_scale) != quant_math.quantize_multiplier(
        lhs_scale * rhs_scale / output_scale), "scales drawn do not separate float from double"
    rng = np.random.default_rng(5)
    inputs = rng.integers(-128, 128, size=(16, 257), dtype=np.int8)
    inputs[:, 0] = np.arange(-128, 128, 16)  # the lhs: a spread of codes
    assert_bit_exact(with_output_scale(model, output_scale), inputs=inputs, expect_ops={"BATCH_MATMUL"})
    assert_dsp_bit_exact(with_output_scale(model, output_scale), inputs=inputs)


def test_extreme_accumulators():
    """Depth 64 with every code at the zero point's far end: the largest accumulators either sign."""
    model = convert_int8(lambda x, y: tf.matmul(x, y, transpose_b=True), [(3, 64), (2, 64)],
                         calib=[[np.full((1, 3, 64), -1.0, np.float32), np.full((1, 2, 64), 2.0, np.float32)],
                                [np.full((1, 3, 64), 3.0, np.float32), np.full((1, 2, 64), -0.5, np.float32)]])
    rows = []
    for lhs_code, rhs_code in [(-128, -128), (127, 127), (-128, 127), (127, -128), (0, 0)]:
        rows.append(np.concatenate([np.full(192, lhs_code), np.full(128, rhs_code)]).astype(np.int8))
    assert_bit_exact(model, inputs=np.stack(rows), expect_ops={"BATCH_MATMUL"})
    assert_dsp_bit_exact(model, inputs=np.stack(rows))


def _dsp_step(model: bytes):
    from tinyml_ptq.compiler.codegen import generate_model_sources

    sources = generate_model_sources(parse_tflite(model), model, kernels="dsp")
    return next(step for step in sources.steps if step.op.opcode == "BATCH_MATMUL")


@pytest.mark.parametrize("depth, cols, block", [(100, 40, 18), (9, 7, 7),
                                                (600, 3, None)])
def test_dsp_column_blocks_and_reference_fallback(depth, cols, block):
    """Columns widened in blocks where all of them would exceed the scratch budget (an even
    count, the last block shorter), all at once below it, and the reference kernel where even
    two columns of the depth do not fit; odd row and column counts pair a lone one with itself."""
    model = convert_int8(lambda x, y: tf.matmul(x, y), [(3, depth), (depth, cols)], calib_range=(-0.5, 1.5))
    step = _dsp_step(model)
    if block is None:
        assert step.call.startswith("tp_batch_matmul_s8(") and step.kernel_dir == "reference"
    else:
        assert step.call.startswith("tp_batch_matmul_s8_dsp(") and f"dims, {block}, " in step.call, step.call
        assert step.scratch_bytes == 4 * ((depth + 1) // 2) * (block + 2) <= DSP_SCRATCH_BYTES
    assert_dsp_bit_exact(model, seed=depth)


def test_dsp_general_requantization():
    """A rescale of 1 or more (no right shift) leaves tp_dsp.h's short form: the general one."""
    model = convert_int8(lambda x, y: tf.matmul(x, y), [(5, 3), (3, 6)], calib_range=(-0.2, 0.3))
    graph, op = only_op(model, "BATCH_MATMUL")
    lhs_scale, rhs_scale = (graph.tensors[i].scale for i in op.inputs)
    scaled = with_output_scale(model, lhs_scale * rhs_scale / 3.0)
    assert _dsp_step(scaled).arrays[0].values.tolist() == [0, 0, 0, 0]
    assert _dsp_step(model).arrays[0].values.tolist()[0] == 1
    assert_bit_exact(scaled, samples=SAMPLES, expect_ops={"BATCH_MATMUL"})
    assert_dsp_bit_exact(scaled)


needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                               reason="arm-none-eabi-gcc / qemu-system-arm not installed")


@needs_arm
@pytest.mark.slow
def test_dsp_kernel_bit_exact_on_emulated_cortex_m4(tmp_path):
    """Random cases (every adj combination, broadcasts, odd sizes, column blocks) with the real
    SMLAD/SMMLAR on the emulated Cortex-M4: every output byte equal to TFLM's."""
    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.device.run import run
    from tinyml_ptq.interpreters.reference import ReferenceInterpreter
    from tinyml_ptq.target.build import build

    models = {}
    for case in (3, 5, 6, 11, 15):
        build_fn, inputs, calib, _ = _activation_case(case)
        models[f"case{case}"] = convert_int8(build_fn, inputs, calib=calib, seed=case)
    models["blocks"] = convert_int8(lambda x, y: tf.matmul(x, y), [(3, 100), (100, 40)], calib_range=(-0.5, 1.5))
    for name, model in models.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(model)
        ref = ReferenceInterpreter(model)
        rng = np.random.default_rng(len(name))
        data = tmp_path / f"{name}.npz"
        np.savez(data, **{f"x{i}": rng.integers(-128, 128, size=(3, *t.shape[1:]), dtype=np.int8)
                          for i, t in enumerate(ref.inputs)})
        project = tmp_path / name
        assert generate(path, project, board="mps2-an386", kernels="dsp").kernels == "dsp"
        assert "tp_batch_matmul_s8_dsp(" in (project / "model" / "model.c").read_text()
        build(project)
        assert run(project, data).exact == 1.0, name


LAYOUT_CASES = 400


def _emulate(layout, lhs, rhs):
    """The reference kernel's loops over the generator's layout, in numpy (int64: no overflow here)."""
    out = []
    for b0 in range(layout.loops[0][0]):
        for b1 in range(layout.loops[1][0]):
            for b2 in range(layout.loops[2][0]):
                lhs_at = sum(b * loop[1] for b, loop in zip((b0, b1, b2), layout.loops))
                rhs_at = sum(b * loop[2] for b, loop in zip((b0, b1, b2), layout.loops))
                r, k, c = np.ogrid[:layout.rows, :layout.depth, :layout.cols]
                left = lhs[lhs_at + r * layout.lhs_row_step + k * layout.lhs_depth_step]
                right = rhs[rhs_at + k * layout.rhs_depth_step + c * layout.rhs_col_step]
                out.append((left * right).sum(axis=1))
    return np.concatenate([o.ravel() for o in out])


def test_layout_folding_against_numpy():
    """The batch folding and element steps the generator gives the kernel, on many more shapes
    than the converter tests can take: the kernel's loops give numpy's matmul exactly."""
    rng = np.random.default_rng(33000)
    folded_rows = merged = 0
    for case in range(LAYOUT_CASES):
        rank = int(rng.integers(2, 6))
        batch = [int(rng.integers(1, 4)) for _ in range(rank - 2)]
        shapes = []
        for _ in range(2):
            own = batch[int(rng.integers(0, len(batch) + 1)):]
            shapes.append([d if rng.integers(0, 3) else 1 for d in own])
        rows, depth, cols = (int(v) for v in rng.integers(1, 6, size=3))
        adj_x, adj_y = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
        lhs_shape = (*shapes[0], depth, rows) if adj_x else (*shapes[0], rows, depth)
        rhs_shape = (*shapes[1], cols, depth) if adj_y else (*shapes[1], depth, cols)
        lhs = rng.integers(-255, 256, size=lhs_shape)
        rhs = rng.integers(-255, 256, size=rhs_shape)
        expected = np.matmul(np.swapaxes(lhs, -1, -2) if adj_x else lhs, np.swapaxes(rhs, -1, -2) if adj_y else rhs)
        layout, shape = matmul_layout(None, lhs_shape, rhs_shape, adj_x, adj_y)
        assert tuple(shape) == expected.shape, (lhs_shape, rhs_shape, adj_x, adj_y)
        got = _emulate(layout, lhs.ravel(), rhs.ravel())
        np.testing.assert_array_equal(got, expected.ravel(), err_msg=f"{lhs_shape} x {rhs_shape} {adj_x} {adj_y}")
        folded_rows += layout.rows != rows
        merged += sum(loop[0] > 1 for loop in layout.loops) < sum(d > 1 for d in shape[:-2])
    assert folded_rows > 20 and merged > 20


# --- refusals ----------------------------------------------------------------------------------


def _plain_model():
    return convert_int8(lambda x, y: tf.matmul(x, y), [(2, 3, 4), (2, 4, 5)], calib_range=(-1.0, 2.0))


def test_per_channel_operand_is_refused():
    graph, op = only_op(_plain_model(), "BATCH_MATMUL")
    rhs = graph.tensors[op.inputs[1]]
    rhs.quantization = Quantization(np.full(5, rhs.scale, np.float32), np.zeros(5, np.int64), axis=3)
    with pytest.raises(UnsupportedOperator, match=rf"BATCH_MATMUL \(node {op.index}\) has per-channel quantized "
                                                  rf"tensor '{rhs.name}'; supported: one scale and zero point "
                                                  r"per tensor"):
        lower_graph(graph)


def test_int16x8_batch_matmul_is_refused_with_the_tflm_route():
    specs = [tf.TensorSpec([1, 3, 4], tf.float32), tf.TensorSpec([1, 4, 5], tf.float32)]
    fn = tf.function(lambda x, y: tf.matmul(x, y), input_signature=specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, *s.shape[1:])).astype(np.float32)
                                                 for s in specs] for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int16
    graph, op = only_op(converter.convert(), "BATCH_MATMUL")
    with pytest.raises(UnsupportedOperator, match=rf"BATCH_MATMUL \(node {op.index}\) has int16 tensor .*--runtime tflm"):
        lower_graph(graph)


def test_rank6_operand_is_refused():
    graph, op = only_op(_plain_model(), "BATCH_MATMUL")
    lhs = graph.tensors[op.inputs[0]]
    lhs.shape = (1, 1, 1, 2, 3, 4)
    with pytest.raises(UnsupportedOperator, match=rf"BATCH_MATMUL \(node {op.index}\) has a rank-6 operand "
                                                  r"\[1, 1, 1, 2, 3, 4\]; supported: operands of rank 2 to 5"):
        lower_graph(graph)


@pytest.mark.parametrize("lhs_shape, rhs_shape, output_shape, message", [
    ((1, 2, 3, 4), (1, 3, 4, 5), (1, 2, 3, 5), r"cannot broadcast the batch dimensions of \[1, 2, 3, 4\] and "
                                               r"\[1, 3, 4, 5\]"),
    ((1, 2, 3, 4), (1, 2, 3, 5), (1, 2, 3, 5), r"depths 4 and 3 differ"),
    ((1, 2, 3, 4), (1, 2, 4, 5), (1, 2, 3, 4), r"output shape \[1, 2, 3, 4\]; the operands give \[1, 2, 3, 5\]"),
    ((1, 2, 3, 4), (1, 2, 4, 5), (30,), r"output shape \[30\]; the operands give \[1, 2, 3, 5\]"),
])
def test_inconsistent_shapes_are_malformed(lhs_shape, rhs_shape, output_shape, message):
    graph, op = only_op(_plain_model(), "BATCH_MATMUL")
    for index, shape in zip([*op.inputs, op.outputs[0]], (lhs_shape, rhs_shape, output_shape)):
        graph.tensors[index].shape = shape
    with pytest.raises(MalformedOperator, match=rf"node {op.index}: BATCH_MATMUL .*{message}"):
        lower_graph(graph)
