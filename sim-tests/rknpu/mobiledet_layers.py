"""The convolution and addition layers of a TFLite model (SSDLite MobileDet by default), as plain
dicts for tests, job generators and benches; run it to print them.

    conv_layers(path)  every CONV_2D / DEPTHWISE_CONV_2D of subgraph 0, in operator order
    add_layers(path)   every ADD, with the operators that produced its two inputs

    python3 sim-tests/rknpu/mobiledet_layers.py [MODEL.tflite]

Without a model argument it uses $ROCKETSIM_MODEL, else MobileDet from scripts/fetch-models.
"""
import os
import struct
import subprocess
import sys

import numpy as np

try:
    from . import tflite
except ImportError:          # run as a script
    import tflite

MOBILEDET = "ssdlite_mobiledet_coco_qat_postprocess.tflite"

# Weight scales (float32 bit patterns) for which Mesa's rocket driver applies its "truncate"
# workaround to a convolution's output conversion.
MESA_TRUNCATE_SCALES = frozenset((
    0x3a88323f, 0x3c0060de, 0x3c06022d, 0x3c1642e3, 0x3c1e3f51, 0x3c5c8aa8, 0x3c615e93,
    0x3c7326a2, 0x3c783013, 0x3d1748e6, 0x3d282992, 0x3d2e87ae, 0x3d77f5f6, 0x3a9a5956,
    0x3caebc56))


def f32_bits(x):
    """The IEEE-754 binary32 bit pattern of x."""
    return struct.unpack("<I", struct.pack("<f", x))[0]


def _quant(t):
    """(scale, zero point) of a tensor: scalars when per-tensor, numpy arrays when per-channel,
    None when not quantised."""
    if not t["scale"]:
        return None, None
    if len(t["scale"]) == 1:
        return t["scale"][0], t["zero_point"][0] if t["zero_point"] else 0
    return np.array(t["scale"], np.float32), np.array(t["zero_point"], np.int64)


def _hwc(shape):
    """NHWC with N = 1 -> (H, W, C)."""
    if len(shape) != 4 or shape[0] != 1:
        raise ValueError(f"expected a [1, H, W, C] tensor, got {shape}")
    return tuple(shape[1:])


def _model(path_or_model):
    return path_or_model if isinstance(path_or_model, tflite.Model) else tflite.Model(path_or_model)


