"""The deployment package of a Linux board (Raspberry Pi 4, Jetson Nano): a LiteRT runner.

A Linux board does not flash a model: it runs the workbench's firmware as a Python process,
``python3 -m workbench.sim --board rpi4 --bind 0.0.0.0 --tcp 5555``, whose engine is LiteRT
(the board's catalog ``runtime``, :mod:`workbench.sim.engines`). It speaks the framed protocol
on TCP, so ``socket://board:5555`` reaches it from any machine and the model arrives, and is
later updated, over that connection (MODEL_BEGIN/CHUNK/END/COMMIT into its A/B slots, kept in a
flash file on the board's disk).

Call order: :func:`workbench.deploy.create_deployment_package` (``target="rpi4"`` or
``"jetson-nano"``) calls :func:`write_linux_package` in a fresh folder, which writes:

- ``model.tflite``: the model, checked in LiteRT first (:func:`check_model`);
- ``run-workbench-runner.sh``: the launcher (environment: ``WORKBENCH_PYTHON``,
  ``WORKBENCH_PORT``, ``WORKBENCH_BIND``, ``WORKBENCH_STATE_DIR``, ``WORKBENCH_PID_FILE``);
- ``workbench-runner.service``: a systemd unit (:func:`systemd_unit`) for
  ``/opt/workbench-runner``;
- ``package.json``: what :func:`workbench.deploy.deploy_linux_package` reads (board, port,
  model file, SHA-256);
- ``README.md``: the commands, by hand.

Then :func:`workbench.deploy.deploy_linux_package` copies it over SSH, starts the runner and
uploads ``model.tflite`` over TCP. Side effect of :func:`check_model`: one child process.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from .packages import PackageError

__all__ = ["DEFAULT_PORT", "INSTALL_DIR", "LAUNCHER", "MANIFEST", "RUNNER_BAUD", "UNIT",
           "check_model", "launcher_script", "systemd_unit", "write_linux_package"]

#: The runner's TCP port unless told otherwise.
DEFAULT_PORT = 5555
#: Where the README and the packaged unit expect the package on the board.
INSTALL_DIR = "/opt/workbench-runner"
LAUNCHER = "run-workbench-runner.sh"
UNIT = "workbench-runner.service"
MANIFEST = "package.json"
#: The runner paces its output like a UART at this rate (the protocol's fastest, 1.2 MB/s):
#: on TCP nothing is gained by pacing slower.
RUNNER_BAUD = 12_000_000

_FORMAT = "workbench-linux-package"


def check_model(data: bytes, name: str, board) -> None:
    """Raise :class:`PackageError` unless ``data`` loads and runs in LiteRT (a child
    process: :func:`workbench.tflite.litert.check_litert`) and fits the board's slot."""
    from ..tflite import ModelError
    from ..tflite.litert import check_litert

    slots = board.model_slots
    if len(data) > slots.slot_bytes:
        raise PackageError(f"{name} is {len(data):,} bytes; {board.id}'s model slot holds "
                           f"{slots.slot_bytes:,}: choose a smaller variant")
    try:
        result = check_litert(data)
    except ModelError as e:
        raise PackageError(f"cannot package {name}: {e}") from e
    if not result.ok:
        raise PackageError(f"{name} does not run in LiteRT, the runtime of {board.name}: "
                           f"{result.error}")


def launcher_script(board, port: int = DEFAULT_PORT) -> str:
    """The launcher's text: runs the LiteRT runner for ``board`` in the foreground (``exec``,
    so systemd or a PID file sees the Python process itself)."""
    return f"""#!/bin/sh
# The tinyml-workbench LiteRT runner for the {board.name} (see README.md).
# It serves the workbench's framed protocol on TCP: socket://<this board>:PORT.
# Environment (all optional):
#   WORKBENCH_PYTHON     the Python with tinyml-workbench and ai-edge-litert (default python3)
#   WORKBENCH_PORT       TCP port (default {port})
#   WORKBENCH_BIND       address to listen on (default 0.0.0.0: every interface)
#   WORKBENCH_STATE_DIR  where the model slots are kept (default: systemd's $STATE_DIRECTORY,
#                        else ~/.local/state/workbench)
#   WORKBENCH_PID_FILE   if set, the runner's process id is written there
set -eu
PYTHON="${{WORKBENCH_PYTHON:-python3}}"
PORT="${{WORKBENCH_PORT:-{port}}}"
BIND="${{WORKBENCH_BIND:-0.0.0.0}}"
STATE="${{WORKBENCH_STATE_DIR:-${{STATE_DIRECTORY:-${{HOME:-/tmp}}/.local/state/workbench}}}}"
mkdir -p "$STATE"
# the runner's own bookkeeping (its entry for `workbench devices`) stays beside its slots
WORKBENCH_SIM_DIR="${{WORKBENCH_SIM_DIR:-$STATE/sim}}"
export WORKBENCH_SIM_DIR
if [ -n "${{WORKBENCH_PID_FILE:-}}" ]; then echo $$ > "$WORKBENCH_PID_FILE"; fi
exec "$PYTHON" -m workbench.sim --board {board.id} --bind "$BIND" --tcp "$PORT" \\
    --baud {RUNNER_BAUD} --flash "$STATE/{board.id}.flash"
"""


