"""tinyml-ptq: trained Keras model to verified int8 firmware for Arm Cortex-M.

The pipeline is a chain of stages, each a function returning a plain result
object that the next stage takes:

    quantize -> generate -> build -> run      (verify: generated C vs TFLite Micro on the host)

The stage modules import TensorFlow and other heavy packages only inside the
functions that need them, so `import tinyml_ptq` stays fast.
"""

from .compiler.project import generate
from .core.version import __version__
from .device.run import run
from .pipeline.bench import bench
from .pipeline.check import check
from .pipeline.deploy import deploy
from .pipeline.verify import verify
from .quantization.quantize import quantize
from .target.build import build
from .target.flash import flash

__all__ = ["quantize", "generate", "build", "run", "deploy", "check", "verify", "flash", "bench", "__version__"]
