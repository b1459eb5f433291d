"""The ``workbench`` command: the headless path of everything, for scripts and CI.

Expected failures end a command with one line on stderr (``workbench: what went wrong and
what to do``) and an exit status, never a traceback:

- 0: done;
- 1: the board or the link failed (it went away, timed out, reported an error);
- 2: bad input: options, a missing or invalid file, an unknown board, sensor or model;
- 130: interrupted (Ctrl-C); what was already written stays written;
- 141: stdout was closed by its reader (``workbench stream ... | head``), silently.

``workbench stream`` writes each block of samples as it arrives, so everything received
before a board goes away is in its output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import DEFAULT_DEVICE
from .errors import WorkbenchError

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_OUTPUT_CLOSED = 141
"""128 + SIGPIPE: what a shell reports for a program stopped by a closed pipe."""


class CommandFailed(WorkbenchError, RuntimeError):
    """A command cannot go on; the message is the one line the CLI prints.

    ``code`` is the exit status (:data:`EXIT_BAD_INPUT` for bad input, else
    :data:`EXIT_FAILED`).
    """

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a line saying what was interrupted and what state it left."""


def _boards(args) -> int:
    from .boards import load_catalog

    boards = load_catalog()
    if args.json:
        print(json.dumps([b.to_dict() for b in boards.values()], indent=1))
        return 0
    for b in boards.values():
        print(f"{b.id:15s} {b.summary()}")
    return 0


def _devices(args) -> int:
    from .link.discovery import find_devices

    found = find_devices(probe_ports=not args.no_probe, extra_urls=args.urls, baudrate=args.baud,
                         probe_all=args.probe_all)
    if args.json:
        print(json.dumps([d.to_dict() for d in found], indent=1))
        return 0
    if not found:
        print("No serial ports and no virtual boards. Plug a board in, or start one with "
              "`workbench sim --board nano33ble --pty`.")
        return 0
    for d in found:
        head = f"{d.url}  {d.description}".rstrip()
        if d.usb:
            head += f"  [{d.usb}]"
        print(head)
        if d.candidates:
            print("  catalog: " + ", ".join(f"{b.name} ({b.id})" for b in d.candidates))
        if d.hello is not None:
            i = d.hello
            print(f"  answered HELLO: {i.board_name} ({i.board_id}), firmware {i.firmware}")
            print(f"    {i.mcu} {i.core} @ {i.clock_hz / 1e6:g} MHz, "
                  f"flash {i.flash_bytes // 1024} KB, "
                  f"RAM {i.ram_bytes // 1024} KB; model slot {i.slot_bytes // 1024} KB, "
                  f"arena {i.arena_bytes // 1024} KB")
            for s in d.sensors:
                print(f"    sensor {s.id:9s} {s.kind}, {len(s.channels)} ch "
                      f"({','.join(s.channels)}) in {s.units} at {s.rate_hz:g} Hz")
        elif d.probe_error.startswith("not probed"):
            print(f"  {d.probe_error}")
        elif d.probe_error:
            print(f"  no HELLO answer: {d.probe_error}")
    return 0


def _sim(args) -> int:
    from .sim.command import serve

    return serve(args)


def _open(args):
    from .link import open_device

    return open_device(args.url, baudrate=args.baud, mode=getattr(args, "mode", "auto"))


def _positive(value: float | None, option: str, *, none_ok: bool = True) -> None:
    """Refuse a duration or rate that is not a positive number (before anything is opened)."""
    if value is None and none_ok:
        return
    if value is None or not value > 0 or value == float("inf"):
        raise CommandFailed(f"{option} must be a positive number of "
                            f"{'seconds' if 'seconds' in option else 'samples per second'}, "
                            f"not {value}", EXIT_BAD_INPUT)


def _sensor(dev, name: str):
    """The sensor to stream: ``name`` on a framed board (checked), the only one in line mode."""
    if dev.mode != "framed":
        return 0
    try:
        return dev.sensor(name).id
    except KeyError as e:
        raise CommandFailed(_message(e), EXIT_BAD_INPUT) from None


def _capabilities(caps) -> str:
    """``STREAM|INFER|...`` as words; bits this version does not know are listed as such."""
    known = [c for c in type(caps) if c.value & int(caps)]
    words = [c.name.lower().replace("_", " ") for c in known]
    unknown = int(caps) & ~sum(c.value for c in type(caps))
    if unknown:
        words.append(f"unknown bits 0x{unknown:x}")
    return ", ".join(words) or "none"


