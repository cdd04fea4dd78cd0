"""A board over SSH for the suites' board target (pytest --board USER@HOST[:PORT], make
test-board BOARD=...): the same guest-side suites on a machine with its own kernel and rocket
driver, or on the emulated board serving SSH (sshboard.py, the stand-in CI uses).

board.boot() comes here when board.REMOTE is set. The bundle (scripts/make-bundle) is deployed
once into BOARD_DIR (default /tmp/rocketsim); a suite's share folder goes to BOARD_DIR/runs/NAME,
its guest script runs there with the guest's paths mapped into the bundle (/host -> the run
folder, /usr/lib/teflon/libteflon.so -> the bundle's Teflon, LD_PRELOAD=/usr/bin/rocket-capture.so
-> the bundle's capture shim), every rocket-infer run is captured, what the script wrote comes
back, and every captured job is replayed on the host core and compared task by task
(rknpu-diff): RESULTS/board-diff.txt, board-diff.json and the totals in board-diff-summary.json.

Environment: ROCKETSIM_BOARD (the target), ROCKETSIM_BOARD_DIR, ROCKETSIM_BOARD_SSH (more ssh
options, e.g. "-i KEY"), ROCKETSIM_BOARD_TEFLON (a Teflon already on the board, instead of the
bundle's), ROCKETSIM_BOARD_MODELS (a few per-layer models instead of all), ROCKETSIM_BOARD_KEEP=1
(leave the run folders on the board), ROCKETSIM_BOARD_CAPTURES=0 (do not keep a copy of the board's
captures in RESULTS/captures/RUN/: a real board's jobs are goldens worth keeping).
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

import board

BUNDLE = os.path.join(board.BUILD, "bundle", "rocketsim-arm64")
DIFF = os.path.join(board.BUILD, "qemu-hw", "tools", "rknpu-diff")
CHECK = os.path.join(board.ROOT, "userspace", "board", "rocketsim-check")
HOST_INFER = os.path.join(board.BUILD, "host", "rocket-infer")
GUEST_TEFLON = "/usr/lib/teflon/libteflon.so"
GUEST_CAPTURE = "/usr/bin/rocket-capture.so"
# the few per-layer models of a board's short CI run (--board-ci): the stem (6 tasks), a
# depthwise with uneven pad lanes (Q13), a conv with a hardware quirk (short-data-entries),
# a MobileNetV1 depthwise
CI_MODELS = "mobiledet-000,mobiledet-086,yolox-008,mb-001"
WHOLE_MODELS = {"mobiledet": "ssdlite_mobiledet_coco_qat_postprocess.tflite",
                "mobilenet": "mobilenet_v1_1.0_224_quant.tflite", "yolox": "yolox.tflite"}


class BoardError(Exception):
    """The board cannot be reached or lacks something; the message says what."""


_ctl = None          # ssh ControlMaster socket folder, once connected
_deployed = None     # the bundle id deployed this session
_runs = 0


def target():
    """(destination for ssh, port or None) of ROCKETSIM_BOARD: [USER@]HOST[:PORT]."""
    m = re.fullmatch(r"(?:([\w.-]+)@)?(\[[0-9A-Fa-f:]+\]|[\w.-]+)(?::(\d+))?", board.REMOTE)
    if not m:
        raise BoardError(f"board '{board.REMOTE}': expected [USER@]HOST[:PORT]")
    user, host, port = m.groups()
    host = host.strip("[]")
    return (f"{user}@{host}" if user else host), port


def board_dir():
    d = os.environ.get("ROCKETSIM_BOARD_DIR", "/tmp/rocketsim")
    if not re.fullmatch(r"/[\w./-]+", d) or ".." in d.split("/"):
        raise BoardError(f"ROCKETSIM_BOARD_DIR={d}: an absolute path of plain characters")
    return d.rstrip("/")


def q(s):
    return shlex.quote(s)


def ssh_cmd(master=False):
    dest, port = target()
    opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=8", "-o", "LogLevel=ERROR"]
    if _ctl:
        opts += ["-o", f"ControlPath={_ctl}/cm", "-o",
                 "ControlMaster=" + ("yes" if master else "no")]
    if port:
        opts += ["-p", port]
    return ["ssh", *opts, *shlex.split(os.environ.get("ROCKETSIM_BOARD_SSH", "")), dest]


def connect():
    """One SSH connection for the session (ControlMaster); every later command reuses it."""
    global _ctl
    if _ctl:
        return
    _ctl = tempfile.mkdtemp(prefix="rocketsim-ssh-")
    r = subprocess.run(ssh_cmd(master=True)[:1] + ["-f", "-N", "-o", "ControlPersist=yes"] +
                       ssh_cmd(master=True)[1:], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=90)
    if r.returncode:
        shutil.rmtree(_ctl, ignore_errors=True)
        _ctl = None
        raise BoardError(f"cannot reach the board over SSH ({board.REMOTE}): "
                         f"{r.stderr.strip() or 'ssh exited ' + str(r.returncode)} (the board "
                         "target logs in without a password: BatchMode; give a key with "
                         "ROCKETSIM_BOARD_SSH='-i KEY' or in ~/.ssh/config)")


def disconnect():
    global _ctl, _deployed
    if _ctl:
        subprocess.run(ssh_cmd()[:1] + ["-O", "exit"] + ssh_cmd()[1:],
                       capture_output=True, timeout=30)
        shutil.rmtree(_ctl, ignore_errors=True)
    _ctl = _deployed = None


def sh(script, stdin=None, timeout=600, check=True):
    """Run a shell command line on the board; returns the CompletedProcess (bytes)."""
    connect()
    try:
        r = subprocess.run(ssh_cmd() + [script], input=stdin, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BoardError(f"board command timed out after {timeout} s: {script[:200]}")
    if check and r.returncode:
        raise BoardError(f"board command failed ({r.returncode}): {script[:200]}\n"
                         f"{r.stderr.decode(errors='replace')[-2000:]}")
    return r


def put(local_dir, remote_dir, names=None, timeout=600):
    """Copy local_dir (or just names in it) into remote_dir as one tar stream."""
    connect()
    what = sorted(names) if names is not None else ["."]
    tar = subprocess.Popen(["tar", "-C", local_dir, "-c", "-f", "-", "--", *what],
                           stdout=subprocess.PIPE)
    r = subprocess.run(ssh_cmd() + [f"mkdir -p {q(remote_dir)} && tar -x -f - -C {q(remote_dir)}"],
                       stdin=tar.stdout, capture_output=True, timeout=timeout)
    tar.stdout.close()
    if tar.wait() or r.returncode:
        raise BoardError(f"copying {local_dir} to the board's {remote_dir} failed: "
                         f"{r.stderr.decode(errors='replace')[-1000:]}")


def get(remote_dir, names, local_dir, timeout=600):
    """Copy names (paths relative to remote_dir) from the board into local_dir: the list goes
    over stdin (busybox tar has no -T), xargs makes one or more tar streams of it, read back to
    back (-i)."""
    if not names:
        return
    listing = ("\n".join(names) + "\n").encode()
    ssh = subprocess.Popen(ssh_cmd() + [f"cd {q(remote_dir)} && cat >.rocketsim-get && "
                                        "xargs tar -c -f - <.rocketsim-get"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    untar = subprocess.Popen(["tar", "-x", "-i", "-f", "-", "-C", local_dir], stdin=ssh.stdout,
                             stderr=subprocess.PIPE)
    ssh.stdout.close()
    _, err = ssh.communicate(listing, timeout=timeout)
    if untar.wait(timeout=timeout) or ssh.returncode:
        raise BoardError(f"copying results from the board's {remote_dir} failed: "
                         f"{err.decode(errors='replace')[-1000:]}"
                         f"{untar.stderr.read().decode(errors='replace')[-500:]}")


# ---- what the board has ----------------------------------------------------------------------

def check(bundle=False):
    """rocketsim-check on the board (piped over SSH before the bundle is there): returns
    (problems, every line)."""
    if bundle:
        args = f"--bundle {q(board_dir())}"
        if os.environ.get("ROCKETSIM_BOARD_TEFLON"):
            args += f" --teflon {q(os.environ['ROCKETSIM_BOARD_TEFLON'])}"
        r = sh(f"sh {q(board_dir())}/bin/rocketsim-check {args}", check=False, timeout=120)
    else:
        with open(CHECK, "rb") as f:
            r = sh("sh -s", stdin=f.read(), check=False, timeout=120)
    lines = r.stdout.decode(errors="replace").splitlines()
    problems = [ln[len("missing "):] for ln in lines if ln.startswith("missing ")]
    if r.returncode and not problems:
        problems = [f"rocketsim-check failed ({r.returncode}): "
                    f"{r.stderr.decode(errors='replace').strip()[-500:]}"]
    return problems, lines


def bundle_id():
    try:
        with open(os.path.join(BUNDLE, "MANIFEST.json")) as f:
            return json.load(f)["id"]
    except FileNotFoundError:
        raise BoardError(f"no bundle in {BUNDLE}: run make bundle first")


def deploy():
    """The bundle in BOARD_DIR, unless the same bundle is there already."""
    global _deployed
    want = bundle_id()
    if _deployed == want:
        return
    d = board_dir()
    have = sh(f"cat {q(d)}/MANIFEST.json 2>/dev/null", check=False).stdout.decode(errors="replace")
    m = re.search(r'"id": "([0-9a-f]+)"', have)
    if not (m and m.group(1) == want):
        sh(f"cd {q(d)} 2>/dev/null && rm -rf bin lib libexec teflon models jobs MANIFEST.json; "
           f"mkdir -p {q(d)}")
        t0 = time.monotonic()
        with open(BUNDLE + ".tar.gz", "rb") as f:
            r = subprocess.run(ssh_cmd() + [f"mkdir -p {q(d)} && tar -x -z -f - "
                                            f"--strip-components=1 -C {q(d)}"],
                               stdin=f, capture_output=True, timeout=900)
        if r.returncode:
            raise BoardError(f"deploying the bundle to {d} failed: "
                             f"{r.stderr.decode(errors='replace')[-1000:]}")
        print(f"remote: bundle {want} deployed to {board.REMOTE}:{d} in "
              f"{time.monotonic() - t0:.1f} s")
    _deployed = want


def prepare():
    """What the suites do first on a board: reach it, check it, deploy, check the bundle there.
    Returns the check's lines; raises BoardError naming everything that is missing."""
    problems, lines = check()
    if problems:
        raise BoardError("the board lacks what the suites need:\n  " + "\n  ".join(problems))
    deploy()
    problems, more = check(bundle=True)
    if problems:
        raise BoardError("the bundle cannot run on the board:\n  " + "\n  ".join(problems))
    return lines + [ln for ln in more if ln not in lines]


