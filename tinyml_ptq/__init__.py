"""tinyml-ptq: trained Keras model to verified int8 firmware for Arm Cortex-M.

The pipeline is a chain of stages, each a function returning a plain result
object that the next stage takes:

    quantize -> generate -> build -> run      (verify: generated C vs TFLite Micro on the host)

The stage modules import TensorFlow and other heavy packages only inside the
functions that need them, so `import tinyml_ptq` stays fast.
"""

# Imported eagerly on purpose: each stage module shares its function's name, and a
# lazily imported submodule would shadow the function on the package.
from .bench import bench  # noqa: E402
from .build import build  # noqa: E402
from .check import check  # noqa: E402
from .deploy import deploy  # noqa: E402
from .flash import flash  # noqa: E402
from .project import generate  # noqa: E402
from .quantize import quantize  # noqa: E402
from .run import run  # noqa: E402
from .verify import verify  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = ["quantize", "generate", "build", "run", "deploy", "check", "verify", "flash", "bench", "__version__"]
