"""Pure data movement on int8 tensors: TRANSPOSE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V,
PACK, UNPACK, GATHER, DEPTH_TO_SPACE, SPACE_TO_DEPTH, RESIZE_NEAREST_NEIGHBOR,
BATCH_TO_SPACE_ND and SPACE_TO_BATCH_ND; and on int16 tensors (int16x8 models) where TFLite
Micro has the int16 kernel (INT16_OPERATORS below: not GATHER, DEPTH_TO_SPACE, SPACE_TO_DEPTH,
BATCH_TO_SPACE_ND or SPACE_TO_BATCH_ND).

TFLite Micro's reference kernels for these copy values unchanged and do not
compare the input's and output's quantization, so neither do we: bytes move as they
are. Their integer operands (permutations, slice bounds, axes, indices, sizes, block
shapes, crops and paddings) must be constant tensors; they are read here, checked
against the tensor shapes, and turned into constant kernel parameters.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import shorten
from ..ir import Graph, Operator, Tensor
from . import CArray, CStruct, MalformedOperator, Step, constraint, lowers
from .common import CONSTANT_OPERANDS, INT32_OPERANDS, NHWC, is_int16x8, require_int8, require_int16x8
from .concat_pad import concatenation_step

# Operators of this module whose TFLite Micro kernel also takes int16: the same kernels copy
# 2-byte elements (an element size in their params, or sizes in bytes).
INT16_OPERATORS = ("TRANSPOSE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK",
                   "RESIZE_NEAREST_NEIGHBOR")

# tp_strided_copy walks at most this many dimensions (TP_STRIDED_COPY_DIMS).
COPY_DIMS = 6

NONEMPTY_DATA = constraint(
    "TRANSPOSE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "GATHER", "DEPTH_TO_SPACE",
    "SPACE_TO_DEPTH", "RESIZE_NEAREST_NEIGHBOR", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND",
    doc="non-empty input and output tensors")
TRANSPOSE_SLICE_RANK = constraint("TRANSPOSE", "SLICE", doc="an input of at most 5 dimensions (as TFLite Micro)")
STRIDED_SLICE_RANK = constraint("STRIDED_SLICE", doc="an input of at most 4 dimensions (as TFLite Micro)")
IGNORED_SLICE_OPTIONS = constraint(
    "STRIDED_SLICE", doc="ellipsis_mask 0, new_axis_mask 0 and offset false (TFLite Micro ignores these options)")
NONZERO_SLICE_STRIDES = constraint("STRIDED_SLICE", doc="nonzero strides")
POSITIVE_BLOCK_SIZE = constraint("DEPTH_TO_SPACE", "SPACE_TO_DEPTH", doc="block_size of at least 1")
SPACE_BATCH_RANK = constraint("BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND",
                              doc="a rank-3 or rank-4 input (as TFLite Micro)")
SPACE_BATCH_AMOUNTS = constraint("BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND",
                                 doc="block_shape values of at least 1 and no negative crops or paddings")
UNPADDED_OR_ZERO_POINT_0 = constraint(
    "SPACE_TO_BATCH_ND",
    doc="no padding or output zero point 0: TFLite Micro fills the padding with an uninitialized value (0 in a "
        "fresh arena), TFLite with the zero point")


def element_size(graph: Graph, op: Operator, *tensors: Tensor | None) -> int:
    """Bytes per element of a data movement operator's tensors: 2 for an int16x8 operator that
    TFLite Micro runs in int16 (its tensors int16 throughout, zero point 0), else 1 for int8;
    anything else refused by name."""
    if op.opcode in INT16_OPERATORS and any(is_int16x8(t) for t in tensors):
        require_int16x8(graph, op, tensors)
        return 2
    require_int8(graph, op, *tensors)
    return 1


def _operands(graph: Graph, op: Operator, count: int, data: int = 0) -> list[Tensor | None]:
    """The first `count` inputs, None where absent; the int8 data input (number `data`) must be
    there and hold elements."""
    tensors = (graph.input_tensors(op) + [None] * count)[:count]
    if tensors[data] is None:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has no data input (operand {data})")
    if tensors[data].num_elements == 0:
        raise NONEMPTY_DATA.refusal(op, f"has an empty input {shorten(tensors[data].name)!r} "
                                        f"(shape {list(tensors[data].shape)})")
    return tensors


def _output(graph: Graph, op: Operator) -> Tensor:
    if len(op.outputs) != 1:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has {len(op.outputs)} outputs; it takes one")
    return graph.tensors[op.outputs[0]]


def _int_option(op: Operator, name: str, default: int) -> int:
    value = op.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has option {name} = {value!r}; it takes an integer")
    return int(value)


def _constant_ints(op: Operator, tensor: Tensor | None, what: str, dtypes=("int32",)) -> np.ndarray:
    """The values of an integer operand that must be a constant of the model."""
    if tensor is None:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has no {what} operand")
    if not tensor.is_constant:
        raise CONSTANT_OPERANDS.refusal(op, f"has its {what} computed at run time (tensor {shorten(tensor.name)!r})")
    if tensor.dtype not in dtypes:
        raise INT32_OPERANDS.refusal(op, f"has a {tensor.dtype} {what} operand")
    return np.asarray(tensor.data, dtype=np.int64)


def _row_major_strides(shape: tuple[int, ...]) -> list[int]:
    strides = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1):
        strides[k] = strides[k + 1] * int(shape[k + 1])
    return strides


def _check_output_shape(op: Operator, output: Tensor, expected) -> None:
    expected = tuple(int(d) for d in expected)
    if tuple(output.shape) != expected:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) gives shape {list(expected)} but its output tensor "
                                f"{shorten(output.name)!r} has shape {list(output.shape)}; the model is inconsistent")
    if output.num_elements == 0:
        raise NONEMPTY_DATA.refusal(op, f"produces an empty tensor (shape {list(expected)})")


def strided_copy_initializer(op: Operator, offset: int, counts, steps, element_size: int = 1) -> str:
    """tp_strided_copy_params for the view input[offset + sum(i_k * steps[k])], i_k < counts[k],
    walked row-major. Dimensions of extent 1 go, and a dimension merges into the one after it
    when it steps over exactly that one's whole extent, so most views end short and contiguous."""
    dims: list[list[int]] = []
    for count, step in zip(counts, steps):
        count, step = int(count), int(step)
        if count == 1:
            continue
        if dims and dims[-1][1] == step * count:
            dims[-1] = [dims[-1][0] * count, step]
        else:
            dims.append([count, step])
    if not dims:
        dims = [[1, 1]]
    # The rank limits (TRANSPOSE and SLICE 5, the rest 4, DEPTH_TO_SPACE's 6-D view) keep every walk within it.
    assert len(dims) <= COPY_DIMS, f"{op.opcode} (node {op.index}) needs a {len(dims)}-dimensional walk"
    dims = [[1, 0]] * (COPY_DIMS - len(dims)) + dims
    counts_text = ", ".join(str(c) for c, _ in dims)
    steps_text = ", ".join(str(s) for _, s in dims)
    return f"{{{int(offset)}, {{{counts_text}}}, {{{steps_text}}}, {element_size}}}"


