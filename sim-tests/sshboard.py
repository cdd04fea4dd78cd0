"""The emulated board as a stand-in for a real one: QEMU with user networking, the guest's port 22
forwarded from a free port on 127.0.0.1 only, dropbear (Debian's) in the guest taking a key made
for it (build/board-ssh/id_ed25519). The board target (remote.py) reaches it like any board.

    python3 sim-tests/sshboard.py [--ci] [--nomodprobe] [-- PYTEST ARGS]

boots it, runs `pytest sim-tests --board root@127.0.0.1:PORT` against it (the short CI variant
with --ci) and powers it off; the tables go to build/board-emulated/ (ROCKETSIM_RESULTS).
"""
import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import board  # noqa: E402

KEY = os.path.join(board.BUILD, "board-ssh", "id_ed25519")
RESULTS = os.path.join(board.BUILD, "board-emulated")


def key():
    """The key pair the emulated board accepts (made once, never leaves build/)."""
    if not os.path.exists(KEY):
        os.makedirs(os.path.dirname(KEY), exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rocketsim-board",
                        "-f", KEY], check=True)
    with open(KEY + ".pub") as f:
        return f.read().strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A running emulated board serving SSH: .target, .ssh_opts, .env(), .console()."""

    def __init__(self, proc, port, known_hosts, log):
        self.proc, self.port, self.log = proc, port, log
        self.target = f"root@127.0.0.1:{port}"
        self.ssh_opts = (f"-i {KEY} -o IdentitiesOnly=yes -o UserKnownHostsFile={known_hosts} "
                         "-o StrictHostKeyChecking=accept-new")

    def env(self, **more):
        """The environment that points the board target at this board."""
        e = dict(os.environ, ROCKETSIM_BOARD=self.target, ROCKETSIM_BOARD_SSH=self.ssh_opts)
        e.update(more)
        return e

    def console(self):
        return "".join(self.log)


@contextlib.contextmanager
def serve(cores=3, mem="2G", append="", timeout=120):
    """Boot the emulated board with SSH; yields a Served once dropbear listens; quits QEMU after.
    """
    pub = key()
    for attempt in range(3):
        port = free_port()
        cmd = board.qemu_cmd(cores=cores, mem=mem, append=append, net=port, ssh_key=pub)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        log, ready = [], threading.Event()

        def pump(p=proc, lines=log, ev=ready):
            for raw in p.stdout:
                line = raw.decode(errors="replace")
                lines.append(line)
                if "rocketsim: ssh ready" in line or "dropbear failed" in line:
                    ev.set()
            ev.set()

        threading.Thread(target=pump, daemon=True).start()
        t0 = time.monotonic()
        while not ready.wait(0.2) and time.monotonic() - t0 < timeout:
            pass
        text = "".join(log)
        if "rocketsim: ssh ready" in text:
            break
        proc.kill()
        proc.wait()
        if "Could not set up host forwarding" not in text or attempt == 2:
            raise RuntimeError(f"the emulated board did not start SSH:\n{text[-3000:]}")
    with tempfile.TemporaryDirectory(prefix="rocketsim-kh-") as kh:
        try:
            yield Served(proc, port, os.path.join(kh, "known_hosts"), log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ci", action="store_true", help="the short board run (--board-ci)")
    ap.add_argument("--nomodprobe", action="store_true",
                    help="leave the rocket module unloaded (what a board without it says)")
    ap.add_argument("--results", default=RESULTS)
    ap.add_argument("pytest_args", nargs="*")
    a = ap.parse_args()
    with serve(append="rocketsim.nomodprobe" if a.nomodprobe else "") as b:
        print(f"sshboard: the emulated board serves SSH on {b.target}", flush=True)
        cmd = [sys.executable, "-m", "pytest", os.path.join(board.ROOT, "sim-tests"),
               "-p", "no:cacheprovider", "-q", f"--board={b.target}",
               f"--junitxml={os.path.join(a.results, 'pytest.xml')}"]
        cmd += ["--board-ci"] if a.ci else []
        env = b.env(ROCKETSIM_RESULTS=a.results)
        env.setdefault("ROCKETSIM_BOARD_CAPTURES", "0")   # the emulator's own: not worth keeping
        r = subprocess.run(cmd + a.pytest_args, env=env, cwd=board.ROOT)
        os.makedirs(a.results, exist_ok=True)
        with open(os.path.join(a.results, "console.log"), "w") as f:
            f.write(b.console())
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
