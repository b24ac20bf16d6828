"""Activation ranges beyond min/max, applied through the TFLite converter itself.

The route: the converter calibrates only (`_experimental_calibrate_only`: a
float model whose activation tensors carry the min/max seen on the calibration
data), we replace those min/max values with the chosen ranges, and
`mlir_quantize` turns the result into the full-int8 model. With the ranges
left alone this is byte for byte what the plain converter writes.

Range methods per activation tensor:
  minmax         what the converter does (the min and max seen)
  percentile:P   the P-th percentile at the top, the (100-P)-th at the bottom
  samples:P      the P-th percentile of the per-sample maxima (and the
                 (100-P)-th of the minima): whole outlier samples drop out
  mse            the clipping of [min, max] whose int8 rounding + clipping
                 error on the calibration values is smallest
  auto           per tensor, among those candidates, the range that gives the
                 best output SQNR (int8 against float) on held-out
                 calibration samples; a tensor leaves minmax only when the
                 gain is large on every fold of those samples (see
                 AUTO_MIN_GAIN_DB), so clean models keep the converter's model

Bias correction (`bias_correct`) removes the mean output shift that weight
rounding causes: for a linear layer it is exactly layer(E[x], W_q - W), with
E[x] the mean float input map over the calibration samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..core import progress
from ..core.errors import UserError
from ..interpreters.litert import open_litert
from ..interpreters.reference import tensor_info

# Candidates `auto` chooses among, besides minmax (the plain converter's ranges).
AUTO_CANDIDATES = ("percentile:99.99", "percentile:99.9", "mse", "samples:95")
# Ops whose int8 kernels need the output scale of the input (the quantizer
# propagates one scale through them), and ops with a fixed output range.
SAME_SCALE_OPS = {"MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CONCATENATION",
                  "PAD", "PADV2", "TRANSPOSE", "STRIDED_SLICE", "SLICE", "GATHER", "SPLIT", "SPLIT_V",
                  "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "RESIZE_NEAREST_NEIGHBOR", "PACK", "UNPACK"}
FIXED_RANGE_OPS = {"SOFTMAX", "LOGISTIC", "TANH", "LOG_SOFTMAX"}
# Values kept per tensor for percentiles and the MSE search (a fixed-seed subsample).
VALUES_PER_TENSOR = 1 << 16
# Clipping factors of [min, max] the MSE search tries.
MSE_GRID = np.geomspace(1.0, 1e-3, 64)
# Held-out calibration samples that `auto` scores candidates on, at most.
HELD_OUT_MAX = 100
# `auto` needs at least this many held-out samples per fold; with fewer it keeps minmax.
MIN_FOLD_SAMPLES = 4
# The held-out samples are split into folds (alternating samples); a choice
# replaces the current one only if it gains more than AUTO_MIN_GAIN_DB of
# output SQNR on every fold. Measured on clean digits models: held-out gains of
# 1 to 2.5 dB (clipping a little) turned into eval losses of up to 1.2 dB,
# because the held-out samples are few and, like all calibration data, often
# seen in training; one glitched sample dominates the SQNR of its fold, so
# "every fold" also stops auto from fitting ranges to the glitch. A glitched
# calibration set gains 5 to 40 dB per fold.
AUTO_FOLDS = 2
AUTO_MIN_GAIN_DB = 3.0
# `auto` refines range by range only up to this many range groups: each trial is a full
# quantization and scoring, and an unrolled recurrent layer has hundreds of groups
# (minutes each way); above it, the whole-model choice stands.
AUTO_MAX_GROUPS = 64


def parse_method(text: str) -> str:
    """Check a --calibration value; returns it normalized."""
    text = str(text).strip().lower()
    if text in ("minmax", "mse", "auto"):
        return text
    if text.startswith(("percentile:", "samples:")):
        kind = text.split(":", 1)[0]
        try:
            p = float(text.split(":", 1)[1])
        except ValueError:
            p = -1.0
        if not 50.0 < p <= 100.0:
            raise UserError(f"--calibration {text}: the percentile must be a number in (50, 100], "
                            f"e.g. {kind}:99.9")
        return f"{kind}:{p:g}"
    raise UserError(f"unknown --calibration {text!r}; choose minmax, percentile:P (e.g. percentile:99.99), "
                    "samples:P (e.g. samples:95), mse or auto")


@dataclass
class TensorRange:
    index: int
    name: str
    op: str  # the operator that writes the tensor ("INPUT" for the model input)
    method: str
    min: float | None  # None where the op fixes the range (softmax, shared-scale ops)
    max: float | None
    sqnr_db: float | None  # int8 rounding + clipping SQNR of this tensor on the calibration values


@dataclass
class Calibration:
    tflite: bytes  # the full-int8 model
    method: str
    tensors: list[TensorRange]
    selection_sqnr_db: dict[str, float] = field(default_factory=dict)  # auto: held-out output SQNR per candidate
    selection_folds_db: dict[str, list[float]] = field(default_factory=dict)  # auto: the same, per fold
    bias_corrected: int = 0  # layers whose bias was corrected
    seconds: float = 0.0


# --- the converter route --------------------------------------------------------------------------

def quantize_calibrated(calibrated, per_tensor: bool = False, ranges: dict[int, tuple[float, float]] | None = None
                        ) -> bytes:
    """Full-int8 model from a calibrate-only model, with `ranges` (tensor index -> (min, max)) replaced."""
    from tensorflow.lite.python.convert import mlir_quantize
    from tensorflow.lite.tools import flatbuffer_utils

    from .model_loader import import_tensorflow, native_stderr_captured

    tf = import_tensorflow()
    model = flatbuffer_utils.convert_bytearray_to_object(calibrated) if isinstance(calibrated, bytes) \
        else calibrated
    tensors = model.subgraphs[0].tensors
    saved = {}
    for index, (lo, hi) in (ranges or {}).items():
        q = tensors[index].quantization
        saved[index] = (q.min, q.max)
        q.min, q.max = np.array([lo], np.float32), np.array([hi], np.float32)
    try:
        edited = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    finally:
        for index, (lo, hi) in saved.items():
            tensors[index].quantization.min, tensors[index].quantization.max = lo, hi
    with native_stderr_captured():
        quantized = mlir_quantize(edited, disable_per_channel=per_tensor, fully_quantize=True,
                                  input_data_type=tf.int8, output_data_type=tf.int8)
    # The converter re-serializes its result the same way; so do we, to write the same bytes.
    return bytes(flatbuffer_utils.convert_object_to_bytearray(flatbuffer_utils.convert_bytearray_to_object(quantized)))


# --- statistics -----------------------------------------------------------------------------------

@dataclass
class _Tensor:
    index: int
    name: str
    op: str
    lo: float  # the converter's min/max
    hi: float
    values: list = field(default_factory=list)  # subsampled float values, one array per sample
    sample_min: list = field(default_factory=list)  # each sample's min and max
    sample_max: list = field(default_factory=list)
    mean: np.ndarray | None = None  # mean float map (inputs of weighted layers, for bias correction)


def _graph(model):
    """(opcode, input indices, output indices) per operator of subgraph 0."""
    from tensorflow.lite.tools import flatbuffer_utils

    sub = model.subgraphs[0]
    return [(flatbuffer_utils.opcode_to_name(model, op.opcodeIndex), [int(i) for i in op.inputs if i >= 0],
             [int(i) for i in op.outputs if i >= 0]) for op in sub.operators]


def _activation_tensors(model) -> dict[int, _Tensor]:
    sub = model.subgraphs[0]
    writer = {int(i): "INPUT" for i in sub.inputs}
    for op, _, outputs in _graph(model):
        for i in outputs:
            writer[i] = op
    found = {}
    for index, op in writer.items():
        t = sub.tensors[index]
        q = t.quantization
        if q is not None and q.min is not None and len(q.min) == 1:
            found[index] = _Tensor(index, t.name.decode() if isinstance(t.name, bytes) else str(t.name), op,
                                   float(q.min[0]), float(q.max[0]))
    return found


def _float_interpreter(tflite: bytes):

    return open_litert(tflite, preserve=True)


def collect(calibrated: bytes, x: np.ndarray, tensors: dict[int, _Tensor], mean_of: set[int]) -> None:
    """Run the float model on `x`; keep a fixed-seed value subsample per tensor and the mean maps of `mean_of`."""
    interp = _float_interpreter(calibrated)
    inp = interp.get_input_details()[0]["index"]
    rng = np.random.default_rng(0)
    per_sample = max(1, -(-VALUES_PER_TENSOR // len(x)))
    sums = {i: None for i in mean_of}
    for s in progress.track(x, "range statistics"):
        interp.set_tensor(inp, s[None].astype(np.float32))
        interp.invoke()
        for index, t in tensors.items():
            v = interp.get_tensor(index).ravel()
            t.sample_min.append(float(v.min()))
            t.sample_max.append(float(v.max()))
            t.values.append(v.copy() if v.size <= per_sample else rng.choice(v, per_sample, replace=False))
        for index in mean_of:
            v = interp.get_tensor(index).astype(np.float64)
            sums[index] = v if sums[index] is None else sums[index] + v
    for index in mean_of:
        tensors[index].mean = sums[index] / len(x)


# --- range candidates -----------------------------------------------------------------------------

def fake_quant(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """int8 quantize-dequantize with the converter's asymmetric parameters for range [lo, hi]."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0
    if scale <= 0.0:
        return np.zeros_like(v)
    zero_point = np.clip(np.round(-128.0 - lo / scale), -128, 127)
    return (np.clip(np.round(v / scale) + zero_point, -128, 127) - zero_point) * scale


