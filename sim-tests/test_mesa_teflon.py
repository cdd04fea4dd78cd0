"""Mesa's own Teflon test program on the emulated board: test_teflon (src/gallium/targets/teflon/
test_teflon.cpp from Debian's mesa 25.0.7 source, built by scripts/build-mesa-tests, in the guest
as /usr/bin/test_teflon) against the guest's delegate, in one boot. Each case generates a model
(or reads one of Mesa's), runs it on TFLite's CPU kernels and through Teflon on the NPU, and fails
when an output differs by more than 2.

By default a representative slice of Mesa's generated cases (slice_cases(): 97 of the
4210, a minute or two). ROCKETSIM_MESA_TEFLON=all runs every case (`make test-mesa-teflon`), any
other value is a gtest filter over all of them ('DepthwiseConv2D.*:AddQuant.*'). Every case runs
in its own process, so an abort or a crash is that case's verdict and the run goes on; the NPU
interrupts each case raised are counted from /proc/interrupts. Verdicts are written in Mesa's CI
expectation syntax (`NAME,Pass|Fail|Crash|Timeout|Skip`) to build/mesa-teflon-results.txt (the
slice) or build/mesa-teflon-results-all.txt (all or a filter), with the details of each case (NPU
interrupts, times, why it failed) in the .json beside it; the guest's logs stay in
build/mesa-teflon/. Failures are findings, not test failures: the test asserts that every case
got a verdict and that every convolution the program checked ran on the NPU (no silent CPU
fallback)."""
import json
import os
import re
import shutil

import pytest

import board
import mesa_ci
import teflon

pytestmark = pytest.mark.boot
MODE = os.environ.get("ROCKETSIM_MESA_TEFLON", "")
WORK = os.path.join(board.BUILD, "mesa-teflon")
TOTAL_CASES = 4210          # Mesa 25.0.7's test_teflon: 1800 Conv2D, 200 DepthwiseConv2D, 1800
                            # Add, 100 AddQuant, 24 FullyConnected, 3 whole models, 283 layers

GUEST_SH = """\
export TEFLON_TEST_DELEGATE={delegate} TEFLON_TEST_DATA=/host/data
cd /tmp
mkdir -p /host/out/logs
test_teflon --gtest_list_tests >/host/out/list.txt 2>&1 || echo "gtest_list_tests failed: $?"
if [ -f /host/filter ]; then
    test_teflon --gtest_list_tests --gtest_filter="$(cat /host/filter)" |
        awk '/^[^ ]/ {{ s = $1 }} /^  / {{ print s $1 }}' >/host/cases.txt
fi
npu_irqs() {{
    awk '/npu/ {{ for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i }} END {{ print s + 0 }}' \\
        /proc/interrupts
}}
i=0
while read -r name; do
    a=$(npu_irqs)
    read -r t0 _ </proc/uptime
    timeout {timeout} test_teflon --gtest_filter="$name" >/host/out/logs/$i.log 2>&1 </dev/null
    rc=$?
    b=$(npu_irqs)
    read -r t1 _ </proc/uptime
    echo "$i $rc $((b - a)) $t0 $t1 $name" >>/host/out/cases.tsv
    i=$((i + 1))
done </host/cases.txt
"""


def conv_name(i, w, ci, co, s, p):
    return (f"Conv2D.Op/input_size_{i}_weight_size_{w}_input_channels_{ci}_output_channels_{co}"
            f"_stride_{s}_padding_same_{p}_is_signed_0")


def dw_name(i, w, c, s, p):
    return (f"DepthwiseConv2D.Op/input_size_{i}_weight_size_{w}_channels_{c}_stride_{s}"
            f"_padding_same_{p}_is_signed_0")


def add_name(i, w, ci, co, s, p):
    return "Add" + conv_name(i, w, ci, co, s, p)[len("Conv2D"):]


