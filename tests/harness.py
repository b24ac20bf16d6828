"""Test helpers: build int8 models with the real TFLite converter, and check that
our generated C gives byte-identical outputs to the TFLite Micro reference."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def convert_int8(build_fn, input_shapes, calib=None, per_tensor=False, seed=0, calib_count=32,
                 calib_range=(-1.0, 1.0), input_type="int8", output_type="int8", int16x8=False):
    """Convert a function of float32 inputs to a full-int8 .tflite (batch 1).

    build_fn: a callable taking tf tensors (one per input) and returning the output,
    typically a Keras model or a lambda using tf ops. input_shapes: list of shapes
    without the batch dimension. input_type / output_type "float32" keep a float
    model boundary, which the converter bridges with QUANTIZE / DEQUANTIZE.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    specs = [tf.TensorSpec([1, *s], tf.float32) for s in input_shapes]
    fn = tf.function(lambda *xs: build_fn(*xs), input_signature=specs)
    concrete = fn.get_concrete_function()
    if calib is None:
        lo, hi = calib_range
        calib = [[rng.uniform(lo, hi, size=(1, *s)).astype(np.float32) for s in input_shapes]
                 for _ in range(calib_count)]

    def representative():
        for sample in calib:
            yield sample

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 if int16x8
        else tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.as_dtype(input_type)
    converter.inference_output_type = tf.as_dtype(output_type)
    if per_tensor:
        converter._experimental_disable_per_channel = True
    return converter.convert()


def convert_int16x8(build_fn, input_shapes, **kwargs):
    """convert_int8 in TFLite's 16x8 mode (EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8):
    int16 activations and model boundary, int8 weights, int64 biases."""
    kwargs.setdefault("input_type", "int16")
    kwargs.setdefault("output_type", "int16")
    return convert_int8(build_fn, input_shapes, int16x8=True, **kwargs)


def run_both(tflite_bytes: bytes, samples: int = 8, seed: int = 0, inputs=None, kernels: str = "reference"):
    """Outputs of our generated C (host build, kernel set `kernels`) and of the TFLM reference,
    for random inputs.

    inputs: values of a one-input model in its type, or rows of raw bytes of every input end
    to end. Both results come back as raw bytes (int8 rows, every output end to end), so
    float32 outputs compare bit for bit.
    """
    from tinyml_ptq.compiler.codegen import generate_model_sources
    from tinyml_ptq.compiler.tflite_reader import parse_tflite
    from tinyml_ptq.interpreters.reference import ReferenceInterpreter
    from tinyml_ptq.pipeline.hostrun import build_host_runner, run_host

    graph = parse_tflite(tflite_bytes)
    sources = generate_model_sources(graph, tflite_bytes, kernels=kernels)
    ref = ReferenceInterpreter(tflite_bytes)
    in_size = sum(t.nbytes for t in ref.inputs)
    out_size = sum(t.nbytes for t in ref.outputs)
    if inputs is None:  # random values of each input's type, inputs end to end
        rng = np.random.default_rng(seed)
        parts = []
        for t in ref.inputs:
            count = int(np.prod(t.shape))
            if t.dtype == np.int8:
                parts.append(rng.integers(-128, 128, size=(samples, count), dtype=np.int8))
            else:
                parts.append(rng.normal(0.0, 2.0, size=(samples, count)).astype(t.dtype).view(np.int8))
        inputs = np.concatenate(parts, axis=1)
    elif len(ref.inputs) == 1:  # one input's values, in its own type
        t = ref.inputs[0]
        inputs = np.ascontiguousarray(inputs, dtype=t.dtype).reshape(len(inputs), -1).view(np.int8)
    inputs = np.ascontiguousarray(inputs).view(np.int8).reshape(len(inputs), in_size)
    with tempfile.TemporaryDirectory(prefix="tp-test-") as tmp:
        binary = build_host_runner(sources, Path(tmp), in_size, out_size)
        ours = run_host(binary, inputs)
    theirs = np.stack([ref.invoke_bytes(row) for row in inputs])
    return ours, theirs, sources