def systemd_unit(board, *, install_dir: str = INSTALL_DIR, port: int = DEFAULT_PORT,
                 user_unit: bool = False, env: dict[str, str] | None = None,
                 dynamic_user: bool | None = None) -> str:
    """A systemd unit running ``install_dir``/run-workbench-runner.sh.

    ``user_unit=False``: a system unit (``/etc/systemd/system``), run as a dynamic user with
    its slots in ``/var/lib/workbench``. ``user_unit=True``: a unit for ``systemctl --user``
    (``~/.config/systemd/user``), run as that user, slots in ``~/.local/state/workbench``.
    ``env`` adds ``Environment=`` lines (e.g. ``WORKBENCH_PYTHON``). ``dynamic_user=False``
    runs a system unit as root (for a package in root's home, as an SSH deployment by root
    puts it); the default, for a system unit, is a user made for the service.
    """
    values = {"WORKBENCH_PORT": str(port), **(env or {})}
    environment = "\n".join(f"Environment={_systemd_quote(f'{k}={v}')}"
                            for k, v in values.items())
    exec_start = _systemd_quote(f"{install_dir.rstrip('/')}/{LAUNCHER}")
    if dynamic_user is None:
        dynamic_user = not user_unit
    if dynamic_user and user_unit:
        raise ValueError("a user unit runs as its user: dynamic_user is for system units")
    system_only = "" if not dynamic_user else (
        "# no login, no home: a user made for the service, owning /var/lib/workbench only\n"
        "DynamicUser=yes\nNoNewPrivileges=yes\n")
    return f"""[Unit]
Description=tinyml-workbench LiteRT runner for the {board.name} (socket://<board>:{port})
Documentation=file://{install_dir.rstrip('/')}/README.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={exec_start}
{environment}
# the model slots: /var/lib/workbench (system) or ~/.local/state/workbench (user unit)
StateDirectory=workbench
{system_only}Restart=on-failure
RestartSec=2

[Install]
WantedBy={"default.target" if user_unit else "multi-user.target"}
"""


def _systemd_quote(word: str) -> str:
    """A word for a unit file: double-quoted when it holds spaces or quotes (systemd's
    quoting, which follows the shell's for these characters)."""
    if any(c in word for c in ' \t"\'\\'):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def write_linux_package(folder: Path, data: bytes, info, name: str, board, *,
                        port: int = DEFAULT_PORT, folder_name: str | None = None) -> list[str]:
    """Write the Linux package into the empty ``folder``; the names of its files.
    ``folder_name`` is the name the folder will have (the README's commands use it)."""
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise PackageError(f"port must be a TCP port 1..65535, not {port!r}")
    (folder / "model.tflite").write_bytes(data)
    launcher = folder / LAUNCHER
    launcher.write_text(launcher_script(board, port))
    launcher.chmod(0o755)
    (folder / UNIT).write_text(systemd_unit(
        board, port=port, env={"WORKBENCH_PYTHON": f"{INSTALL_DIR}/venv/bin/python"}))
    manifest: dict[str, Any] = {"format": _FORMAT, "format_version": 1, "board": board.id,
                                "runtime": board.runtime, "port": port, "name": name,
                                "model": "model.tflite", "size": len(data),
                                "sha256": info.sha256}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    (folder / "README.md").write_text(_readme(data, info, name, board, port,
                                              folder_name or folder.name))
    return ["README.md", LAUNCHER, "model.tflite", MANIFEST, UNIT]


def read_manifest(folder: Path) -> dict[str, Any]:
    """The ``package.json`` of a Linux package folder; PackageError if it is not one."""
    path = Path(folder) / MANIFEST
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise PackageError(f"{folder} is not a Linux deployment package (no {MANIFEST}); make "
                           "one with create_deployment_package(model, 'rpi4', folder)") from None
    except ValueError as e:
        raise PackageError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
        raise PackageError(f"{path} is not a Linux deployment package's {MANIFEST}")
    if raw.get("format_version") != 1:
        raise PackageError(f"{path} has format_version {raw.get('format_version')!r}; this "
                           "workbench reads 1: update the workbench or rebuild the package")
    return raw


