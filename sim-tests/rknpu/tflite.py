"""A self-contained reader of TFLite model files (pure Python + numpy).

A .tflite file is a FlatBuffer whose root table is tflite.Model (schema.fbs, file identifier
"TFL3"). This module decodes the FlatBuffer wire format itself:

* every offset is little-endian; the file starts with a uoffset (u32) to the root table;
* a table starts with a soffset (i32): table_pos - soffset = its vtable;
* a vtable is u16 words: [vtable bytes, table bytes, field 0 offset, field 1 offset, ...]; a
  field whose slot is missing or 0 is absent and takes the schema default;
* a field holding a table, vector or string stores a uoffset relative to the field's position;
* a vector / string is a u32 element count followed by the elements (a string's are UTF-8
  bytes); a vector of tables holds one uoffset per element, each relative to its own slot.

On top of that it knows the field ids of the tables a convolution network needs: Model,
SubGraph, Tensor, Buffer, Operator, OperatorCode, QuantizationParameters and the options of
CONV_2D, DEPTHWISE_CONV_2D, ADD and a few more ops.

    m = Model("ssdlite_mobiledet_coco_qat_postprocess.tflite")
    m.inputs, m.outputs            # tensor indices of subgraph 0
    m.tensors[i]                   # dict: name, shape, type, dtype, scale, zero_point, data, ...
    m.operators[k]                 # dict: op, inputs, outputs, options, ...
"""
import struct

import numpy as np

# BuiltinOperator, by code (schema.fbs; 0..161 as of TFLite 2.14).
BUILTIN_OPS = """
ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS
SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER
BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE
UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT
LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS
NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE
TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT
REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN
FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR
LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND
COS WHERE RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH
IF WHILE NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY
SEGMENT_SUM BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO
RFFT2D CONV_3D IMAG REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT
HASHTABLE_SIZE REDUCE_ALL CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE
BROADCAST_ARGS RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU
DYNAMIC_UPDATE_SLICE RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX
UNSORTED_SEGMENT_SUM ATAN2 UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT
""".split()


def op_name(code):
    return BUILTIN_OPS[code] if 0 <= code < len(BUILTIN_OPS) else f"BUILTIN_{code}"


# TensorType: code -> (name, numpy dtype of the element, or None when not a plain array).
TENSOR_TYPES = {
    0: ("FLOAT32", np.float32), 1: ("FLOAT16", np.float16), 2: ("INT32", np.int32),
    3: ("UINT8", np.uint8), 4: ("INT64", np.int64), 5: ("STRING", None), 6: ("BOOL", np.bool_),
    7: ("INT16", np.int16), 8: ("COMPLEX64", np.complex64), 9: ("INT8", np.int8),
    10: ("FLOAT64", np.float64), 11: ("COMPLEX128", np.complex128), 12: ("UINT64", np.uint64),
    13: ("RESOURCE", None), 14: ("VARIANT", None), 15: ("UINT32", np.uint32),
    16: ("UINT16", np.uint16), 17: ("INT4", None),
}
PADDINGS = ("SAME", "VALID")
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")


class FlatBufferError(ValueError):
    pass


# ---- FlatBuffer wire format -------------------------------------------------------------------

class Table:
    """One FlatBuffer table in buf at pos. Field ids are the schema's declaration order."""
    __slots__ = ("buf", "pos", "vtable", "vtable_len")

    def __init__(self, buf, pos):
        if not 0 <= pos <= len(buf) - 4:
            raise FlatBufferError(f"table at {pos} outside the buffer")
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        if not 0 <= self.vtable <= len(buf) - 4:
            raise FlatBufferError(f"vtable of the table at {pos} outside the buffer")
        self.vtable_len = struct.unpack_from("<H", buf, self.vtable)[0]

    def _slot(self, field):
        """Byte offset of the field inside the table, 0 when absent."""
        entry = 4 + 2 * field
        if entry + 2 > self.vtable_len:
            return 0
        return struct.unpack_from("<H", self.buf, self.vtable + entry)[0]

    def has(self, field):
        return self._slot(field) != 0

    def scalar(self, field, fmt, default=0):
        off = self._slot(field)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + off)[0] if off else default

    def _deref(self, field):
        """Position of what an offset field points to, or None."""
        off = self._slot(field)
        if not off:
            return None
        at = self.pos + off
        target = at + struct.unpack_from("<I", self.buf, at)[0]
        if target > len(self.buf) - 4:
            raise FlatBufferError(f"offset field {field} of the table at {self.pos} points outside")
        return target

    def table(self, field):
        at = self._deref(field)
        return None if at is None else Table(self.buf, at)

    def _vector(self, field):
        """(position of element 0, element count) of a vector field, or None."""
        at = self._deref(field)
        if at is None:
            return None
        return at + 4, struct.unpack_from("<I", self.buf, at)[0]

    def array(self, field, dtype):
        """A vector of scalars as a numpy array (a copy), empty when absent."""
        v = self._vector(field)
        if v is None:
            return np.zeros(0, dtype)
        start, n = v
        dt = np.dtype(dtype).newbyteorder("<")
        if start + n * dt.itemsize > len(self.buf):
            raise FlatBufferError(f"vector field {field} of the table at {self.pos} overruns")
        return np.frombuffer(self.buf, dt, n, start).astype(np.dtype(dtype).newbyteorder("="))

    def ints(self, field):
        return [int(x) for x in self.array(field, np.int32)]

    def bytes(self, field):
        v = self._vector(field)
        if v is None:
            return b""
        start, n = v
        return bytes(self.buf[start:start + n])

    def string(self, field):
        return self.bytes(field).decode("utf-8", errors="replace")

    def tables(self, field):
        v = self._vector(field)
        if v is None:
            return []
        start, n = v
        out = []
        for k in range(n):
            slot = start + 4 * k
            out.append(Table(self.buf, slot + struct.unpack_from("<I", self.buf, slot)[0]))
        return out


