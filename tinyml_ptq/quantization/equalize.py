"""Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization") on a float Keras model.

Batch norms are folded into the convolution or Dense layer before them (the
batch norm is left in place as an exact identity, so the graph keeps its
shape and the converter removes it). Then for each pair of weighted layers
joined only by positively homogeneous steps (ReLU, linear, max/average
pooling, flatten, dropout), output channel i of the first layer is divided by
s_i and the matching input channel of the second multiplied by s_i, with
s_i = sqrt(r1_i / r2_i) (r: the channel's weight range), which makes both
ranges sqrt(r1_i * r2_i). relu(x / s) * s == relu(x) for s > 0, so the model's
function is unchanged; its per-channel ranges, and so the activation ranges
between the two layers, become even. ReLU6 is not homogeneous (its clip would
move), so pairs through ReLU6 are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import UserError

WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")
# Layers that commute with a positive per-channel scale of their input.
PASS_THROUGH = ("MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
                "Flatten", "Dropout", "ReLU", "Activation")
HOMOGENEOUS_ACTIVATIONS = ("linear", "relu")
ITERATIONS = 20  # chains of three or more layers converge in a few sweeps


@dataclass
class EqualizeResult:
    folded: int  # batch norms folded
    pairs: list[tuple[str, str]]  # equalized (first, second) layer names
    max_range_ratio_before: float  # largest max/min per-channel weight range ratio over the first layers
    max_range_ratio_after: float


def _kind(layer) -> str:
    return type(layer).__name__


def _activation(layer) -> str:
    if _kind(layer) == "ReLU":
        cfg = layer.get_config()
        plain = not cfg.get("max_value") and not cfg.get("negative_slope") and not cfg.get("threshold")
        return "relu" if plain else "other"
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", str(act)) if act is not None else "linear"
    return name if name in HOMOGENEOUS_ACTIVATIONS else "other"


def _consumers(model) -> dict[int, list]:
    """Layer id -> the layers that read its output (from the model config, the same in Keras 3 and tf_keras)."""
    layers = [layer for layer in model.layers]
    if type(model).__name__ == "Sequential":
        return {id(a): [b] for a, b in zip(layers, layers[1:])}
    by_name = {layer.name: layer for layer in layers}
    result: dict[int, list] = {id(layer): [] for layer in layers}
    for entry in model.get_config()["layers"]:
        for source in _history_names(entry.get("inbound_nodes", [])):
            if source in by_name and entry["name"] in by_name:
                result[id(by_name[source])].append(by_name[entry["name"]])
    return result


def _history_names(node) -> list[str]:
    """Source layer names in a config's inbound_nodes: Keras 3 `keras_history` and tf_keras [name, i, j, {}]."""
    if isinstance(node, dict):
        if "keras_history" in node:
            return [node["keras_history"][0]]
        return [n for value in node.values() for n in _history_names(value)]
    if isinstance(node, (list, tuple)):
        if len(node) >= 3 and isinstance(node[0], str) and isinstance(node[1], int):
            return [node[0]]
        return [n for value in node for n in _history_names(value)]
    return []


def _only_consumer(consumers, layer):
    nexts = consumers.get(id(layer), [])
    return nexts[0] if len(nexts) == 1 else None


def _fold_batch_norm(layer, bn) -> None:
    """Move the batch norm's scale into `layer`'s kernel and its shift into the bias.

    Without a bias in `layer`, the shift stays in the batch norm (then a pure
    per-channel add, which the converter folds into the convolution's bias).
    """
    gamma, beta, mean, var = _bn_weights(bn)
    scale = gamma / np.sqrt(var + bn.epsilon)
    weights = layer.get_weights()
    kernel = np.asarray(weights[0], np.float64)
    if _kind(layer) == "DepthwiseConv2D":
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])[None, None]
    else:
        kernel = kernel * scale  # output channels are the last axis for Conv2D and Dense
    shift = beta - mean * scale
    if layer.use_bias:
        weights[1] = (np.asarray(weights[1], np.float64) * scale + shift).astype(np.float32)
        shift = np.zeros_like(shift)
    weights[0] = kernel.astype(np.float32)
    layer.set_weights(weights)
    # (x - 0) / sqrt((1 - eps) + eps) * 1 + shift: the identity plus the remaining shift.
    _set_bn(bn, np.ones_like(gamma), shift, np.zeros_like(mean), np.full_like(var, 1.0 - bn.epsilon))


def _set_bn(bn, gamma, beta, mean, var) -> None:
    values = ([gamma] if bn.scale else []) + ([beta] if bn.center else []) + [mean, var]
    bn.set_weights([np.asarray(v, np.float32) for v in values])


def _bn_weights(bn):
    weights = [np.asarray(w, np.float64) for w in bn.get_weights()]
    gamma = weights.pop(0) if bn.scale else None
    beta = weights.pop(0) if bn.center else None
    mean, var = weights
    return (np.ones_like(mean) if gamma is None else gamma, np.zeros_like(mean) if beta is None else beta, mean, var)


