"""Reading Mesa's YOLOX test model (320x416 input; three heads [1, H, W, 85] at strides 8/16/32,
uint8 in [0, 1): 4 box terms, objectness, 80 class scores, sigmoids already applied)."""
import os

import numpy as np

# COCO's 90 ids name 10 categories that have no annotations; the 80-class models skip them.
UNUSED = {"street sign", "hat", "shoe", "eye glasses", "plate", "mirror", "window", "desk",
          "door", "blender"}


def names(coco_labels):
    with open(coco_labels) as f:
        return [ln.strip() for ln in f if not ln.startswith("#") and ln.strip() not in UNUSED]


def heads(outdir, summary):
    """The heads as float arrays [H, W, 85], from output-K.bin and the summary's quantisation."""
    out = []
    for k, o in enumerate(summary["outputs"]):
        q = np.fromfile(os.path.join(outdir, f"output-{k}.bin"), dtype=np.uint8)
        out.append((q.astype(np.float32) - o["zero_point"]) * o["scale"])
        out[-1] = out[-1].reshape(o["shape"][1:])
    return out


def classes(outdir, summary, labels, threshold=0.3):
    """{class name: best objectness x class score over all cells}, for scores >= threshold."""
    best = {}
    for h in heads(outdir, summary):
        score = h[..., 4:5] * h[..., 5:]
        for c in np.unique(np.nonzero(score >= threshold)[-1]):
            best[labels[c]] = round(float(score[..., c].max()), 4)
    return dict(sorted(best.items(), key=lambda kv: -kv[1]))
