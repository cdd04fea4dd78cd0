"""The LAVA job that runs the board bundle on a farm's RK3588 (userspace/board/lava-rk3588.yaml)
is valid for LAVA's own schema (Debian's lava-common, strict), and a broken one is not."""
import os
import subprocess

import board

CHECK = os.path.join(board.ROOT, "scripts", "check-lava")
JOB = os.path.join(board.ROOT, "userspace", "board", "lava-rk3588.yaml")


def test_lava_job_is_valid():
    r = subprocess.run(["/usr/bin/python3", CHECK], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid LAVA job" in r.stdout and "bin/rocketsim-run" in r.stdout


def test_lava_schema_rejects_a_broken_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(open(JOB).read().replace("method: u-boot", "method: u-boot\n    kernel: x"))
    r = subprocess.run(["/usr/bin/python3", CHECK, str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and "INVALID: extra keys not allowed" in r.stdout, r.stdout
