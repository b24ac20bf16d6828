"""A model zoo built from Keras code: architectures users bring to microcontrollers, trained
briefly on synthetic data (so their activation ranges are realistic), each taken through
`tinyml_ptq.deploy` on an emulated Cortex-M4 (mps2-an386).

    .venv/bin/python examples/zoo/zoo.py -o build/zoo [--only NAME ...] [--readme README.md]

prints one line per model and, with --readme, rewrites the README's zoo table (between
its `zoo:begin` / `zoo:end` markers) with what this run measured. `make zoo` does both.
tests/test_zoo.py deploys the same models.

Every model either deploys (its outcome is "exact" when every device output equals the
TFLite Micro reference) or is refused with a one-line reason: `EXPECTED_REFUSALS` says
which are refused and by what words, so a change in either direction shows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

CLASSES = 4
SEED = 1234
# The words a refusal must contain, for the zoo models that TFLite or our runtime cannot take.
EXPECTED_REFUSALS = {
    "transformer_gelu": "GELU",  # TFLite Micro has no GELU kernel to be exact with
}


# --- synthetic data ---------------------------------------------------------------------------------


def stripes(n: int, size: int, channels: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Images of 4 classes: horizontal, vertical or diagonal stripes, or smooth blobs; random
    frequency, phase, contrast and colour, with noise. Values in [0, 1]."""
    y = rng.integers(0, CLASSES, n)
    r, c = np.mgrid[0:size, 0:size] / size
    x = np.empty((n, size, size, channels), np.float32)
    for i, label in enumerate(y):
        freq, phase = rng.uniform(2, 6), rng.uniform(0, 2 * np.pi)
        if label == 0:
            img = np.sin(2 * np.pi * freq * r + phase)
        elif label == 1:
            img = np.sin(2 * np.pi * freq * c + phase)
        elif label == 2:
            img = np.sin(2 * np.pi * freq * (r + c) / np.sqrt(2) + phase)
        else:
            cy, cx = rng.uniform(0.2, 0.8, 2)
            img = np.exp(-((r - cy) ** 2 + (c - cx) ** 2) / rng.uniform(0.01, 0.05)) * 2 - 1
        colour = rng.uniform(0.3, 1.0, channels)
        img = 0.5 + 0.5 * rng.uniform(0.5, 1.0) * img[..., None] * colour
        x[i] = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)
    return x, y


def waves(n: int, steps: int, channels: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Windows of 4 classes: sine, square, sawtooth or noise; random period, phase, amplitude."""
    y = rng.integers(0, CLASSES, n)
    t = np.arange(steps)[:, None]
    x = np.empty((n, steps, channels), np.float32)
    for i, label in enumerate(y):
        period = rng.uniform(6, 20, channels)
        phase = rng.uniform(0, 1, channels)
        u = (t / period + phase) % 1.0
        sig = [np.sin(2 * np.pi * u), np.sign(np.sin(2 * np.pi * u)), 2 * u - 1, rng.normal(0, 0.7, u.shape)][label]
        x[i] = sig * rng.uniform(0.5, 1.5, channels) + rng.normal(0, 0.1, u.shape)
    return x, y


def shapes_masks(n: int, size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images of a few bright discs and their masks (segmentation, autoencoding)."""
    r, c = np.mgrid[0:size, 0:size]
    x = np.zeros((n, size, size, 1), np.float32)
    for i in range(n):
        for _ in range(int(rng.integers(1, 4))):
            cy, cx, rad = rng.uniform(4, size - 4), rng.uniform(4, size - 4), rng.uniform(2, size / 5)
            x[i, ..., 0] = np.maximum(x[i, ..., 0], ((r - cy) ** 2 + (c - cx) ** 2 < rad ** 2).astype(np.float32))
    mask = x.copy()
    return np.clip(x * 0.8 + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32), mask


# --- the models ---------------------------------------------------------------------------------------


def _small_bn_momentum(model):
    """Brief training: batch-norm statistics that follow the data within a few epochs."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.8
    return model


def mobilenet_v1(size):
    import keras

    return keras.applications.MobileNet(input_shape=(size, size, 3), alpha=0.25, weights=None, classes=CLASSES,
                                        dropout=0.0)


def mobilenet_v2(size):
    import keras

    return keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=0.35, weights=None, classes=CLASSES)


def mobilenet_v3_small(size):
    import keras

    return keras.applications.MobileNetV3Small(input_shape=(size, size, 3), alpha=0.75, weights=None,
                                               classes=CLASSES, include_preprocessing=False, dropout_rate=0.0)


def efficientnet_lite(size):
    """EfficientNet-Lite's changes to EfficientNet: ReLU6 for swish, no squeeze-and-excitation;
    inverted residual blocks with expansion 6 (B0's first stages, narrower)."""
    import keras
    from keras import layers

    def conv_bn(x, filters, kernel=1, stride=1, act=True):
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU(6.0)(x) if act else x

    def mbconv(x, filters, stride, expand=6, kernel=3):
        inp = x
        x = conv_bn(x, x.shape[-1] * expand)
        x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False)(x)
        x = layers.ReLU(6.0)(layers.BatchNormalization()(x))
        x = conv_bn(x, filters, act=False)
        return layers.Add()([inp, x]) if stride == 1 and inp.shape[-1] == filters else x

    inp = keras.Input((size, size, 3))
    x = conv_bn(inp, 16, 3, 2)
    for filters, stride, kernel in [(8, 1, 3), (12, 2, 3), (12, 1, 3), (20, 2, 5), (20, 1, 5), (40, 2, 3)]:
        x = mbconv(x, filters, stride, expand=1 if filters == 8 else 6, kernel=kernel)
    x = conv_bn(x, 128)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(CLASSES, activation="softmax")(x))