def slice_cases():
    """About a hundred of Mesa's generated cases that cover what the rocket driver handles
    differently: inputs of 3 and 5 rows, 1-channel inputs and outputs, 120 channels (not a
    multiple of the NPU's channel groups), output channels past one group (160, 256), stride 2,
    SAME padding, 5x5 kernels, large inputs split into several tasks; plus Add, AddQuant and
    FullyConnected. Every case here has weight_size <= input_size (Mesa skips the others)."""
    cases = []
    # Conv2D, 3 and 5 rows: 1x1 VALID and 3x3 SAME, both strides, five channel pairs
    for i in (3, 5):
        for w, p in ((1, 0), (3, 1)):
            for ci, co in ((1, 32), (32, 120), (120, 120), (120, 1), (256, 160)):
                for s in (1, 2):
                    cases.append(conv_name(i, w, ci, co, s, p))
    # 5x5 on 5 rows; 3x3 VALID on 3 rows (one output row)
    cases += [conv_name(5, 5, ci, co, 1, p) for ci, co in ((1, 32), (120, 120)) for p in (0, 1)]
    cases += [conv_name(3, 3, 120, 128, 1, 0), conv_name(3, 3, 1, 256, 2, 0)]
    # 8 rows, 3x3 and 5x5
    cases += [conv_name(8, w, ci, co, s, p) for w in (3, 5) for ci, co in ((32, 128), (120, 256))
              for s, p in ((1, 0), (2, 1))]
    # large inputs: several tasks per convolution
    cases += [conv_name(80, 1, 120, 128, 1, 0), conv_name(80, 3, 32, 32, 1, 1),
              conv_name(80, 5, 1, 32, 2, 1), conv_name(112, 3, 1, 32, 2, 1),
              conv_name(112, 1, 128, 256, 1, 0), conv_name(112, 3, 256, 256, 1, 1)]
    # DepthwiseConv2D
    cases += [dw_name(3, 3, c, s, p) for c in (1, 120, 256) for s in (1, 2) for p in (0, 1)]
    cases += [dw_name(5, w, c, s, 1) for w in (3, 5) for c in (1, 120) for s in (1, 2)]
    cases += [dw_name(8, 3, 32, 2, 1), dw_name(8, 5, 128, 1, 0), dw_name(80, 3, 32, 1, 1),
              dw_name(112, 5, 120, 2, 1), dw_name(112, 3, 256, 1, 1)]
    # Add (two convolutions and an ADD), AddQuant, FullyConnected
    cases += [add_name(3, 1, 1, 1, 1, 0), add_name(5, 3, 120, 120, 1, 1),
              add_name(8, 1, 32, 32, 1, 0), add_name(80, 1, 32, 32, 2, 0)]
    cases += [f"AddQuant.Op/{k}" for k in range(5)]
    cases += [f"FullyConnected.Op/input_size_{n}_output_channels_{c}_is_signed_0"
              for n, c in ((128, 32), (1280, 120), (25088, 1))]
    return cases


END = re.compile(r"^\[ +(OK|FAILED|SKIPPED) +\] ([^ ,]+)")
NOISE = re.compile(r"^(\[[ =A-Z-]+\]|Note: Google Test filter|CPU: |NPU: | *\d+ FAILED TEST)")


def verdict(name, rc, log, elapsed, timeout):
    """(Mesa CI verdict, gtest milliseconds or None, the lines that say why) of one case's run."""
    end = ms = None
    for ln in log.splitlines():
        m = END.match(ln)
        if m and m.group(2) == name:
            end = m.group(1)
            t = re.search(r"\((\d+) ms\)", ln)
            ms = int(t.group(1)) if t else None
            break
    why = [ln.strip() for ln in log.splitlines() if ln.strip() and not NOISE.match(ln)]
    why = " | ".join(why[-3:])[:400]
    if rc == 0 and end == "OK":
        return "Pass", ms, ""
    if rc == 0 and end == "SKIPPED":
        return "Skip", ms, why
    if rc == 1 and end == "FAILED":
        return "Fail", ms, why
    if end is None and elapsed >= timeout - 1:
        return "Timeout", ms, why or f"killed after {timeout} s"
    return "Crash", ms, why or f"exit status {rc}"


def collect(work, timeout):
    """{case: details} from the guest's cases.tsv and per-case logs."""
    out = {}
    tsv = os.path.join(work, "out", "cases.tsv")
    if not os.path.exists(tsv):
        return out
    with open(tsv) as f:
        for ln in f:
            idx, rc, irqs, t0, t1, name = ln.split()
            with open(os.path.join(work, "out", "logs", f"{idx}.log"), errors="replace") as g:
                log = g.read()
            elapsed = float(t1) - float(t0)
            v, ms, why = verdict(name, int(rc), log, elapsed, timeout)
            out[name] = {"verdict": v, "exit": int(rc), "npu_irqs": int(irqs),
                         "guest_s": round(elapsed, 2), "gtest_ms": ms, "why": why}
    return out


