"""The run stage: stream samples through the real firmware and check every output.

The firmware of a built project runs in its board's emulator (QEMU for the MPS2
boards, Renode for the STM32 boards, the native executable for the host board), or on a real board reached
through `port` (a serial device or pyserial URL, e.g. socket://127.0.0.1:PORT
from `tinyml-ptq emulate`). Each worker boots its emulator once and streams its
share of the samples over the device protocol: LOAD_INPUT, INVOKE, PROFILE.

Every output is compared byte for byte with the TFLite Micro reference
interpreter on the host (`exact`: fraction identical). Latency is in the
device's tick unit: guest instructions under QEMU (-icount shift=0; QEMU has no
cycle counter), instructions under Renode (its DWT counts virtual time, which
advances one count per instruction here), DWT cycles on hardware, nanoseconds on
the host build.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import json_files
from ..core.datasets import check_class_labels
from ..core.errors import UserError
from ..core.fileio import atomic_path, check_writable
from ..core.progress import log, track
from ..target.boards import Board, project_board
from ..target.project_file import REFERENCE_MODEL, model_digest, read_project
from .emulator import EMULATOR_SILENT_RETRIES
from .protocol import DeviceClient, DeviceError, DeviceFault, DeviceInfo

UNIT_NOTES = {
    "instructions": "guest instructions under QEMU -icount shift=0 (QEMU models no cycle counter; not cycles)",
    "renode": "instructions under Renode: its DWT (TIM2 on the Cortex-M0+) counts virtual time at the board clock and "
              "the CPU runs as many MIPS, so one count per instruction, in steps of one time quantum; Renode models no "
              "pipeline, not cycles",
    "cycles": "core clock cycles (DWT CYCCNT)",
    "ns": "nanoseconds of host CPU time per invoke (host build)",
}


@dataclass
class OpLatency:
    index: int
    op: str
    mean: float


@dataclass
class RunResult:
    board: str
    samples: int
    accuracy_device: float | None
    accuracy_reference: float | None
    exact: float
    latency_unit: str
    latency_mean: float
    latency_min: int
    latency_max: int
    per_op: list[OpLatency]
    flash_bytes: int | None
    ram_bytes: int | None
    arena_bytes: int
    mismatches: list[int] = field(default_factory=list)  # sample indices whose output differs
    workers: int = 1
    seconds: float = 0.0
    emulator: str | None = None  # "qemu", "renode" or None (a device on --port, or the host build)
    model_name: str = ""
    outputs: np.ndarray | None = field(default=None, repr=False)  # device outputs, int8
    latencies: list[int] = field(default_factory=list, repr=False)  # per sample, device ticks

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "board": self.board,
            "samples": self.samples,
            "accuracy": {"device": self.accuracy_device, "reference": self.accuracy_reference},
            "exact": self.exact,
            "latency": {
                "unit": self.latency_unit,
                "mean": self.latency_mean,
                "min": self.latency_min,
                "max": self.latency_max,
                "per_op": [{"index": o.index, "op": o.op, "mean": o.mean} for o in self.per_op],
            },
            "memory": {"flash_bytes": self.flash_bytes, "ram_bytes": self.ram_bytes,
                       "arena_bytes": self.arena_bytes},
        }

    def summary(self) -> str:
        def num(v: float) -> str:
            return f"{v:,.0f}"

        def acc(v: float | None) -> str:
            return "-" if v is None else f"{v:.4f}"

        same = self.samples - len(self.mismatches)
        lines = [
            f"board     {self.board} (model {self.model_name})",
            f"samples   {self.samples} in {self.seconds:.1f} s ({self.samples_per_second:.1f} samples/s, "
            f"{self.workers} worker{'s' if self.workers != 1 else ''})",
            f"exact     {self.exact:.4f} ({same}/{self.samples} outputs identical to the TFLM reference)",
        ]
        if self.mismatches:
            shown = ", ".join(map(str, self.mismatches[:10])) + (" ..." if len(self.mismatches) > 10 else "")
            lines.append(f"          differing samples: {shown}")
        if self.accuracy_device is not None:
            lines.append(f"accuracy  device {acc(self.accuracy_device)}, reference {acc(self.accuracy_reference)}")
        lines.append(f"latency   mean {num(self.latency_mean)}, min {num(self.latency_min)}, "
                     f"max {num(self.latency_max)} {self.latency_unit}")
        note = UNIT_NOTES["renode"] if self.emulator == "renode" else UNIT_NOTES.get(self.latency_unit, self.latency_unit)
        lines.append(f"          ({note})")
        total = sum(o.mean for o in self.per_op)
        if self.per_op and total == 0:
            lines.append("  per-operator profile: none reported (a TFLM BUILD_TYPE=release build compiles "
                         "TFLM's profiler hooks out; release_with_logs keeps them)")
        for o in self.per_op if total else []:
            lines.append(f"  op {o.index:3d} {o.op:<24s} {num(o.mean):>14s}  {100 * o.mean / total:5.1f}%")
        mem = "-" if self.flash_bytes is None else f"flash {self.flash_bytes:,} B, RAM {self.ram_bytes:,} B"
        lines.append(f"memory    {mem}, arena {self.arena_bytes:,} B")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- inputs


def load_data(path: str | os.PathLike, input_shapes: list[tuple[int, ...]]) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Samples for each input ([N, *shape]: float32, or already quantized) and labels, if any, in file order.

    Any format of the quantize stage's loader (datasets.py): .npz (x, optional y; x0, x1, ...
    for several inputs), .npy, .csv, an image folder, file.py:function.
    """
    from ..core.datasets import load_inputs

    data = load_inputs(str(path), input_shapes, samples=None, what="--data", accept_int8=True)
    return data.xs, data.y


