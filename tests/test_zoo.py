"""The model zoo (examples/zoo/zoo.py): architectures users bring, built from Keras code and
trained briefly on synthetic data, each deployed on mps2-an386. Each one deploys with every
device output equal to the TFLite Micro reference (a classifier's device accuracy at most one
point below float, on 200 samples), or is refused with a one-line reason, as
`zoo.EXPECTED_REFUSALS` says.

The image models are built at 32x32 here (docs/model-zoo.md's table: `make zoo`, at 64x64)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from conftest import our_qemus

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "zoo"))
import zoo  # noqa: E402

TEST_IMAGE_SIZE = 32


# The ImageNet-style networks take a minute or two each; make test-all runs them.
LARGE = {"mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_lite"}


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(m.name, marks=pytest.mark.heavy) if m.name in LARGE else m.name
                                  for m in zoo.ZOO])
def test_zoo_model_deploys_exact_or_is_refused_with_its_reason(name, tmp_path):
    entry = zoo.BY_NAME[name]
    if entry.size:
        entry = dataclasses.replace(entry, size=TEST_IMAGE_SIZE)
    folder = tmp_path / name
    result = zoo.deploy_one(entry, folder, zoo.train(entry, folder, train_samples=384, eval_samples=200))
    assert our_qemus(tmp_path) == []
    if name in zoo.EXPECTED_REFUSALS:
        assert result.outcome == "refused", zoo.line(result)
        assert zoo.EXPECTED_REFUSALS[name] in result.reason and "\n" not in result.reason, result.reason
        return
    assert result.outcome == "exact", zoo.line(result)
    assert result.exact == 1.0
    if entry.classifier:
        # Quantization costs at most one point (it may also gain a little on 200 samples).
        assert result.accuracy_float - result.accuracy_device <= 0.01 + 1e-9, zoo.line(result)
        assert result.accuracy_device == result.accuracy_int8  # exact outputs: the same decisions
        assert result.accuracy_float > 1.5 / zoo.CLASSES, zoo.line(result)  # it learned something
