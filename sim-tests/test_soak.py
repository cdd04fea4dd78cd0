"""Soak (issue 9): MobileDet through Mesa Teflon from three guest processes at once, on the three
NPU cores, in one boot: every inference's outputs byte-identical to the first's, no kernel
warning, and QEMU's RSS flat once the processes are warm; and a whole-board snapshot taken
mid-inference (stop with an NPU kick in flight, migrate to a file, restore in a new QEMU) that
finishes with the detections it had before.

`make test` runs the short version (ROCKETSIM_SOAK=30 inferences); `make soak` the full one
(1000). QEMU_BIN runs another emulator (make test-asan-qemu: the sanitizer build). The figures go
to build/soak.json (or $ROCKETSIM_SOAK_JSON) and, with -s, to the terminal.
"""
import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

import board
import mobiledet

pytestmark = pytest.mark.boot
N = int(os.environ.get("ROCKETSIM_SOAK", "30"))
PROCS = 3
QEMU = os.environ.get("QEMU_BIN")
SLOW = float(os.environ.get("ROCKETSIM_SLOW", "1"))      # time limits x this (sanitizer builds)
FIGURES = os.environ.get("ROCKETSIM_SOAK_JSON", os.path.join(board.BUILD, "soak.json"))
INFER = "rocket-infer -c -d /usr/lib/teflon/libteflon.so"
PHOTO = "chelsea"


def record(key, value):
    figures = {}
    if os.path.exists(FIGURES):
        with open(FIGURES) as f:
            figures = json.load(f)
    figures[key] = value
    with open(FIGURES, "w") as f:
        json.dump(figures, f, indent=1)


def stage(share):
    """The model, the photo and the labels in the shared folder."""
    shutil.copy(os.path.join(mobiledet.models_dir(), mobiledet.MODEL),
                os.path.join(share, "model.tflite"))
    shutil.copy(board.photo(PHOTO), os.path.join(share, "input.png"))
    shutil.copy(os.path.join(board.ROOT, "userspace", "coco-labels.txt"),
                os.path.join(share, "labels.txt"))


def qemu_cmd(share, append, log, smp, extra=()):
    cmd = board.qemu_cmd(cores=3, mem="2G", share=share, append=append, smp=smp,
                         extra=["-D", log, "-d", "guest_errors", *extra])
    if QEMU:
        cmd[0] = QEMU
    return cmd


class Console:
    """QEMU's serial console (stdio): lines collected by a thread, input written to stdin."""

    def __init__(self, proc):
        self.proc, self.lines, self.cv = proc, [], threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.cv:
                self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)             # EOF
            self.cv.notify_all()

    def wait_for(self, pattern, timeout, start=0):
        """Index of the first line from `start` matching pattern (a regex)."""
        rx, end = re.compile(pattern), time.monotonic() + timeout * SLOW
        i = start
        with self.cv:
            while True:
                while i < len(self.lines):
                    if self.lines[i] is None:
                        raise AssertionError(f"QEMU exited before /{pattern}/:\n" + self.text())
                    if rx.search(self.lines[i]):
                        return i
                    i += 1
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no /{pattern}/ in {timeout * SLOW:.0f} s:\n" +
                                         self.text())
                self.cv.wait(left)

    def between(self, begin, end):
        """The text between the marker lines begin and end (whole-line matches)."""
        a = self.wait_for(f"^{begin}$", 600)
        b = self.wait_for(f"^{end}$", 600, a)
        return "\n".join(self.lines[a + 1:b])

    def text(self, last=60):
        return "\n".join(ln for ln in self.lines[-last:] if ln is not None)

    def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()


class QMP:
    def __init__(self, path, timeout=60):
        end = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                assert time.monotonic() < end, "no QMP socket"
                time.sleep(0.05)
        self.f = self.sock.makefile("rw")
        json.loads(self.f.readline())
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            msg = json.loads(self.f.readline())
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise AssertionError(f"QMP {name}: {msg['error']}")

    def close(self):
        self.sock.close()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmRSS"))


def start(cmd):
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()


SOAK_SH = """\
for p in 0 1 2; do
    mkdir -p /tmp/o$p
    ( {infer} -n $(( {n} / 3 + (p < {n} % 3) )) -o /tmp/o$p -l /host/labels.txt \\
        /host/model.tflite /host/input.png >/host/p$p.log 2>&1; echo $? >/host/p$p.status ) &
done
wait
for p in 0 1 2; do
    cp /tmp/o$p/summary.json /host/summary$p.json
    md5sum /tmp/o$p/output-*.bin | sed "s| /tmp/o$p/| |" >/host/md5-$p.txt
done
"""


