"""A small client of QEMU's qtest protocol (and QMP), for driving rk3588-npu without a guest.

QEMU runs with `-accel qtest`: no CPU executes, the test reads and writes guest-physical memory
and MMIO, steps the virtual clock, and sees interrupt lines change through `irq_intercept_in`.
"""
import json
import os
import socket
import subprocess
import tempfile
import time

GIC_SPI_OFFSET = 0  # GIC inputs 0.. are SPIs on virt (qdev_get_gpio_in(gic, spi))


class QTestError(RuntimeError):
    pass


class QEMU:
    """One qemu-system-aarch64 -M virt process under qtest control."""

    def __init__(self, binary, args=(), mem="1G", log=None):
        self.dir = tempfile.TemporaryDirectory(prefix="rocketsim-qtest-")
        qt_path = os.path.join(self.dir.name, "qtest.sock")
        qmp_path = os.path.join(self.dir.name, "qmp.sock")
        qt_srv = socket.socket(socket.AF_UNIX)
        qt_srv.bind(qt_path)
        qt_srv.listen(1)
        qmp_srv = socket.socket(socket.AF_UNIX)
        qmp_srv.bind(qmp_path)
        qmp_srv.listen(1)
        self.log_path = log or os.path.join(self.dir.name, "qemu.log")
        cmd = [binary, "-M", "virt", "-accel", "qtest", "-m", mem, "-display", "none",
               "-nodefaults", "-nic", "none",
               "-qtest", f"unix:{qt_path}", "-qtest-log", "/dev/null", "-chardev", f"socket,path={qmp_path},id=qmp",
               "-mon", "chardev=qmp,mode=control", "-D", self.log_path,
               "-d", "guest_errors,unimp", *args]
        self.out_path = os.path.join(self.dir.name, "stdout")
        self.out_file = open(self.out_path, "wb")     # a file, never a pipe nobody drains
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out_file,
                                     stderr=subprocess.STDOUT)
        qt_srv.settimeout(30)
        qmp_srv.settimeout(30)
        try:
            self.qt, _ = qt_srv.accept()
            self.qmp_sock, _ = qmp_srv.accept()
        except socket.timeout:
            self.proc.kill()
            out = self.output()
            raise QTestError(f"QEMU did not connect: {' '.join(cmd)}\n{out}")
        qt_srv.close()
        qmp_srv.close()
        self.buf = b""
        self.irqs = {}          # GIC input number -> level, from intercepted IRQ messages
        self.qmp_file = self.qmp_sock.makefile("rw")
        json.loads(self.qmp_file.readline())          # greeting
        self.qmp("qmp_capabilities")

    # ---- QMP ----
    def qmp(self, cmd, **args):
        self.qmp_file.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
        self.qmp_file.flush()
        while True:
            msg = json.loads(self.qmp_file.readline())
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise QTestError(f"QMP {cmd}: {msg['error']}")

    def hmp(self, line):
        return self.qmp("human-monitor-command", **{"command-line": line})

    # ---- qtest ----
    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.qt.recv(65536)
            if not chunk:
                raise QTestError("QEMU closed the qtest socket (crashed?)\n" + self.output())
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def cmd(self, text):
        self.qt.sendall(text.encode() + b"\n")
        while True:
            line = self._line()
            if line.startswith("IRQ "):
                _, what, num = line.split()
                self.irqs[int(num)] = what == "raise"
                continue
            if line.startswith("OK"):
                return line[2:].strip()
            raise QTestError(f"qtest '{text}': {line}")

    def readl(self, addr):
        return int(self.cmd(f"readl 0x{addr:x}"), 16)

    def writel(self, addr, value):
        self.cmd(f"writel 0x{addr:x} 0x{value & 0xffffffff:x}")

    def writeq(self, addr, value):
        self.cmd(f"writeq 0x{addr:x} 0x{value & 0xffffffffffffffff:x}")

    def memwrite(self, addr, data):
        if data:
            self.cmd(f"write 0x{addr:x} 0x{len(data):x} 0x{bytes(data).hex()}")

    def memread(self, addr, size):
        return bytes.fromhex(self.cmd(f"read 0x{addr:x} 0x{size:x}")[2:])

    def clock_step(self, ns=None):
        return int(self.cmd("clock_step" + (f" {ns}" if ns is not None else "")))

    def intercept_gic(self):
        """Route the GIC's inputs to IRQ messages; returns its QOM path."""
        for item in self.qmp("qom-list", path="/machine/unattached"):
            if item["type"] in ("child<arm_gic>", "child<arm-gicv3>"):
                path = "/machine/unattached/" + item["name"]
                self.cmd(f"irq_intercept_in {path}")
                return path
        raise QTestError("no GIC found")

    def irq(self, spi):
        self.cmd("endianness")    # flush pending async messages
        return self.irqs.get(spi, False)

    def output(self):
        """What QEMU printed on stdout/stderr so far."""
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        if self.proc.poll() is None:
            try:
                self.qmp("quit")
            except (QTestError, OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        rc = self.proc.wait()
        self.out_file.close()
        self.dir.cleanup()
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