def ds_cnn_gmp(_size):
    """A keyword-spotting DS-CNN (49 frames x 10 MFCCs) ending in GlobalMaxPooling2D."""
    import keras
    from keras import layers

    inp = keras.Input((49, 10, 1))
    x = layers.Conv2D(32, (10, 4), strides=(2, 2), padding="same", use_bias=False)(inp)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for _ in range(3):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.Conv2D(32, 1, use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.GlobalMaxPooling2D()(x)
    return keras.Model(inp, layers.Dense(CLASSES, activation="softmax")(x))


def _conv1d_recurrent(recurrent: str):
    """A time-series classifier: Conv1D, MaxPooling1D, then a recurrent layer of 16 units."""
    import keras
    from keras import layers

    inp = keras.Input((64, 3))
    x = layers.MaxPooling1D(2)(layers.Conv1D(16, 3, activation="relu")(inp))
    x = getattr(layers, recurrent)(16)(x)
    return keras.Model(inp, layers.Dense(CLASSES, activation="softmax")(x))


def conv1d_lstm(_size):
    return _conv1d_recurrent("LSTM")


def conv1d_gru(_size):
    return _conv1d_recurrent("GRU")


def conv_autoencoder(_size):
    """Conv2D down, Conv2DTranspose up (28x28x1 -> 7x7x16 -> 28x28x1)."""
    import keras
    from keras import layers

    inp = keras.Input((28, 28, 1))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid")(x)
    return keras.Model(inp, x)


def unet(_size):
    """A two-level U-Net: MaxPooling down, UpSampling2D up, skip connections by concatenation."""
    import keras
    from keras import layers

    inp = keras.Input((32, 32, 1))
    c1 = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    c2 = layers.Conv2D(16, 3, padding="same", activation="relu")(layers.MaxPooling2D()(c1))
    c3 = layers.Conv2D(32, 3, padding="same", activation="relu")(layers.MaxPooling2D()(c2))
    u2 = layers.Concatenate()([layers.UpSampling2D()(c3), c2])
    u2 = layers.Conv2D(16, 3, padding="same", activation="relu")(u2)
    u1 = layers.Concatenate()([layers.UpSampling2D()(u2), c1])
    u1 = layers.Conv2D(8, 3, padding="same", activation="relu")(u1)
    return keras.Model(inp, layers.Conv2D(1, 1, activation="sigmoid")(u1))


def _transformer(activation):
    import keras
    from keras import layers

    inp = keras.Input((16, 8))
    x = layers.Dense(16)(inp)
    attention = layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
    x = layers.LayerNormalization()(layers.Add()([x, attention]))
    ffn = layers.Dense(16)(layers.Dense(32, activation=activation)(x))
    x = layers.LayerNormalization()(layers.Add()([x, ffn]))
    x = layers.GlobalAveragePooling1D()(x)
    return keras.Model(inp, layers.Dense(CLASSES, activation="softmax")(x))


def transformer_gelu(_size):
    """A tiny transformer encoder block: MultiHeadAttention, LayerNormalization, a GELU feed-forward."""
    return _transformer("gelu")


def transformer_relu(_size):
    """The same block with a ReLU feed-forward."""
    return _transformer("relu")


def two_input(_size):
    """Two inputs (an image and a feature vector) joined before the classifier."""
    import keras
    from keras import layers

    image, features = keras.Input((16, 16, 1)), keras.Input((8,))
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(8, 3, activation="relu")(image))
    x = layers.Concatenate()([x, layers.Dense(8, activation="relu")(features)])
    return keras.Model([image, features], layers.Dense(CLASSES, activation="softmax")(x))