def listed_cases(list_txt):
    """Every case test_teflon --gtest_list_tests names."""
    cases, suite = [], None
    for ln in list_txt.splitlines():
        if ln and not ln.startswith(" "):
            suite = ln.strip()
        elif ln.startswith("  ") and suite:
            cases.append(suite + ln.split()[0])
    return cases


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy(src, dst)


def test_mesa_teflon():
    everything = MODE != ""
    timeout = 900 if everything else 120
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(os.path.join(WORK, "data"))
    src = teflon.models()
    for f in sorted(os.listdir(src)):
        # the generated cases patch Mesa's conv2d/add/fully_connected models; the model cases
        # (all or a filter) read the others
        if f.endswith(".tflite") and (everything or f in ("conv2d.tflite", "add.tflite",
                                                          "fully_connected.tflite")):
            link_or_copy(os.path.join(src, f), os.path.join(WORK, "data", f))
    if everything:
        with open(os.path.join(WORK, "filter"), "w") as f:
            f.write("*" if MODE == "all" else MODE)
    else:
        with open(os.path.join(WORK, "cases.txt"), "w") as f:
            f.write("".join(c + "\n" for c in slice_cases()))
    with open(os.path.join(WORK, "run.sh"), "w") as f:
        f.write(GUEST_SH.format(delegate=teflon.TEFLON, timeout=timeout))

    r = board.boot(WORK, cores=3, mem="2G", timeout=12 * 3600 if everything else 900)
    assert r.status == 0, f"{r.log[-2000:]}\n--- console ---\n{r.console[-2000:]}"
    with open(os.path.join(WORK, "out", "list.txt")) as f:
        listed = listed_cases(f.read())
    assert len(listed) == TOTAL_CASES, f"test_teflon lists {len(listed)} cases"
    with open(os.path.join(WORK, "cases.txt")) as f:
        cases = f.read().split()
    assert cases, "no case to run (filter matches nothing?)"
    assert not set(cases) - set(listed), f"not Mesa cases: {sorted(set(cases) - set(listed))}"

    results = collect(WORK, timeout)
    stem = os.path.join(board.BUILD, "mesa-teflon-results" + ("-all" if everything else ""))
    with open(stem + ".txt", "w") as f:
        f.write("".join(f"{c},{results[c]['verdict']}\n" for c in cases if c in results))
    # and beside the per-layer suite's verdicts, in the one file a Mesa developer diffs
    mesa_ci.update({c: results[c]["verdict"] for c in cases
                    if c in results and results[c]["verdict"] in ("Pass", "Fail", "Crash")})
    counts = {}
    for v in results.values():
        counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
    guest_s = round(sum(v["guest_s"] for v in results.values()), 1)   # in test_teflon
    problems = board.kernel_problems(r.dmesg)
    summary = {"cases": len(cases), "of": len(listed), "verdicts": counts,
               "guest_s": guest_s, "wall_s": round(r.wall, 1),
               "cpu_only": sorted(c for c, v in results.items()
                                  if v["npu_irqs"] == 0 and v["verdict"] != "Skip"),
               "kernel_problems": problems[:20]}
    with open(stem + ".json", "w") as f:
        json.dump({"_summary": summary, **results}, f, indent=1)
    print(f"mesa test_teflon: {len(cases)} of {len(listed)} cases, {counts}, "
          f"{guest_s} s in the guest, {r.wall:.0f} s wall -> {stem}.txt")

    missing = [c for c in cases if c not in results]
    assert not missing, f"no verdict for {len(missing)} case(s): {missing[:5]}"
    # The delegate must not fall back to the CPU quietly: every convolution test_teflon checked
    # (its verdict came from comparing outputs) raised NPU interrupts.
    no_npu = [c for c in cases if c.startswith(("Conv2D.", "DepthwiseConv2D."))
              and results[c]["verdict"] in ("Pass", "Fail") and results[c]["npu_irqs"] == 0]
    assert not no_npu, f"convolutions that never reached the NPU: {no_npu[:5]}"
