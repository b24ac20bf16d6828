"""Calibration and evaluation data: every format becomes float32 [N, *shape] per model input and optional y.

Formats (chosen by the path):
  file.npz                 array `x`, optional labels `y`; for a model with several inputs,
                           one array per input, `x0`, `x1`, ... in the model's input order
  file.npy                 samples only
  folder/                  images (png, jpg, bmp, gif, webp, tif), resized to the model's H x W,
                           converted to its channel count, pixels scaled to [0, 1];
                           images in one subfolder per class give labels (sorted folder names)
  file.csv                 one sample per row, values in row-major order of the input shape;
                           an optional header row, whose `label` column (if any) holds y
  file.py:function         a generator function yielding samples, or (x, y) pairs
  package.module:function  the same, imported by module name

Samples must be floating point; integers (e.g. raw uint8 pixels) are refused rather than
guessed at, because the scaling the model was trained with is unknown here.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# A generator may be endless; reading stops here.
MAX_GENERATOR_SAMPLES = 100_000
SEED = 0


@dataclass
class Dataset:
    xs: list[np.ndarray]  # float32 [N, *shape], one array per model input
    y: np.ndarray | None
    source: str
    total: int  # samples in the source before the random subset

    def __len__(self) -> int:
        return len(self.xs[0])


def load_dataset(spec: str, input_shape: tuple[int, ...], samples: int | None = 200,
                 what: str = "--data", accept_int8: bool = False) -> Dataset:
    """Read `spec`, check it against `input_shape`, and draw a fixed-seed subset of `samples`.

    With `accept_int8`, int8 samples (already quantized model inputs) are kept as they are;
    the stages that run an int8 model take them, the float-model stages do not.
    """
    input_shape = tuple(int(d) for d in input_shape)
    spec = str(spec)
    x, y = _read(spec, input_shape, what)
    x, y = _check(spec, x, y, input_shape, what, accept_int8)
    keep = _subset(len(x), samples, what)
    return Dataset([np.ascontiguousarray(x[keep])], None if y is None else y[keep], spec, len(x))


def input_names(count: int) -> list[str]:
    """The names of a model's inputs in .npz files and converter signatures: x for one input,
    x0, x1, ... for several."""
    return ["x"] if count == 1 else [f"x{i}" for i in range(count)]


def input_arrays(xs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Samples of every input, keyed as a .npz file holds them (input_names)."""
    return dict(zip(input_names(len(xs)), xs))


def load_inputs(spec: str, input_shapes: list[tuple[int, ...]], samples: int | None = None,
                what: str = "--data", accept_int8: bool = False) -> Dataset:
    """Samples for every input of a model ([N, *shape] each, in input order) and labels, if any.

    One input takes every format of `load_dataset`. Several come from a .npz holding one
    array per input, `x0`, `x1`, ..., with the same number of samples, and optional `y`.
    """
    if len(input_shapes) == 1:
        return load_dataset(spec, input_shapes[0], samples, what, accept_int8)
    spec = str(spec)
    names = input_names(len(input_shapes))
    path = Path(spec)
    if path.suffix.lower() != ".npz" or not path.is_file():
        raise UserError(f"{what} {spec}: the model has {len(input_shapes)} inputs; give a .npz file with one "
                        f"array per input ({', '.join(names)}) and optional labels y")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [n for n in names if n not in archive.files]
            if missing:
                raise UserError(f"{what} {spec}: no array {', '.join(missing)} (has: {', '.join(archive.files) or 'none'}); "
                                f"the model has {len(input_shapes)} inputs: save them as {', '.join(names)}")
            arrays = [archive[n] for n in names]
            labels = archive["y"] if "y" in archive.files else None
    except UserError:
        raise
    except Exception as exc:  # numpy and zipfile raise assorted errors on damaged files
        raise UserError(f"{what} {spec}: cannot read it ({type(exc).__name__}: {_one_line(exc)}); "
                        "check the file is complete") from None
    counts = {n: len(np.atleast_1d(a)) for n, a in zip(names, arrays)}
    if len(set(counts.values())) > 1:
        raise UserError(f"{what} {spec}: the inputs hold different numbers of samples "
                        f"({', '.join(f'{n} {c}' for n, c in counts.items())}); give every input one row per sample")
    xs, y = [], labels
    for name, x, shape in zip(names, arrays, input_shapes):
        x, y = _check(f"{spec} ({name})", x, labels, tuple(int(d) for d in shape), what, accept_int8)
        xs.append(x)
    keep = _subset(len(xs[0]), samples, what)
    return Dataset([np.ascontiguousarray(x[keep]) for x in xs], None if y is None else y[keep], spec, len(xs[0]))