def _sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((np.asarray(got, np.float64) - ref) ** 2))
    signal = float(np.sum(np.asarray(ref, np.float64) ** 2))
    if noise == 0.0:
        return float("inf")
    return 10.0 * np.log10(max(signal, 1e-30) / noise)


def candidate_range(t: _Tensor, method: str) -> tuple[float, float]:
    if method == "minmax":
        return t.lo, t.hi
    if method.startswith("samples:"):
        p = float(method.split(":", 1)[1])
        return min(float(np.percentile(t.sample_min, 100.0 - p)), 0.0), max(float(np.percentile(t.sample_max, p)), 0.0)
    v = np.concatenate(t.values).astype(np.float64)
    if method.startswith("percentile:"):
        p = float(method.split(":", 1)[1])
        lo, hi = np.percentile(v, [100.0 - p, p])
        return min(float(lo), 0.0), max(float(hi), 0.0)
    if method == "mse":
        errors = [np.mean((fake_quant(v, t.lo * a, t.hi * a) - v) ** 2) for a in MSE_GRID]
        a = float(MSE_GRID[int(np.argmin(errors))])
        return t.lo * a, t.hi * a
    raise ValueError(method)


def _groups(model, tensors: dict[int, _Tensor]) -> list[list[int]]:
    """Activation tensors that must share one range (joined by same-scale ops), in graph order.

    Tensors written by fixed-range ops (softmax and friends) are left out: the
    quantizer ignores their edited range, and so does everything joined to them.
    """
    parent = {i: i for i in tensors}

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    fixed = set()
    for op, inputs, outputs in _graph(model):
        if op in FIXED_RANGE_OPS:
            fixed.update(outputs)
        if op in SAME_SCALE_OPS:
            members = [i for i in inputs + outputs if i in tensors]
            for i in members[1:]:
                parent[find(i)] = find(members[0])
    groups: dict[int, list[int]] = {}
    for i in tensors:  # dict order is graph order (input first, then each op's outputs)
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if not any(i in fixed for i in g)]


