"""Every conv / depthwise layer of SSDLite MobileDet (shapes, weights and quantisation from the
model), programmed as Mesa does: C core vs independent reference bit-exact, and vs TFLite."""
import pytest

import mobiledet
from test_numerics import check_op

LAYERS = mobiledet.layer_ops(seed=3)


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=[f"L{i:02d}" for i in range(len(LAYERS))])
def test_mobiledet_layer(index, tmp_path):
    layer, op = LAYERS[index]
    check_op(op, tmp_path, layer["name"])