# ---- the TFLite schema ------------------------------------------------------------------------

# Field ids (declaration order in schema.fbs).
MODEL_VERSION, MODEL_OPERATOR_CODES, MODEL_SUBGRAPHS, MODEL_DESCRIPTION, MODEL_BUFFERS = range(5)
SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS, SUBGRAPH_NAME = range(5)
(TENSOR_SHAPE, TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_QUANTIZATION,
 TENSOR_IS_VARIABLE) = range(6)
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = range(3)
(OPERATOR_OPCODE_INDEX, OPERATOR_INPUTS, OPERATOR_OUTPUTS, OPERATOR_BUILTIN_OPTIONS_TYPE,
 OPERATOR_BUILTIN_OPTIONS) = range(5)
OPCODE_DEPRECATED_BUILTIN, OPCODE_CUSTOM_CODE, OPCODE_VERSION, OPCODE_BUILTIN = range(4)
(QUANT_MIN, QUANT_MAX, QUANT_SCALE, QUANT_ZERO_POINT, QUANT_DETAILS_TYPE, QUANT_DETAILS,
 QUANT_QUANTIZED_DIMENSION) = range(7)


def _padding(v):
    return PADDINGS[v] if 0 <= v < len(PADDINGS) else str(v)


def _activation(v):
    return ACTIVATIONS[v] if 0 <= v < len(ACTIVATIONS) else str(v)


# BuiltinOptions union: type id -> (table name, [(key, field id, struct format, default, convert)]).
_ACT = ("fused_activation", "b", 0, _activation)
OPTIONS = {
    1: ("Conv2DOptions", [("padding", 0, "b", 0, _padding), ("stride_w", 1, "i", 0, int),
                          ("stride_h", 2, "i", 0, int), ("fused_activation", 3) + _ACT[1:],
                          ("dilation_w_factor", 4, "i", 1, int),
                          ("dilation_h_factor", 5, "i", 1, int)]),
    2: ("DepthwiseConv2DOptions", [("padding", 0, "b", 0, _padding),
                                   ("stride_w", 1, "i", 0, int), ("stride_h", 2, "i", 0, int),
                                   ("depth_multiplier", 3, "i", 0, int),
                                   ("fused_activation", 4) + _ACT[1:],
                                   ("dilation_w_factor", 5, "i", 1, int),
                                   ("dilation_h_factor", 6, "i", 1, int)]),
    5: ("Pool2DOptions", [("padding", 0, "b", 0, _padding), ("stride_w", 1, "i", 0, int),
                          ("stride_h", 2, "i", 0, int), ("filter_width", 3, "i", 0, int),
                          ("filter_height", 4, "i", 0, int), ("fused_activation", 5) + _ACT[1:]]),
    8: ("FullyConnectedOptions", [("fused_activation", 0) + _ACT[1:],
                                  ("weights_format", 1, "b", 0, int),
                                  ("keep_num_dims", 2, "B", 0, bool),
                                  ("asymmetric_quantize_inputs", 3, "B", 0, bool)]),
    9: ("SoftmaxOptions", [("beta", 0, "f", 0.0, float)]),
    10: ("ConcatenationOptions", [("axis", 0, "i", 0, int), ("fused_activation", 1) + _ACT[1:]]),
    11: ("AddOptions", [("fused_activation", 0) + _ACT[1:], ("pot_scale_int16", 1, "B", 1, bool)]),
    15: ("ResizeBilinearOptions", [("align_corners", 2, "B", 0, bool),
                                   ("half_pixel_centers", 3, "B", 0, bool)]),
    21: ("MulOptions", [("fused_activation", 0) + _ACT[1:]]),
    28: ("SubOptions", [("fused_activation", 0) + _ACT[1:], ("pot_scale_int16", 1, "B", 1, bool)]),
    49: ("TransposeConvOptions", [("padding", 0, "b", 0, _padding), ("stride_w", 1, "i", 0, int),
                                  ("stride_h", 2, "i", 0, int),
                                  ("fused_activation", 3) + _ACT[1:]]),
    74: ("ResizeNearestNeighborOptions", [("align_corners", 0, "B", 0, bool),
                                          ("half_pixel_centers", 1, "B", 0, bool)]),
    75: ("LeakyReluOptions", [("alpha", 0, "f", 0.0, float)]),
}


