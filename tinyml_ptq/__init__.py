"""tinyml-ptq: trained Keras model to verified int8 firmware for Arm Cortex-M.

The pipeline is a chain of stages, each a function returning a plain result
object that the next stage takes.
"""

__version__ = "0.1.0"
