"""Deploy a Linux board's package over SSH, then reach it, and update it, over TCP.

Call order: ``pkg = create_deployment_package(model, "rpi4", folder)`` →
``d = deploy_linux_package(pkg.path, "raspberrypi.local", user="pi", key="~/.ssh/id_ed25519")``
→ ``open_device(d.url)`` (``socket://raspberrypi.local:5555``) for INFER and for every later
update (``dev.upload_model(new_model)``) → ``stop_linux_runner(...)`` when done.

:func:`deploy_linux_package`, over one SSH connection (``asyncssh``, the ``deploy`` extra):

1. checks the remote Python and that it imports the workbench and LiteRT (else
   :class:`RemoteMissing`, saying what to install);
2. stops the runner an earlier deployment into the same folder started;
3. checks that the runner's TCP port is free on the board (else :class:`PortBusy`);
4. copies the package over SFTP into ``remote_dir``;
5. starts the runner: a systemd unit when the board runs systemd and the user may use it
   (a system unit for root, else a ``systemctl --user`` unit), otherwise in the background
   (``setsid nohup``) with a PID file (``runner.pid``) and its output in ``runner.log``;
   :attr:`LinuxDeployment.method` says which;
6. waits until the port answers HELLO as that board (else :class:`RunnerFailed` with the
   runner's last log lines);

and then, over TCP, uploads the package's model with the framed protocol
(:meth:`workbench.link.Device.upload_model`: checked, sent into the inactive slot, verified by
the board in LiteRT, committed). Errors are :class:`LinuxDeployError` (a WorkbenchError and a
RuntimeError): :class:`SshAuthError` (also PermissionError), :class:`SshUnreachable` (also
ConnectionError), :class:`SshHostKeyError`, :class:`RemoteMissing`, :class:`PortBusy`,
:class:`RunnerFailed`; each message says what to do.

The synchronous functions run their own event loop (in a worker thread when the caller already
runs one, as a notebook does).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import WorkbenchError
from .linux_package import LAUNCHER, UNIT, read_manifest, systemd_unit

__all__ = ["LinuxDeployError", "LinuxDeployment", "PortBusy", "RemoteMissing", "RunnerFailed",
           "SshAuthError", "SshHostKeyError", "SshUnreachable", "deploy_linux_package",
           "stop_linux_runner"]

#: Seconds to wait for the runner's HELLO after starting it (LiteRT loads in seconds on a Pi).
READY_TIMEOUT_S = 90.0
PID_FILE = "runner.pid"
LOG_FILE = "runner.log"
_DEFAULT_KNOWN_HOSTS = ()  # asyncssh: () reads ~/.ssh/known_hosts
_LOG_LINES = 15


class LinuxDeployError(WorkbenchError, RuntimeError):
    """Deploying a Linux package over SSH failed; the message says where and what to do."""


class SshAuthError(LinuxDeployError, PermissionError):
    """The SSH server refused the user or the key."""


class SshUnreachable(LinuxDeployError, ConnectionError):
    """No SSH server answered at that host and port (refused, no route, timed out)."""


class SshHostKeyError(LinuxDeployError):
    """The board's host key is unknown or differs from known_hosts."""


class RemoteMissing(LinuxDeployError):
    """The board lacks Python, the workbench or LiteRT."""


class PortBusy(LinuxDeployError):
    """Another program holds the runner's TCP port on the board."""


class RunnerFailed(LinuxDeployError):
    """The runner did not start, or did not answer HELLO as the board it was made for."""


@dataclass
class LinuxDeployment:
    """What :func:`deploy_linux_package` did: ``url`` reaches the runner;
    ``method`` is ``"systemd"`` (system unit), ``"systemd-user"`` or ``"background"``
    (``pid`` and ``pid_file`` then name the process); ``slot`` is the committed model's slot
    as the board reported it; ``info`` its HELLO answer."""

    url: str
    host: str
    port: int
    board: str
    method: str
    remote_dir: str
    sha256: str
    pid: int | None = None
    pid_file: str | None = None
    unit: str | None = None
    log: str | None = None
    slot: Any = None
    info: Any = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "host": self.host, "port": self.port, "board": self.board,
                "method": self.method, "remote_dir": self.remote_dir, "sha256": self.sha256,
                "pid": self.pid, "pid_file": self.pid_file, "unit": self.unit, "log": self.log,
                "slot": None if self.slot is None else self.slot.index,
                "seconds": dict(self.seconds)}


