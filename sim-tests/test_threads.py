"""Threads per task (rknpu-run --threads, the device's threads= property, issue 10): one task's
output rows split over host threads give the same bytes as one thread, and as the independent
reference, for convolutions, depthwise layers, several tasks per kick and the raw-accumulator
chain (whose CACC every part writes)."""
import functools
import subprocess

import pytest

import mobiledet
import test_outputs
import tinyjob
from rknpu import hwref, mesatask as mt
from test_numerics import RKNPU_RUN, random_op

THREADS = (1, 2, 3, 7)


def outputs(job, tmp_path, extra=()):
    """out.bin of the job for each thread count."""
    d = str(tmp_path / "job")
    tinyjob.write_job_dir(job, d)
    got = {}
    for n in THREADS:
        o = tmp_path / f"out{n}"
        o.mkdir()
        res = subprocess.run([RKNPU_RUN, "-q", "--threads", str(n), *extra, "-o", str(o), d],
                             capture_output=True, text=True)
        assert res.returncode in (0, 1), res.stderr
        got[n] = ((o / "out.bin").read_bytes(), res.returncode)
    return got


def same_for_all(got, expect):
    for n, (raw, rc) in got.items():
        assert (raw, rc) == got[1], f"--threads {n} differs from --threads 1"
    assert got[1][0] == expect, "the core differs from the reference"


@pytest.mark.parametrize("seed", range(12))
def test_random_ops(seed, tmp_path):
    job = mt.build_job(random_op(seed))
    mem, _ = hwref.run_job(job["segments"], job["kicks"])
    same_for_all(outputs(job, tmp_path), mem.read(*job["out"]))


@functools.lru_cache(maxsize=1)
def layers():
    return mobiledet.layer_ops(seed=3)


# MobileDet's first (3x3 stride 2, 3 channels), a 1x1 with a fused add (its patch read in
# place), a 5x5 stride 2, and depthwise layers with stride 2 and 1
@pytest.mark.parametrize("index", [0, 3, 12, 21, 24])
def test_mobiledet_layers(index, tmp_path):
    _, op = layers()[index]
    job = mt.build_job(op)
    mem, _ = hwref.run_job(job["segments"], job["kicks"])
    same_for_all(outputs(job, tmp_path), mem.read(*job["out"]))


def test_chained_raw_accumulator(tmp_path):
    """Quirk chain-int-acc: task 2 adds task 1's CACC, written by whichever part had its rows."""
    job = test_outputs.two_task_job(0)
    mem, _ = hwref.run_job(job["segments"], job["kicks"])
    same_for_all(outputs(job, tmp_path), mem.read(*job["out"]))


def test_bad_thread_counts(tmp_path):
    for bad in ("0", "17", "x"):
        res = subprocess.run([RKNPU_RUN, "--threads", bad, str(tmp_path)], capture_output=True,
                             text=True)
        assert res.returncode == 2 and "--threads" in res.stderr, res.stderr