# ---- running a suite's guest script ---------------------------------------------------------

def teflon_path():
    return os.environ.get("ROCKETSIM_BOARD_TEFLON") or f"{board_dir()}/teflon/libteflon.so"


def board_script(text, run):
    """A guest script with the emulated board's paths mapped onto the board: the run folder
    for /host, the bundle's programs, Teflon and capture shim."""
    b = board_dir()
    text = text.replace(f"LD_PRELOAD={GUEST_CAPTURE}", f"ROCKETSIM_PRELOAD={b}/lib/rocket-capture.so")
    text = text.replace(GUEST_CAPTURE, f"{b}/lib/rocket-capture.so")
    text = text.replace(GUEST_TEFLON, teflon_path())
    text = re.sub(r"/host(?![\w.-])", run, text)
    return (f"# run on {board.REMOTE} by sim-tests/remote.py from the emulated board's script\n"
            f"export PATH={b}/bin:$PATH ROCKETSIM_CAPTURE_ALL={run}/board-capture\n"
            f"cd {run}\n{text}")


def local_files(share):
    out = set()
    for dirpath, _, files in os.walk(share):
        for f in files:
            out.add("./" + os.path.relpath(os.path.join(dirpath, f), share))
    return out


def boot(share, script="run.sh", timeout=300):
    """board.boot() on the board: run share/script there, bring back what it wrote, diff its
    captured jobs. Returns a board.BootResult (console: what ssh said)."""
    global _runs
    if _deployed is None:
        prepare()
    _runs += 1
    name = f"{os.path.basename(os.path.normpath(share))}-{os.getpid()}-{_runs}"
    run = f"{board_dir()}/runs/{name}"
    with open(os.path.join(share, script)) as f:
        text = f.read()
    with open(os.path.join(share, ".board-" + script), "w") as f:
        f.write(board_script(text, run))
    uploaded = local_files(share)
    t0 = time.monotonic()
    put(share, run)
    r = sh(f"cd {q(run)} && sh ./.board-{script} >{q(script)}.log 2>&1; echo $? >{q(script)}.status; "
           f"dmesg >{q(script)}.dmesg 2>/dev/null; find . -type f", timeout=timeout, check=False)
    wall = time.monotonic() - t0
    console = r.stderr.decode(errors="replace")
    if r.returncode:
        console += f"\n[remote.py: ssh exited {r.returncode}]\n"
    there = set(r.stdout.decode(errors="replace").split())
    new = sorted(n for n in there - uploaded if "/.rocketsim-get" not in n)
    if new:
        get(run, new, share)
    if not os.environ.get("ROCKETSIM_BOARD_KEEP"):
        sh(f"rm -rf {q(run)}", check=False)

    def read(n, default=""):
        try:
            with open(os.path.join(share, n), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return default

    status = read(script + ".status", "-1").strip()
    diff_captures(share, name)
    return board.BootResult(console, int(status) if re.fullmatch(r"-?\d+", status) else -1,
                            read(script + ".log"), read(script + ".dmesg"), wall, 0.0,
                            r.returncode)


# ---- every captured job, replayed and diffed ------------------------------------------------

def capture_roots(share):
    """Folders holding submit-NNNN job folders (rocket-capture.so's)."""
    roots = set()
    for dirpath, dirs, _ in os.walk(share):
        if any(d.startswith("submit-") for d in dirs):
            roots.add(dirpath)
            dirs[:] = [d for d in dirs if not d.startswith("submit-")]
    return sorted(roots)


def diff_captures(share, name):
    """rknpu-diff over the run's captures; appends to RESULTS/board-diff.{txt,json} and adds to
    the totals in board-diff-summary.json."""
    roots = capture_roots(share)
    if not roots:
        return None
    os.makedirs(board.RESULTS, exist_ok=True)
    if os.environ.get("ROCKETSIM_BOARD_CAPTURES", "1") != "0":
        for i, r in enumerate(roots):
            shutil.copytree(r, os.path.join(board.RESULTS, "captures", name, str(i)))
    js = os.path.join(share, ".board-diff.json")
    r = subprocess.run([DIFF, "--json", js, *roots], capture_output=True, text=True)
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" (")[0]
    with open(os.path.join(board.RESULTS, "board-diff.txt"), "a") as f:
        f.write(f"=== {test or name}: {len(roots)} capture folder(s) from {board.REMOTE}\n")
        f.write(r.stdout + r.stderr)
    try:
        with open(js) as f:
            res = json.load(f)
    except (FileNotFoundError, ValueError):
        res = {"summary": {"jobs": 0, "bad_jobs": len(roots), "tasks": 0, "identical": 0,
                           "differ": 0, "consequence": 0, "unchecked": 0}}
    path = os.path.join(board.RESULTS, "board-diff.json")
    runs = json.load(open(path)) if os.path.exists(path) else []
    runs.append({"test": test, "run": name, "captures": roots, "saved": os.path.join(
        board.RESULTS, "captures", name) if os.environ.get("ROCKETSIM_BOARD_CAPTURES", "1")
        != "0" else None, "summary": res["summary"],
                 "differing_tasks": [dict(t, dir=j["dir"]) for j in res.get("jobs", [])
                                     for t in j["tasks"] if t["verdict"] != "identical"]})
    with open(path, "w") as f:
        json.dump(runs, f, indent=1)
    total = summary()
    for k, v in res["summary"].items():
        total[k] = total.get(k, 0) + v
    total["runs"] = total.get("runs", 0) + 1
    with open(os.path.join(board.RESULTS, "board-diff-summary.json"), "w") as f:
        json.dump(total, f, indent=1, sort_keys=True)
    return res["summary"]