def _io(meta: dict, role: str) -> list[dict]:
    if role not in meta:  # written before projects listed every input and output
        raise UserError("the project was generated by an earlier tinyml-ptq (project.json has no "
                        f"'{role}'); regenerate it with tinyml-ptq generate")
    return meta[role]


def _input_shapes(meta: dict) -> list[tuple[int, ...]]:
    from ..interpreters.reference import sample_shape

    return [sample_shape(t["shape"]) for t in _io(meta, "inputs")]


def tensor_infos(specs) -> list:
    """The device's view of its inputs or outputs (INFO), as the reference's TensorInfo."""
    from ..interpreters.reference import TensorInfo

    return [TensorInfo(tuple(t.shape), np.dtype(t.dtype), t.scale, t.zero_point) for t in specs]


def prepare_inputs(xs: list[np.ndarray], info: DeviceInfo) -> np.ndarray:
    """Samples of every input as rows of raw bytes (int8), inputs end to end: quantized samples
    taken as they are, float ones quantized with the scale and zero point the device reports."""
    from ..interpreters.reference import sample_rows

    return sample_rows(xs, tensor_infos(info.inputs))


def predictions(outputs: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    flat = outputs.reshape(len(outputs), -1)
    if flat.shape[1] > 1:
        return flat.argmax(axis=1)  # monotonic in the dequantized value
    return ((flat[:, 0].astype(np.float64) - zero_point) * scale >= 0.5).astype(np.int64)


# ----------------------------------------------------------------------------- project


def _memory(project: Path, board: Board, elf: Path) -> tuple[int | None, int | None]:
    if not elf.is_file():
        return None, None
    try:
        from ..target.build import measure

        result = measure(elf, board, project)
        return result.flash_bytes, result.ram_bytes
    except Exception:  # memory is a report, not a reason to fail the run
        return None, None


def _reference_model(project: Path, meta: dict, model: str | os.PathLike | None) -> bytes:
    candidates = [Path(model)] if model is not None else [project / REFERENCE_MODEL, Path(meta.get("model", ""))]
    for path in candidates:
        if str(path) and path.is_file():
            return path.read_bytes()
    raise UserError(f"the model this project was generated from ({meta.get('model', '?')}) is not there any "
                    "more; pass it with --model MODEL.tflite (it is the reference every output is checked against)")


# ----------------------------------------------------------------------------- run


@dataclass
class _Sample:
    output: bytes
    ticks: int
    op_ticks: list[int]


class _Session:
    """One device: an emulator it started (or a port it opened) and a protocol client."""

    def __init__(self, project: Path, board: Board, port: str | None, baud: int, client_options: dict):
        from .emulator import emulator_for
        from .transport import open_port

        self.emulator = None
        self.transport = None
        try:
            if port is not None:
                self.transport = open_port(port, baud)
            else:
                self.emulator = emulator_for(board, project / "build" / "firmware.elf").start()
                self.transport = self.emulator.transport()
            self.client = DeviceClient(self.transport, **client_options)
            if port is not None:
                self.client.resync()  # a port may have been in use before: clear any half frame
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self.emulator is not None:
            self.emulator.close()


def run(project_dir: str | os.PathLike, data: str | os.PathLike, limit: int | None = None, workers: int = 1,
        port: str | None = None, json_out: str | os.PathLike | None = None,
        save_outputs: str | os.PathLike | None = None, *, model: str | os.PathLike | None = None,
        baud: int = 115200, timeout: float = 2.0, invoke_timeout: float = 120.0, retries: int = 10) -> RunResult:
    """Run `data` through the firmware of a built project and compare with the TFLM reference.

    workers: emulator instances the samples are split over (results identical to one).
    port: talk to a device on this serial port / URL instead of starting an emulator.
    model: the .tflite to check against (default: the one the project was generated from).
    """
    project = Path(project_dir)
    check_writable(json_out, "--json")
    check_writable(save_outputs, "--save-outputs")
    meta = read_project(project)
    board = project_board(meta)
    elf = project / "build" / "firmware.elf"
    if port is None and not elf.is_file():
        raise UserError(f"{elf} not found; build the project first: tinyml-ptq build {project}")
    if workers < 1:
        raise UserError("--workers must be at least 1")
    if port is not None and workers != 1:
        raise UserError("--port talks to one device; use --workers 1 with it")
    xs, y = load_data(data, _input_shapes(meta))
    if limit is not None:
        if limit < 1:
            raise UserError("--limit must be at least 1")
        xs, y = [x[:limit] for x in xs], (None if y is None else y[:limit])
    if len(xs[0]) == 0:
        raise UserError(f"{data} holds no samples")
    # Labels are classes of output 0; one value is read as a binary classifier (predictions() thresholds it).
    labelled = check_class_labels(y, max(int(np.prod(_io(meta, "outputs")[0]["shape"])), 2), f"--data {data}")
    model_bytes = _reference_model(project, meta, model)
    workers = min(workers, len(xs[0]))
    options = dict(timeout=timeout, invoke_timeout=invoke_timeout, retries=retries)
    if port is None:
        options["silent_retries"] = EMULATOR_SILENT_RETRIES

    started = time.monotonic()
    sessions: list[_Session] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        first = _Session(project, board, port, baud, options)
        sessions.append(first)
        info = first.client.info()
        names = first.client.op_names()
        inputs = prepare_inputs(xs, info)
        reference = _reference_outputs(model_bytes, inputs, info)

        results: list[_Sample | None] = [None] * len(inputs)
        shards = np.array_split(np.arange(len(inputs)), workers)
        done: queue.Queue = queue.Queue()
        errors: list[BaseException] = []

        def work(shard: np.ndarray, session: _Session | None) -> None:
            try:
                if session is None:
                    session = _Session(project, board, port, baud, options)
                    with lock:
                        sessions.append(session)
                    if stop.is_set():
                        return
                    other = session.client.info()
                    if other != info:
                        raise DeviceError("two emulator instances of one firmware disagree about INFO")
                for i in shard:
                    if stop.is_set():
                        return
                    try:
                        res = session.client.invoke(inputs[i].tobytes())
                        op_ticks = session.client.profile()
                    except DeviceFault as fault:
                        raise fault.at_sample(int(i)) from None
                    except DeviceError as exc:
                        if stop.is_set():
                            return
                        raise DeviceError(f"sample {int(i)}: {exc}") from None
                    results[i] = _Sample(res.output, res.ticks, op_ticks)
                    done.put(1)
            except BaseException as exc:  # reported by the main thread
                with lock:
                    errors.append(exc)
                stop.set()
                done.put(None)

        threads = [threading.Thread(target=work, args=(shard, first if k == 0 else None), daemon=True,
                                    name=f"run-worker-{k}") for k, shard in enumerate(shards)]
        for t in threads:
            t.start()

        def progress():
            finished = 0
            while finished < len(inputs):
                item = done.get()
                if item is None:
                    return
                finished += 1
                yield finished

        for _ in track(progress(), "run", total=len(inputs)):
            pass
        stop.set()
        if errors:
            for s in sessions:  # unblock the other workers at once
                s.close()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
    finally:
        stop.set()
        with lock:
            for s in sessions:
                s.close()
    seconds = time.monotonic() - started
    # Under Renode the device's DWT "cycles" are instructions; the device cannot tell, the host can.
    emulated = first.emulator if first.emulator is not None and first.emulator.tick_unit else None

    outputs = np.stack([np.frombuffer(r.output, dtype=np.int8) for r in results])
    same = np.all(outputs == reference.reshape(len(reference), -1), axis=1)
    ticks = np.array([r.ticks for r in results], dtype=np.int64)
    op_ticks = np.array([r.op_ticks for r in results], dtype=np.float64).reshape(len(results), -1)
    acc_dev = acc_ref = None
    if labelled:
        from ..interpreters.reference import output_values

        out_infos = tensor_infos(info.outputs)
        scale, zp = info.outputs[0].scale, info.outputs[0].zero_point
        acc_dev = float(np.mean(predictions(output_values(outputs, out_infos), scale, zp) == y))
        acc_ref = float(np.mean(predictions(output_values(reference, out_infos), scale, zp) == y))
    flash, ram = _memory(project, board, elf)
    result = RunResult(
        board=info.board_name, samples=len(outputs), accuracy_device=acc_dev, accuracy_reference=acc_ref,
        exact=float(np.mean(same)), latency_unit=emulated.tick_unit if emulated else info.tick_unit_name,
        latency_mean=float(ticks.mean()), emulator=emulated.kind if emulated else None,
        latency_min=int(ticks.min()), latency_max=int(ticks.max()),
        per_op=[OpLatency(k, names[k] if k < len(names) else "?", float(op_ticks[:, k].mean()))
                for k in range(op_ticks.shape[1])],
        flash_bytes=flash, ram_bytes=ram, arena_bytes=info.arena_bytes,
        mismatches=[int(i) for i in np.flatnonzero(~same)], workers=workers, seconds=seconds,
        model_name=info.model_name, outputs=outputs, latencies=[int(t) for t in ticks],
    )
    if json_out is not None:
        json_files.write(json_out, "run", result.to_dict())
    if save_outputs is not None:
        _save_outputs(save_outputs, outputs, info)
    return result


def _save_outputs(path: str | os.PathLike, outputs: np.ndarray, info: DeviceInfo) -> None:
    """One output as .npy [N, *shape]; several as .npz with y0, y1, ... (each in its own type)."""
    from ..interpreters.reference import output_values, sample_shape

    infos = tensor_infos(info.outputs)
    arrays = {f"y{k}": output_values(outputs, infos, k).reshape(len(outputs), *sample_shape(t.shape))
              for k, t in enumerate(info.outputs)}
    with atomic_path(path, suffix=".npy" if len(arrays) == 1 else ".npz") as tmp:
        with open(tmp, "wb") as f:
            if len(arrays) == 1:
                np.save(f, arrays["y0"])
            else:
                np.savez(f, **arrays)


def _reference_outputs(model_bytes: bytes, inputs: np.ndarray, info: DeviceInfo) -> np.ndarray:
    from ..interpreters.isolation import InterpreterFailure
    from ..interpreters.reference import ReferenceInterpreter

    digest = model_digest(model_bytes)
    if digest != info.model_digest:
        raise UserError(f"the firmware ({info.model_name}) serves the model with digest 0x{info.model_digest:08x}, "
                        f"not the reference model (0x{digest:08x}); pass the model it was generated from with "
                        "--model, or regenerate and rebuild the project")
    try:
        interp = ReferenceInterpreter(model_bytes)
    except Exception as exc:
        raise UserError(f"the TFLM reference cannot load the model: {exc}") from None
    log(f"reference: TFLM interpreter on {len(inputs)} samples")
    try:
        return np.stack([interp.invoke_bytes(row) for row in inputs])
    except InterpreterFailure as exc:  # TFLM ran in a child process: its crash is this line, not ours
        raise UserError(f"run: no reference outputs to check the device against: {exc}") from None
