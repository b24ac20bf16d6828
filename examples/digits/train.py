"""Train the bundled digits example: a small CNN on scikit-learn's 8x8 digits.

Deterministic (fixed seeds, one thread), so a re-run reproduces the committed
files. Writes, beside this script:
  digits_cnn.keras  the float Keras 3 model
  calib.npz         x: 200 training images for calibration
  eval.npz          x, y: the 360 held-out test images and their labels

Run: .venv/bin/python examples/digits/train.py
"""

from __future__ import annotations

import os
import random
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np

SEED = 1234
HERE = Path(__file__).resolve().parent


def main() -> None:
    import tensorflow as tf

    # Single-threaded ops and fixed seeds: the float model is the same on every run.
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    random.seed(SEED)
    np.random.seed(SEED)
    import keras

    keras.utils.set_random_seed(SEED)

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # Pixel values are 0..16; scale to [0, 1] and add a channel axis (NHWC).
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=360, random_state=SEED, stratify=y
    )

    model = keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="digits_cnn",
    )
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=40, shuffle=True, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"float test accuracy: {accuracy:.4f} on {len(x_test)} held-out images")

    model.save(HERE / "digits_cnn.keras")
    calib = np.random.default_rng(SEED).choice(len(x_train), size=200, replace=False)
    np.savez_compressed(HERE / "calib.npz", x=x_train[np.sort(calib)])
    np.savez_compressed(HERE / "eval.npz", x=x_test, y=y_test)


if __name__ == "__main__":
    main()
