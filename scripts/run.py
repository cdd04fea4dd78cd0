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

import numpy as np
from PIL import Image, ImageDraw

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "sim-tests"))
import board  # noqa: E402

MODELS = {"mobiledet": "ssdlite_mobiledet_coco_qat_postprocess.tflite",
          "mobilenet": "mobilenet_v1_1.0_224_quant.tflite"}


def step(msg):
    print(f"[make run] {msg}", flush=True)


def photo(name):
    deb = subprocess.run([os.path.join(ROOT, "scripts/debian-fetch"), "debfile", "python3-skimage"],
                         check=True, capture_output=True, text=True).stdout.strip()
    dest = os.path.join(ROOT, "build", "photos")
    path = os.path.join(dest, f"{name}.png")
    if not os.path.exists(path):
        os.makedirs(dest, exist_ok=True)
        subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -x -O "
                       f"./usr/lib/python3/dist-packages/skimage/data/{name}.png > {path}",
                       shell=True, check=True)
    return Image.open(path).convert("RGB")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="mobiledet", choices=sorted(MODELS))
    ap.add_argument("--image", default="chelsea", help="python3-skimage photo (chelsea, "
                    "astronaut, coffee, motorcycle_left)")
    ap.add_argument("--cores", type=int, default=3)
    ap.add_argument("--clock", type=int, default=200_000_000, help="NPU clock in Hz")
    ap.add_argument("--invokes", type=int, default=3)
    ap.add_argument("--icount", type=int, default=None, metavar="SHIFT",
                    help="run the guest CPU at 2^SHIFT ns per instruction (-icount), so that the "
                         "guest's timing includes the NPU's modelled time")
    a = ap.parse_args()

    models = subprocess.run([os.path.join(ROOT, "scripts/fetch-models")], check=True,
                            capture_output=True, text=True).stdout.strip()
    out = os.path.join(ROOT, "build", "run")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    img = photo(a.image)
    size = 320 if a.model == "mobiledet" else 224
    step(f"input: {a.image}.png {img.size[0]}x{img.size[1]} -> {size}x{size} RGB")
    img.resize((size, size), Image.BILINEAR).save(os.path.join(out, "input.png"))
    np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8).tofile(
        os.path.join(out, "input.raw"))
    shutil.copy(os.path.join(models, MODELS[a.model]), os.path.join(out, "model.tflite"))
    os.makedirs(os.path.join(out, "npu"))
    with open(os.path.join(out, "run.sh"), "w") as f:
        f.write(f"rocket-infer -d /usr/lib/teflon/libteflon.so -n {a.invokes} -o /host/npu "
                "/host/model.tflite /host/input.raw\n")
    step(f"booting the emulated board: {a.cores} NPU cores at {a.clock / 1e6:.0f} MHz, "
         f"{a.invokes} invokes of {MODELS[a.model]} through Teflon")
    t0 = time.monotonic()
    trace = os.path.join(out, "qemu.log")
    r = board.boot(out, cores=a.cores, mem="2G", timeout=900, icount=a.icount,
                   extra=["-global", f"rk3588-npu.clock-frequency={a.clock}", "-D", trace,
                          "-d", "guest_errors,unimp", "-trace", "rk3588_npu_done"])
    if r.status != 0:
        print(r.console[-2000:], r.log[-2000:])
        step(f"the guest run failed (status {r.status})")
        return 1
    step(f"done in {time.monotonic() - t0:.1f} s wall (driver ready {r.ready:.1f} s after start)")
    s = json.load(open(os.path.join(out, "npu", "summary.json")))
    npu_ns = [int(m) for m in re.findall(r"npu_time_ns (\d+)", open(trace).read())]
    labels = [ln.strip() for ln in open(os.path.join(ROOT, "userspace", "coco-labels.txt"))
              if not ln.startswith("#")]
    if a.model == "mobiledet":
        dets = [d for d in s["detections"] if d["score"] >= 0.4]
        step(f"{len(dets)} detections with score >= 0.4:")
        draw_img = img.copy()
        draw = ImageDraw.Draw(draw_img)
        for d in dets:
            y0, x0, y1, x1 = d["box"]
            name = labels[d["class"]] if 0 <= d["class"] < len(labels) else str(d["class"])
            box = [x0 * img.size[0], y0 * img.size[1], x1 * img.size[0], y1 * img.size[1]]
            print(f"    {name:14} {d['score']:.2f}  box (x, y) {box[0]:.0f},{box[1]:.0f} - "
                  f"{box[2]:.0f},{box[3]:.0f}")
            draw.rectangle(box, outline=(255, 0, 0), width=3)
            draw.text((box[0] + 4, box[1] + 2), f"{name} {d['score']:.2f}", fill=(255, 255, 0))
        draw_img.save(os.path.join(out, "detections.png"))
        step(f"annotated image: {os.path.relpath(os.path.join(out, 'detections.png'), ROOT)}")
    else:   # classification: top-5 of the uint8 scores with MobileNet's labels
        scores = np.fromfile(os.path.join(out, "npu", "output-0.bin"), dtype=np.uint8)
        names = [ln.strip() for ln in open(os.path.join(models, "labels_mobilenet_quant_v1_224.txt"))]
        for i in np.argsort(scores)[::-1][:5]:
            print(f"    {names[i] if i < len(names) else i:24} {scores[i] / 255:.2f}")
    inv = s["invoke_ms"]
    clock = f"-icount shift={a.icount}" if a.icount is not None else "TCG-emulated CPU"
    step(f"inference: guest {inv[-1]:.1f} ms per invoke ({clock}, first "
         f"{inv[0]:.1f} ms); NPU time from the cycle model {sum(npu_ns) / len(inv) / 1e6:.2f} ms "
         f"per invoke over {len(npu_ns) // len(inv)} tasks at {a.clock / 1e6:.0f} MHz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
