"""The 130 regcmd entries of one Mesa task (mesa-rocket-spec §2.2 order, §2.4 values), and the
job of a whole op: BOs laid out bottom-up from IOVA 0 as rocket assigns them, one kick per task.
"""
import numpy as np

from . import mesagen as mg
from .regs import MARKER, entry, op_en


def task_entries(op, g, t, i, n, reuse, iova, next_regcmd):
    """Entries of task i of n (t: the band from split_tasks)."""
    dw, s, k, one = op["dw"], g["s"], g["k"], g["one"]
    add = op["add"] is not None
    W, H = g["w"], g["h"]
    ow, oh, oh_full = g["wo"], t["oh"], g["ho"]
    rows_done = sum(x["oh"] for x in t["all"][:i])
    cbuf0 = t["data_bank"] | t["weight_bank"] << 4 | ((1 << 13) if i > 0 and reuse else 0)
    con1 = (3 if dw else 0) | ((1 << 30 | 1 << 29 | 8 << 12) if one else 0)
    line = max(W, 16) if one else W * 4
    surf = int(line * (H - 1)) if one else int(line * (H / 4 - 1))
    entries_ = -(-W * 2 * -(-g["c"] // 16) // 8)
    if one:
        entries_ = W * H
    if W == 40 and g["c"] == 40:
        entries_ = 40
    kernels = 1 if dw else mg.align(g["oc"], 2)
    if one:
        trunc = 15 if add else 14
        cvt = [(trunc | trunc << 6 | trunc << 12 | trunc << 18) << 4] + \
              [0x7E84FF80 if add else 0x4000FF80] * 4 + [0xFFFF]
    else:
        cvt = [0xB] + [0x00010000] * 4 + [0]
    scale, shift = mg.out_cvt(op)
    tbits = mg.truncate_bits(op)
    surf_full = ow * oh_full
    out_off = rows_done * ow * 16
    in_off = t["top"] * (line if one else W * 16)
    if add:
        ew_cfg = 0x904202C0
        ew_scale, ew_off = mg.ew_cvt(op)
        notch = 16 * (max(surf_full, 12) + ow * (oh_full - oh))
        if W == 3:
            notch = 15 << 4
    rdma_mode = (0x7D00 if add else 0x7810) + (0x6 if dw else 0)
    last_link = (next_regcmd or 0) if n > 1 else None
    R = [
        ("CNA_CBUF_CON0", cbuf0), ("CNA_DCOMP_REGNUM", 0), ("CNA_DCOMP_CTRL", 0),
        ("CNA_CONV_CON1", con1), ("DPU_S_POINTER", 0xE), ("DPU_RDMA_S_POINTER", 0xE),
        ("CNA_CONV_CON1", con1), ("CNA_CONV_CON2", (50 + s + 1) << 4),
        ("CNA_CONV_CON3", s | s << 3),
        ("CNA_DATA_SIZE0", W << 16 | t["rows"]),
        ("CNA_DATA_SIZE1", (g["c"] - 1) << 16 | g["cal"]),
        ("CNA_DATA_SIZE2", ow), ("CNA_DATA_SIZE3", ow * oh),
        ("CNA_WEIGHT_SIZE0", k * k * g["cal"] * kernels), ("CNA_WEIGHT_SIZE1", k * k * g["cal"]),
        ("CNA_WEIGHT_SIZE2", k << 24 | k << 16 | kernels),
        ("CNA_CBUF_CON0", cbuf0), ("CNA_CBUF_CON1", entries_),
        ("CNA_CVT_CON0", cvt[0]), ("CNA_CVT_CON1", cvt[1]), ("CNA_CVT_CON2", cvt[2]),
        ("CNA_CVT_CON3", cvt[3]), ("CNA_CVT_CON4", cvt[4]),
        ("CNA_FC_CON0", 0), ("CNA_FC_CON1", 0),
        ("CNA_PAD_CON0", t["pad_top"] | g["pl"] << 4),
        ("CNA_FEATURE_DATA_ADDR", iova["in"] + in_off), ("CNA_FC_CON2", 0),
        ("CNA_DMA_CON0", 0x000F000F), ("CNA_DMA_CON1", line), ("CNA_DMA_CON2", surf & 0x0FFFFFFF),
        ("CNA_FC_DATA_SIZE0", W << 16 | t["rows"]), ("CNA_FC_DATA_SIZE1", g["cal"]),
        ("CNA_DCOMP_CTRL", 0), ("CNA_DCOMP_REGNUM", 0), ("CNA_DCOMP_ADDR0", iova["wt"]),
    ]
    R += [(f"CNA_DCOMP_AMOUNT{j}", 0) for j in range(16)]
    R += [
        ("CNA_CVT_CON5", cvt[5]), ("CNA_PAD_CON1", mg.pad_value(op, g)),
        ("CORE_MISC_CFG", 1 | (2 if dw else 0)),
        ("CORE_DATAOUT_SIZE_0", (oh - 1) << 16 | (ow - 1)),
        ("CORE_DATAOUT_SIZE_1", g["ocal"] - 1), ("CORE_CLIP_TRUNCATE", tbits),
        ("CORE_UNDOC_3030", 0),
        ("DPU_FEATURE_MODE_CFG", 0x1FC if dw else 0x1E4), ("DPU_DATA_FORMAT", 0),
        ("DPU_OFFSET_PEND", 0), ("DPU_DST_BASE_ADDR", iova["out"] + out_off),
        ("DPU_DST_SURF_STRIDE", 16 * surf_full), ("DPU_DATA_CUBE_WIDTH", ow - 1),
        ("DPU_DATA_CUBE_HEIGHT", oh - 1), ("DPU_DATA_CUBE_NOTCH_ADDR", 0),
        ("DPU_DATA_CUBE_CHANNEL", (g["oc"] - 1) << 16 | (g["ocal"] - 1)),
        ("DPU_BS_CFG", 0x20150), ("DPU_BS_ALU_CFG", 0), ("DPU_BS_MUL_CFG", 0),
        ("DPU_BS_RELUX_CMP_VALUE", 0), ("DPU_BS_OW_CFG", 0x36C if dw else 0x124),
        ("DPU_BS_OW_OP", (0x80 - op["zp_w"]) & 0xFFFF),
        ("DPU_WDMA_SIZE_0", g["ocal"] - 1), ("DPU_WDMA_SIZE_1", (oh - 1) << 16 | (ow - 1)),
        ("DPU_BN_CFG", 0x53), ("DPU_BN_ALU_CFG", 0), ("DPU_BN_MUL_CFG", 0),
        ("DPU_BN_RELUX_CMP_VALUE", 0),
        ("DPU_EW_CFG", ew_cfg if add else 0x383),
        ("DPU_EW_CVT_OFFSET_VALUE", (ew_off & 0xFFFFFFFF) if add else 0),
        ("DPU_EW_CVT_SCALE_VALUE", ew_scale if add else 1), ("DPU_EW_RELUX_CMP_VALUE", 0),
        ("DPU_OUT_CVT_OFFSET", (op["zp_out"] - 0x80) & 0xFFFFFFFF),
        ("DPU_OUT_CVT_SCALE", scale), ("DPU_OUT_CVT_SHIFT", shift),
    ]
    R += [(f"DPU_EW_OP_VALUE_{j}", 0) for j in range(8)]
    R += [("DPU_SURFACE_ADD", 16 * 2 * surf_full * (2 if dw else 1)), ("DPU_UNDOC_40C4", 0)]
    R += [(r, 0) for r in ("DPU_LUT_ACCESS_CFG", "DPU_LUT_ACCESS_DATA", "DPU_LUT_CFG",
                           "DPU_LUT_INFO", "DPU_LUT_LE_START", "DPU_LUT_LE_END",
                           "DPU_LUT_LO_START", "DPU_LUT_LO_END", "DPU_LUT_LE_SLOPE_SCALE",
                           "DPU_LUT_LE_SLOPE_SHIFT", "DPU_LUT_LO_SLOPE_SCALE",
                           "DPU_LUT_LO_SLOPE_SHIFT")]
    R += [
        ("DPU_RDMA_DATA_CUBE_WIDTH", ow - 1), ("DPU_RDMA_DATA_CUBE_HEIGHT", oh - 1),
        ("DPU_RDMA_DATA_CUBE_CHANNEL", g["ocal"] - 1),
        ("DPU_RDMA_SRC_BASE_ADDR", iova["add"] + out_off if add else 0),
        ("DPU_RDMA_BRDMA_CFG", 2), ("DPU_RDMA_BS_BASE_ADDR", iova["bias"]),
        ("DPU_RDMA_NRDMA_CFG", 0), ("DPU_RDMA_BN_BASE_ADDR", 0),
        ("DPU_RDMA_ERDMA_CFG", 0x40000004 if add else 1),
        ("DPU_RDMA_EW_BASE_ADDR", iova["add"] + out_off + 16 * surf_full if add else 0),
        ("DPU_RDMA_EW_SURF_STRIDE", 16 * max(surf_full, 12) if add else 0),
        ("DPU_RDMA_FEATURE_MODE_CFG", rdma_mode), ("DPU_RDMA_SRC_DMA_CFG", 0),
        ("DPU_RDMA_SURF_NOTCH", notch if add else 0), ("DPU_RDMA_PAD_CFG", 0),
        ("DPU_RDMA_WEIGHT", 0x01010101), ("DPU_RDMA_EW_SURF_NOTCH", notch if add else 0),
    ]
    out = [entry(r, v) for r, v in R]
    assert len(out) == 126, len(out)
    if n == 1:
        out.append(0)
    else:
        out.append(entry("PC_BASE_ADDRESS", last_link))
    out.append(entry("PC_REGISTER_AMOUNTS", 64 if i < n - 1 else 0))
    out += [MARKER, op_en(0x1D)]
    return out


def build_job(op):
    """The op's BOs at rocket's bottom-up IOVAs, and one kick per task (mainline rocket)."""
    g = mg.geometry(op)
    bands, reuse = mg.split_tasks(op, g)
    for b in bands:
        b["all"] = bands
    n = len(bands)
    lay = [0]

    def take(size):
        iova = lay[0]
        lay[0] += mg.align(max(size, 1), 4096)
        return iova

    iova = {}
    iova["regcmd"] = take(n * mg.TASK_STRIDE)
    in_bytes = mg.input_bytes(op, g)
    iova["in"] = take(max(len(in_bytes), mg.tensor_bo_size(g["h"], g["w"], g["c"])))
    wt = mg.weight_bytes(op, g)
    iova["wt"] = take(len(wt))
    bias = mg.bias_bytes(op, g)
    iova["bias"] = take(len(bias))
    out_size = mg.tensor_bo_size(g["ho"], g["wo"], g["oc"])
    iova["out"] = take(out_size)
    segments = {iova["in"]: in_bytes, iova["wt"]: wt, iova["bias"]: bias,
                iova["out"]: bytes(out_size)}
    if op["add"] is not None:
        add_bytes = mg.nc1hwc2(op["add"][0])
        iova["add"] = take(max(len(add_bytes), out_size))
        segments[iova["add"]] = add_bytes
    # a BO is whole pages: pad every segment to the next one's IOVA
    order = sorted(segments)
    for a, b in zip(order, order[1:] + [lay[0]]):
        segments[a] = segments[a] + bytes(b - a - len(segments[a]))
    prog = bytearray(n * mg.TASK_STRIDE)
    for i, b in enumerate(bands):
        nxt = iova["regcmd"] + (i + 1) * mg.TASK_STRIDE if i < n - 1 else 0
        e = task_entries(op, g, b, i, n, reuse, iova, nxt)
        prog[i * mg.TASK_STRIDE:i * mg.TASK_STRIDE + 8 * len(e)] = \
            np.array(e, dtype="<u8").tobytes()
    segments[iova["regcmd"]] = bytes(prog) + bytes(mg.align(len(prog), 4096) - len(prog))
    kicks = [(iova["regcmd"] + i * mg.TASK_STRIDE, 64, 0x7001) for i in range(n)]
    return {"segments": segments, "kicks": kicks, "out": (iova["out"], out_size),
            "geometry": g, "tasks": n}


def read_output(job, raw):
    """§3.4: uint8 NHWC output from the output BO bytes."""
    g = job["geometry"]
    a = np.frombuffer(raw, dtype=np.int8).astype(np.int64)
    surfaces = -(-g["oc"] // 16)
    a = a[:surfaces * g["ho"] * g["wo"] * 16].reshape(surfaces, g["ho"], g["wo"], 16)
    out = np.zeros((g["ho"], g["wo"], g["oc"]), dtype=np.int64)
    for o in range(g["oc"]):
        out[:, :, o] = a[o // 16, :, :, o % 16] + 0x80
    return out.astype(np.uint8)
