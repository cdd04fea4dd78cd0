#!/usr/bin/python3
"""make run: boot the emulated RK3588 board (3 NPU cores) and run SSDLite MobileDet through Mesa's
Teflon delegate on the NPU, on a photo from Debian's python3-skimage; print the detections, the
inference times (guest wall and the cycle model's NPU time) and write an annotated PNG."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

from PIL import Image, ImageDraw

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "sim-tests"))
import board  # noqa: E402
import yolox  # noqa: E402

MODELS = {"mobiledet": "ssdlite_mobiledet_coco_qat_postprocess.tflite",
          "mobilenet": "mobilenet_v1_1.0_224_quant.tflite", "yolox": "yolox.tflite"}


def step(msg):
    print(f"[make run] {msg}", flush=True)


def photo(name):
    """build/photos/NAME.png, taken from Debian's python3-skimage package."""
    deb = subprocess.run([os.path.join(ROOT, "scripts/debian-fetch"), "debfile", "python3-skimage"],
                         check=True, capture_output=True, text=True).stdout.strip()
    dest = os.path.join(ROOT, "build", "photos")
    path = os.path.join(dest, f"{name}.png")
    if not os.path.exists(path):
        os.makedirs(dest, exist_ok=True)
        r = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -x -O "
                           f"./usr/lib/python3/dist-packages/skimage/data/{name}.png > {path}",
                           shell=True)
        if r.returncode:
            os.unlink(path)
            sys.exit(f"make run: python3-skimage has no photo '{name}.png'")
    return path


def labels_file(model, models, out):
    if model == "mobilenet":
        return os.path.join(models, "labels_mobilenet_quant_v1_224.txt")
    coco = os.path.join(ROOT, "userspace", "coco-labels.txt")
    if model == "yolox":   # 80 classes, not the 90 ids
        path = os.path.join(out, "coco80.txt")
        with open(path, "w") as f:
            f.write("\n".join(yolox.names(coco)) + "\n")
        return path
    return coco


