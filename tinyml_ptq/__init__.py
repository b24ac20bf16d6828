"""tinyml-ptq: trained Keras model to verified int8 firmware for Arm Cortex-M.

The pipeline is a chain of stages, each a function returning a plain result
object that the next stage takes.
"""

__version__ = "0.1.0"

# Stage functions are imported on first use, so `import tinyml_ptq` stays fast
# and does not pull in TensorFlow.
_LAZY = {
    "quantize": ("tinyml_ptq.quantize", "quantize"),
    "generate": ("tinyml_ptq.project", "generate"),
    "build": ("tinyml_ptq.build", "build"),
    "run": ("tinyml_ptq.run", "run"),
    "flash": ("tinyml_ptq.flash", "flash"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'tinyml_ptq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