def deploy_linux_package(package_dir: str | os.PathLike, host: str, *, user: str,
                         key: str | os.PathLike | None = None, port: int = 22,
                         python: str = "python3", start: str = "auto",
                         remote_dir: str = "workbench-runner", runner_port: int | None = None,
                         bind: str = "0.0.0.0", state_dir: str | None = None,
                         env: dict[str, str] | None = None, known_hosts: Any = _DEFAULT_KNOWN_HOSTS,
                         timeout: float = READY_TIMEOUT_S, progress=None) -> LinuxDeployment:
    """Install and start the LiteRT runner of ``package_dir`` on ``host`` over SSH, then
    upload its model over TCP; see the module docstring for the steps.

    Args:
        package_dir: a folder made by ``create_deployment_package(model, "rpi4"|"jetson-nano")``.
        host, port, user, key: the SSH server and login (``key``: a private key file; None:
            the SSH agent and ``~/.ssh``'s default keys).
        python: the remote Python that has ``tinyml-workbench`` and ``ai-edge-litert``.
        start: ``"auto"`` (systemd if usable, else background), ``"systemd"`` or ``"background"``.
        remote_dir: where the package goes on the board (relative: to the user's home).
        runner_port: the runner's TCP port (default: the package's, 5555).
        bind: the address the runner listens on (``0.0.0.0``: every interface).
        state_dir: the folder of its model slots (default: the launcher's,
            ``~/.local/state/workbench``, or systemd's state directory).
        env: more environment for the runner (e.g. ``{"PYTHONPATH": ...}``).
        known_hosts: as asyncssh takes it: a known_hosts file, ``()`` for ``~/.ssh/known_hosts``,
            None to skip host key checking (only on a network you trust).
        timeout: seconds to wait for the runner's HELLO.
        progress: ``progress(sent, total)`` during the model upload.

    Returns a :class:`LinuxDeployment`. Raises the errors of the module docstring, and the
    link's errors of the upload (:class:`workbench.link.DeviceError` children).
    """
    folder = Path(package_dir)
    manifest = read_manifest(folder)
    if start not in ("auto", "systemd", "background"):
        raise ValueError(f"start must be 'auto', 'systemd' or 'background', not {start!r}")
    model = (folder / manifest["model"]).read_bytes()
    job = _Job(folder, manifest, host, user=user, key=key, port=port, python=python,
               start=start, remote_dir=remote_dir,
               runner_port=int(runner_port or manifest["port"]), bind=bind,
               state_dir=state_dir, env=dict(env or {}), known_hosts=known_hosts,
               timeout=timeout)
    deployment = _run(job.deploy())
    t0 = time.monotonic()
    from ..link import open_device

    with open_device(deployment.url, mode="framed") as dev:
        deployment.slot = dev.upload_model(model, name=str(manifest["name"]),
                                           progress=progress)
        deployment.info = dev.info
    deployment.seconds["upload"] = time.monotonic() - t0
    return deployment


def stop_linux_runner(host: str, *, user: str, key: str | os.PathLike | None = None,
                      port: int = 22, remote_dir: str = "workbench-runner",
                      known_hosts: Any = _DEFAULT_KNOWN_HOSTS) -> str:
    """Stop the runner a deployment into ``remote_dir`` started (its systemd unit, or the
    process of its PID file). Returns what was stopped ("" if nothing ran). The package and
    the model slots stay on the board."""
    job = _Job(None, {}, host, user=user, key=key, port=port, python="python3", start="auto",
               remote_dir=remote_dir, runner_port=0, bind="", state_dir=None, env={},
               known_hosts=known_hosts, timeout=0)
    return _run(job.stop_only())


