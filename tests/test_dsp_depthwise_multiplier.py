"""DEPTHWISE_CONV_2D with a depth multiplier above 1 on the DSP kernels, bit-exact with TFLM.

Two kernels take them (lowering/conv.py): 3x3 filters run on the int16 planes of
tp_depthwise_conv2d_s8_dsp (a plane per input channel, its m output channels over it); other
filters, and small 3x3 layers whose planes cost more scratch than running over the input saves,
on tp_depthwise_conv2d_s8_dsp_mult (per input channel a one-channel convolution by its m filters,
on the matrix kernel). Where the planner runs a layer over its own input (row by row through
the ring), the test builds it that way and with separate buffers. Random layers: multipliers 2..8, 1..5 input channels, strides, dilations, SAME and VALID, odd
sizes, per-channel and per-tensor scales, fused activations, a dead (all-zero) filter, with and
without bias. Natively the kernels build with portable C for the DSP instructions; slow: TFLM's
micro_speech (one 10x8 depthwise layer, multiplier 8) on the emulated Cortex-M4, exact and in
fewer instructions than on the reference kernels.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ops.test_conv import ACTIVATIONS, channel_weights, draw_calibration

from tinyml_ptq.compiler import codegen
from tinyml_ptq.compiler.codegen import generate_model_sources
from tinyml_ptq.compiler.planner import plan_memory
from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.interpreters.reference import ReferenceInterpreter
from tinyml_ptq.pipeline.hostrun import build_host_runner, run_host

from harness import convert_int8

MICRO_SPEECH = Path(__file__).resolve().parents[1] / "examples" / "models" / "tflm" / "micro_speech_quantized.tflite"

PLANES, MATRIX = "tp_depthwise_conv2d_s8_dsp(", "tp_depthwise_conv2d_s8_dsp_mult("

# (input H x W x C, kernel, strides, dilation, padding, the kernel expected); the multiplier is drawn.
GEOMETRIES = [
    ((49, 40, 1), (10, 8), (2, 2), (1, 1), "SAME", MATRIX),  # micro_speech: rows of whole words
    ((25, 13, 2), (10, 4), (2, 1), (1, 1), "SAME", MATRIX),  # KWS-like tall filter, one word per row
    ((9, 11, 3), (1, 1), (1, 1), (1, 1), "VALID", MATRIX),
    ((13, 10, 4), (2, 3), (1, 3), (1, 1), "SAME", MATRIX),
    ((12, 9, 5), (5, 1), (3, 2), (1, 1), "VALID", MATRIX),
    ((14, 15, 1), (4, 3), (1, 1), (2, 3), "SAME", MATRIX),  # dilated, padded on every side
    ((11, 17, 1), (3, 8), (1, 1), (3, 1), "SAME", MATRIX),  # dilated rows of whole words
    ((7, 6, 2), (5, 5), (2, 2), (1, 1), "SAME", MATRIX),  # most windows reach into the padding
    ((8, 23, 3), (3, 4), (2, 3), (1, 1), "VALID", MATRIX),
    ((48, 44, 1), (3, 3), (2, 2), (1, 1), "SAME", PLANES),  # person_detect's first layer, smaller
    ((30, 31, 5), (3, 3), (1, 1), (1, 1), "SAME", PLANES),  # two groups of planes
    ((33, 26, 2), (3, 3), (2, 1), (1, 1), "VALID", PLANES),
    ((29, 28, 3), (3, 3), (1, 1), (2, 1), "SAME", PLANES),  # dilated across rows: still the SIMD rows
    ((21, 19, 4), (3, 3), (1, 1), (1, 2), "SAME", MATRIX),  # dilated along rows: no SIMD rows
    ((12, 10, 3), (3, 3), (1, 1), (1, 1), "SAME", MATRIX),  # small: the planes' scratch would not pay
    ((6, 7, 5), (3, 3), (2, 2), (1, 1), "VALID", PLANES),  # nothing to gain in place: the planes
]


def multiplier_model(case: int) -> tuple[bytes, int]:
    """One drawn depthwise layer with a multiplier of 2 to 8."""
    rng = np.random.default_rng(12000 + case)
    shape, kernel, stride, dilation, padding, _ = GEOMETRIES[case]
    in_channels = shape[2]
    multiplier = 2 + int(rng.integers(0, 7))
    _, activation, _ = ACTIVATIONS[case % len(ACTIVATIONS)]
    weights = channel_weights(rng, (*kernel, in_channels * multiplier), channel_axis=2)
    if case % 4 == 3:
        weights[..., int(rng.integers(0, in_channels * multiplier))] = 0.0  # a dead filter: a constant output
    weights = weights.reshape(*kernel, in_channels, multiplier)
    bias = rng.normal(size=in_channels * multiplier).astype(np.float32) if case % 5 != 4 else None

    def build(x):
        y = tf.nn.depthwise_conv2d(x, weights, strides=[1, *stride, 1], padding=padding, dilations=dilation)
        return activation(tf.nn.bias_add(y, bias) if bias is not None else y)

    model = convert_int8(build, [shape], per_tensor=case % 3 == 1, calib_range=draw_calibration(rng), seed=case)
    return model, multiplier


def _host_outputs(model: bytes, sources, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    ref = ReferenceInterpreter(model)
    x = np.random.default_rng(seed).integers(-128, 128, size=(samples, *ref.input.shape[1:]), dtype=np.int8)
    expected = np.asarray(ref.invoke_many(x)).reshape(samples, -1)
    with tempfile.TemporaryDirectory(prefix="tp-dsp-dwm-") as tmp:
        binary = build_host_runner(sources, Path(tmp), x[0].size, expected.shape[1])
        return run_host(binary, x.reshape(samples, -1)), expected


@pytest.mark.parametrize("case", range(len(GEOMETRIES)),
                         ids=lambda c: "{}x{}x{}-k{}{}-s{}{}-d{}{}-{}".format(
                             *GEOMETRIES[c][0], *GEOMETRIES[c][1], *GEOMETRIES[c][2], *GEOMETRIES[c][3],
                             GEOMETRIES[c][4]))
def test_depthwise_multiplier_on_dsp_kernels_is_bit_exact(case, monkeypatch):
    """The layer's DSP kernel natively, over its own input where the planner takes that, and not."""
    model, multiplier = multiplier_model(case)
    graph = parse_tflite(model)
    (op,) = graph.operators
    assert op.opcode == "DEPTHWISE_CONV_2D" and op.options["depth_multiplier"] == multiplier
    sources = generate_model_sources(graph, model, kernels="dsp")
    step = sources.steps[0]
    assert step.call.startswith(GEOMETRIES[case][5]), step.call
    builds = [sources]
    if sources.plan.inplace_steps:
        assert step.inplace.header == "tp_dsp_inplace.h" and step.inplace.call.startswith(
            GEOMETRIES[case][5][:-1] + "_inplace("), step.inplace.call
        monkeypatch.setattr(codegen, "plan_memory", lambda g, steps: plan_memory(g, steps, inplace=False))
        builds.append(generate_model_sources(graph, model, kernels="dsp"))
        assert not builds[-1].plan.inplace_steps
    for build in builds:
        ours, expected = _host_outputs(model, build, samples=5, seed=case)
        np.testing.assert_array_equal(ours, expected)