def conv_layers(path):
    """One dict per CONV_2D / DEPTHWISE_CONV_2D:

    index (operator), name (output tensor), kind ('conv' | 'dw'), tensors (input, weights, bias,
    output indices), input (H, W, C), output (H, W, OC), kernel (kh, kw), stride (sh, sw),
    dilation (dh, dw), depth_multiplier (1 for conv), padding ('SAME' | 'VALID'),
    pads (top, bottom, left, right) by TFLite's SAME rule (before = total // 2),
    input_scale/input_zp, weight_scale/weight_zp, bias_scale/bias_zp, output_scale/output_zp
    (floats / ints; numpy arrays when per-channel), weights (model dtype, uint8 for MobileDet:
    [OC][kh][kw][C] conv, [kh][kw][C*multiplier] dw), bias (int32 [OC], zeros when the op has
    none), activation ('NONE', 'RELU', 'RELU6', ...), weight_scale_bits (float32 bits of a
    per-tensor weight scale, else None) and mesa_truncate (those bits are in Mesa's list).
    """
    m = _model(path)
    layers = []
    for op in m.operators:
        if op["op"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        dw = op["op"] == "DEPTHWISE_CONV_2D"
        ins = op["inputs"] + [-1] * (3 - len(op["inputs"]))
        x, w, y = m.tensors[ins[0]], m.tensors[ins[1]], m.tensors[op["outputs"][0]]
        b = m.tensors[ins[2]] if ins[2] >= 0 else None
        o = op["options"]
        h, wd, c = _hwc(x["shape"])
        oh, ow, oc = _hwc(y["shape"])
        # TFLite weights: conv [OC, kh, kw, C], depthwise [1, kh, kw, C * multiplier]
        kh, kw = w["shape"][1:3]
        weights = w["data"][0] if dw and w["data"] is not None else w["data"]
        stride = (o["stride_h"], o["stride_w"])
        dilation = o["dilation"]
        if o["padding"] == "SAME":
            pads = (tflite.same_pads(h, kh, stride[0], dilation[0])
                    + tflite.same_pads(wd, kw, stride[1], dilation[1]))
        else:
            pads = (0, 0, 0, 0)
        # The model's output shape must agree with the geometry.
        exp_h = (h + pads[0] + pads[1] - ((kh - 1) * dilation[0] + 1)) // stride[0] + 1
        exp_w = (wd + pads[2] + pads[3] - ((kw - 1) * dilation[1] + 1)) // stride[1] + 1
        if (exp_h, exp_w) != (oh, ow):
            raise ValueError(f"{y['name']}: output {oh}x{ow}, geometry gives {exp_h}x{exp_w}")
        s_in, zp_in = _quant(x)
        s_w, zp_w = _quant(w)
        s_b, zp_b = _quant(b) if b is not None else (None, None)
        s_out, zp_out = _quant(y)
        bits = f32_bits(s_w) if isinstance(s_w, float) else None
        bias = (b["data"].astype(np.int32) if b is not None and b["data"] is not None
                else np.zeros(oc, np.int32))
        layers.append(dict(
            index=op["index"], name=y["name"], kind="dw" if dw else "conv",
            tensors=(ins[0], ins[1], ins[2], op["outputs"][0]),
            input=(h, wd, c), output=(oh, ow, oc), kernel=(kh, kw), stride=stride,
            dilation=dilation, depth_multiplier=o.get("depth_multiplier", 1) if dw else 1,
            padding=o["padding"], pads=pads,
            input_scale=s_in, input_zp=zp_in, weight_scale=s_w, weight_zp=zp_w,
            bias_scale=s_b, bias_zp=zp_b, output_scale=s_out, output_zp=zp_out,
            weights=weights, bias=bias, activation=o["fused_activation"],
            weight_scale_bits=bits, mesa_truncate=bits in MESA_TRUNCATE_SCALES))
    return layers


def add_layers(path):
    """One dict per ADD: index, name, inputs (the two tensor indices), producers (index of the
    operator that wrote each input, None for a model input or constant), producer_ops (their op
    names), producer_names (their output tensor names), shapes (input a, input b, output),
    input_scales/input_zps, output_scale/output_zp, activation."""
    m = _model(path)
    made_by = m.producers()
    layers = []
    for op in m.operators:
        if op["op"] != "ADD":
            continue
        a, b = op["inputs"][:2]
        y = m.tensors[op["outputs"][0]]
        producers = tuple(made_by.get(t) for t in (a, b))
        qa, qb, qy = _quant(m.tensors[a]), _quant(m.tensors[b]), _quant(y)
        layers.append(dict(
            index=op["index"], name=y["name"], inputs=(a, b), output=op["outputs"][0],
            producers=producers,
            producer_ops=tuple(m.operators[p]["op"] if p is not None else None for p in producers),
            producer_names=tuple(m.tensors[t]["name"] for t in (a, b)),
            shapes=(tuple(m.tensors[a]["shape"]), tuple(m.tensors[b]["shape"]), tuple(y["shape"])),
            input_scales=(qa[0], qb[0]), input_zps=(qa[1], qb[1]),
            output_scale=qy[0], output_zp=qy[1], activation=op["options"].get("fused_activation")))
    return layers


def _default_model():
    if os.environ.get("ROCKETSIM_MODEL"):
        return os.environ["ROCKETSIM_MODEL"]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    models = subprocess.run([os.path.join(root, "scripts", "fetch-models")], check=True,
                            stdout=subprocess.PIPE, text=True).stdout.strip()
    return os.path.join(models, MOBILEDET)


def _short(name, width=44):
    return name if len(name) <= width else "…" + name[-(width - 1):]


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, np.ndarray):
        return f"[{v.size}ch]"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def main(argv):
    path = argv[1] if len(argv) > 1 else _default_model()
    m = tflite.Model(path)
    convs, adds = conv_layers(m), add_layers(m)
    x = m.tensors[m.inputs[0]]
    print(f"# {os.path.basename(path)}: {len(m.operators)} operators, {len(m.tensors)} tensors; "
          f"input {x['name']} {x['shape']} {x['type']} scale {_fmt(_quant(x)[0])} "
          f"zp {_fmt(_quant(x)[1])}")
    print("# ops: " + ", ".join(f"{k} {v}" for k, v in sorted(m.op_counts().items())))
    print(f"# {sum(l['kind'] == 'conv' for l in convs)} conv, "
          f"{sum(l['kind'] == 'dw' for l in convs)} dw, {len(adds)} add")
    print(f"{'op':>4} {'kind':4} {'input':>14} {'output':>14} {'k':>3} {'s':>3} "
          f"{'pads t,b,l,r':>12} {'act':5} {'s_in':>9} {'zp':>3} {'s_w':>9} {'zp':>3} "
          f"{'s_out':>9} {'zp':>3}  name")
    rows = [(l["index"], l) for l in convs] + [(a["index"], a) for a in adds]
    for _, l in sorted(rows, key=lambda r: r[0]):
        if "kind" in l:
            k, s = l["kernel"], l["stride"]
            print(f"{l['index']:4d} {l['kind']:4} {'x'.join(map(str, l['input'])):>14} "
                  f"{'x'.join(map(str, l['output'])):>14} "
                  f"{k[0] if k[0] == k[1] else 'x'.join(map(str, k)):>3} "
                  f"{s[0] if s[0] == s[1] else 'x'.join(map(str, s)):>3} "
                  f"{','.join(map(str, l['pads'])):>12} {l['activation']:5} "
                  f"{_fmt(l['input_scale']):>9} {_fmt(l['input_zp']):>3} "
                  f"{_fmt(l['weight_scale']):>9} {_fmt(l['weight_zp']):>3} "
                  f"{_fmt(l['output_scale']):>9} {_fmt(l['output_zp']):>3}  {_short(l['name'])}")
        else:
            src = " + ".join(f"op{p}:{o}" if p is not None else "input"
                             for p, o in zip(l["producers"], l["producer_ops"]))
            a_s, b_s = l["input_scales"]
            a_z, b_z = l["input_zps"]
            print(f"{l['index']:4d} add  {'x'.join(map(str, l['shapes'][2][1:])):>14} "
                  f"= {src}; in {_fmt(a_s)}/{_fmt(a_z)} + {_fmt(b_s)}/{_fmt(b_z)} "
                  f"out {_fmt(l['output_scale'])}/{_fmt(l['output_zp'])} "
                  f"{l['activation']}  {_short(l['name'])}")
    hits = [l for l in convs if l["mesa_truncate"]]
    print()
    print(f"# Mesa truncate-hack weight scales: {len(hits)} of {len(convs)} conv/dw layers")
    for l in hits:
        print(f"{l['index']:4d} {l['kind']:4} weight scale {l['weight_scale']!r} "
              f"(0x{l['weight_scale_bits']:08x})  {_short(l['name'], 60)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except BrokenPipeError:          # e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
