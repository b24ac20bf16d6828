"""The TFLM route of `generate`: an int8 `.tflite` becomes a TensorFlow Lite Micro project.

Besides our own runtime, `tinyml-ptq generate --runtime tflm` writes a project
that runs the model with TensorFlow Lite Micro itself (the library Arduino,
ESP-IDF, Zephyr and vendor SDKs ship). It serves the same device protocol as
the native firmware: the protocol app (`firmware/app/`) and the board support
are copied in unchanged, and `model/main.cc` implements the `model.h` C API the
app calls on top of a `tflite::MicroInterpreter`.

    DIR/Makefile            builds with arm-none-eabi-g++ given TFLM_DIR
    DIR/tflm_mve.mk         on MVE cores: per-object flags for TFLM's Makefile (an assembler bug)
    DIR/project.json        what was generated (runtime "tflm")
    DIR/app/, DIR/board/    the protocol server app and board support, as for native
    DIR/model/main.cc       TFLM set-up (resolver, interpreter) + the model.h API; main()
    DIR/model/model.h       the C API of the native generated model.h
    DIR/model/model_data.cc/.h   the .tflite as g_<name>_model_data[] (generate_cc_arrays.py naming)
    DIR/model/model_settings.h   shapes, scales, zero points, k<Name>TensorArenaSize

TFLM's C++ sources are not part of the toolkit: the user supplies a TFLM tree
(TFLM_DIR). What is checked here: every operator maps to exactly one
`MicroMutableOpResolver::Add...()` (names as in TFLM's
micro_mutable_op_resolver.h), and the arena size is derived from the model for
each kernel set (tflm_arena.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from ..core.errors import UserError
from ..core.resources import TEMPLATES_DIR
from ..core.version import __version__
from ..target.boards import DEFAULT_BOARD, KERNEL_SETS, Board, as_board, check_weights_memory, resolve_kernels
from .cnames import c_comment, c_identifier, c_string
from .codegen import format_c_array
from .ir import Graph
from .tflite_reader import has_variable_tensors, read_tflite
from .tflm_arena import ABIS, ArenaEstimate, estimate_tflm_arena

# Builtin operator -> MicroMutableOpResolver method, from TFLM's
# tensorflow/lite/micro/micro_mutable_op_resolver.h (2025). Every builtin TFLM
# registers is listed, int8 or not: the table answers "does TFLM have it".
TFLM_BUILTIN_OPS: dict[str, str] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax", "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul", "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs", "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast", "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup", "ELU": "AddElu", "EQUAL": "AddEqual", "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor", "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D", "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic", "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D", "MIRROR_PAD": "AddMirrorPad", "MEAN": "AddMean",
    "MINIMUM": "AddMinimum", "MUL": "AddMul", "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack",
    "PAD": "AddPad", "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable", "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin",
    "RELU": "AddRelu", "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2", "ROUND": "AddRound",
    "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax", "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQUEEZE": "AddSqueeze", "SQRT": "AddSqrt",
    "SQUARE": "AddSquare", "SQUARED_DIFFERENCE": "AddSquaredDifference", "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf", "TANH": "AddTanh", "TRANSPOSE_CONV": "AddTransposeConv",
    "TRANSPOSE": "AddTranspose", "UNPACK": "AddUnpack",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}

# TFLM's BUILD_TYPE the generated Makefile builds by default (templates/tflm/Makefile.j2 says why).
TFLM_BUILD_TYPE = "release_with_logs"
# On MVE cores: per-object flags TFLM's Makefile reads after its own (the template says why).
TFLM_MVE_MAKEFILE = "tflm_mve.mk"

# Custom operators TFLM registers, by the custom code a model must carry.
TFLM_CUSTOM_OPS: dict[str, str] = {
    "TFLite_Detection_PostProcess": "AddDetectionPostprocess", "CIRCULAR_BUFFER": "AddCircularBuffer",
    "SignalDelay": "AddDelay", "SignalEnergy": "AddEnergy", "SignalFftAutoScale": "AddFftAutoScale",
    "SignalFilterBank": "AddFilterBank", "SignalFilterBankLog": "AddFilterBankLog",
    "SignalFilterBankSquareRoot": "AddFilterBankSquareRoot",
    "SignalFilterBankSpectralSubtraction": "AddFilterBankSpectralSubtraction", "SignalFramer": "AddFramer",
    "SignalIrfft": "AddIrfft", "SignalOverlapAdd": "AddOverlapAdd", "SignalPCAN": "AddPCAN",
    "SignalRfft": "AddRfft", "SignalStacker": "AddStacker", "SignalWindow": "AddWindow",
}

# Operators TFLM has only under another name: what to do about them.
_RENAMED = {
    "SELECT": "TFLM implements SELECT_V2 only (AddSelectV2); convert with tf.where so the model uses SELECT_V2",
    "REDUCE_ANY": "TFLM has no REDUCE_ANY; REDUCE_MAX on the boolean as int8 is the usual rewrite",
    "RELU_N1_TO_1": "TFLM has no RELU_N1_TO_1; clip with MINIMUM/MAXIMUM instead",
    "RELU_0_TO_1": "TFLM has no RELU_0_TO_1; clip with MINIMUM/MAXIMUM instead",
    "CUSTOM:Window": "TFLM registers it as custom op 'SignalWindow' (AddWindow)",
    "CUSTOM:Delay": "TFLM registers it as custom op 'SignalDelay' (AddDelay)",
    "CUSTOM:Framer": "TFLM registers it as custom op 'SignalFramer' (AddFramer)",
    "CUSTOM:Energy": "TFLM registers it as custom op 'SignalEnergy' (AddEnergy)",
    "CUSTOM:FilterBank": "TFLM registers it as custom op 'SignalFilterBank' (AddFilterBank)",
    "CUSTOM:Stacker": "TFLM registers it as custom op 'SignalStacker' (AddStacker)",
    "CUSTOM:PCAN": "TFLM registers it as custom op 'SignalPCAN' (AddPCAN)",
}

# --- operators --------------------------------------------------------------

def resolver_calls(graph: Graph) -> list[tuple[str, str]]:
    """(operator, Add method) for each distinct operator, in order of first use.

    Raises UserError naming every operator TFLM lacks or registers under another name.
    """
    calls: list[tuple[str, str]] = []
    problems: list[str] = []
    for opcode in graph.opcodes():
        if opcode.startswith("CUSTOM:"):
            method = TFLM_CUSTOM_OPS.get(opcode[len("CUSTOM:"):])
        else:
            method = TFLM_BUILTIN_OPS.get(opcode)
        if method is not None:
            calls.append((opcode, method))
            continue
        shown = c_string(opcode, limit=64) or "?"
        hint = _RENAMED.get(opcode)
        problems.append(f"{shown} ({hint})" if hint else f"{shown} (not in TFLM's MicroMutableOpResolver)")
    if problems:
        raise UserError("TensorFlow Lite Micro cannot run this model: operator(s) " + "; ".join(problems)
                        + ". Use the native runtime (--runtime native) if it supports them, or change the model")
    return calls


# --- project ----------------------------------------------------------------

@dataclass
class TflmExportResult:
    project_dir: str
    board: str
    model: str
    model_name: str
    symbol: str  # g_<symbol>_model_data
    kernels: str  # TFLM kernel set the Makefile builds by default: "reference" or "cmsis_nn"
    arena_bytes: int  # k<Name>TensorArenaSize of that kernel set
    arena: ArenaEstimate  # its derivation
    op_names: list[str]  # every operator, in execution order
    resolver: list[tuple[str, str]]  # (operator, Add method)
    input_size: int
    output_size: int
    max_payload: int
    files: list[str] = field(default_factory=list)
    does_not_fit: str | None = None  # project_folder.memory_warning; the CLI prints it

    def to_dict(self) -> dict:
        return asdict(self)


def tflm_target_arch(board: Board) -> str:
    """TFLM's cortex_m_generic TARGET_ARCH for the board's CPU flags ('' for the host)."""
    if board.is_host:
        return ""
    cpu = next((f.split("=", 1)[1] for f in board.cpu_flags if f.startswith("-mcpu=")), "cortex-m4")
    hard_fp = "-mfloat-abi=hard" in board.cpu_flags
    if cpu in ("cortex-m4", "cortex-m7") and hard_fp:
        return f"{cpu}+fp"
    return cpu


def _camel(ident: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in ident.split("_") if part) or "Model"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR / "tflm")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["c_comment"] = c_comment
    env.filters["c_array"] = format_c_array
    return env


def _float_literal(x: float) -> str:
    text = repr(float(np.float32(x)))
    return text + ("f" if ("." in text or "e" in text) else ".0f")


def export_tflm_project(model_tflite: str | os.PathLike, out_dir: str | os.PathLike, board: str | Board = DEFAULT_BOARD,
                        name: str | None = None, kernels: str = "auto",
                        weights_memory: str = "internal") -> TflmExportResult:
    """Write a TFLM project for `model_tflite` on `board` into `out_dir` (atomically).

    kernels: TFLM's kernel set the Makefile builds by default, "reference" or "cmsis_nn"
    (OPTIMIZED_KERNEL_DIR=cmsis_nn); "auto" is cmsis_nn on cores with the DSP extension.
    weights_memory "external": the .tflite array goes to the board's external memory.
    """
    # The protocol app, its configuration and the destination rules are the native project's.
    from ..target.project_file import PROJECT_FILE, REFERENCE_MODEL, model_digest, project_json
    from .project_folder import (app_and_board_files, check_destination, check_io, io_meta, max_payload, memory_warning,
                                 write_project)

    board_info = as_board(board)
    kernel_set = resolve_kernels(board_info, kernels, runtime="tflm")
    check_weights_memory(board_info, weights_memory)
    model_path = Path(model_tflite)
    out = Path(out_dir)
    check_destination(out)
    graph = read_tflite(model_path)
    check_io(graph, runtime="tflm")
    calls = resolver_calls(graph)
    data = model_path.read_bytes()
    symbol = c_identifier(name if name is not None else model_path.stem)
    model_name = c_string(name if name is not None else graph.name, limit=64).strip() or "model"
    # model_settings.h sizes the arena for every kernel set the project builds with.
    abi = ABIS["host" if board_info.is_host else "arm"]
    arenas = {k: estimate_tflm_arena(graph, k, dsp=board_info.dsp, abi=abi, mve=board_info.mve)
              for k in KERNEL_SETS["tflm"] if k == "reference" or not board_info.is_host}
    arena = arenas[kernel_set]
    op_names = [c_string(op.opcode, limit=64) or "?" for op in graph.operators]

    def io(index: int) -> dict:
        t = graph.tensors[index]
        return {"name": c_comment(t.name), "shape": [int(d) for d in t.shape] or [1], "size": t.nbytes,
                "scale": _float_literal(t.scale if t.quantization else 0.0),
                "zero_point": t.zero_point if t.quantization else 0, "type": t.type_code}

    inputs = [io(i) for i in graph.inputs]
    outputs = [io(i) for i in graph.outputs]
    payload = max_payload(model_name, board_info, graph, op_names)
    digest = model_digest(data)
    context = {
        "version": __version__, "model_name": c_comment(model_name), "model_file": c_comment(model_path.name),
        "symbol": symbol, "Name": _camel(symbol), "model_bytes": data, "model_size": len(data),
        "calls": calls, "op_names": op_names, "inputs": inputs, "outputs": outputs, "arenas": arenas,
        "board": board_info, "host": board_info.is_host, "target_arch": tflm_target_arch(board_info),
        "tflm_kernels": kernel_set, "optimized_kernel_dir": "" if kernel_set == "reference" else kernel_set,
        "build_type": TFLM_BUILD_TYPE,
        "external_weights": weights_memory == "external",
        # A model with state (an LSTM's) starts each inference from its reset state, as the
        # reference interpreter and the native runtime do.
        "stateful": has_variable_tensors(data),
    }
    env = _environment()
    files: dict[str, str | Path] = {}
    for name_ in ("main.cc", "model.h", "model_data.cc", "model_data.h", "model_settings.h"):
        files[f"model/{name_}"] = env.get_template(f"{name_}.j2").render(context)
    files["Makefile"] = env.get_template("Makefile.j2").render(context)
    if board_info.mve:
        files[TFLM_MVE_MAKEFILE] = env.get_template(f"{TFLM_MVE_MAKEFILE}.j2").render(context)
    files.update(app_and_board_files(board_info, model_name, payload, digest))
    metadata = {
        "generator": f"tinyml-ptq {__version__}",
        "runtime": "tflm",
        "board": board_info.name,
        "kernels": kernel_set,
        "tflm_target_arch": tflm_target_arch(board_info),
        "tflm_build_type": TFLM_BUILD_TYPE,
        **({"tflm_makefile": TFLM_MVE_MAKEFILE} if board_info.mve else {}),
        "model": str(model_path),
        "model_name": model_name,
        "arena_bytes": arena.arena_bytes,
        "arena_estimate": arena.to_dict(),
        "weights_bytes": len(data),
        "weights_memory": weights_memory,
        "op_names": op_names,
        "tflm_resolver": [m for _, m in calls],
        "model_digest": f"0x{digest:08x}",
        **io_meta(graph),
        "max_payload": payload,
        "board_info": board_info.to_dict(),
    }
    files[PROJECT_FILE] = project_json(metadata)
    files[REFERENCE_MODEL] = model_path
    write_project(out, files)
    return TflmExportResult(
        project_dir=str(out), board=board_info.name, model=str(model_path), model_name=model_name,
        symbol=symbol, kernels=kernel_set, arena_bytes=arena.arena_bytes, arena=arena, op_names=op_names, resolver=calls,
        input_size=sum(t["size"] for t in inputs), output_size=sum(t["size"] for t in outputs), max_payload=payload,
        files=sorted(files), does_not_fit=memory_warning(board_info, len(data), arena.arena_bytes, weights_memory),
    )


_ADD_CALL = re.compile(r"resolver\.(Add\w+)\(\)")


def parse_resolver(main_cc: str) -> tuple[int, list[str]]:
    """(N of MicroMutableOpResolver<N>, the Add...() calls) read back from a generated main.cc."""
    match = re.search(r"tflite::MicroMutableOpResolver<(\d+)>", main_cc)
    if match is None:
        raise ValueError("no MicroMutableOpResolver<N> in main.cc")
    return int(match.group(1)), _ADD_CALL.findall(main_cc)
