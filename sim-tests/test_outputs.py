"""The int8 convolution's other outputs (HARDWARE-UNKNOWNS Q10): DPU OUT_PRECISION int16, int32
(the raw accumulator, CORE QD_EN = 0) and fp32, programmed as the public rocket userspaces do
(SIZE_E = G·e/16 − 1, SURFACE_ADD = G·e/16 surfaces, C2 = 16/e channels an atom), checked
against numpy arithmetic written here from the rules and against the independent reference,
and OUT_CVT's CVT_ROUND = 1 (ties away from zero, GN `encodings/out-cvt-converter.md`)."""
import os
import subprocess

import numpy as np
import pytest

import tinyjob
from rknpu import hwref

RKNPU_RUN = os.environ.get("RKNPU_RUN", os.path.join(os.path.dirname(__file__), "..", "build",
                                                     "qemu-hw", "tools", "rknpu-run"))
PREC = {"int8": (0, 1), "int16": (1, 2), "int32": (4, 4), "fp32": (5, 4)}


def job(prec, w=6, h=5, c=48, k=40, scale=1, shift=0, offset=0, qd_en=0, round_away=False,
        seed=3, base=0x100000):
    """One 1x1 conv of int8 data to `prec`, and the output numpy expects."""
    code, eo = PREC[prec]
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, size=(h, w, c), dtype=np.int64)
    wt = rng.integers(-128, 128, size=(k, c), dtype=np.int64)
    bias = rng.integers(-(1 << 20), 1 << 20, size=k, dtype=np.int64)
    lay = tinyjob.Layout(base)
    rc, x, wi, bi = lay.take(2048), lay.take(w * h * 16 * -(-c // 16)), lay.take(k * c), \
        lay.take(4 * k)
    surf, c2 = w * h * 16, 16 // eo
    nsurf = -(-k // c2)
    out = lay.take(nsurf * surf)
    e = 32 * eo // 16 - 1
    regs = tinyjob._conv_task(w, h, c, k, x, wi, bi, out, scale, shift, 0) + [
        ("CORE_MISC_CFG", qd_en), ("DPU_DATA_FORMAT", code << 29),
        ("DPU_BS_OW_CFG", e << 2 | e << 5 | e << 8), ("DPU_OUT_CVT_OFFSET", offset & 0xFFFFFFFF),
        ("DPU_OUT_CVT_SHIFT", shift | (1 << 30 if round_away else 0)),
        ("DPU_SURFACE_ADD", (e + 1) * surf)]
    prog, amount = tinyjob.regcmd(regs)
    segs = {rc: prog, x: tinyjob._nc1hwc2(a), wi: tinyjob._weights(wt, k, c),
            bi: bias.astype("<i4").tobytes(), out: bytes(nsurf * surf)}
    # numpy, from the rules: the MAC sum plus bias, OUT_CVT, the output type's saturation
    v = np.clip(np.einsum("hwc,kc->hwk", a, wt) + bias, -2**31, 2**31 - 1) * scale
    if shift:
        q, r = v >> shift, v & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if round_away:
            q = np.where(v < 0, -((-v + half) >> shift), (v + half) >> shift)
        else:
            q = q + ((r > half) | ((r == half) & (q & 1 == 1)))
        v = q
    v = v + offset
    lo, hi = {1: (-2**7, 2**7 - 1), 2: (-2**15, 2**15 - 1), 4: (-2**31, 2**31 - 1)}[eo]
    v = np.clip(v, lo, hi)
    el = v.astype(np.float32) if prec == "fp32" else v.astype(f"<i{eo}")
    img = np.zeros((nsurf, h, w, 16), dtype=np.uint8)
    for o in range(k):
        img[o // c2, :, :, (o % c2) * eo:(o % c2 + 1) * eo] = \
            el[:, :, o:o + 1].copy().view(np.uint8).reshape(h, w, eo)
    for o in range(k, nsurf * c2):   # past ORIG_CHANNEL: OFFSET_PEND's low bytes (tinyjob: 0)
        img[o // c2, :, :, (o % c2) * eo:(o % c2 + 1) * eo] = 0
    return {"segments": segs, "kicks": [(rc, amount, 0x7001)], "out": (out, nsurf * surf),
            "expect": img.tobytes()}


def run_core(j, tmp_path):
    d = str(tmp_path / "job")
    tinyjob.write_job_dir(j, d)
    res = subprocess.run([RKNPU_RUN, "-q", d], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    with open(os.path.join(d, "out.bin"), "rb") as f:
        return f.read()


def reference(j):
    mem, status = hwref.run_job(j["segments"], j["kicks"])
    assert status == [0x100]
    return mem.read(*j["out"])


@pytest.mark.parametrize("prec", ["int8", "int16", "int32", "fp32"])
def test_raw_accumulator_outputs(prec, tmp_path):
    """int8 -> int32 with QD_EN 0 is the raw accumulator (GN: bit-exact); int16 saturates at its
    rails (GN, int4 -> int16); fp32 is the exact cast of the int32 value."""
    j = job(prec, scale=1, shift=0 if prec != "int8" else 12)
    assert run_core(j, tmp_path) == j["expect"] == reference(j)
    if prec == "int16":
        v = np.frombuffer(j["expect"], "<i2")
        assert (v == 32767).any() and (v == -32768).any()   # the data reaches the rails


def test_int32_with_requantisation(tmp_path):
    """OUT_CVT still applies to an int32 output (scale, shift, offset), QD_EN 1 or 0 alike."""
    for qd in (0, 1):
        j = job("int32", scale=0x3000, shift=9, offset=-77, qd_en=qd)
        assert run_core(j, tmp_path) == j["expect"] == reference(j)


def test_cvt_round_ties_away_from_zero(tmp_path):
    """CVT_ROUND = 1 rounds exact ties away from zero (GN measured -0.5 -> -1, -1.5 -> -2 on
    RK3588); CVT_ROUND = 0 to even. Shift 1 makes every odd value a tie."""
    got = {}
    for away in (False, True):
        j = job("int32", w=4, h=4, c=16, k=32, scale=1, shift=1, round_away=away, seed=5)
        got[away] = np.frombuffer(run_core(j, tmp_path), "<i4")
        assert got[away].tobytes() == j["expect"] == reference(j)
    v = np.frombuffer(job("int32", w=4, h=4, c=16, k=32, scale=1, shift=0, seed=5)["expect"],
                      "<i4")
    odd = v % 2 == 1
    assert odd.sum() > 100
    assert (got[True][odd] == np.where(v[odd] < 0, (v[odd] - 1) // 2, (v[odd] + 1) // 2)).all()
    assert (got[False] != got[True]).any()


def test_wrong_size_e_for_int32(tmp_path):
    """SIZE_E 1 (an int8 writer's) with an int32 output: quirk size-e (Q15), CPEND engaged ->
    1024 bytes then a hang, as IR measured."""
    j = job("int32")
    rc = j["kicks"][0][0]
    seg = bytearray(j["segments"][rc])
    ents = [int.from_bytes(seg[i:i + 8], "little") for i in range(0, len(seg), 8)]
    for i, e in enumerate(ents):
        if e & 0xFFFF == tinyjob.REGS["DPU_BS_OW_CFG"] & 0xFFFF and e >> 48 == 0x1001:
            ents[i] = (e & ~(0xFFFFFFFF << 16)) | 0x124 << 16
    j["segments"][rc] = b"".join(e.to_bytes(8, "little") for e in ents)
    d = str(tmp_path / "job")
    tinyjob.write_job_dir(j, d)
    res = subprocess.run([RKNPU_RUN, "-q", d], capture_output=True, text=True)
    assert res.returncode == 1 and "hang" in res.stderr and "quirk size-e" in res.stderr


def two_task_job(qd_en):
    """Two raw int32 1x1 convs of one input in one kick (TASK_NUMBER 2, linked in-stream)."""
    a = job("int32", qd_en=qd_en, seed=9)
    lay_base = max(a["segments"]) + len(a["segments"][max(a["segments"])]) + 0x10000
    rng = np.random.default_rng(11)
    k, c, w, h = 40, 48, 6, 5
    wt = rng.integers(-128, 128, size=(k, c), dtype=np.int64)
    bias = rng.integers(-1000, 1000, size=k, dtype=np.int64)
    lay = tinyjob.Layout(lay_base)
    rc2, wi2, bi2 = lay.take(2048), lay.take(k * c), lay.take(4 * k)
    out2 = lay.take(4 * w * h * 16 * 10)
    rc1 = a["kicks"][0][0]
    x_iova = [i for i, s in a["segments"].items() if len(s) == w * h * 16 * 3][0]
    regs2 = tinyjob._conv_task(w, h, c, k, x_iova, wi2, bi2, out2, 1, 0, 0) + [
        ("CORE_MISC_CFG", qd_en), ("DPU_DATA_FORMAT", 4 << 29), ("DPU_BS_OW_CFG", 7 * 0x124),
        ("DPU_OUT_CVT_OFFSET", 0), ("DPU_OUT_CVT_SHIFT", 0), ("DPU_SURFACE_ADD", 8 * w * h * 16)]
    prog2, amount2 = tinyjob.regcmd(regs2)
    # task 1 of the kick = task 0's program with a link to task 2's
    seg1 = a["segments"][rc1]
    ents = [int.from_bytes(seg1[i:i + 8], "little") for i in range(0, len(seg1), 8)]
    link = [tinyjob.entry("PC_BASE_ADDRESS", rc2), tinyjob.entry("PC_REGISTER_AMOUNTS", amount2)]
    ents = ents[:-2] + link + ents[-2:]          # before the marker and op_en entries
    if len(ents) % 2:
        ents.append(0)
    segs = dict(a["segments"])
    segs[rc1] = b"".join(e.to_bytes(8, "little") for e in ents)
    segs.update({rc2: prog2, wi2: tinyjob._weights(wt, k, c), bi2: bias.astype("<i4").tobytes(),
                 out2: bytes(4 * w * h * 16 * 10)})
    return {"segments": segs, "kicks": [(rc1, len(ents) // 2 - 1, 0x7002)],
            "out": (out2, 10 * w * h * 16)}


def run_quirks(j, tmp_path, quirks):
    d = str(tmp_path / f"job-{quirks}")
    tinyjob.write_job_dir(j, d)
    res = subprocess.run([RKNPU_RUN, "-q", "--quirks", quirks, d], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    with open(os.path.join(d, "out.bin"), "rb") as f:
        return f.read(), res.stderr


def test_chained_raw_accumulator(tmp_path):
    """GN regcmd-task-model.md: a chained int8 raw-accumulator batch computes task 0 right and
    later tasks as garbage ("the CACC clears per kick, not per task"); quirk chain-int-acc adds
    the previous task's sums. With QD_EN 1 (Mesa's int8 writer, WID: chains work) it does not
    fire; core and reference agree either way."""
    j = two_task_job(0)
    ideal, _ = run_quirks(j, tmp_path, "-chain-int-acc")
    real, log = run_quirks(j, tmp_path, "on")
    assert "(quirk chain-int-acc)" in log and ideal != real
    mem, status = hwref.run_job(j["segments"], j["kicks"])
    assert mem.read(*j["out"]) == real
    mem, _ = hwref.run_job(j["segments"], j["kicks"], quirks="-chain-int-acc")
    assert mem.read(*j["out"]) == ideal
    j1 = two_task_job(1)
    out1, log1 = run_quirks(j1, tmp_path, "on")
    assert "chain-int-acc" not in log1
