"""DSP kernels (firmware/runtime/kernels/dsp): bit-exact with TFLM, selected from the board's core.

The same randomized convolution, depthwise and fully-connected models as tests/ops (their
drawing helpers), plus the shapes the DSP kernels treat specially: 1x1 convolutions read in
place, first layers with one or three input channels, KWS's tall 10x4 kernel, odd pixel and
channel counts (the 2x2 blocks' tails), accumulation depths that are not a multiple of 4.
They run twice: natively (the kernels with portable C in place of the DSP instructions, fast,
checks the blocking, im2col and bias folding) and on the emulated Cortex-M4 (mps2-an386) and
Cortex-M7 (mps2-an500), where the real SMLAD/SXTB16 instructions run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from string import Template

import numpy as np
import pytest
import tensorflow as tf
from ops.test_conv import ACTIVATIONS, channel_weights, draw_calibration, draw_geometry

from tinyml_ptq.compiler.codegen import generate_model_sources
from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.core.resources import RUNTIME_DIR
from tinyml_ptq.interpreters.reference import ReferenceInterpreter
from tinyml_ptq.pipeline.hostrun import build_host_runner, run_host
from tinyml_ptq.target.boards import get_board, resolve_kernels

from harness import convert_int8

needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                               reason="arm-none-eabi-gcc / qemu-system-arm not installed")


def conv_model(case: int) -> bytes:
    """CONV_2D drawn like tests/ops/test_conv.py (no groups: those stay on the reference kernel)."""
    rng = np.random.default_rng(7000 + case)
    kernel, stride, dilation, padding, (height, width) = draw_geometry(rng, case)
    if case % 4 == 3:
        kernel, stride, dilation = (1, 1), (1, 1), (1, 1)  # pointwise: read in place
    in_channels = [1, 3, int(rng.integers(1, 40))][case % 3]
    out_channels = int(rng.integers(1, 26))
    _, activation, _ = ACTIVATIONS[case % len(ACTIVATIONS)]
    weights = channel_weights(rng, (*kernel, in_channels, out_channels), channel_axis=3)
    bias = rng.normal(size=out_channels).astype(np.float32) * float(rng.uniform(0.1, 3.0))
    use_bias = case % 6 != 5

    def build(x):
        y = tf.nn.conv2d(x, weights, strides=[1, *stride, 1], padding=padding, dilations=[1, *dilation, 1])
        return activation(tf.nn.bias_add(y, bias) if use_bias else y)

    return convert_int8(build, [(height, width, in_channels)], per_tensor=case % 4 == 1,
                        calib_range=draw_calibration(rng), seed=case)


def narrow_conv_model(case: int) -> bytes:
    """CONV_2D with 2 to 8 input channels (VWW's and ResNet's first layers and early pointwise ones):
    filter rows of kw * in_c bytes that do and do not fill whole words (the im2col gathers a
    row or the whole column), odd and even pixel and output channel counts, and (every fourth
    case) a dead all-zero filter, whose output is a constant the generator gives the short
    requantization (the general one still runs for odd channel counts' last pair and clamps
    inside the int8 range)."""
    rng = np.random.default_rng(7500 + case)
    in_channels = 2 + case % 7
    kernel = [(1, 1), (3, 3), (2, 3), (1, 1), (3, 1)][case % 5]
    stride = (1, 1) if kernel == (1, 1) else tuple(int(s) for s in rng.integers(1, 3, size=2))
    padding = "SAME" if case % 2 == 0 else "VALID"
    height, width = (int(v) for v in rng.integers(3, 12, size=2))
    out_channels = int(rng.integers(1, 12))
    _, activation, _ = ACTIVATIONS[case % len(ACTIVATIONS)]
    weights = channel_weights(rng, (*kernel, in_channels, out_channels), channel_axis=3)
    if case % 4 == 3:
        weights[..., out_channels // 2] = 0.0
    bias = rng.normal(size=out_channels).astype(np.float32)

    def build(x):
        y = tf.nn.conv2d(x, weights, strides=[1, *stride, 1], padding=padding)
        return activation(tf.nn.bias_add(y, bias))

    return convert_int8(build, [(height, width, in_channels)], per_tensor=case % 5 == 1,
                        calib_range=draw_calibration(rng), seed=case)


def kws_first_layer_model() -> bytes:
    """KWS DS-CNN's first layer: 49x10x1 MFCCs, 10x4 kernel, stride 2, SAME, 64 filters, ReLU."""
    rng = np.random.default_rng(11)
    weights = channel_weights(rng, (10, 4, 1, 64), channel_axis=3)
    return convert_int8(lambda x: tf.nn.relu(tf.nn.conv2d(x, weights, strides=[1, 2, 2, 1], padding="SAME")),
                        [(49, 10, 1)], calib_range=(-3.0, 5.0))


