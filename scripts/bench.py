#!/usr/bin/python3
"""make bench: every MobileDet conv/depthwise layer, programmed as Mesa does, through the core
(rknpu-run --repeat, single thread). Prints the host's CPU and the kernel path that runs
(RKNPU_ISA=avx2 etc. forces a lesser one), per-layer figures, totals per kind and overall, and
last `core-bench: N GMAC/s`."""
import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "sim-tests"))
import mobiledet  # noqa: E402
import tinyjob  # noqa: E402
from rknpu import mesatask  # noqa: E402


def host(build):
    """The CPU and the kernel paths, as the core sees them (test-kernels --info)."""
    exe = os.path.join(ROOT, build, "qemu-hw", "tests", "test-kernels")
    try:
        return subprocess.run([exe, "--info"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "cpu: " + platform.processor() + "\nkernels: (unknown: no test-kernels)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=float, default=0.2, help="time per layer")
    a = ap.parse_args()
    run = os.path.join(ROOT, a.build, "qemu-hw", "tools", "rknpu-run")
    print(host(a.build))
    if os.environ.get("RKNPU_ISA"):
        print(f"RKNPU_ISA={os.environ['RKNPU_ISA']}")
    total_macs = total_s = 0.0
    kinds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (layer, op) in enumerate(mobiledet.layer_ops()):
            d = os.path.join(tmp, f"L{i:02d}")
            job = mesatask.build_job(op)
            tinyjob.write_job_dir(job, d)
            probe = subprocess.run([run, "-q", "--repeat", "2", d], capture_output=True, text=True)
            m = re.search(r"(\d+) MACs in ([\d.]+) s", probe.stdout)
            per = max(float(m.group(2)) / 2, 1e-5)
            reps = max(2, int(a.seconds / per))
            out = subprocess.run([run, "-q", "--repeat", str(reps), d], capture_output=True,
                                 text=True).stdout
            m = re.search(r"(\d+) MACs in ([\d.]+) s: ([\d.]+) GMAC/s", out)
            macs, secs = int(m.group(1)), float(m.group(2))
            total_macs += macs / reps
            total_s += secs / reps
            k = kinds.setdefault(layer["kind"], [0.0, 0.0])
            k[0] += macs / reps
            k[1] += secs / reps
            print(f"L{i:02d} {layer['kind']:4} {str(layer['input']):16} -> {str(layer['output']):16}"
                  f" k{layer['kernel']} s{layer['stride']} tasks {job['tasks']}: "
                  f"{secs / reps * 1e3:7.3f} ms {macs / secs * 1e-9:6.2f} GMAC/s")
    for kind, (m, t) in kinds.items():
        print(f"MobileDet {kind} layers: {m / 1e9:.3f} GMAC in {t * 1e3:.1f} ms: "
              f"{m / t / 1e9:.2f} GMAC/s")
    print(f"MobileDet conv+dw layers: {total_macs / 1e9:.3f} GMAC in {total_s * 1e3:.1f} ms")
    print(f"core-bench: {total_macs / total_s / 1e9:.2f} GMAC/s")


if __name__ == "__main__":
    main()
