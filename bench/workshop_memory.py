"""Memory per workshop participant: the peak RSS of the dashboard's kernel, end to end.

Run: ``python bench/workshop_memory.py`` (about a minute; needs the ``lab`` extra).
Options: ``--takes`` per label (3), ``--seconds`` per take (2), ``--epochs`` (30).

What is measured: a real IPython kernel (``jupyter_client``, the ``python3`` kernel spec,
as Voila starts one per participant) runs the dashboard notebook's code
(``workbench.ui.workshop.Workshop``), then drives it through every step as a participant
would with the buttons: connect to a virtual board, record ``--takes`` takes of two labels,
train, compare float and int8, deploy the int8 model and let the board predict live. The
buttons call the same methods.

Sampled every 0.1 s with psutil while it runs: the kernel process's RSS (its peak also read
from the kernel's ``VmHWM``, the kernel's own high-water mark, on Linux), its RSS once the
notebook ran (``ready``: what a pre-heated kernel holds on standby), and the RSS of everything
the kernel started (the virtual board and the TFLite Micro probes); ``total`` is the
largest sum of the two seen at one instant. A real board has no process of its own: then
``kernel`` is the figure per participant. The Voila server (one per room, not per
participant) is not counted.

Headline figures last, one per line, ``metric: value``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

READY = """
from workbench.ui.workshop import Workshop
ws = Workshop({folder!r}, 'sim://nano33ble', epochs={epochs})
"""
"""What the dashboard's notebook runs: after it, a kernel is ready for a participant (what a
pre-heated kernel holds on standby)."""

DRIVE = """
import time
ws.connect().join(120)
assert ws.errors['connect'] is None, ws.errors['connect']
ws.show('capture')
for label in ('wave', 'idle'):
    ws.recorder.set_scenario(label)
    for _ in range({takes}):
        ws.recorder.record('accel', label, seconds={seconds})
ws.show('label'); ws.show('train')
ws.train().join(600)
assert ws.errors['train'] is None, ws.errors['train']
ws.show('compare')
ws.compare().join(600)
assert ws.errors['compare'] is None, ws.errors['compare']
ws.compare_view.deploy('int8 PTQ')
ws.flash.wait(300)
assert ws.flash.result is not None, ws.flash.status.value
deadline = time.monotonic() + 60
while ws.flash.live.count < 5 and time.monotonic() < deadline:
    time.sleep(0.2)
print('predictions', ws.flash.live.count)
"""


def vm_hwm_mb(pid: int) -> float | None:
    """The process's own peak RSS (Linux ``VmHWM``), MB; None elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Sampler(threading.Thread):
    """Peak RSS of a process and of its descendants, sampled every ``period`` s."""

    def __init__(self, pid: int, period: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.period = period
        self.stop = threading.Event()
        self.kernel = self.children = self.total = 0.0

    def run(self) -> None:
        while not self.stop.wait(self.period):
            try:
                own = self.proc.memory_info().rss
                kids = 0
                for child in self.proc.children(recursive=True):
                    try:
                        kids += child.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            mb = 1024 * 1024
            self.kernel = max(self.kernel, own / mb)
            self.children = max(self.children, kids / mb)
            self.total = max(self.total, (own + kids) / mb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--takes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    from jupyter_client.manager import start_new_kernel

    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    folder = tempfile.mkdtemp(prefix="workshop-memory-")
    env = dict(os.environ, WORKBENCH_SIM_DIR=str(Path(folder) / "sim"))
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=folder)
    try:
        pid = km.provisioner.process.pid
        idle = psutil.Process(pid).memory_info().rss / 2**20
        sampler = Sampler(pid)
        sampler.start()
        t0 = time.perf_counter()
        values = dict(folder=folder, epochs=args.epochs, takes=args.takes, seconds=args.seconds)
        failed = []

        def output(msg):
            content = msg["content"]
            if msg["msg_type"] == "stream" and content.get("name") == "stdout":
                print("  kernel:", content["text"].strip(), flush=True)
            elif msg["msg_type"] == "error":
                failed.append("\n".join(content["traceback"]))

        reply = kc.execute_interactive(READY.format(**values), timeout=600, output_hook=output)
        ready = psutil.Process(pid).memory_info().rss / 2**20
        if reply["content"]["status"] == "ok":
            reply = kc.execute_interactive(DRIVE.format(**values), timeout=1800,
                                           output_hook=output)
        seconds = time.perf_counter() - t0
        time.sleep(0.3)
        sampler.stop.set()
        sampler.join()
        if reply["content"]["status"] != "ok" or failed:
            sys.exit("the workshop did not run end to end:\n" + "\n".join(failed))
        hwm = vm_hwm_mb(pid)
        kernel = max(sampler.kernel, hwm or 0.0)
        print(f"end to end in {seconds:.0f} s; kernel at start {idle:.0f} MB")
        print(f"kernel_idle_rss_mb: {idle:.0f}")
        print(f"kernel_ready_rss_mb: {ready:.0f}")
        print(f"kernel_peak_rss_mb: {kernel:.0f}")
        print(f"kernel_children_peak_rss_mb: {sampler.children:.0f}")
        print(f"participant_peak_rss_mb: {max(sampler.total, kernel):.0f}")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
