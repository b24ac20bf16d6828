"""Writing a firmware project folder, whichever runtime generated it (project.py: ours;
tflm_export.py: TFLM's): the protocol app and the board files every project has, the model's
inputs and outputs as project.json describes them, and the folder written atomically. What
later stages read back of it is project_file.py's.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import UserError, shorten
from ..core.fileio import atomic_dir, check_writable
from ..core.resources import FIRMWARE_DIR
from ..target.boards import BOARD_FILE, Board, memory_shortfall, more_memory_hint
from ..target.project_file import PROJECT_FILE
from .ir import Graph

APP_FILES = ("main.c", "protocol.c", "protocol.h", "board.h")
MIN_MAX_PAYLOAD = 1024


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


def max_payload(model_name: str, board: Board, graph: Graph, op_names: list[str]) -> int:
    """Receive buffer size: at least 1 KB, and no reply is ever longer than it."""
    inputs = [graph.tensors[i] for i in graph.inputs]
    outputs = [graph.tensors[i] for i in graph.outputs]
    info = 5 * 4 + 1 + 1 + len(model_name) + 1 + len(board.name) + 4 + 2 + sum(
        2 + 4 * max(len(t.shape), 1) + 12 for t in inputs + outputs)
    names = sum(1 + min(len(n), 255) for n in op_names)
    need = max(MIN_MAX_PAYLOAD, info, 4 + sum(t.nbytes for t in outputs), 4 + 4 * len(op_names), names)
    return (need + 3) // 4 * 4


def app_and_board_files(board: Board, model_name: str, max_payload: int, digest: int) -> dict[str, str | Path]:
    """The protocol server app, its configuration and the board support: the same for every runtime."""
    files: dict[str, str | Path] = {f"app/{name}": FIRMWARE_DIR / "app" / name for name in APP_FILES}
    files["app/app_config.h"] = app_config(model_name, max_payload, digest)
    for folder in board.source_dirs:
        folder_path = FIRMWARE_DIR / "boards" / folder
        for path in sorted(folder_path.iterdir()) if folder_path.is_dir() else []:
            if path.is_file() and path.name != BOARD_FILE:
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


def memory_warning(board: Board, weights_bytes: int, arena_bytes: int, weights_memory: str) -> str | None:
    """Why the model cannot fit `board`, from what generation knows: its weights, arena and the
    stack alone (the code `build` adds only makes it worse); None where they fit."""
    external = weights_memory == "external"
    over = memory_shortfall(board, flash=0 if external else weights_bytes, ram=arena_bytes + board.stack_bytes,
                            external=weights_bytes if external else 0)
    if not over:
        return None
    return (f"model does not fit on {board.name}: its weights ({weights_bytes:,} B), arena ({arena_bytes:,} B) "
            f"and stack ({board.stack_bytes:,} B) alone exceed {' and '.join(over)}, before any code; build will "
            f"refuse it; {more_memory_hint(board, weights_memory)}")