def _tensor_line(t) -> str:
    q = "" if t.scale is None else f", scale {t.scale:.9g}, zero point {t.zero_point}"
    return f"- `{t.name}`: {t.dtype} {list(t.shape)}{q}"


def _readme(data: bytes, info, name: str, board, port: int, folder: str) -> str:
    q = shlex.quote(folder)
    return f"""# {name}: a LiteRT runner for the {board.name}

Made by tinyml-workbench. Model: {len(data):,} bytes, SHA-256 `{info.sha256}`.

The board runs the workbench's firmware as a Python process whose inference engine is LiteRT
(`ai-edge-litert`), the runtime of the {board.name}. It speaks the workbench's framed protocol
on TCP port {port}, so from any machine `socket://<board>:{port}` reaches it: HELLO, INFER,
and model updates into its two model slots (A/B, with rollback), kept on the board's disk.
It has no sensors of its own (its HELLO lists none).

## Files

- `model.tflite`: the model (checked in LiteRT when this package was made).
- `{LAUNCHER}`: starts the runner (`python3 -m workbench.sim --board {board.id} --bind 0.0.0.0
  --tcp {port} --flash <state>/{board.id}.flash`); its comments list the environment variables.
- `{UNIT}`: a systemd unit that runs the launcher from `{INSTALL_DIR}`.
- `{MANIFEST}`: board, port and model, for `workbench.deploy.deploy_linux_package`.

## The easy way: from your computer, over SSH

```python
from workbench.deploy import deploy_linux_package
d = deploy_linux_package({folder!r}, "raspberrypi.local", user="pi",
                         key="~/.ssh/id_ed25519")
d.url        # 'socket://raspberrypi.local:{port}': open_device(d.url) reaches the model
```

It copies this folder over SFTP, starts the runner (a systemd unit when it may, else in the
background with a PID file), waits for its HELLO and uploads `model.tflite` over TCP.

## By hand

1. On the board, install Python's part (once). The runner needs the workbench, numpy,
   pyserial, PyYAML and LiteRT; TensorFlow Lite Micro (a dependency of the workbench for the
   host) is not used on the board, so if pip finds no build of `tflite-micro` for it:

```sh
sudo apt install python3-venv
sudo python3 -m venv {INSTALL_DIR}/venv
sudo {INSTALL_DIR}/venv/bin/pip install tinyml-workbench ai-edge-litert
# or, without tflite-micro:
sudo {INSTALL_DIR}/venv/bin/pip install --no-deps tinyml-workbench
sudo {INSTALL_DIR}/venv/bin/pip install numpy pyserial pyyaml ai-edge-litert
```

2. Copy this folder to the board and install it in `{INSTALL_DIR}`:

```sh
scp -r {q} pi@raspberrypi.local:
ssh pi@raspberrypi.local
sudo mkdir -p {INSTALL_DIR} && sudo cp {q}/* {INSTALL_DIR}/
```

3. Enable the unit (it runs the venv's Python as a user of its own and keeps the slots in
   `/var/lib/workbench`):

```sh
sudo cp {INSTALL_DIR}/{UNIT} /etc/systemd/system/
sudo systemctl daemon-reload
sudo systemctl enable --now {UNIT}
systemctl status {UNIT}        # "TCP 0.0.0.0:{port}" in its log means it is ready
```

   Or without systemd: `WORKBENCH_PYTHON={INSTALL_DIR}/venv/bin/python {INSTALL_DIR}/{LAUNCHER}`.

4. From your computer, put the model into the board's active slot (the runner starts with
   empty slots), and run it:

```sh
workbench upload socket://raspberrypi.local:{port} model.tflite
workbench info socket://raspberrypi.local:{port}
```

```python
from workbench.link import open_device
with open_device("socket://raspberrypi.local:{port}") as dev:
    dev.upload_model(open("model.tflite", "rb").read(), name="{name}")   # later: the next model
    dev.infer(x).outputs
```

An update is the same upload with the new model: it goes into the inactive slot, is checked
in LiteRT on the board, and becomes active at the commit; `dev.rollback()` returns to the
previous one. The slots survive restarts of the runner and of the board.

**Security**: anyone who reaches port {port} can run and replace the model. Keep it on a
trusted network, or bind it to localhost (`Environment=WORKBENCH_BIND=127.0.0.1`) and reach
it through `ssh -L {port}:localhost:{port} pi@raspberrypi.local`.

## Inputs and outputs

Inputs:
{chr(10).join(_tensor_line(t) for t in info.inputs)}

Outputs:
{chr(10).join(_tensor_line(t) for t in info.outputs)}
"""