def show(res, img, png, labels, score_min):
    """Print what rocket-infer found in folder res: detections (also drawn into png), a
    classifier's top-5 or YOLOX's classes. Returns the printed lines."""
    summary = json.load(open(os.path.join(res, "summary.json")))
    rows = []
    if summary["outputs"][0]["shape"][-1] == 85:
        step(f"YOLOX classes with objectness x class score >= {score_min}:")
        names = [ln.strip() for ln in open(labels)]
        found = yolox.classes(res, summary, names, score_min)
        rows = [f"{name:14} {score:.2f}" for name, score in found.items()]
    elif summary["detections"]:
        dets = [d for d in summary["detections"] if d["score"] >= score_min]
        step(f"{len(dets)} detections with score >= {score_min}:")
        draw = ImageDraw.Draw(img)
        for d in dets:
            y0, x0, y1, x1 = d["box"]
            name = d.get("label", str(d["class"]))
            box = [x0 * img.size[0], y0 * img.size[1], x1 * img.size[0], y1 * img.size[1]]
            rows.append(f"{name:14} {d['score']:.2f}  box (x, y) {box[0]:.0f},{box[1]:.0f} - "
                        f"{box[2]:.0f},{box[3]:.0f}")
            draw.rectangle(box, outline=(255, 0, 0), width=3)
            draw.text((box[0] + 4, box[1] + 2), f"{name} {d['score']:.2f}", fill=(255, 255, 0))
        img.save(png)
    else:
        step("top-5:")
        rows = [f"{t.get('label', t['index']):24} {t['score']:.2f}" for t in summary["top"]]
    for r in rows:
        print("    " + r)
    if summary["detections"]:
        step(f"annotated image: {os.path.relpath(png, ROOT)}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="mobiledet", choices=sorted(MODELS))
    ap.add_argument("--image", default="chelsea", help="python3-skimage photo (chelsea, "
                    "astronaut, coffee, motorcycle_left)")
    ap.add_argument("--cores", type=int, default=3)
    ap.add_argument("--clock", type=int, default=200_000_000, help="NPU clock in Hz")
    ap.add_argument("--dma-bandwidth", type=int, default=None, metavar="BYTES_PER_S",
                    help="the cycle model's DRAM bandwidth per core")
    ap.add_argument("--task-overhead", type=int, default=None, metavar="CYCLES",
                    help="the cycle model's fixed cost per task")
    ap.add_argument("--invokes", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "run"),
                    help="folder for the inputs, outputs and pictures (emptied first)")
    ap.add_argument("--capture", action="store_true",
                    help="record every NPU job in OUT/capture/ (rocket-capture.so), for rknpu-run")
    ap.add_argument("--score", type=float, default=0.4, help="detection score threshold")
    ap.add_argument("--icount", type=int, default=None, metavar="SHIFT",
                    help="run the guest CPU at 2^SHIFT ns per instruction (-icount), so that the "
                         "guest's timing includes the NPU's modelled time")
    a = ap.parse_args()

    models = subprocess.run([os.path.join(ROOT, "scripts/fetch-models")], check=True,
                            capture_output=True, text=True).stdout.strip()
    out = os.path.abspath(a.out)
    if os.path.isdir(out) and os.listdir(out) and not os.path.exists(os.path.join(out, "run.sh")):
        sys.exit(f"make run: {out} is not empty and not a previous run's folder; not emptying it")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    png = photo(a.image)
    img = Image.open(png).convert("RGB")
    step(f"input: {a.image}.png {img.size[0]}x{img.size[1]}, resized by rocket-infer to the model")
    shutil.copy(png, os.path.join(out, "input.png"))
    shutil.copy(labels_file(a.model, models, out), os.path.join(out, "labels.txt"))
    shutil.copy(os.path.join(models, MODELS[a.model]), os.path.join(out, "model.tflite"))
    os.makedirs(os.path.join(out, "npu"))
    capture = ("ROCKET_CAPTURE_DIR=/host/capture LD_PRELOAD=/usr/bin/rocket-capture.so "
               if a.capture else "")
    with open(os.path.join(out, "run.sh"), "w") as f:
        f.write(f"{capture}rocket-infer -d /usr/lib/teflon/libteflon.so -n {a.invokes} "
                "-o /host/npu -l /host/labels.txt /host/model.tflite /host/input.png\n")
    step(f"booting the emulated board: {a.cores} NPU cores at {a.clock / 1e6:.0f} MHz, "
         f"{a.invokes} invokes of {MODELS[a.model]} through Teflon")
    t0 = time.monotonic()
    trace = os.path.join(out, "qemu.log")
    timing = ["-global", f"rk3588-npu.clock-frequency={a.clock}"]
    if a.dma_bandwidth is not None:
        timing += ["-global", f"rk3588-npu.dma-bandwidth={a.dma_bandwidth}"]
    if a.task_overhead is not None:
        timing += ["-global", f"rk3588-npu.task-overhead={a.task_overhead}"]
    r = board.boot(out, cores=a.cores, mem="2G", timeout=900, icount=a.icount,
                   extra=timing + ["-D", trace, "-d", "guest_errors,unimp",
                                   "-trace", "rk3588_npu_done", "-trace", "rk3588_npu_kick"])
    if r.status != 0:
        print(r.console[-2000:], r.log[-2000:])
        step(f"the guest run failed (status {r.status})")
        return 1
    step(f"done in {time.monotonic() - t0:.1f} s wall (driver ready {r.ready:.1f} s after start)")
    s = json.load(open(os.path.join(out, "npu", "summary.json")))
    npu_ns = [int(m) for m in re.findall(r"npu_time_ns (\d+)", open(trace).read())]
    labels = os.path.join(out, "labels.txt")
    npu_rows = show(os.path.join(out, "npu"), img.copy(), os.path.join(out, "detections.png"),
                    labels, a.score)
    # the reference: TFLite's CPU kernels on the host, same model, same input bytes
    os.makedirs(os.path.join(out, "cpu"))
    subprocess.run([os.path.join(ROOT, "build", "host", "rocket-infer"), "-o",
                    os.path.join(out, "cpu"), "-l", labels, os.path.join(out, "model.tflite"),
                    os.path.join(out, "npu", "input-0.bin")], check=True, stdout=subprocess.DEVNULL)
    step("CPU reference (TFLite on the host, same input):")
    cpu_rows = show(os.path.join(out, "cpu"), img.copy(),
                    os.path.join(out, "cpu", "detections.png"), labels, a.score)
    if cpu_rows == npu_rows:
        step("the NPU and the CPU reference agree on every line above")
    if a.capture:
        step(f"NPU jobs captured in {os.path.relpath(os.path.join(out, 'capture'), ROOT)}/; "
             "replay with build/qemu-hw/tools/rknpu-run")
    inv = s["invoke_ms"]
    clock = f"-icount shift={a.icount}" if a.icount is not None else "TCG-emulated CPU"
    step(f"inference: guest {inv[-1]:.1f} ms per invoke ({clock}, first "
         f"{inv[0]:.1f} ms); NPU time from the cycle model {sum(npu_ns) / len(inv) / 1e6:.2f} ms "
         f"per invoke over {len(npu_ns) // len(inv)} tasks at {a.clock / 1e6:.0f} MHz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
