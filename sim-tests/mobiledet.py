"""MobileDet's conv / depthwise layers as Mesa-programmed NPU jobs (for tests and the bench)."""
import os
import subprocess

import numpy as np

from rknpu import mesagen as mg, tflite

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = "ssdlite_mobiledet_coco_qat_postprocess.tflite"


def models_dir():
    return subprocess.run([os.path.join(ROOT, "scripts", "fetch-models")], check=True,
                          capture_output=True, text=True).stdout.strip()


def layer_ops(seed=0):
    """(layer description, op with a seeded random uint8 input) for every conv/dw layer."""
    rng = np.random.default_rng(seed)
    out = []
    for layer in tflite.conv_layers(os.path.join(models_dir(), MODEL)):
        x = rng.integers(0, 256, layer["input"], dtype=np.uint8)
        op = mg.conv_op(x, layer["weights"], layer["bias"], layer["s_in"], layer["zp_in"],
                        layer["s_w"], layer["zp_w"], layer["s_out"], layer["zp_out"],
                        layer["stride"], layer["pads"], layer["kind"] == "dw")
        out.append((layer, op))
    return out