def _info(args) -> int:
    with _open(args) as dev:
        if dev.mode == "line":
            print(f"{args.url}: a line-mode sketch printing {len(dev.sensors[0].channels)} "
                  f"values per line ({', '.join(dev.sensors[0].channels)}) at about "
                  f"{dev.line_rate_hz or 0:.1f} Hz")
            return 0
        i = dev.info
        print(f"{i.board_name} ({i.board_id}), firmware {i.firmware}, serial {i.serial_number}")
        print(f"  {i.mcu} {i.core} @ {i.clock_hz / 1e6:g} MHz; flash {i.flash_bytes:,} B; "
              f"RAM {i.ram_bytes:,} B")
        print(f"  capabilities: {_capabilities(i.capabilities)}")
        for s in dev.sensors:
            print(f"  sensor {s.id}: {s.kind}, channels {','.join(s.channels)} ({s.units}), "
                  f"{s.rate_hz:g} Hz")
        table = dev.slots()
        for s in table.slots:
            mark = "*" if s.index == table.active else " "
            print(f" {mark}slot {'AB'[s.index] if s.index < 2 else s.index}: {s.state.name.lower()}"
                  f" {s.name or ''} {s.size:,} B, arena {s.arena_bytes:,} B")
    return 0


def _stream(args) -> int:
    """Write ``--seconds`` of one sensor as CSV, each block as it arrives.

    With a known rate the length is a sample count (as :meth:`Device.record`), else wall
    time. If the board goes away, everything received is already written; the error
    line says how many samples that was.
    """
    import numpy as np

    from .link import LinkError, LinkTimeout

    _positive(args.seconds, "--seconds", none_ok=False)
    _positive(args.rate, "--rate")
    out = sys.stdout
    written = 0
    with _open(args) as dev:
        stream = dev.stream(_sensor(dev, args.sensor), args.rate)
        try:
            with stream as s:
                rate = s.rate_hz or dev.line_rate_hz
                wanted = int(round(args.seconds * rate)) if rate else None
                t_end = time.monotonic() + args.seconds
                out.write(",".join(s.sensor.channels) + "\n")
                out.flush()
                while (written + s.stats.lost < wanted) if wanted is not None else (
                        time.monotonic() < t_end):
                    block = s.read(timeout=dev.timeouts.request + 2)
                    if block is None:
                        raise LinkTimeout(f"the {s.sensor.id} stream of {dev.url} stalled: "
                                          f"no samples for {dev.timeouts.request + 2:g} s")
                    rows = block.raw.astype(np.float32) * np.float32(s.sensor.scale)
                    if wanted is not None:
                        rows = rows[:max(0, wanted - s.stats.lost - written)]
                    out.write("".join(",".join(f"{v:.5g}" for v in row) + "\n" for row in rows))
                    out.flush()
                    written += len(rows)
                rate = rate or dev.line_rate_hz or written / args.seconds
                lost = s.stats.lost
        except LinkError as e:
            raise CommandFailed(f"{e} (the {written} samples received before it are written)"
                                ) from e
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted after {written} samples (all of them written)"
                              ) from None
    print(f"{written} samples at {rate:g} Hz, {lost} lost", file=sys.stderr)
    return 0


def _capture(args) -> int:
    from .capture import CaptureSession
    from .data import Dataset

    _positive(args.seconds, "--seconds")
    _positive(args.rate, "--rate")
    with _open(args) as dev:
        sensor = _sensor(dev, args.sensor)
        ds = Dataset(args.dataset)
        session = CaptureSession(dev, ds, sensor,
                                 label=args.label, rate_hz=args.rate, seconds=args.seconds)
        if args.scenario:
            dev.scenario(args.scenario)
        session.start()
        print(f"recording {session.recording_id} into {ds.root}", file=sys.stderr, flush=True)
        try:
            meta = session.wait()
        except KeyboardInterrupt:
            meta = session.stop()
    print(f"{meta.id}: {meta.samples} samples ({meta.duration_s:.1f} s at {meta.rate_hz:g} Hz), "
          f"{meta.lost} lost")
    return 0


