"""UNIDIRECTIONAL_SEQUENCE_LSTM (TFLite's int8 LSTM: int8 activations and weights, int16 cell
state, int32 biases) bit-exact against the TFLite Micro reference: TFLM's own trained model,
randomized Keras LSTM layers converted by the real TFLite converter (units, time steps, input
size, weights, calibration ranges and seeds vary), and variants of them edited in the flatbuffer
where Keras has no switch (cell clip, batch above 1, time-major layout), with the reference
kernel set and the DSP one. Every LSTM variant the
runtime does not evaluate is refused with the reason named.

The random models here come from tf_keras (Keras 2) models with a static batch of 1 through
TFLiteConverter.from_keras_model. quantize gets the same fused operator from Keras 3 and
tf_keras models through its loader (model_loader.recurrent_layers_convertible; docs/quantize.md,
"Recurrent layers").
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tinyml_ptq.compiler.lowering import MalformedOperator, UnsupportedOperator, lower_graph
from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.interpreters.tflite_inspect import require_full_int8

from conftest import SHARED_MODELS
from harness import assert_bit_exact, only_op, random_range

LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"
TRAINED = SHARED_MODELS.parent / "tflm" / "trained_lstm_int8.tflite"
RANDOM_CASES = 8
DSP_SOURCE = "kernels/dsp/tp_unidirectional_sequence_lstm_s8_dsp.c"


def assert_bit_exact_both(model: bytes, **kwargs):
    """assert_bit_exact with the reference kernel set, then with the DSP one (portable C on the
    host; the real SMLAD on the emulated Cortex-M4 in the slow test); returns the reference's sources."""
    sources = assert_bit_exact(model, **kwargs)
    dsp = assert_bit_exact(model, kernels="dsp", **kwargs)
    assert DSP_SOURCE in dsp.runtime_sources and DSP_SOURCE not in sources.runtime_sources
    return sources


# --- flatbuffer edits --------------------------------------------------------------------------

def _edit(model: bytes, change) -> bytes:
    """The model with `change(subgraph, lstm_operator)` applied to its object tree."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    subgraph = tree.subgraphs[0]
    codes = tree.operatorCodes
    lstm = [op for op in subgraph.operators
            if max(codes[op.opcodeIndex].builtinCode, codes[op.opcodeIndex].deprecatedBuiltinCode)
            == schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM]
    assert len(lstm) == 1
    change(subgraph, lstm[0])
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _lstm_output_as_model_output(model: bytes) -> bytes:
    """The model answering with the LSTM's own output (every operator still runs)."""
    def change(subgraph, op):
        subgraph.outputs = np.array([op.outputs[0]], dtype=np.int32)
    return _edit(model, change)


def _with_cell_clip(model: bytes, clip: float) -> bytes:
    def change(subgraph, op):
        op.builtinOptions.cellClip = clip
    return _edit(model, change)


def _with_batches(model: bytes, batches: int, time_major: bool) -> bytes:
    """A model that is one LSTM, reshaped to `batches` sequences, batch major [B][T][I] or
    time major [T][B][I] (TFLM reads the layout from the option; the weights are unchanged)."""
    def change(subgraph, op):
        inp, out = subgraph.tensors[op.inputs[0]], subgraph.tensors[op.outputs[0]]
        assert list(subgraph.inputs) == [op.inputs[0]] and list(subgraph.outputs) == [op.outputs[0]]
        _, steps, features = (int(d) for d in inp.shape)
        units = int(out.shape[2])
        lead = [steps, batches] if time_major else [batches, steps]
        for tensor, shape in ((inp, lead + [features]), (out, lead + [units]),
                              (subgraph.tensors[op.inputs[18]], [batches, units]),
                              (subgraph.tensors[op.inputs[19]], [batches, units])):
            tensor.shape = np.array(shape, dtype=np.int32)
            tensor.shapeSignature = None
        op.builtinOptions.timeMajor = time_major
    return _edit(model, change)


# --- TFLM's trained model ---------------------------------------------------------------------

