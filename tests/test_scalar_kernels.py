"""The scalar kernel set (kernels/scalar, tp_scalar.h) for Cortex-M cores without the DSP extension:
bit-exact with TFLM's reference on the randomized models of tests/test_dsp_kernels.py natively, on
the emulated Cortex-M3 (QEMU: the portable C) and Cortex-M0+ (Renode: the Armv6-M assembly loop)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.compiler.codegen import generate_model_sources
from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.core.resources import RUNTIME_DIR
from tinyml_ptq.pipeline.hostrun import build_host_runner, run_host
from tinyml_ptq.target.boards import get_board, resolve_kernels

from test_dsp_kernels import MODELS, int8_samples, model_bytes, needs_arm, run_on_board

# depthwise4 and depthwise9 have depth multiplier 2, which stays on the reference kernel.
ON_REFERENCE = {"depthwise4", "depthwise9"}
SCALAR_MODELS = sorted(MODELS)


@pytest.mark.parametrize("name", SCALAR_MODELS)
def test_scalar_kernels_bit_exact_on_host(name):
    model = model_bytes(name)
    sources = generate_model_sources(parse_tflite(model), model, kernels="scalar")
    inputs, expected = int8_samples(model, 6, seed=len(name))
    with tempfile.TemporaryDirectory(prefix="tp-scalar-") as tmp:
        binary = build_host_runner(sources, Path(tmp), inputs[0].size, expected.shape[1])
        ours = run_host(binary, inputs.reshape(len(inputs), -1))
    np.testing.assert_array_equal(ours, expected)
    scalar = any("kernels/scalar/" in s for s in sources.runtime_sources)
    assert scalar != (name in ON_REFERENCE), sources.runtime_sources


def test_scalar_requantize_equals_reference_requantize(tmp_path):
    """tp_scalar_requantize (32-bit partial products) and tp_scalar_short_output (the short form
    the generator allows) against tp_requantize (64-bit product) on edge and random accumulators,
    multipliers, shifts and output offsets."""
    program = tmp_path / "requant.c"
    program.write_text(r'''
#include <stdio.h>
#include "tp_scalar.h"
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
                bad += tp_scalar_requantize(edges[e], multipliers[m], shift) !=
                       tp_requantize(edges[e], multipliers[m], shift);
                ++total;
            }
        }
    }
    for (long i = 0; i < 2000000; ++i) {
        const int32_t x = (int32_t)next() >> (next() % 31);
        const int32_t m = (int32_t)(0x40000000u | (next() >> 2));
        const int32_t shift = (int32_t)(next() % 40) - 31;
        bad += tp_scalar_requantize(x, m, shift) != tp_requantize(x, m, shift);
        ++total;
    }
    /* The short form, for accumulators below 2^29 in magnitude and shifts of at most 0 */
    const int32_t short_edges[] = {0, 1, -1, 0x7FFF, 0x8000, -0x8000, -0x8001, 0xFFFF, 0x10000, -0x10000,
                                   (1 << 29) - 1, -(1 << 29) + 1, 0x1FFF8000, -0x1FFF8000};
    for (long i = 0; i < 2000000; ++i) {
        const int32_t acc = i < 14 * 40 ? short_edges[i % 14] : (int32_t)(next() % ((1u << 30) - 1)) - ((1 << 29) - 1);
        const int32_t m = i < 14 * 40 ? multipliers[(i / 14) % 11] : (int32_t)(0x40000000u | (next() >> 2));
        const int32_t right = (int32_t)(next() % 20), offset = (int32_t)(next() % 256) - 128;
        const int32_t words[TP_SCALAR_OUTPUT_WORDS] = {m >> 16, m & 0xFFFF, (1 << right >> 1) + offset * (1 << right),
                                                       right, right ? -1 : 0};
        bad += tp_scalar_short_output(acc, words) != tp_requantize(acc, m, -right) + offset;
        ++total;
    }
    printf("%ld %ld\n", bad, total);
    return 0;
}
''')
    exe = tmp_path / "requant"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
                    "-fno-sanitize-recover", "-I", str(RUNTIME_DIR / "include"), str(program), "-o", str(exe)],
                   check=True)
    bad, total = map(int, subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split())
    assert total > 4_000_000 and bad == 0


@pytest.mark.parametrize("board", ["mps2-an385", "nucleo-g0b1re"])
def test_auto_picks_scalar_kernels_on_cores_without_dsp(board):
    assert resolve_kernels(get_board(board), "auto") == "scalar"
    assert resolve_kernels(get_board("host"), "scalar") == "scalar"
    assert resolve_kernels(get_board("mps2-an386"), "scalar") == "scalar"  # portable C: any core


# A selection covering the kernels' paths: 1x1, strided and padded convolutions, a first layer
# with one input channel, depthwise at strides 1 and 2 and dilated, fully connected with batches.
ON_M3 = ["conv0", "conv5", "narrow_conv3", "kws_first_layer", "depthwise1", "dw3x3_5", "dw3x3_8", "fc1", "fc2"]
ON_M0PLUS = ["conv3", "dw3x3_3", "dw3x3_5", "fc1"]


@needs_arm
@pytest.mark.slow
def test_scalar_kernels_bit_exact_on_emulated_cortex_m3(tmp_path):
    failures = {name: exact for name in ON_M3
                if (exact := run_on_board(model_bytes(name), "mps2-an385", tmp_path, name, kernels="scalar")) != 1.0}
    assert not failures, f"not bit-exact on mps2-an385: {failures}"


@needs_arm
@pytest.mark.slow
def test_scalar_kernels_bit_exact_on_emulated_cortex_m0plus(tmp_path, renode):
    failures = {name: exact for name in ON_M0PLUS
                if (exact := run_on_board(model_bytes(name), "nucleo-g0b1re", tmp_path, name, kernels="scalar")) != 1.0}
    assert not failures, f"not bit-exact on nucleo-g0b1re: {failures}"