def _run(coro):
    """Run ``coro`` to the end: here, or in a worker thread when a loop already runs."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _q(s: str) -> str:
    return shlex.quote(str(s))


class _Job:
    def __init__(self, folder, manifest, host, *, user, key, port, python, start, remote_dir,
                 runner_port, bind, state_dir, env, known_hosts, timeout):
        self.folder, self.manifest, self.host = folder, manifest, host
        self.user, self.key, self.port, self.python = user, key, port, python
        self.start, self.remote_dir, self.runner_port = start, remote_dir, runner_port
        self.bind, self.state_dir, self.env = bind, state_dir, env
        self.known_hosts, self.timeout = known_hosts, timeout
        self.where = f"{user}@{host}:{port}"

    # ------------------------------------------------------------------ ssh
    async def _connect(self):
        try:
            import asyncssh
        except ImportError:
            raise LinuxDeployError("deploying over SSH needs asyncssh: pip install "
                                   "'tinyml-workbench[deploy]' (or pip install asyncssh)") from None
        keys = None
        if self.key is not None:
            path = Path(self.key).expanduser()
            if not path.is_file():
                raise SshAuthError(f"no private key file at {path}: pass key= the path of your "
                                   "SSH private key (e.g. ~/.ssh/id_ed25519)")
            keys = [str(path)]
        try:
            return await asyncssh.connect(
                self.host, port=self.port, username=self.user, client_keys=keys,
                known_hosts=self.known_hosts, connect_timeout=15, agent_path=None
                if keys else (), config=[], password=None, kbdint_auth=False)
        except asyncssh.PermissionDenied as e:
            raise SshAuthError(
                f"{self.where} refused the login ({e.reason}): check user={self.user!r} and that "
                f"the public key of {self.key or 'your default key'} is in ~{self.user}/.ssh/"
                "authorized_keys on the board (ssh-copy-id does that)") from None
        except asyncssh.HostKeyNotVerifiable as e:
            raise SshHostKeyError(
                f"{self.where}: the board's host key is not trusted ({e.reason}). Connect once "
                f"with `ssh -p {self.port} {self.user}@{self.host}` to check and record it, or "
                "pass known_hosts= a file that lists it") from None
        except (OSError, asyncio.TimeoutError) as e:
            why = getattr(e, "strerror", None) or str(e) or type(e).__name__
            raise SshUnreachable(
                f"cannot reach an SSH server at {self.host}:{self.port} ({why}): check the "
                "board is on, on this network, and runs sshd (sudo systemctl enable --now ssh); "
                "for a Raspberry Pi try host='raspberrypi.local'") from None
        except asyncssh.Error as e:
            raise SshUnreachable(f"SSH to {self.where} failed: {e}") from None

    async def _sh(self, conn, command: str, *, timeout: float = 60) -> tuple[int, str, str]:
        r = await conn.run(command, check=False, timeout=timeout)
        code = r.exit_status if r.exit_status is not None else -1
        return code, str(r.stdout or ""), str(r.stderr or "")

    # ------------------------------------------------------------------ steps
    async def deploy(self) -> LinuxDeployment:
        t0 = time.monotonic()
        conn = await self._connect()
        seconds = {"connect": time.monotonic() - t0}
        async with conn:
            await self._resolve_dir(conn)
            await self._check_python(conn)
            await self._stop(conn)
            await self._check_port(conn)
            t1 = time.monotonic()
            await self._copy(conn)
            seconds["copy"] = time.monotonic() - t1
            method = await self._method(conn)
            t2 = time.monotonic()
            dep = await (self._start_systemd(conn, method) if method.startswith("systemd")
                         else self._start_background(conn))
            await self._wait_ready(conn, dep)
            seconds["start"] = time.monotonic() - t2
        dep.seconds = seconds
        return dep

    async def stop_only(self) -> str:
        conn = await self._connect()
        async with conn:
            await self._resolve_dir(conn)
            return await self._stop(conn)

    async def _resolve_dir(self, conn) -> None:
        if not self.remote_dir.startswith("/"):
            code, out, err = await self._sh(conn, "pwd")
            self.remote_dir = out.strip().rstrip("/") + "/" + self.remote_dir.strip("/")
        self.pid_file = f"{self.remote_dir}/{PID_FILE}"
        self.log_file = f"{self.remote_dir}/{LOG_FILE}"

    def _env_values(self) -> dict[str, str]:
        """The runner's environment (the launcher's variables and ``env``)."""
        values = {"WORKBENCH_PYTHON": self.python, "WORKBENCH_PORT": str(self.runner_port),
                  "WORKBENCH_BIND": self.bind, **self.env}
        if self.state_dir:
            values["WORKBENCH_STATE_DIR"] = self.state_dir
        return values

    def _env_words(self) -> list[str]:
        return [f"{k}={_q(v)}" for k, v in self._env_values().items()]

    async def _check_python(self, conn) -> None:
        env = " ".join(f"{k}={_q(v)}" for k, v in self.env.items())
        py = _q(self.python)
        code, out, err = await self._sh(conn, f"{env} {py} -c 'import sys; print(sys.version)'")
        if code != 0:
            raise RemoteMissing(
                f"{self.where}: no Python at {self.python!r} ({(err or out).strip()[-200:]}). "
                "Install it (sudo apt install python3 python3-venv), or pass python= the "
                "path of one (e.g. a venv's bin/python)")
        probe = ("import workbench, workbench.sim.engines, ai_edge_litert.interpreter; "
                 "print(workbench.__version__)")
        code, out, err = await self._sh(conn, f"{env} {py} -c {_q(probe)}")
        if code != 0:
            missing = re.search(r"No module named '([^']+)'", err)
            what = missing.group(1) if missing else (err.strip().splitlines() or ["?"])[-1]
            pip = (f"{self.python} -m pip install --no-deps tinyml-workbench && {self.python} "
                   "-m pip install numpy pyserial pyyaml ai-edge-litert")
            raise RemoteMissing(
                f"{self.where}: {self.python} cannot import the runner's parts ({what}). On the "
                f"board run: {pip} (or pass python= a Python that has them)")

    async def _stop(self, conn) -> str:
        """Stop what an earlier deployment into remote_dir started; what it stopped."""
        stopped = []
        script = (f"if [ -f {_q(self.pid_file)} ]; then p=$(cat {_q(self.pid_file)}); "
                  f"if kill -0 \"$p\" 2>/dev/null && grep -q workbench.sim /proc/$p/cmdline "
                  "2>/dev/null; then kill \"$p\"; i=0; while kill -0 \"$p\" 2>/dev/null && "
                  "[ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -9 \"$p\" 2>/dev/null; "
                  f"echo \"$p\"; fi; rm -f {_q(self.pid_file)}; fi")
        code, out, _ = await self._sh(conn, script)
        if out.strip():
            stopped.append(f"process {out.strip()}")
        marker = f"{self.remote_dir}/systemd-unit"
        code, out, _ = await self._sh(conn, f"cat {_q(marker)} 2>/dev/null")
        if code == 0 and out.strip():
            scope = "--user " if out.strip() == "systemd-user" else ""
            await self._sh(conn, f"systemctl {scope}stop {UNIT}")
            await self._sh(conn, f"rm -f {_q(marker)}")
            stopped.append(f"unit {UNIT}")
        return ", ".join(stopped)

    async def _check_port(self, conn) -> None:
        probe = ("import socket,sys\nfam=socket.getaddrinfo(sys.argv[1],int(sys.argv[2]))[0][0]\n"
                 "s=socket.socket(fam);s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                 "try:\n s.bind((sys.argv[1],int(sys.argv[2])))\nexcept OSError as e:\n"
                 " print(e.strerror);sys.exit(3)\n")
        code, out, err = await self._sh(
            conn, f"{_q(self.python)} -c {_q(probe)} {_q(self.bind)} {self.runner_port}")
        if code == 3:
            raise PortBusy(
                f"TCP port {self.runner_port} on {self.host} is in use by another program "
                f"({out.strip()}): stop it (on the board: ss -ltnp | grep {self.runner_port}) "
                "or pass runner_port= another port")
        if code != 0:
            raise RemoteMissing(f"{self.where}: cannot check port {self.runner_port} "
                                f"({(err or out).strip()[-200:]})")

    async def _copy(self, conn) -> None:
        files = [p for p in sorted(self.folder.iterdir()) if p.is_file()]
        async with conn.start_sftp_client() as sftp:
            await sftp.makedirs(self.remote_dir, exist_ok=True)
            for p in files:
                await sftp.put(str(p), f"{self.remote_dir}/{p.name}")
            await sftp.chmod(f"{self.remote_dir}/{LAUNCHER}", 0o755)

    async def _method(self, conn) -> str:
        if self.start == "background":
            return "background"
        code, out, _ = await self._sh(conn, "id -u")
        root = out.strip() == "0"
        for scope, method in (("", "systemd"), ("--user ", "systemd-user")):
            if (scope == "") != root:
                continue
            code, out, err = await self._sh(conn, f"systemctl {scope}show-environment")
            if code == 0:
                return method
        if self.start == "systemd":
            raise RunnerFailed(
                f"{self.where}: systemd is not usable by {self.user} (no system manager for "
                "root, no user manager for others: `loginctl enable-linger` starts one); "
                "pass start='background' or 'auto'")
        return "background"

    async def _start_background(self, conn) -> LinuxDeployment:
        env = " ".join(self._env_words() + [f"WORKBENCH_PID_FILE={_q(self.pid_file)}"])
        launcher = _q(f"{self.remote_dir}/{LAUNCHER}")
        # only the launcher goes to the background, its output away from the SSH channel
        cmd = (f"cd {_q(self.remote_dir)} || exit 1; rm -f {_q(self.pid_file)}; {env} "
               f"setsid nohup {launcher} > {_q(self.log_file)} 2>&1 < /dev/null &")
        code, out, err = await self._sh(conn, cmd)
        if code != 0:
            raise RunnerFailed(f"{self.where}: could not start {LAUNCHER}: {err.strip()}")
        pid = None
        for _ in range(100):
            code, out, _ = await self._sh(conn, f"cat {_q(self.pid_file)} 2>/dev/null")
            if out.strip().isdigit():
                pid = int(out.strip())
                break
            await asyncio.sleep(0.1)
        if pid is None:
            raise RunnerFailed(f"{self.where}: the runner wrote no PID file; its log:\n"
                               + await self._log_tail(conn, "background"))
        return self._deployment("background", pid=pid, pid_file=self.pid_file,
                                log=self.log_file)

    async def _start_systemd(self, conn, method: str) -> LinuxDeployment:
        user_unit = method == "systemd-user"
        from ..boards import get_board

        text = systemd_unit(get_board(self.manifest["board"]), install_dir=self.remote_dir,
                            port=self.runner_port, user_unit=user_unit,
                            env=self._env_values(), dynamic_user=False)
        scope = "--user " if user_unit else ""
        unit_dir = "$HOME/.config/systemd/user" if user_unit else "/etc/systemd/system"
        cmd = (f"mkdir -p {unit_dir} && cat > {unit_dir}/{UNIT} <<'EOF'\n{text}EOF\n"
               f"systemctl {scope}daemon-reload && systemctl {scope}enable {UNIT} && "
               f"systemctl {scope}restart {UNIT} && echo {method} > "
               f"{_q(self.remote_dir + '/systemd-unit')}")
        code, out, err = await self._sh(conn, cmd)
        if code != 0:
            raise RunnerFailed(f"{self.where}: systemd did not start {UNIT}: {err.strip()}")
        return self._deployment(method, unit=UNIT)

    def _deployment(self, method: str, **kw) -> LinuxDeployment:
        return LinuxDeployment(url=f"socket://{_url_host(self.host)}:{self.runner_port}",
                               host=self.host, port=self.runner_port,
                               board=self.manifest["board"], method=method,
                               remote_dir=self.remote_dir, sha256=self.manifest["sha256"], **kw)

    async def _alive(self, conn, dep: LinuxDeployment) -> bool:
        if dep.method == "background":
            code, _, _ = await self._sh(conn, f"kill -0 {dep.pid}")
        else:
            scope = "--user " if dep.method == "systemd-user" else ""
            code, _, _ = await self._sh(conn, f"systemctl {scope}is-active --quiet {UNIT}")
        return code == 0

    async def _log_tail(self, conn, method: str) -> str:
        if method == "background":
            cmd = f"tail -n {_LOG_LINES} {_q(self.log_file)}"
        else:
            scope = "--user " if method == "systemd-user" else ""
            cmd = f"journalctl {scope}-u {UNIT} -n {_LOG_LINES} --no-pager"
        _, out, err = await self._sh(conn, cmd)
        return (out or err).strip()

    async def _wait_ready(self, conn, dep: LinuxDeployment) -> None:
        """Until the port answers HELLO as the package's board, while the runner lives."""
        from ..link import LinkError, Timeouts, open_device

        deadline = time.monotonic() + self.timeout
        quick = Timeouts(hello=1.0, hello_attempts=1)
        last = ""
        while True:
            if not await self._alive(conn, dep):
                log = await self._log_tail(conn, dep.method)
                if "in use" in log:
                    raise PortBusy(f"the runner on {self.host} could not listen on port "
                                   f"{self.runner_port}, another program holds it: pass "
                                   f"runner_port= another port. Its log:\n{log}")
                raise RunnerFailed(f"the runner on {self.host} stopped before answering; its "
                                   f"last lines ({dep.log or dep.unit}):\n{log}")

            def hello():
                with open_device(dep.url, mode="framed", timeouts=quick) as dev:
                    return dev.info

            try:
                info = await asyncio.to_thread(hello)
            except (LinkError, OSError) as e:
                last = str(e)
            else:
                if info.board_id != dep.board:
                    raise RunnerFailed(f"{dep.url} answered as {info.board_id!r}, not the "
                                       f"{dep.board!r} runner just started: another program "
                                       "serves that port; pass runner_port= another port")
                dep.info = info
                return
            if time.monotonic() > deadline:
                raise RunnerFailed(f"the runner on {self.host} did not answer HELLO on port "
                                   f"{self.runner_port} within {self.timeout:g} s ({last}); is "
                                   "a firewall in the way? Its last lines:\n"
                                   + await self._log_tail(conn, dep.method))
            await asyncio.sleep(0.3)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
