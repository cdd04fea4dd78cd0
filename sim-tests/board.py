"""The emulated board: boot build/Image + build/initramfs.cpio on QEMU virt with rk3588-npu,
run a script from a shared host folder, and collect the console, the script's output and status.

With ROCKETSIM_BOARD=USER@HOST[:PORT] (pytest --board, make test-board) boot() runs the script on
that board over SSH instead (remote.py: the board bundle, the same /host paths), and the suites'
tables go to RESULTS (build/board/) rather than build/.
"""
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(ROOT, "build")
REMOTE = os.environ.get("ROCKETSIM_BOARD", "")          # a board over SSH; "": the emulator
RESULTS = os.environ.get("ROCKETSIM_RESULTS") or (os.path.join(BUILD, "board") if REMOTE else BUILD)


@dataclass
class BootResult:
    console: str
    status: int          # exit status of the guest script, -1 if it never reported one
    log: str             # the script's stdout/stderr
    dmesg: str
    wall: float          # seconds from QEMU start to exit
    ready: float         # seconds from QEMU start to the driver-ready line (-1: never)
    qemu_rc: int


def default_smp():
    """Guest CPUs for this host, as tools/rocketsim/board.c decides (rs_default_smp): 1 when this
    process may use 2 CPUs or fewer (a vCPU without a host CPU of its own leaves the other
    spinning in the guest's spinlocks), else 2; ROCKETSIM_SMP=N overrides."""
    env = os.environ.get("ROCKETSIM_SMP")
    if env:
        return int(env)
    return 2 if len(os.sched_getaffinity(0)) > 2 else 1


def qemu_cmd(cores=3, mem="1G", share=None, append="", extra=(), icount=None, smp=None,
             interactive=False, quirks=None, net=None, ssh_key=None, initrd=None):
    """net: a host port forwarded from 127.0.0.1 to the guest's port 22 (QEMU user networking,
    the guest isolated otherwise); ssh_key: the public key ("TYPE BASE64") dropbear accepts;
    initrd: another initramfs (e.g. one with a developer's Teflon, userspace/mkrootfs)."""
    nic = ["-nic", "none"] if net is None else [
        "-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{int(net)}-:22",
        "-device", "virtio-net-device,netdev=net0"]
    if ssh_key:
        append += " rocketsim.ssh=" + ":".join(ssh_key.split()[:2])
    cmd = [os.path.join(BUILD, "qemu-system-aarch64"), "-M", "virt", "-cpu", "cortex-a76",
           "-smp", str(smp or default_smp()), "-m", mem, "-nodefaults", *nic, "-no-reboot",
           "-kernel", os.path.join(BUILD, "Image"),
           "-initrd", initrd or os.path.join(BUILD, "initramfs.cpio"),
           "-device", f"rk3588-npu,cores={cores}" + (f",quirks={quirks}" if quirks else "")]
    # -nodefaults leaves no serial port: name it, with the monitor muxed in (Ctrl-A X quits)
    cmd += ["-display", "none", "-serial", "mon:stdio" if interactive else "stdio"]
    if icount is not None:
        cmd += ["-icount", f"shift={icount},sleep=off"]
    if share:
        cmd += ["-fsdev", f"local,id=host,path={share},security_model=none",
                "-device", "virtio-9p-device,fsdev=host,mount_tag=host"]
        append += " rocketsim.share"
    cmd += ["-append", f"console=ttyAMA0 quiet {append}".strip(), *extra]
    return cmd


def boot(share, script="run.sh", cores=3, mem="1G", timeout=300, extra=(), icount=None,
         quirks=None, initrd=None, append=""):
    """Boot, run share/script in the guest, power off; returns a BootResult. quirks: the NPU's
    quirks= property (HARDWARE-UNKNOWNS Q15), e.g. "off" for ideal hardware; append: more of
    the kernel's command line (e.g. "init_on_free=1"). On a board over SSH (REMOTE) the script
    runs there; cores, mem, extra, icount, quirks and append do not apply."""
    if REMOTE:
        import remote
        if quirks:
            raise RuntimeError(f"quirks={quirks}: a board over SSH has no quirks switch")
        return remote.boot(share, script, timeout)
    cmd = qemu_cmd(cores, mem, share, f"rocketsim.run={script} {append}".strip(), extra, icount,
                   quirks=quirks, initrd=initrd)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    lines, ready = [], -1.0
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            lines.append(line)
            if ready < 0 and "rocketsim: ready at" in line:
                ready = time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                proc.kill()
                lines.append(f"\n[board.py: killed after {timeout} s]\n")
                break
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    wall = time.monotonic() - t0

    def read(name, default=""):
        try:
            with open(os.path.join(share, name), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return default

    status = read(script + ".status", "-1").strip()
    return BootResult("".join(lines), int(status) if re.fullmatch(r"-?\d+", status) else -1,
                      read(script + ".log"), read(script + ".dmesg"), wall, ready, rc)


def kernel_problems(dmesg):
    """Lines of a kernel log that a clean boot must not have."""
    bad = re.compile(r"timed out|timeout|WARNING:|BUG:|Oops|Unable to handle|"
                     r"rk_iommu.*(error|fail)|page fault|Call trace", re.I)
    return [ln for ln in dmesg.splitlines() if bad.search(ln)]


def photo(name):
    """build/photos/NAME.png from Debian's python3-skimage (as make run takes it)."""
    path = os.path.join(BUILD, "photos", f"{name}.png")
    if not os.path.exists(path):
        deb = subprocess.run([os.path.join(ROOT, "scripts", "debian-fetch"), "debfile",
                              "python3-skimage"], check=True, capture_output=True,
                             text=True).stdout.strip()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        q = shlex.quote
        subprocess.run(f"dpkg-deb --fsys-tarfile {q(deb)} | tar -x -O ./usr/lib/python3/"
                       f"dist-packages/skimage/data/{name}.png >{q(path)}.tmp", shell=True,
                       check=True)
        os.replace(path + ".tmp", path)
    return path
