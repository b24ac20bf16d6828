"""The TensorFlow Lite Micro tensor arena of a model, derived (arena_measure.py measures it
on the device).

Derived (`estimate_tflm_arena`): `AllocateTensors()` is replayed allocation by
allocation, as TFLM (commit 90b983c2b) makes them in its one arena
(SingleArenaBufferAllocator: persistent buffers from the tail down, the
scratch-request list, temporaries and finally the memory plan from the head up):

    MicroInterpreter()  SingleArenaBufferAllocator, GreedyMemoryPlanner, MicroAllocator
    StartModelAllocation  MicroBuiltinDataAllocator, SubgraphAllocations, one TfLiteEvalTensor
                        per tensor, one NodeAndRegistration per operator; head: room for
                        kMaxScratchBuffersPerOp ScratchBufferRequests
    parsing             each operator's builtin options (TfLite*Params)
    Init()              each kernel's OpData
    Prepare()           per operator: temporary TfLiteTensors (with their quantization
                        arrays) for the tensors the kernel looks at, persistent per-channel
                        multipliers and shifts, scratch-buffer requests (CMSIS-NN: the sizes
                        its arm_*_get_buffer_size() functions return); temporaries are
                        released after each operator
    planning            ScratchBufferHandles; temporaries: one AllocationInfo per tensor and
                        scratch buffer, and 40 B per planned buffer of GreedyMemoryPlanner
                        scratch; then the head becomes the greedy plan of the activations
                        and scratch buffers
    inputs, outputs     persistent TfLiteTensors (with quantization) and their pointer arrays

The arena TFLM needs is the largest head + tail over all those steps: Prepare()
and the planner borrow memory they give back, which is why arena_used_bytes()
(plan + persistent, once allocation is done) is not a safe size. Struct sizes
are those of the target's ABI, read from TFLM's headers and kernels (`ABIS`).
Kernels are replayed for int8 activations; other operators get a generic
estimate and are named in `assumed_ops`. Outside the replay: variable tensors
and offline-planned offsets (the IR keeps neither), which int8 CNNs do not use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from ..target.boards import KERNEL_SETS
from .ir import Graph, Operator, Tensor

ARENA_ALIGNMENT = 16  # MicroArenaBufferAlignment(): AllocatePersistentBuffer() from kernels, planned buffers
MAX_SCRATCH_BUFFERS_PER_OP = 12  # kMaxScratchBuffersPerOp: requests the head holds room for
PLANNER_BYTES_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size(): 4 int arrays + BufferRequirements
# A tensor arena placed without alignas(16) loses up to 15 bytes to MicroAllocator aligning
# its start: the one allowance on top of the replay.
SAFETY_MARGIN = ARENA_ALIGNMENT


@dataclass(frozen=True)
class Abi:
    """sizeof and alignof of the TFLM structures the arena holds, on one target ABI."""

    name: str
    pointer: int
    structs: dict[str, tuple[int, int]]  # name -> (sizeof, alignof)

    def size(self, name: str) -> int:
        return self.structs[name][0]

    def align(self, name: str) -> int:
        return self.structs[name][1]


# sizeof/alignof of TFLM's structs as its headers and kernels declare them, compiled with
# TFLM's defines (TF_LITE_STATIC_MEMORY, NDEBUG) by arm-none-eabi-g++: 4-byte pointers and,
# under the AAPCS, enums only as wide as their values (TfLiteTensor: quantization type and
# pointer, scale and zero point, data and dims pointers, bytes, two 1-byte enums and a bool
# = 32 B). Kernel OpData structs are named <file>:<struct>; cmsis_nn/ wraps the reference
# OpData with its buffer indices.
ARM_EABI = Abi("arm-none-eabi (32-bit)", 4, {
    "SingleArenaBufferAllocator": (36, 4), "GreedyMemoryPlanner": (44, 4), "MicroAllocator": (36, 4),
    "MicroBuiltinDataAllocator": (8, 4), "SubgraphAllocations": (8, 4), "TfLiteEvalTensor": (12, 4),
    "NodeAndRegistration": (32, 4), "TfLiteTensor": (32, 4), "TfLiteAffineQuantization": (12, 4),
    "TfLiteIntArray": (4, 4), "ScratchBufferRequest": (12, 4), "ScratchBufferHandle": (4, 4),
    "AllocationInfo": (24, 4), "size_t": (4, 4),
    "TfLiteConvParams": (28, 4), "TfLiteDepthwiseConvParams": (28, 4), "TfLiteFullyConnectedParams": (5, 1),
    "TfLitePoolParams": (40, 4), "TfLiteReshapeParams": (36, 4), "TfLiteSoftmaxParams": (4, 4),
    "TfLiteAddParams": (2, 1),
    "conv.h:OpDataConv": (56, 4), "fully_connected.h:OpDataFullyConnected": (48, 4),
    "pooling.h:OpDataPooling": (32, 4), "softmax.h:SoftmaxParams": (56, 8), "add.h:OpDataAdd": (60, 4),
    "cmsis_nn/conv.cc:OpData": (60, 4), "cmsis_nn/depthwise_conv.cc:OpData": (60, 4),
    "cmsis_nn/fully_connected.cc:OpData": (72, 4), "cmsis_nn/pooling.cc:OpData": (36, 4),
    "cmsis_nn/softmax.cc:CMSISNNSoftmaxParams": (64, 8), "cmsis_nn/add.cc:OpData": (60, 4),
})

# The host board's native build (x86-64 or AArch64 Linux: 8-byte pointers, int-sized enums).
HOST_LP64 = Abi("host LP64 (64-bit)", 8, {
    "SingleArenaBufferAllocator": (72, 8), "GreedyMemoryPlanner": (72, 8), "MicroAllocator": (72, 8),
    "MicroBuiltinDataAllocator": (16, 8), "SubgraphAllocations": (16, 8), "TfLiteEvalTensor": (24, 8),
    "NodeAndRegistration": (64, 8), "TfLiteTensor": (64, 8), "TfLiteAffineQuantization": (24, 8),
    "TfLiteIntArray": (4, 4), "ScratchBufferRequest": (16, 8), "ScratchBufferHandle": (8, 8),
    "AllocationInfo": (32, 8), "size_t": (8, 8),
    "TfLiteConvParams": (28, 4), "TfLiteDepthwiseConvParams": (28, 4), "TfLiteFullyConnectedParams": (16, 4),
    "TfLitePoolParams": (40, 4), "TfLiteReshapeParams": (36, 4), "TfLiteSoftmaxParams": (4, 4),
    "TfLiteAddParams": (8, 4),
    "conv.h:OpDataConv": (72, 8), "fully_connected.h:OpDataFullyConnected": (64, 8),
    "pooling.h:OpDataPooling": (32, 4), "softmax.h:SoftmaxParams": (80, 8), "add.h:OpDataAdd": (60, 4),
})

ABIS = {"arm": ARM_EABI, "host": HOST_LP64}

# An operator without a recipe below (or with other than int8 activations): its kernel's
# allocations are a generic estimate, not derived; measure_tflm_arena() tells.
UNKNOWN_BUILTIN_DATA = 64  # above every TfLite*Params (the largest hold an int[8] shape: 36 B)
UNKNOWN_OP_DATA = 128  # OpData of the kernel's Init()


@dataclass
class ArenaEstimate:
    """The arena TFLM needs for one model, kernel set and target, by component (bytes).

    The tail components and the plan are what stays after AllocateTensors()
    (together: `steady`, what arena_used_bytes() reports); `transient` is what
    Prepare() or the memory planner borrowed on top at the peak (`peak` says where).
    Every tail component includes the alignment padding its allocations caused.
    """

    kernels: str  # "reference" or "cmsis_nn"
    target: str  # ABI, and for CMSIS-NN whether the core has MVE or the DSP extension
    activations: int  # greedy plan of the non-constant tensors (the head)
    kernel_scratch: int  # what the kernels' scratch buffers add to that plan
    interpreter: int  # SingleArenaBufferAllocator, GreedyMemoryPlanner, MicroAllocator, builtin-data allocator
    eval_tensors: int  # SubgraphAllocations + one TfLiteEvalTensor per tensor
    node_registrations: int  # one NodeAndRegistration per operator
    builtin_data: int  # parsed builtin options (TfLite*Params) per operator
    op_data: int  # each kernel's OpData from Init()
    channel_data: int  # Prepare(): per-channel output multipliers and shifts
    scratch_handles: int  # one ScratchBufferHandle per scratch buffer
    io_tensors: int  # persistent TfLiteTensors of the inputs and outputs, quantization, pointer arrays
    steady: int  # sum of the above
    transient: int  # what the peak step needs beyond `steady`: temporaries, the planner's scratch
    peak: str  # the step at which TFLM needs the most
    need: int  # steady + transient rounded up to 16: the smallest arena AllocateTensors() succeeds in
    margin: int  # SAFETY_MARGIN
    arena_bytes: int  # need + margin: k<Name>TensorArenaSize for this kernel set
    assumed_ops: list[str] = field(default_factory=list)  # operators with a generic estimate, not derived

    def to_dict(self) -> dict:
        return asdict(self)


def _align_up(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


# --- memory plan -------------------------------------------------------------

def _plan_buffers(graph: Graph, scratch: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(size, first, last) of every planned buffer, in TFLM's AllocationInfo order.

    Lifetimes are AllocationInfoBuilder's allocation scopes: graph inputs are
    created at 0, operator i creates and uses at i + 1, graph outputs live to the
    end; `scratch` is (operator, bytes) of each scratch request, alive during its
    operator. Constant tensors come from the flatbuffer and are not planned.
    """
    first = [-1] * len(graph.tensors)
    last = [-1] * len(graph.tensors)
    for t in graph.inputs:
        first[t] = last[t] = 0
    for i, op in enumerate(graph.operators):
        scope = i + 1
        for t in op.outputs:
            if first[t] == -1:
                first[t] = scope
        for t in [*op.inputs, *op.outputs]:
            if t >= 0:
                last[t] = scope
    for t in graph.outputs:
        if first[t] == -1:
            first[t] = len(graph.operators)
        last[t] = len(graph.operators)
    buffers = [(_align_up(t.nbytes, ARENA_ALIGNMENT), first[t.index], last[t.index])
               for t in graph.tensors if not t.is_constant and t.nbytes > 0]
    buffers += [(_align_up(nbytes, ARENA_ALIGNMENT), op + 1, op + 1) for op, nbytes in scratch]
    return buffers