def _output_ranges(layer) -> np.ndarray:
    kernel = np.asarray(layer.get_weights()[0])
    if _kind(layer) == "DepthwiseConv2D":
        return np.abs(kernel).max(axis=(0, 1)).reshape(-1)
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)


def _input_ranges(layer, channels: int) -> np.ndarray:
    kernel = np.asarray(layer.get_weights()[0])
    if _kind(layer) == "Dense":  # a Flatten before it: input index = position * channels + channel
        return np.abs(kernel).reshape(-1, channels, kernel.shape[-1]).max(axis=(0, 2))
    if _kind(layer) == "DepthwiseConv2D":
        return np.abs(kernel).max(axis=(0, 1, 3))
    return np.abs(kernel).max(axis=(0, 1, 3))


def _scale_pair(first, second, s: np.ndarray, bn=None) -> None:
    """Divide `first`'s output channels by s, multiply `second`'s matching inputs by s."""
    w1 = first.get_weights()
    if _kind(first) == "DepthwiseConv2D":
        w1[0] = w1[0] / s.reshape(w1[0].shape[2], w1[0].shape[3])[None, None]
    else:
        w1[0] = w1[0] / s
    if first.use_bias:
        w1[1] = w1[1] / s
    first.set_weights(w1)
    if bn is not None:  # the folded batch norm holds first's bias
        gamma, beta, mean, var = _bn_weights(bn)
        _set_bn(bn, gamma, beta / s, mean, var)
    w2 = second.get_weights()
    kernel = w2[0]
    if _kind(second) == "Dense":  # a Flatten may sit between: input index = position * channels + channel
        kernel = (kernel.reshape(-1, s.size, kernel.shape[-1]) * s[None, :, None]).reshape(kernel.shape)
    else:  # Conv2D [h, w, in, out] and DepthwiseConv2D [h, w, in, multiplier 1]
        kernel = kernel * s[None, None, :, None]
    w2[0] = kernel
    second.set_weights(w2)


def _pairs(model, consumers, folded: dict[int, object]) -> list[tuple]:
    """(first, second, batch norm holding first's bias or None) for weighted layers joined only by
    homogeneous, single-consumer steps (folded batch norms are identities plus first's bias)."""
    found = []
    for layer in model.layers:
        if _kind(layer) not in WEIGHTED or _activation(layer) == "other":
            continue
        bn = folded.get(id(layer))
        nxt = _only_consumer(consumers, layer)
        if bn is not None and nxt is bn:
            nxt = _only_consumer(consumers, bn)
        while nxt is not None and _kind(nxt) in PASS_THROUGH and _activation(nxt) != "other":
            nxt = _only_consumer(consumers, nxt)
        if nxt is not None and _kind(nxt) in WEIGHTED and nxt.get_config().get("depth_multiplier", 1) == 1:
            found.append((layer, nxt, bn))
    return found


def equalize_keras(model) -> EqualizeResult:
    """Fold batch norms and equalize weight ranges of `model` in place (Keras 3 or tf_keras)."""
    consumers = _consumers(model)
    folded: dict[int, object] = {}
    for layer in model.layers:
        nxt = _only_consumer(consumers, layer)
        if _kind(layer) in WEIGHTED and _activation(layer) == "linear" and nxt is not None \
                and _kind(nxt) == "BatchNormalization" and _bn_axis_last(nxt):
            _fold_batch_norm(layer, nxt)
            folded[id(layer)] = nxt
    pairs = _pairs(model, consumers, folded)
    before = _worst_ratio([a for a, _, _ in pairs])
    for _ in range(ITERATIONS):
        for first, second, bn in pairs:
            r1 = _output_ranges(first)
            r2 = _input_ranges(second, r1.size)
            ok = (r1 > 0) & (r2 > 0)
            s = np.ones_like(r1, dtype=np.float64)
            s[ok] = np.sqrt(r1[ok] / r2[ok])
            _scale_pair(first, second, s.astype(np.float32), bn)
    return EqualizeResult(len(folded), [(a.name, b.name) for a, b, _ in pairs], before,
                          _worst_ratio([a for a, _, _ in pairs]))


def _bn_axis_last(bn) -> bool:
    axis = bn.get_config().get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    return axis == -1 or axis == len(bn.input.shape) - 1


def _worst_ratio(layers) -> float:
    worst = 1.0
    for layer in layers:
        r = _output_ranges(layer)
        r = r[r > 0]
        if r.size:
            worst = max(worst, float(r.max() / r.min()))
    return worst


def equalize_model(loaded) -> EqualizeResult:
    """Equalize a loaded Keras model (quantize's --equalize) before anything converts it."""
    from ..core import progress

    model = getattr(loaded, "_model", None)
    if model is None:
        raise UserError(f"--equalize needs a Keras model (.keras or .h5); {loaded.path} was loaded as a "
                        f"{loaded.loader} signature, whose layers cannot be edited")
    result = equalize_keras(model)
    progress.log(f"equalized {len(result.pairs)} layer pairs, folded {result.folded} batch norms; worst channel "
                 f"range ratio {result.max_range_ratio_before:.1f} -> {result.max_range_ratio_after:.1f}")
    return result
