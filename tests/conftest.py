"""Session-wide fixtures shared by several test files (add new ones additively)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

# The MLPerf Tiny models, float and int8, ship with the repository (examples/models/, with their
# license and provenance): a fresh clone tests everything.
SHARED_MODELS = Path(__file__).resolve().parents[1] / "examples" / "models" / "mlperf_tiny"
AD01_MODEL = SHARED_MODELS / "ad01_int8.tflite"
# A TensorFlow Lite Micro source tree: $TFLM_DIR, else the one in shared/ beside the checkout.
TFLM_TREE = Path(os.environ.get("TFLM_DIR") or Path(__file__).resolve().parents[2] / "shared" / "tflm")
HOW_TO_GET_TFLM = ("no TensorFlow Lite Micro tree: git clone https://github.com/tensorflow/tflite-micro, fetch its "
                   "downloads (make -f tensorflow/lite/micro/tools/make/Makefile third_party_downloads) and set TFLM_DIR")
# Renode: $RENODE or renode on PATH, else the build in shared/ beside the checkout.
SHARED_RENODE = Path(__file__).resolve().parents[2] / "shared" / "tools" / "renode" / "renode"


def pytest_configure(config):
    """Under pytest-xdist each worker gets its own TMPDIR, so the tests that look for a stray
    emulator find the ones their own worker started (their scripts live in the toolkit's temp
    folders), not those of the worker beside it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        own = Path(tempfile.mkdtemp(prefix=f"tinyml-ptq-tests-{worker}-"))
        os.environ["TMPDIR"] = str(own)
        tempfile.tempdir = None  # recomputed from TMPDIR on next use
        config.worker_tmpdir = own


def pytest_unconfigure(config):
    own = getattr(config, "worker_tmpdir", None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)

@pytest.fixture(scope="session")
def tflm_dir() -> Path:
    """The TFLM tree the TFLM-route tests build against; they skip (one line, how to get one) without it."""
    if not (TFLM_TREE / "tensorflow" / "lite" / "micro" / "tools" / "make" / "Makefile").is_file():
        pytest.skip(HOW_TO_GET_TFLM)
    if shutil.which("arm-none-eabi-g++") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-g++ and qemu-system-arm are needed (make apt installs them)")
    return TFLM_TREE.resolve()


@pytest.fixture(scope="session")
def renode() -> Path:
    """The Renode launcher the Renode-board tests use, exported as $RENODE for CLI subprocesses;
    they skip (one line, how to get it) without one."""
    from tinyml_ptq.device.emulator import RENODE_HOW_TO_GET, find_renode

    if not os.environ.get("RENODE") and shutil.which("renode") is None:
        if not SHARED_RENODE.is_file():
            pytest.skip(f"no Renode: {RENODE_HOW_TO_GET}")
        os.environ["RENODE"] = str(SHARED_RENODE)
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is needed (make apt installs it)")
    return find_renode()


def default_sigint() -> None:
    """preexec_fn for a CLI subprocess a test interrupts with SIGINT: a session started where
    SIGINT is ignored (a background job) would pass that on, and Python then never raises
    KeyboardInterrupt in the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# --- run / HIL: built firmware projects ----------------------------------------------------------


class RunProjects:
    """(model, board, fault) -> a generated and built project folder, made on first use."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[tuple[str, str, bool], Path] = {}
        self._models: dict[str, Path] = {}

    def model(self, name: str) -> Path:
        if name not in self._models:
            if name == "ad01":
                self._models[name] = AD01_MODEL
            elif name == "dense":
                self._models[name] = _dense_classifier(self.root / "dense_classifier.tflite")
            else:
                raise KeyError(name)
        return self._models[name]

    def get(self, model: str, board: str, fault: bool = False) -> Path:
        """A project whose build/firmware.elf is ready (FAULT_TEST=1 image when `fault`)."""
        key = (model, board, fault)
        if key not in self.cache:
            from tinyml_ptq.compiler.project import generate
            from tinyml_ptq.target.build import build

            if board != "host" and shutil.which("arm-none-eabi-gcc") is None:
                pytest.skip("arm-none-eabi-gcc not installed")
            project = self.root / f"{model}-{board}{'-fault' if fault else ''}"
            generate(self.model(model), project, board=board)
            build(project, make_args=["FAULT_TEST=1"] if fault else None)
            self.cache[key] = project
        return self.cache[key]


