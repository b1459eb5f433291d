"""Peak memory of each lesson, against Binder's 2 GB ceiling.

Run: ``python bench/lesson_memory.py`` (every lesson in turn, the way nbmake runs them: about
8 minutes on 2 cores). Options: ``--lessons 00 03`` to run some, ``--interval`` seconds
between samples (0.1), ``--timeout`` per cell (1800 s), ``--keep DIR`` to run in (and keep) a
workspace folder instead of a temporary one.

Setup: a fresh workspace is prepared exactly as ``workbench lab`` prepares one
(:func:`workbench.lab.workspace.prepare`), so the lessons run from the student's copies with
their data beside them, in order (lesson 02 reuses lesson 01's takes, as for a student). Each
lesson runs in its own kernel with nbclient (what nbmake uses), with ``$WORKBENCH_DEVICE``
unset (the virtual board, as on Binder) and virtual boards' files in the workspace.

Measured, per lesson: the resident set (RSS) of the kernel plus all its descendants (the
virtual boards, TFLite Micro probes...), sampled every ``--interval`` s with psutil; the
peak of that sum is ``peak_mb``. Also the kernel's own high-water mark (``VmHWM`` in
/proc, exact, not sampled). RSS counts pages shared between processes once per process, so
the sum overstates what a container's memory limit sees; a peak shorter than the interval
can be missed (the kernel's VmHWM bounds that for the kernel itself). Not included: the
Jupyter server (tens of MB more on Binder) and any other lesson's kernel left running.

Headline figures last, one per line, ``metric: value`` (MB = 2**20 bytes).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BINDER_LIMIT_MB = 2048
MB = 2**20


class TreeSampler:
    """Samples the RSS of a process and its descendants in a thread until :meth:`stop`."""

    def __init__(self, pid: int, interval: float):
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.peak_processes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ps = self._psutil
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except ps.Error:
                break  # the kernel is gone
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except ps.Error:
                    pass  # a child that just exited
            self.samples += 1
            if total > self.peak:
                self.peak, self.peak_processes = total, len(procs)
            self._stop.wait(self.interval)

    def kernel_hwm(self) -> int:
        """The kernel's own peak RSS so far (``VmHWM``), in bytes; 0 if unreadable."""
        try:
            for line in Path(f"/proc/{self.root.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_lesson(path: Path, interval: float, timeout: float) -> dict:
    """Execute one notebook in a new kernel in its own folder; its memory and time."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    state: dict = {}

    def started(**_):
        pid = client.km.provisioner.pid
        state["sampler"] = TreeSampler(pid, interval)

    def after_cell(**_):
        # nbclient shuts the kernel down before its "notebook complete" hook: read VmHWM
        # after every cell instead (a high-water mark only grows)
        state["hwm"] = state["sampler"].kernel_hwm() or state.get("hwm", 0)

    client.on_notebook_start = started
    client.on_cell_executed = after_cell
    t0 = time.monotonic()
    error = ""
    try:
        client.execute()
    except Exception as e:  # a failing cell: report it with the memory measured so far
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    seconds = time.monotonic() - t0
    sampler = state.get("sampler")
    if sampler is not None:
        sampler.stop()
    nbformat.write(nb, path)  # the student's copy keeps its outputs, as in JupyterLab
    return {"peak": sampler.peak if sampler else 0, "hwm": state.get("hwm", 0),
            "processes": sampler.peak_processes if sampler else 0,
            "samples": sampler.samples if sampler else 0, "seconds": seconds, "error": error}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lessons", nargs="*", help="lesson numbers to run (default: all)")
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--keep", type=Path, help="run in this workspace folder and keep it")
    args = p.parse_args(argv)

    from workbench.lab.workspace import prepare

    tmp = None
    if args.keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="lesson-memory-")
        folder = Path(tmp.name) / "workspace"
    else:
        folder = args.keep
    ws = prepare(folder)
    os.environ.pop("WORKBENCH_DEVICE", None)
    os.environ["WORKBENCH_SIM_DIR"] = str(ws.root / ".sim")
    wanted = {int(n) for n in args.lessons} if args.lessons else None
    print(f"workspace {ws.root}; load average {os.getloadavg()[0]:.2f}; "
          f"sampling every {args.interval:g} s", flush=True)
    results = {}
    for path in ws.lessons:
        number = int(path.name[:2])
        if wanted is not None and number not in wanted:
            continue
        r = run_lesson(path, args.interval, args.timeout)
        results[number] = r
        status = f"FAILED ({r['error']})" if r["error"] else "ran"
        print(f"{path.name}: {status} in {r['seconds']:.0f} s; peak {r['peak'] / MB:.0f} MB "
              f"(kernel + {r['processes'] - 1} child process(es) at the peak, "
              f"{r['samples']} samples); kernel VmHWM {r['hwm'] / MB:.0f} MB", flush=True)
    print(f"load average after the run: {os.getloadavg()[0]:.2f}")
    for number, r in results.items():
        print(f"lesson_{number:02d}_peak_mb: {r['peak'] / MB:.0f}")
        print(f"lesson_{number:02d}_kernel_hwm_mb: {r['hwm'] / MB:.0f}")
    worst = max(results.values(), key=lambda r: r["peak"]) if results else None
    if worst is not None:
        print(f"max_peak_mb: {worst['peak'] / MB:.0f}")
        print(f"binder_limit_mb: {BINDER_LIMIT_MB}")
        print(f"lessons_over_limit: {sum(r['peak'] / MB > BINDER_LIMIT_MB for r in results.values())}")
        print(f"lessons_failed: {sum(bool(r['error']) for r in results.values())}")
    if tmp is not None:
        tmp.cleanup()
    return 1 if any(r["error"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