def _subset(total: int, samples: int | None, what: str) -> np.ndarray:
    """Indices of a fixed-seed subset of `samples` (all of them, in order, if None or no fewer)."""
    if samples is not None and samples < 1:
        raise UserError(f"{what}: --samples must be at least 1, got {samples}")
    if samples is None or total <= samples:
        return np.arange(total)
    return np.sort(np.random.default_rng(SEED).choice(total, size=samples, replace=False))


def _read(spec: str, input_shape: tuple[int, ...], what: str):
    path = Path(spec)
    generator = re.fullmatch(r"(.+):([A-Za-z_][A-Za-z0-9_]*)", spec)
    if generator and not path.exists():
        return _read_generator(generator.group(1), generator.group(2), input_shape, spec, what)
    if not path.exists():
        raise UserError(f"{what} {spec}: no such file or folder; give a .npz, .npy or .csv file, "
                        "an image folder, or file.py:function")
    if path.is_dir():
        return _read_images(path, input_shape, what)
    suffix = path.suffix.lower()
    readers = {".npz": _read_npz, ".npy": _read_npy, ".csv": _read_csv}
    if suffix not in readers:
        raise UserError(f"{what} {spec}: unknown data format {suffix or '(no suffix)'}; "
                        "use .npz, .npy, .csv, an image folder, or file.py:function")
    try:
        return readers[suffix](path, input_shape, what)
    except UserError:
        raise
    except Exception as exc:  # numpy and zipfile raise assorted errors on damaged files
        raise UserError(f"{what} {spec}: cannot read it ({type(exc).__name__}: {_one_line(exc)}); "
                        "check the file is complete") from None


def _one_line(exc: BaseException, limit: int = 120) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_npz(path: Path, input_shape, what):
    with np.load(path, allow_pickle=False) as archive:
        name = "x" if "x" in archive.files else "x0"  # x0: the one input, named as for several
        if name not in archive.files:
            raise UserError(f"{what} {path}: no array 'x' (has: {', '.join(archive.files) or 'none'}); "
                            "save samples as x=..., labels as y=...")
        return archive[name], archive["y"] if "y" in archive.files else None


def _read_npy(path: Path, input_shape, what):
    return np.load(path, allow_pickle=False), None


def _read_csv(path: Path, input_shape, what):
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    if not rows:
        return np.zeros((0, *input_shape), np.float32), None
    header = None
    if not _is_number(rows[0][0].strip()):
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
    label_col = header.index("label") if header and "label" in header else None
    values, labels = [], []
    for line, row in enumerate(rows, start=2 if header else 1):
        cells = [cell.strip() for cell in row]
        if label_col is not None:
            labels.append(cells.pop(label_col))
        try:
            values.append([float(cell) for cell in cells])
        except ValueError:
            raise UserError(f"{what} {path}: line {line} has a value that is not a number") from None
    width = int(np.prod(input_shape))
    bad = next((i for i, v in enumerate(values) if len(v) != width), None)
    if bad is not None:
        raise UserError(f"{what} {path}: row {bad + 1} has {len(values[bad])} values, the model input "
                        f"{list(input_shape)} needs {width} per row")
    x = np.asarray(values, dtype=np.float64).reshape(len(values), *input_shape)
    y = None
    if label_col is not None:
        try:
            y = np.asarray([float(v) for v in labels])
        except ValueError:
            raise UserError(f"{what} {path}: the label column holds a value that is not a number") from None
        if np.all(y == np.round(y)):
            y = y.astype(np.int64)
    return x, y


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_images(folder: Path, input_shape, what):
    if len(input_shape) != 3:
        raise UserError(f"{what} {folder}: an image folder needs a model input of shape H x W x C, "
                        f"this model takes {list(input_shape)}")
    height, width, channels = input_shape
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    if channels not in modes:
        raise UserError(f"{what} {folder}: images can feed 1, 3 or 4 channels, the model takes {channels}")

    def images_in(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    files, labels = images_in(folder), None
    if not files:
        classes = sorted(d for d in folder.iterdir() if d.is_dir() and images_in(d))
        files = [p for d in classes for p in images_in(d)]
        labels = [i for i, d in enumerate(classes) for _ in images_in(d)]
    from PIL import Image

    x = np.zeros((len(files), height, width, channels), np.float32)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as img:
                img = img.convert(modes[channels]).resize((width, height), Image.BILINEAR)
                pixels = np.asarray(img, dtype=np.float32) / 255.0
        except OSError as exc:
            raise UserError(f"{what} {file}: not a readable image ({_one_line(exc)})") from None
        x[i] = pixels.reshape(height, width, channels)
    return x, None if labels is None else np.asarray(labels, dtype=np.int64)


def _read_generator(target: str, func_name: str, input_shape, spec: str, what):
    func = getattr(_import_target(target, spec, what), func_name, None)
    if not callable(func):
        raise UserError(f"{what} {spec}: {target} has no function {func_name}")
    xs, ys = [], []
    try:
        for item in itertools.islice(func(), MAX_GENERATOR_SAMPLES):
            if isinstance(item, tuple) and len(item) == 2:
                item, label = item
                ys.append(label)
            sample = np.asarray(item)
            # Accept samples with a leading batch of 1, as TFLite representative datasets yield them.
            if sample.shape == (1, *input_shape):
                sample = sample[0]
            xs.append(sample)
    except UserError:
        raise
    except Exception as exc:  # user code: report what it raised, in one line
        raise UserError(f"{what} {spec}: the generator raised {type(exc).__name__}: {_one_line(exc)}") from None
    if ys and len(ys) != len(xs):
        raise UserError(f"{what} {spec}: the generator yielded (x, y) pairs for only some samples")
    shapes = {s.shape for s in xs}
    if len(shapes) > 1:
        raise UserError(f"{what} {spec}: the generator yielded samples of different shapes {sorted(shapes)[:3]}; "
                        f"the model input is {list(input_shape)}")
    x = np.stack(xs) if xs else np.zeros((0, *input_shape), np.float32)
    return x, np.asarray(ys) if ys else None


def _import_target(target: str, spec: str, what: str):
    try:
        if target.endswith(".py"):
            file = Path(target)
            if not file.is_file():
                raise UserError(f"{what} {spec}: no such file {file}")
            module_spec = importlib.util.spec_from_file_location(f"_tinyml_ptq_data_{file.stem}", file)
            module = importlib.util.module_from_spec(module_spec)
            sys.path.insert(0, str(file.resolve().parent))  # so the file can import its neighbours
            try:
                module_spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(file.resolve().parent))
            return module
        return importlib.import_module(target)
    except UserError:
        raise
    except ModuleNotFoundError as exc:
        raise UserError(f"{what} {spec}: cannot import {exc.name}; give path/to/file.py:function "
                        "or an importable package.module:function") from None
    except Exception as exc:
        raise UserError(f"{what} {spec}: importing {target} raised {type(exc).__name__}: {_one_line(exc)}") from None


