"""Code generator: hostile model files, refused models, and the memory plan."""

import re
import subprocess

import flatbuffers
import numpy as np
import pytest
import tensorflow as tf
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tinyml_ptq.compiler.codegen import generate_model_sources
from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.core.errors import UserError

from harness import assert_bit_exact, convert_int8

HOSTILE = 'evil */ "quote" \\ \n#include <stdio.h>\n#define model_invoke exit ??/ \r\t{0}'


def _rename_tensors(tflite_bytes: bytes, pattern: str) -> bytes:
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite_bytes, 0))
    for i, tensor in enumerate(model.subgraphs[0].tensors):
        tensor.name = pattern.format(i).encode()
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def dense_reshape_model():
    dense = tf.keras.layers.Dense(6, activation="relu")
    dense.build((1, 10))
    return convert_int8(lambda x: tf.reshape(dense(x), (1, 2, 3)), [(10,)])


def test_hostile_tensor_names_produce_safe_compiling_code(dense_reshape_model):
    hostile = _rename_tensors(dense_reshape_model, HOSTILE)
    assert parse_tflite(hostile).tensors[0].name.startswith("evil */")
    sources = assert_bit_exact(hostile, samples=4)  # compiles with -Werror and runs exact
    code = sources.files["model.c"]
    assert "*/ \"quote\"" not in code and "??/" not in code
    directives = [line.strip() for line in code.splitlines() if line.lstrip().startswith("#")]
    assert not any("stdio" in d or "model_invoke" in d for d in directives), directives
    # Every comment closes on its own line: the name did not break out of it.
    for line in code.splitlines():
        if "/*" in line:
            assert line.rstrip().endswith("*/"), line


def test_model_name_is_sanitized_into_identifiers(dense_reshape_model):
    graph = parse_tflite(dense_reshape_model, name="1 bad-name */")
    sources = generate_model_sources(graph, dense_reshape_model, prefix="3 my model! */")
    assert sources.prefix == "m_3_my_model"
    assert "m_3_my_model_invoke(void)" in sources.files["model.h"]


def test_model_data_array_holds_the_exact_tflite_bytes(dense_reshape_model, tmp_path):
    sources = generate_model_sources(parse_tflite(dense_reshape_model), dense_reshape_model)
    for name in ("model_data.c", "model_data.h"):
        (tmp_path / name).write_text(sources.files[name])
    (tmp_path / "dump.c").write_text(
        '#include <stdio.h>\n#include <stdint.h>\n#include "model_data.h"\n'
        "int main(void) {\n"
        "  if (((uintptr_t)g_model_model_data) % 16) return 2;\n"
        "  fwrite(g_model_model_data, 1, g_model_model_data_size, stdout); return 0; }\n"
    )
    exe = tmp_path / "dump"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path),
                    str(tmp_path / "dump.c"), str(tmp_path / "model_data.c"), "-o", str(exe)], check=True)
    assert subprocess.run([str(exe)], capture_output=True, check=True).stdout == dense_reshape_model


def test_unsupported_operator_is_refused_before_anything_is_written(monkeypatch):
    from tinyml_ptq.compiler import lowering

    # An operator taken out of the native runtime's table for this test (it gains operators).
    monkeypatch.setattr(lowering, "SUPPORTED_OPERATORS", tuple(sorted(set(lowering.SUPPORTED_OPERATORS) - {"TRANSPOSE"})))
    model = convert_int8(lambda x: tf.transpose(x, [0, 2, 1]), [(3, 5)])
    with pytest.raises(UserError, match=r"unsupported operator TRANSPOSE \(node \d+\); supported: .*FULLY_CONNECTED"):
        generate_model_sources(parse_tflite(model), model)


def test_every_unsupported_operator_is_named_and_the_tflm_route_offered(tmp_path, monkeypatch):
    from tinyml_ptq.compiler import lowering
    from tinyml_ptq.compiler.project import generate

    # Two operators TFLM runs, taken out of the native runtime's table for this test (it gains operators).
    monkeypatch.setattr(lowering, "SUPPORTED_OPERATORS",
                        tuple(sorted(set(lowering.SUPPORTED_OPERATORS) - {"TRANSPOSE", "REDUCE_MAX"})))
    model = convert_int8(lambda x: tf.reduce_max(tf.transpose(x, [0, 2, 1]), axis=1), [(3, 5)])
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    with pytest.raises(UserError) as info:
        generate(path, tmp_path / "out")
    message = str(info.value)
    assert re.search(r"unsupported operators TRANSPOSE \(node \d+\), REDUCE_MAX \(node \d+\)", message), message
    assert message.endswith("--runtime tflm (with --tflm-dir) builds the firmware on TFLM instead")
    assert not (tmp_path / "out").exists()


def test_float_model_is_refused():
    dense = tf.keras.layers.Dense(3)
    dense.build((1, 4))
    fn = tf.function(lambda x: dense(x), input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    float_model = converter.convert()
    with pytest.raises(UserError, match=r"has float32 unquantized tensor .*; supported: a full-integer model: quantized int8 activations"):
        generate_model_sources(parse_tflite(float_model), float_model)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip_header"])
def test_corrupted_files_are_refused_cleanly(dense_reshape_model, damage):
    data = bytearray(dense_reshape_model)
    if damage == "truncate":
        data = data[: len(data) // 3]
    elif damage == "garbage":
        data = data[:8] + bytes(np.random.default_rng(0).integers(0, 256, len(data) - 8, dtype=np.uint8))
    elif damage == "empty":
        data = b""
    else:
        data[4:8] = b"XXXX"
    with pytest.raises(UserError):
        graph = parse_tflite(bytes(data))
        generate_model_sources(graph, bytes(data))


def test_plan_keeps_simultaneously_live_buffers_apart(dense_reshape_model):
    sources = generate_model_sources(parse_tflite(dense_reshape_model), dense_reshape_model)
    buffers = sources.plan.buffers
    for a in buffers:
        assert a.offset % 16 == 0
        assert a.offset + a.size <= sources.arena_bytes
        for b in buffers:
            if a is b or a.last < b.first or b.last < a.first:
                continue
            assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
    assert sources.arena_bytes >= sources.live_lower_bound