def _greedy_plan(buffers: list[tuple[int, int, int]]) -> int:
    """Head size of GreedyMemoryPlanner's plan of `buffers` (size, first, last).

    Largest first (equal sizes: the later-added buffer first, as TFLM's stable sort
    of the reversed list leaves them), each at the lowest offset that overlaps no
    placed buffer alive at the same time.
    """
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i][0], -i))
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    end = 0
    for i in order:
        size, b_first, b_last = buffers[i]
        offset = 0
        for p_off, p_size, _, _ in sorted(p for p in placed if p[2] <= b_last and b_first <= p[3]):
            if offset + size <= p_off:
                break
            offset = max(offset, p_off + p_size)
        placed.append((offset, size, b_first, b_last))
        end = max(end, offset + size)
    return end


def plan_activations(graph: Graph) -> int:
    """The arena head TFLM's GreedyMemoryPlanner lays the non-constant tensors out in."""
    return _greedy_plan(_plan_buffers(graph, []))


# --- the arena, replayed ------------------------------------------------------

def _quantized_channels(tensor: Tensor) -> int:
    """Length of the quantization arrays TFLM copies into a TfLiteTensor (0: none).

    TFLM copies them only with both scale and zero point present (the reader fills in
    zero points a file omits: counting them then is an upper bound).
    """
    q = tensor.quantization
    return len(q.scale) if q is not None and len(q.scale) and len(q.zero_point) else 0