def _strided_copy_step(op: Operator, inp: Tensor, output: Tensor, offset: int, counts, steps,
                       element_size: int = 1) -> Step:
    return Step(
        op=op,
        header="tp_data_movement.h",
        sources=("tp_strided_copy.c",),
        structs=[CStruct("tp_strided_copy_params", "params",
                         strided_copy_initializer(op, offset, counts, steps, element_size))],
        call=f"tp_strided_copy(&${{p}}params, $t{inp.index}, $t{output.index});",
    )


@lowers("TRANSPOSE")
def lower_transpose(graph: Graph, op: Operator) -> Step:
    inp, perm_tensor = _operands(graph, op, 2)
    output = _output(graph, op)
    item_size = element_size(graph, op, inp, output)
    perm = [int(p) for p in _constant_ints(op, perm_tensor, "permutation").ravel()]
    rank = len(inp.shape)
    if rank > 5:
        raise TRANSPOSE_SLICE_RANK.refusal(op, f"transposes a rank-{rank} tensor")
    if sorted(perm) != list(range(rank)):
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has permutation {perm}, which is not a permutation "
                                f"of the {rank} input dimensions")
    _check_output_shape(op, output, [inp.shape[p] for p in perm])
    strides = _row_major_strides(inp.shape)
    return _strided_copy_step(op, inp, output, 0, [inp.shape[p] for p in perm], [strides[p] for p in perm], item_size)