def _dense_classifier(path: Path) -> Path:
    """A small int8 Dense classifier (12 inputs, 10 classes), converted by the real TFLite converter."""
    import tensorflow as tf

    from harness import convert_int8

    tf.keras.utils.set_random_seed(3)
    hidden = tf.keras.layers.Dense(24, activation="relu")
    out = tf.keras.layers.Dense(10)
    hidden.build((1, 12))
    out.build((1, 24))
    path.write_bytes(convert_int8(lambda x: out(hidden(x)), [(12,)]))
    return path


@pytest.fixture(scope="session")
def run_projects(tmp_path_factory) -> RunProjects:
    return RunProjects(tmp_path_factory.mktemp("run-projects"))


def our_qemus(root) -> list[str]:
    """QEMU processes running a firmware from below `root` (this test session's folders)."""
    out = subprocess.run(["pgrep", "-af", "qemu-system-arm"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(root) in line]


@pytest.fixture
def no_qemu_left(run_projects):
    assert our_qemus(run_projects.root) == []
    yield
    assert our_qemus(run_projects.root) == [], "a QEMU process survived the test"


@pytest.fixture(scope="session")
def ad01_data(tmp_path_factory) -> Path:
    """Float samples for AD01 (640 values each), spread over its input range."""
    path = tmp_path_factory.mktemp("run-data") / "ad01.npz"
    rng = np.random.default_rng(7)
    np.savez(path, x=rng.normal(-10.0, 8.0, size=(24, 640)).astype(np.float32))
    return path


@pytest.fixture(scope="session")
def dense_data(tmp_path_factory) -> Path:
    """Float samples with labels for the Dense classifier."""
    path = tmp_path_factory.mktemp("run-data") / "dense.npz"
    rng = np.random.default_rng(8)
    np.savez(path, x=rng.uniform(-1, 1, size=(40, 12)).astype(np.float32), y=rng.integers(0, 10, size=40))
    return path


# --- quantize: the digits example and the MLPerf Tiny float models --------------------------------

REPO = Path(__file__).resolve().parents[1]
DIGITS_DIR = REPO / "examples" / "digits"


@pytest.fixture(scope="session")
def shared_models() -> Path:
    """The MLPerf Tiny models in examples/models/mlperf_tiny (part of the repository: missing is a failure)."""
    assert SHARED_MODELS.is_dir(), f"{SHARED_MODELS} is missing from the checkout"
    return SHARED_MODELS


@pytest.fixture(scope="session")
def digits_quantized(tmp_path_factory):
    """QuantizeResult of the digits example, int8, with eval set and JSON report (built once)."""
    from tinyml_ptq.quantization.quantize import quantize

    out = tmp_path_factory.mktemp("digits-int8")
    return quantize(DIGITS_DIR / "digits_cnn.keras", str(DIGITS_DIR / "calib.npz"), out / "digits_int8.tflite",
                    eval_data=str(DIGITS_DIR / "eval.npz"), report_path=out / "quantize_report.json")


@pytest.fixture(scope="session")
def digits_int8_tflite(digits_quantized) -> Path:
    """Path of the digits example quantized to full int8 by the real API."""
    return digits_quantized.output


@pytest.fixture(scope="session")
def depthwise_digits(tmp_path_factory) -> dict[str, Path]:
    """Issue #8's depthwise digits CNN (tests/calib_models.py), clean and batch-norm spread, with calib and eval data."""
    from calib_models import calib_npz, depthwise_models, eval_npz

    folder = tmp_path_factory.mktemp("dw-models")
    clean, spread = depthwise_models(folder)
    return {"clean": clean, "spread": spread, "calib": calib_npz(folder / "calib.npz"),
            "eval": eval_npz(folder / "eval.npz")}


# --- deploy: the digits example through the whole pipeline ---------------------------------------


@pytest.fixture(scope="session")
def digits_deployed(tmp_path_factory):
    """DeployResult of `deploy` on the digits example for mps2-an386 (real quantize, build and QEMU run)."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm are needed (make apt installs them)")
    from tinyml_ptq.pipeline.deploy import deploy

    out = tmp_path_factory.mktemp("deploy") / "digits"
    return deploy(DIGITS_DIR / "digits_cnn.keras", str(DIGITS_DIR / "calib.npz"), str(DIGITS_DIR / "eval.npz"), out,
                  board="mps2-an386")
