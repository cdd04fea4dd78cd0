"""The board bundle's rocket-smoke jobs (userspace/board/jobs/, copied by scripts/make-bundle) are
test_boot's two jobs: the same files tinyjob writes, and expect.sha256 the hash of the output
numpy computes from the arithmetic rules (make-bundle checks the host core's out.bin against it).

When tinyjob changes, rewrite them with `/usr/bin/python3 sim-tests/test_bundle_jobs.py`."""
import hashlib
import os
import shutil
import sys
import tempfile

import tinyjob

JOBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "userspace", "board", "jobs")


def jobs():
    """As sim-tests/test_boot.py's make_jobs: IOVAs from 0, as rocket assigns them."""
    return {"job1": tinyjob.conv1x1(w=16, h=16, c=64, k=96, seed=11, base=0),
            "job2": tinyjob.conv1x1(w=8, h=8, c=32, k=64, seed=12, base=0, tasks=2)}


def write(dest):
    for name, job in jobs().items():
        d = os.path.join(dest, name)
        tinyjob.write_job_dir(job, d)
        with open(os.path.join(d, "expect.sha256"), "w") as f:
            f.write(f"{hashlib.sha256(job['expect']).hexdigest()}  out.bin\n")


def listing(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


def test_bundle_jobs_are_tinyjobs():
    with tempfile.TemporaryDirectory() as tmp:
        write(tmp)
        want, have = listing(tmp), listing(JOBS)
    again = "; rewrite them: /usr/bin/python3 sim-tests/test_bundle_jobs.py"
    assert sorted(have) == sorted(want), f"not the files tinyjob writes{again}"
    differ = [p for p in want if have[p] != want[p]]
    assert differ == [], f"{differ} differ from tinyjob's{again}"


if __name__ == "__main__":
    shutil.rmtree(JOBS, ignore_errors=True)
    write(JOBS)
    print(f"wrote {os.path.relpath(JOBS)}", file=sys.stderr)
