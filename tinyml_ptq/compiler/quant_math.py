"""Fixed-point parameters computed at generation time, exactly as TFLite computes them.

The device only ever sees the integers produced here, so any difference from
TFLite's arithmetic (float vs double products, rounding of ties) would show up
as off-by-one outputs. Each function names the TFLite routine it mirrors.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127

FUSED_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def round_half_away(x: float) -> int:
    """std::round: ties away from zero (Python's round() goes to even)."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """QuantizeMultiplier: real = q * 2^(shift - 31), q in [2^30, 2^31)."""
    if real_multiplier == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real_multiplier)
    q = round_half_away(fraction * (1 << 31))
    if q == (1 << 31):
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q), int(shift)


def f32(x: float) -> float:
    """Round a Python float to float32, for products TFLite forms in float."""
    return float(np.float32(x))


class ActivationRangeError(ValueError):
    """The bounds of a fused activation cannot be represented at this scale."""


def activation_range(fused: int | str, scale: float, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for a fused activation."""
    name = FUSED_ACTIVATIONS.get(fused, fused) if isinstance(fused, int) else fused

    def quantize(value: float) -> int:
        # TFLite computes zero_point + round(value / scale) with float scale, into an int32:
        # beyond int32 (a scale below about 3e-9 for RELU6) the C++ cast is undefined.
        with np.errstate(over="ignore"):  # an overflow to inf is refused just below
            steps = float(np.float32(value) / np.float32(scale))
        if not abs(steps) < 2.0 ** 31:
            raise ActivationRangeError(f"{name}'s bound {value:g} at output scale {scale:g} is {steps:g} steps "
                                       "from the zero point, beyond int32 as TFLite computes it")
        return zero_point + round_half_away(steps)

    if name == "NONE":
        return qmin, qmax
    if name == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if name == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if name == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise ValueError(f"fused activation {name} has no integer range")