def _clamp(value: int, low: int, high: int) -> int:
    return high if value > high else low if value < low else value


def _loop_count(start: int, stop: int, stride: int) -> int:
    """Iterations of `for (i = start; stride > 0 ? i < stop : i > stop; i += stride)`."""
    if stride > 0:
        return max(0, -(-(stop - start) // stride))
    return max(0, -(-(start - stop) // -stride))


@lowers("STRIDED_SLICE")
def lower_strided_slice(graph: Graph, op: Operator) -> Step:
    inp, begin_t, end_t, strides_t = _operands(graph, op, 4)
    output = _output(graph, op)
    item_size = element_size(graph, op, inp, output)
    rank = len(inp.shape)
    if rank > 4:
        raise STRIDED_SLICE_RANK.refusal(op, f"slices a rank-{rank} tensor")
    options = op.options
    for mask in ("ellipsis_mask", "new_axis_mask"):
        if _int_option(op, mask, 0):
            raise IGNORED_SLICE_OPTIONS.refusal(op, f"has {mask} {options[mask]}")
    if options.get("offset", False):
        raise IGNORED_SLICE_OPTIONS.refusal(op, "has offset = true (end relative to begin)")
    bounds = {}
    for name, tensor in (("begin", begin_t), ("end", end_t), ("strides", strides_t)):
        values = _constant_ints(op, tensor, name).ravel()
        if values.size != rank:
            raise MalformedOperator(f"{op.opcode} (node {op.index}) has {values.size} {name} values for a "
                                    f"rank-{rank} input")
        bounds[name] = [int(v) for v in values]
    begin_mask = _int_option(op, "begin_mask", 0)
    end_mask = _int_option(op, "end_mask", 0)
    shrink_mask = _int_option(op, "shrink_axis_mask", 0)
    strides_in = _row_major_strides(inp.shape)
    offset, counts, steps, kept = 0, [], [], []
    for axis in range(rank):
        size, stride = int(inp.shape[axis]), bounds["strides"][axis]
        if stride == 0:
            raise NONZERO_SLICE_STRIDES.refusal(op, f"has stride 0 on axis {axis}")
        # TFLite's StridedSliceStartForAxis / StridedSliceEndForAxis: negative indices count
        # from the end, then clamp to the range the direction can reach, then the masks.
        start = bounds["begin"][axis]
        start += size if start < 0 else 0
        start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
        if begin_mask >> axis & 1:
            start = 0 if stride > 0 else size - 1
        if shrink_mask >> axis & 1:
            stop = start if start >= size else start + 1
        else:
            stop = bounds["end"][axis]
            stop += size if stop < 0 else 0
            stop = _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)
            if end_mask >> axis & 1:
                stop = size if stride > 0 else -1
        count = _loop_count(start, stop, stride)
        if count == 0:  # TFLite Micro would then write nothing, leaving its output as it was
            raise NONEMPTY_DATA.refusal(op, f"selects no elements on axis {axis} (begin {bounds['begin']}, "
                                            f"end {bounds['end']}, strides {bounds['strides']})")
        if not shrink_mask >> axis & 1:
            kept.append(count)
        counts.append(count)
        steps.append(stride * strides_in[axis])
        offset += start * strides_in[axis]
    _check_output_shape(op, output, kept)
    return _strided_copy_step(op, inp, output, offset, counts, steps, item_size)


@lowers("SLICE")
def lower_slice(graph: Graph, op: Operator) -> Step:
    inp, begin_t, size_t = _operands(graph, op, 3)
    output = _output(graph, op)
    item_size = element_size(graph, op, inp, output)
    rank = len(inp.shape)
    if rank > 5:
        raise TRANSPOSE_SLICE_RANK.refusal(op, f"slices a rank-{rank} tensor")
    begin = [int(v) for v in _constant_ints(op, begin_t, "begin", ("int32", "int64")).ravel()]
    size = [int(v) for v in _constant_ints(op, size_t, "size", ("int32", "int64")).ravel()]
    if len(begin) != rank or len(size) != rank:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has {len(begin)} begin and {len(size)} size values "
                                f"for a rank-{rank} input")
    # TFLite's Slice: size -1 runs to the end of the axis; nothing is clamped.
    counts = [int(inp.shape[k]) - begin[k] if size[k] == -1 else size[k] for k in range(rank)]
    for k in range(rank):
        if begin[k] < 0 or counts[k] < 0 or begin[k] + counts[k] > inp.shape[k]:
            raise MalformedOperator(f"{op.opcode} (node {op.index}) slices [{begin[k]}, {begin[k] + counts[k]}) out "
                                    f"of axis {k} of extent {inp.shape[k]} (begin {begin}, size {size})")
    _check_output_shape(op, output, counts)
    strides_in = _row_major_strides(inp.shape)
    offset = sum(b * s for b, s in zip(begin, strides_in))
    return _strided_copy_step(op, inp, output, offset, counts, strides_in, item_size)


def _axis(op: Operator, axis: int, rank: int, what: str = "axis") -> int:
    """A possibly negative axis of a rank-`rank` tensor, as a dimension index."""
    resolved = axis + rank if axis < 0 else axis
    if not 0 <= resolved < rank:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has {what} {axis}, outside a rank-{rank} tensor")
    return resolved


def _split_step(op: Operator, inp: Tensor, outputs: list[Tensor], axis: int) -> Step:
    """The input's extent along `axis` handed out to `outputs` in order (SPLIT, SPLIT_V, UNPACK):
    each output takes its block of (extent along the axis) x (inner size) per outer step, in bytes."""
    item_size = 2 if inp.dtype == "int16" else 1  # _require_outputs checked the types
    outer = int(np.prod(inp.shape[:axis], dtype=np.int64))
    copies = [(t.index, t.num_elements // max(outer, 1)) for t in outputs]
    if outer * sum(size for _, size in copies) != inp.num_elements:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) splits {list(inp.shape)} into "
                                f"{[list(t.shape) for t in outputs]}; the model is inconsistent")
    initializer = "{" + ", ".join(f"{{$t{index}, {size * item_size}}}" for index, size in copies) + "}"
    return Step(
        op=op,
        header="tp_data_movement.h",
        sources=("tp_split.c",),
        structs=[CStruct("tp_split_output", f"outputs[{len(copies)}]", initializer)],
        call=f"tp_split($t{inp.index}, {outer}, ${{p}}outputs, {len(copies)});",
    )


def _require_outputs(graph: Graph, op: Operator, inp: Tensor) -> list[Tensor]:
    outputs = graph.output_tensors(op)
    if not outputs:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has no outputs")
    element_size(graph, op, inp, *outputs)
    for t in outputs:
        if t.num_elements == 0:
            raise NONEMPTY_DATA.refusal(op, f"has an empty output {shorten(t.name)!r} (shape {list(t.shape)})")
    return outputs


@lowers("SPLIT")
def lower_split(graph: Graph, op: Operator) -> Step:
    axis_t, inp = _operands(graph, op, 2, data=1)  # SPLIT takes the axis first
    outputs = _require_outputs(graph, op, inp)
    axis_values = _constant_ints(op, axis_t, "axis").ravel()
    if axis_values.size != 1:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has {axis_values.size} axis values; it takes one")
    rank = len(inp.shape)
    axis = _axis(op, int(axis_values[0]), rank)
    count = len(outputs)
    if inp.shape[axis] % count:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) splits extent {inp.shape[axis]} of axis {axis} "
                                f"into {count} equal parts")
    piece = list(inp.shape)
    piece[axis] //= count
    for t in outputs:
        _check_output_shape(op, t, piece)
    return _split_step(op, inp, outputs, axis)