def _group_range(tensors, group, method) -> tuple[float, float]:
    ranges = [candidate_range(tensors[i], method) for i in group]
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


# --- selection ------------------------------------------------------------------------------------

class _Scorer:
    """Output SQNR (dB) of int8 models against the float model on held-out samples (LiteRT).

    Calling it returns the SQNR on all samples and on each of `folds` folds
    (every folds-th sample).
    """

    def __init__(self, calibrated: bytes, x: np.ndarray, folds: int):
    
        interp = open_litert(calibrated)
        inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
        refs = []
        for s in x:
            interp.set_tensor(inp, s[None].astype(np.float32))
            interp.invoke()
            refs.append(interp.get_tensor(out).astype(np.float64).copy())
        self.x, self.ref = x, np.stack(refs)
        self.fold = np.arange(len(x)) % folds
        self.folds = folds
        self._interp = interp  # each candidate model opens in this one's child process

    def __call__(self, tflite: bytes) -> tuple[float, np.ndarray]:
        from ..interpreters.reference import dequantize, quantize_input

        interp = open_litert(tflite, reuse=self._interp)
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        in_info, out_info = tensor_info(inp), tensor_info(out)
        got = []
        for s in self.x:
            interp.set_tensor(inp["index"], quantize_input(s[None], in_info))
            interp.invoke()
            got.append(dequantize(interp.get_tensor(out["index"]), out_info))
        got = np.stack(got)
        per_fold = np.array([_sqnr_db(self.ref[self.fold == k], got[self.fold == k]) for k in range(self.folds)])
        return _sqnr_db(self.ref, got), per_fold


