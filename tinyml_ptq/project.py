"""The generate stage: an int8 `.tflite` becomes a self-contained firmware project.

The project folder holds everything the build needs and nothing that points
back into the toolkit: the generated model sources, the runtime headers and
the kernels the model uses, the protocol server app, the board's start-up
code, drivers and linker script, and a Makefile. `make -C DIR` alone builds
DIR/build/firmware.elf (+ .bin and .hex for Arm boards).

    DIR/Makefile        DIR/project.json (what was generated, read by `build`)
    DIR/app/            main.c, protocol.c/.h, board.h, app_config.h
    DIR/board/          start-up, drivers, linker script of the board
    DIR/model/          model.c/.h, model_data.c/.h
    DIR/runtime/        include/*.h, kernels/*.c
"""

from __future__ import annotations

import os
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jinja2

from . import __version__
from .boards import DEFAULT_BOARD, Board, check_weights_memory, get_board, resolve_kernels
from .cnames import c_string
from .codegen import ModelSources, generate_model_sources, runtime_files
from .errors import UserError, shorten
from .fileio import atomic_dir, check_writable
from .ir import Graph
from .lowering import UnsupportedOperator
from .project_file import PROJECT_FILE, project_json
from .resources import FIRMWARE_DIR, TEMPLATES_DIR
from .tflite_reader import read_tflite

APP_FILES = ("main.c", "protocol.c", "protocol.h", "board.h")
# A copy of the .tflite the project was generated from: `run` checks every output against
# it, from any working folder and after the original has moved.
REFERENCE_MODEL = "model.tflite"
MIN_MAX_PAYLOAD = 1024


@dataclass
class GenerateResult:
    project_dir: str
    board: str
    model: str  # the .tflite it came from
    model_name: str  # as reported by INFO
    arena_bytes: int
    weights_bytes: int
    op_names: list[str]
    input_size: int
    output_size: int
    max_payload: int
    files: list[str] = field(default_factory=list)  # relative to project_dir
    kernels: str = "reference"  # kernel set: "reference", "dsp" or "helium" (native), "reference" or "cmsis_nn" (tflm)
    runtime: str = "native"  # "native" (tinyml-ptq's runtime) or "tflm" (TensorFlow Lite Micro)
    weights_memory: str = "internal"  # "internal" (the chip's flash) or "external" (the board's external memory)

    def to_dict(self) -> dict:
        return asdict(self)


RUNTIMES = ("native", "tflm")


def generate(model_tflite: str | os.PathLike, out_dir: str | os.PathLike, board: str = DEFAULT_BOARD,
             name: str | None = None, runtime: str = "native", kernels: str = "auto",
             weights_memory: str = "internal") -> GenerateResult:
    """Write a firmware project for `model_tflite` on `board` into `out_dir` (atomically).

    runtime "native" generates C for our int8 runtime; "tflm" a TensorFlow Lite
    Micro project serving the same protocol (tinyml_ptq.tflm_export). kernels: the
    runtime's kernel set, "auto" (the optimized set if the board's core has the DSP
    extension, helium on MVE cores) or, native, "reference" (portable C) / "dsp" / "helium"; TFLM, "reference" /
    "cmsis_nn" (see boards.resolve_kernels). weights_memory "external" places the weights in
    the board's external memory (boards.Board.external_memory) instead of its flash.
    """
    if runtime == "tflm":
        from .tflm_export import export_tflm_project

        r = export_tflm_project(model_tflite, out_dir, board=board, name=name, kernels=kernels,
                                weights_memory=weights_memory)
        return GenerateResult(
            project_dir=r.project_dir, board=r.board, model=r.model, model_name=r.model_name,
            arena_bytes=r.arena_bytes, weights_bytes=os.path.getsize(model_tflite),
            op_names=r.op_names, input_size=r.input_size, output_size=r.output_size, max_payload=r.max_payload,
            files=r.files, kernels=r.kernels, runtime="tflm", weights_memory=weights_memory,
        )
    if runtime != "native":
        raise UserError(f"unknown runtime '{runtime}'; choose one of: {', '.join(RUNTIMES)}")
    board_info = get_board(board)
    kernel_set = resolve_kernels(board_info, kernels)
    check_weights_memory(board_info, weights_memory)
    model_path = Path(model_tflite)
    out = Path(out_dir)
    check_destination(out)
    graph = read_tflite(model_path)
    check_io(graph)
    tflite_bytes = model_path.read_bytes()
    try:
        sources = generate_model_sources(graph, tflite_bytes, prefix="model", kernels=kernel_set,
                                         external_weights=weights_memory == "external")
    except UnsupportedOperator as exc:
        raise UnsupportedOperator(f"{exc}{_tflm_hint(graph)}") from None
    model_name = c_string(name if name is not None else graph.name, limit=64).strip() or "model"

    digest = model_digest(tflite_bytes)
    payload = max_payload(model_name, board_info, graph, sources.op_names)
    files = _project_files(sources, board_info, model_name, payload, digest)
    metadata = {
        "generator": f"tinyml-ptq {__version__}",
        "board": board_info.name,
        "kernels": kernel_set,
        "model": str(model_path),
        "model_name": model_name,
        "arena_bytes": sources.arena_bytes,
        "weights_bytes": sources.weights_bytes,
        "weights_memory": weights_memory,
        "model_digest": f"0x{digest:08x}",
        "op_names": sources.op_names,
        **io_meta(graph),
        "max_payload": payload,
        "board_info": board_info.to_dict(),
    }
    files[PROJECT_FILE] = project_json(metadata)
    files[REFERENCE_MODEL] = model_path
    write_project(out, files)
    return GenerateResult(
        project_dir=str(out), board=board_info.name, model=str(model_path), model_name=model_name,
        arena_bytes=sources.arena_bytes, weights_bytes=sources.weights_bytes, op_names=sources.op_names,
        input_size=sum(graph.tensors[i].nbytes for i in graph.inputs),
        output_size=sum(graph.tensors[i].nbytes for i in graph.outputs), max_payload=payload,
        files=sorted(files), kernels=kernel_set, weights_memory=weights_memory,
    )


