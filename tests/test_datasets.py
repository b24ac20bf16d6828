"""CALIB / EVAL formats: each one read into float32 [N, *input_shape] and optional y, bad data refused."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from tinyml_ptq.core.datasets import load_dataset
from tinyml_ptq.core.errors import UserError

SHAPE = (4, 3, 2)


def _samples(n=10, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, *SHAPE)).astype(np.float32)


def test_npz_with_labels(tmp_path):
    x, y = _samples(), np.arange(10)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset(str(tmp_path / "d.npz"), SHAPE, samples=None)
    assert ds.xs[0].dtype == np.float32 and ds.xs[0].shape == (10, *SHAPE)
    np.testing.assert_array_equal(ds.xs[0], x)
    np.testing.assert_array_equal(ds.y, y)


def test_npz_without_x_names_the_arrays(tmp_path):
    np.savez(tmp_path / "d.npz", images=_samples())
    with pytest.raises(UserError, match="no array 'x'.*images"):
        load_dataset(str(tmp_path / "d.npz"), SHAPE)


def test_npy_float64_becomes_float32(tmp_path):
    x = _samples().astype(np.float64)
    np.save(tmp_path / "d.npy", x)
    ds = load_dataset(str(tmp_path / "d.npy"), SHAPE, samples=None)
    assert ds.xs[0].dtype == np.float32 and ds.y is None
    np.testing.assert_allclose(ds.xs[0], x, rtol=1e-7)


def test_samples_draws_a_fixed_seed_subset(tmp_path):
    x = _samples(50)
    y = np.arange(50)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    a = load_dataset(str(tmp_path / "d.npz"), SHAPE, samples=7)
    b = load_dataset(str(tmp_path / "d.npz"), SHAPE, samples=7)
    assert len(a.xs[0]) == 7 and a.total == 50
    np.testing.assert_array_equal(a.y, b.y)
    assert len(set(a.y.tolist())) == 7 and a.y.tolist() != list(range(7))  # random, without repeats
    np.testing.assert_array_equal(a.xs[0], x[a.y])  # labels still belong to their samples


def test_csv_with_label_header(tmp_path):
    x = _samples(5)
    labels = [3, 1, 4, 1, 5]
    width = int(np.prod(SHAPE))
    lines = [",".join(["label"] + [f"v{i}" for i in range(width)])]
    lines += [",".join([str(lab)] + [repr(float(v)) for v in row]) for lab, row in zip(labels, x.reshape(5, -1))]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(str(tmp_path / "d.csv"), SHAPE, samples=None)
    np.testing.assert_array_equal(ds.xs[0], x)
    assert ds.y.tolist() == labels and np.issubdtype(ds.y.dtype, np.integer)


def test_csv_without_header(tmp_path):
    x = _samples(3)
    np.savetxt(tmp_path / "d.csv", x.reshape(3, -1), delimiter=",")
    ds = load_dataset(str(tmp_path / "d.csv"), SHAPE, samples=None)
    np.testing.assert_allclose(ds.xs[0], x, rtol=1e-6)
    assert ds.y is None


def test_csv_row_of_wrong_width(tmp_path):
    (tmp_path / "d.csv").write_text("1,2,3\n")
    with pytest.raises(UserError, match="row 1 has 3 values.*needs 24"):
        load_dataset(str(tmp_path / "d.csv"), SHAPE)


def test_image_folder_resized_and_scaled(tmp_path):
    img = np.zeros((10, 20, 3), np.uint8)
    img[:, 10:] = 255  # right half white
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(255 - img).save(tmp_path / "b.png")
    ds = load_dataset(str(tmp_path), (6, 4, 1), samples=None)
    assert ds.xs[0].shape == (2, 6, 4, 1) and ds.y is None
    assert ds.xs[0].min() >= 0.0 and ds.xs[0].max() <= 1.0
    # a.png: left columns black, right columns white after resizing and grey conversion
    assert ds.xs[0][0, :, 0, 0].max() < 0.05 and ds.xs[0][0, :, -1, 0].min() > 0.95
    np.testing.assert_allclose(ds.xs[0][1], 1.0 - ds.xs[0][0], atol=0.01)


def test_image_class_subfolders_give_labels(tmp_path):
    for cls, value in (("cat", 0), ("dog", 255)):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(np.full((5, 5), value, np.uint8)).save(tmp_path / cls / f"{i}.png")
    ds = load_dataset(str(tmp_path), (5, 5, 3), samples=None)
    assert ds.y.tolist() == [0, 0, 1, 1]
    assert np.all(ds.xs[0][:2] == 0.0) and np.all(ds.xs[0][2:] == 1.0)


def test_generator_from_file_with_pairs(tmp_path):
    (tmp_path / "gen.py").write_text(
        "import numpy as np\n"
        f"def samples():\n"
        f"    for i in range(6):\n"
        f"        yield np.full((1, {', '.join(map(str, SHAPE))}), i / 10, np.float32), i % 2\n"
    )
    ds = load_dataset(f"{tmp_path / 'gen.py'}:samples", SHAPE, samples=None)
    assert ds.xs[0].shape == (6, *SHAPE)
    np.testing.assert_allclose(ds.xs[0][:, 0, 0, 0], np.arange(6) / 10, rtol=1e-6)
    assert ds.y.tolist() == [0, 1, 0, 1, 0, 1]


def test_generator_from_module(tmp_path, monkeypatch):
    package = tmp_path / "calibpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "data.py").write_text(
        "import numpy as np\n"
        f"def gen():\n"
        f"    rng = np.random.default_rng(1)\n"
        f"    for _ in range(4):\n"
        f"        yield rng.uniform(size={SHAPE})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "calibpkg", raising=False)
    ds = load_dataset("calibpkg.data:gen", SHAPE, samples=None)
    expected = np.random.default_rng(1).uniform(size=(4, *SHAPE)).astype(np.float32)
    np.testing.assert_array_equal(ds.xs[0], expected)


def test_generator_errors_are_user_errors(tmp_path):
    (tmp_path / "bad.py").write_text("def gen():\n    yield 1.0\n    raise RuntimeError('sensor unplugged')\n")
    with pytest.raises(UserError, match="RuntimeError: sensor unplugged"):
        load_dataset(f"{tmp_path / 'bad.py'}:gen", SHAPE)
    with pytest.raises(UserError, match="has no function nothing"):
        load_dataset(f"{tmp_path / 'bad.py'}:nothing", SHAPE)
    with pytest.raises(UserError, match="cannot import"):
        load_dataset("no_such_package_xyz.mod:gen", SHAPE)


@pytest.mark.parametrize("case, message", [
    ("shape", r"shape \[4, 3\].*model input is \[4, 3, 2\]"),
    ("nan", "1 samples hold NaN or Inf \\(first: sample 2\\)"),
    ("inf", "NaN or Inf"),
    ("overflow", "NaN or Inf"),
    ("empty", "no samples"),
    ("int", "dtype uint8.*float32"),
    ("labels", "3 labels for 10 samples"),
])
def test_bad_data(tmp_path, case, message):
    x, y = _samples(), None
    if case == "shape":
        x = x[..., 0]
    elif case == "nan":
        x[2, 1, 1, 1] = np.nan
    elif case == "inf":
        x[0, 0, 0, 0] = np.inf
    elif case == "overflow":
        x = x.astype(np.float64)
        x[4, 0, 0, 0] = 1e300  # finite in float64, Inf in float32
    elif case == "empty":
        x = x[:0]
    elif case == "int":
        x = (x * 100).astype(np.uint8)
    elif case == "labels":
        y = np.arange(3)
    np.savez(tmp_path / "d.npz", x=x, **({"y": y} if y is not None else {}))
    with pytest.raises(UserError, match=message):
        load_dataset(str(tmp_path / "d.npz"), SHAPE)


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "d.txt").write_text("1 2 3")
    with pytest.raises(UserError, match="unknown data format .txt"):
        load_dataset(str(tmp_path / "d.txt"), SHAPE)
    with pytest.raises(UserError, match="no such file"):
        load_dataset(str(tmp_path / "missing.npz"), SHAPE)


def test_truncated_npz(tmp_path):
    np.savez(tmp_path / "d.npz", x=_samples())
    data = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cannot read it"):
        load_dataset(str(tmp_path / "t.npz"), SHAPE)


@pytest.mark.parametrize("labels, expected", [
    (np.array([3.0, 0.0, 9.0, 1.0]), np.array([3, 0, 9, 1])),  # MLCommons: whole numbers as float64
    (np.eye(10)[[3, 0, 9, 1]], np.array([3, 0, 9, 1])),  # one-hot
    (np.array([[3], [0], [9], [1]]), np.array([3, 0, 9, 1])),  # a column
])
def test_labels_become_class_indices_in_every_stage(tmp_path, labels, expected):
    np.savez(tmp_path / "d.npz", x=_samples(4), y=labels)
    y = load_dataset(str(tmp_path / "d.npz"), SHAPE, samples=None).y
    assert np.issubdtype(y.dtype, np.integer)
    np.testing.assert_array_equal(y, expected)


def test_regression_targets_stay_as_they_are(tmp_path):
    targets = np.array([0.5, -1.25, 3.0, 2.0])
    np.savez(tmp_path / "d.npz", x=_samples(4), y=targets)
    y = load_dataset(str(tmp_path / "d.npz"), SHAPE, samples=None).y
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, targets)


def test_labels_outside_the_models_classes_are_refused_with_their_range():
    from tinyml_ptq.core.datasets import check_class_labels

    assert check_class_labels(np.array([0, 9, 4]), 10, "--eval e.npz")
    assert not check_class_labels(np.array([0.5, 2.0]), 10, "--eval e.npz")  # not class indices
    assert not check_class_labels(None, 10, "--eval e.npz")
    with pytest.raises(UserError, match=r"--eval e.npz: labels run from 1 to 10 but the model has 10 outputs "
                                        r"\(classes 0 to 9\); give labels as class indices"):
        check_class_labels(np.array([1, 10, 4]), 10, "--eval e.npz")
