"""What a .tflite holds, read through TFLite's own flatbuffer schema (the one bundled with
tflite_micro, so no TensorFlow import): its operators, and whether it is fully int8 as the
later stages need."""

from __future__ import annotations

from ..core.errors import UserError


def _parse(tflite_bytes: bytes, origin: str):
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema_fb

    data = bytes(tflite_bytes)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise UserError(f"{origin} is not a TFLite flatbuffer (no 'TFL3' identifier); give a .tflite file")
    try:
        return schema_fb, schema_fb.ModelT.InitFromObj(schema_fb.Model.GetRootAsModel(data, 0))
    except Exception as exc:  # flatbuffers raises assorted errors on truncated data
        raise UserError(f"{origin} is corrupt or truncated ({type(exc).__name__}); re-run quantize") from None


def _names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_")}


def _opcode(schema_fb, model, op) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    return _names(schema_fb.BuiltinOperator).get(max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN")


def tflite_ops(tflite_bytes: bytes, origin: str = "model") -> list[str]:
    """Operator names of every subgraph, in execution order."""
    schema_fb, model = _parse(tflite_bytes, origin)
    return [_opcode(schema_fb, model, op) for sub in model.subgraphs or [] for op in sub.operators or []]


# Operators whose int32 output holds indices, not values: int8 models have them too.
INDEX_OUTPUT_OPS = ("ARG_MAX", "ARG_MIN")
LSTM_CELL_STATE = 19  # UNIDIRECTIONAL_SEQUENCE_LSTM's cell state operand


def require_full_int8(tflite_bytes: bytes, origin: str = "model") -> None:
    """Raise UserError naming every operator that does not run on int8 tensors, at once.

    int8 everywhere, except int32 constants (biases, shapes, axes) in operand
    positions other than the data operand (the first, but TRANSPOSE_CONV's third,
    after its output shape and filter, and SPLIT's second, after its axis), and the
    int16 cell state of an int8 UNIDIRECTIONAL_SEQUENCE_LSTM (a variable tensor):
    anything else means a hybrid or float model.
    """
    schema_fb, model = _parse(tflite_bytes, origin)
    types = _names(schema_fb.TensorType)
    buffers = model.buffers or []
    blocking = []
    for sub in model.subgraphs or []:
        tensors = sub.tensors or []

        def constant(index: int) -> bool:
            buf = tensors[index].buffer
            return 0 < buf < len(buffers) and buffers[buf].data is not None and len(buffers[buf].data) > 0

        def describe(indices):
            return ", ".join(types.get(tensors[i].type, "?").lower() for i in indices) or "none"

        for n, op in enumerate(sub.operators or []):
            inputs = [i for i in (op.inputs if op.inputs is not None else []) if i >= 0]
            outputs = [i for i in (op.outputs if op.outputs is not None else []) if i >= 0]
            opcode = _opcode(schema_fb, model, op)
            # SPLIT takes its constant axis first and the data second.
            data = {"TRANSPOSE_CONV": 2, "SPLIT": 1}.get(opcode, 0)
            # ARG_MAX / ARG_MIN write int32 indices, not quantized values.
            index_output = opcode in INDEX_OUTPUT_OPS
            # The int8 LSTM keeps its cell state (operand 19) in int16.
            cell_state = op.inputs[LSTM_CELL_STATE] if opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM" \
                and op.inputs is not None and len(op.inputs) > LSTM_CELL_STATE else -1
            ok = all(tensors[i].type == schema_fb.TensorType.INT8
                     or (index_output and tensors[i].type == schema_fb.TensorType.INT32) for i in outputs) and all(
                tensors[i].type == schema_fb.TensorType.INT8
                or (tensors[i].type == schema_fb.TensorType.INT32 and pos != data and constant(i))
                or (i == cell_state and tensors[i].type == schema_fb.TensorType.INT16 and tensors[i].isVariable)
                for pos, i in enumerate(inputs))
            if not ok:
                blocking.append(f"operator {n} {opcode} has inputs ({describe(inputs)}) and outputs "
                                f"({describe(outputs)})")
    if blocking:
        shown = "; ".join(blocking[:8]) + (f"; and {len(blocking) - 8} more" if len(blocking) > 8 else "")
        raise UserError(f"{origin} is not fully int8: {len(blocking)} operator{'s' if len(blocking) > 1 else ''} "
                        f"block{'' if len(blocking) > 1 else 's'} it: {shown}; later stages need a model from "
                        "'tinyml-ptq quantize --mode int8'")
