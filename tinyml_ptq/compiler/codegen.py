"""Code generation: graph IR + lowered steps + memory plan -> C sources (Jinja2).

Writes `model.c/.h` (weights, arena, `<prefix>_invoke()`) and `model_data.c/.h`
(the `.tflite` bytes as a C array). Everything here is text: the arithmetic was
settled by lowering, the addresses by the planner.
"""

from __future__ import annotations

import posixpath
import string
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from ..core.errors import UserError
from ..core.resources import RUNTIME_DIR, TEMPLATES_DIR
from ..core.version import __version__
from .cnames import c_comment, c_identifier
from .ir import TENSOR_TYPE_CODES, Graph, Tensor
from .lowering import Step, lower_graph
from .planner import MemoryPlan, plan_memory

_CTYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "uint8": "uint8_t", "int64": "int64_t"}


@dataclass
class ModelSources:
    """What code generation produced for one model."""

    prefix: str
    files: dict[str, str]  # file name -> contents
    runtime_sources: list[str]  # kernel .c files (relative to firmware/runtime) the model links
    arena_bytes: int
    live_lower_bound: int
    weights_bytes: int
    op_names: list[str]
    kernels: str = "reference"  # the kernel set: "reference", "dsp" or "helium"
    steps: list[Step] = field(repr=False, default_factory=list)
    plan: MemoryPlan | None = field(repr=False, default=None)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["c_comment"] = c_comment
    env.filters["c_array"] = format_c_array
    return env


