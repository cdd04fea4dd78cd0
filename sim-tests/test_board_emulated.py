"""The board target end to end, with the emulated board standing in for a real one (sshboard.py:
QEMU user networking, dropbear in the guest, a port on 127.0.0.1 only): deploy the bundle over
SSH, check the board, run rocket-smoke, a few per-layer models and MobileDet once, capture every
NPU job there, bring it back, replay it on the host core and diff it task by task. Also: what a
board without the rocket module is told, and a developer's own Teflon (Debian's delegate copied
to another path) in the emulated board's image and in the bundle alike."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import board
import sshboard

pytestmark = pytest.mark.boot
RESULTS = os.path.join(board.BUILD, "board-emulated")
SSHBOARD = os.path.join(board.ROOT, "sim-tests", "sshboard.py")
DEBIAN_TEFLON = os.path.join(board.BUILD, "rootfs", "usr", "lib", "teflon", "libteflon.so")


def tail(r, n=4000):
    return (r.stdout or "")[-n:] + (r.stderr or "")[-n:]


def test_board_target_over_ssh():
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, SSHBOARD, "--ci", "--results", RESULTS],
                       capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    assert r.returncode == 0, tail(r)
    assert "4 passed" in r.stdout, tail(r)     # check, rocket-smoke, per-layer, MobileDet
    s = json.load(open(os.path.join(RESULTS, "board-diff-summary.json")))
    # MobileDet alone is 113 tasks; every task of every run the emulator reproduces
    assert s["tasks"] > 113 and s["identical"] == s["tasks"] and s["bad_jobs"] == 0, s
    assert f"the emulator reproduces {s['identical']} of {s['tasks']}" in r.stdout
    for table in ("board-check.txt", "board.json", "teflon-per-layer.json",
                  "mesa-ci-results.txt", "mobiledet-chelsea.json", "board-diff.txt"):
        assert os.path.exists(os.path.join(RESULTS, table)), table
    check = open(os.path.join(RESULTS, "board-check.txt")).read()
    assert "ok rocket driver loaded (module), 3 NPU core(s) bound" in check, check
    with open(os.path.join(RESULTS, "wall.txt"), "w") as f:
        f.write(f"{wall:.1f}\n")
    print(f"board target over SSH on the emulated board: {wall:.1f} s, {s['tasks']} tasks "
          "identical")


def test_board_without_rocket():
    """A board whose rocket module is not loaded: the run stops before any test, saying so."""
    with sshboard.serve(append="rocketsim.nomodprobe") as b:
        r = subprocess.run([sys.executable, "-m", "pytest", os.path.join(board.ROOT, "sim-tests"),
                            "-q", "-p", "no:cacheprovider", f"--board={b.target}"],
                           capture_output=True, text=True, timeout=300,
                           env=b.env(ROCKETSIM_RESULTS=os.path.join(RESULTS, "norocket")))
    out = r.stdout + r.stderr
    assert r.returncode == 3, out[-3000:]
    assert "the board lacks what the suites need" in out, out[-3000:]
    assert "rocket module not loaded" in out and "modprobe rocket" in out, out[-3000:]
    assert "no /dev/accel/accel*" in out, out[-3000:]
    assert " passed" not in out and " failed" not in out


def test_developer_teflon(tmp_path):
    """TEFLON=/elsewhere/libteflon.so: in the emulated board's image (userspace/mkrootfs) and
    in the bundle (scripts/make-bundle), checked for arm64; both run a layer through it."""
    mine = tmp_path / "mesa" / "libteflon.so"
    os.makedirs(mine.parent)
    shutil.copy(DEBIAN_TEFLON, mine)
    env = dict(os.environ, TEFLON=str(mine), ROCKETSIM_INITRAMFS=str(tmp_path / "initrd.gz"))
    r = subprocess.run([os.path.join(board.ROOT, "userspace", "mkrootfs")], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and f"the developer's {mine}" in r.stderr, tail(r)
    r = subprocess.run([os.path.join(board.ROOT, "scripts", "make-bundle"), "--out",
                        str(tmp_path / "share")], env=env, capture_output=True, text=True)
    assert r.returncode == 0, tail(r)
    manifest = json.load(open(tmp_path / "share" / "rocketsim-arm64" / "MANIFEST.json"))
    assert manifest["userspace"]["teflon"]["from"] == str(mine)
    # a wrong architecture is refused by both, clearly
    bad = dict(env, TEFLON=os.path.join(board.BUILD, "host", "rocket-infer"))
    for cmd in (["userspace/mkrootfs"], ["scripts/make-bundle", "--out", str(tmp_path / "x")]):
        r = subprocess.run([os.path.join(board.ROOT, cmd[0]), *cmd[1:]], env=bad,
                           capture_output=True, text=True)
        assert r.returncode != 0 and "x86-64 (amd64)" in r.stderr and \
            "need an arm64 (aarch64) shared object" in r.stderr, tail(r)
    # the guest runs a MobileDet layer through the image's and through the bundle's Teflon
    models = subprocess.run([os.path.join(board.ROOT, "scripts", "fetch-models")], check=True,
                            capture_output=True, text=True).stdout.strip()
    shutil.copy(os.path.join(models, "mobiledet-000.tflite"), tmp_path / "share" / "m.tflite")
    (tmp_path / "share" / "run.sh").write_text(
        "set -e\nmkdir -p /host/a /host/b\n"
        "rocket-infer -d /usr/lib/teflon/libteflon.so -o /host/a /host/m.tflite random:7\n"
        "B=/host/rocketsim-arm64\n"
        "$B/bin/rocket-infer -d $B/teflon/libteflon.so -o /host/b /host/m.tflite random:7\n")
    res = board.boot(str(tmp_path / "share"), cores=3, mem="2G", initrd=str(tmp_path / "initrd.gz"))
    assert res.status == 0, res.log[-3000:] + res.console[-2000:]
    assert f"rocketsim: userspace: /usr/lib/teflon/libteflon.so from {mine}" in res.console
    assert res.log.count("(Teflon)") == 2, res.log
    a = (tmp_path / "share" / "a" / "output-0.bin").read_bytes()
    assert a == (tmp_path / "share" / "b" / "output-0.bin").read_bytes() and len(a) > 0


def test_check_says_what_is_missing(tmp_path):
    """rocketsim-check on this host (no board) and on a pretended arm64 vendor kernel."""
    check = os.path.join(board.ROOT, "userspace", "board", "rocketsim-check")
    r = subprocess.run(["sh", check], capture_output=True, text=True)
    assert r.returncode == 1
    if os.uname().machine != "aarch64":
        assert "missing arch" in r.stdout and "not an arm64 board" in r.stdout, r.stdout
    fake = tmp_path / "bin"
    os.makedirs(fake)
    (fake / "uname").write_text('#!/bin/sh\ncase "$1" in -m) echo aarch64 ;; -r) echo '
                                '6.1.75-rockchip-rk3588 ;; *) echo Linux ;; esac\n')
    os.chmod(fake / "uname", 0o755)
    r = subprocess.run(["sh", check], capture_output=True, text=True,
                       env=dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}"))
    assert r.returncode == 1 and "ok arch aarch64" in r.stdout, r.stdout
    assert "missing kernel 6.1.75-rockchip-rk3588: wrong kernel, the rocket accel driver is in " \
           "Linux 6.18 and later" in r.stdout, r.stdout