def calibrate(loaded, calib_x: np.ndarray, method: str = "auto", per_tensor: bool = False,
              bias_correction: bool = False, converter=None) -> Calibration:
    """Quantize `loaded` to full int8 with activation ranges chosen by `method` (see module doc).
    converter: a conversion.Converter (the converter in a child process), else this process's."""
    from tensorflow.lite.tools import flatbuffer_utils

    from .conversion import Conversions

    start = time.monotonic()
    method = parse_method(method)
    calibrated = (converter or Conversions(loaded)).calibrate_only([calib_x])
    model = flatbuffer_utils.convert_bytearray_to_object(calibrated)
    tensors = _activation_tensors(model)
    # auto scores candidates on every other calibration sample and takes statistics from the rest.
    held_out = np.zeros(len(calib_x), bool)
    if method == "auto" and len(calib_x) >= 2 * AUTO_FOLDS * MIN_FOLD_SAMPLES:
        held_out[1::2] = True
        held_out[np.flatnonzero(held_out)[HELD_OUT_MAX:]] = False
    elif method == "auto":
        progress.log(f"note: auto needs {2 * AUTO_FOLDS * MIN_FOLD_SAMPLES} or more calibration samples "
                     f"to hold some out; {len(calib_x)} given, keeping minmax")
    stats_x = calib_x[~held_out]
    mean_of = _weighted_inputs(model) if bias_correction else set()
    for i in mean_of:
        tensors.setdefault(i, _Tensor(i, "", "", 0.0, 0.0))
    if method != "minmax" or bias_correction:
        progress.log(f"range statistics over {len(stats_x)} samples, {len(tensors)} tensors")
        collect(calibrated, stats_x, tensors, mean_of)
    groups = _groups(model, tensors)
    chosen: dict[int, str] = {}
    scores: dict[str, float] = {}
    fold_scores: dict[str, list[float]] = {}

    group_ranges: dict[tuple[int, str], tuple[float, float]] = {}  # percentiles and MSE searches, once each

    def ranges_for(choice: dict[int, str]) -> dict[int, tuple[float, float]]:
        out = {}
        for gi, group in enumerate(groups):
            if choice.get(gi, "minmax") != "minmax":
                key = (gi, choice[gi])
                if key not in group_ranges:
                    group_ranges[key] = _group_range(tensors, group, choice[gi])
                lo, hi = group_ranges[key]
                # Only edits: a tensor whose range stays the converter's is left alone.
                out.update({i: (lo, hi) for i in group if (lo, hi) != (tensors[i].lo, tensors[i].hi)})
        return out

    if method == "auto" and held_out.any():
        scorer = _Scorer(calibrated, calib_x[held_out], AUTO_FOLDS)
        cache: dict[tuple, tuple[float, np.ndarray]] = {}

        def score(choice):
            # Keyed by the ranges: different methods often give one range (mse at factor 1, an input in [0, 1]).
            ranges = ranges_for(choice)
            key = tuple(sorted(ranges.items()))
            if key not in cache:
                cache[key] = scorer(quantize_calibrated(model, per_tensor, ranges))
            return cache[key]

        def gain(trial, current) -> float:
            """The smallest gain over the folds (dB)."""
            return float(np.min(score(trial)[1] - score(current)[1]))

        # Whole-model candidates first, then each group's range on its own, in graph order.
        everywhere = {m: {gi: m for gi in range(len(groups))} for m in ("minmax",) + AUTO_CANDIDATES}
        for m, choice in everywhere.items():
            scores[m], per_fold = score(choice)
            fold_scores[m] = [float(v) for v in per_fold]
        chosen = everywhere["minmax"]
        best_method = max(AUTO_CANDIDATES, key=lambda m: gain(everywhere[m], chosen))
        if gain(everywhere[best_method], chosen) > AUTO_MIN_GAIN_DB:
            chosen = everywhere[best_method]
        refine = range(len(groups)) if len(groups) <= AUTO_MAX_GROUPS else range(0)
        if not refine:
            progress.log(f"note: auto keeps its whole-model choice: {len(groups)} range groups is more than the "
                         f"{AUTO_MAX_GROUPS} it refines one by one")
        for gi in progress.track(refine, "choosing ranges per tensor"):
            for m in ("minmax",) + AUTO_CANDIDATES:
                trial = {**chosen, gi: m}
                if m != chosen[gi] and gain(trial, chosen) > AUTO_MIN_GAIN_DB:
                    chosen = trial
        scores["auto"], per_fold = score(chosen)
        fold_scores["auto"] = [float(v) for v in per_fold]
    else:
        chosen = {gi: "minmax" if method == "auto" else method for gi in range(len(groups))}
    ranges = ranges_for(chosen)
    tflite = quantize_calibrated(model, per_tensor, ranges)
    corrected = 0
    if bias_correction:
        tflite, corrected = bias_correct(model, tflite, tensors)
    report = []
    in_group = {i: gi for gi, g in enumerate(groups) for i in g}
    for index, t in tensors.items():
        if not t.name:
            continue
        gi = in_group.get(index)
        m = "fixed" if gi is None else chosen.get(gi, "minmax")
        if gi is None:  # a fixed-range op's output: the quantizer chooses the range, not us
            report.append(TensorRange(index, t.name, t.op, m, None, None, None))
            continue
        lo, hi = ranges.get(index, (t.lo, t.hi))
        err = None
        if t.values:
            v = np.concatenate(t.values).astype(np.float64)
            err = _sqnr_db(v, fake_quant(v, lo, hi))
        report.append(TensorRange(index, t.name, t.op, m, float(lo), float(hi), err))
    return Calibration(tflite, method, report, scores, fold_scores, corrected, time.monotonic() - start)


