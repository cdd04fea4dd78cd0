"""Bugs of the upstream kernel driver that the emulated board reproduces (driver/README.md,
"Known upstream bugs the emulator reproduces"). Each test asserts the correct behaviour and is
an expected failure (strict) while the bug is there: it fails as an expected failure only on the
bug's own signature, so a harness problem is a plain failure, and a kernel that no longer shows
the bug makes it XPASS, which strict mode reports as a failure saying the bug is gone — then
drop the mark."""
import os
import re

import pytest

import board

pytestmark = pytest.mark.boot

# The co-development fix (driver/README.md): in driver/patches/ it is applied to the kernel
# build, and the test must pass outright.
FIX = "0001-accel-rocket-IOVA-allocator-lives-with-the-domain.patch"
FIXED = os.path.exists(os.path.join(board.ROOT, "driver", "patches", FIX))


class PostcloseUseAfterFree(AssertionError):
    """The guest kernel oopsed in drm_mm_remove_node under rocket_gem_bo_free."""


def call_traces(dmesg):
    """Each WARN/oops report of a kernel log: (its first line, the functions of its call trace)."""
    reports, cur = [], None
    for line in dmesg.splitlines():
        text = re.sub(r"^\[\s*[\d.]+\]\s?", "", line)
        if re.match(r"(WARNING:|Unable to handle|Internal error:|BUG:)", text):
            cur = (text, [])
            reports.append(cur)
        elif cur and (m := re.match(r"\s+([A-Za-z_][\w.]*)\+0x", text)):
            cur[1].append(m.group(1))
    return reports


@pytest.mark.skipif(bool(board.REMOTE), reason="oopses the kernel: the emulated board only")
@pytest.mark.xfail(not FIXED, strict=True, raises=PostcloseUseAfterFree,
                   reason="upstream rocket: a BO freed after rocket_postclose is removed from "
                          "the file's freed drm_mm (NULL dereference in drm_mm_remove_node)")
def test_bo_freed_after_postclose(tmp_path):
    """driver/tests/rocket-postclose-uaf: two BOs exported as dma-bufs outlive their accel fd;
    closing the first dma-buf frees a BO against the allocator rocket_postclose freed. With
    init_on_free=1 the freed memory reads as zero, which makes the oops deterministic."""
    (tmp_path / "run.sh").write_text("rocket-postclose-uaf\n")
    r = board.boot(str(tmp_path), cores=1, append="init_on_free=1", timeout=60)
    where = f"\n--- log ---\n{r.log[-2000:]}\n--- kernel log ---\n{r.dmesg[-6000:]}"
    assert "accel0" in r.console, "no /dev/accel/accel0" + where
    assert "closing BO 0's dma-buf" in r.log, "the reproducer did not get to the bug" + where
    traces = call_traces(r.dmesg)
    for first, funcs in traces:
        if "drm_mm_remove_node" in funcs and "rocket_gem_bo_free" in funcs:
            raise PostcloseUseAfterFree(
                f"the upstream bug reproduces: {first} in {funcs[0]}, called from "
                f"{' <- '.join(funcs[1:5])}" + where)
    assert r.status == 0, "rocket-postclose-uaf did not report a clean run" + where
    # a fixed driver tears nothing down under live BOs
    assert traces == [], f"the kernel complained: {[t[0] for t in traces]}" + where