def summary():
    try:
        with open(os.path.join(board.RESULTS, "board-diff-summary.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def reset_results():
    for n in ("board-diff.txt", "board-diff.json", "board-diff-summary.json",
              "board-kernel-notes.txt"):
        try:
            os.unlink(os.path.join(board.RESULTS, n))
        except FileNotFoundError:
            pass
    shutil.rmtree(os.path.join(board.RESULTS, "captures"), ignore_errors=True)


# ---- the suites' choices on a board ---------------------------------------------------------

def select(names, whole):
    """The per-layer and whole models a run takes: all, or only the per-layer models that
    ROCKETSIM_BOARD_MODELS names (a board's short CI run) and no whole network."""
    pick = os.environ.get("ROCKETSIM_BOARD_MODELS")
    if not pick:
        return names, whole
    want = set(pick.split(","))
    chosen = [n for n in names if n[:-len(".tflite")] in want]
    unknown = want - {n[:-len(".tflite")] for n in chosen}
    if unknown:
        raise ValueError(f"ROCKETSIM_BOARD_MODELS: no such per-layer model: {sorted(unknown)}")
    return chosen, []


def run_model(model, image, out):
    """What `make run --model MODEL --image IMAGE --invokes 1 --out OUT` does, on the board:
    out/npu (Teflon on the board's NPU, photo decoded there) and out/cpu (TFLite on the host,
    same input bytes). Returns [npu summary, cpu summary]."""
    import mobiledet
    import yolox
    models = mobiledet.models_dir()
    out = str(out)
    os.makedirs(os.path.join(out, "npu"), exist_ok=True)
    shutil.copy(os.path.join(models, WHOLE_MODELS[model]), os.path.join(out, "model.tflite"))
    shutil.copy(board.photo(image), os.path.join(out, "input.png"))
    labels = os.path.join(out, "labels.txt")
    if model == "mobilenet":
        shutil.copy(os.path.join(models, "labels_mobilenet_quant_v1_224.txt"), labels)
    elif model == "yolox":
        with open(labels, "w") as f:
            f.write("\n".join(yolox.names(os.path.join(board.ROOT, "userspace",
                                                        "coco-labels.txt"))) + "\n")
    else:
        shutil.copy(os.path.join(board.ROOT, "userspace", "coco-labels.txt"), labels)
    with open(os.path.join(out, "run.sh"), "w") as f:
        f.write(f"rocket-infer -d {GUEST_TEFLON} -n 1 -o /host/npu -l /host/labels.txt "
                "/host/model.tflite /host/input.png\n")
    r = boot(out, "run.sh", timeout=900)
    if r.status != 0:
        raise AssertionError(f"{model} on the board failed ({r.status}):\n{r.log[-3000:]}"
                             f"\n{r.console[-2000:]}")
    os.makedirs(os.path.join(out, "cpu"), exist_ok=True)
    subprocess.run([HOST_INFER, "-o", os.path.join(out, "cpu"), "-l", labels,
                    os.path.join(out, "model.tflite"), os.path.join(out, "npu", "input-0.bin")],
                   check=True, stdout=subprocess.DEVNULL)
    return [json.load(open(os.path.join(out, w, "summary.json"))) for w in ("npu", "cpu")]