def _upload(args) -> int:
    path = Path(args.model)
    if not path.is_file():
        raise CommandFailed(f"{args.model}: no such file" if not path.exists() else
                            f"{args.model} is not a file; give the path of a .tflite model",
                            EXIT_BAD_INPUT)
    data = path.read_bytes()
    with _open(args) as dev:
        print(f"uploading {path.name} ({len(data):,} bytes) to {args.url}", file=sys.stderr,
              flush=True)
        try:
            slot = dev.upload_model(data, name=path.name, commit=not args.no_commit)
        except KeyboardInterrupt:
            raise Interrupted("upload interrupted; unless it had reached the commit, the board "
                              "keeps its previous model (`workbench info` shows the slots)"
                              ) from None
        print(f"{args.model}: {slot.size:,} bytes in slot {slot.index}, {slot.state.name.lower()}, "
              f"arena {slot.arena_bytes:,} bytes")
    return 0


def _scenario(args) -> int:
    with _open(args) as dev:
        got = dev.scenario(args.name or "")
        print(f"scenario: {got.current} (available: {', '.join(got.available)})")
    return 0


def _lab(args) -> int:
    """Prepare the user's workspace (lessons copied, never overwritten) and run JupyterLab there.

    Replaces this process with ``jupyter lab`` (the kernels it starts see ``WORKBENCH_DEVICE``),
    opening lesson 00 unless the extra arguments name a file; ``--prepare-only`` stops after
    preparing and says how to open it.
    """
    from .lab.workspace import WorkspaceError, prepare

    try:
        ws = prepare(args.dir)
    except WorkspaceError as e:
        raise CommandFailed(str(e), EXIT_BAD_INPUT) from None
    print(ws.summary(), flush=True)
    if args.prepare_only:
        print(f"Open it with: workbench lab --dir '{ws.root}'")
        return 0
    print(f"JupyterLab opens {ws.start_here.name} for you; your work stays in {ws.root}.", flush=True)
    env = dict(os.environ, WORKBENCH_DEVICE=args.device)
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={ws.root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    cmd += args.extra
    if not any(a.endswith(".ipynb") or Path(a).is_file() for a in args.extra):
        cmd.append(str(ws.start_here))  # the browser opens on lesson 00
    os.execvpe(cmd[0], cmd, env)
    return 0


def _dashboard(args) -> int:
    """Serve the workshop dashboard with Voila, its files in the user's folder."""
    from .lab.dashboards import voila_command, voila_env

    folder = Path(args.folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CommandFailed(f"cannot use {folder} for the workshop's files: {e.strerror or e}; "
                            "choose another folder with --folder", EXIT_BAD_INPUT) from None
    cmd = voila_command(extra=args.extra)
    env = voila_env(folder, device=args.device)
    print(f"workshop dashboard: files in {folder.resolve()}, device {env.get('WORKBENCH_DEVICE')}",
          flush=True)
    os.chdir(folder)
    os.execvpe(cmd[0], cmd, env)
    return 0


def _report(args) -> int:
    """Measure a model, explain it for one board, and list the estimates for every board."""
    from .boards import get_board, load_catalog
    from .optimize import board_verdict, load_model, measure, report
    from .optimize.boardfit import fmt_bytes
    from .optimize.variants import Variant

    catalog = load_catalog()
    board = get_board(args.board)  # an unknown id says which it may have meant
    imported = load_model(args.model, trusted=args.trust_model)
    variant = Variant(Path(args.model).name, imported.kind, imported.tflite,
                      imported.keras_model, imported.notes)
    m = measure(variant, runtime=board.runtime)
    rep = report(m, board)
    if args.json:
        print(json.dumps(rep.to_dict(), indent=1))
    else:
        d = rep.data
        print(f"{variant.name}: {m.params:,} parameters, {m.macs:,} MACs, model "
              f"{fmt_bytes(m.model_bytes)}, arena {fmt_bytes(m.arena_bytes)} (TFLite Micro)")
        for w in d["warnings"]:
            print(f"  {w['level']}: {w['text']}")
        print(f"{'board':15s} {'fits':5s} {'latency':>12s} {'energy':>10s}  why not / basis")
        for b in catalog.values():
            v = board_verdict(m, b)
            mark_estimate = "~" if v.latency_source != "measured" else ""
            lat = "?" if v.latency_ms is None else f"{mark_estimate}{v.latency_ms:.2f} ms"
            en = "?" if v.energy_mj is None else f"{v.energy_mj:.3f} mJ"
            mark = "*" if b.id == board.id else " "
            print(f"{mark}{b.id:14s} {'yes' if v.fits else 'no':5s} {lat:>12s} {en:>10s}  "
                  f"{_why_or_basis(v)}")
        print("~ estimated by the cost model (docs/latency-model.md)")
        print(f"basis for {board.id}: {board_verdict(m, board).basis}")
    if args.output:
        path = rep.save(args.output)
        print(f"report written to {path}", file=sys.stderr)
    return 0


def _why_or_basis(v) -> str:
    """Why a board cannot hold the model, else what its latency rests on (short form)."""
    if v.reasons:
        return "; ".join(v.reasons)
    if v.latency_source == "measured":
        return v.basis
    return v.basis.split(":", 1)[0]  # "TFLite Micro reference kernels on one Cortex-M4F ..."


def _registry(args) -> int:
    """``workbench registry list|show|diff``: read the model registry (never writes)."""
    import warnings

    from .deploy import ModelRegistry, RegistryWarning

    root = Path(args.root)
    if not root.is_dir():
        raise CommandFailed(f"no model registry at {root}: pass --root or set WORKBENCH_REGISTRY "
                            "to the registry folder", EXIT_BAD_INPUT)
    reg = ModelRegistry(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RegistryWarning)
        out = {"list": _registry_list, "show": _registry_show,
               "diff": _registry_diff}[args.action](reg, args)
    for w in caught:
        if issubclass(w.category, RegistryWarning):
            _say(f"warning: {w.message}")
    return out


def _fmt_acc(m: dict | None) -> str:
    acc = (m or {}).get("accuracy")
    return "-" if acc is None else f"{acc:.3f}"


def _registry_list(reg, args) -> int:
    if args.name is None:
        rows = []
        for name in reg.models():
            vs = reg.versions(name)
            last = vs[-1] if vs else None
            rows.append({"name": name, "versions": len(vs),
                         "latest": last.version if last else None,
                         "sha256": last.sha256 if last else None,
                         "size": last.size if last else None})
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        for r in rows:
            latest = f"v{r['latest']}  {r['sha256'][:12]}  {r['size']:,} B" if r["latest"] else "-"
            print(f"{r['name']:24s} {r['versions']:3d} version(s)  latest {latest}")
        return 0
    vs = reg.versions(args.name)
    deps = reg.deployments(args.name)
    if args.json:
        print(json.dumps([{**v.to_dict(), "path": str(v.path),
                           "deployments": sum(d.version == v.version for d in deps)}
                          for v in vs], indent=1))
        return 0
    print(f"{'version':8s} {'sha256':12s} {'bytes':>9s} {'kind':10s} {'accuracy':>8s} "
          f"{'deployed':>8s}  created")
    for v in vs:
        n = sum(d.version == v.version for d in deps)
        print(f"v{v.version:<7d} {v.sha256[:12]} {v.size:9,d} {v.variant.get('kind') or '-':10s} "
              f"{_fmt_acc(v.measurement):>8s} {n:8d}  {v.created}")
    return 0


def _registry_show(reg, args) -> int:
    v = reg.get(args.name, args.version)
    deps = reg.deployments(args.name, v.version)
    if args.json:
        print(json.dumps({**v.to_dict(), "path": str(v.path),
                          "deployments": [d.to_dict() for d in deps]}, indent=1))
        return 0
    m = v.measurement or {}
    rec = v.training_record or {}
    print(f"{v.label}  ({v.path})")
    print(f"  sha256     {v.sha256}")
    print(f"  size       {v.size:,} bytes")
    print(f"  created    {v.created}")
    print(f"  signed     {'yes' if v.signature is not None else 'no'}")
    print("lineage")
    print(f"  snapshot   {v.snapshot or '-'}")
    print(f"  training   {rec.get('path', '-')}" + (f"  (sha256 {rec['sha256'][:12]})"
                                                      if rec.get("sha256") else ""))
    print(f"  variant    {v.variant.get('name') or '-'} ({v.variant.get('kind') or '-'})")
    if m:
        arena = m.get("arena_bytes")
        print(f"  measured   accuracy {_fmt_acc(m)}, arena "
              f"{'-' if arena is None else f'{arena:,} B'}, runtime {m.get('runtime', '-')}")
    else:
        print("  measured   -")
    print(f"deployments ({len(deps)})")
    for d in deps:
        gates = d.gates.get("passed") if isinstance(d.gates, dict) else None
        state = " FORCED" if d.forced else ""
        gate = "" if gates is None else f"  gates {'passed' if gates else 'failed'}"
        print(f"  {d.time}  {d.device}{gate}{state}")
    return 0


def _registry_diff(reg, args) -> int:
    refs = args.refs
    if len(refs) == 3:
        a, b = reg.get(refs[0], refs[1]), reg.get(refs[0], refs[2])
    elif len(refs) == 2 and all(":" in r for r in refs):
        (na, va), (nb, vb) = (r.rsplit(":", 1) for r in refs)
        a, b = reg.get(na, va), reg.get(nb, vb)
    else:
        raise CommandFailed("diff takes NAME A B (e.g. `kws 1 2`) or NAME:A NAME:B "
                            "(e.g. `kws:1 kws-int8:latest`)", EXIT_BAD_INPUT)
    d = reg.diff(a, b)
    if args.json:
        print(json.dumps(d, indent=1))
        return 0
    print(f"{d['a']} -> {d['b']}")
    if not d["changed"] and not any(d["ops"].values()) and not any(d["tensors"].values()):
        print("  identical")
        return 0
    for k, (x, y) in d["changed"].items():
        print(f"  {k:24s} {x} -> {y}")
    for k in ("added", "removed"):
        if d["ops"][k]:
            print(f"  ops {k:20s} {', '.join(d['ops'][k])}")
        if d["tensors"][k]:
            print(f"  tensors {k:16s} {', '.join(d['tensors'][k])}")
    for name, what in d["tensors"]["changed"].items():
        print(f"  tensor {name}: " + "; ".join(f"{k} {x} -> {y}" for k, (x, y) in what.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description=(
        "tinyml-workbench: connect to boards, stream sensors, run models. "
        "Device URLs: /dev/ttyACM0, socket://host:port, sim://nano33ble, loop://"))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("boards", help="list the board catalog")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_boards)

    s = sub.add_parser("devices", help="list connected boards (and running virtual ones)")
    s.add_argument("urls", nargs="*", help="more URLs to probe, e.g. socket://localhost:5555")
    s.add_argument("--no-probe", action="store_true", help="do not open ports for HELLO")
    s.add_argument("--probe-all", action="store_true",
                   help="also send HELLO to ports that are not USB (built-in UARTs)")
    s.add_argument("--baud", type=int, default=115200)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_devices)

    s = sub.add_parser("sim", help="run a virtual board")
    from .sim.command import add_arguments as add_sim_arguments

    add_sim_arguments(s)
    s.set_defaults(func=_sim)

    for name, func, helptext in (("info", _info, "identify a board: HELLO, sensors, model slots"),
                                 ("stream", _stream, "stream a sensor to CSV on stdout"),
                                 ("upload", _upload, "send a .tflite model to a board"),
                                 ("scenario", _scenario, "set a virtual board's scenario"),
                                 ("capture", _capture, "record a sensor into a dataset folder")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("url", nargs="?", default=None,
                       help="a port or URL (default: workbench.default_device_url(), i.e. "
                            "$WORKBENCH_DEVICE or the virtual board)")
        s.add_argument("--baud", type=int, default=115200)
        s.set_defaults(func=func)
        if name == "stream":
            s.add_argument("--sensor", default="accel")
            s.add_argument("--seconds", type=float, default=2.0)
            s.add_argument("--rate", type=float, default=None)
            s.add_argument("--mode", choices=["auto", "framed", "line"], default="auto")
        if name == "capture":
            s.add_argument("--dataset", required=True, help="dataset folder (created if missing)")
            s.add_argument("--sensor", default="accel")
            s.add_argument("--label", default=None)
            s.add_argument("--seconds", type=float, default=None, help="default: until Ctrl-C")
            s.add_argument("--rate", type=float, default=None)
            s.add_argument("--scenario", default=None, help="virtual board: what it is doing")
            s.add_argument("--mode", choices=["auto", "framed", "line"], default="auto")
        if name == "upload":
            s.add_argument("model", help="path of a .tflite file")
            s.add_argument("--no-commit", action="store_true")
        if name == "scenario":
            s.add_argument("name", nargs="?")

    s = sub.add_parser("report", help="measure a model and explain it for a board "
                       "(.tflite, .keras, .h5, SavedModel folder, .onnx)")
    s.add_argument("model", help="model file or SavedModel folder")
    s.add_argument("--board", default="nano33ble", help="catalog id (see `workbench boards`)")
    s.add_argument("-o", "--output", help="write the HTML report here (and a .json beside it)")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("--trust-model", action="store_true",
                   help="load a .h5/.keras model even if it holds Lambda layers, whose code "
                   "runs when it loads (only for files from someone you trust)")
    s.set_defaults(func=_report)

    s = sub.add_parser("registry", help="list, show and diff the model registry's versions")
    s.add_argument("--root", default=os.environ.get("WORKBENCH_REGISTRY", "registry"),
                   help="registry folder (default: $WORKBENCH_REGISTRY, else ./registry)")
    s.set_defaults(func=_registry)
    rsub = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    r = rsub.add_parser("list", help="every model, or every version of one model")
    r.add_argument("--root", default=argparse.SUPPRESS, help="as above, after the action")
    r.add_argument("name", nargs="?", default=None)
    r.add_argument("--json", action="store_true")
    r = rsub.add_parser("show", help="one version: its lineage and deployments")
    r.add_argument("--root", default=argparse.SUPPRESS, help="as above, after the action")
    r.add_argument("name")
    r.add_argument("version", nargs="?", default="latest", help="3, v3 or latest (default)")
    r.add_argument("--json", action="store_true")
    r = rsub.add_parser("diff", help="what differs between two versions")
    r.add_argument("--root", default=argparse.SUPPRESS, help="as above, after the action")
    r.add_argument("refs", nargs="+", metavar="REF", help="NAME A B, or NAME:A NAME:B")
    r.add_argument("--json", action="store_true")

    s = sub.add_parser("lab", help="open JupyterLab on your own copy of the lessons")
    s.add_argument("--dir", type=Path, default=None,
                   help="the workspace folder (default $WORKBENCH_HOME, else ~/tinyml-workbench); "
                        "lessons are copied there on first use, never over your edited copies")
    s.add_argument("--device", default=os.environ.get("WORKBENCH_DEVICE", DEFAULT_DEVICE),
                   help="the lessons' device: a port, a URL, or auto (the first board that "
                        "answers); the virtual board when it is not there (default %(default)s)")
    s.add_argument("--prepare-only", action="store_true",
                   help="prepare the workspace and stop, without starting JupyterLab")
    s.epilog = "Any other option (e.g. --port 8890 --no-browser) is passed on to jupyter lab."
    s.set_defaults(func=_lab)

    s = sub.add_parser("dashboard", help="serve the workshop dashboard (Voila): board to deployed "
                       "model without code")
    s.add_argument("--folder", default=".",
                   help="where the takes, comparisons and registry go (default: this folder)")
    s.add_argument("--device", default=os.environ.get("WORKBENCH_DEVICE", DEFAULT_DEVICE))
    s.epilog = "Any other option (e.g. --port 8866 --no-browser) is passed on to voila."
    s.set_defaults(func=_dashboard)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("lab", "dashboard"):
        parser.error("unrecognized arguments: " + " ".join(extra))
    args.extra = extra
    if getattr(args, "url", "") is None:
        from . import default_device_url

        args.url = default_device_url()  # `auto` and a missing port resolve here, with a note
    try:
        return args.func(args) or 0
    except KeyboardInterrupt as e:
        _say(str(e) or "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OUTPUT_CLOSED
    except CommandFailed as e:
        _say(str(e))
        return e.code
    except WorkbenchError as e:
        from .link import LinkError

        _say(_message(e))
        bad_input = isinstance(e, (ValueError, KeyError)) and not isinstance(e, LinkError)
        return EXIT_BAD_INPUT if bad_input else EXIT_FAILED
    except OSError as e:  # a file or folder: missing, unreadable, not writable
        where = f"{e.filename}: " if e.filename else ""
        _say(f"{where}{e.strerror or e}")
        return EXIT_BAD_INPUT if isinstance(e, (FileNotFoundError, IsADirectoryError,
                                                NotADirectoryError)) else EXIT_FAILED


def _message(e: BaseException) -> str:
    """An exception's message without KeyError's quotes."""
    if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
        return e.args[0]
    return str(e) or type(e).__name__


def _say(message: str) -> None:
    """One line on stderr: the CLI's whole report of a failure."""
    print("workbench: " + " ".join(message.split()), file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """After the reader of stdout went away: point stdout at /dev/null so that the
    interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file descriptor: nothing to flush
        pass


if __name__ == "__main__":
    sys.exit(main())