def depthwise_model(case: int) -> bytes:
    """DEPTHWISE_CONV_2D drawn like tests/ops/test_conv.py (every fifth with multiplier 2: more in
    tests/test_dsp_depthwise_multiplier.py)."""
    rng = np.random.default_rng(8000 + case)
    kernel, stride, dilation, padding, (height, width) = draw_geometry(rng, case)
    in_channels = int(rng.integers(1, 40))
    multiplier = 2 if case % 5 == 4 else 1
    _, activation, _ = ACTIVATIONS[(case + 1) % len(ACTIVATIONS)]
    weights = channel_weights(rng, (*kernel, in_channels * multiplier), channel_axis=2)
    weights = weights.reshape(*kernel, in_channels, multiplier)
    bias = rng.normal(size=in_channels * multiplier).astype(np.float32)
    use_bias = case % 6 != 5

    def build(x):
        y = tf.nn.depthwise_conv2d(x, weights, strides=[1, *stride, 1], padding=padding, dilations=dilation)
        return activation(tf.nn.bias_add(y, bias) if use_bias else y)

    return convert_int8(build, [(height, width, in_channels)], per_tensor=case % 4 == 1,
                        calib_range=draw_calibration(rng), seed=case)


# 3x3 depthwise geometries the DSP kernel treats specially: (input HxWxC, strides, dilation, padding).
# Narrow images taller than wide run along columns (the first five; the last one's planes are too
# big for that), four-output steps leave 1..3 outputs of a row, stride 2 either way, a tall
# dilation on the SIMD rows, a wide one off them, channel counts that are not a multiple of 4.
DEPTHWISE_3X3 = [
    ((25, 5, 9), (1, 1), (1, 1), "SAME"),  # KWS-like, transposed
    ((20, 6, 6), (2, 2), (1, 1), "SAME"),
    ((9, 7, 5), (1, 1), (1, 1), "VALID"),
    ((30, 4, 16), (1, 1), (1, 1), "SAME"),
    ((17, 9, 3), (2, 1), (1, 1), "SAME"),
    ((6, 6, 8), (1, 1), (1, 1), "SAME"),  # square: a quad and a pair per row
    ((3, 3, 12), (1, 1), (1, 1), "SAME"),  # a pair and a single
    ((13, 11, 7), (2, 2), (1, 1), "SAME"),
    ((10, 14, 6), (1, 2), (1, 1), "VALID"),
    ((11, 9, 5), (1, 1), (2, 1), "SAME"),
    ((9, 11, 5), (1, 1), (1, 2), "SAME"),
    ((12, 23, 4), (1, 1), (1, 1), "SAME"),
    ((200, 6, 8), (1, 1), (1, 1), "SAME"),  # too tall to transpose: along rows, bands sliding
]