@lowers("SPLIT_V")
def lower_split_v(graph: Graph, op: Operator) -> Step:
    inp, sizes_t, axis_t = _operands(graph, op, 3)
    outputs = _require_outputs(graph, op, inp)
    axis_values = _constant_ints(op, axis_t, "axis").ravel()
    if axis_values.size != 1:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has {axis_values.size} axis values; it takes one")
    rank = len(inp.shape)
    axis = _axis(op, int(axis_values[0]), rank)
    for t in outputs:
        if len(t.shape) != rank:
            raise MalformedOperator(f"{op.opcode} (node {op.index}) has output {shorten(t.name)!r} of shape "
                                    f"{list(t.shape)} for a rank-{rank} input")
        piece = list(inp.shape)
        piece[axis] = t.shape[axis]
        _check_output_shape(op, t, piece)
    # TFLite Micro takes the pieces' extents from the output shapes and never reads size_splits;
    # where it is a constant (with at most one -1, the rest of the axis) it must agree.
    extents = [int(t.shape[axis]) for t in outputs]
    if sum(extents) != inp.shape[axis]:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) outputs {[list(t.shape) for t in outputs]} do not "
                                f"fill axis {axis} of {list(inp.shape)}")
    if sizes_t is not None and sizes_t.is_constant:
        sizes = [int(v) for v in np.asarray(sizes_t.data).ravel()]
        if sizes.count(-1) == 1:
            sizes[sizes.index(-1)] = int(inp.shape[axis]) - (sum(sizes) + 1)
        if sizes != extents:
            raise MalformedOperator(f"{op.opcode} (node {op.index}) has size_splits {sizes} but outputs "
                                    f"{[list(t.shape) for t in outputs]}; the model is inconsistent")
    return _split_step(op, inp, outputs, axis)