def test_both_kernels_run_over_their_input():
    """Both kernels' in-place versions are among the cases above (a layer on each where the ring pays)."""
    kernels = {}
    for case in (0, 9, 14):
        model, _ = multiplier_model(case)
        sources = generate_model_sources(parse_tflite(model), model, kernels="dsp")
        assert sources.plan.inplace_steps == {0: 0}
        kernels[case] = sources.steps[0].inplace.call.split("(")[0]
    assert kernels == {0: "tp_depthwise_conv2d_s8_dsp_mult_inplace", 9: "tp_depthwise_conv2d_s8_dsp_inplace",
                       14: "tp_depthwise_conv2d_s8_dsp_mult_inplace"}


def test_micro_speech_on_dsp_kernels_is_bit_exact():
    model = MICRO_SPEECH.read_bytes()
    sources = generate_model_sources(parse_tflite(model), model, kernels="dsp")
    assert any(step.call.startswith(MATRIX) or (step.inplace and "dsp_mult" in step.inplace.call)
               for step in sources.steps if step.op.opcode == "DEPTHWISE_CONV_2D")
    ours, expected = _host_outputs(model, sources, samples=4, seed=3)
    np.testing.assert_array_equal(ours, expected)


needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                               reason="arm-none-eabi-gcc / qemu-system-arm not installed")


@needs_arm
@pytest.mark.slow
def test_depthwise_multiplier_on_emulated_cortex_m4(tmp_path):
    """Every case above with the real DSP instructions (mps2-an386, as planned: mostly in place)."""
    from test_dsp_kernels import run_on_board

    failures = {case: exact for case in range(len(GEOMETRIES))
                if (exact := run_on_board(multiplier_model(case)[0], "mps2-an386", tmp_path, f"dwm{case}")) != 1.0}
    assert not failures, failures


@needs_arm
@pytest.mark.slow
def test_micro_speech_on_emulated_cortex_m4_exact_and_faster_than_reference(tmp_path):
    """mps2-an386: both kernel sets exact; the DSP build's depthwise layer and inference take fewer instructions."""
    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.device.run import run
    from tinyml_ptq.target.build import build

    data = tmp_path / "samples.npy"
    np.save(data, np.random.default_rng(5).integers(-128, 128, size=(3, 1960), dtype=np.int8))
    results = {}
    for kernels in ("reference", "dsp"):
        project = tmp_path / kernels
        assert generate(MICRO_SPEECH, project, board="mps2-an386", kernels=kernels).kernels == kernels
        build(project)
        results[kernels] = run(project, data)
        assert results[kernels].exact == 1.0, kernels
    depthwise = {k: next(o.mean for o in r.per_op if o.op == "DEPTHWISE_CONV_2D") for k, r in results.items()}
    assert depthwise["dsp"] < depthwise["reference"] / 3, depthwise
    assert results["dsp"].latency_mean < results["reference"].latency_mean / 3, (
        results["dsp"].latency_mean, results["reference"].latency_mean)
