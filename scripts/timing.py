#!/usr/bin/python3
"""make timing: MobileNetV1 and MobileDet through Teflon on the emulated board under -icount
(guest CPU at 1 instruction/ns), beside the published RK3588 board figures
(../shared/reference/hardware-notes.md, appendix and 4.4). For each model: the cycle model's NPU
time, the guest's inference time, the same with the NPU made free (what the guest's CPU side costs
in instructions), and the interrupt-to-next-task gap of the kernel driver. The board's CPU speed
is the one thing the published figures do not separate from the NPU's: it is fitted on
MobileNetV1 and MobileDet's board time predicted with it. Writes build/timing.json and a
timeline picture of one inference per model, build/timing/MODEL-timeline.png."""
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# published end-to-end figures, one core, mainline clock (hardware-notes appendix)
BOARD_MS = {"mobilenet": (10.68, 11.18), "mobiledet": (33.0, 33.0)}
BOARD_IRQ_TO_NEXT_TASK_US = 20.0   # hard IRQ ~2 us + threaded handler ~18 us [WID ftrace]
FREE_NPU = ["--clock", str(10**12), "--dma-bandwidth", str(10**18), "--task-overhead", "0"]


def step(msg):
    print(f"[make timing] {msg}", flush=True)


def timeline(events, tasks, path, title):
    """A picture of the last invoke: NPU busy (green) between kick and interrupt, the rest is the
    guest's CPU side (driver, Mesa, TFLite)."""
    from PIL import Image, ImageDraw
    ev = events[-2 * tasks:]
    t0, t1 = ev[0][1], ev[-1][1]
    w, h, x0 = 1200, 120, 10
    scale = (w - 2 * x0) / max(1, t1 - t0)
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([x0, 40, w - x0, 80], fill=(225, 225, 225))
    busy = 0
    for (k, a), (_, b) in zip(ev[::2], ev[1::2]):
        d.rectangle([x0 + (a - t0) * scale, 40, x0 + (b - t0) * scale, 80], fill=(40, 160, 60))
        d.line([x0 + (a - t0) * scale, 40, x0 + (a - t0) * scale, 80], fill=(0, 70, 20))
        busy += b - a
    d.text((x0, 10), f"{title}: {tasks} NPU tasks, NPU busy (green) {busy / 1e6:.2f} ms of "
           f"{(t1 - t0) / 1e6:.2f} ms from first kick to last interrupt (guest virtual time)",
           fill="black")
    d.text((x0, 90), "0 ms", fill="black")
    d.text((w - x0 - 60, 90), f"{(t1 - t0) / 1e6:.2f} ms", fill="black")
    img.save(path)


def run(model, invokes, extra=()):
    out = os.path.join(ROOT, "build", "timing", model)
    r = subprocess.run([os.path.join(ROOT, "scripts", "run.py"), "--model", model, "--image",
                        "chelsea", "--invokes", str(invokes), "--icount", "0", "--cores", "1",
                        "--out", out, *extra], capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stdout[-2000:] + r.stderr[-2000:])
    summary = json.load(open(os.path.join(out, "npu", "summary.json")))
    trace = open(os.path.join(out, "qemu.log")).read()
    events = [(m[0], int(m[1])) for m in re.findall(r"rk3588_npu_(kick|done) .*vt_ns (\d+)", trace)]
    npu_ns = [int(m) for m in re.findall(r"npu_time_ns (\d+)", trace)]
    gaps = [b[1] - a[1] for a, b in zip(events, events[1:]) if a[0] == "done" and b[0] == "kick"]
    if not extra and npu_ns:
        timeline(events, len(npu_ns) // invokes,
                 os.path.join(ROOT, "build", "timing", f"{model}-timeline.png"), model)
    return {"guest_ms": statistics.median(summary["invoke_ms"][1:]),
            "npu_ms": sum(npu_ns) / invokes / 1e6, "tasks": len(npu_ns) // invokes,
            "irq_to_next_task_ns": statistics.median(gaps) if gaps else None}


def main():
    invokes = 6
    report = {}
    for model in ("mobilenet", "mobiledet"):
        step(f"{model}: {invokes} invokes under -icount shift=0, 1 NPU core at 200 MHz")
        m = run(model, invokes)
        step(f"{model}: again with the NPU made free (its modelled time ~0)")
        free = run(model, invokes, FREE_NPU)
        lo, hi = BOARD_MS[model]
        board = (lo + hi) / 2
        r = {"tasks": m["tasks"], "npu_model_ms": round(m["npu_ms"], 2),
             "guest_icount_ms": round(m["guest_ms"], 2),
             "guest_icount_npu_free_ms": round(free["guest_ms"], 2),
             "guest_irq_to_next_task_ns": m["irq_to_next_task_ns"],
             "board_ms": [lo, hi],
             "guest_vs_board": round(m["guest_ms"] / board - 1, 3),
             # what the board's kernel path adds per task beyond the guest's instructions
             "board_irq_path_extra_ms": round(m["tasks"] * (
                 BOARD_IRQ_TO_NEXT_TASK_US - (m["irq_to_next_task_ns"] or 0) / 1e3) / 1e3, 2)}
        report[model] = r
    # One unknown the anchors cannot give: how fast the board's A76 runs the guest's CPU side.
    # Fit it on MobileNetV1 (board = CPU side / rate + NPU model), then predict MobileDet.
    mn, md = report["mobilenet"], report["mobiledet"]
    rate = mn["guest_icount_npu_free_ms"] / (sum(mn["board_ms"]) / 2 - mn["npu_model_ms"])
    for r in (mn, md):
        r["board_cpu_rate_instr_per_ns"] = round(rate, 2)
        r["predicted_board_ms"] = round(r["guest_icount_npu_free_ms"] / rate + r["npu_model_ms"], 2)
        r["predicted_vs_board"] = round(r["predicted_board_ms"] / (sum(r["board_ms"]) / 2) - 1, 3)
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "timing.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"{'':30} {'MobileNetV1':>12} {'MobileDet':>12}")
    rows = [("NPU tasks per invoke", "tasks", "{}"),
            ("cycle model NPU time, ms", "npu_model_ms", "{:.2f}"),
            ("guest -icount 0, ms", "guest_icount_ms", "{:.2f}"),
            ("  with the NPU free, ms", "guest_icount_npu_free_ms", "{:.2f}"),
            ("guest IRQ->next task, ns", "guest_irq_to_next_task_ns", "{:.0f}"),
            ("board (published), ms", "board_ms", "{0[0]}-{0[1]}"),
            ("guest vs board", "guest_vs_board", "{:+.0%}"),
            ("board kernel path not in guest", "board_irq_path_extra_ms", "{:.2f} ms"),
            ("A76 rate fitted on MobileNetV1", "board_cpu_rate_instr_per_ns", "{} i/ns"),
            ("predicted board time, ms", "predicted_board_ms", "{:.2f}"),
            ("predicted vs board", "predicted_vs_board", "{:+.1%}")]
    for name, key, fmt in rows:
        print(f"{name:30} " + " ".join(f"{fmt.format(report[m][key]):>12}"
                                       for m in ("mobilenet", "mobiledet")))
    step("written build/timing.json and build/timing/*-timeline.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
