"""The operators the native runtime supports, as data: for each row of TFLite builtin operators,
which of them also run int16x8 models, and notes on how they run.

The lowering registry holds exactly these operators (tests/test_operators.py); the refusal of
an operator outside them, and of an int16 operator without a 16x8 kernel, lists them from
here. The constraints on each operator's types, shapes and options are declared beside the
code that checks them (`constraint(...)` in the lowering modules), and a refusal quotes the
one that failed; `tinyml-ptq operators` and docs/operators.md render this table with those
constraints and the kernel sets that have a kernel of their own for each operator.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorRow:
    opcodes: tuple[str, ...]
    int16x8: tuple[str, ...]  # those of `opcodes` that also run int16x8 (16-bit activations, 8-bit weights)
    notes: str  # how it runs: what the constraints (declared in the lowering modules) leave out


OPERATOR_TABLE = (
    OperatorRow(
        ("CONV_2D",), ("CONV_2D",),
        "any stride, dilation, padding; grouped convolutions"),
    OperatorRow(
        ("DEPTHWISE_CONV_2D",), ("DEPTHWISE_CONV_2D",),
        "any depth multiplier, stride, dilation, padding; above multiplier 1 the DSP set takes 3x3 filters "
        "through its SIMD planes and other sizes through the matrix kernel (micro_speech: 4,182,613 -> "
        "613,960 instructions, person_detect 16,253,820 -> 11,976,320 on mps2-an386)"),
    OperatorRow(
        ("FULLY_CONNECTED",), ("FULLY_CONNECTED",),
        "2-D weights"),
    OperatorRow(
        ("BATCH_MATMUL",), (),
        "two activations (Keras MultiHeadAttention, `tf.matmul`) or a constant operand; ranks 2 to 5, batch "
        "dimensions broadcast; adj_x / adj_y; per-tensor quantization; int32 accumulation and the scale "
        "product in double as the `tflite_micro` interpreter. The DSP kernel widens both operands to int16 "
        "pairs with their offsets (scratch 4 * ceil(depth / 2) * (columns + 2) bytes, at most 4 KiB: columns "
        "in blocks; depth above 512 stays on the reference kernel); MultiHeadAttention (2 heads, key_dim 8, "
        "16x16 input): its two BATCH_MATMULs take 122,100 instructions on mps2-an386 with the reference "
        "kernel (TFLM's reference: 120,540), 42,440 with the DSP one"),
    OperatorRow(
        ("TRANSPOSE_CONV",), ("TRANSPOSE_CONV",),
        "output-shape operand a constant equal to the output's shape, or a run-time input (TFLM reads the "
        "output tensor's shape, as the kernel here does; TFLM's SEANet models feed it); symmetric weights; "
        "16x8 with an int64 or a constant int16 bias (widened at generation time, as TFLM widens it); the "
        "reference kernel sums each output in a register (no scratch; TFLM keeps an int32 per output)"),
    OperatorRow(
        ("AVERAGE_POOL_2D", "MAX_POOL_2D"), ("AVERAGE_POOL_2D", "MAX_POOL_2D"),
        "any filter, stride, padding"),
    OperatorRow(
        ("MEAN", "SUM"), ("MEAN",),
        "over any axes of an input of rank <= 4 (its reduced axes always merge into at most 2 runs)"),
    OperatorRow(
        ("REDUCE_MAX", "REDUCE_MIN"), (),
        "axes as MEAN"),
    OperatorRow(
        ("ARG_MAX", "ARG_MIN"), (),
        "one axis; the first index wins ties"),
    OperatorRow(
        ("ADD", "SUB"), ("ADD", "SUB"),
        "broadcast up to rank 4; the scale ratios in double, as the `tflite_micro` interpreter (TFLM's tree "
        "uses float; SEANet's SUB models differ by 1 LSB with float)"),
    OperatorRow(
        ("MUL",), ("MUL",),
        "broadcast up to rank 4"),
    OperatorRow(
        ("MAXIMUM", "MINIMUM"), (),
        "broadcast up to rank 4; compare raw codes without rescaling, as TFLM does"),
    OperatorRow(
        ("SQUARED_DIFFERENCE",), (),
        "broadcast up to rank 4"),
    OperatorRow(
        ("PRELU",), (),
        "alpha broadcast over the input up to rank 4; per-tensor alpha"),
    OperatorRow(
        ("SOFTMAX",), ("SOFTMAX",),
        "along the last axis; int8 output, or int16 (scale 1/65536, zero point -32768, as TFLM's int8 -> "
        "int16 softmax); int16 -> int16 (output scale 1/32768) with TFLM's 513-entry exp and 1/(1+x) tables, "
        "computed at generation time"),
    OperatorRow(
        ("LOG_SOFTMAX",), (),
        "along the last axis"),
    OperatorRow(
        ("LOGISTIC", "TANH", "HARD_SWISH", "RSQRT"), ("LOGISTIC", "TANH"),
        "256-entry tables computed at generation time; RSQRT of a negative real makes TFLM fail the invoke "
        "(the table gives 127). int16: TFLM's fixed 256-entry sigmoid table with interpolation (shared with "
        "the LSTM kernel), its power-of-two input-scale case, output scale 2^-15, input scale at most about "
        "2.667"),
    OperatorRow(
        ("RELU", "RELU6", "LEAKY_RELU"), ("LEAKY_RELU",),
        "LEAKY_RELU's scale ratios in double, as ADD, SUB"),
    OperatorRow(
        ("QUANTIZE", "DEQUANTIZE"), ("QUANTIZE", "DEQUANTIZE"),
        "float32 model boundaries and int8 requantization; QUANTIZE from int16 to int8 (an int16 model input)"
        " or to int32 (TFLM's Requantize); int16: float32 <-> int16, int8 / int16 / int32 -> int16"),
    OperatorRow(
        ("CONCATENATION", "PACK"), ("CONCATENATION", "PACK"),
        "any axis; no fused activation (as TFLM); int16 inputs are copied without rescaling even where their "
        "scales differ, as TFLM does (the converter inserts a QUANTIZE instead)"),
    OperatorRow(
        ("PAD", "PADV2"), ("PAD", "PADV2"),
        "the fill value's raw integer is copied, whatever its quantization"),
    OperatorRow(
        ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"), ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"),
        "no copy: the output shares its input's buffer"),
    OperatorRow(
        ("TRANSPOSE",), ("TRANSPOSE",),
        "any permutation"),
    OperatorRow(
        ("STRIDED_SLICE",), ("STRIDED_SLICE",),
        "begin/end/shrink-axis masks as TFLM"),
    OperatorRow(
        ("SLICE",), ("SLICE",),
        "size -1 runs to the end"),
    OperatorRow(
        ("SPLIT", "SPLIT_V", "UNPACK"), ("SPLIT", "SPLIT_V", "UNPACK"),
        "the axis extent divides evenly (SPLIT); outputs nobody reads are fine"),
    OperatorRow(
        ("GATHER",), (),
        "indices in range (TFLM does not check; refused here as inconsistent); any axis and batch_dims"),
    OperatorRow(
        ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH"), (),
        "NHWC"),
    OperatorRow(
        ("BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND"), (),
        "NHWC, or NHC as a width of 1"),
    OperatorRow(
        ("RESIZE_NEAREST_NEIGHBOR",), ("RESIZE_NEAREST_NEIGHBOR",),
        "NHWC; align_corners / half_pixel_centers (source rows and columns computed ahead in TFLite's float32"
        " arithmetic)"),
    OperatorRow(
        ("RESIZE_BILINEAR",), (),
        "align_corners or half_pixel_centers or neither; TFLM's fixed-point coordinates"),
    OperatorRow(
        ("UNIDIRECTIONAL_SEQUENCE_LSTM",), (),
        "TFLM's 8x8->16 integer LSTM; cell clip, batch or time major, any batch; TFLM's int16 sigmoid and tanh "
        "(checked on every int16 input); scratch 6 bytes per unit; every invocation starts from the reset state "
        "(the TFLM reference is reset before each sample likewise). "
        "`quantize` gives this fused operator for standard Keras 3 and tf_keras"
        " LSTM layers (see \"Recurrent layers\" in [Quantize](quantize.md)). The DSP kernel runs the gates' "
        "matrix-vector products on SMLAD (weights packed four rows at a time at generation time, the input "
        "and hidden offsets folded into per-unit biases) and the rest as the reference does. TFLM's "
        "trained_lstm_int8 (28 steps, 20 units): its LSTM operator takes 1,028,720 instructions on mps2-an386"
        " with the reference kernel, 542,400 with the DSP one"),
    OperatorRow(
        ("SVDF",), (),
        "TFLM's integer SVDF; any rank, memory size and batch; the fused activation is left out as TFLM's "
        "integer kernel leaves it out; scratch 8 bytes per filter; every invocation starts from the reset state "
        "(TFLM's reset values; the reference is reset before each sample likewise). TFLM's "
        "keyword_scrambled_8bit (int16 input, 7 SVDFs): 208,660 instructions on mps2-an386"),
)

SUPPORTED_OPERATORS = tuple(sorted(opcode for row in OPERATOR_TABLE for opcode in row.opcodes))
INT16X8_OPERATORS = tuple(sorted(opcode for row in OPERATOR_TABLE for opcode in row.int16x8))