def write_project(out: Path, files: dict[str, str | Path]) -> None:
    """Write `files` (relative path -> text, or a file to copy) as the folder `out`, atomically."""
    with atomic_dir(out) as tmp:
        for rel, content in sorted(files.items()):
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                dest.write_bytes(content.read_bytes())
            else:
                dest.write_text(content)


def check_destination(out: Path) -> None:
    """Only ever replace an empty folder or an earlier generated project, in a place that can be written."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder; choose another output folder")
    check_writable(out, "output folder", folder=True)
    if out.is_dir() and any(out.iterdir()) and not (out / PROJECT_FILE).is_file():
        raise UserError(f"{out} is not empty and is not a tinyml-ptq firmware project; "
                        "choose a new or empty output folder")


def _tflm_hint(graph: Graph) -> str:
    """Where TensorFlow Lite Micro registers every operator of the model, say that its route can try."""
    from .tflm_export import resolver_calls

    try:
        resolver_calls(graph)
    except UserError:
        return ""
    return ("; TensorFlow Lite Micro has a kernel for every operator of this model: "
            "--runtime tflm (with --tflm-dir) builds the firmware on TFLM instead")


# Input/output types each runtime's firmware serves: quantized int8 (int16 on TFLM) tensors, and
# plain int32 ones (ARG_MAX's indices; TFLM's own test models feed TRANSPOSE_CONV's output shape).
# The native runtime also takes an int16 input that QUANTIZE operators alone bring to int8.
# int16 (int16x8 models) runs natively for the operators with a 16x8 kernel; lowering refuses the others.
IO_TYPES = {"native": ("int8", "int16", "int32"), "tflm": ("int8", "int16", "int32")}


def check_io(graph: Graph, runtime: str = "native") -> None:
    """Any number of inputs and outputs (at least one of each), quantized to a type the runtime serves."""
    if not graph.inputs or not graph.outputs:
        raise UserError(f"model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                        "the firmware needs at least one of each")
    allowed = IO_TYPES[runtime]
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for k, index in enumerate(indices):
            tensor = graph.tensors[index]
            if tensor.dtype in allowed and (tensor.quantization is not None or tensor.dtype == "int32"):
                continue
            if runtime == "native" and role == "input" and _int16_input_quantized_at_once(graph, index):
                continue
            if runtime == "native" and tensor.dtype == "int16" and tensor.quantization is not None:
                raise UserError(f"model {role} {k} '{shorten(tensor.name)}' is int16 (an int16x8 model, or int16 "
                                "at the boundary); the native runtime takes int8; --runtime tflm (with --tflm-dir) "
                                "builds the firmware on TFLM instead")
            raise UserError(
                f"model {role} {k} '{shorten(tensor.name)}' is {tensor.dtype}, not quantized "
                f"{' or '.join(t for t in allowed if t != 'int32')}; only full-integer models are supported; quantize with "
                "'tinyml-ptq quantize --mode int8'")


def _int16_input_quantized_at_once(graph: Graph, index: int) -> bool:
    """A quantized int16 model input that only QUANTIZE operators read (to int8: the native runtime
    requantizes it on the way in, as TFLM's keyword model does)."""
    tensor = graph.tensors[index]
    if tensor.dtype != "int16" or tensor.quantization is None or tensor.quantization.per_channel:
        return False
    readers = [op for op in graph.operators if index in op.inputs]
    return bool(readers) and all(op.opcode == "QUANTIZE" and graph.tensors[op.outputs[0]].dtype == "int8"
                                 for op in readers)


def tensor_meta(tensor) -> dict:
    quantized = tensor.quantization is not None
    return {"name": tensor.name, "dtype": tensor.dtype, "shape": [int(d) for d in tensor.shape],
            "size": tensor.nbytes, "scale": float(tensor.scale) if quantized else 0.0,
            "zero_point": int(tensor.zero_point) if quantized else 0}


def io_meta(graph: Graph) -> dict:
    """project.json's description of the model's inputs and outputs, in index order."""
    return {"inputs": [tensor_meta(graph.tensors[i]) for i in graph.inputs],
            "outputs": [tensor_meta(graph.tensors[i]) for i in graph.outputs]}


def model_digest(tflite_bytes: bytes) -> int:
    """CRC-32 of the .tflite: the firmware reports it in INFO, so `run` knows which model it serves."""
    return zlib.crc32(tflite_bytes) & 0xFFFFFFFF


def max_payload(model_name: str, board: Board, graph: Graph, op_names: list[str]) -> int:
    """Receive buffer size: at least 1 KB, and no reply is ever longer than it."""
    inputs = [graph.tensors[i] for i in graph.inputs]
    outputs = [graph.tensors[i] for i in graph.outputs]
    info = 5 * 4 + 1 + 1 + len(model_name) + 1 + len(board.name) + 4 + 2 + sum(
        2 + 4 * max(len(t.shape), 1) + 12 for t in inputs + outputs)
    names = sum(1 + min(len(n), 255) for n in op_names)
    need = max(MIN_MAX_PAYLOAD, info, 4 + sum(t.nbytes for t in outputs), 4 + 4 * len(op_names), names)
    return (need + 3) // 4 * 4


def _project_files(sources: ModelSources, board: Board, model_name: str, max_payload: int,
                   digest: int) -> dict[str, str | Path]:
    files: dict[str, str | Path] = {}
    for name, text in sources.files.items():
        files[f"model/{name}"] = text
    for path in runtime_files(sources):
        sub = "include" if path.suffix == ".h" else "kernels"
        files[f"runtime/{sub}/{path.name}"] = path
    files.update(app_and_board_files(board, model_name, max_payload, digest))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    files["Makefile"] = env.get_template("firmware.mk.j2").render(
        board=board, host=board.is_host, model_name=model_name, version=__version__)
    return files


def app_and_board_files(board: Board, model_name: str, max_payload: int, digest: int) -> dict[str, str | Path]:
    """The protocol server app, its configuration and the board support: the same for every runtime."""
    files: dict[str, str | Path] = {f"app/{name}": FIRMWARE_DIR / "app" / name for name in APP_FILES}
    files["app/app_config.h"] = app_config(model_name, max_payload, digest)
    for folder in board.source_dirs:
        folder_path = FIRMWARE_DIR / "boards" / folder
        for path in sorted(folder_path.iterdir()) if folder_path.is_dir() else []:
            if path.is_file():
                rel = f"board/{path.name}"
                if rel in files:
                    raise RuntimeError(f"board file {path.name} of {board.name} is defined twice")
                files[rel] = path
    return files


def app_config(model_name: str, max_payload: int, digest: int) -> str:
    return (
        "/* Generated by tinyml-ptq: settings of the protocol server app. */\n"
        "#ifndef TP_APP_CONFIG_H\n#define TP_APP_CONFIG_H\n\n"
        f'#define TP_MODEL_NAME "{model_name}"\n'
        "/* CRC-32 of the .tflite this firmware serves, reported by INFO. */\n"
        f"#define TP_MODEL_DIGEST 0x{digest:08x}u\n"
        "/* Largest request payload accepted (and no reply is longer). */\n"
        f"#define TP_MAX_PAYLOAD {max_payload}u\n\n"
        "#endif /* TP_APP_CONFIG_H */\n"
    )