def decode_options(options_type, table):
    """The builtin options of an operator as a dict ({} for option tables not decoded here).
    Convolutions also get dilation = (h, w); every fused_activation is mirrored as activation."""
    spec = OPTIONS.get(options_type)
    if spec is None or table is None:
        return {}
    out = {"options_type": spec[0]}
    for key, field, fmt, default, convert in spec[1]:
        out[key] = convert(table.scalar(field, fmt, default))
    if spec[0] == "ReshapeOptions":
        out["new_shape"] = table.ints(0)
    if "dilation_h_factor" in out:
        out["dilation"] = (out["dilation_h_factor"], out["dilation_w_factor"])
    if "fused_activation" in out:
        out["activation"] = out["fused_activation"]
    return out


class Model:
    """A TFLite model: subgraph 0's tensors and operators as plain dicts (see module doc)."""

    def __init__(self, source, subgraph=0):
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.buf = bytes(source)
            self.path = None
        else:
            self.path = str(source)
            with open(self.path, "rb") as f:
                self.buf = f.read()
        buf = self.buf
        if len(buf) < 8:
            raise FlatBufferError("too short for a TFLite model")
        if buf[4:8] != b"TFL3":
            raise FlatBufferError(f"file identifier {buf[4:8]!r} is not TFL3: not a TFLite model")
        root = Table(buf, struct.unpack_from("<I", buf, 0)[0])
        self.version = root.scalar(MODEL_VERSION, "I", 0)
        self.description = root.string(MODEL_DESCRIPTION)

        # OperatorCode: the real code is the larger of the int8 deprecated field and the int32
        # one (old writers fill only the first, new ones both; codes >= 127 only the second).
        self.operator_codes = []
        for oc in root.tables(MODEL_OPERATOR_CODES):
            code = max(oc.scalar(OPCODE_DEPRECATED_BUILTIN, "b", 0),
                       oc.scalar(OPCODE_BUILTIN, "i", 0))
            self.operator_codes.append(dict(code=code, op=op_name(code),
                                            custom_code=oc.string(OPCODE_CUSTOM_CODE) or None,
                                            version=oc.scalar(OPCODE_VERSION, "i", 1)))

        self.buffers = [self._buffer_bytes(b) for b in root.tables(MODEL_BUFFERS)]
        subgraphs = root.tables(MODEL_SUBGRAPHS)
        self.num_subgraphs = len(subgraphs)
        if not 0 <= subgraph < len(subgraphs):
            raise FlatBufferError(f"no subgraph {subgraph} (the model has {len(subgraphs)})")
        sg = subgraphs[subgraph]
        self.subgraph_name = sg.string(SUBGRAPH_NAME)
        self.tensors = [self._tensor(i, t) for i, t in enumerate(sg.tables(SUBGRAPH_TENSORS))]
        self.inputs = sg.ints(SUBGRAPH_INPUTS)
        self.outputs = sg.ints(SUBGRAPH_OUTPUTS)
        self.operators = [self._operator(i, o) for i, o in enumerate(sg.tables(SUBGRAPH_OPERATORS))]

    def _buffer_bytes(self, b):
        # Models over 2 GiB keep data after the FlatBuffer: offset/size fields (offset > 1).
        offset, size = b.scalar(BUFFER_OFFSET, "Q", 0), b.scalar(BUFFER_SIZE, "Q", 0)
        if offset > 1:
            return self.buf[offset:offset + size]
        return b.bytes(BUFFER_DATA)

    def _tensor(self, index, t):
        code = t.scalar(TENSOR_TYPE, "b", 0)
        type_name, dtype = TENSOR_TYPES.get(code, (f"TYPE_{code}", None))
        shape = t.ints(TENSOR_SHAPE)
        buffer = t.scalar(TENSOR_BUFFER, "I", 0)
        raw = self.buffers[buffer] if buffer < len(self.buffers) else b""
        data = None
        if raw:          # buffer 0 is the empty sentinel; non-empty data = a constant tensor
            if dtype is None:
                data = np.frombuffer(raw, np.uint8).copy()
            else:
                data = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).astype(dtype)
                if data.size == int(np.prod(shape, dtype=np.int64)):
                    data = data.reshape(shape)
        q = t.table(TENSOR_QUANTIZATION)
        scale = [float(s) for s in q.array(QUANT_SCALE, np.float32)] if q else []
        zero_point = [int(z) for z in q.array(QUANT_ZERO_POINT, np.int64)] if q else []
        return dict(index=index, name=t.string(TENSOR_NAME), shape=shape, type=type_name,
                    dtype=dtype, buffer=buffer, data=data, scale=scale, zero_point=zero_point,
                    quantized_dimension=q.scalar(QUANT_QUANTIZED_DIMENSION, "i", 0) if q else 0,
                    quant_min=[float(v) for v in q.array(QUANT_MIN, np.float32)] if q else [],
                    quant_max=[float(v) for v in q.array(QUANT_MAX, np.float32)] if q else [],
                    is_variable=bool(t.scalar(TENSOR_IS_VARIABLE, "B", 0)))

    def _operator(self, index, o):
        oc = self.operator_codes[o.scalar(OPERATOR_OPCODE_INDEX, "I", 0)]
        options_type = o.scalar(OPERATOR_BUILTIN_OPTIONS_TYPE, "B", 0)
        return dict(index=index, op=oc["op"], opcode=oc["code"], custom_code=oc["custom_code"],
                    version=oc["version"], inputs=o.ints(OPERATOR_INPUTS),
                    outputs=o.ints(OPERATOR_OUTPUTS),
                    options=decode_options(options_type, o.table(OPERATOR_BUILTIN_OPTIONS)))

    # -- conveniences --

    def producers(self):
        """tensor index -> index of the operator that writes it (model inputs and constants are
        absent)."""
        return {t: op["index"] for op in self.operators for t in op["outputs"] if t >= 0}

    def op_counts(self):
        counts = {}
        for op in self.operators:
            counts[op["op"]] = counts.get(op["op"], 0) + 1
        return counts


