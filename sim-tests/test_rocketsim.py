"""The `rocketsim` command (tools/rocketsim): option errors, the errors of a missing board, model
or photo and of a failed boot, Ctrl-C, the annotated picture and the Perfetto trace. One boot
(`rocketsim run --trace`); the failure cases run against a stand-in for QEMU."""
import json
import os
import re
import signal
import subprocess
import time

import pytest
from PIL import Image

import board

ROCKETSIM = os.environ.get("ROCKETSIM",
                           os.path.join(board.BUILD, "tools", "rocketsim", "rocketsim"))
INVOKES = 2
RED = (255, 0, 0)


def rocketsim(*args, env=None, timeout=120):
    return subprocess.run([ROCKETSIM, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def fake_qemu(tmp_path, hang=False):
    """A stand-in for qemu-system-aarch64: 30 console lines, then it exits 1 (a boot that
    failed) or, hang=True, becomes a `sleep` that writes its pid first."""
    path = tmp_path / "fake-qemu"
    path.write_text("#!/bin/sh\n"
                    "for i in $(seq 30); do echo \"fake console line $i\"; done\n"
                    f"echo $$ > {tmp_path}/fake-qemu.pid\n"
                    + ("exec sleep 120\n" if hang else "exit 1\n"))
    path.chmod(0o755)
    return str(path)


# ---- options and errors (no boot) ----

@pytest.mark.parametrize("args, message", [
    (["run", "--cores", "7"], r"--cores must be 1, 2 or 3 .*not 7"),
    (["run", "--cores", "two"], r"Cannot parse integer value .two. for --cores"),
    (["run", "--model", "resnet"], r"unknown model 'resnet'; --model takes mobiledet, mobilenet "
                                   r"or yolox"),
    (["run", "--invokes", "0"], r"--invokes must be 1 to 1000, not 0"),
    (["run", "--icount", "11"], r"--icount takes a shift of 0 to 10"),
    (["run", "--score", "2"], r"--score must be 0 to 1"),
    (["run", "--image", "../etc/passwd"], r"--image takes the name of a python3-skimage photo"),
    (["run", "--frobnicate"], r"Unknown option --frobnicate"),
    (["run", "chelsea"], r"unexpected argument 'chelsea'"),
    (["shell", "--cores", "0"], r"--cores must be 1, 2 or 3"),
    (["timing", "--fast"], r"Unknown option --fast"),
    (["bench", "--seconds", "0"], r"--seconds must be more than 0"),
    (["bench", "--threads", "0"], r"--threads takes 1 to 16, not 0"),
    (["frobnicate"], r"unknown command 'frobnicate'"),
])
def test_option_errors(args, message):
    r = rocketsim(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert re.search(message, r.stderr), r.stderr
    assert "Traceback" not in r.stderr and not r.stdout


def test_help():
    r = rocketsim("--help")
    assert r.returncode == 0
    for cmd in ("run", "shell", "timing", "bench", "replay", "dis"):
        assert re.search(rf"^  {cmd} ", r.stdout, re.M), r.stdout
    r = rocketsim("run", "--help")
    assert r.returncode == 0
    for opt in ("--model", "--image", "--cores", "--clock", "--invokes", "--icount", "--capture",
                "--dma-bandwidth", "--task-overhead", "--out", "--trace"):
        assert opt in r.stdout


def test_missing_photo(tmp_path):
    out = tmp_path / "out"
    r = rocketsim("run", "--image", "nosuch", "--out", str(out))
    assert r.returncode == 2, r.stderr
    assert "python3-skimage has no photo 'nosuch.png'" in r.stderr
    assert re.search(r"its photos: .*\bchelsea\b", r.stderr), r.stderr
    assert not out.exists(), "the output folder was touched before the photo was found"


def fake_root(tmp_path, fetch_models):
    """A source tree with the board's files present (not used) and scripts/fetch-models given."""
    root = tmp_path / "root"
    for f in ("build/qemu-system-aarch64", "build/Image", "build/initramfs.cpio",
              "build/host/rocket-infer"):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("")
    script = root / "scripts" / "fetch-models"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n" + fetch_models)
    script.chmod(0o755)
    return root


def test_missing_board(tmp_path):
    r = rocketsim("run", env={"ROCKETSIM_ROOT": str(tmp_path)})
    assert r.returncode == 1
    assert "build/qemu-system-aarch64 is missing; build the board first: `make board`" \
        in r.stderr, r.stderr


def test_missing_model(tmp_path):
    (tmp_path / "models").mkdir()
    root = fake_root(tmp_path, f"echo {tmp_path}/models\n")
    r = rocketsim("run", env={"ROCKETSIM_ROOT": str(root)})
    assert r.returncode == 1
    assert re.search(r"models/ssdlite_mobiledet_coco_qat_postprocess.tflite is missing",
                     r.stderr), r.stderr
    root = fake_root(tmp_path / "b", "echo 'fetch-models: no network' >&2; exit 1\n")
    r = rocketsim("run", "--model", "yolox", env={"ROCKETSIM_ROOT": str(root)})
    assert r.returncode == 1
    assert "the models are not available: scripts/fetch-models failed (status 1)" in r.stderr
    assert "fetch-models: no network" in r.stderr


def test_failed_boot(tmp_path):
    """QEMU gone without the guest's result: the reason and the console's last lines."""
    r = rocketsim("run", "--out", str(tmp_path / "out"),
                  env={"ROCKETSIM_QEMU": fake_qemu(tmp_path)})
    assert r.returncode == 1, r.stderr
    assert "the guest run failed: the guest never got to the NPU driver (QEMU exited with " \
           "status 1)" in r.stderr, r.stderr
    assert "fake console line 30" in r.stderr and "fake console line 6\n" in r.stderr
    assert "fake console line 5\n" not in r.stderr, "more than the last 25 lines"


def test_ctrl_c_stops_qemu(tmp_path):
    """SIGINT while the board runs: QEMU is stopped, nothing is left behind, status 130."""
    p = subprocess.Popen([ROCKETSIM, "run", "--out", str(tmp_path / "out")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "ROCKETSIM_QEMU": fake_qemu(tmp_path, hang=True)})
    pidfile = tmp_path / "fake-qemu.pid"
    deadline = time.monotonic() + 60
    while not pidfile.exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert pidfile.exists(), p.communicate()
    qemu = int(pidfile.read_text())
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=15)
    assert p.returncode == 130, (p.returncode, err)
    assert time.monotonic() - t0 < 6, "QEMU was not stopped promptly"
    assert re.search(rf"interrupted by Ctrl-C; stopped fake-qemu \(pid {qemu}\)", err), err
    assert not os.path.exists(f"/proc/{qemu}") or \
        open(f"/proc/{qemu}/stat").read().split()[2] == "Z", "the stand-in QEMU still runs"


def test_bench_jobs_are_mesas(tmp_path):
    """`rocketsim bench` programs MobileDet's layers as sim-tests' Mesa generator does: the same
    job folders (regcmd, weights, bias, layout, kicks) but for the random input bytes."""
    import mobiledet
    import tinyjob
    from rknpu import mesatask
    r = rocketsim("bench", "--write-jobs", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("L")]
    ops = mobiledet.layer_ops()
    assert len(lines) == len(ops) == 93
    for i, (layer, op) in enumerate(ops):
        job = mesatask.build_job(op)
        py, c = tmp_path / "py" / f"L{i:02d}", tmp_path / "c" / f"L{i:02d}"
        tinyjob.write_job_dir(job, py)
        assert lines[i] == (f"L{i:02d} {layer['kind']:4} {str(layer['input']):16} -> "
                            f"{str(layer['output']):16} k{layer['kernel']} s{layer['stride']} "
                            f"tasks {job['tasks']}: {c}")
        assert (py / "job.txt").read_text() == (c / "job.txt").read_text(), i
        for seg in sorted(os.listdir(py)):
            if seg.endswith(".bin"):
                a, b = (py / seg).read_bytes(), (c / seg).read_bytes()
                if seg == "seg1.bin":   # the input: random bytes either way
                    assert len(a) == len(b), (i, seg)
                else:
                    assert a == b, (i, seg)


def test_bench_other_jobs_match_reference(tmp_path):
    """The bench's matmuls of the other precisions, LUT, EW and PPU jobs (benchops.c, progs.h)
    run without a refusal, an error or a quirk, and the core writes what the independent
    reference (rknpu/hwref.py) computes."""
    from rknpu import hwref
    r = rocketsim("bench", "--write-jobs", str(tmp_path))
    assert r.returncode == 0, r.stderr
    jobs = [ln.split(": ")[1] for ln in r.stdout.splitlines() if not ln.startswith("L")]
    assert [os.path.basename(d) for d in jobs] == [
        "matmul-fp16", "matmul-bf16", "matmul-tf32", "matmul-int16", "matmul-int4",
        "lut-sigmoid", "ew-add", "ppu-maxpool"]
    run = os.environ.get("RKNPU_RUN", os.path.join(board.BUILD, "qemu-hw", "tools", "rknpu-run"))
    for d in jobs:
        segs, kicks, dump = {}, [], None
        for t in (ln.split() for ln in open(os.path.join(d, "job.txt")) if ln[0] != "r"):
            if t[0] == "mem":
                data = open(os.path.join(d, t[3]), "rb").read()
                segs[int(t[1], 0)] = data + bytes(int(t[2], 0) - len(data))
            elif t[0] == "kick":
                kicks.append(tuple(int(v, 0) for v in t[1:4]))
            else:
                dump = (int(t[1], 0), int(t[2], 0))
        res = subprocess.run([run, "-q", "-o", str(tmp_path), d], capture_output=True, text=True)
        assert res.returncode == 0 and "quirk" not in res.stderr, (d, res.stderr)
        mem, status = hwref.run_job(segs, kicks)
        assert status in ([0x100], [0x400]), (d, status)
        assert (tmp_path / "out.bin").read_bytes() == mem.read(*dump), d


# ---- one boot: the picture and the trace ----

@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    trace = out / "trace.json"
    t0 = time.monotonic()
    r = rocketsim("run", "--image", "chelsea", "--invokes", str(INVOKES), "--out", str(out),
                  "--trace", str(trace), timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return {"out": out, "trace": trace, "stdout": r.stdout, "wall": time.monotonic() - t0}


@pytest.mark.boot
def test_run_prints(ran):
    s = ran["stdout"]
    assert re.search(r"\] \d+ detections with score >= 0.4:\n    cat +0\.\d\d  box \(x, y\) ", s), s
    assert "CPU reference (TFLite on the host, same input):" in s
    assert re.search(r"inference: guest [\d.]+ ms per invoke \(TCG-emulated CPU, first [\d.]+ "
                     r"ms\); NPU time from the cycle model [\d.]+ ms per invoke over \d+ tasks at "
                     r"200 MHz", s), s
    assert "Perfetto trace of the last invoke:" in s


@pytest.mark.boot
def test_png_has_the_boxes(ran):
    out = ran["out"]
    png = Image.open(out / "detections.png").convert("RGB")
    photo = Image.open(out / "input.png").convert("RGB")
    assert png.size == photo.size
    summary = json.load(open(out / "npu" / "summary.json"))
    dets = [d for d in summary["detections"] if d["score"] >= 0.4]
    assert dets
    w, h = png.size
    checked = 0
    for d in dets:
        y0, x0, y1, x1 = d["box"]
        left, top, bottom = int(x0 * w), int(y0 * h), int(y1 * h)
        mid = (max(top, 0) + min(bottom, h - 1)) // 2
        if 0 <= left and left + 2 < w:   # the box's 3-pixel left edge, halfway down
            for x in range(left, left + 3):
                assert png.getpixel((x, mid)) == RED, (d, x, mid, png.getpixel((x, mid)))
            inside = (left + 10, mid)
            assert png.getpixel(inside) == photo.getpixel(inside)
            checked += 1
    assert checked, "no detection's left edge inside the picture"
    # the label: a filled tab with text at the first box's top-left corner
    y0, x0 = dets[0]["box"][:2]
    tab = png.crop((max(int(x0 * w), 0) + 3, max(int(y0 * h), 0) + 3,
                    max(int(x0 * w), 0) + 40, max(int(y0 * h), 0) + 14))
    colours = set(tab.getdata())
    assert (255, 255, 255) in colours and len(colours) > 2, "no label text on the tab"


def log_kicks(path):
    """(core, kick vt, irq vt) of every completed kick in QEMU's log, in kick order."""
    kicks, open_ = [], {}
    for line in open(path, errors="replace"):
        m = re.search(r"rk3588_npu_kick core (\d+) .* vt_ns (\d+)", line)
        if m:
            open_[int(m[1])] = int(m[2])
        m = re.search(r"rk3588_npu_done core (\d+) .* vt_ns (\d+)", line)
        if m and int(m[1]) in open_:
            kicks.append((int(m[1]), open_.pop(int(m[1])), int(m[2])))
    return sorted(kicks, key=lambda k: k[1])


def ns(us):
    """Perfetto's conversion of a JSON trace's microseconds: truncating (older) and rounding
    (newer) must agree."""
    t, r = int(us * 1000), round(us * 1000)
    assert t == r, us
    return t


@pytest.mark.boot
def test_trace(ran):
    t = json.load(open(ran["trace"]))
    assert isinstance(t, dict) and isinstance(t["traceEvents"], list)
    ev = t["traceEvents"]
    other = t["otherData"]
    # required keys, by phase
    for e in ev:
        assert {"name", "ph", "pid", "tid"} <= e.keys(), e
        assert e["ph"] in ("X", "M"), e
        if e["ph"] == "X":
            assert {"ts", "dur", "cat", "args"} <= e.keys(), e
            assert isinstance(e["ts"], float) and isinstance(e["dur"], float) and e["dur"] >= 0
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in ev
             if e["ph"] == "M" and e["name"] == "thread_name"}
    procs = {e["pid"]: e["args"]["name"] for e in ev
             if e["ph"] == "M" and e["name"] == "process_name"}
    assert procs[1].startswith("NPU (rk3588-npu, 3 cores at 200 MHz)")
    # one track per NPU core
    cores = sorted(n for (pid, _), n in names.items() if pid == 1)
    assert cores == ["core 0", "core 1", "core 2"]
    # timestamps: in order in the file, and no two slices of a track overlapping
    xs = [e for e in ev if e["ph"] == "X"]
    assert [e["ts"] for e in xs] == sorted(e["ts"] for e in xs)
    tracks = {}
    for e in xs:
        tracks.setdefault((e["pid"], e["tid"]), []).append(e)
    for key, slices in tracks.items():
        assert key in names, f"track {key} has no name"
        for a, b in zip(slices, slices[1:]):
            assert ns(a["ts"]) + ns(a["dur"]) <= ns(b["ts"]), (a, b)
    # one slice per NPU task of the last invoke, as QEMU's log has them
    kicks = log_kicks(ran["out"] / "qemu.log")
    assert len(kicks) % INVOKES == 0
    last = kicks[-len(kicks) // INVOKES:]
    tasks = [e for e in xs if e["cat"] == "npu.task"]
    assert len(tasks) == len(last) == other["npu_tasks"]
    assert [(e["args"]["core"], e["args"]["kick_vt_ns"], e["args"]["irq_vt_ns"])
            for e in tasks] == last
    for i, e in enumerate(tasks):
        a = e["args"]
        assert e["name"] == f"task {i} (op {a['op']})" and a["task"] == i
        assert names[(1, e["tid"])] == f"core {a['core']}"
        for k in ("macs", "bytes_read", "bytes_written", "cycles"):
            assert isinstance(a[k], int) and a[k] >= 0, (k, a)
        assert a["macs"] > 0 and a["cycles"] > 0
        assert a["blocks"] and a["op_en"].startswith("0x") and isinstance(a["quirks"], str)
        # the slice is the modelled time from the kick: cycles at the NPU clock
        assert ns(e["ts"]) + other["origin_vt_ns"] == a["kick_vt_ns"]
        assert ns(e["dur"]) == a["npu_ns"] == a["cycles"] * 5   # 200 MHz: 5 ns a cycle
    ops = [e["args"]["op"] for e in tasks]
    assert ops == sorted(ops) and ops[0] == 0
    # the guest's invoke holds the NPU's tasks; the driver's IRQ -> next kick gaps
    inv = [e for e in xs if e["cat"] == "guest"]
    assert len(inv) == 1 and names[(inv[0]["pid"], inv[0]["tid"])].startswith("rocket-infer")
    summary = json.load(open(ran["out"] / "npu" / "summary.json"))
    assert abs(inv[0]["dur"] - summary["invoke_ms"][-1] * 1000) < 0.01
    start, end = ns(inv[0]["ts"]), ns(inv[0]["ts"]) + ns(inv[0]["dur"])
    assert start <= ns(tasks[0]["ts"]) and ns(tasks[-1]["ts"]) + ns(tasks[-1]["dur"]) <= end
    gaps = [e for e in xs if e["cat"] == "driver"]
    same_core = sum(1 for a, b in zip(last, last[1:]) if a[0] == b[0])
    per_core = {}
    for k in last:
        per_core.setdefault(k[0], []).append(k)
    assert len(gaps) == sum(len(v) - 1 for v in per_core.values()) >= same_core
    for g in gaps:
        assert names[(g["pid"], g["tid"])].startswith("rocket driver, core")
        assert g["args"]["ns"] == ns(g["dur"]) > 0


@pytest.mark.boot
def test_run_time(ran):
    assert ran["wall"] < 90, f"rocketsim run took {ran['wall']:.0f} s"