def assert_bit_exact(tflite_bytes: bytes, samples: int = 8, seed: int = 0, inputs=None, expect_ops=None,
                     kernels: str = "reference"):
    ours, theirs, sources = run_both(tflite_bytes, samples, seed, inputs, kernels)
    if expect_ops is not None:
        missing = set(expect_ops) - set(sources.op_names)
        assert not missing, f"converter did not produce {missing}; graph has {sources.op_names}"
    diff = np.abs(ours.astype(np.int32) - theirs.astype(np.int32))
    bad = np.argwhere(diff > 0)
    assert bad.size == 0, (
        f"{len(np.unique(bad[:, 0]))}/{len(ours)} samples differ, max |diff| {diff.max()}, "
        f"first at sample {bad[0][0]} byte {bad[0][1]}: ours {ours[tuple(bad[0])]} ref {theirs[tuple(bad[0])]}; "
        f"ops {sources.op_names}, {kernels} kernels"
    )
    return sources


def with_output_scale(model: bytes, scale: float) -> bytes:
    """The model with its output tensor's scale replaced (everything else unchanged)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    subgraph = tree.subgraphs[0]
    subgraph.tensors[subgraph.outputs[0]].quantization.scale = [scale]
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def only_op(model: bytes, opcode: str):
    """The graph of `model` and its single `opcode` operator (fails if the converter made zero or several)."""
    from tinyml_ptq.compiler.tflite_reader import parse_tflite

    graph = parse_tflite(model)
    ops = [op for op in graph.operators if op.opcode == opcode]
    assert len(ops) == 1, f"expected one {opcode}, graph has {graph.opcodes()}"
    return graph, ops[0]


def random_range(rng):
    """A calibration range of random magnitude (0.02 to 40) and offset."""
    half_width = float(rng.choice([0.02, 0.5, 3.0, 40.0])) * float(rng.uniform(0.5, 2.0))
    offset = float(rng.uniform(-0.9, 0.9)) * half_width
    return offset - half_width, offset + half_width


def int16_samples(rng, shape, samples=8):
    """Full-range int16 samples (flattened): random ones with both extremes, and, as far as there
    are rows for them, rows that stress saturation (all -32768, all 32767), the largest sums
    (alternating extremes) and small values."""
    values = rng.integers(-32768, 32768, size=(samples, int(np.prod(shape))), dtype=np.int16)
    values[0, 0], values[-1, -1] = -32768, 32767
    special = [np.full(values.shape[1], -32768), np.full(values.shape[1], 32767),
               np.where(np.arange(values.shape[1]) % 2 == 0, -32768, values[0]),
               rng.integers(-200, 200, size=values.shape[1])]
    for row, value in enumerate(special[:samples - 2], start=1):
        values[row] = value
    return values


def full_range_inputs(model: Path, count: int, seed: int = 0) -> list[np.ndarray]:
    """Random samples of each input of a .tflite over its type's whole range; a rank-1 input
    (SUB's second operand, TRANSPOSE_CONV's output shape in TFLM's SEANet models) has no batch
    axis to drop."""
    from tinyml_ptq.interpreters.reference import ReferenceInterpreter

    reference = ReferenceInterpreter(Path(model).read_bytes())
    rng = np.random.default_rng(seed)
    return [rng.integers(np.iinfo(t.dtype).min, np.iinfo(t.dtype).max + 1,
                         size=(count, *(t.shape[1:] if len(t.shape) > 1 else t.shape)), dtype=t.dtype)
            for t in reference.inputs]


def activation_for(case):
    """A fused activation for randomized case `case`: none, ReLU, ReLU6 or a clip to [-1, 1] in turn."""
    import tensorflow as tf

    return [None, tf.nn.relu, tf.nn.relu6, lambda t: tf.clip_by_value(t, -1.0, 1.0)][case % 4]


def only_int16x8_op(model: bytes, opcode: str):
    """only_op, checking the converter gave the 16x8 form: an int16 activation input (operand 2 of
    TRANSPOSE_CONV, which takes the output shape and the filter first) and int16 outputs."""
    graph, op = only_op(model, opcode)
    for index in [op.inputs[2 if opcode == "TRANSPOSE_CONV" else 0], *op.outputs]:
        assert graph.tensors[index].dtype == "int16", (opcode, graph.tensors[index].dtype)
    return graph, op