def same_pads(in_size, kernel, stride, dilation=1):
    """TFLite's SAME padding along one axis: (before, after), before = total // 2."""
    eff = (kernel - 1) * dilation + 1
    out = -(-in_size // stride)
    total = max((out - 1) * stride + eff - in_size, 0)
    return total // 2, total - total // 2


def conv_layers(path):
    """Every uint8 per-tensor CONV_2D / DEPTHWISE_CONV_2D in the form sim-tests/mobiledet.py and
    scripts/bench.py take (the arguments of mesagen.conv_op): kernel and stride are ints, s_in /
    zp_in / s_w / zp_w / s_out / zp_out, and a depthwise layer over one input channel becomes a
    convolution, as Mesa does. rknpu.mobiledet_layers.conv_layers gives the full description."""
    m = Model(path)
    out = []
    for o in m.operators:
        if o["op"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        xi, wi, bi = (m.tensors[i] for i in o["inputs"][:3])
        yi = m.tensors[o["outputs"][0]]
        if xi["dtype"] != np.uint8 or len(wi["scale"]) != 1:
            continue
        opts = o["options"]
        _, h, w, c = xi["shape"]
        k, s = wi["shape"][1], opts["stride_h"]
        dw = o["op"] == "DEPTHWISE_CONV_2D" and c > 1
        if opts["padding"] == "SAME":
            pads = same_pads(h, k, s) + same_pads(w, wi["shape"][2], opts["stride_w"])
        else:
            pads = (0, 0, 0, 0)
        wdata = wi["data"]
        if o["op"] == "CONV_2D":
            weights = wdata
        elif dw:
            weights = wdata[0]
        else:       # depthwise over 1 channel: [1, kh, kw, M] -> conv [M, kh, kw, 1]
            weights = np.ascontiguousarray(wdata.transpose(3, 1, 2, 0))
        out.append(dict(name=yi["name"], kind="dw" if dw else "conv", input=(h, w, c),
                        output=tuple(yi["shape"][1:]), kernel=k, stride=s, pads=pads,
                        s_in=xi["scale"][0], zp_in=xi["zero_point"][0],
                        s_w=wi["scale"][0], zp_w=wi["zero_point"][0],
                        s_out=yi["scale"][0], zp_out=yi["zero_point"][0],
                        weights=weights, bias=bi["data"].astype(np.int32),
                        activation=ACTIVATIONS.index(opts["fused_activation"])))
    return out
