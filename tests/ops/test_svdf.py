"""SVDF in TFLite Micro's integer form (int8 input, feature weights and output, int32 bias, time
weights and state both int16 or both int8), QUANTIZE from int16 (to int8 and to int32) and SOFTMAX
int8 -> int16, bit-exact against the TFLite Micro reference interpreter.

Recipe: neither tf_keras nor the converter gives an SVDF from a layer, so the models are written
directly as flatbuffers with TFLite's schema: one operator each, with random shapes (batches,
input size, units, rank, memory), weights, scales and zero points. The oracle is the real
tflite_micro interpreter, which resets the SVDF state (a variable tensor) before every invocation.
TFLM's own keyword model (tests/test_tflm_models.py) runs the int8-state SVDF in a trained network.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tinyml_ptq.compiler.lowering import MalformedOperator, UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite

from harness import assert_bit_exact, only_op

RANDOM_CASES = 12


@dataclasses.dataclass
class _T:
    """A tensor of a one-operator model: data None for activations (and the variable state)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float | None = None
    zero_point: int = 0
    data: np.ndarray | None = None
    variable: bool = False


def _model(opcode: str, tensors: list[_T], inputs: list[int], outputs: list[int], op_inputs: list[int],
           op_outputs: list[int], options=None, options_type: int = 0) -> bytes:
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    types = {"int8": schema.TensorType.INT8, "int16": schema.TensorType.INT16,
             "int32": schema.TensorType.INT32, "float32": schema.TensorType.FLOAT32}
    model = schema.ModelT()
    model.version = 3
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = getattr(schema.BuiltinOperator, opcode)
    code.version = 1
    model.operatorCodes = [code]
    model.buffers = [schema.BufferT()]
    built = []
    for t in tensors:
        tensor = schema.TensorT()
        tensor.name, tensor.type = t.name, types[t.dtype]
        tensor.shape = np.array(t.shape, dtype=np.int32)
        tensor.isVariable = t.variable
        tensor.buffer = 0
        if t.data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(t.data).tobytes(), dtype=np.uint8)
            model.buffers.append(buffer)
            tensor.buffer = len(model.buffers) - 1
        if t.scale is not None:
            tensor.quantization = schema.QuantizationParametersT()
            tensor.quantization.scale, tensor.quantization.zeroPoint = [t.scale], [t.zero_point]
        built.append(tensor)
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = np.array(op_inputs, np.int32), np.array(op_outputs, np.int32)
    if options is not None:
        op.builtinOptionsType, op.builtinOptions = options_type, options
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.operators = built, [op]
    subgraph.inputs, subgraph.outputs = np.array(inputs, np.int32), np.array(outputs, np.int32)
    model.subgraphs = [subgraph]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# --- SVDF --------------------------------------------------------------------------------------

@dataclasses.dataclass
class SvdfCase:
    batches: int
    input_size: int
    units: int
    rank: int
    memory: int
    state: str  # "int8" or "int16": the time weights' and the state's type
    activation: int = 1  # RELU, as TFLM's keyword model has it (the integer kernel leaves it out)
    state_zero_point: int | None = None  # None: random for int8, 0 for int16
    with_bias: bool = True


def svdf_model(case: SvdfCase, rng: np.random.Generator) -> bytes:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    filters = case.units * case.rank
    f32 = np.float32
    input_scale = float(f32(rng.uniform(0.005, 0.1)))
    feature_scale = float(f32(rng.uniform(0.002, 0.02)))
    time_scale = float(f32(rng.uniform(0.002, 0.02) if case.state == "int8" else rng.uniform(2e-5, 2e-4)))
    state_scale = float(f32(rng.uniform(0.05, 1.0) if case.state == "int8" else rng.uniform(2e-4, 4e-3)))
    output_scale = float(f32(rng.uniform(0.02, 0.5) if case.state == "int8" else rng.uniform(0.3, 3.0)))
    state_zp = case.state_zero_point
    if state_zp is None:
        state_zp = int(rng.integers(-60, 60)) if case.state == "int8" else 0
    state_info = np.iinfo(case.state)
    tensors = [
        _T("input", "int8", (case.batches, case.input_size), input_scale, int(rng.integers(-128, 128))),
        _T("feature", "int8", (filters, case.input_size), feature_scale, 0,
           rng.integers(-127, 128, size=(filters, case.input_size), dtype=np.int8)),
        _T("time", case.state, (filters, case.memory), time_scale, 0,
           rng.integers(state_info.min + 1, state_info.max + 1, size=(filters, case.memory)).astype(case.state)),
        _T("bias", "int32", (case.units,), float(f32(state_scale) * f32(time_scale)), 0,
           rng.integers(-20000, 20000, size=case.units).astype(np.int32)),
        _T("state", case.state, (case.batches, case.memory * filters), state_scale, state_zp, variable=True),
        _T("output", "int8", (case.batches, case.units), output_scale, int(rng.integers(-128, 128))),
    ]
    options = schema.SVDFOptionsT()
    options.rank, options.fusedActivationFunction = case.rank, case.activation
    return _model("SVDF", tensors, inputs=[0], outputs=[5], op_inputs=[0, 1, 2, 3 if case.with_bias else -1, 4],
                  op_outputs=[5], options=options, options_type=schema.BuiltinOptions.SVDFOptions)


