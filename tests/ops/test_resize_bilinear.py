"""RESIZE_BILINEAR bit-exactness against the TFLite Micro reference, randomized.

Each case draws input and output sizes (up and down), channels, a calibration range and the
coordinate mode: half-pixel centers (TF2's tf.image.resize, Keras UpSampling2D), align_corners
or neither (tf.compat.v1.image.resize_bilinear). TFLM works in 1/1024ths of a pixel and rounds
half away from zero; ties are common (2x upsampling, align_corners midpoints), so the
rounding is exercised on both signs.
"""

import shutil

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.compiler.lowering import MalformedOperator, UnsupportedOperator, lower_graph
from tinyml_ptq.interpreters.tflite_inspect import require_full_int8

from harness import assert_bit_exact, convert_int8, only_op, random_range

CASES = 12
MODES = ["half_pixel", "align_corners", "plain"]


def resize_fn(mode: str, size: tuple[int, int]):
    if mode == "half_pixel":
        return lambda x: tf.image.resize(x, size, method="bilinear")
    return lambda x: tf.compat.v1.image.resize_bilinear(x, size, align_corners=mode == "align_corners",
                                                        half_pixel_centers=False)


@pytest.mark.parametrize("case", range(CASES))
def test_resize_bilinear_random(case):
    rng = np.random.default_rng(7300 + case)
    mode = MODES[case % len(MODES)]
    in_hw = (int(rng.integers(1, 10)), int(rng.integers(1, 10)))
    out_hw = (int(rng.integers(1, 21)), int(rng.integers(1, 21)))
    channels = int(rng.integers(1, 11))
    model = convert_int8(resize_fn(mode, out_hw), [(*in_hw, channels)], calib_range=random_range(rng), seed=case)
    graph, op = only_op(model, "RESIZE_BILINEAR")
    assert op.options["align_corners"] == (mode == "align_corners")
    assert op.options["half_pixel_centers"] == (mode == "half_pixel")
    assert graph.tensors[op.outputs[0]].shape == (1, *out_hw, channels)
    require_full_int8(model)
    assert_bit_exact(model, samples=6, seed=case, expect_ops={"RESIZE_BILINEAR"})


@pytest.mark.parametrize("mode", MODES)
def test_resize_bilinear_ties(mode):
    """Midpoints everywhere: 2 -> 3 with align_corners (weight 512), 2x upsampling with half-pixel
    centers (256 and 768, ties in two dimensions) and without (512). Inputs hold every pair of
    values, so sums land on exact halves of both signs."""
    size = (3, 3) if mode == "align_corners" else (4, 4)
    model = convert_int8(resize_fn(mode, size), [(2, 2, 16)], calib_range=(-1.0, 1.0))
    inputs = np.random.default_rng(0).permutation(np.resize(np.arange(-128, 128), (16, 64))).astype(np.int8)
    assert_bit_exact(model, inputs=inputs, expect_ops={"RESIZE_BILINEAR"})


def test_keras_upsampling_bilinear_between_convolutions():
    """A Keras decoder: conv -> UpSampling2D(bilinear) -> conv, after a strided convolution."""
    rng = np.random.default_rng(7400)
    net = tf.keras.Sequential([
        tf.keras.Input((12, 10, 3), batch_size=1),
        tf.keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu"),
        tf.keras.layers.UpSampling2D((2, 3), interpolation="bilinear"),
        tf.keras.layers.Conv2D(2, 3, padding="same"),
    ])
    net.set_weights([w + rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in net.get_weights()])
    model = convert_int8(lambda x: net(x), [(12, 10, 3)], calib_range=(-1.0, 2.0))
    sources = assert_bit_exact(model, samples=6, expect_ops={"RESIZE_BILINEAR"})
    assert sources.op_names == ["CONV_2D", "RESIZE_BILINEAR", "CONV_2D"]


@pytest.fixture(scope="module")
def small_model():
    return convert_int8(resize_fn("half_pixel", (6, 5)), [(3, 4, 2)])


def test_refuses_align_corners_with_half_pixel_centers(small_model):
    graph, op = only_op(small_model, "RESIZE_BILINEAR")
    op.options["align_corners"] = True
    with pytest.raises(UnsupportedOperator, match=r"RESIZE_BILINEAR \(node \d+\) has both align_corners and "
                                                     r"half_pixel_centers; supported: at most one of"):
        lower_graph(graph)


def test_refuses_a_size_operand_the_output_does_not_have(small_model):
    graph, op = only_op(small_model, "RESIZE_BILINEAR")
    graph.tensors[op.inputs[1]].data = np.array([6, 4], dtype=np.int32)
    with pytest.raises(MalformedOperator, match="resized to 6x4 does not give the output's shape"):
        lower_graph(graph)


def test_refuses_requantizing_output(small_model):
    graph, op = only_op(small_model, "RESIZE_BILINEAR")
    graph.tensors[op.outputs[0]].quantization.scale = graph.tensors[op.outputs[0]].quantization.scale * 2
    with pytest.raises(UnsupportedOperator, match=r"has output quantization .* other than the input's .*; "
                                                     r"supported: the input's scale and zero point on the output"):
        lower_graph(graph)


def test_refuses_a_resize_tflm_would_read_past_the_input(small_model):
    """3 -> 2000 rows: TFLM's scale rounds up to 2/1024ths, so the last rows' lower coordinate is 3."""
    from tinyml_ptq.compiler.lowering.resize import resize_axis

    assert resize_axis(3, 2000, False, False)[0].max() == 3
    graph, op = only_op(small_model, "RESIZE_BILINEAR")
    output = graph.tensors[op.outputs[0]]
    output.shape = (1, 2000, 5, 2)
    graph.tensors[op.inputs[1]].data = np.array([2000, 5], dtype=np.int32)
    with pytest.raises(UnsupportedOperator, match=r"RESIZE_BILINEAR \(node \d+\) resizes 3 -> 2000 rows, putting "
                                                     r"output pixels past the input; supported: sizes whose output "
                                                     r"pixels stay within the input"):
        lower_graph(graph)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc and qemu-system-arm are needed (make apt installs them)")
def test_resize_bilinear_on_emulated_cortex_m(tmp_path):
    """The same kernel on the emulated Cortex-M3 (mps2-an385), bit-exact with TFLM."""
    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.device.run import run
    from tinyml_ptq.target.build import build

    model = convert_int8(resize_fn("half_pixel", (9, 13)), [(4, 5, 3)], calib_range=(-2.0, 1.0))
    (tmp_path / "resize.tflite").write_bytes(model)
    np.save(tmp_path / "x.npy", np.random.default_rng(1).integers(-128, 128, size=(3, 4, 5, 3), dtype=np.int8))
    generate(tmp_path / "resize.tflite", tmp_path / "project", board="mps2-an385")
    build(tmp_path / "project")
    assert run(tmp_path / "project", tmp_path / "x.npy").exact == 1.0