class _Replay:
    """TFLM's SingleArenaBufferAllocator, in bytes from the arena's two ends.

    head: end of the head section (scratch requests, later the plan); temp_end: end
    of the temporaries above it; tail: bytes allocated from the end. With the arena
    16-aligned and a multiple of 16 long, alignment from either end is alignment
    of the address, so `need` is exactly the smallest arena every step fits in.
    """

    def __init__(self, graph: Graph, abi: Abi, mve: bool = False):
        self.graph = graph
        self.abi = abi
        self.mve = mve  # CMSIS-NN built with ARM_MATH_MVEI: other scratch sizes
        self.head = self.temp_end = self.tail = 0
        self.need = 0
        self.peak = ""
        self.step = ""
        self.parts: dict[str, int] = {}
        self.scratch: list[tuple[int, int]] = []  # (operator, bytes) of each scratch request
        self.op = -1

    def require(self, end_of_head: int, tail: int) -> None:
        """A step that needs the head section to end at `end_of_head` with `tail` bytes at the tail."""
        if end_of_head + tail > self.need:
            self.need, self.peak = end_of_head + tail, self.step

    def persistent(self, part: str, size: int, alignment: int = ARENA_ALIGNMENT) -> None:
        """AllocatePersistentBuffer(): from the tail down, checked against the head only."""
        new_tail = _align_up(self.tail + size, alignment)
        self.parts[part] = self.parts.get(part, 0) + new_tail - self.tail
        self.tail = new_tail
        self.require(self.head, self.tail)

    def struct(self, part: str, name: str, count: int = 1) -> None:
        self.persistent(part, count * self.abi.size(name), self.abi.align(name))

    def temp(self, size: int, alignment: int) -> None:
        """AllocateTemp(): above the head; DeallocateTemp() gives nothing back until the reset."""
        self.temp_end = _align_up(self.temp_end, alignment) + size
        self.require(self.temp_end, self.tail)

    def resize_head(self, size: int) -> None:
        """ResizeBuffer() of the head section (which also resets the temporaries)."""
        self.head = self.temp_end = size
        self.require(self.head, self.tail)

    def temp_tensor(self, *indices: int) -> None:
        """AllocateTempInputTensor()/AllocateTempOutputTensor(): TfLiteTensor + quantization."""
        abi = self.abi
        for index in indices:
            if index < 0:
                continue  # an omitted optional input: nothing allocated
            self.temp(abi.size("TfLiteTensor"), abi.align("TfLiteTensor"))
            channels = _quantized_channels(self.graph.tensors[index])
            if channels:
                self.temp(abi.size("TfLiteAffineQuantization"), abi.align("TfLiteAffineQuantization"))
                self.temp(abi.size("TfLiteIntArray") + 4 * channels, abi.align("TfLiteIntArray"))

    def persistent_tensor(self, index: int) -> None:
        """AllocatePersistentTfLiteTensor(): TfLiteTensor + quantization, at the tail."""
        self.struct("io_tensors", "TfLiteTensor")
        channels = _quantized_channels(self.graph.tensors[index])
        if channels:
            self.struct("io_tensors", "TfLiteAffineQuantization")
            self.persistent("io_tensors", self.abi.size("TfLiteIntArray") + 4 * channels,
                            self.abi.align("TfLiteIntArray"))

    def channel_data(self, *sizes: int) -> None:
        """Prepare()'s context->AllocatePersistentBuffer(): multipliers, shifts."""
        for size in sizes:
            self.persistent("channel_data", size)

    def request_scratch(self, size: int) -> None:
        """RequestScratchBufferInArena(): planned with the tensors, alive during the operator."""
        if size > 0:
            self.scratch.append((self.op, size))


