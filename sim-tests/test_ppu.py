"""PPU pooling (qemu-hw/core/HARDWARE-UNKNOWNS.md Q16): standalone pool tasks (op_en 0x60) built by
rknpu/pooljob.py run on the C core (rknpu-run) and on the independent reference (rknpu/hwref.py,
written from Q16), bit-exactly, on seeded random shapes, values, methods and precisions; and the
hardware observations Q16 rests on as fixed cases, checked on both: the int8/int16 average's
rounding against GN's `r76p_avg_round` oracle, AB's captured integer averages, the fp16 reciprocal
encodings, pad values, count-include-pad, the zero-writing precisions, the completion bit, the
refusals and the PPU quirks of Q15."""
import json
import os
import subprocess

import numpy as np
import pytest

import tinyjob
from rknpu import hwref, pooljob as pj

RKNPU_RUN = os.environ.get("RKNPU_RUN", os.path.join(os.path.dirname(__file__), "..", "build",
                                                      "qemu-hw", "tools", "rknpu-run"))
RKNPU_DIS = os.path.join(os.path.dirname(RKNPU_RUN), "rknpu-dis")
PPU_0, PPU_1, DPU_BITS, ERR_READ, ERR_WRITE = 0x400, 0x800, 0x300, 0x1000, 0x2000


class Run:
    pass


def run_core(job, tmp_path, tag="job", quirks=None, quiet=True):
    d = str(tmp_path / tag)
    tinyjob.write_job_dir(job, d)
    stats = os.path.join(d, "stats.json")
    args = [RKNPU_RUN] + (["-q"] if quiet else []) + ["--stats", stats]
    args += ["--quirks", quirks] if quirks else []
    res = subprocess.run(args + [d], capture_output=True, text=True)
    assert res.returncode in (0, 1), res.stderr
    r = Run()
    with open(os.path.join(d, "out.bin"), "rb") as f:
        r.out = f.read()
    with open(stats) as f:
        r.stats = json.load(f)
    r.rc, r.stdout, r.stderr = res.returncode, res.stdout, res.stderr
    r.hang = "hang" in res.stderr
    r.status = [s["status"] for s in r.stats if "status" in s]
    r.quirks = sorted({q for s in r.stats for q in s["quirks"]})
    return r


def both(job, tmp_path, tag="job", quirks=None):
    """The job on the core and on hwref: the same output bytes, statuses, hangs and quirks."""
    report = []
    mem, status = hwref.run_job(job["segments"], job["kicks"], quirks=quirks, report=report)
    ref = mem.read(*job["out"])
    core = run_core(job, tmp_path, tag, quirks)
    if core.out != ref:
        a, b = np.frombuffer(core.out, np.uint8), np.frombuffer(ref, np.uint8)
        bad = np.nonzero(a != b)[0]
        raise AssertionError(f"core and hwref differ in {len(bad)} of {len(a)} bytes, first at "
                             f"{bad[0]}: core {a[bad[:8]]} ref {b[bad[:8]]}")
    hang = any(t["hang"] for t in report)
    assert core.hang == hang, core.stderr
    assert len(core.stats) == len(report)
    assert all(s["pool"] == 1 for s in core.stats if s["op_en"] & 0x60)
    assert sorted({q for t in report for q in t["quirks"]}) == core.quirks
    if not hang:
        assert core.status == status, (core.status, status, core.stderr)
    core.ref_status, core.arr = status, pj.unpack(core.out, job["geom"])
    return core