def depthwise_3x3_model(case: int) -> bytes:
    rng = np.random.default_rng(8500 + case)
    shape, stride, dilation, padding = DEPTHWISE_3X3[case]
    _, activation, _ = ACTIVATIONS[case % len(ACTIVATIONS)]
    weights = channel_weights(rng, (3, 3, shape[2]), channel_axis=2)[..., None]
    if case % 3 == 2:
        weights[:, :, shape[2] // 2] = 0.0  # a dead channel: a constant output
    bias = rng.normal(size=shape[2]).astype(np.float32)

    def build(x):
        y = tf.nn.depthwise_conv2d(x, weights, strides=[1, *stride, 1], padding=padding, dilations=dilation)
        return activation(tf.nn.bias_add(y, bias))

    return convert_int8(build, [shape], per_tensor=case % 4 == 1, calib_range=draw_calibration(rng), seed=case)


def fully_connected_model(case: int) -> bytes:
    rng = np.random.default_rng(9000 + case)
    rows = 3 if case % 4 == 2 else 1  # a 2-D input: rows are batches, the kernel's two columns
    in_features, units = int(rng.integers(1, 90)), int(rng.integers(1, 40))
    weights = (rng.normal(size=(in_features, units)) * rng.uniform(0.05, 2.0)).astype(np.float32)
    bias = rng.uniform(-1, 1, size=units).astype(np.float32)
    _, activation, _ = ACTIVATIONS[case % len(ACTIVATIONS)]
    shape = (rows, in_features) if rows > 1 else (in_features,)
    return convert_int8(lambda x: activation(tf.matmul(x, weights) + bias if case % 4 != 3 else tf.matmul(x, weights)),
                        [shape], per_tensor=case % 2 == 1, calib_range=draw_calibration(rng), seed=case)



def add_model(case: int, subtract: bool = False) -> bytes:
    """ADD (or SUB) of two same-shape tensors (a residual join), each with its own scale, fused activations."""
    rng = np.random.default_rng(9500 + case + 100 * subtract)
    shape = (int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 20)))
    gain = float(rng.uniform(0.2, 4.0))
    _, activation, _ = ACTIVATIONS[case % len(ACTIVATIONS)]

    def build(x):
        y = tf.nn.relu(x) * gain
        return activation(x - y if subtract else x + y)

    return convert_int8(build, [shape], calib_range=draw_calibration(rng), seed=case)


MODELS = {
    **{f"conv{c}": (conv_model, c) for c in range(14)},
    **{f"narrow_conv{c}": (narrow_conv_model, c) for c in range(14)},
    "kws_first_layer": (lambda _: kws_first_layer_model(), 0),
    **{f"depthwise{c}": (depthwise_model, c) for c in range(10)},
    **{f"dw3x3_{c}": (depthwise_3x3_model, c) for c in range(len(DEPTHWISE_3X3))},
    **{f"fc{c}": (fully_connected_model, c) for c in range(8)},
    **{f"add{c}": (add_model, c) for c in range(4)},
    **{f"sub{c}": (lambda case: add_model(case, subtract=True), c) for c in range(4)},
}
_cache: dict[str, bytes] = {}


def model_bytes(name: str) -> bytes:
    if name not in _cache:
        fn, case = MODELS[name]
        _cache[name] = fn(case)
    return _cache[name]