# --- bias correction ------------------------------------------------------------------------------

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _weighted_inputs(model) -> set[int]:
    return {inputs[0] for op, inputs, _ in _graph(model) if op in WEIGHTED_OPS and len(inputs) >= 3}


def _buffer_array(model, tensor_index: int, dtype) -> np.ndarray:
    t = model.subgraphs[0].tensors[tensor_index]
    data = model.buffers[t.buffer].data
    return np.frombuffer(bytes(np.asarray(data, np.uint8)), dtype=dtype).reshape([int(d) for d in t.shape])


def _layer_output_mean(op: str, options, x_mean: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mean over output positions of layer(x_mean, w), per output channel (no bias, no activation)."""
    from .model_loader import import_tensorflow

    tf = import_tensorflow()
    if op == "FULLY_CONNECTED":
        return (x_mean.reshape(-1, w.shape[1]) @ w.T.astype(np.float64)).mean(axis=0)
    padding = "SAME" if options.padding == 0 else "VALID"
    strides = [1, options.strideH, options.strideW, 1]
    dilations = [options.dilationHFactor or 1, options.dilationWFactor or 1]
    x = tf.constant(x_mean.astype(np.float64).reshape(1, *x_mean.shape[-3:]))
    if op == "CONV_2D":
        y = tf.nn.conv2d(x, tf.constant(np.transpose(w, (1, 2, 3, 0)).astype(np.float64)), strides, padding,
                         dilations=dilations)
    else:  # DEPTHWISE_CONV_2D, filter [1, H, W, C * M]
        channels = x_mean.shape[-1]
        kernel = w.reshape(w.shape[1], w.shape[2], channels, w.shape[3] // channels).astype(np.float64)
        y = tf.nn.depthwise_conv2d(x, tf.constant(kernel), strides, padding, dilations=dilations)
    return y.numpy().reshape(-1, y.shape[-1]).mean(axis=0)


def bias_correct(float_model, quant_tflite: bytes, tensors: dict[int, _Tensor]) -> tuple[bytes, int]:
    """Subtract layer(E[x], W_q - W) from each weighted layer's int32 bias; returns (model, layers corrected)."""
    from tensorflow.lite.tools import flatbuffer_utils

    qmodel = flatbuffer_utils.convert_bytearray_to_object(quant_tflite)
    f_ops = [(op, ins) for op, ins, _ in _graph(float_model) if op not in ("QUANTIZE", "DEQUANTIZE")]
    q_ops = [(k, op, ins) for k, (op, ins, _) in enumerate(_graph(qmodel)) if op not in ("QUANTIZE", "DEQUANTIZE")]
    if [op for op, _ in f_ops] != [op for _, op, _ in q_ops]:
        progress.log("note: float and int8 graphs differ in their operators; no bias correction")
        return quant_tflite, 0
    sub = qmodel.subgraphs[0]
    buffer_users: dict[int, int] = {}
    for t in sub.tensors:
        buffer_users[t.buffer] = buffer_users.get(t.buffer, 0) + 1
    corrected = 0
    for (f_op, f_in), (k, q_op, q_in) in zip(f_ops, q_ops):
        if q_op not in WEIGHTED_OPS or len(q_in) < 3 or len(f_in) < 3 or f_in[0] not in tensors:
            continue
        bias_t = sub.tensors[q_in[2]]
        if buffer_users.get(bias_t.buffer, 0) != 1 or bias_t.type != 2:  # shared or not int32
            continue
        w_float = _buffer_array(float_model, f_in[1], np.float32)
        w_tensor = sub.tensors[q_in[1]]
        w_scales = np.asarray(w_tensor.quantization.scale, np.float64)
        axis = 3 if q_op == "DEPTHWISE_CONV_2D" else 0
        shape = [1] * w_float.ndim
        shape[axis] = -1
        w_quant = _buffer_array(qmodel, q_in[1], np.int8).astype(np.float64) * w_scales.reshape(shape)
        options = sub.operators[k].builtinOptions
        shift = _layer_output_mean(q_op, options, tensors[f_in[0]].mean, w_quant - w_float)
        in_scale = float(sub.tensors[q_in[0]].quantization.scale[0])
        bias = _buffer_array(qmodel, q_in[2], np.int32).astype(np.int64)
        correction = np.round(shift / (in_scale * np.broadcast_to(w_scales, shift.shape))).astype(np.int64)
        new_bias = np.clip(bias - correction, -(1 << 31), (1 << 31) - 1).astype("<i4")
        qmodel.buffers[bias_t.buffer].data = np.frombuffer(new_bias.tobytes(), np.uint8)
        corrected += 1
    return bytes(flatbuffer_utils.convert_object_to_bytearray(qmodel)), corrected