def _random_case(case: int) -> SvdfCase:
    rng = np.random.default_rng(61000 + case)
    return SvdfCase(batches=int(rng.integers(1, 4)), input_size=int(rng.integers(1, 48)),
                    units=int(rng.integers(1, 20)), rank=int(rng.integers(1, 4)), memory=int(rng.integers(1, 12)),
                    state="int16" if case % 2 else "int8", activation=int(rng.choice([0, 1])))


@pytest.mark.parametrize("case", range(RANDOM_CASES))
def test_random_svdf_bit_exact(case):
    shape = _random_case(case)
    model = svdf_model(shape, np.random.default_rng(case))
    graph, op = only_op(model, "SVDF")
    assert graph.tensors[op.inputs[4]].dtype == shape.state
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"SVDF"})


def test_random_svdf_cases_really_vary():
    cases = [_random_case(case) for case in range(RANDOM_CASES)]
    for field in ("batches", "rank", "input_size", "units", "memory"):
        assert len({getattr(c, field) for c in cases}) >= 3, field
    assert {c.state for c in cases} == {"int8", "int16"}


@pytest.mark.parametrize("state_zero_point", [5, -300])
def test_int16_state_with_zero_point_bit_exact(state_zero_point):
    """TFLM resets an int16 state to 0 whatever its zero point: the older columns then weigh in."""
    case = SvdfCase(batches=2, input_size=10, units=6, rank=2, memory=5, state="int16",
                    state_zero_point=state_zero_point)
    assert_bit_exact(svdf_model(case, np.random.default_rng(5)), samples=6, seed=1, expect_ops={"SVDF"})


def test_saturating_inputs_bit_exact():
    """Extreme inputs: the feature products saturate the int8 state and the output."""
    case = SvdfCase(batches=1, input_size=32, units=8, rank=1, memory=4, state="int8")
    inputs = np.stack([np.full(32, -128, np.int8), np.full(32, 127, np.int8),
                       np.tile(np.array([-128, 127], np.int8), 16)]).reshape(3, 1, 32)
    assert_bit_exact(svdf_model(case, np.random.default_rng(9)), inputs=inputs, expect_ops={"SVDF"})


def test_scratch_is_declared_to_the_planner():
    from tinyml_ptq.compiler.codegen import generate_model_sources

    model = svdf_model(SvdfCase(batches=1, input_size=4, units=3, rank=2, memory=2, state="int16"),
                       np.random.default_rng(0))
    sources = generate_model_sources(parse_tflite(model), model)
    assert sources.steps[0].scratch_bytes == 2 * 6 * 4  # TP_SVDF_SCRATCH_BYTES(6)
    assert 0 in sources.plan.scratch_offsets


def _refusal(graph, match: str, error=UnsupportedOperator):
    with pytest.raises(error, match=match):
        lower_graph(graph)


@pytest.fixture(scope="module")
def small_svdf() -> bytes:
    return svdf_model(SvdfCase(batches=1, input_size=8, units=4, rank=2, memory=3, state="int16"),
                      np.random.default_rng(1))


def _edited(model: bytes, tensors: dict | None = None, inputs: dict | None = None):
    graph, op = only_op(model, "SVDF")
    for position, value in (inputs or {}).items():
        op.inputs[position] = value
    for position, fields in (tensors or {}).items():
        index = op.inputs[position]
        graph.tensors[index] = dataclasses.replace(graph.tensors[index], **fields)
    return graph


def test_unsupported_svdf_forms_are_refused(small_svdf):
    from tinyml_ptq.compiler.ir import Quantization

    cases = [
        ({0: {"dtype": "float32", "quantization": None}, 1: {"dtype": "float32", "quantization": None}}, {},
         r"SVDF \(node 0\) is a float SVDF; supported: a full-integer model: .*tinyml-ptq quantize --mode int8"),
        ({0: {"dtype": "float32", "quantization": None}}, {},
         r"is a hybrid SVDF \(float activations, int8 weights\); supported: a full-integer model"),
        ({0: {"dtype": "int16"}}, {}, r"has int16 activations \(input .*\); supported: int16 activations \(an "
                                      r"int16x8 model\) on .*--runtime tflm"),
        ({4: {"dtype": "int8"}}, {}, "has int16 time weights and a state of type int8; supported: TFLite Micro's "
                                     "integer SVDF: .* both int16 or both int8"),
        ({1: {"quantization": Quantization(np.array([0.01] * 4, np.float32), np.zeros(4, np.int64))}}, {},
         r"has feature weights .* quantized per channel; supported: one scale and zero point per tensor"),
        ({3: {"quantization": Quantization(np.array([1e-2], np.float32), np.array([0]))}}, {},
         "has bias scale 0.01, where the state's times the time weights' is .*; supported: a bias scale that is the "
         "state's times the time weights'"),
        ({1: {"quantization": Quantization(np.array([0.01], np.float32), np.array([2]))}}, {},
         "has feature weights .* with zero point 2; supported: symmetric weights \\(zero point 0\\)"),
        ({}, {3: -1}, r"SVDF \(node 0\) has no bias; supported: a constant int32 bias \(TFLite Micro's integer SVDF "
                      r"needs one\)"),
    ]
    for tensors, inputs, match in cases:
        _refusal(_edited(small_svdf, tensors, inputs), match)


