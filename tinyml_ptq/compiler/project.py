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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jinja2

from ..core.errors import UserError
from ..core.resources import TEMPLATES_DIR
from ..core.version import __version__
from ..target.boards import DEFAULT_BOARD, Board, as_board, check_weights_memory, resolve_kernels
from ..target.project_file import PROJECT_FILE, REFERENCE_MODEL, model_digest, project_json
from .cnames import c_string
from .codegen import ModelSources, generate_model_sources, runtime_files
from .ir import Graph
from .lowering import UnsupportedOperator
from .project_folder import (app_and_board_files, check_destination, check_io, io_meta, max_payload, memory_warning,
                             write_project)
from .tflite_reader import read_tflite


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
    does_not_fit: str | None = None  # project_folder.memory_warning; the CLI prints it

    def to_dict(self) -> dict:
        return asdict(self)


RUNTIMES = ("native", "tflm")


def generate(model_tflite: str | os.PathLike, out_dir: str | os.PathLike, board: str | Board = DEFAULT_BOARD,
             name: str | None = None, runtime: str = "native", kernels: str = "auto",
             weights_memory: str = "internal") -> GenerateResult:
    """Write a firmware project for `model_tflite` on `board` into `out_dir` (atomically).

    runtime "native" generates C for our int8 runtime; "tflm" a TensorFlow Lite
    Micro project serving the same protocol (tinyml_ptq.compiler.tflm_export). kernels: the
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
    board_info = as_board(board)
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
        does_not_fit=memory_warning(board_info, sources.weights_bytes, sources.arena_bytes, weights_memory),
    )


def _tflm_hint(graph: Graph) -> str:
    """Where TensorFlow Lite Micro registers every operator of the model, say that its route can try."""
    from .tflm_export import resolver_calls

    try:
        resolver_calls(graph)
    except UserError:
        return ""
    return ("; TensorFlow Lite Micro has a kernel for every operator of this model: "
            "--runtime tflm (with --tflm-dir) builds the firmware on TFLM instead")


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