def _check(spec: str, x, y, input_shape: tuple[int, ...], what: str, accept_int8: bool = False):
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise UserError(f"{what} {spec}: no samples; give at least one")
    # Already in an integer input's type: int8 or int16 (quantized), int32 (e.g. a shape operand).
    quantized = accept_int8 and x.dtype in (np.int8, np.int16, np.int32)
    if not quantized and not np.issubdtype(x.dtype, np.floating):
        raise UserError(f"{what} {spec}: samples have dtype {x.dtype}, the model takes float32; "
                        "convert and scale them as in training (e.g. x.astype('float32') / 255)")
    if tuple(x.shape[1:]) != input_shape:
        raise UserError(f"{what} {spec}: samples have shape {list(x.shape[1:])} (x is {list(x.shape)}), "
                        f"the model input is {list(input_shape)}; reshape the data to [N, "
                        f"{', '.join(map(str, input_shape))}]")
    if not quantized:
        with np.errstate(over="ignore"):  # float64 beyond float32 range becomes Inf, caught next
            x = x.astype(np.float32)
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise UserError(f"{what} {spec}: {int((~finite).sum())} samples hold NaN or Inf (first: sample {bad}); "
                        "clean the data")
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise UserError(f"{what} {spec}: {len(y)} labels for {len(x)} samples; give one label per sample")
        y = _as_class_indices(y)
    return x, y


def _as_class_indices(y: np.ndarray) -> np.ndarray:
    """Labels as class indices wherever they are ones: one-hot (or per-class score) rows become
    the index of their largest entry, whole numbers stored as floats (MLCommons ships labels as
    float64) become int64. Other labels (regression targets) stay as they are."""
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    y = y.reshape(len(y)) if y.ndim == 2 else y
    if y.ndim == 1 and np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) \
            and np.all(y == np.round(y)):
        return y.astype(np.int64)
    return y


def check_class_labels(y: np.ndarray | None, classes: int, what: str) -> bool:
    """True if `y` holds class indices of a `classes`-way output (accuracy can be measured).

    Integer labels outside 0..classes-1 would give an accuracy of zero that means nothing:
    they are refused with the range found, rather than reported.
    """
    if y is None or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or classes < 2 or len(y) == 0:
        return False
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= classes:
        raise UserError(f"{what}: labels run from {low} to {high} but the model has {classes} outputs "
                        f"(classes 0 to {classes - 1}); give labels as class indices")
    return True
