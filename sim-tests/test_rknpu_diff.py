"""rknpu-diff, the board-capture diff: on a two-task job laid out as rocket-capture.so writes a
capture (every output BO dumped, expected-*.bin = what the NPU wrote), it finds identical tasks,
locates a single changed output byte as (channel, y, x), tells the task a changed regcmd byte
breaks from the task that only reads its output, and judges each task alone with --isolate."""
import json
import os
import shutil
import struct
import subprocess

import board
import tinyjob

TOOLS = os.path.join(board.BUILD, "qemu-hw", "tools")
W, H, C, K = 8, 4, 32, 48


def capture(path):
    """A capture-like job folder of a 2-task conv chain; returns (job, {iova: expected name})."""
    job = tinyjob.conv1x1(w=W, h=H, c=C, k=K, seed=5, base=0, tasks=2)
    tinyjob.write_job_dir(job, str(path))
    # dump both outputs (the intermediate one too, as the capture does for every output BO)
    outs = sorted(i for i, d in job["segments"].items() if not any(d))
    lines = [ln for ln in (path / "job.txt").read_text().splitlines() if not ln.startswith("dump")]
    lines += [f"dump 0x{i:08x} 0x{len(job['segments'][i]):x} out-{i:08x}.bin" for i in outs]
    (path / "job.txt").write_text("\n".join(lines) + "\n")
    subprocess.run([os.path.join(TOOLS, "rknpu-run"), "-q", str(path)], check=True)
    names = {}
    for i in outs:
        os.rename(path / f"out-{i:08x}.bin", path / f"expected-{i:08x}.bin")
        names[i] = f"expected-{i:08x}.bin"
    final = job["out"][0]
    assert (path / names[final]).read_bytes() == job["expect"], "core vs numpy"
    return job, names


def diff(path, *opts):
    js = str(path) + ".json"
    r = subprocess.run([os.path.join(TOOLS, "rknpu-diff"), "--json", js, *opts, str(path)],
                       capture_output=True, text=True)
    return r, json.load(open(js))


def test_identical(tmp_path):
    capture(tmp_path / "cap")
    r, js = diff(tmp_path / "cap")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [t["verdict"] for t in js["jobs"][0]["tasks"]] == ["identical", "identical"]
    assert "the emulator reproduces 2 of the 2 tasks" in r.stdout
    assert js["summary"]["identical"] == 2


def test_one_output_byte_located(tmp_path):
    job, names = capture(tmp_path / "cap")
    final = job["out"][0]
    c, y, x = 37, 2, 5
    off = (c // 16) * W * H * 16 + (y * W + x) * 16 + c % 16
    p = tmp_path / "cap" / names[final]
    data = bytearray(p.read_bytes())
    data[off] ^= 0x40
    p.write_bytes(data)
    r, js = diff(tmp_path / "cap")
    assert r.returncode == 1
    t0, t1 = js["jobs"][0]["tasks"]
    assert t0["verdict"] == "identical" and t1["verdict"] == "differs"
    assert t1["differ"] == 1 and t1["bytes"] == K // 16 * W * H * 16
    assert (t1["first"]["channel"], t1["first"]["y"], t1["first"]["x"]) == (c, y, x)
    assert t1["first"]["iova"] == final + off and t1["first"]["board"] == data[off]
    assert f"= (channel {c}, y {y}, x {x})" in r.stdout
    assert "regcmd at" in r.stdout and "OUT_CVT_SHIFT" in r.stdout     # its disassembly


def test_changed_regcmd_byte(tmp_path):
    """OUT_CVT_OFFSET of task 0 off by one: task 0 differs first-hand (disassembly, rules), task
    1 only reads its output; --isolate gives task 1 the board's input and finds it identical."""
    job, _ = capture(tmp_path / "cap")
    regcmd_iova, amount, _ = job["kicks"][0]
    seg = sorted(job["segments"]).index(regcmd_iova)
    p = tmp_path / "cap" / f"seg{seg}.bin"
    data = bytearray(p.read_bytes())
    for i in range((amount + 1) * 2):
        e, = struct.unpack_from("<Q", data, 8 * i)
        if e & 0xFFFF == tinyjob.REGS["DPU_OUT_CVT_OFFSET"]:
            data[8 * i + 2] ^= 1          # the value's low byte
            break
    else:
        raise AssertionError("no OUT_CVT_OFFSET entry")
    p.write_bytes(data)
    r, js = diff(tmp_path / "cap")
    assert r.returncode == 1
    t0, t1 = js["jobs"][0]["tasks"]
    assert t0["verdict"] == "differs" and "tainted_bytes" not in t0
    assert t1["verdict"] == "differs" and t1["tainted_by_kick"] == 0
    assert "Q8 cpend" in t0["rules"] and "Q9 bias-from-memory" in t0["rules"]
    assert r.stdout.count("regcmd at") == 1, "disassembly of the cause only"
    assert "had written differently" in r.stdout
    r, js = diff(tmp_path / "cap", "--isolate")
    assert [t["verdict"] for t in js["jobs"][0]["tasks"]] == ["differs", "identical"]
    assert "reproduces 1 of the 2 tasks" in r.stdout


def test_not_a_capture(tmp_path):
    job = tinyjob.conv1x1(base=0)
    tinyjob.write_job_dir(job, str(tmp_path / "plain"))
    r = subprocess.run([os.path.join(TOOLS, "rknpu-diff"), str(tmp_path / "plain")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not a capture" in r.stdout
    shutil.rmtree(tmp_path / "plain")
    os.makedirs(tmp_path / "empty")
    r = subprocess.run([os.path.join(TOOLS, "rknpu-diff"), str(tmp_path / "empty")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no job folder" in r.stderr
