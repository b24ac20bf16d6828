"""Build generated model sources for the host with the system C compiler and run samples.

This is the fast bit-exactness path (`tinyml-ptq verify` and the kernel tests):
the same C that runs on the device, compiled natively, fed raw int8 samples on
stdin, answering raw outputs on stdout.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..compiler.codegen import ModelSources, runtime_files
from ..core.errors import UserError
from ..core.resources import FIRMWARE_DIR

HOST_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wdouble-promotion"]


@dataclass
class HostBinary:
    path: Path
    input_size: int
    output_size: int


def write_sources(sources: ModelSources, directory: Path) -> list[Path]:
    """Generated model files plus the runtime files they need, flat in one folder."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sources.files.items():
        (directory / name).write_text(text)
        written.append(directory / name)
    for src in runtime_files(sources):
        shutil.copy2(src, directory / src.name)
        written.append(directory / src.name)
    return written


def build_host_runner(sources: ModelSources, directory: Path, input_size: int, output_size: int) -> HostBinary:
    if shutil.which("gcc") is None:
        raise UserError("gcc not found; install it (apt-get install gcc) to build for the host")
    files = write_sources(sources, directory)
    shutil.copy2(FIRMWARE_DIR / "host" / "batch_runner.c", directory / "batch_runner.c")
    c_files = [f for f in files if f.suffix == ".c" and f.name != "model_data.c"] + [directory / "batch_runner.c"]
    exe = directory / "batch_runner"
    cmd = ["gcc", *HOST_CFLAGS, "-I", str(directory), *map(str, c_files), "-o", str(exe)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"host build failed:\n{' '.join(cmd)}\n{result.stderr}")
    return HostBinary(exe, input_size, output_size)


def run_host(binary: HostBinary, samples: np.ndarray, timeout: float = 600.0) -> np.ndarray:
    """Feed int8 samples through the runner in one process; returns int8 outputs [N, output_size]."""
    data = np.ascontiguousarray(samples, dtype=np.int8).reshape(len(samples), -1)
    if data.shape[1] != binary.input_size:
        raise ValueError(f"sample size {data.shape[1]} != model input size {binary.input_size}")
    result = subprocess.run([str(binary.path)], input=data.tobytes(), capture_output=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"host runner failed with status {result.returncode}: {result.stderr.decode()[-500:]}")
    out = np.frombuffer(result.stdout, dtype=np.int8)
    if out.size != len(samples) * binary.output_size:
        raise RuntimeError(f"host runner returned {out.size} bytes, expected {len(samples) * binary.output_size}")
    return out.reshape(len(samples), binary.output_size)


def temporary_build_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="tinyml-ptq-host-")