def _trained_inputs(count: int, seed: int) -> np.ndarray:
    """Random int8 images, plus all-minimum, all-maximum and a blank image with one bright row."""
    rng = np.random.default_rng(seed)
    images = rng.integers(-128, 128, size=(count, 28, 28), dtype=np.int8)
    images[0], images[1] = -128, 127
    images[2] = -128
    images[2, 14] = 127
    return images


def test_trained_lstm_int8_bit_exact():
    model = TRAINED.read_bytes()
    sources = assert_bit_exact_both(model, inputs=_trained_inputs(12, 0), expect_ops={LSTM})
    assert sources.op_names == [LSTM, "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]


def test_trained_lstm_int8_sequence_output_bit_exact():
    """The LSTM's whole output sequence (28 steps of 20 units), not just the classifier after it."""
    assert_bit_exact_both(_lstm_output_as_model_output(TRAINED.read_bytes()), inputs=_trained_inputs(12, 1),
                          expect_ops={LSTM})


def test_trained_lstm_int8_each_sample_starts_from_reset_state():
    """A sample's result does not depend on the samples before it, on our side and TFLM's."""
    from harness import run_both

    model = _lstm_output_as_model_output(TRAINED.read_bytes())
    images = _trained_inputs(4, 2)
    ours, theirs, _ = run_both(model, inputs=images)
    alone, alone_ref, _ = run_both(model, inputs=images[3:])
    assert np.array_equal(ours[3], alone[0]) and np.array_equal(theirs[3], alone_ref[0])
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("clip", [0.0, 0.4, 3.0, 1e6])
def test_trained_lstm_int8_cell_clip(clip):
    """No clip, clips that bind (the cell state reaches about +-5 on these inputs), and one
    beyond int16: TFLM's quantized clip then is 32767, which still cuts -32768."""
    model = _with_cell_clip(_lstm_output_as_model_output(TRAINED.read_bytes()), clip)
    assert only_op(model, LSTM)[1].options["cell_clip"] == pytest.approx(clip)
    assert_bit_exact_both(model, inputs=_trained_inputs(6, 3), expect_ops={LSTM})


@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385"])  # the DSP kernel set, and the reference one
def test_trained_lstm_int8_sequence_exact_under_qemu(board, tmp_path):
    import shutil

    from tinyml_ptq import build, generate, run

    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed")
    model = tmp_path / "trained_lstm_sequence.tflite"
    model.write_bytes(_lstm_output_as_model_output(TRAINED.read_bytes()))
    np.save(tmp_path / "images.npy", _trained_inputs(4, 4))
    project = generate(model, tmp_path / "fw", board=board).project_dir
    build(project)
    result = run(project, str(tmp_path / "images.npy"))
    assert result.samples == 4
    assert result.exact == 1.0, f"outputs differ from TFLM on samples {result.mismatches}"
    assert [op.op for op in result.per_op][0] == LSTM


# --- randomized Keras LSTM layers --------------------------------------------------------------

def convert_keras_lstm(rng, time_steps: int, input_size: int, units: int, return_sequences: bool = True,
                       calib_count: int = 24) -> bytes:
    """A tf_keras LSTM layer with random weights, converted to full int8 (batch 1)."""
    import tensorflow as tf
    import tf_keras

    inp = tf_keras.Input(shape=(time_steps, input_size), batch_size=1)
    layer = tf_keras.layers.LSTM(units, return_sequences=return_sequences,
                                 unit_forget_bias=bool(rng.integers(0, 2)))
    model = tf_keras.Model(inp, layer(inp))
    kernel, recurrent, bias = layer.get_weights()
    weight_scale = float(rng.choice([0.2, 0.6, 1.5]))
    layer.set_weights([rng.normal(0.0, weight_scale, kernel.shape).astype(np.float32),
                       rng.normal(0.0, weight_scale, recurrent.shape).astype(np.float32),
                       (bias + rng.normal(0.0, 0.5, bias.shape)).astype(np.float32)])
    lo, hi = random_range(rng)
    calib = [rng.uniform(lo, hi, size=(1, time_steps, input_size)).astype(np.float32) for _ in range(calib_count)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x] for x in calib)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _random_case(case: int) -> tuple[np.random.Generator, dict]:
    rng = np.random.default_rng(47000 + case)
    shape = {"time_steps": int(rng.integers(1, 13)), "input_size": int(rng.integers(1, 24)),
             "units": int(rng.integers(1, 40)), "return_sequences": case % 4 != 3}
    return rng, shape