def int8_samples(model: bytes, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random int8 inputs and the TFLM reference outputs for them."""
    ref = ReferenceInterpreter(model)
    x = np.random.default_rng(seed).integers(-128, 128, size=(count, *ref.input.shape[1:]), dtype=np.int8)
    return x, np.asarray(ref.invoke_many(x)).reshape(count, -1)


def host_sources_exact(name: str, kernels: str):
    """Model `name` generated with `kernels`, built for the host and checked byte for byte against
    the TFLM reference on six samples; returns the generated sources."""
    model = model_bytes(name)
    sources = generate_model_sources(parse_tflite(model), model, kernels=kernels)
    inputs, expected = int8_samples(model, 6, seed=len(name))
    with tempfile.TemporaryDirectory(prefix=f"tp-{kernels}-") as tmp:
        binary = build_host_runner(sources, Path(tmp), inputs[0].size, expected.shape[1])
        ours = run_host(binary, inputs.reshape(len(inputs), -1))
    np.testing.assert_array_equal(ours, expected)
    return sources


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dsp_kernels_bit_exact_on_host(name):
    sources = host_sources_exact(name, "dsp")
    assert any("kernels/dsp/" in s for s in sources.runtime_sources), sources.runtime_sources


REQUANTIZE_CHECK = Template(r'''
#include <stdio.h>
#include "$header"
static uint32_t state = 12345u;
static uint32_t next(void) { state = state * 1664525u + 1013904223u; return state; }
int main(void) {
    const int32_t edges[] = {0, 1, -1, 2, -2, 127, -128, 0x7FFF, -0x8000, 0x8000, 0xFFFF, 0x10000, -0x10000,
                             1 << 20, -(1 << 20), INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1, 0x40000000,
                             -0x40000000, 0x3FFFFFFF, -0x3FFFFFFF};
    const int32_t multipliers[] = {0, 1, 0xFFFF, 0x10000, 0x40000000, 0x40000001, 0x7FFFFFFF, 0x55555555,
                                   0x60000000, 0x7FFF8000, 0x4000FFFF};
    long bad = 0, total = 0;
    for (int32_t shift = -31; shift <= 8; ++shift) {
        for (unsigned m = 0; m < sizeof multipliers / sizeof *multipliers; ++m) {
            for (unsigned e = 0; e < sizeof edges / sizeof *edges; ++e) {
                bad += $requantize(edges[e], multipliers[m], shift) != tp_requantize(edges[e], multipliers[m], shift);
                ++total;
            }
        }
    }
    for (long i = 0; i < 2000000; ++i) {
        const int32_t x = (int32_t)next() >> (next() % 31);
        const int32_t m = (int32_t)(0x40000000u | (next() >> 2));
        const int32_t shift = (int32_t)(next() % 40) - 31;
        bad += $requantize(x, m, shift) != tp_requantize(x, m, shift);
        ++total;
    }
$more
    printf("%ld %ld\n", bad, total);
    return 0;
}
''')


def requantize_mismatches(tmp_path: Path, header: str, requantize: str, more: str = "") -> tuple[int, int]:
    """(mismatches, cases) of an optimized set's `requantize` against tp_requantize on edge and random
    accumulators, multipliers and shifts (`more`: further checks that count into bad and total),
    compiled with the undefined-behaviour sanitizer."""
    program = tmp_path / "requant.c"
    program.write_text(REQUANTIZE_CHECK.substitute(header=header, requantize=requantize, more=more))
    exe = tmp_path / "requant"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
                    "-fno-sanitize-recover", "-I", str(RUNTIME_DIR / "include"), str(program), "-o", str(exe)],
                   check=True)
    bad, total = map(int, subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split())
    return bad, total


def test_dsp_requantize_equals_reference_requantize(tmp_path):
    """tp_dsp_requantize (one floor shift) against tp_requantize (nudge, truncation)."""
    bad, total = requantize_mismatches(tmp_path, "tp_dsp.h", "tp_dsp_requantize")
    assert total > 2_000_000 and bad == 0


@pytest.mark.parametrize("board, expected", [("mps2-an386", "dsp"), ("mps2-an500", "dsp"), ("mps2-an505", "dsp"),
                                             ("mps3-an547", "helium"), ("nucleo-l4r5zi", "dsp"),
                                             ("mps2-an385", "scalar"), ("host", "reference")])
def test_auto_picks_dsp_kernels_from_the_core(board, expected):
    assert resolve_kernels(get_board(board), "auto") == expected
    assert resolve_kernels(get_board(board), "reference") == "reference"


def test_dsp_kernels_refused_on_cortex_m3():
    with pytest.raises(UserError, match="mps2-an385.*no DSP extension"):
        resolve_kernels(get_board("mps2-an385"), "dsp")


@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385", "host"])
def test_helium_kernels_refused_without_mve(board):
    with pytest.raises(UserError, match=f"{board} .*no Helium.*for mps3-an547"):
        resolve_kernels(get_board(board), "helium")


def test_generate_records_kernels_and_copies_only_that_set(tmp_path):
    from tinyml_ptq.compiler.project import generate

    model = tmp_path / "conv.tflite"
    model.write_bytes(model_bytes("conv3"))
    dsp = generate(model, tmp_path / "dsp", board="mps2-an386")
    ref = generate(model, tmp_path / "ref", board="mps2-an386", kernels="reference")
    assert (dsp.kernels, ref.kernels) == ("dsp", "reference")
    assert json.loads((tmp_path / "dsp" / "project.json").read_text())["kernels"] == "dsp"
    assert json.loads((tmp_path / "ref" / "project.json").read_text())["kernels"] == "reference"
    dsp_kernels = sorted(p.name for p in (tmp_path / "dsp" / "runtime" / "kernels").glob("*.[cS]"))
    ref_kernels = sorted(p.name for p in (tmp_path / "ref" / "runtime" / "kernels").glob("*.c"))
    # The pointwise convolution runs in place over its input, two pixels at a time.
    assert dsp_kernels == ["tp_conv2d_s8_dsp.c", "tp_conv2d_s8_dsp_pointwise_inplace.c", "tp_dsp_gemm_s8.c",
                           "tp_dsp_gemm_s8_pairs.S"]
    assert "tp_conv2d_s8.c" in ref_kernels and not any("dsp" in k for k in ref_kernels)
    assert "tp_conv2d_s8_dsp_pointwise_inplace(" in (tmp_path / "dsp" / "model" / "model.c").read_text()
    assert "tp_conv2d_s8_dsp" not in (tmp_path / "ref" / "model" / "model.c").read_text()


def test_cli_kernels_option(tmp_path, capsys):
    from tinyml_ptq.cli import main

    model = tmp_path / "fc.tflite"
    model.write_bytes(model_bytes("fc0"))
    assert main(["generate", str(model), "-o", str(tmp_path / "p"), "--kernels", "reference"]) == 0
    assert "reference kernels" in capsys.readouterr().out
    assert main(["generate", str(model), "-o", str(tmp_path / "q"), "--board", "mps2-an385", "--kernels", "dsp"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: board mps2-an385 (Cortex-M3")


def run_on_board(model: bytes, board: str, root: Path, name: str, samples: int = 4, kernels: str = "dsp") -> float:
    """generate (with `kernels`) -> build -> run under the board's emulator; the fraction of
    outputs equal to TFLM's."""
    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.device.run import run
    from tinyml_ptq.target.build import build

    model_path = root / f"{name}.tflite"
    model_path.write_bytes(model)
    inputs, _ = int8_samples(model, samples, seed=len(name))
    data = root / f"{name}.npy"
    np.save(data, inputs)
    project = root / f"{name}-{board}-{kernels}"
    assert generate(model_path, project, board=board, kernels=kernels).kernels == kernels
    build(project)
    return run(project, data).exact


@needs_arm
@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an386", pytest.param("mps2-an500", marks=pytest.mark.heavy),
                                   pytest.param("mps3-an547", marks=pytest.mark.heavy)])
def test_dsp_kernels_bit_exact_on_emulated_cortex_m(board, tmp_path):
    """Every randomized model, with the real DSP instructions, on the emulated M4, M7 and M55."""
    failures = {name: exact for name in sorted(MODELS)
                if (exact := run_on_board(model_bytes(name), board, tmp_path, name)) != 1.0}
    assert not failures, f"not bit-exact on {board}: {failures}"


@needs_arm
@pytest.mark.slow
@pytest.mark.parametrize("model", ["kws_ref_model", "vww_96", "resnet8_cifar10", "ad01"])
def test_mlperf_models_bit_exact_with_dsp_kernels(model, shared_models, tmp_path):
    path = shared_models / f"{model}_int8.tflite"
    assert run_on_board(path.read_bytes(), "mps2-an386", tmp_path, model, samples=3) == 1.0
