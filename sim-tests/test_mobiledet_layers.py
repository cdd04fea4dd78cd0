"""Every conv / depthwise layer of SSDLite MobileDet (shapes, weights and quantisation from the
model), programmed as Mesa does: C core vs independent reference bit-exact, and vs TFLite."""
import numpy as np
import pytest

import mobiledet
from rknpu import hwref, mesatask as mt, tfl_ref
from test_numerics import deviation_reason, run_core

LAYERS = mobiledet.layer_ops(seed=3)


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=[f"L{i:02d}" for i in range(len(LAYERS))])
def test_mobiledet_layer(index, tmp_path):
    layer, op = LAYERS[index]
    job = mt.build_job(op)
    mem, status = hwref.run_job(job["segments"], job["kicks"])
    ref_raw = mem.read(*job["out"])
    core_raw, rc = run_core(job, tmp_path)
    assert core_raw == ref_raw, f"{layer['name']}: core and reference differ"
    why = deviation_reason(op)
    if any(s & 0x3000 for s in status):
        assert why, f"{layer['name']}: DMA error"
        return
    npu = mt.read_output(job, ref_raw).astype(int)
    tfl, _ = tfl_ref.conv(op["x"], op["w"], op["bias"], op["zp_in"], op["zp_w"], op["s_in"],
                          op["s_w"], op["s_out"], op["zp_out"], op["stride"], op["pads"], op["dw"])
    diff = np.abs(npu - tfl.astype(int))
    if why is None:
        assert diff.max() <= 1, f"{layer['name']}: |NPU - TFLite| up to {diff.max()}"