@lowers("UNPACK")
def lower_unpack(graph: Graph, op: Operator) -> Step:
    inp = _operands(graph, op, 1)[0]
    outputs = _require_outputs(graph, op, inp)
    rank = len(inp.shape)
    axis = _axis(op, _int_option(op, "axis", 0), rank)
    num = _int_option(op, "num", len(outputs))
    if num != len(outputs) or inp.shape[axis] != num:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) unpacks axis {axis} of {list(inp.shape)} into {num} "
                                f"values but has {len(outputs)} outputs; the model is inconsistent")
    for t in outputs:
        _check_output_shape(op, t, inp.shape[:axis] + inp.shape[axis + 1:])
    return _split_step(op, inp, outputs, axis)


@lowers("PACK")
def lower_pack(graph: Graph, op: Operator) -> Step:
    inputs = graph.input_tensors(op)
    if not inputs or any(t is None for t in inputs):
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has absent inputs {op.inputs}")
    for t in inputs:
        if t.num_elements == 0:
            raise NONEMPTY_DATA.refusal(op, f"has an empty input {shorten(t.name)!r} (shape {list(t.shape)})")
    output = _output(graph, op)
    item_size = element_size(graph, op, *inputs, output)
    rank = len(output.shape)
    axis = _axis(op, _int_option(op, "axis", 0), rank)
    count = _int_option(op, "values_count", len(inputs))
    if count != len(inputs) or any(t.shape != inputs[0].shape for t in inputs):
        raise MalformedOperator(f"{op.opcode} (node {op.index}) packs {count} values from inputs "
                                f"{[list(t.shape) for t in inputs]}; the model is inconsistent")
    shape = inputs[0].shape
    _check_output_shape(op, output, shape[:axis] + (count,) + shape[axis:])
    # Stacking is concatenation of blocks of (inner size) per outer step, in input order.
    outer = int(np.prod(output.shape[:axis], dtype=np.int64))
    copy_size = inputs[0].num_elements // outer
    return concatenation_step(op, [(t.index, copy_size) for t in inputs], outer, output.index, item_size)


