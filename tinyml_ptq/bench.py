"""The benchmark: the MLPerf Tiny int8 models and the digits example on emulated Cortex-M
boards, each kernel set, against TensorFlow Lite Micro's published figures.

Every number comes from the stages themselves: `generate` (arena, live-tensor bound),
`build` (flash split from the ELF and link map), `run` (instructions per inference under
QEMU -icount shift=0, per-op profile, exactness against the TFLM reference). MACs are
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

from .build import build
from .codegen import generate_model_sources
from .errors import UserError
from .fileio import write_text_atomic
from .ir import Graph
from .progress import log
from .project import generate
from .quantize import quantize
from .resources import ROOT
from .run import run
from .tflite_reader import parse_tflite

DEFAULT_BOARDS = ("mps2-an386", "mps2-an500")
KERNEL_SETS = ("reference", "dsp")  # generate --kernels; reference first: the speed-up baseline
MLPERF_DIR = ROOT.parent / "shared" / "models" / "mlperf_tiny"
DIGITS_DIR = ROOT / "examples" / "digits"


@dataclass(frozen=True)
class TflmFigures:
    """TFLM on mps2-an386 (issue #7 anchors): instructions per inference with the reference
    kernels and with CMSIS-NN, its arena, and the live-tensor bound of the model."""

    reference_instructions: int
    cmsis_nn_instructions: int
    arena_bytes: int
    live_bound_bytes: int
    macs: int


TFLM = {
    "kws_ref_model_int8": TflmFigures(43_042_826, 7_700_253, 22_772, 16_000, 2_656_768),
    "vww_96_int8": TflmFigures(100_251_320, 24_102_786, 100_660, 55_296, 7_489_664),
    "resnet8_cifar10_int8": TflmFigures(107_405_280, 29_863_786, 54_340, 49_152, 12_501_632),
    "ad01_int8": TflmFigures(1_952_573, 583_253, 2_260, 768, 264_192),
}
# TFLM's own code without the model (KWS): reference kernels, CMSIS-NN kernels.
TFLM_CODE_BYTES = {"reference": 59 * 1024, "cmsis_nn": 105 * 1024}


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
    kernels: str
    samples: int
    exact: float
    instructions: float  # mean per inference
    macs: int
    macs_per_instruction: float
    speedup_vs_reference: float | None  # our reference kernels' instructions / these
    vs_tflm_reference: float | None  # these instructions / TFLM reference kernels' (mps2-an386 only)
    vs_tflm_cmsis_nn: float | None  # these instructions / TFLM + CMSIS-NN's (mps2-an386 only)
    arena_bytes: int
    live_bound_bytes: int
    tflm_arena_bytes: int | None
    flash_bytes: int
    weights_bytes: int | None
    runtime_code_bytes: int | None
    runtime_code: dict[str, int] | None
    other_flash_bytes: int | None
    per_op: list[dict] = field(default_factory=list)


@dataclass
class BenchResult:
    models: list[ModelBench]
    stages_seconds: dict[str, float] | None  # digits example: quantize, generate, build, run
    throughput: dict[str, float] | None  # digits example, run samples/s: {"1": .., "2": ..}
    kernel_sets: list[str]
    json_path: str | None = None
    markdown_path: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("json_path")
        data.pop("markdown_path")
        return data


def bench_model(model: Path, board: str, kernels: str, work: Path, samples: int) -> ModelBench:
    """generate, build and run one model on one board with one kernel set."""
    name = model.stem
    project = work / f"{name}-{board}-{kernels}"
    generated = generate(model, project, board=board, kernels=kernels)
    built = build(project)
    graph = parse_tflite(model.read_bytes())
    shape = graph.tensors[graph.inputs[0]].shape
    rng = np.random.default_rng(0)
    data = work / f"{name}-inputs.npy"
    np.save(data, rng.integers(-128, 128, size=(samples, *shape[1:]), dtype=np.int8))
    result = run(project, data)
    macs = count_macs(graph)
    split = built.flash_split or {}
    tflm = TFLM.get(name)
    # The bound of separate buffers with the reference kernels' scratch: what in-place steps beat.
    bound = generate_model_sources(graph, model.read_bytes()).live_lower_bound
    return ModelBench(
        model=name, board=board, kernels=generated.kernels, samples=result.samples,
        exact=result.exact, instructions=result.latency_mean, macs=macs,
        macs_per_instruction=macs / result.latency_mean if result.latency_mean else 0.0,
        speedup_vs_reference=None,
        vs_tflm_reference=result.latency_mean / tflm.reference_instructions if tflm and board == "mps2-an386" else None,
        vs_tflm_cmsis_nn=result.latency_mean / tflm.cmsis_nn_instructions if tflm and board == "mps2-an386" else None,
        arena_bytes=generated.arena_bytes, live_bound_bytes=bound,
        tflm_arena_bytes=tflm.arena_bytes if tflm else None,
        flash_bytes=built.flash_bytes, weights_bytes=split.get("weights"),
        runtime_code_bytes=split.get("runtime_code"), runtime_code=built.runtime_code,
        other_flash_bytes=split.get("other"),
        per_op=[{"index": p.index, "op": p.op, "instructions": p.mean} for p in result.per_op],
    )


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
          boards: tuple[str, ...] = DEFAULT_BOARDS, samples: int = 3, stages: bool = True) -> BenchResult:
    """Run the benchmark; write OUT/results.json and OUT/results.md.

    models: int8 .tflite files (default: the four MLCommons models beside the checkout,
    plus the digits example quantized by the stage timing run). stages: time the
    digits example's stages (needed for the default digits model).
    """
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="tp-bench-") as tmp:
        work = Path(tmp)
        stage_seconds = throughput = None
        paths = [Path(m) for m in models] if models is not None else None
        if stages:
            log("bench: digits example stage times and run throughput")
            stage_seconds, throughput, digits = bench_stages(work)
            if paths is None:
                paths = [*(MLPERF_DIR / f"{n}.tflite" for n in TFLM), digits]
        if paths is None:
            paths = [MLPERF_DIR / f"{n}.tflite" for n in TFLM]
        for path in paths:
            if not path.is_file():
                raise UserError(f"bench: model {path} not found (the MLPerf Tiny models are expected in "
                                f"{MLPERF_DIR}); pass the .tflite files to benchmark")
        results = []
        for path in paths:
            for board in boards:
                reference = None
                for kernels in KERNEL_SETS:
                    log(f"bench: {path.stem} on {board}, {kernels} kernels")
                    entry = bench_model(path, board, kernels, work, samples)
                    if kernels == "reference":
                        reference = entry.instructions
                    entry.speedup_vs_reference = round(reference / entry.instructions, 3) if reference else None
                    results.append(entry)
    result = BenchResult(results, stage_seconds, throughput, list(KERNEL_SETS))
    result.json_path = str(out / "results.json")
    result.markdown_path = str(out / "results.md")
    write_text_atomic(result.json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    write_text_atomic(result.markdown_path, format_markdown(result))
    return result


def _n(value: float | int | None, fmt: str = ",.0f") -> str:
    return "—" if value is None else format(value, fmt)


def format_markdown(result: BenchResult) -> str:
    lines = [
        "| model | board | kernels | instructions / inference | MACs | MACs / instr. | speed-up vs our reference "
        "| ÷ TFLM reference | ÷ TFLM + CMSIS-NN | exact |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in result.models:
        lines.append(f"| {m.model} | {m.board} | {m.kernels} | {_n(m.instructions)} | {_n(m.macs)} "
                     f"| {_n(m.macs_per_instruction, '.3f')} | {_n(m.speedup_vs_reference, '.2f')} "
                     f"| {_n(m.vs_tflm_reference, '.3f')} | {_n(m.vs_tflm_cmsis_nn, '.3f')} | {m.exact:.4f} |")
    lines += [
        "",
        "| model | board | kernels | arena | live-tensor bound | TFLM arena | flash | weights | runtime code "
        "(kernels / app / board) | other |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in result.models:
        code = m.runtime_code or {}
        parts = " / ".join(_n(code.get(k)) for k in ("kernels", "app", "board"))
        lines.append(f"| {m.model} | {m.board} | {m.kernels} | {_n(m.arena_bytes)} | {_n(m.live_bound_bytes)} "
                     f"| {_n(m.tflm_arena_bytes)} | {_n(m.flash_bytes)} | {_n(m.weights_bytes)} "
                     f"| {_n(m.runtime_code_bytes)} ({parts}) | {_n(m.other_flash_bytes)} |")
    if result.stages_seconds:
        lines += ["", "| digits example stage | wall time (s) |", "|---|---:|"]
        lines += [f"| {stage} | {secs:.2f} |" for stage, secs in result.stages_seconds.items()]
    if result.throughput:
        lines += ["", "| run workers | samples / s (digits, 360 samples, mps2-an386) |", "|---:|---:|"]
        lines += [f"| {workers} | {rate:.1f} |" for workers, rate in result.throughput.items()]
    return "\n".join(lines) + "\n"
