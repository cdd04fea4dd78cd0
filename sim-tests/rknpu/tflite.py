"""A minimal reader of TFLite flatbuffers (schema field ids of tensorflow/lite/schema.fbs):
operators, tensors with quantisation and constant data, and conv/depthwise/add options."""
import struct

import numpy as np

OPS = {0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
       6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL",
       22: "RESHAPE", 25: "SOFTMAX", 32: "CUSTOM", 34: "PAD", 40: "MEAN", 114: "QUANTIZE",
       117: "HARD_SWISH"}
TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16,
         9: np.int8}


class Table:
    def __init__(self, buf, pos):
        self.buf, self.pos = buf, pos
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vsize = struct.unpack_from("<H", buf, vt)[0]
        self.vt = vt

    def _off(self, i):
        o = 4 + 2 * i
        return struct.unpack_from("<H", self.buf, self.vt + o)[0] if o < self.vsize else 0

    def scalar(self, i, fmt, default=0):
        o = self._off(i)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + o)[0] if o else default

    def _target(self, i):
        o = self._off(i)
        if not o:
            return None
        p = self.pos + o
        return p + struct.unpack_from("<I", self.buf, p)[0]

    def table(self, i):
        t = self._target(i)
        return Table(self.buf, t) if t is not None else None

    def vector(self, i, fmt):
        t = self._target(i)
        if t is None:
            return []
        n = struct.unpack_from("<I", self.buf, t)[0]
        return list(struct.unpack_from(f"<{n}{fmt}", self.buf, t + 4))

    def bytes(self, i):
        t = self._target(i)
        if t is None:
            return b""
        n = struct.unpack_from("<I", self.buf, t)[0]
        return bytes(self.buf[t + 4:t + 4 + n])

    def tables(self, i):
        t = self._target(i)
        if t is None:
            return []
        n = struct.unpack_from("<I", self.buf, t)[0]
        return [Table(self.buf, t + 4 + 4 * k + struct.unpack_from("<I", self.buf, t + 4 + 4 * k)[0])
                for k in range(n)]

    def string(self, i):
        return self.bytes(i).decode(errors="replace")


class Model:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.buf = f.read()
        root = Table(self.buf, struct.unpack_from("<I", self.buf, 0)[0])
        codes = []
        for oc in root.tables(1):
            b = oc.scalar(3, "i", 0)
            codes.append(max(b, oc.scalar(0, "b", 0)))
        buffers = [b.bytes(0) for b in root.tables(4)]
        sg = root.tables(2)[0]
        self.tensors = []
        for t in sg.tables(0):
            q = t.table(4)
            ty = TYPES.get(t.scalar(1, "b", 0), np.uint8)
            data = buffers[t.scalar(2, "I", 0)] if t.scalar(2, "I", 0) < len(buffers) else b""
            shape = t.vector(0, "i")
            self.tensors.append(dict(
                name=t.string(3), shape=shape, dtype=ty,
                scale=q.vector(2, "f") if q else [], zero_point=q.vector(3, "q") if q else [],
                data=np.frombuffer(data, dtype=ty).reshape(shape) if data else None))
        self.inputs, self.outputs = sg.vector(1, "i"), sg.vector(2, "i")
        self.operators = []
        for op in sg.tables(3):
            code = codes[op.scalar(0, "I", 0)]
            opts = op.table(4)
            self.operators.append(dict(op=OPS.get(code, str(code)), inputs=op.vector(1, "i"),
                                       outputs=op.vector(2, "i"),
                                       options=_options(OPS.get(code), opts)))


def _options(name, t):
    if t is None:
        return {}
    if name == "CONV_2D":
        return dict(padding="SAME" if t.scalar(0, "b", 0) == 0 else "VALID",
                    stride_w=t.scalar(1, "i", 1), stride_h=t.scalar(2, "i", 1),
                    activation=t.scalar(3, "b", 0), dilation=(t.scalar(5, "i", 1),
                                                              t.scalar(4, "i", 1)))
    if name == "DEPTHWISE_CONV_2D":
        return dict(padding="SAME" if t.scalar(0, "b", 0) == 0 else "VALID",
                    stride_w=t.scalar(1, "i", 1), stride_h=t.scalar(2, "i", 1),
                    depth_multiplier=t.scalar(3, "i", 1), activation=t.scalar(4, "b", 0),
                    dilation=(t.scalar(6, "i", 1), t.scalar(5, "i", 1)))
    if name == "ADD":
        return dict(activation=t.scalar(0, "b", 0))
    return {}


def conv_layers(path):
    """Every CONV_2D / DEPTHWISE_CONV_2D of a uint8 model as the parameters of mesagen.conv_op."""
    m = Model(path)
    out = []
    for o in m.operators:
        if o["op"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        xi, wi, bi = (m.tensors[i] for i in o["inputs"][:3])
        yi = m.tensors[o["outputs"][0]]
        if xi["dtype"] != np.uint8 or len(wi["scale"]) != 1:
            continue
        dw = o["op"] == "DEPTHWISE_CONV_2D" and xi["shape"][3] > 1
        _, h, w, c = xi["shape"]
        k = wi["shape"][1]
        s = o["options"]["stride_h"]
        if o["options"]["padding"] == "SAME":
            th = max((-(-h // s) - 1) * s + k - h, 0)
            tw = max((-(-w // s) - 1) * s + k - w, 0)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            pads = (0, 0, 0, 0)
        wdata = wi["data"]
        out.append(dict(name=yi["name"], kind="dw" if dw else "conv", input=(h, w, c),
                        output=tuple(yi["shape"][1:]), kernel=k, stride=s, pads=pads,
                        s_in=xi["scale"][0], zp_in=int(xi["zero_point"][0]),
                        s_w=wi["scale"][0], zp_w=int(wi["zero_point"][0]),
                        s_out=yi["scale"][0], zp_out=int(yi["zero_point"][0]),
                        weights=wdata[0] if dw else (wdata if o["op"] == "CONV_2D"
                                                     else wdata[0][..., None].transpose(3, 0, 1, 2)),
                        bias=bi["data"].astype(np.int32), activation=o["options"]["activation"]))
    return out