def test_soak_three_processes_three_cores(tmp_path):
    share, log = str(tmp_path), str(tmp_path / "qemu.log")
    stage(share)
    with open(os.path.join(share, "run.sh"), "w") as f:
        f.write(SOAK_SH.format(infer=INFER, n=N))
    cmd = qemu_cmd(share, "rocketsim.run=run.sh", log, smp=3, extra=["-trace", "rk3588_npu_done"])
    t0 = time.monotonic()
    proc = start(cmd)
    con = Console(proc)
    samples = []                                      # (seconds, RSS MiB, inferences done)
    try:
        con.wait_for("rocketsim: ready at", 300)
        ready = rss_mib(proc.pid)
        limit = t0 + (600 + 3 * N) * SLOW
        while proc.poll() is None:
            done = 0
            for p in range(PROCS):
                try:
                    with open(os.path.join(share, f"p{p}.log"), errors="replace") as f:
                        done += sum(1 for ln in f if ln.startswith("rocket-infer: invoke "))
                except FileNotFoundError:
                    pass
            try:
                samples.append((round(time.monotonic() - t0, 1), round(rss_mib(proc.pid), 1),
                                done))
            except (FileNotFoundError, ProcessLookupError, StopIteration):
                break
            assert time.monotonic() < limit, "the soak did not finish:\n" + con.text()
            time.sleep(1)
        proc.wait(timeout=60)
    finally:
        stop(proc)
    wall = time.monotonic() - t0
    status = open(os.path.join(share, "run.sh.status")).read().strip() \
        if os.path.exists(os.path.join(share, "run.sh.status")) else "-1"
    where = f"\n--- console ---\n{con.text()}"
    assert status == "0", "the guest script failed" + where
    # every inference of every process as the first one of process 0
    counts, md5s = [], []
    for p in range(PROCS):
        assert open(os.path.join(share, f"p{p}.status")).read().strip() == "0", \
            open(os.path.join(share, f"p{p}.log")).read()[-2000:]
        s = json.load(open(os.path.join(share, f"summary{p}.json")))
        counts.append(len(s["invoke_ms"]))
        assert s["invokes_differing"] == 0, f"process {p}: {s['invokes_differing']} inferences " \
            "differ from its first"
        md5s.append(open(os.path.join(share, f"md5-{p}.txt")).read())
    assert sum(counts) == N
    assert md5s[1] == md5s[0] and md5s[2] == md5s[0], f"the processes' outputs differ: {md5s}"
    dmesg = open(os.path.join(share, "run.sh.dmesg")).read()
    assert not board.kernel_problems(dmesg), board.kernel_problems(dmesg)
    # the three NPU cores all ran jobs
    per_core = [0, 0, 0]
    with open(log, errors="replace") as f:
        for ln in f:
            m = re.search(r"rk3588_npu_done core (\d)", ln)
            if m:
                per_core[int(m.group(1))] += 1
    assert all(per_core), f"kicks per core {per_core}"
    # QEMU's RSS after warm-up (every process past its first inferences, a tenth of all done)
    warm_at = max(2 * PROCS, N // 10)
    warm = [s for s in samples if s[2] >= warm_at and s[2] < N]
    assert warm, f"no RSS sample after warm-up: {samples}"
    growth = max(s[1] for s in warm) - warm[0][1]
    figures = {"inferences": N, "per_process": counts, "identical": True, "wall_s": round(wall),
               "kicks_per_core": per_core, "rss_mib_at_driver_ready": round(ready),
               "rss_mib_after_warmup": warm[0][1], "rss_mib_end": warm[-1][1],
               "rss_mib_max_after_warmup": max(s[1] for s in warm),
               "rss_growth_after_warmup_mib": round(growth, 1),
               "rss_samples": samples[::max(1, len(samples) // 40)],
               "inference_ms_median": sorted(
                   json.load(open(os.path.join(share, "summary0.json")))["invoke_ms"])[
                       counts[0] // 2]}
    record(f"soak-{N}", figures)
    print(f"\nsoak: {N} inferences ({counts}) in {wall:.0f} s, all identical; kicks per core "
          f"{per_core}; QEMU RSS {ready:.0f} MiB at driver ready, {warm[0][1]:.0f} MiB after "
          f"warm-up ({warm_at} inferences), {warm[-1][1]:.0f} MiB at the end, max "
          f"{figures['rss_mib_max_after_warmup']:.0f} MiB")
    if not QEMU:   # a sanitizer build's RSS grows by design (ASan's quarantine of freed memory)
        assert growth < 32, f"QEMU RSS grew {growth:.0f} MiB after warm-up: {samples}"


SNAP_SH = """\
cd /tmp
mkdir -p /tmp/ref /tmp/run
{infer} -n 1 -o /tmp/ref -l /tmp/labels.txt /tmp/model.tflite /tmp/input.png
echo SNAP-REF-BEGIN; cat /tmp/ref/summary.json; echo SNAP-REF-END
{infer} -n {k} -o /tmp/run -l /tmp/labels.txt /tmp/model.tflite /tmp/input.png
echo SNAP-RUN-BEGIN; cat /tmp/run/summary.json; echo SNAP-RUN-END
dmesg >/tmp/dmesg.txt
echo SNAP-DMESG-BEGIN; cat /tmp/dmesg.txt; echo SNAP-DMESG-END
poweroff -f
"""
SNAP_INVOKES = 40


def test_snapshot_mid_inference_restores_to_the_same_detections(tmp_path):
    """The board stopped while an NPU kick is in flight (QMP stop; retried until the trace shows
    a kick cancelled by the stop), migrated to a file, and restored in a new QEMU: the inference
    finishes there with the detections of a run before the snapshot, every invoke identical."""
    share, log, log2 = str(tmp_path), str(tmp_path / "qemu.log"), str(tmp_path / "qemu2.log")
    state = tmp_path / "state"
    stage(share)
    with open(os.path.join(share, "snap.sh"), "w") as f:
        f.write(SNAP_SH.format(infer=INFER, k=SNAP_INVOKES))
    traces = ["-trace", "rk3588_npu_suspend", "-trace", "rk3588_npu_rerun",
              "-trace", "rk3588_npu_done"]
    cmd = qemu_cmd(share, "rocketsim.shell", log, smp=2, extra=traces)
    qmp_path = str(tmp_path / "qmp.sock")
    proc = start(cmd + ["-qmp", f"unix:{qmp_path},server=on,wait=off"])
    con = Console(proc)
    proc2 = None
    try:
        con.wait_for("rocketsim: shell", 300)
        # 9p blocks migration while mounted: work from /tmp, unmount /host
        con.send("cp /host/model.tflite /host/input.png /host/labels.txt /host/snap.sh /tmp/ && "
                 "cd / && umount /host && echo UMOUNT-$((40+2))")
        con.wait_for("^UMOUNT-42", 60)
        con.send("sh /tmp/snap.sh")
        mark = con.wait_for("^SNAP-REF-END$", 300)
        con.wait_for(r"^rocket-infer: invoke 3:", 300, mark)
        qmp = QMP(qmp_path)
        rng, in_flight, tries = random.Random(1), False, 0
        while not in_flight:
            tries += 1
            assert tries <= 50, "never caught an NPU kick in flight"
            before = open(log, errors="replace").read().count("rk3588_npu_suspend")
            qmp.cmd("stop")
            in_flight = open(log, errors="replace").read().count("rk3588_npu_suspend") > before
            if not in_flight:
                qmp.cmd("cont")
                time.sleep(rng.uniform(0.005, 0.05))
        invokes_before = sum(1 for ln in con.lines[mark:]
                             if ln and ln.startswith("rocket-infer: invoke"))
        qmp.cmd("migrate", uri=f"exec:cat > {state}")
        end = time.monotonic() + 120 * SLOW
        while (st := qmp.cmd("query-migrate").get("status")) not in ("completed", "failed"):
            assert time.monotonic() < end, "migration did not finish"
            time.sleep(0.05)
        assert st == "completed", qmp.cmd("query-migrate")
        qmp.close()
        stop(proc)
        size = state.stat().st_size
        # the destination: the same board, restored from the file
        qmp2_path = str(tmp_path / "qmp2.sock")
        cmd2 = qemu_cmd(share, "rocketsim.shell", log2, smp=2, extra=traces)
        proc2 = start(cmd2 + ["-qmp", f"unix:{qmp2_path},server=on,wait=off",
                              "-incoming", f"exec:cat {state}"])
        con2 = Console(proc2)
        qmp2 = QMP(qmp2_path)
        end = time.monotonic() + 120 * SLOW
        while qmp2.cmd("query-status")["status"] == "inmigrate":
            assert time.monotonic() < end, "the restore did not finish"
            time.sleep(0.05)
        qmp2.cmd("cont")
        run = json.loads(con2.between("SNAP-RUN-BEGIN", "SNAP-RUN-END"))
        dmesg = con2.between("SNAP-DMESG-BEGIN", "SNAP-DMESG-END")
        qmp2.close()
        proc2.wait(timeout=60 * SLOW)
    finally:
        stop(proc)
        if proc2:
            stop(proc2)
    ref = json.loads("\n".join(con.lines[con.wait_for("^SNAP-REF-BEGIN$", 1) + 1:mark]))
    rerun = open(log2, errors="replace").read()
    assert "rk3588_npu_rerun" in rerun, "the destination did not run the cancelled kick again"
    assert run["invokes_differing"] == 0 and len(run["invoke_ms"]) == SNAP_INVOKES
    assert run["detections"] == ref["detections"]
    assert not board.kernel_problems(dmesg), board.kernel_problems(dmesg)
    golden = json.load(open(os.path.join(board.ROOT, "golden", f"mobiledet-{PHOTO}.json")))
    got = [(d["label"], d["score"]) for d in run["detections"] if d["score"] >= 0.4]
    assert got == [(g["label"], g["npu_score"]) for g in golden], got
    record("snapshot", {"stop_attempts": tries, "invokes_before_stop": invokes_before,
                        "state_mib": round(size / 2**20), "invokes": SNAP_INVOKES,
                        "detections": got, "identical": True})
    print(f"\nsnapshot: kick in flight at the stop (attempt {tries}) after {invokes_before} of "
          f"{SNAP_INVOKES} invokes; state {size / 2**20:.0f} MiB; restored run: every invoke "
          f"identical, detections {got} as before the snapshot")