def test_state_shared_with_the_model_is_refused(small_svdf):
    graph, op = only_op(small_svdf, "SVDF")
    graph.outputs.append(op.inputs[4])
    _refusal(graph, r"SVDF \(node 0\) has state .* that is also a model input or output or used by another "
                    r"operator; supported: a state that is a variable tensor of its own")


def test_contradictory_shapes_are_malformed(small_svdf):
    _refusal(_edited(small_svdf, {4: {"shape": (1, 7)}}), r"state shape \[1, 7\]; \[1, 24\] expected",
             MalformedOperator)


# --- QUANTIZE from int16, SOFTMAX to int16 ------------------------------------------------------

def quantize_s16_model(rng: np.random.Generator, out_dtype: str, size: int) -> bytes:
    in_scale = float(np.float32(10 ** rng.uniform(-5, -1)))
    in_zp = int(rng.integers(-32768, 32768)) if rng.integers(0, 2) else 0
    if out_dtype == "int8":
        out_scale = float(np.float32(in_scale * 10 ** rng.uniform(-0.5, 3)))
        out_zp = int(rng.integers(-128, 128))
    else:
        out_scale = float(np.float32(in_scale * 10 ** rng.uniform(-1, 1)))
        out_zp = int(rng.integers(-1000, 1000))
    tensors = [_T("x", "int16", (1, size), in_scale, in_zp), _T("y", out_dtype, (1, size), out_scale, out_zp)]
    return _model("QUANTIZE", tensors, [0], [1], [0], [1])


@pytest.mark.parametrize("case", range(8))
def test_random_quantize_int16_to_int8_bit_exact(case):
    rng = np.random.default_rng(62000 + case)
    size = int(rng.integers(1, 300))
    model = quantize_s16_model(rng, "int8", size)
    inputs = rng.integers(-32768, 32768, size=(8, 1, size)).astype(np.int16)
    inputs[0], inputs[1] = -32768, 32767
    assert_bit_exact(model, inputs=inputs, expect_ops={"QUANTIZE"})


@pytest.mark.parametrize("case", range(3))
def test_random_quantize_int16_to_int32_bit_exact(case):
    rng = np.random.default_rng(63000 + case)
    model = quantize_s16_model(rng, "int32", 64)
    inputs = rng.integers(-32768, 32768, size=(6, 1, 64)).astype(np.int16)
    assert_bit_exact(model, inputs=inputs, expect_ops={"QUANTIZE"})


@pytest.mark.parametrize("case", range(4))
def test_random_softmax_int8_to_int16_bit_exact(case):
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    rng = np.random.default_rng(64000 + case)
    depth = int(rng.integers(2, 40))
    tensors = [_T("x", "int8", (2, depth), float(np.float32(rng.uniform(0.02, 0.5))), int(rng.integers(-128, 128))),
               _T("y", "int16", (2, depth), 1.0 / 65536, -32768)]
    options = schema.SoftmaxOptionsT()
    options.beta = 1.0
    model = _model("SOFTMAX", tensors, [0], [1], [0], [1], options, schema.BuiltinOptions.SoftmaxOptions)
    assert_bit_exact(model, samples=8, seed=case, expect_ops={"SOFTMAX"})


# --- TFLM's keyword model, every SVDF's output --------------------------------------------------

def test_keyword_model_every_intermediate_output_bit_exact():
    """TFLM's keyword_scrambled_8bit (int16 input, QUANTIZE to int8, seven int8-state SVDFs, an
    int8 -> int16 softmax, an int32 output) answering with each operator's output: its final
    output alone saturates on most inputs, the layers before it do not."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from conftest import SHARED_MODELS

    data = (SHARED_MODELS.parent / "tflm" / "keyword_scrambled_8bit.tflite").read_bytes()
    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    subgraph = tree.subgraphs[0]
    subgraph.outputs = np.array([op.outputs[0] for op in subgraph.operators], dtype=np.int32)
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    model = bytes(builder.Output())
    rng = np.random.default_rng(11)
    inputs = np.concatenate([rng.integers(-32768, 32768, size=(4, 1, 96)),
                             rng.integers(0, 24000, size=(4, 1, 96))]).astype(np.int16)
    sources = assert_bit_exact(model, inputs=inputs, expect_ops={"SVDF", "QUANTIZE", "SOFTMAX"})
    assert sources.op_names.count("SVDF") == 7