@dataclass(frozen=True)
class ZooModel:
    name: str
    build: object  # (size) -> keras.Model
    data: str  # "images", "waves", "spectrogram", "discs", "two_input"
    size: int = 0  # image side, for the image models
    classifier: bool = True
    epochs: int = 4


ZOO = [
    ZooModel("mobilenet_v1", mobilenet_v1, "images", 64, epochs=8),
    ZooModel("mobilenet_v2", mobilenet_v2, "images", 64, epochs=8),
    ZooModel("mobilenet_v3_small", mobilenet_v3_small, "images", 64, epochs=8),
    ZooModel("efficientnet_lite", efficientnet_lite, "images", 64, epochs=8),
    ZooModel("ds_cnn_gmp", ds_cnn_gmp, "spectrogram"),
    ZooModel("conv1d_lstm", conv1d_lstm, "waves", epochs=10),
    ZooModel("conv1d_gru", conv1d_gru, "waves", epochs=10),
    ZooModel("conv_autoencoder", conv_autoencoder, "discs28", classifier=False),
    ZooModel("unet", unet, "discs32", classifier=False),
    ZooModel("transformer_relu", transformer_relu, "sequence", epochs=15),
    ZooModel("transformer_gelu", transformer_gelu, "sequence", epochs=15),
    ZooModel("two_input", two_input, "two_input", epochs=20),
]
BY_NAME = {m.name: m for m in ZOO}


def dataset(entry: ZooModel, n: int, rng):
    """(x, y): x an array or, for several inputs, a list; y labels or target arrays."""
    if entry.data == "images":
        return stripes(n, entry.size, 3, rng)
    if entry.data == "spectrogram":
        x, y = stripes(n, 49, 1, rng)
        return x[:, :, :10], y
    if entry.data == "waves":
        return waves(n, 64, 3, rng)
    if entry.data == "sequence":
        return waves(n, 16, 8, rng)
    if entry.data.startswith("discs"):
        x, mask = shapes_masks(n, int(entry.data[5:]), rng)
        return x, mask if entry.name == "unet" else x
    x, y = stripes(n, 16, 1, rng)
    features = (np.eye(8)[y * 2] + rng.normal(0, 0.5, (n, 8))).astype(np.float32)
    return [x, features], y


# --- one model: train, save, deploy ------------------------------------------------------------------


@dataclass
class ZooResult:
    name: str
    outcome: str  # "exact", "NOT EXACT", or "refused"
    operators: str = ""
    flash_bytes: int | None = None
    arena_bytes: int | None = None
    instructions: int | None = None
    exact: float | None = None
    accuracy_float: float | None = None
    accuracy_int8: float | None = None
    accuracy_device: float | None = None
    reason: str = ""  # the refusal
    seconds: float = 0.0