@pytest.mark.parametrize("case", range(RANDOM_CASES))
def test_random_keras_lstm_bit_exact(case):
    rng, shape = _random_case(case)
    model = convert_keras_lstm(rng, **shape)
    graph, op = only_op(model, LSTM)
    inp, output = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    assert inp.shape == (1, shape["time_steps"], shape["input_size"])
    assert output.shape == (1, shape["time_steps"], shape["units"])
    assert graph.tensors[op.inputs[19]].dtype == "int16"
    require_full_int8(model)  # what quantize checks: the int16 cell state is the int8 LSTM's own
    assert_bit_exact_both(model, samples=8, seed=case, expect_ops={LSTM})


def test_random_cases_really_vary():
    shapes = [_random_case(case)[1] for case in range(RANDOM_CASES)]
    assert len({s["time_steps"] for s in shapes}) >= 4 and len({s["units"] for s in shapes}) >= 4
    assert len({s["input_size"] for s in shapes}) >= 4
    assert {s["return_sequences"] for s in shapes} == {True, False}


def test_one_unit_one_feature_one_step_bit_exact():
    model = convert_keras_lstm(np.random.default_rng(3), time_steps=1, input_size=1, units=1)
    assert_bit_exact_both(model, inputs=np.arange(-128, 128, dtype=np.int8).reshape(256, 1, 1, 1), expect_ops={LSTM})


@pytest.fixture(scope="module")
def small_lstm() -> bytes:
    """One LSTM, 5 steps of 3 features, 6 units (the model is the LSTM alone)."""
    return convert_keras_lstm(np.random.default_rng(7), time_steps=5, input_size=3, units=6)


@pytest.mark.parametrize("batches,time_major", [(1, True), (3, False), (3, True)])
def test_batches_and_time_major_bit_exact(small_lstm, batches, time_major):
    """Several sequences at once, batch major or time major (TFLM steps every sequence of a time
    step together there; the runtime one sequence after the other, which gives the same bytes)."""
    model = _with_batches(small_lstm, batches, time_major)
    graph, op = only_op(model, LSTM)
    assert op.options["time_major"] is time_major
    assert graph.tensors[op.inputs[0]].shape == ((5, batches, 3) if time_major else (batches, 5, 3))
    assert_bit_exact_both(model, samples=6, seed=batches, expect_ops={LSTM})


def test_scratch_is_declared_to_the_planner(small_lstm):
    from tinyml_ptq.compiler.codegen import generate_model_sources

    sources = generate_model_sources(parse_tflite(small_lstm), small_lstm)
    assert sources.steps[0].scratch_bytes == 3 * 6 * 2  # TP_LSTM_SCRATCH_BYTES(6)
    assert 0 in sources.plan.scratch_offsets


# --- the gates' int16 activations, over every input --------------------------------------------