# --- kernels ------------------------------------------------------------------

def _operand(op: Operator, index: int, outputs: bool = False) -> int:
    """Tensor index of an operator's input (or output) `index`, -1 when absent."""
    tensors = op.outputs if outputs else op.inputs
    return tensors[index] if index < len(tensors) else -1


def _dims(graph: Graph, index: int) -> tuple[int, ...]:
    return graph.tensors[index].shape if index >= 0 else ()


def _padding(op: Operator, graph: Graph) -> tuple[int, int]:
    """(h, w) padding TFLM's ComputePaddingHeightWidth gives a convolution."""
    (_, in_h, in_w, _), (_, k_h, k_w, _) = _dims(graph, op.inputs[0]), _dims(graph, op.inputs[1])
    _, out_h, out_w, _ = _dims(graph, op.outputs[0])
    pads = []
    for size, k, out, stride, dilation in ((in_h, k_h, out_h, "stride_h", "dilation_h_factor"),
                                           (in_w, k_w, out_w, "stride_w", "dilation_w_factor")):
        s, d = op.options.get(stride, 1), op.options.get(dilation, 1)
        pads.append(max((out - 1) * s + (k - 1) * d + 1 - size, 0) // 2)
    return pads[0], pads[1]


def _conv_prepare(r: _Replay, op: Operator, cmsis_nn: bool, dsp: bool) -> None:
    x, w, b, y = _operand(op, 0), _operand(op, 1), _operand(op, 2), _operand(op, 0, outputs=True)
    channels = r.graph.tensors[w].shape[0]
    if cmsis_nn:
        # Its bias is fetched as output 2, which does not exist: no temporary.
        r.temp_tensor(x, w, y)
    else:
        r.temp_tensor(y, x, w)
    r.channel_data(4 * channels, 4 * channels)
    r.temp_tensor(x, w, b, y)  # CalculateOpDataConv()
    if cmsis_nn:
        r.request_scratch(_cmsis_conv_scratch_mve(r.graph, op) if r.mve else _cmsis_conv_scratch(r.graph, op))


def _cmsis_conv_scratch(graph: Graph, op: Operator) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size(), for cores without MVE (DSP or not).

    1x1 (unpadded, not dilated, one group): 0, or with stride 1 the 1x1 fast kernel's
    buffer, which is 0 unless built with Arm Compiler 6 (TFLM builds with GCC).
    Otherwise the im2col buffer of 2 columns of in_ch * kh * kw int16 values, the
    column rounded up to 4, whether 1xN or general.
    """
    _, _, _, in_c = _dims(graph, op.inputs[0])
    _, k_h, k_w, k_c = _dims(graph, op.inputs[1])
    pad_h, pad_w = _padding(op, graph)
    dilation = (op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1))
    if (pad_h, pad_w) == (0, 0) and (k_h, k_w) == (1, 1) and dilation == (1, 1) and in_c == k_c:
        return 0
    return 2 * _align_up(k_w * k_h * in_c, 4) * 2


def _cmsis_conv_scratch_mve(graph: Graph, op: Operator, depthwise: bool = False) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size_mve().

    1x1 (unpadded, not dilated): 0. 1xN (input height 1, kernel height 1, not dilated
    in width, stride_w * in_ch a multiple of 4): the left and right padded im2col
    columns. Otherwise 4 im2col columns of in_ch * kh * kw int8 values, rounded up to
    whole 16-lane Q registers. depthwise: a DEPTHWISE_CONV_2D with one input channel,
    which CMSIS-NN runs as this convolution (its filter has one input channel).
    """
    _, in_h, in_w, in_c = _dims(graph, op.inputs[0])
    _, k_h, k_w, k_c = _dims(graph, op.inputs[1])
    if depthwise:
        k_c = in_c
    out_w = _dims(graph, op.outputs[0])[2]
    pad_h, pad_w = _padding(op, graph)
    stride_w = op.options.get("stride_w", 1)
    dilation = (op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1))
    general = 4 * ((in_c * k_w * k_h + 15) // 16) * 16
    if (pad_h, pad_w) == (0, 0) and (k_h, k_w) == (1, 1) and dilation == (1, 1) and in_c == k_c:
        return 0
    if not (in_h == 1 and dilation[1] == 1 and k_h == 1 and (stride_w * in_c) % 4 == 0 and in_c == k_c):
        return general
    # arm_convolve_1_x_n_s8_get_buffer_size_mve()
    asym_pad = ((out_w - 1) * stride_w + k_w - in_w) % 2
    right = max(1, (pad_w + asym_pad + stride_w - 1) // stride_w) if pad_w + asym_pad else 0
    left = max(1, (pad_w + stride_w - 1) // stride_w) if pad_w else 0
    if right + max(out_w - (right + left), 0) + left != out_w:
        return general
    pad_left = pad_w * in_c
    pad_right = right * in_c if asym_pad else pad_left
    return max(k_w * in_c + pad_left, (k_w - 1) * in_c + pad_right)


def _depthwise_prepare(r: _Replay, op: Operator, cmsis_nn: bool, dsp: bool) -> None:
    x, w, b, y = _operand(op, 0), _operand(op, 1), _operand(op, 2), _operand(op, 0, outputs=True)
    channels = r.graph.tensors[w].shape[3]
    r.temp_tensor(*((x, w, y) if cmsis_nn else (y, x, w)))
    r.channel_data(4 * channels, 4 * channels)
    r.temp_tensor(x, w, b, y)  # CalculateOpDataDepthwiseConv()
    if cmsis_nn:
        r.request_scratch(_cmsis_depthwise_scratch_mve(r.graph, op) if r.mve
                          else _cmsis_depthwise_scratch(r.graph, op, dsp))


def _cmsis_depthwise_scratch(graph: Graph, op: Operator, dsp: bool) -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size(), for cores without MVE.

    Only the optimized kernel (one output channel per input channel, batch 1, not
    dilated) asks, and not for 3x3 with padding <= 1 (arm_depthwise_conv_3x3_s8):
    in_ch * kh * kw int16 values with the DSP extension, nothing without.
    """
    n, _, _, in_c = _dims(graph, op.inputs[0])
    _, k_h, k_w, out_c = _dims(graph, op.inputs[1])
    dilation = (op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1))
    if not (in_c == out_c and n == 1 and dilation == (1, 1)):
        return 0
    pad_h, pad_w = _padding(op, graph)
    if (k_h, k_w) == (3, 3) and pad_h <= 1 and pad_w <= 1:
        return 0
    return in_c * k_w * k_h * 2 if dsp else 0


CH_IN_BLOCK_MVE = 124  # arm_nnsupportfunctions.h: channels arm_depthwise_conv_s8_opt() takes at a time


def _cmsis_depthwise_scratch_mve(graph: Graph, op: Operator) -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size() with ARM_MATH_MVEI.

    One input channel and more than one output channel (GCC's threshold): run as a
    convolution, whose scratch plus the reordered filter it asks for. Otherwise the
    optimized kernel's (one output channel per input channel, batch 1, not dilated, 3x3
    included): 4 im2col columns of CH_IN_BLOCK_MVE channels. TFLM's Prepare() leaves
    the stride out of the parameters it passes; the operator's own is assumed.
    """
    n, _, _, in_c = _dims(graph, op.inputs[0])
    _, k_h, k_w, out_c = _dims(graph, op.inputs[1])
    dilation = (op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1))
    if in_c == 1 and out_c > 1:
        return _cmsis_conv_scratch_mve(graph, op, depthwise=True) + out_c * k_h * k_w
    if in_c == out_c and n == 1 and dilation == (1, 1):
        return 4 * CH_IN_BLOCK_MVE * k_w * k_h
    return 0


def _fully_connected_prepare(r: _Replay, op: Operator, cmsis_nn: bool, dsp: bool) -> None:
    x, w, b, y = _operand(op, 0), _operand(op, 1), _operand(op, 2), _operand(op, 0, outputs=True)
    r.temp_tensor(x, w, b, y)
    weights = r.graph.tensors[w]
    per_channel = weights.quantization is not None and len(weights.quantization.scale) > 1
    if per_channel:  # CalculateOpDataFullyConnected()
        channels = len(weights.quantization.scale)
        r.channel_data(4 * channels, 4 * channels)
    out_dims = _dims(r.graph, y)
    conv_1x1 = len(out_dims) > 2 and weights.shape[-1] % 4 == 0
    if cmsis_nn and conv_1x1 and not per_channel:
        # The conv-1x1 path keeps per-channel multipliers and shifts in scratch; its own
        # buffer (arm_convolve_1x1_s8_fast_get_buffer_size) is 0 with GCC, as is
        # arm_fully_connected_s8_get_buffer_size() without MVE.
        r.request_scratch(out_dims[-1] * 4 * 2)
    elif cmsis_nn and not conv_1x1 and r.mve:
        # arm_fully_connected_s8_get_buffer_size_mve(): an int32 per output channel, the
        # filter's sums; KERNELS_OPTIMIZED_FOR_SPEED computes them once into a persistent
        # buffer when filter and bias are constant, else they are scratch.
        sums = 4 * out_dims[-1]
        if weights.is_constant and (b < 0 or r.graph.tensors[b].is_constant):
            r.channel_data(sums)
        else:
            r.request_scratch(sums)


def _pool_prepare(r: _Replay, op: Operator, cmsis_nn: bool, dsp: bool) -> None:
    x, y = _operand(op, 0), _operand(op, 0, outputs=True)
    r.temp_tensor(x, y)  # PoolingPrepare()
    if cmsis_nn and op.opcode == "AVERAGE_POOL_2D":
        r.temp_tensor(x, y)
        # arm_avgpool_s8_get_buffer_size(): one int32 per channel with DSP but not MVE, else nothing.
        r.request_scratch(4 * _dims(r.graph, x)[-1] if dsp and not r.mve else 0)


def _in_out_prepare(r: _Replay, op: Operator, cmsis_nn: bool, dsp: bool) -> None:
    """RESHAPE, SOFTMAX (int8: no int16 tables) and ADD look at each input and output once."""
    inputs = op.inputs[:2] if op.opcode == "ADD" else op.inputs[:1]
    r.temp_tensor(*inputs, *op.outputs[:1])


def _transpose_conv_prepare(r: _Replay, op: Operator, cmsis_nn: bool, dsp: bool) -> None:
    """Inputs: output shape, filter, input, optional bias. Accumulators live in scratch."""
    w, x, b, y = _operand(op, 1), _operand(op, 2), _operand(op, 3), _operand(op, 0, outputs=True)
    channels = r.graph.tensors[w].shape[0]
    r.temp_tensor(x, w, y, b)
    r.channel_data(4 * channels, 4 * channels)
    out_elements = r.graph.tensors[y].num_elements
    if r.graph.tensors[x].dtype == "int16":
        # int64 accumulators per output, and the 16-bit bias widened to 64 bits.
        if b >= 0 and r.graph.tensors[b].dtype == "int16":
            r.request_scratch(8 * r.graph.tensors[b].num_elements)
        r.request_scratch(8 * out_elements)
    elif not cmsis_nn:
        r.request_scratch(4 * out_elements)  # int32 accumulators per output
    else:
        # arm_transpose_conv_s8_get_buffer_size(): no more than the larger of its two forms (an
        # im2col buffer of the reversed convolution, or rows of int32 accumulators); then the
        # reversed filter, no larger than the filter.
        _, in_h, in_w, in_c = _dims(r.graph, x)
        _, k_h, k_w, _ = _dims(r.graph, w)
        stride_h, stride_w = op.options.get("stride_h", 1), op.options.get("stride_w", 1)
        rows = ((in_w - 1) * stride_w + max(k_w, stride_h)) * channels * max(k_h, stride_h) * 4
        r.request_scratch(max(rows, 2 * _align_up(k_w * k_h * in_c, 4) * 2))
        r.request_scratch(r.graph.tensors[w].nbytes)


def _unknown_prepare(r: _Replay, op: Operator, cmsis_nn: bool, dsp: bool) -> None:
    """A generic estimate: every input and output looked at twice, nothing persistent, and a
    scratch buffer of 8 bytes per output element (an int64 accumulator each, the widest any
    TFLM kernel keeps per output), so that a kernel without a recipe is not under-counted."""
    r.temp_tensor(*op.inputs, *op.outputs, *op.inputs, *op.outputs)
    r.request_scratch(8 * sum(r.graph.tensors[i].num_elements for i in op.outputs if i >= 0))


def _int8_activations(graph: Graph, op: Operator) -> bool:
    """The recipes are for int8 models (int16 ones get other scratch sizes and softmax tables)."""
    return bool(op.inputs) and op.inputs[0] >= 0 and graph.tensors[op.inputs[0]].dtype == "int8"


# A kernel whose builtin data or OpData sizes are not in the ABI tables: the generic sizes above.
GENERIC = "generic"


@dataclass(frozen=True)
class _Kernel:
    builtin_data: str | None  # the TfLite*Params its parser allocates (GENERIC: UNKNOWN_BUILTIN_DATA)
    op_data: str | None  # what Init() allocates (None: no Init; GENERIC: UNKNOWN_OP_DATA)
    prepare: Callable[[_Replay, Operator, bool, bool], None]


# What each kernel allocates with int8 activations: (reference, CMSIS-NN);
# OPTIMIZED_KERNEL_DIR=cmsis_nn replaces the kernels it has, here all but RESHAPE.
_KERNELS: dict[str, tuple[_Kernel, _Kernel]] = {
    "CONV_2D": (_Kernel("TfLiteConvParams", "conv.h:OpDataConv", _conv_prepare),
                _Kernel("TfLiteConvParams", "cmsis_nn/conv.cc:OpData", _conv_prepare)),
    "DEPTHWISE_CONV_2D": (_Kernel("TfLiteDepthwiseConvParams", "conv.h:OpDataConv", _depthwise_prepare),
                          _Kernel("TfLiteDepthwiseConvParams", "cmsis_nn/depthwise_conv.cc:OpData",
                                  _depthwise_prepare)),
    "FULLY_CONNECTED": (_Kernel("TfLiteFullyConnectedParams", "fully_connected.h:OpDataFullyConnected",
                                _fully_connected_prepare),
                        _Kernel("TfLiteFullyConnectedParams", "cmsis_nn/fully_connected.cc:OpData",
                                _fully_connected_prepare)),
    "AVERAGE_POOL_2D": (_Kernel("TfLitePoolParams", "pooling.h:OpDataPooling", _pool_prepare),
                        _Kernel("TfLitePoolParams", "cmsis_nn/pooling.cc:OpData", _pool_prepare)),
    "MAX_POOL_2D": (_Kernel("TfLitePoolParams", "pooling.h:OpDataPooling", _pool_prepare),
                    _Kernel("TfLitePoolParams", "cmsis_nn/pooling.cc:OpData", _pool_prepare)),
    "RESHAPE": (_Kernel("TfLiteReshapeParams", None, _in_out_prepare),) * 2,
    "SOFTMAX": (_Kernel("TfLiteSoftmaxParams", "softmax.h:SoftmaxParams", _in_out_prepare),
                _Kernel("TfLiteSoftmaxParams", "cmsis_nn/softmax.cc:CMSISNNSoftmaxParams", _in_out_prepare)),
    "ADD": (_Kernel("TfLiteAddParams", "add.h:OpDataAdd", _in_out_prepare),
            _Kernel("TfLiteAddParams", "cmsis_nn/add.cc:OpData", _in_out_prepare)),
}
# Recipes that hold for 16-bit activations too.
_ANY_WIDTH_KERNELS: dict[str, tuple[_Kernel, _Kernel]] = {
    "TRANSPOSE_CONV": (_Kernel(GENERIC, GENERIC, _transpose_conv_prepare),) * 2,
}
_UNKNOWN = _Kernel(GENERIC, GENERIC, _unknown_prepare)


def estimate_tflm_arena(graph: Graph, kernels: str = "reference", dsp: bool = True,
                        abi: Abi = ARM_EABI, mve: bool = False) -> ArenaEstimate:
    """The tensor arena TFLM needs for `graph`: AllocateTensors() replayed (module docstring).

    kernels: "reference" or "cmsis_nn" (OPTIMIZED_KERNEL_DIR=cmsis_nn).
    dsp: the core has the Arm DSP extension (ARM_MATH_DSP: Cortex-M4, M7, M33; not M3),
    which changes the scratch some CMSIS-NN kernels ask for; mve: the core has Helium
    (ARM_MATH_MVEI: Cortex-M55), whose CMSIS-NN kernels ask for other scratch again.
    abi: the target's struct layout (ARM_EABI for the Cortex-M boards, HOST_LP64 for host).
    """
    if kernels not in KERNEL_SETS["tflm"]:
        raise ValueError(f"kernels must be one of {KERNEL_SETS['tflm']}, not {kernels!r}")
    cmsis_nn = kernels == "cmsis_nn"
    ops = graph.operators
    chosen = [_KERNELS[op.opcode][cmsis_nn] if op.opcode in _KERNELS and _int8_activations(graph, op)
              else _ANY_WIDTH_KERNELS[op.opcode][cmsis_nn] if op.opcode in _ANY_WIDTH_KERNELS
              else _UNKNOWN for op in ops]
    r = _Replay(graph, abi, mve=mve and cmsis_nn)

    r.step = "MicroInterpreter construction"
    for name in ("SingleArenaBufferAllocator", "GreedyMemoryPlanner", "MicroAllocator"):
        r.struct("interpreter", name)
    r.step = "StartModelAllocation()"
    r.struct("interpreter", "MicroBuiltinDataAllocator")
    r.resize_head(MAX_SCRATCH_BUFFERS_PER_OP * abi.size("ScratchBufferRequest"))
    r.struct("eval_tensors", "SubgraphAllocations")
    r.struct("eval_tensors", "TfLiteEvalTensor", len(graph.tensors))
    r.struct("node_registrations", "NodeAndRegistration", len(ops))
    r.step = "parsing builtin options"
    for kernel in chosen:
        if kernel.builtin_data == GENERIC:
            r.persistent("builtin_data", UNKNOWN_BUILTIN_DATA, abi.pointer)
        elif kernel.builtin_data is not None:
            r.struct("builtin_data", kernel.builtin_data)
    r.step = "Init()"
    for kernel in chosen:
        if kernel.op_data is not None:
            r.persistent("op_data", UNKNOWN_OP_DATA if kernel.op_data == GENERIC else abi.size(kernel.op_data))
    for i, (op, kernel) in enumerate(zip(ops, chosen)):
        r.step = f"Prepare() of operator {i} ({op.opcode})"
        r.op = i
        kernel.prepare(r, op, cmsis_nn, dsp)
        # FinishPrepareNodeAllocations(): temporaries reset, room for the next operator's requests.
        r.resize_head((len(r.scratch) + MAX_SCRATCH_BUFFERS_PER_OP) * abi.size("ScratchBufferRequest"))

    r.step = "memory planning"
    if r.scratch:
        r.struct("scratch_handles", "ScratchBufferHandle", len(r.scratch))
    r.temp(abi.size("size_t"), abi.align("size_t"))  # subgraph offsets
    r.temp((len(graph.tensors) + len(r.scratch)) * abi.size("AllocationInfo"), abi.align("AllocationInfo"))
    buffers = _plan_buffers(graph, r.scratch)
    # The planner takes all the memory left and needs PLANNER_BYTES_PER_BUFFER per buffer of it.
    r.require(_align_up(r.temp_end, ARENA_ALIGNMENT) + PLANNER_BYTES_PER_BUFFER * len(buffers),
              _align_up(r.tail, ARENA_ALIGNMENT))
    activations = plan_activations(graph)
    plan = _greedy_plan(buffers)
    r.resize_head(plan)

    r.step = "input and output tensors"
    for indices in (graph.inputs, graph.outputs):
        r.persistent("io_tensors", abi.pointer * len(indices))
        for index in indices:
            r.persistent_tensor(index)

    steady = plan + r.tail  # the peak is never below: the last allocation checked it
    need = _align_up(r.need, ARENA_ALIGNMENT)
    parts = {name: r.parts.get(name, 0) for name in (
        "interpreter", "eval_tensors", "node_registrations", "builtin_data", "op_data", "channel_data",
        "scratch_handles", "io_tensors")}
    target = abi.name + ("" if not cmsis_nn else ", MVE" if mve else ", DSP extension" if dsp
                         else ", no DSP extension")
    return ArenaEstimate(
        kernels=kernels, target=target, activations=activations, kernel_scratch=plan - activations,
        **parts, steady=steady, transient=r.need - steady,
        peak=r.peak if r.need > steady else "after AllocateTensors()",
        need=need, margin=SAFETY_MARGIN, arena_bytes=need + SAFETY_MARGIN,
        assumed_ops=sorted({op.opcode for op, kernel in zip(ops, chosen) if kernel is _UNKNOWN}),
    )

