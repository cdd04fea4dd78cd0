"""The device fuzzer's seeds and its findings, replayed: qemu-hw/tests/fuzz-qemu.c (make fuzz) built
here with libFuzzer and run once over qemu-hw/tests/fuzz-qemu-seeds/ (kicks on three cores,
chains, faults, CBUF quirks, stop/cont, migration, resets mid-kick) and the reproducers of past
findings in qemu-hw/tests/fuzz-qemu-regressions/, against build/qemu-system-aarch64 (QEMU_BIN
for another). Each input must leave QEMU alive and answering."""
import glob
import os
import shutil
import subprocess

import pytest

from npu_qtest import qemu_binary

pytestmark = pytest.mark.qemu
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TESTS = os.path.join(ROOT, "qemu-hw", "tests")


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    if not shutil.which("clang"):
        pytest.skip("no clang")
    out = str(tmp_path_factory.mktemp("fuzz") / "fuzz-qemu")
    subprocess.run(["clang", "-g", "-O1", "-fsanitize=fuzzer", "-I", os.path.join(ROOT, "qemu-hw",
                    "core"), os.path.join(TESTS, "fuzz-qemu.c"), "-o", out], check=True)
    return out


@pytest.mark.parametrize("folder", ["fuzz-qemu-seeds", "fuzz-qemu-regressions"])
def test_replay(fuzzer, folder):
    inputs = sorted(glob.glob(os.path.join(TESTS, folder, "*.bin")))
    if not inputs:
        pytest.skip(f"no inputs in {folder}")
    env = dict(os.environ, ROCKETSIM_QEMU=qemu_binary())
    r = subprocess.run([fuzzer, *inputs], capture_output=True, text=True, env=env, timeout=600,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr[-4000:]
    assert f"fuzz-qemu: {len(inputs)} inputs" in r.stderr, r.stderr[-2000:]