@lowers("GATHER")
def lower_gather(graph: Graph, op: Operator) -> Step:
    inp, coords_t = _operands(graph, op, 2)
    output = _output(graph, op)
    require_int8(graph, op, inp, output)
    coords = _constant_ints(op, coords_t, "indices")
    rank, coords_rank = len(inp.shape), len(coords_t.shape)
    axis = _axis(op, _int_option(op, "axis", 0), rank)
    batch_dims = _int_option(op, "batch_dims", 0)
    batch_dims += coords_rank if batch_dims < 0 else 0
    if not 0 <= batch_dims <= min(axis, coords_rank) or batch_dims >= rank:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has batch_dims {op.options.get('batch_dims', 0)} for "
                                f"axis {axis}, a rank-{rank} input and rank-{coords_rank} indices")
    if tuple(inp.shape[:batch_dims]) != tuple(coords_t.shape[:batch_dims]):
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has batch dimensions {list(inp.shape[:batch_dims])} "
                                f"in the input but {list(coords_t.shape[:batch_dims])} in the indices")
    axis_size = int(inp.shape[axis])
    if coords.size and (coords.min() < 0 or coords.max() >= axis_size):
        bad = int(coords[(coords < 0) | (coords >= axis_size)].ravel()[0])
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has index {bad} outside axis {axis} of extent "
                                f"{axis_size}; TFLite Micro does not check indices")
    _check_output_shape(op, output, inp.shape[:axis] + coords_t.shape[batch_dims:] + inp.shape[axis + 1:])

    def size(dims) -> int:
        return int(np.prod(dims, dtype=np.int64))

    params = (size(inp.shape[:batch_dims]), size(inp.shape[batch_dims:axis]), axis_size,
              size(coords_t.shape[batch_dims:]), size(inp.shape[axis + 1:]))
    return Step(
        op=op,
        header="tp_data_movement.h",
        sources=("tp_gather_s8.c",),
        arrays=[CArray("coords", "int32_t", coords.astype(np.int32).ravel())],
        structs=[CStruct("tp_gather_params", "params", "{%d, %d, %d, %d, %d}" % params)],
        call=f"tp_gather_s8(&${{p}}params, ${{p}}coords, $t{inp.index}, $t{output.index});",
    )


def _block_size(graph: Graph, op: Operator, inp: Tensor, output: Tensor) -> int:
    require_int8(graph, op, inp, output)
    if len(inp.shape) != 4:
        raise NHWC.refusal(op, f"has a rank-{len(inp.shape)} input")
    block = _int_option(op, "block_size", 0)
    if block < 1:
        raise POSITIVE_BLOCK_SIZE.refusal(op, f"has block_size {block}")
    return block


@lowers("DEPTH_TO_SPACE")
def lower_depth_to_space(graph: Graph, op: Operator) -> Step:
    inp = _operands(graph, op, 1)[0]
    output = _output(graph, op)
    block = _block_size(graph, op, inp, output)
    n, h, w, c = (int(d) for d in inp.shape)
    if c % (block * block):
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has {c} input channels, not a multiple of "
                                f"block_size {block} squared")
    depth = c // (block * block)
    _check_output_shape(op, output, (n, h * block, w * block, depth))
    # Output (n, h, by, w, bx, d) reads input (n, h, w, (by * block + bx) * depth + d).
    counts = (n, h, block, w, block, depth)
    steps = (h * w * c, w * c, block * depth, c, depth, 1)
    return _strided_copy_step(op, inp, output, 0, counts, steps)