def oracle_r76p(s, kw, kh):
    """GN's description of RU `r76p_avg_round`: round half away from zero; an exact tie of an
    even window steps one toward zero when either Q16 reciprocal is inexact, or when it is exact
    and the quotient is odd."""
    n = kw * kh
    q = (abs(s) + n // 2) // n * (1 if s >= 0 else -1)
    if n % 2 == 0 and abs(s - q * n) == n // 2:
        exact = 65536 % kw == 0 and 65536 % kh == 0
        if not exact or q % 2:
            q -= 1 if s >= 0 else -1
    return q


def window_sums(x, kernel, stride):
    """Sums of the unpadded windows of x (h, w, c) as int64 (oh, ow, c)."""
    (kh, kw), (sy, sx) = kernel, stride
    h, w, _ = x.shape
    oh, ow = (h - kh) // sy + 1, (w - kw) // sx + 1
    x = x.astype(np.float64 if x.dtype.kind == "f" else np.int64)
    return sum(x[ky:ky + (oh - 1) * sy + 1:sy, kx:kx + (ow - 1) * sx + 1:sx]
               for ky in range(kh) for kx in range(kw))


def naive_pool(x, method, kernel, stride, pads=(0, 0, 0, 0), pad=0):
    """Max / min over padded windows, one window at a time (AB's pool_reference)."""
    (kh, kw), (sy, sx) = kernel, stride
    pl, pt, pr, pb = pads
    p = np.pad(x, ((pt, pb), (pl, pr), (0, 0)), constant_values=pad)
    oh, ow = (p.shape[0] - kh) // sy + 1, (p.shape[1] - kw) // sx + 1
    out = np.empty((oh, ow, x.shape[2]), x.dtype)
    for y in range(oh):
        for xx in range(ow):
            win = p[y * sy:y * sy + kh, xx * sx:xx * sx + kw]
            out[y, xx] = win.max(axis=(0, 1)) if method == "max" else win.min(axis=(0, 1))
    return out


# ---- core == hwref on random pools ----

FP16_SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 6e-8, -6e-8, 65504, -65504, 1e-5],
                        dtype=np.float16)


