"""The benchmark: the MLPerf Tiny int8 models and the digits example on emulated Cortex-M
boards, TensorFlow Lite Micro and tinyml-ptq side by side, in one run.

For each model and board it builds and runs, on the same samples: TFLM with its reference
kernels, TFLM + CMSIS-NN (the TFLM pair only where a TFLM source tree is given: --tflm-dir
or $TFLM_DIR), our reference kernels and our optimized set for the core: dsp on cores with
the DSP extension, dsp and helium on cores with MVE, scalar on cores with neither (Cortex-M0+,
M3). Every number comes from the stages themselves: `generate` (arena,
live-tensor bound), `build` (flash split from the ELF and link map, RAM), `run` (instructions
per inference under QEMU -icount shift=0 or Renode, per-op profile, exactness against the TFLM
reference interpreter, the arena TFLM reports in INFO).
The ratios to TFLM are computed from those measurements; no figure is typed in. MACs are
counted from the graph. The digits example also gives each stage's wall time and `run`
throughput with 1 and 2 workers.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..compiler.codegen import generate_model_sources
from ..compiler.ir import Graph
from ..compiler.project import generate
from ..compiler.tflite_reader import parse_tflite
from ..compiler.tflm_export import TFLM_BUILD_TYPE
from ..core.errors import UserError
from ..core.fileio import check_writable, write_text_atomic
from ..core.progress import log
from ..core.resources import ROOT
from ..device.run import run
from ..quantization.quantize import quantize
from ..target.boards import get_board
from ..target.build import build, find_tflm_dir

DEFAULT_BOARDS = ("mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547")
# (runtime, kernel set) run on every board, in order; our reference kernels are the speed-up
# baseline, TFLM + CMSIS-NN the one the ratios are taken to. Our optimized sets for the core follow.
CONFIGURATIONS = (("tflm", "reference"), ("tflm", "cmsis_nn"), ("native", "reference"))
MLPERF_MODELS = ("kws_ref_model_int8", "vww_96_int8", "resnet8_cifar10_int8", "ad01_int8")
MLPERF_DIR = ROOT / "examples" / "models" / "mlperf_tiny"
DIGITS_DIR = ROOT / "examples" / "digits"


def board_configurations(board: str, tflm: bool = True) -> list[tuple[str, str]]:
    """The (runtime, kernel set) pairs benchmarked on `board`: the TFLM pair only with a TFLM tree, then
    our set for the core (`--kernels auto`'s); MVE cores also run dsp, so both optimized sets are shown."""
    core = get_board(board)
    optimized = ("dsp", "helium") if core.mve else (core.kernels,)
    configurations = [*CONFIGURATIONS, *(("native", kernels) for kernels in optimized)]
    return [c for c in configurations if tflm or c[0] != "tflm"]


def check_boards(boards: tuple[str, ...]) -> None:
    """Every board must exist and be emulated (the benchmark runs each model under QEMU or Renode)."""
    for name in boards:
        board = get_board(name)
        if board.emulator is None:
            raise UserError(f"bench: board {name} is not emulated, so it cannot be benchmarked; "
                            f"choose emulated boards, e.g. {', '.join(DEFAULT_BOARDS)}")


def count_macs(graph: Graph) -> int:
    """Multiply-accumulates of the convolutions and fully-connected layers."""
    macs = 0
    for op in graph.operators:
        if op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        filt = graph.tensors[op.inputs[1]]
        out = graph.tensors[op.outputs[0]]
        outputs = int(np.prod(out.shape))
        if op.opcode == "CONV_2D":
            macs += outputs * filt.shape[1] * filt.shape[2] * filt.shape[3]
        elif op.opcode == "DEPTHWISE_CONV_2D":
            macs += outputs * filt.shape[1] * filt.shape[2]
        else:
            macs += outputs * filt.shape[-1]
    return macs


@dataclass
class ModelBench:
    model: str
    board: str
    runtime: str  # "tflm" or "native"
    kernels: str  # "reference" / "cmsis_nn" (tflm), "reference" / "dsp" / "helium" / "scalar" (native)
    samples: int
    exact: float
    instructions: float  # mean per inference
    macs: int
    macs_per_instruction: float
    arena_bytes: int  # native: the planned arena; tflm: what TFLM reports using (INFO)
    arena_reserved_bytes: int  # the arena array linked into the firmware
    live_bound_bytes: int
    flash_bytes: int
    ram_bytes: int
    weights_bytes: int | None
    runtime_code_bytes: int | None
    runtime_code: dict[str, int] | None
    other_flash_bytes: int | None
    speedup_vs_reference: float | None = None  # our reference kernels' instructions / these
    vs_tflm_reference: float | None = None  # these instructions / TFLM reference kernels', same run
    vs_tflm_cmsis_nn: float | None = None  # these instructions / TFLM + CMSIS-NN's, same run
    per_op: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return {"tflm": "TFLM", "native": "ours"}[self.runtime] + f" {self.kernels}"


@dataclass
class BenchResult:
    models: list[ModelBench]
    stages_seconds: dict[str, float] | None  # digits example: quantize, generate, build, run
    throughput: dict[str, float] | None  # digits example, run samples/s: {"1": .., "2": ..}
    configurations: list[str]  # "runtime/kernels" of every entry, in run order (the optimized sets vary by core)
    tflm: dict | None  # the TFLM tree and build type compared against, or None without one
    json_path: str | None = None
    markdown_path: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("json_path")
        data.pop("markdown_path")
        return data


def bench_model(model: Path, board: str, runtime: str, kernels: str, work: Path, samples: int,
                tflm_dir: Path | None = None) -> ModelBench:
    """generate, build and run one model on one board with one runtime and kernel set."""
    name = model.stem
    project = work / f"{name}-{board}-{runtime}-{kernels}"
    generated = generate(model, project, board=board, runtime=runtime, kernels=kernels)
    built = build(project, tflm_dir=tflm_dir)
    graph = parse_tflite(model.read_bytes())
    data = work / f"{name}-inputs.npy"
    if not data.exists():  # every configuration runs the same samples
        shape = graph.tensors[graph.inputs[0]].shape
        rng = np.random.default_rng(0)
        np.save(data, rng.integers(-128, 128, size=(samples, *shape[1:]), dtype=np.int8))
    result = run(project, data)
    macs = count_macs(graph)
    split = built.flash_split or {}
    # The bound of separate buffers with the reference kernels' scratch: what in-place steps beat.
    bound = generate_model_sources(graph, model.read_bytes()).live_lower_bound
    return ModelBench(
        model=name, board=board, runtime=runtime, kernels=generated.kernels, samples=result.samples,
        exact=result.exact, instructions=result.latency_mean, macs=macs,
        macs_per_instruction=macs / result.latency_mean if result.latency_mean else 0.0,
        arena_bytes=result.arena_bytes if runtime == "tflm" else generated.arena_bytes,
        arena_reserved_bytes=built.arena_bytes, live_bound_bytes=bound,
        flash_bytes=built.flash_bytes, ram_bytes=built.ram_bytes, weights_bytes=split.get("weights"),
        runtime_code_bytes=split.get("runtime_code"), runtime_code=built.runtime_code,
        other_flash_bytes=split.get("other"),
        per_op=[{"index": p.index, "op": p.op, "instructions": p.mean} for p in result.per_op],
    )


def _set_ratios(entries: list[ModelBench]) -> None:
    """Ratios between the configurations of one model on one board (never across boards), from this run's figures."""
    by_config = {(e.runtime, e.kernels): e.instructions for e in entries}
    ours_reference = by_config.get(("native", "reference"))
    tflm_reference = by_config.get(("tflm", "reference"))
    tflm_cmsis = by_config.get(("tflm", "cmsis_nn"))
    for e in entries:
        if e.runtime == "native":
            e.speedup_vs_reference = round(ours_reference / e.instructions, 3) if ours_reference else None
        e.vs_tflm_reference = e.instructions / tflm_reference if tflm_reference else None
        e.vs_tflm_cmsis_nn = e.instructions / tflm_cmsis if tflm_cmsis else None


def bench_stages(work: Path) -> tuple[dict[str, float], dict[str, float], Path]:
    """Wall time of each stage on the digits example, and run throughput with 1 and 2 workers."""
    tflite = work / "digits_int8.tflite"
    project = work / "digits-stages"
    eval_data = DIGITS_DIR / "eval.npz"
    seconds: dict[str, float] = {}

    def timed(stage: str, fn, *args, **kwargs):
        start = time.perf_counter()
        value = fn(*args, **kwargs)
        seconds[stage] = round(time.perf_counter() - start, 2)
        return value

    timed("quantize", quantize, DIGITS_DIR / "digits_cnn.keras", DIGITS_DIR / "calib.npz", tflite,
          eval_data=eval_data)
    timed("generate", generate, tflite, project, board="mps2-an386")
    timed("build", build, project)
    one = timed("run", run, project, eval_data)
    two = run(project, eval_data, workers=2)
    throughput = {"1": round(one.samples / one.seconds, 1), "2": round(two.samples / two.seconds, 1)}
    return seconds, throughput, tflite


def bench(out_dir: str | os.PathLike = "bench", models: list[str | os.PathLike] | None = None,
          boards: tuple[str, ...] = DEFAULT_BOARDS, samples: int = 3, stages: bool = True,
          tflm_dir: str | os.PathLike | None = None) -> BenchResult:
    """Run the benchmark; write OUT/results.json and OUT/results.md.

    models: int8 .tflite files (default: the four MLCommons models beside the checkout,
    plus the digits example quantized by the stage timing run). stages: time the
    digits example's stages (needed for the default digits model). tflm_dir: the TFLM
    tree to compare against (default $TFLM_DIR); without one only our figures are given.
    """
    out = Path(out_dir)
    check_writable(out, "output folder", folder=True)
    check_boards(boards)
    tflm_tree = _tflm_tree(tflm_dir)
    configurations = {board: board_configurations(board, tflm_tree is not None) for board in boards}
    with tempfile.TemporaryDirectory(prefix="tp-bench-") as tmp:
        work = Path(tmp)
        stage_seconds = throughput = None
        paths = [Path(m) for m in models] if models is not None else None
        if stages:
            log("bench: digits example stage times and run throughput")
            stage_seconds, throughput, digits = bench_stages(work)
            if paths is None:
                paths = [*(MLPERF_DIR / f"{n}.tflite" for n in MLPERF_MODELS), digits]
        if paths is None:
            paths = [MLPERF_DIR / f"{n}.tflite" for n in MLPERF_MODELS]
        for path in paths:
            if not path.is_file():
                raise UserError(f"bench: model {path} not found (the MLPerf Tiny models are expected in "
                                f"{MLPERF_DIR}); pass the .tflite files to benchmark")
        results = []
        for path in paths:
            for board in boards:
                entries = []
                for runtime, kernels in configurations[board]:
                    log(f"bench: {path.stem} on {board}, {'TFLM' if runtime == 'tflm' else 'ours'} {kernels}")
                    entries.append(bench_model(path, board, runtime, kernels, work, samples, tflm_tree))
                _set_ratios(entries)
                results.extend(entries)
    tflm_info = None if tflm_tree is None else {"dir": str(tflm_tree), "commit": _tflm_commit(tflm_tree),
                                                "build_type": TFLM_BUILD_TYPE}
    ran = [f"{r}/{k}" for board in boards for r, k in configurations[board]]
    result = BenchResult(results, stage_seconds, throughput, list(dict.fromkeys(ran)), tflm_info)
    result.json_path = str(out / "results.json")
    result.markdown_path = str(out / "results.md")
    write_text_atomic(result.json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    write_text_atomic(result.markdown_path, format_markdown(result))
    return result


def _tflm_tree(tflm_dir: str | os.PathLike | None) -> Path | None:
    if tflm_dir is None and not os.environ.get("TFLM_DIR"):
        log("bench: no TFLM tree (--tflm-dir or $TFLM_DIR): our figures only, no TFLM comparison")
        return None
    return find_tflm_dir(tflm_dir)


def _tflm_commit(tree: Path) -> str | None:
    """The TFLM tree's git commit, if it is a checkout (a copy without .git has none)."""
    head = tree / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (tree / ".git" / ref[5:]).read_text().strip()
        return ref
    except OSError:
        return None


def _n(value: float | int | None, fmt: str = ",.0f") -> str:
    return "—" if value is None else format(value, fmt)


def format_markdown(result: BenchResult) -> str:
    lines = []
    if result.tflm:
        lines += [f"TFLM: {result.tflm['dir']} (commit {result.tflm['commit'] or 'unknown'}), "
                  f"BUILD_TYPE={result.tflm['build_type']}, cortex_m_generic, arm-none-eabi-gcc", ""]
    lines += [
        "| model | board | runtime / kernels | instructions / inference | MACs / instr. | speed-up vs our reference "
        "| ÷ TFLM reference | ÷ TFLM + CMSIS-NN | exact |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in result.models:
        lines.append(f"| {m.model} | {m.board} | {m.label} | {_n(m.instructions)} "
                     f"| {_n(m.macs_per_instruction, '.3f')} | {_n(m.speedup_vs_reference, '.2f')} "
                     f"| {_n(m.vs_tflm_reference, '.3f')} | {_n(m.vs_tflm_cmsis_nn, '.3f')} | {m.exact:.4f} |")
    lines += [
        "",
        "| model | board | runtime / kernels | arena | arena linked | live-tensor bound | RAM | flash | weights "
        "| runtime code (kernels or TFLM / app / board) | other |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in result.models:
        code = m.runtime_code or {}
        parts = " / ".join(_n(v) for v in code.values())
        lines.append(f"| {m.model} | {m.board} | {m.label} | {_n(m.arena_bytes)} | {_n(m.arena_reserved_bytes)} "
                     f"| {_n(m.live_bound_bytes)} | {_n(m.ram_bytes)} | {_n(m.flash_bytes)} | {_n(m.weights_bytes)} "
                     f"| {_n(m.runtime_code_bytes)} ({parts}) | {_n(m.other_flash_bytes)} |")
    if result.stages_seconds:
        lines += ["", "| digits example stage | wall time (s) |", "|---|---:|"]
        lines += [f"| {stage} | {secs:.2f} |" for stage, secs in result.stages_seconds.items()]
    if result.throughput:
        lines += ["", "| run workers | samples / s (digits, 360 samples, mps2-an386) |", "|---:|---:|"]
        lines += [f"| {workers} | {rate:.1f} |" for workers, rate in result.throughput.items()]
    return "\n".join(lines) + "\n"