def format_c_array(values: np.ndarray | bytes, per_line: int = 16, hex_bytes: bool = False) -> str:
    """Comma-separated initializer text, wrapped, for any integer array."""
    if isinstance(values, (bytes, bytearray)):
        flat = list(values)
    else:
        flat = np.asarray(values).ravel().tolist()
    if hex_bytes:
        items = [f"0x{v:02x}" for v in flat]
    else:
        items = [str(int(v)) if int(v) != -(1 << 31) else "INT32_MIN" for v in flat]
    lines = [", ".join(items[i: i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n    ".join(lines) if lines else "0"


def generate_model_sources(graph: Graph, tflite_bytes: bytes, prefix: str = "model",
                           kernels: str = "reference", external_weights: bool = False) -> ModelSources:
    """kernels: "reference" (portable C), "dsp" (kernels/dsp where one exists; Arm DSP extension) or
    "helium" (kernels/helium, else as dsp; MVE).
    external_weights: the weight arrays go to section .tp_external_weights, which the board's
    linker script places in its external memory."""
    if not graph.inputs or not graph.outputs:  # the C API hands out model_input(0) and model_output(0)
        raise UserError(f"the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                        "generated code needs at least one of each")
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for k, index in enumerate(indices):
            if graph.tensors[index].dtype not in TENSOR_TYPE_CODES:  # model.h names the type by its code
                raise UserError(f"model {role} {k} is {graph.tensors[index].dtype}; the generated C API takes "
                                f"{', '.join(TENSOR_TYPE_CODES)} inputs and outputs")
    prefix = c_identifier(prefix)
    steps = lower_graph(graph, kernels)
    plan = plan_memory(graph, steps)

    const_tensors: dict[int, Tensor] = {}

    def tensor_expr(index: int) -> str:
        tensor = graph.tensors[index]
        ctype = _CTYPES.get(tensor.dtype, "int8_t")
        if tensor.is_constant:
            const_tensors[index] = tensor
            return f"{prefix}_w{index}"
        return f"(({ctype} *)({prefix}_arena + {plan.tensor_offsets[index]}))"

    rendered_steps = []
    for i, step in enumerate(steps):
        inplace = step.inplace if i in plan.inplace_steps else None
        mapping = _Placeholders(
            tensor_expr,
            {"p": f"{prefix}_op{i}_",
             "scratch": f"((void *)({prefix}_arena + {plan.scratch_offsets[i]}))" if i in plan.scratch_offsets
             else "NULL"},
        )

        def fill(text: str) -> str:
            return string.Template(text).substitute(mapping)

        rendered_steps.append({
            "index": i,
            "opcode": step.op.opcode,
            "comment": _step_comment(graph, step) + (" (in place)" if inplace else ""),
            "arrays": [{"ctype": a.ctype, "name": f"{prefix}_op{i}_{a.name}", "size": int(np.asarray(a.values).size),
                        "data": a.values} for a in step.arrays],
            "structs": [{"ctype": s.ctype, "name": f"{prefix}_op{i}_{s.name}", "init": fill(s.initializer)}
                        for s in step.structs + (inplace.structs if inplace else [])],
            "call": fill(inplace.call if inplace and inplace.call else step.call),
        })

    weights = [{"name": f"{prefix}_w{t.index}", "ctype": _CTYPES[t.dtype], "size": t.num_elements,
                "data": t.data, "comment": c_comment(t.name)} for t in sorted(const_tensors.values(), key=lambda t: t.index)]
    weights_bytes = sum(t.nbytes for t in const_tensors.values()) + sum(
        np.asarray(a.values).nbytes for s in steps for a in s.arrays
    )

    def io_info(index: int) -> dict:
        t = graph.tensors[index]
        return {"name": c_comment(t.name), "shape": list(t.shape) or [1], "size": t.nbytes,
                "scale": repr(float(t.scale)) + "f" if t.quantization else "0.0f",
                "zero_point": t.zero_point if t.quantization else 0,
                # model_input()/model_output() hand out raw bytes: an int32 tensor (ARG_MAX) too.
                "type": t.type_code, "ptr": f"((int8_t *){tensor_expr(index)})"}

    context = {
        "version": __version__,
        "prefix": prefix,
        "PREFIX": prefix.upper(),
        "model_name": c_comment(graph.name),
        "headers": sorted({s.header for s in steps if s.header}
                          | {steps[i].inplace.header for i in plan.inplace_steps if steps[i].inplace.header}),
        "steps": rendered_steps,
        "weights": weights,
        "external_weights": external_weights,
        "arena_bytes": max(plan.arena_bytes, 16),
        "inputs": [io_info(i) for i in graph.inputs],
        "outputs": [io_info(i) for i in graph.outputs],
        "model_bytes": tflite_bytes,
        "model_size": len(tflite_bytes),
    }
    env = _environment()
    files = {
        f"{name}": env.get_template(f"{name}.j2").render(context)
        for name in ("model.h", "model.c", "model_data.h", "model_data.c")
    }
    # normpath: a step may link a source of another set ("../reference/x.c"), listed once either way.
    runtime_sources = sorted({posixpath.normpath(f"kernels/{s.kernel_dir}/{src}") for s in steps
                              for src in s.sources}
                             | {f"kernels/{src}" for i in plan.inplace_steps for src in steps[i].inplace.sources})
    return ModelSources(
        prefix=prefix,
        files=files,
        runtime_sources=runtime_sources,
        kernels=kernels,
        arena_bytes=plan.arena_bytes,
        live_lower_bound=plan.live_lower_bound(),
        weights_bytes=weights_bytes,
        op_names=[s.op.opcode for s in steps],
        steps=steps,
        plan=plan,
    )


class _Placeholders(dict):
    """Template mapping that resolves `$tN` on use, so only referenced weights are emitted."""

    def __init__(self, tensor_expr, fixed: dict[str, str]):
        super().__init__(fixed)
        self._tensor_expr = tensor_expr

    def __missing__(self, key: str) -> str:
        if key.startswith("t") and key[1:].isdigit():
            return self._tensor_expr(int(key[1:]))
        raise KeyError(key)


def _step_comment(graph: Graph, step: Step) -> str:
    outs = ", ".join(graph.tensors[t].name for t in step.op.outputs)
    return c_comment(f"{step.op.opcode} -> {outs}", limit=100)


def runtime_files(sources: ModelSources) -> list[Path]:
    """Runtime headers and the kernel sources the model uses, as paths in the toolkit."""
    headers = sorted((RUNTIME_DIR / "include").glob("*.h"))
    return headers + [RUNTIME_DIR / s for s in sources.runtime_sources]