def random_job(seed):
    rng = np.random.default_rng(seed)
    dt = [np.int8, np.int16, np.float16][seed % 3]
    method = ["avg", "max", "min"][seed // 3 % 3]
    big = rng.random() < 0.15
    kh, kw = (int(v) for v in rng.integers(1, 17 if big else 6, 2))
    sy, sx = (int(v) for v in rng.integers(1, 5, 2))
    pads = tuple(int(v) for v in rng.integers(0, 8 if rng.random() < 0.2 else 3, 4))
    h = int(rng.integers(max(1, kh - pads[1] - pads[3]), 20))
    w = int(rng.integers(max(1, kw - pads[0] - pads[2]), 24))
    c = int(rng.integers(1, 41))
    if dt == np.float16:
        x = (rng.normal(0, 10 ** rng.uniform(-2, 4), (h, w, c))).astype(np.float16)
        if rng.random() < 0.3:
            idx = rng.random((h, w, c)) < 0.1
            x[idx] = rng.choice(FP16_SPECIAL, int(idx.sum()))
    else:
        info = np.iinfo(dt)
        x = rng.integers(info.min, info.max + 1, (h, w, c)).astype(dt)
    kw_ = {}
    if method == "avg":
        choice = rng.integers(0, 4)
        if dt == np.float16:
            recip = [(pj.recip_fp16(kw), pj.recip_fp16(kh)), (pj.recip_fp16(kw), pj.recip_fp16(kh)),
                     (0x7800, 0x7800), tuple(int(v) for v in rng.integers(0, 1 << 17, 2))][choice]
        else:
            recip = [(pj.recip_q16(kw), pj.recip_q16(kh)),
                     (pj.recip_q16(kw, "round"), pj.recip_q16(kh, "round")),
                     (pj.recip_fp16(kw), pj.recip_fp16(kh)),
                     tuple(int(v) for v in rng.integers(0, 1 << 17, 2))][choice]
        kw_["recip"] = recip
    if rng.random() < 0.3:
        kw_["pad_value"] = int(rng.integers(0, 1 << 32))
    if rng.random() < 0.3:
        kw_["line"] = (w + int(rng.integers(1, 4))) * 16
        kw_["surf"] = (h + int(rng.integers(0, 3))) * kw_["line"]
    if rng.random() < 0.2:
        oh, ow = pj.out_size(h, kh, sy, pads[1], pads[3]), pj.out_size(w, kw, sx, pads[0], pads[2])
        kw_["out_hw"] = (int(rng.integers(1, oh + 1)), int(rng.integers(1, ow + 1)))
    if rng.random() < 0.2:   # a gap between output surfaces
        o = kw_.get("out_hw") or (pj.out_size(h, kh, sy, pads[1], pads[3]),
                                  pj.out_size(w, kw, sx, pads[0], pads[2]))
        kw_["dst_surf"] = (o[0] * o[1] + int(rng.integers(1, 5))) * 16
    return pj.pool_job(x, method, (kh, kw), (sy, sx), pads, tail=int(rng.integers(-100, 100)),
                       **kw_)


@pytest.mark.parametrize("seed", range(48))
def test_random_pools_core_equals_hwref(seed, tmp_path):
    job = random_job(seed)
    r = both(job, tmp_path)
    if not r.hang:
        assert r.status == [PPU_0], hex(r.status[0])
        assert r.out.count(pj.OUT_FILL) < len(r.out)   # it wrote


def test_random_pools_cover_every_case():
    """The random set above holds every precision x method, padded and strided windows, and
    special fp16 values (so a reference that drops a branch fails there)."""
    seen = set()
    for seed in range(48):
        g = random_job(seed)["geom"]
        seen.add((g["dtype"].name, any(g["pads"]), g["stride"] != (1, 1)))
    assert {d for d, _, _ in seen} == {"int8", "int16", "float16"}
    assert any(p for _, p, _ in seen) and any(s for _, _, s in seen)


# ---- the integer average: Q16 reciprocals and the hardware's rounding ----

def sums_cube(n, sums, lanes=16):
    """Non-overlapping windows of n elements (as one row of kh x kw tiles) summing to `sums`."""
    vals = []
    for s in sums:
        q, r = divmod(int(s), n)
        vals.append([q + 1] * r + [q] * (n - r))
    return np.array(vals)


@pytest.mark.parametrize("kernel", [(2, 2), (4, 4)])
def test_int8_average_rounding_every_sum(kernel, tmp_path):
    """GN's measured shapes with stride = kernel (2x2 s2, 4x4 s4): every possible window sum, all
    ties included, against the r76p_avg_round oracle (exact Q16 reciprocals: half to even)."""
    kh, kw = kernel
    n = kh * kw
    sums = np.arange(-128 * n, 127 * n + 1)
    side = int(np.ceil(np.sqrt(-(-len(sums) // 16))))
    sums = np.resize(sums, side * side * 16)
    vals = sums_cube(n, sums).reshape(side, side, 16, kh, kw)
    x = vals.transpose(0, 3, 1, 4, 2).reshape(side * kh, side * kw, 16).astype(np.int8)
    job = pj.pool_job(x, "avg", kernel, kernel)
    r = both(job, tmp_path)
    want = np.vectorize(oracle_r76p)(sums, kw, kh).reshape(side, side, 16)
    assert np.array_equal(r.arr, want)
    ties = (np.abs(sums - np.round(sums / n) * n) * 2 == n).sum()
    assert ties > 100


@pytest.mark.parametrize("kernel", [(2, 3), (3, 2)])
@pytest.mark.parametrize("dt", [np.int8, np.int16])
def test_integer_average_floored_recip_oracle(kernel, dt, tmp_path):
    """2x3 s1 (GN, the inexact Q16 0x10000/3): every tie rounds toward zero, as r76p_avg_round;
    int16 follows the same recipe (AB). Values small enough that ties are frequent."""
    rng = np.random.default_rng(7)
    x = rng.integers(-6, 7, (12, 14, 32)).astype(dt)
    if dt == np.int16:
        x = (x * 997).astype(dt)
    job = pj.pool_job(x, "avg", kernel, (1, 1))
    r = both(job, tmp_path)
    kh, kw = kernel
    s = window_sums(x, kernel, (1, 1))
    want = np.vectorize(oracle_r76p)(s, kw, kh)
    assert np.array_equal(r.arr[:, :, :32], want)
    n = kh * kw
    assert ((np.abs(s) % n) * 2 == n).sum() > 50        # the ties are there
    # a plain rounded division disagrees on many of them (GN: 20 % of outputs)
    assert (np.floor(s / n + 0.5) != want).sum() > 20


def test_integer_average_ab_captures(tmp_path):
    """AB pooling.py on an RK3588: a 2x2 s2 int8/int16 average of (-40+l, 20+l, -8+l, 28+l), mean l:
    with the fp16 encoding 0x7800 in both reciprocal registers the board returned
    [0 1 2 3 4 4 5 6 7 8 9 10 11 11 12 13]; with Q16 0x8000 the exact means; and with
    round(65536/k) the exact means of a 3x3 and a 2x3 window."""
    captured = [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11, 11, 12, 13]
    for dt, lanes in ((np.int8, 16), (np.int16, 8)):
        lane = np.arange(lanes)
        x = np.stack((-40 + lane, 20 + lane, -8 + lane, 28 + lane)).reshape(2, 2, lanes)
        r = both(pj.pool_job(x.astype(dt), "avg", (2, 2), recip=(0x7800, 0x7800)), tmp_path,
                 f"neg-{lanes}")
        assert r.arr.reshape(-1).tolist() == captured[:lanes]
        r = both(pj.pool_job(x.astype(dt), "avg", (2, 2), recip=(0x8000, 0x8000)), tmp_path,
                 f"q16-{lanes}")
        assert r.arr.reshape(-1).tolist() == lane.tolist()
        for shape, pattern in (((3, 3), (-4, -3, -2, -1, 0, 1, 2, 3, 4)),
                               ((2, 3), (-3, -2, -1, 1, 2, 3))):
            means = lane - lanes // 2
            x = (np.array(pattern)[:, None] + means[None, :]).reshape(*shape, lanes).astype(dt)
            recip = (pj.recip_q16(shape[1], "round"), pj.recip_q16(shape[0], "round"))
            r = both(pj.pool_job(x, "avg", shape, recip=recip), tmp_path, f"{shape}-{lanes}")
            assert r.arr.reshape(-1).tolist() == means.tolist()


# ---- fp16: the reciprocal encodings ----

def test_fp16_reciprocal_encodings(tmp_path):
    """GN: fp16(65536/k): k=2 -> 0x7800, k=3 -> 0x7555 (AB's FP17 of 1/k: the same bits). A 2x2
    average with 0x7800 is exact on sums that fit fp16's 11 bits; a 3x3 with 0x7555 is within
    GN's 0.002 of the mean; AB's 3x5 global average with per-axis values is within 0.0625 and
    with 0x7800/0x7800 returns sum/4."""
    assert pj.recip_fp16(2) == 0x7800 and pj.recip_fp16(3) == 0x7555
    assert pj.recip_fp16(1) == 0x7C00          # FP17 1.0 (Q16 notes: never tested)
    rng = np.random.default_rng(3)
    x = rng.integers(-100, 100, (4, 6, 8)).astype(np.float16)
    r = both(pj.pool_job(x, "avg", (2, 2)), tmp_path, "k2")
    assert np.array_equal(r.arr.astype(np.float64), window_sums(x, (2, 2), (2, 2)) / 4)
    x = rng.random((6, 6, 8)).astype(np.float16)
    r = both(pj.pool_job(x, "avg", (3, 3)), tmp_path, "k3")
    mean = window_sums(x.astype(np.float64), (3, 3), (3, 3)) / 9
    assert np.abs(r.arr.astype(np.float64) - mean).max() <= 0.002
    g = (np.arange(3 * 5 * 8).reshape(3, 5, 8) / 8).astype(np.float16)
    mean = g.astype(np.float64).mean(axis=(0, 1))
    r = both(pj.pool_job(g, "avg", (3, 5)), tmp_path, "g35")
    assert np.abs(r.arr[0, 0].astype(np.float64) - mean).max() <= 0.0625
    r = both(pj.pool_job(g, "avg", (3, 5), recip=(0x7800, 0x7800)), tmp_path, "g35-bad")
    assert np.abs(r.arr[0, 0].astype(np.float64) - 15 * mean / 4).max() <= 0.0625


# ---- max / min, pads, count-include-pad, tails, zero-writing precisions ----

def test_max_min_pad_values(tmp_path):
    """AB: an all-negative fp16 2x2 with 0xFC00 (-inf) pads, max 2x2 s1 pad 1; GN: int8 max with
    the pad 0x0007FF80 (-128); min with +127 and +inf; AB: an 8x8 max with all pads 7 and a zero pad
    fill (15x15 outputs); a direct 16x16 max, stride 16; signed order of int8/int16 (AB)."""
    x = -np.arange(1, 2 * 2 * 8 + 1).reshape(2, 2, 8).astype(np.float16)
    r = both(pj.pool_job(x, "max", (2, 2), (1, 1), (1, 1, 1, 1), pad_value=0xFC00), tmp_path, "a")
    assert np.array_equal(r.arr, naive_pool(x, "max", (2, 2), (1, 1), (1, 1, 1, 1), -np.inf))
    rng = np.random.default_rng(5)
    for dt, pad in ((np.int8, 0x0007FF80), (np.int16, 0xFFFF8000)):
        x = rng.integers(np.iinfo(dt).min, np.iinfo(dt).max, (5, 6, 24)).astype(dt)
        r = both(pj.pool_job(x, "max", (3, 3), (2, 2), (1, 1, 1, 1), pad_value=pad), tmp_path,
                 f"m{dt.__name__}")
        assert np.array_equal(r.arr[:, :, :24],
                              naive_pool(x, "max", (3, 3), (2, 2), (1, 1, 1, 1), np.iinfo(dt).min))
        r = both(pj.pool_job(x, "min", (2, 3), (1, 2), (2, 0, 1, 1)), tmp_path, f"n{dt.__name__}")
        assert np.array_equal(r.arr[:, :, :24],
                              naive_pool(x, "min", (2, 3), (1, 2), (2, 0, 1, 1), np.iinfo(dt).max))
    x = np.arange(1, 8 * 8 * 8 + 1).reshape(8, 8, 8).astype(np.float16)
    r = both(pj.pool_job(x, "max", (8, 8), (1, 1), (7, 7, 7, 7), pad_value=0), tmp_path, "p7")
    assert r.arr.shape[:2] == (15, 15)
    assert np.array_equal(r.arr, naive_pool(x, "max", (8, 8), (1, 1), (7, 7, 7, 7), 0))
    x = np.arange(16 * 16 * 8).reshape(16, 16, 8).astype(np.float16)
    r = both(pj.pool_job(x, "max", (16, 16)), tmp_path, "k16")
    assert np.array_equal(r.arr[0, 0], x.max(axis=(0, 1)))
    assert not r.quirks


def test_average_counts_padding(tmp_path):
    """AB's USE_CNT sweep: a 1x1 fp16 input of 8, 2x2 average, stride 1, pads 1: every USE_CNT
    value gives 2 (count-include-pad), not 8."""
    x = np.full((1, 1, 8), 8, np.float16)
    for use_cnt in range(8):
        r = both(pj.pool_job(x, "avg", (2, 2), (1, 1), (1, 1, 1, 1), mode_extra=use_cnt << 5),
                 tmp_path, f"u{use_cnt}")
        assert (r.arr == 2).all()
    x = np.full((1, 1, 16), 8, np.int8)
    r = both(pj.pool_job(x, "avg", (2, 2), (1, 1), (1, 1, 1, 1)), tmp_path, "int8")
    assert (r.arr == 2).all()


def test_tail_lanes_are_pooled(tmp_path):
    """AB three_channels: a 3-channel fp16 max over lanes padded with -99 writes -99 in the tail."""
    x = np.array([[[1, 50, 3], [20, 2, 60]], [[4, 5, 6], [7, 8, 9]]], np.float16)
    r = both(pj.pool_job(x, "max", (2, 2), tail=-99), tmp_path)
    assert r.arr[0, 0, :3].tolist() == [20, 50, 60] and (r.arr[0, 0, 3:] == -99).all()


def test_explicit_strides(tmp_path):
    """AB: a 3x3x16 fp16 source with 80-byte lines and 256-byte surfaces pools exactly."""
    x = (np.arange(3 * 3 * 16).reshape(3, 3, 16) - 40).astype(np.float16)
    r = both(pj.pool_job(x, "max", (2, 2), (1, 1), line=80, surf=256), tmp_path)
    assert np.array_equal(r.arr, naive_pool(x, "max", (2, 2), (1, 1)))


@pytest.mark.parametrize("dt", [np.int32, np.float32])
def test_int32_fp32_write_zero(dt, tmp_path):
    """AB: PROC_PRECISION 4 (int32) and 5 (fp32) with 32-bit RDMA submit and write zero."""
    lane = np.arange(4)
    x = np.stack((-100 + lane, 50 - lane, -5 - lane, 100 - lane)).reshape(2, 2, 4).astype(dt)
    r = both(pj.pool_job(x, "max", (2, 2)), tmp_path)
    assert r.status == [PPU_0] and r.out == bytes(len(r.out))


# ---- completion, refusals, DMA faults ----

def test_pool_task_raises_ppu_not_dpu(tmp_path):
    """Q16 / Q14: a pool-only task raises PPU_0 or PPU_1 by the PPU executer (S_POINTER 0xE
    toggles it per task), never a DPU bit: mainline's mask 0x300 leaves the line low."""
    x = np.arange(4 * 4 * 16).reshape(4, 4, 16).astype(np.int8)
    r = both(pj.pool_job(x, "max", (2, 2), tasks=3), tmp_path)
    assert r.status == [PPU_0, PPU_1, PPU_0]
    assert not any(s & DPU_BITS for s in r.status)
    assert [s["pool"] for s in r.stats] == [1, 1, 1] and all(s["op_en"] == 0x60 for s in r.stats)
    assert all(s["macs"] == 0 and s["bytes_written"] == 2 * 2 * 16 for s in r.stats)


def test_rknpu_run_and_dis_name_the_pool(tmp_path):
    """rknpu-run's task line says "pool"; rknpu-dis names the PPU and PPU_RDMA fields."""
    job = pj.pool_job(np.zeros((4, 4, 8), np.float16), "avg", (2, 2))
    r = run_core(job, tmp_path, quiet=False)
    assert " op_en 0x60 pool 4x4x8 -> 2x2x8 k2x2 s2 " in r.stdout
    path = tmp_path / "regcmd.bin"
    path.write_bytes(job["segments"][job["kicks"][0][0]])
    out = subprocess.run([RKNPU_DIS, str(path)], check=True, capture_output=True, text=True).stdout
    for want in ("POOLING_KERNEL_CFG", "KERNEL_WIDTH=1", "KERNEL_STRIDE_HEIGHT=1",
                 "POOLING_METHOD=0", "FLYING_MODE=1", "RECIP_KERNEL_WIDTH", "PROC_PRECISION=2",
                 "PPU_RDMA SRC_LINE_STRIDE", "PPU_RDMA DATA_FORMAT", "PAD_BOTTOM=0",
                 "DST_SURF_STRIDE", "blocks=0x60 PPU PPU_RDMA"):
        assert want in out, want
    assert "?UNKNOWN" not in out and "INVALID" not in out


REFUSED = {
    "index_en": dict(mode_extra=1 << 30),
    "notch_addr": dict(mode_extra=2 << 16),
    "dpu_flyin": dict(extra_regs=[("PPU_DATA_FORMAT", 2 * 2 * 16 | 1 << 3)]),
    "flying_mode_0": dict(extra_regs=[("PPU_OPERATION_MODE_CFG", 1)]),
    "ppu_without_rdma": dict(blocks=0x20),
    "rdma_without_ppu": dict(blocks=0x40),
    "dpu_to_ppu": dict(blocks=0x78),
    "in_precision_0": dict(in_precision=0),
    "avg_in_precision_3": dict(method="avg", in_precision=3),
    "method_3": dict(mode_extra=3),
    "proc_precision_3": dict(extra_regs=[("PPU_DATA_FORMAT", 2 * 2 * 16 | 3)]),
    "rdma_cube": dict(extra_regs=[("PPU_RDMA_CUBE_IN_WIDTH", 4)]),
    "out_channels": dict(extra_regs=[("PPU_DATA_CUBE_OUT_CHANNEL", 7)]),
    "window_past_input": dict(out_hw=(2, 3)),
    "nonalign": dict(extra_regs=[("PPU_MISC_CTRL", 3 | 1 << 7)]),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused(case, tmp_path):
    """Q16's refusals: error completion (bit 12 with the PPU's completion bit, or DPU_0 when the
    PPU is not in op_en), nothing written."""
    kw = dict(REFUSED[case])
    method = kw.pop("method", "max")
    x = np.arange(4 * 4 * 16).reshape(4, 4, 16).astype(np.int8)
    job = pj.pool_job(x, method, (2, 2), **kw)
    r = both(job, tmp_path)
    done = PPU_0 if kw.get("blocks", 0x60) & 0x20 and kw.get("blocks", 0x60) != 0x78 else 0x100
    assert r.status == [ERR_READ | done], hex(r.status[0])
    assert r.out == bytes([pj.OUT_FILL]) * len(r.out)
    assert "refused" in r.stderr


def test_int8_max_with_32bit_rdma_is_exact(tmp_path):
    """GN: IN_PRECISION 3 is exact for an int8 max / min (only the average is unstable)."""
    x = np.random.default_rng(2).integers(-128, 128, (4, 4, 16)).astype(np.int8)
    r = both(pj.pool_job(x, "min", (2, 2), in_precision=3), tmp_path)
    assert np.array_equal(r.arr, naive_pool(x, "min", (2, 2), (2, 2)))


def test_dma_faults(tmp_path):
    """An unmapped source is a read error, an unmapped destination a write error (Q14)."""
    x = np.zeros((4, 4, 16), np.int8)
    job = pj.pool_job(x, "max", (2, 2), extra_regs=[("PPU_RDMA_SRC_BASE_ADDR", 0xF0000000)])
    assert both(job, tmp_path, "rd").status == [ERR_READ | PPU_0]
    job = pj.pool_job(x, "max", (2, 2), extra_regs=[("PPU_DST_BASE_ADDR", 0xF0000000)])
    assert both(job, tmp_path, "wr").status == [ERR_WRITE | PPU_0]
    # the last surface's row runs past the input segment
    job = pj.pool_job(np.zeros((4, 4, 32), np.int8), "max", (2, 2),
                      extra_regs=[("PPU_RDMA_SRC_SURF_STRIDE", 0x100000)])
    assert both(job, tmp_path, "surf").status == [ERR_READ | PPU_0]


# ---- the PPU quirks (Q15) ----

@pytest.mark.parametrize("k,ok,bad", [(3, 34, 35), (4, 34, 36), (5, 20, 24), (8, 20, 24)])
def test_quirk_ppu_width_hang(k, ok, bad, tmp_path):
    """IR pooling_width_probe: the widest completing and first hanging widths at stride 1; the
    hang leaves the output untouched; quirks off computes it."""
    rng = np.random.default_rng(k)
    for w, hangs in ((ok, False), (bad, True)):
        x = rng.normal(0, 4, (k + 1, w, 8)).astype(np.float16)
        job = pj.pool_job(x, "max", (k, k), (1, 1))
        r = both(job, tmp_path, f"w{w}")
        assert r.hang == hangs and (r.quirks == ["ppu-width-hang"]) == hangs
        if hangs:
            assert r.out == bytes([pj.OUT_FILL]) * len(r.out)
            off = both(job, tmp_path, f"w{w}-off", quirks="-ppu-width-hang")
            assert not off.hang and off.status == [PPU_0]
            assert np.array_equal(off.arr, naive_pool(x, "max", (k, k), (1, 1)))


def test_quirk_ppu_width_hang_spares_other_strides(tmp_path):
    """2x2 at 40 wide and the vendor's 129-wide 3x3 stride 2 tiles complete."""
    for x, k, s in ((np.zeros((2, 40, 8), np.float16), 2, 1),
                    (np.zeros((3, 129, 8), np.float16), 3, 2)):
        r = both(pj.pool_job(x, "max", (k, k), (s, s)), tmp_path, f"k{k}")
        assert not r.hang and not r.quirks


def test_quirk_ppu_kernel16_pad7(tmp_path):
    """AB: kernel 16 together with pad 7 returned only the first input value; off: the true max."""
    x = np.arange(1, 16 * 16 * 8 + 1).reshape(16, 16, 8).astype(np.float16)
    job = pj.pool_job(x, "max", (16, 16), (16, 16), (7, 7, 7, 7), pad_value=0xFC00)
    r = both(job, tmp_path)
    assert r.quirks == ["ppu-kernel16-pad7"] and np.array_equal(r.arr[0, 0], x[0, 0])
    off = both(job, tmp_path, "off", quirks="off")
    assert not off.quirks and np.array_equal(off.arr[0, 0], x[:9, :9].max(axis=(0, 1)))


# ---- chained passes (AB multi-pass, GN reduce-mean) ----

def test_chained_passes(tmp_path):
    """Three pool tasks, each reading the previous task's output (8x8 -> 4x4 -> 2x2 -> 1x1, one
    kick each): max and min give the global extreme exactly; the fp16 average the telescoped mean."""
    rng = np.random.default_rng(11)
    x = (rng.normal(0, 3, (8, 8, 8))).astype(np.float16)
    for method in ("max", "min", "avg"):
        jobs, src = [], x
        for n in (8, 4, 2):
            jobs.append(pj.pool_job(np.zeros((n, n, 8), np.float16), method, (2, 2),
                                    base=0x100000 * (len(jobs) + 1)))
        segs, kicks = {}, []
        for i, j in enumerate(jobs):
            segs.update(j["segments"])
            kicks += j["kicks"]
        # each pass reads the previous pass's output segment
        first_in = next(a for a in jobs[0]["segments"] if a != jobs[0]["kicks"][0][0]
                        and a != jobs[0]["out"][0])
        segs[first_in] = pj.pack(src)
        for prev, nxt in zip(jobs, jobs[1:]):
            nin = next(a for a in nxt["segments"] if a != nxt["kicks"][0][0] and a != nxt["out"][0])
            del segs[nin]
            prog = bytearray(segs[nxt["kicks"][0][0]])
            e = np.frombuffer(bytes(prog), "<u8").copy()
            from rknpu.regs import REGS, entry
            for i, v in enumerate(e):
                if int(v) & 0xFFFF == REGS["PPU_RDMA_SRC_BASE_ADDR"]:
                    e[i] = entry("PPU_RDMA_SRC_BASE_ADDR", prev["out"][0])
            segs[nxt["kicks"][0][0]] = e.tobytes()
        job = {"segments": segs, "kicks": kicks, "out": jobs[-1]["out"], "geom": jobs[-1]["geom"]}
        r = both(job, tmp_path, method)
        got = r.arr[0, 0].astype(np.float64)
        if method == "avg":
            assert np.abs(got - x.astype(np.float64).mean(axis=(0, 1))).max() < 0.01
        else:
            want = x.max(axis=(0, 1)) if method == "max" else x.min(axis=(0, 1))
            assert np.array_equal(r.arr[0, 0], want)
        assert r.status == [PPU_0, PPU_1, PPU_0]


def fp16_bits_job(windows, method, recip=None, kernel=(2, 2)):
    """One window per output pixel (stride = kernel), given as lists of binary16 bit patterns in
    window order (ky-major); 8 lanes, all alike."""
    (kh, kw), n = kernel, len(windows)
    x = np.zeros((kh, kw * n, 8), np.uint16)
    for i, wnd in enumerate(windows):
        x[:, kw * i:kw * i + kw, :] = np.array(wnd, np.uint16).reshape(kh, kw, 1)
    return pj.pool_job(x.view(np.float16), method, kernel, recip=recip)


def test_fp16_special_values(tmp_path):
    """Q16's fp16 rules at their edges: infinities and NaN through the average (a NaN is written
    0x7E00), overflow to inf, subnormals, binary32 accumulation step by step (2048 + 1 + four
    times 1023·2^-24 stays 2049 in binary32, whose binary16 tie goes to even, 2048; the exact sum
    rounded once to binary32 is 2049.000244, which gives 2050), the FP17 reciprocal's zero exponent
    (0) and sign bit, and the max/min order: the first of equal elements (±0) is kept, a leading
    NaN sticks, a later one never replaces."""
    one, inf, ninf, nan, tiny, big = 0x3C00, 0x7C00, 0xFC00, 0x7E01, 0x0001, 0x7BFF
    unit = (0x7C00, 0x7C00)                      # FP17 1.0 per axis: the sum itself
    windows = [[inf, one, one, one], [inf, ninf, one, one], [nan, one, one, one],
               [big, big, big, big], [tiny, tiny, tiny, tiny], [0x6800, one, tiny, tiny]]
    r = both(fp16_bits_job(windows, "avg", unit), tmp_path, "avg")
    got = r.arr[0, :, 0].view(np.uint16).tolist()
    assert got == [0x7C00, 0x7E00, 0x7E00, 0x7C00, 0x0004, 0x6800]
    r = both(fp16_bits_job(windows[3:5], "avg", (0x7800, 0x7800)), tmp_path, "avg4")
    assert r.arr[0, :, 0].view(np.uint16).tolist() == [big, tiny]
    r = both(fp16_bits_job([[0x6800, one] + [0x03FF] * 4], "avg", unit, (2, 3)), tmp_path, "acc")
    assert r.arr[0, 0, 0].view(np.uint16) == 0x6800
    r = both(fp16_bits_job([[one] * 4] * 2, "avg", (0x0000, 0x7C00)), tmp_path, "e0")
    assert r.arr[0, 0, 0].view(np.uint16) == 0
    r = both(fp16_bits_job([[one] * 4], "avg", (0x17C00, 0x7C00)), tmp_path, "neg")
    assert r.arr[0, 0, 0].view(np.uint16) == 0xC400
    windows = [[0x0000, 0x8000, 0x8000, 0x8000], [0x8000, 0x0000, 0x0000, 0x0000],
               [nan, one, inf, one], [one, nan, 0x4000, one]]
    r = both(fp16_bits_job(windows, "max"), tmp_path, "max")
    assert r.arr[0, :, 0].view(np.uint16).tolist() == [0x0000, 0x8000, nan, 0x4000]
    r = both(fp16_bits_job(windows, "min"), tmp_path, "min")
    assert r.arr[0, :, 0].view(np.uint16).tolist() == [0x0000, 0x8000, nan, one]