def train(entry: ZooModel, folder: Path, train_samples: int = 512, eval_samples: int = 200) -> Path:
    """Train ENTRY briefly; write folder/NAME.keras, calib.npz and eval.npz (eval: x, y or x0, x1, y)."""
    import keras

    from tinyml_ptq.core.datasets import input_arrays

    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    x, y = dataset(entry, train_samples + eval_samples, rng)
    split = (lambda a: (a[:train_samples], a[train_samples:]))
    model = _small_bn_momentum(entry.build(entry.size))
    if entry.classifier:
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    else:
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    xs = x if isinstance(x, list) else [x]
    x_train = [split(a)[0] for a in xs]
    model.fit(x_train if len(xs) > 1 else x_train[0], split(y)[0], epochs=entry.epochs, batch_size=32, verbose=0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{entry.name}.keras"
    model.save(path)
    np.savez(folder / "calib.npz", **input_arrays([a[:100] for a in x_train]))
    np.savez(folder / "eval.npz", **input_arrays([split(a)[1] for a in xs]),
             **({"y": split(y)[1]} if entry.classifier else {}))
    return path


def deploy_one(entry: ZooModel, folder: Path, keras_path: Path) -> ZooResult:
    from tinyml_ptq.core.errors import UserError
    from tinyml_ptq.pipeline.deploy import deploy

    start = time.monotonic()
    try:
        result = deploy(keras_path, str(folder / "calib.npz"), str(folder / "eval.npz"), folder / "deploy",
                        board="mps2-an386", samples=100, eval_samples=1000, timeout=30.0)
    except UserError as exc:
        return ZooResult(entry.name, "refused", reason=str(exc), seconds=time.monotonic() - start)
    s = result.report["summary"]
    ops = sorted(set(result.quantize.ops))
    return ZooResult(entry.name, "exact" if s["exact"] == 1.0 else "NOT EXACT", " ".join(ops), s["flash_bytes"],
                     s["arena_bytes"], round(s["latency_mean"]) if s["latency_mean"] is not None else None,
                     s["exact"], s["accuracy_float"], s["accuracy_int8"], s["accuracy_device"],
                     seconds=time.monotonic() - start)


def run_zoo(out: Path, names: list[str] | None = None) -> list[ZooResult]:
    results = []
    for entry in ZOO:
        if names and entry.name not in names:
            continue
        folder = out / entry.name
        result = deploy_one(entry, folder, train(entry, folder))
        print(line(result), flush=True)
        results.append(result)
    return results


# --- the README table -------------------------------------------------------------------------------


def line(r: ZooResult) -> str:
    if r.outcome == "refused":
        return f"{r.name}: refused: {r.reason}"
    return (f"{r.name}: {r.outcome}, flash {r.flash_bytes} B, arena {r.arena_bytes} B, {r.instructions} "
            f"instructions, accuracy float/int8/device {_pct(r.accuracy_float)}/{_pct(r.accuracy_int8)}/"
            f"{_pct(r.accuracy_device)}")


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def table(results: list[ZooResult]) -> str:
    rows = ["| model | outcome | operators | flash B | arena B | instructions | accuracy % float / int8 / device |",
            "|---|---|---|---:|---:|---:|---|"]
    for r in results:
        if r.outcome == "refused":
            reason = r.reason.replace("|", "\\|")
            rows.append(f"| {r.name} | refused: {reason} | | | | | |")
        else:
            acc = f"{_pct(r.accuracy_float)} / {_pct(r.accuracy_int8)} / {_pct(r.accuracy_device)}" \
                if r.accuracy_float is not None else "- (not a classifier)"
            rows.append(f"| {r.name} | {r.outcome} | {r.operators} | {r.flash_bytes:,} | {r.arena_bytes:,} | "
                        f"{r.instructions:,} | {acc} |")
    return "\n".join(rows)


def rewrite_readme(readme: Path, results: list[ZooResult]) -> None:
    text = readme.read_text()
    begin, end = "<!-- zoo:begin -->", "<!-- zoo:end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"error: {readme} has no {begin} ... {end} markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    tmp = readme.with_suffix(".tmp")
    tmp.write_text(f"{head}{begin}\n{table(results)}\n{end}{tail}")
    tmp.replace(readme)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("build/zoo"))
    parser.add_argument("--only", nargs="*", choices=sorted(BY_NAME), help="these models only")
    parser.add_argument("--readme", type=Path, help="rewrite this README's zoo table")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    from tinyml_ptq.core import progress

    progress.set_enabled(False)  # one line per model
    results = run_zoo(args.out, args.only)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    if args.readme:
        rewrite_readme(args.readme, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