def _int16_activation_model(opcode: str, input_scale: float) -> bytes:
    """One int16 LOGISTIC or TANH over all 65,536 int16 values, output in Q0.15: TFLM's kernels
    there are the routines its LSTM applies to the gates and the cell state."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT()
    model.version = 3
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = getattr(schema.BuiltinOperator, opcode)
    code.version = 2
    model.operatorCodes = [code]
    model.buffers = [schema.BufferT() for _ in range(3)]
    tensors = []
    for k, (name, scale) in enumerate((("x", input_scale), ("y", 2.0 ** -15))):
        tensor = schema.TensorT()
        tensor.name, tensor.type, tensor.buffer = name, schema.TensorType.INT16, k + 1
        tensor.shape = np.array([1, 65536], dtype=np.int32)
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale, tensor.quantization.zeroPoint = [scale], [0]
        tensors.append(tensor)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0], np.int32), np.array([1], np.int32)
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.operators = tensors, [op]
    subgraph.inputs, subgraph.outputs = np.array([0], np.int32), np.array([1], np.int32)
    model.subgraphs = [subgraph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _runtime_activations(calls: list[str], tmp_path) -> np.ndarray:
    """Each C expression of `x` (an int16) evaluated by the runtime over every int16 value."""
    import subprocess

    from tinyml_ptq.core.resources import RUNTIME_DIR
    from tinyml_ptq.pipeline.hostrun import HOST_CFLAGS

    main = tmp_path / "activations.c"
    main.write_text('#include <stdio.h>\n#include "tp_lstm.h"\nint main(void)\n{\n'
                    + "".join(f"    for (int32_t v = INT16_MIN; v <= INT16_MAX; ++v) {{\n"
                              f"        const int16_t x = (int16_t)v, y = {call};\n"
                              f"        fwrite(&y, sizeof y, 1, stdout);\n    }}\n" for call in calls)
                    + "    return 0;\n}\n")
    exe = tmp_path / "activations"
    subprocess.run(["gcc", *HOST_CFLAGS, "-I", str(RUNTIME_DIR / "include"), str(main),
                    str(RUNTIME_DIR / "kernels" / "reference" / "tp_unidirectional_sequence_lstm_s8.c"),
                    "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype=np.int16).reshape(len(calls), 65536)


def test_gate_activations_match_tflm_on_every_int16_input(tmp_path):
    """Sigmoid of the Q3.12 gates; tanh of the cell gate (Q3.12) and of cell states of scale 2^-11
    (input shift 1: multiplier 6) and 2^-15 (multiplier 3, rounding right shift 3), against TFLM's
    LOGISTIC and TANH kernels, whose own rescales of those scales are the same integers."""
    from tinyml_ptq.compiler.lowering.lstm import cell_tanh_rescale
    from tinyml_ptq.interpreters.reference import ReferenceInterpreter

    cases = [("LOGISTIC", -12, "tp_lstm_sigmoid_s16(x)")]
    for power in (-12, -11, -15):
        multiplier, shift = cell_tanh_rescale(power)
        cases.append(("TANH", power, f"tp_lstm_tanh_s16(x, {multiplier}, {shift})"))
    assert [c[2] for c in cases[1:]] == ["tp_lstm_tanh_s16(x, 3, 0)", "tp_lstm_tanh_s16(x, 6, 0)",
                                         "tp_lstm_tanh_s16(x, 3, 3)"]
    ours = _runtime_activations([c[2] for c in cases], tmp_path)
    every = np.arange(-32768, 32768, dtype=np.int16)[None]
    for (opcode, power, call), mine in zip(cases, ours):
        theirs = ReferenceInterpreter(_int16_activation_model(opcode, 2.0 ** power)).invoke(every).reshape(-1)
        bad = np.flatnonzero(mine != theirs)
        assert bad.size == 0, (f"{call}: {bad.size} inputs differ, first x={int(every[0, bad[0]])}: "
                               f"ours {mine[bad[0]]}, TFLM {theirs[bad[0]]}")


# --- refusals ---------------------------------------------------------------------------------

def _refusal(graph, match: str, error=UnsupportedOperator):
    with pytest.raises(error, match=match):
        lower_graph(graph)


def _edited_graph(model: bytes, inputs: dict | None = None, tensors: dict | None = None, options: dict | None = None):
    """The parsed model with LSTM operands replaced, tensors changed and options set."""
    graph, op = only_op(model, LSTM)
    for position, value in (inputs or {}).items():
        op.inputs[position] = value
    for position, fields in (tensors or {}).items():
        index = op.inputs[position]
        graph.tensors[index] = dataclasses.replace(graph.tensors[index], **fields)
    op.options.update(options or {})
    return graph, op


@pytest.mark.parametrize("positions,reason", [
    ((9, 10, 11), "peephole connections"),
    ((16,), "a projection layer"),
    ((20, 21, 22, 23), "layer normalization"),
])
def test_lstm_variants_are_refused(small_lstm, positions, reason):
    graph, op = only_op(small_lstm, LSTM)
    donor = op.inputs[15]  # any tensor: its presence makes the variant
    graph, _ = _edited_graph(small_lstm, inputs={p: donor for p in positions})
    _refusal(graph, f"{LSTM} \\(node 0\\) is an LSTM with {reason}; supported: the standard LSTM, as a Keras LSTM "
                    "layer converts")


def test_cifg_lstm_is_refused(small_lstm):
    graph, _ = _edited_graph(small_lstm, inputs={1: -1, 5: -1, 12: -1})
    _refusal(graph, r"\(node 0\) has no input gate \(coupled input and forget gates, CIFG\); supported: all four "
                    r"gates")


def test_unsupported_forms_are_refused(small_lstm):
    from tinyml_ptq.compiler.ir import Quantization

    cases = [
        ({0: {"dtype": "int16"}}, {}, r"has int16 activations \(input .*\); supported: int16 activations \(an "
                                      r"int16x8 model\) on .*--runtime tflm"),
        ({19: {"dtype": "int8"}}, {}, "has an int8 cell state .*; supported: the full-integer int8 LSTM.* an int16 "
                                      "cell state"),
        ({19: {"quantization": Quantization(np.array([0.0003], np.float32), np.array([0]))}}, {},
         r"cell state .* of scale 0.0003; supported: a symmetric cell state \(zero point 0\) whose scale is a power "
         r"of two from 2\^-30 to 2\^2"),
        ({2: {"quantization": Quantization(np.array([0.01, 0.02] * 3, np.float32), np.zeros(6, np.int64))}}, {},
         r"has weights .* quantized per channel; supported: one scale and zero point per tensor"),
        ({3: {"quantization": Quantization(np.array([0.01], np.float32), np.array([3]))}}, {},
         r"has weights .* with zero point 3; supported: symmetric weights \(zero point 0\)"),
        ({13: {"dtype": "int64"}}, {}, "has a constant int64 bias .*; supported: .*constant int32 biases"),
        ({}, {"fused_activation_function": 1}, "has cell activation RELU; supported: cell activation TANH, the only "
                                               "one TFLite Micro's LSTM kernel evaluates"),
        ({}, {"diagonal_recurrent_tensors": True}, "has diagonal recurrent weights; supported: full recurrent weight "
                                                   "matrices"),
    ]
    for tensors, options, match in cases:
        graph, _ = _edited_graph(small_lstm, tensors=tensors, options=options)
        _refusal(graph, match)


def test_state_shared_with_the_model_is_refused(small_lstm):
    graph, op = only_op(small_lstm, LSTM)
    graph.outputs.append(op.inputs[18])
    _refusal(graph, f"{LSTM} \\(node 0\\) has hidden state .* that is also a model input or output or used by "
                    "another operator; supported: a state that is a variable tensor of its own")


def test_contradictory_shapes_are_malformed(small_lstm):
    graph, _ = _edited_graph(small_lstm, tensors={6: {"shape": (6, 5)}})
    _refusal(graph, r"recurrent weights .* has shape \[6, 5\]; \[6, 6\] expected", MalformedOperator)


def _convert_unquantized(dynamic: bool) -> bytes:
    import tensorflow as tf
    import tf_keras

    # Weights of 1,024 elements or more: dynamic-range quantization leaves smaller ones float.
    inp = tf_keras.Input(shape=(4, 32), batch_size=1)
    model = tf_keras.Model(inp, tf_keras.layers.LSTM(40, return_sequences=True)(inp))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if dynamic:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


@pytest.mark.parametrize("dynamic,kind", [(False, "a float LSTM"), (True, r"a hybrid LSTM \(float activations, int8 "
                                                                         r"weights\)")])
def test_float_and_hybrid_lstm_are_refused(dynamic, kind):
    model = _convert_unquantized(dynamic)
    graph, op = only_op(model, LSTM)
    assert graph.tensors[op.inputs[0]].dtype == "float32"
    assert graph.tensors[op.inputs[2]].dtype == ("int8" if dynamic else "float32")
    _refusal(graph, f"{LSTM} \\(node \\d+\\) is {kind}; supported: a full-integer model: .*tinyml-ptq quantize "
                    "--mode int8")
    with pytest.raises(Exception, match="is not fully int8"):
        require_full_int8(model)
