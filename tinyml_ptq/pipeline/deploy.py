"""The deploy pipeline: quantize -> generate -> build -> run into one folder, plus the reports.

Each stage is the stage's own function (`tinyml_ptq.quantize`, `generate`, `build`,
`run`); this module only chains them, remembers what it produced and writes
`report.json` / `report.html`. Layout of DIR:

    DIR/<model>_<mode>.tflite DIR/quantize_report.json   quantize (mode int8 or int16x8)
    DIR/firmware/                                        generate (+ firmware/build/ from build)
    DIR/build.json   DIR/run.json                        build, run
    DIR/eval_samples.npz      only when EVAL has more samples than --eval-samples
    DIR/report.json  DIR/report.html  DIR/manifest.json

Artefacts are reused by content hash (DIR/manifest.json): quantization is skipped
when the model bytes, the calibration and evaluation data bytes, the options and
the toolkit version are those of the last run and its outputs are unchanged;
generate and build are skipped when the .tflite bytes, the board, the name and
the generator's own inputs (its Python modules, templates, C runtime and board
files) are unchanged, the project files are as generated and the ELF is the one
built. `run` always runs: it is the measurement.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import json_files, progress
from ..core.errors import UserError
from ..core.fileio import check_writable
from ..core.resources import ROOT
from ..core.version import __version__

MANIFEST = "manifest.json"
FIRMWARE_SUBDIR = "firmware"
EVAL_SUBSET = "eval_samples.npz"  # written when EVAL has more samples than --eval-samples
STAGES = ("quantize", "generate", "build", "run")
# Everything that can change generated code: the whole package, the C sources and
# the templates (a list of modules would go stale as the generator grows).
_GENERATOR_INPUTS = ("firmware", "templates", "tinyml_ptq")


@dataclass
class StageStatus:
    name: str
    cached: bool  # reused from an earlier run with the same inputs
    seconds: float


@dataclass
class DeployResult:
    out_dir: Path
    report_json: Path
    report_html: Path
    report: dict  # the contents of report.json
    quantize: object  # QuantizeResult
    generate: object  # GenerateResult
    build: object  # BuildResult
    run: object  # RunResult
    stages: list[StageStatus] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return format_summary(self.report)


# Quantize modes whose models run on a device (int16x8 natively for some operators, on TFLM for all).
DEPLOY_MODES = ("int8", "int16x8")


def deploy(model: str | os.PathLike, data: str, eval_data: str, out_dir: str | os.PathLike, *,
           board: str = "mps2-an386", samples: int = 200, per_tensor: bool = False, eval_samples: int = 1000,
           name: str | None = None, runtime: str = "native", kernels: str = "auto",
           tflm_dir: str | os.PathLike | None = None, opt: str | None = None, lto: bool = False,
           cflags: str | None = None, workers: int = 1, timeout: float = 2.0, mode: str = "int8",
           weights_memory: str = "internal", command: list[str] | None = None) -> DeployResult:
    """Quantize MODEL, generate and build firmware for BOARD, run EVAL on it; write the reports into OUT_DIR.

    runtime, kernels: as `generate --runtime/--kernels` (kernels auto: the optimized set where the
    board's core has the DSP extension, else reference). runtime "tflm" builds the firmware on
    TensorFlow Lite Micro from `tflm_dir` (or $TFLM_DIR). opt, lto, cflags: as `build`.
    mode: "int8", or "int16x8" (16-bit activations, 8-bit weights): natively for the operators
    with int16x8 kernels (docs/operators.md), else with runtime "tflm".
    weights_memory: as `generate --weights-memory` ("external": the board's external memory).

    A stage that fails raises UserError("stage <name> failed: ...") and leaves
    what the earlier stages wrote in OUT_DIR. `command` is the command line to
    record in the report (the CLI passes its argv); by default the equivalent
    `tinyml-ptq deploy` line.
    """
    from ..compiler.project import GenerateResult, generate
    from ..core.datasets import check_class_labels, load_inputs
    from ..device.run import run
    from ..quantization.quantize import QuantizeResult, quantize
    from ..target.boards import check_weights_memory, get_board, resolve_kernels
    from ..target.build import build, compiler_options, find_tflm_dir, measure
    from .report_html import write_report_html

    started = time.monotonic()
    board_info = get_board(board)  # an unknown board or kernel set is an error before minutes of quantization
    kernels = resolve_kernels(board_info, kernels, runtime)
    check_weights_memory(board_info, weights_memory)
    tflm_tree = find_tflm_dir(tflm_dir) if runtime == "tflm" else None
    compiler = compiler_options(opt, lto, cflags)  # checked before minutes of quantization
    if mode not in DEPLOY_MODES:
        raise UserError(f"deploy --mode {mode}: deploy takes {' or '.join(DEPLOY_MODES)} (the other quantize "
                        "modes are for comparison only)")
    if not eval_data:
        raise UserError("--eval is required: deploy measures accuracy and exactness on the device with it")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder; choose another output folder")
    check_writable(out, "output folder", folder=True)
    manifest = _load_manifest(out)
    report_json = out / "report.json"
    report_html = out / "report.html"
    stem = Path(str(model)).stem or "model"
    tflite = out / f"{stem}_{mode}.tflite"
    quant_report = out / "quantize_report.json"
    project = out / FIRMWARE_SUBDIR
    build_json = out / "build.json"
    run_json = out / "run.json"
    eval_subset = out / EVAL_SUBSET
    _claim_outputs(out, manifest, [tflite, quant_report, build_json, run_json, eval_subset, report_json, report_html])
    for stale in (report_json, report_html):  # they describe an earlier run; a failed run leaves none
        stale.unlink(missing_ok=True)
    stages: list[StageStatus] = []

    # ---- quantize
    t0 = time.monotonic()
    q_key = _digest_of("quantize", __version__, _path_digest(model), _data_digest(data), _data_digest(eval_data),
                       json.dumps({"samples": samples, "per_tensor": per_tensor, "eval_samples": eval_samples,
                                   "mode": mode}))
    if q_key is not None and _up_to_date(out, manifest.get("quantize"), q_key):
        report = json_files.read(quant_report, "quantize_report", "delete it to quantize again")
        q = QuantizeResult(tflite, mode, tflite.stat().st_size, report["loader"], report["ops"], report,
                           quant_report, 0.0)
        cached = True
    else:
        with _stage("quantize"):
            q = quantize(model, data, tflite, samples=samples, per_tensor=per_tensor, eval_data=eval_data,
                         report_path=quant_report, eval_samples=eval_samples, mode=mode,
                         precheck=lambda float_tflite: _refuse_early(float_tflite, runtime, board_info,
                                                                     weights_memory))
        cached = False
        _record(out, manifest, "quantize", q_key, [tflite, quant_report])
    stages.append(_done("quantize", cached, t0))

    # ---- generate + build (one cache entry: a regenerated project always needs a new build)
    t0 = time.monotonic()
    g_key = _digest_of("generate", __version__, _file_digest(tflite), board_info.name, name or "", runtime,
                       kernels, weights_memory, _generator_fingerprint())
    if _up_to_date(out, manifest.get("generate"), g_key, tree=project):
        # The folder may have moved since: paths are those of this run.
        g = GenerateResult(**{**manifest["generate"]["result"], "project_dir": str(project), "model": str(tflite)})
        g_cached = True
    else:
        with _stage("generate"):
            g = generate(tflite, project, board=board_info, name=name, runtime=runtime, kernels=kernels,
                         weights_memory=weights_memory)
        g_cached = False
        manifest.pop("build", None)
        _record(out, manifest, "generate", g_key, [], tree=project, result=g.to_dict())
    stages.append(_done("generate", g_cached, t0))

    t0 = time.monotonic()
    elf = project / "build" / "firmware.elf"
    b_key = _digest_of("build", g_key, _tree_digest(project), _compiler_version(board_info), str(tflm_tree or ""),
                       " ".join(compiler))
    if g_cached and _up_to_date(out, manifest.get("build"), b_key):
        with _stage("build", announce=False):
            b = measure(elf, board_info, project)
        json_files.write(build_json, "build", b.to_dict())
        b_cached = True
    else:
        with _stage("build"):
            b = build(project, json_out=build_json, tflm_dir=tflm_tree, opt=opt, lto=lto, cflags=cflags)
        b_cached = False
        # The build adds build/ to the project; the key is of the sources it was built from.
        _record(out, manifest, "build", b_key, [elf])
    stages.append(_done("build", b_cached, t0))

    # ---- run: the evaluation samples quantize measured float and int8 accuracy on
    t0 = time.monotonic()
    run_data = eval_data
    with _stage("run"):
        # A report cached by an earlier version names only its first input.
        shapes = [tuple(t["shape"][1:]) for t in q.report.get("inputs", [q.report["input"]])]
        evaluation = load_inputs(eval_data, shapes, eval_samples, what="--eval")
        if evaluation.total > len(evaluation):
            run_data = str(eval_subset)
            _save_npz(Path(run_data), evaluation.xs, evaluation.y)
        r = run(project, run_data, workers=workers, json_out=run_json, timeout=timeout, model=tflite)
    stages.append(_done("run", False, t0))

    classes = int(np.prod(q.report["output"]["shape"][1:]))  # a confusion matrix needs class indices
    labels = evaluation.y if check_class_labels(evaluation.y, classes, f"--eval {eval_data}") else None
    commands = _stage_commands(model, data, eval_data, run_data, tflite, quant_report, project, build_json, run_json,
                               board_info.name, samples, per_tensor, eval_samples, name, runtime, kernels, tflm_tree,
                               _flag_args(opt, lto, cflags), workers, timeout, mode, weights_memory)
    deploy_cmd = command or ["tinyml-ptq", "deploy", *commands["deploy_args"]]
    report = _merge_report(model, board_info, q, g, b, r, stages, labels, deploy_cmd, commands["stages"],
                           time.monotonic() - started)
    json_files.write(report_json, "report", report)
    write_report_html(report, report_html)
    return DeployResult(out, report_json, report_html, report, q, g, b, r, stages, time.monotonic() - started)


# ----------------------------------------------------------------------------- stages


class _stage:
    """Name the failing stage in its error; earlier artefacts stay where they are."""

    def __init__(self, name: str, announce: bool = True):
        self.name = name
        self.announce = announce

    def __enter__(self):
        if self.announce:
            progress.log(f"deploy: {self.name}")

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, UserError):
            raise UserError(f"stage {self.name} failed: {exc}") from None
        return False


def _done(name: str, cached: bool, t0: float) -> StageStatus:
    status = StageStatus(name, cached, round(time.monotonic() - t0, 3))
    if cached:
        progress.log(f"deploy: {name} up to date, reused ({status.seconds:.1f} s)")
    return status


def _save_npz(path: Path, xs: list[np.ndarray], y: np.ndarray | None) -> None:
    """The samples of every input (the keys every stage reads), and y."""
    from ..core.datasets import input_arrays
    from ..core.fileio import atomic_path

    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **input_arrays(xs), **({} if y is None else {"y": y}))


# ----------------------------------------------------------------------------- cache


def _claim_outputs(out: Path, manifest: dict, outputs: list[Path]) -> None:
    """Refuse to overwrite or delete any file of OUT that deploy did not write, then record
    `outputs` in the manifest as deploy's own, before the first of them is written.

    A folder's files are deploy's if its manifest lists them (a manifest from before the list
    was kept vouches for the standard outputs); without a manifest, none are.
    """
    if (out / MANIFEST).exists() and not manifest:
        raise UserError(f"{out / MANIFEST} is not a tinyml-ptq deploy manifest; choose another output folder")
    ours = set(manifest.get("written", [str(p.relative_to(out)) for p in outputs]) if manifest else [])
    foreign = [p for p in outputs if p.exists() and str(p.relative_to(out)) not in ours]
    if foreign:
        raise UserError(f"{foreign[0]} was not written by tinyml-ptq deploy and would be replaced; move it or "
                        "choose another output folder")
    out.mkdir(parents=True, exist_ok=True)
    manifest["written"] = sorted(ours | {str(p.relative_to(out)) for p in outputs})
    manifest["tinyml_ptq"] = __version__
    json_files.write(out / MANIFEST, "manifest", manifest)


def _load_manifest(out: Path) -> dict:
    path = out / MANIFEST
    try:  # no manifest, or one this version cannot read: nothing is reused
        manifest = json_files.read(path, "manifest", "delete it")
    except (OSError, UserError):
        return {}
    return manifest if isinstance(manifest, dict) and manifest.get("tinyml_ptq") == __version__ else {}


def _record(out: Path, manifest: dict, stage: str, key: str | None, files: list[Path], tree: Path | None = None,
            result: dict | None = None) -> None:
    if key is None:  # inputs that cannot be hashed (a data generator): never reused
        manifest.pop(stage, None)
    else:
        entry = {"key": key, "files": {str(p.relative_to(out)): _file_digest(p) for p in files}}
        if tree is not None:
            entry["tree"] = {"path": str(tree.relative_to(out)), "digest": _tree_digest(tree)}
        if result is not None:
            entry["result"] = result
        manifest[stage] = entry
    manifest["tinyml_ptq"] = __version__
    json_files.write(out / MANIFEST, "manifest", manifest)


def _up_to_date(out: Path, entry: dict | None, key: str | None, tree: Path | None = None) -> bool:
    if key is None or not entry or entry.get("key") != key:
        return False
    for rel, digest in entry.get("files", {}).items():
        if not (out / rel).is_file() or _file_digest(out / rel) != digest:
            return False
    if tree is not None:
        recorded = entry.get("tree", {})
        if not tree.is_dir() or recorded.get("digest") != _tree_digest(tree):
            return False
    return True


def _digest_of(*parts: str | None) -> str | None:
    if any(p is None for p in parts):
        return None
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tree_digest(folder: Path, skip: tuple[str, ...] = ("build",)) -> str:
    """Names and bytes of every file under `folder` (top-level `skip` folders left out: build outputs)."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0] in skip or "__pycache__" in rel.parts or not path.is_file():
            continue
        h.update(str(rel).encode() + b"\0" + _file_digest(path).encode() + b"\0")
    return h.hexdigest()


def _path_digest(path: str | os.PathLike) -> str:
    p = Path(path)
    if p.is_dir():
        return "dir:" + _tree_digest(p, skip=())
    if p.is_file():
        return "file:" + _file_digest(p)
    return f"missing:{p}"  # quantize reports it; never equal to a real file's digest


def _data_digest(spec: str) -> str | None:
    """Digest of a data file or folder; None for a generator (what it yields cannot be hashed)."""
    if Path(spec).exists():
        return _path_digest(spec)
    return None if ":" in spec else f"missing:{spec}"


def _generator_fingerprint() -> str:
    return _digest_of(*(_path_digest(ROOT / p) for p in _GENERATOR_INPUTS))


def _compiler_version(board) -> str:
    compiler = "gcc" if board.is_host else "arm-none-eabi-gcc"
    try:
        proc = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return f"{compiler}: unavailable"  # build reports it properly
    return proc.stdout.splitlines()[0] if proc.stdout else compiler


# ----------------------------------------------------------------------------- report


def _refuse_early(float_tflite: bytes, runtime: str, board, weights_memory: str = "internal") -> None:
    """What the float conversion already tells, said before minutes of calibration: operators
    the runtime has no kernel for, and weights that cannot fit the board's flash (or external memory)."""
    from ..interpreters.tflite_inspect import tflite_ops
    from ..target.boards import more_memory_hint

    ops = set(tflite_ops(float_tflite))
    if runtime == "native":
        from ..compiler.lowering import supported_operators

        missing = sorted(ops - set(supported_operators()))
        if missing:
            raise UserError(f"the model has operator{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which the "
                            "native runtime has no kernel for (seen in a float conversion, before calibrating)")
    else:
        from ..compiler.tflm_export import TFLM_BUILTIN_OPS

        missing = sorted(ops - set(TFLM_BUILTIN_OPS))
        if missing:
            raise UserError(f"the model has operator{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which "
                            "TensorFlow Lite Micro has no kernel for (seen in a float conversion, before calibrating)")
    # int8 weights are a quarter of the float32 ones; the flatbuffer is nearly all weights.
    weights = len(float_tflite) // 4
    if weights_memory == "external":
        if weights > board.external_bytes:
            raise UserError(f"the model's weights, about {weights:,} B in int8, exceed {board.name}'s "
                            f"{board.external_bytes:,} B of external memory (seen before calibrating); choose a "
                            "smaller model")
    elif board.flash_bytes is not None and weights > board.flash_bytes:
        raise UserError(f"the model's weights alone, about {weights:,} B in int8, exceed "
                        f"{board.name}'s {board.flash_bytes:,} B of flash (seen before calibrating); "
                        f"{more_memory_hint(board, weights_memory, 'deploy')}")


def _stage_commands(model, data, eval_data, run_data, tflite, quant_report, project, build_json, run_json,
                    board, samples, per_tensor, eval_samples, name, runtime, kernels, tflm_dir, flag_args, workers,
                    timeout, mode, weights_memory) -> dict:
    mode_args = ["--mode", mode] if mode != "int8" else []
    memory_args = ["--weights-memory", weights_memory] if weights_memory != "internal" else []
    q = ["tinyml-ptq", "quantize", str(model), "--data", str(data), "--eval", str(eval_data),
         "--samples", str(samples), "--eval-samples", str(eval_samples), "-o", str(tflite),
         "--report", str(quant_report), *mode_args] + (["--per-tensor"] if per_tensor else [])
    runtime_args = ["--runtime", runtime, "--kernels", kernels, *memory_args]
    tflm_args = ["--tflm-dir", str(tflm_dir)] if tflm_dir else []
    g = ["tinyml-ptq", "generate", str(tflite), "-o", str(project), "--board", board, *runtime_args] + \
        (["--name", name] if name else [])
    b = ["tinyml-ptq", "build", str(project), "--json", str(build_json), *tflm_args, *flag_args]
    r = ["tinyml-ptq", "run", str(project), "--data", str(run_data), "--model", str(tflite),
         "--workers", str(workers), "--timeout", str(timeout), "--json", str(run_json)]
    deploy_args = [str(model), "--data", str(data), "--eval", str(eval_data), "--board", board, *runtime_args,
                   *tflm_args, *flag_args, "-o", str(Path(project).parent), "--samples", str(samples), "--eval-samples", str(eval_samples),
                   "--workers", str(workers), "--timeout", str(timeout), *mode_args] + \
        (["--per-tensor"] if per_tensor else []) + (["--name", name] if name else [])
    return {"stages": {"quantize": q, "generate": g, "build": b, "run": r}, "deploy_args": deploy_args}


def _merge_report(model, board, q, g, b, r, stages, labels, deploy_cmd, stage_cmds, seconds) -> dict:
    from ..device.run import predictions
    from ..interpreters.reference import TensorInfo, output_values

    run_report = r.to_dict()
    run_report["mismatches"] = r.mismatches
    run_report["seconds"] = round(r.seconds, 3)
    confusion = None
    if labels is not None and r.outputs is not None:
        out_meta = q.report["output"]
        classes = int(np.prod(out_meta["shape"][1:]))
        info = TensorInfo(tuple(out_meta["shape"]), np.dtype(out_meta["dtype"]), out_meta["scale"],
                          out_meta["zero_point"])
        predicted = predictions(output_values(r.outputs, [info]), out_meta["scale"], out_meta["zero_point"])
        matrix = np.zeros((classes, classes), dtype=np.int64)
        np.add.at(matrix, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
        confusion = {"rows": "label", "columns": "device prediction", "matrix": matrix.tolist()}
    model_path = Path(str(model))
    return {
        "tinyml_ptq_version": __version__,
        "model": {"path": str(model), "digest": _path_digest(model_path), "name": g.model_name},
        "board": {k: v for k, v in board.to_dict().items() if k not in ("source_dirs", "cpu_flags", "verified")},
        "commands": {"deploy": shlex.join(deploy_cmd), **{k: shlex.join(v) for k, v in stage_cmds.items()},
                     "cwd": os.getcwd(), "python": sys.version.split()[0]},
        "stages": [{"name": s.name, "cached": s.cached, "seconds": s.seconds} for s in stages],
        "seconds": round(seconds, 3),
        "quantize": q.report,
        "generate": {k: v for k, v in g.to_dict().items() if k != "files"},
        "build": b.to_dict(),
        "run": run_report,
        "confusion_matrix": confusion,
        "op_table": _op_table(g.model, q.report, r),
        "summary": {**_summary_numbers(q.report, b, r), "runtime": _runtime_name(g.to_dict())},
    }


def _op_table(tflite: str, quant_report: dict, r) -> list[dict]:
    """One row per operator in execution order: output tensor, latency and quantization error."""
    from ..compiler.tflite_reader import read_tflite

    graph = read_tflite(Path(tflite))
    errors = {layer["name"]: layer for layer in quant_report.get("layers") or []}
    total = sum(o.mean for o in r.per_op) or 1.0
    rows = []
    for op in graph.operators:
        out = graph.tensors[op.outputs[0]]
        latency = r.per_op[op.index].mean if op.index < len(r.per_op) else None
        error = errors.get(out.name, {})
        rows.append({"index": op.index, "op": op.opcode, "output": out.name, "shape": [int(d) for d in out.shape],
                     "latency_mean": latency, "latency_share": None if latency is None else latency / total,
                     "rmse": error.get("rmse"), "rmse_over_scale": error.get("rmse_over_scale")})
    return rows


def _summary_numbers(qr: dict, b, r) -> dict:
    acc = qr.get("accuracy") or {}
    return {
        "accuracy_float": acc.get("float"),
        "accuracy_int8": acc.get("int8"),  # the quantized model's, whatever its mode
        "quantized": {"mode": qr.get("mode", "int8"),
                      "runtime": (qr.get("eval") or {}).get("quantized_runtime", "tflm")},
        "accuracy_device": r.accuracy_device,
        "exact": r.exact,
        "flash_bytes": b.flash_bytes,
        "ram_bytes": b.ram_bytes,
        "arena_bytes": b.arena_bytes,
        "latency_mean": r.latency_mean,
        "latency_unit": r.latency_unit,
        "samples": r.samples,
    }


_RUNTIME_NAMES = {"tflm": "TFLM", "litert": "LiteRT"}


def _flag_args(opt: str | None, lto: bool, cflags: str | None) -> list[str]:
    """The build options as command-line arguments, for the recorded commands."""
    return ([f"--opt={opt}"] if opt else []) + (["--lto"] if lto else []) + ([f"--cflags={cflags}"] if cflags else [])


def _runtime_name(generated: dict) -> str:
    if generated.get("runtime") == "tflm":
        return f"TensorFlow Lite Micro, {generated['kernels']} kernels"
    return f"tinyml-ptq native, {generated['kernels']} kernels"


def format_summary(report: dict) -> str:
    """The deploy summary printed by the CLI and `make demo`, from report.json."""
    s = report["summary"]
    b = report["build"]

    def pct(v):
        return "-" if v is None else f"{100 * v:.2f} %"

    def of(used, cap):
        return f"{used:,} B" + (f" of {cap:,} B ({100 * used / cap:.1f}%)" if cap else "")

    stages = ", ".join(st["name"] + (" reused" if st["cached"] else f" {st['seconds']:.1f} s")
                       for st in report["stages"])
    return "\n".join([
        f"model      {report['model']['path']} -> {report['model']['name']} on {report['board']['name']}",
        f"runtime    {s['runtime']}",
        f"accuracy   float {pct(s['accuracy_float'])}, {s['quantized']['mode']} {pct(s['accuracy_int8'])} "
        f"({_RUNTIME_NAMES.get(s['quantized']['runtime'], s['quantized']['runtime'])}), "
        f"device {pct(s['accuracy_device'])}  ({s['samples']} samples)",
        f"exact      {s['exact']:.4f} of device outputs identical to the TFLM reference",
        f"flash      {of(b['flash_bytes'], b['flash_capacity'])}",
        f"RAM        {of(b['ram_bytes'], b['ram_capacity'])}, arena {s['arena_bytes']:,} B",
        *([f"external   {of(b['external_bytes'], b['external_capacity'])} (the weights)"]
          if b.get("external_bytes") else []),
        f"latency    {s['latency_mean']:,.0f} {s['latency_unit']} per inference (mean)",
        f"stages     {stages}; total {report['seconds']:.1f} s",
    ])
