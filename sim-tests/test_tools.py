"""The host tools on a Mesa-programmed MobileDet task."""
import json
import os
import re
import subprocess

import mobiledet
import tinyjob
from rknpu import mesatask

TOOLS = os.path.join(os.path.dirname(__file__), "..", "build", "qemu-hw", "tools")


def test_rknpu_dis_names_all_130_entries(tmp_path):
    layer, op = mobiledet.layer_ops()[0]            # the stem: 6 tasks
    job = mesatask.build_job(op)
    start = job["kicks"][1][0]                      # task 1: chained (links to task 2)
    path = tmp_path / "task.bin"
    path.write_bytes(job["segments"][0][start:start + 130 * 8])
    out = subprocess.run([os.path.join(TOOLS, "rknpu-dis"), str(path)], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    entries = [ln for ln in out if re.match(r"\s*\d+  [0-9a-f]{16}  ", ln)]
    assert len(entries) == 130
    assert not [ln for ln in entries if "?UNKNOWN" in ln or "INVALID" in ln]
    assert "CNA      CONV_CON2" in out[7] and "FEATURE_GRAINS=0x35" in out[7]
    assert "PC       BASE_ADDRESS" in entries[126] and "OP_EN" in entries[129]
    assert out[-1].startswith("130 entries: 128 writes, 1 op_en, 1 markers")


def test_rknpu_run_stats(tmp_path):
    job = tinyjob.conv1x1(tasks=2)
    tinyjob.write_job_dir(job, str(tmp_path))
    res = subprocess.run([os.path.join(TOOLS, "rknpu-run"), "--stats", str(tmp_path / "s.json"),
                          str(tmp_path)], check=True, capture_output=True, text=True)
    stats = json.loads((tmp_path / "s.json").read_text())
    assert [s["task"] for s in stats] == [0, 0]
    assert [s["macs"] for s in stats] == [8 * 4 * 16 * 32, 8 * 4 * 32 * 32]
    assert all(s["cycles"] > 0 and s["error"] == 0 for s in stats)
    assert res.stdout.count("kick") == 2
