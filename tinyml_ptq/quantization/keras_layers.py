"""Keras 3 layers the loader puts in place of ones TFLite cannot quantize as they are.

Imported only with Keras (it is slow to import). Registered for serialization, so a
rewritten model saved for the converter's child process (equalization) loads again.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tinyml_ptq")
class LayerNormFromOps(keras.layers.Layer):
    """LayerNormalization over the last axis as (x - mean) * (gamma * rsqrt(var + eps)) + beta.

    Keras 3 computes x * inv - mean * inv + beta, and the converter leaves -mean as a float NEG
    (TFLite Micro's NEG is float only), so the model cannot be full int8. This form gives
    MEAN, SUB, MUL, RSQRT and ADD, all int8. The weights are the layer's own, in its order.
    """

    def __init__(self, epsilon: float = 1e-3, center: bool = True, scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon, self.center, self.scale = epsilon, center, scale

    def build(self, input_shape):
        shape = (input_shape[-1],)
        self.gamma = self.add_weight(shape=shape, initializer="ones", name="gamma") if self.scale else None
        self.beta = self.add_weight(shape=shape, initializer="zeros", name="beta") if self.center else None

    def call(self, x):
        centered = x - ops.mean(x, axis=-1, keepdims=True)
        inv = ops.rsqrt(ops.mean(centered * centered, axis=-1, keepdims=True) + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma
        out = centered * inv
        return out + self.beta if self.beta is not None else out

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale}