@lowers("SPACE_TO_DEPTH")
def lower_space_to_depth(graph: Graph, op: Operator) -> Step:
    inp = _operands(graph, op, 1)[0]
    output = _output(graph, op)
    block = _block_size(graph, op, inp, output)
    n, h, w, c = (int(d) for d in inp.shape)
    if h % block or w % block:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has input {h}x{w}, not a multiple of "
                                f"block_size {block}")
    _check_output_shape(op, output, (n, h // block, w // block, c * block * block))
    # Output (n, oh, ow, by, bx, d) reads input (n, oh * block + by, ow * block + bx, d).
    counts = (n, h // block, w // block, block, block, c)
    steps = (h * w * c, block * w * c, block * c, w * c, c, 1)
    return _strided_copy_step(op, inp, output, 0, counts, steps)


def nearest_neighbor_sources(in_size: int, out_size: int, align_corners: bool,
                             half_pixel_centers: bool) -> np.ndarray:
    """For each output index, the input index TFLite's GetNearestNeighbor picks, in its float32
    arithmetic: scale in float32, (index + offset) * scale in float32, then std::round (half away
    from zero) with align_corners or std::floor without, capped at the last input index."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5 if half_pixel_centers else 0.0)
    values = (np.arange(out_size, dtype=np.float32) + offset) * scale  # float32 throughout
    exact = values.astype(np.float64)  # float32 values in doubles: adding 0.5 below is exact
    if align_corners:
        index = np.sign(exact) * np.floor(np.abs(exact) + 0.5)
    else:
        index = np.floor(exact)
    index = np.minimum(index.astype(np.int64), in_size - 1)
    return np.maximum(index, 0) if half_pixel_centers else index


@lowers("RESIZE_NEAREST_NEIGHBOR")
def lower_resize_nearest_neighbor(graph: Graph, op: Operator) -> Step:
    inp, size_t = _operands(graph, op, 2)
    output = _output(graph, op)
    item_size = element_size(graph, op, inp, output)
    if len(inp.shape) != 4:
        raise NHWC.refusal(op, f"has a rank-{len(inp.shape)} input")
    size = [int(v) for v in _constant_ints(op, size_t, "size").ravel()]
    if len(size) != 2 or min(size) < 1:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has size {size}; it takes [height, width], "
                                "both at least 1")
    n, h, w, c = (int(d) for d in inp.shape)
    _check_output_shape(op, output, (n, size[0], size[1], c))
    align = bool(op.options.get("align_corners", False))
    half = bool(op.options.get("half_pixel_centers", False))
    rows = nearest_neighbor_sources(h, size[0], align, half) * (w * c)
    cols = nearest_neighbor_sources(w, size[1], align, half) * c
    return Step(
        op=op,
        header="tp_data_movement.h",
        sources=("tp_resize_nearest_neighbor.c",),
        arrays=[CArray("rows", "int32_t", rows.astype(np.int32)), CArray("cols", "int32_t", cols.astype(np.int32))],
        structs=[CStruct("tp_resize_nearest_params", "params",
                         "{{%d, %d, %d, %d}, %d, %d, %d}" % (n, h, w, c, size[0], size[1], item_size))],
        call=f"tp_resize_nearest_neighbor(&${{p}}params, ${{p}}rows, ${{p}}cols, $t{inp.index}, $t{output.index});",
    )


def _space_batch_operands(graph: Graph, op: Operator, what: str):
    """Input, output, block shape and crops/paddings of BATCH_TO_SPACE_ND / SPACE_TO_BATCH_ND,
    as NHWC: a rank-3 NHC tensor is N, H, 1, C with a block width of 1 and nothing cropped
    or padded along W, as TFLite's kernels extend it."""
    inp, block_t, amounts_t = _operands(graph, op, 3)
    output = _output(graph, op)
    require_int8(graph, op, inp, output)
    rank = len(inp.shape)
    if rank not in (3, 4):
        raise SPACE_BATCH_RANK.refusal(op, f"has a rank-{rank} input")
    if len(output.shape) != rank:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) maps a rank-{rank} input to rank "
                                f"{len(output.shape)}; the model is inconsistent")
    spatial = rank - 2
    block = [int(v) for v in _constant_ints(op, block_t, "block_shape").ravel()]
    amounts = _constant_ints(op, amounts_t, what)
    if len(block) != spatial or amounts.size != 2 * spatial:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has block_shape {block} and {what} "
                                f"{amounts.tolist()} for {spatial} spatial dimensions")
    amounts = [[int(a) for a in pair] for pair in amounts.reshape(spatial, 2)]
    if min(block) < 1 or min(min(pair) for pair in amounts) < 0:
        raise SPACE_BATCH_AMOUNTS.refusal(op, f"has block_shape {block} and {what} {amounts}")
    if spatial == 1:
        block, amounts = block + [1], amounts + [[0, 0]]
    in_dims = (inp.shape[0], inp.shape[1], inp.shape[2] if rank == 4 else 1, inp.shape[-1])
    return inp, output, [int(d) for d in in_dims], block, amounts


