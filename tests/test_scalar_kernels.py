"""The scalar kernel set (kernels/scalar, tp_scalar.h) for Cortex-M cores without the DSP extension:
bit-exact with TFLM's reference on the randomized models of tests/test_dsp_kernels.py natively, on
the emulated Cortex-M3 (QEMU: the portable C) and Cortex-M0+ (Renode: the Armv6-M assembly loop)."""

from __future__ import annotations

import pytest

from tinyml_ptq.target.boards import get_board, resolve_kernels

from test_dsp_kernels import MODELS, host_sources_exact, model_bytes, needs_arm, requantize_mismatches, run_on_board

# depthwise4 and depthwise9 have depth multiplier 2, which stays on the reference kernel.
ON_REFERENCE = {"depthwise4", "depthwise9"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_scalar_kernels_bit_exact_on_host(name):
    sources = host_sources_exact(name, "scalar")
    scalar = any("kernels/scalar/" in s for s in sources.runtime_sources)
    assert scalar != (name in ON_REFERENCE), sources.runtime_sources


# The short form, checked after the common cases: for accumulators below 2^29 in magnitude and shifts of at most 0.
SHORT_OUTPUT_CHECK = r'''
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
'''


def test_scalar_requantize_equals_reference_requantize(tmp_path):
    """tp_scalar_requantize (32-bit partial products) and tp_scalar_short_output (the short form
    the generator allows) against tp_requantize (64-bit product), also on output offsets."""
    bad, total = requantize_mismatches(tmp_path, "tp_scalar.h", "tp_scalar_requantize", SHORT_OUTPUT_CHECK)
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
