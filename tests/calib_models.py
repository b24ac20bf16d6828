"""The two post-training-quantization failure patterns of issue #8, built small and deterministic.

- outliers: the digits example model, calibrated with a set in which 1% of
  the samples are scaled x100 (a glitch in a capture).
- depthwise: a depthwise-separable digits CNN whose batch-norm scales differ
  across channels by three decades (the MobileNet pattern under per-tensor
  activation quantization). It is trained normally, then each channel of the
  batch norm after the depthwise convolution is scaled by a factor from 1e-3
  to 1 and the next convolution's input weights by the inverse: the float
  function is unchanged (ReLU is positively homogeneous), the ranges are not.
Both also have a clean version (the unscaled model, clean calibration data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 1234
REPO = Path(__file__).resolve().parents[1]
DIGITS_DIR = REPO / "examples" / "digits"


def digits_split():
    """sklearn digits in [0, 1], NHWC: (x_train, x_test, y_train, y_test) as in examples/digits/train.py."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=360, random_state=SEED, stratify=y)


def outlier_calibration(path: Path, fraction: float = 0.01, factor: float = 100.0) -> Path:
    """The digits example's calibration set with `fraction` of the samples scaled by `factor`."""
    x = np.load(DIGITS_DIR / "calib.npz")["x"].copy()
    bad = np.random.default_rng(SEED).choice(len(x), size=max(1, round(fraction * len(x))), replace=False)
    x[bad] *= factor
    np.savez(path, x=x)
    return path


def depthwise_models(folder: Path, decades: float = 3.0) -> tuple[Path, Path]:
    """Train the depthwise CNN once; write (clean.keras, spread.keras) into `folder`."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    keras.utils.set_random_seed(SEED)
    x_train, _, y_train, _ = digits_split()
    model = keras.Sequential([
        keras.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv"),
        keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw"),
        keras.layers.BatchNormalization(name="dw_bn"),
        keras.layers.ReLU(name="dw_relu"),
        keras.layers.Conv2D(32, 1, activation="relu", name="pw"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(10, activation="softmax", name="classifier"),
    ], name="digits_dw")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=12, batch_size=32, verbose=0, shuffle=True)
    folder.mkdir(parents=True, exist_ok=True)
    clean = folder / "dw_clean.keras"
    model.save(clean)
    # Scale batch-norm channel c by k_c and the pointwise weights reading channel c by 1 / k_c.
    channels = model.get_layer("dw_bn").gamma.shape[0]
    k = np.logspace(-decades, 0, channels)[np.random.default_rng(SEED).permutation(channels)].astype(np.float32)
    bn = model.get_layer("dw_bn")
    gamma, beta, mean, var = [w.copy() for w in bn.get_weights()]
    bn.set_weights([gamma * k, beta * k, mean, var])
    pw = model.get_layer("pw")
    kernel, bias = pw.get_weights()
    pw.set_weights([kernel / k[None, None, :, None], bias])
    spread = folder / "dw_spread.keras"
    model.save(spread)
    return clean, spread


def eval_npz(path: Path) -> Path:
    """The 360 held-out digits with labels (same split as the example's eval.npz)."""
    _, x_test, _, y_test = digits_split()
    np.savez(path, x=x_test, y=y_test)
    return path


def calib_npz(path: Path, samples: int = 200) -> Path:
    x_train = digits_split()[0]
    np.savez(path, x=x_train[:samples])
    return path