@lowers("BATCH_TO_SPACE_ND")
def lower_batch_to_space_nd(graph: Graph, op: Operator) -> Step:
    inp, output, (n, h, w, c), block, crops = _space_batch_operands(graph, op, "crops")
    blocks = block[0] * block[1]
    if n % blocks:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has input batch {n}, not a multiple of the block "
                                f"size {block[0]}x{block[1]}")
    out_dims = [n // blocks, h * block[0] - sum(crops[0]), w * block[1] - sum(crops[1]), c]
    if min(out_dims) < 1:
        raise NONEMPTY_DATA.refusal(op, f"crops {crops} leave nothing of {h * block[0]}x{w * block[1]}")
    _check_output_shape(op, output, out_dims if len(output.shape) == 4 else [out_dims[0], out_dims[1], c])
    return Step(
        op=op,
        header="tp_data_movement.h",
        sources=("tp_batch_to_space_nd_s8.c",),
        structs=[CStruct("tp_batch_to_space_params", "params",
                         "{{%d, %d, %d, %d}, {%d, %d, %d, %d}, {%d, %d}, {%d, %d}}"
                         % (n, h, w, c, *out_dims, block[0], block[1], crops[0][0], crops[1][0]))],
        call=f"tp_batch_to_space_nd_s8(&${{p}}params, $t{inp.index}, $t{output.index});",
    )


@lowers("SPACE_TO_BATCH_ND")
def lower_space_to_batch_nd(graph: Graph, op: Operator) -> Step:
    inp, output, (n, h, w, c), block, pads = _space_batch_operands(graph, op, "paddings")
    padded = (h + sum(pads[0]), w + sum(pads[1]))
    if padded[0] % block[0] or padded[1] % block[1]:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) pads {h}x{w} to {padded[0]}x{padded[1]}, not a "
                                f"multiple of the block {block[0]}x{block[1]}")
    out_dims = [n * block[0] * block[1], padded[0] // block[0], padded[1] // block[1], c]
    _check_output_shape(op, output, out_dims if len(output.shape) == 4 else [out_dims[0], out_dims[1], c])
    if any(any(pair) for pair in pads) and output.zero_point != 0:
        # TFLite fills with the zero point; TFLite Micro with SpaceToBatchParams.output_offset,
        # which it never sets (arena memory, zero only in a fresh arena).
        raise UNPADDED_OR_ZERO_POINT_0.refusal(op, f"pads with paddings {pads} and output zero point "
                                                   f"{output.zero_point}")
    return Step(
        op=op,
        header="tp_data_movement.h",
        sources=("tp_space_to_batch_nd_s8.c",),
        structs=[CStruct("tp_space_to_batch_params", "params",
                         "{{%d, %d, %d, %d}, {%d, %d, %d, %d}, {%d, %d}, {%d, %d}, 0}"
                         % (n, h, w, c, *out_dims, block[0], block[1], pads[0][0], pads[1][0]))],
        call=f"tp_space_to_batch_nd_s8(&${{p}}params, $t{inp.index}, $t{output.index});",
    )
