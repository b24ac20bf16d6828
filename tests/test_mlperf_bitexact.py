"""Whole MLPerf Tiny int8 models: generated C must match TFLite Micro byte for byte.

The models live in the shared folder beside the repository; without it these
tests skip.
"""

from pathlib import Path

import pytest

from harness import assert_bit_exact
from tinyml_ptq.tflite_reader import read_tflite

MODELS_DIR = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny"
MODELS = ["kws_ref_model_int8", "vww_96_int8", "resnet8_cifar10_int8", "ad01_int8"]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_mlperf_model_bit_exact(name):
    path = MODELS_DIR / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not found (shared models folder absent)")
    graph = read_tflite(path)
    assert_bit_exact(path.read_bytes(), samples=4, seed=11, expect_ops=set(graph.opcodes()))
