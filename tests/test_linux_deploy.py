"""A Linux board's package over real SSH: a real OpenSSH server on loopback, started by the
test with a throwaway host key, a throwaway user key and (when the tests run as root) a
throwaway user; the package is installed with asyncssh, its LiteRT runner answers on TCP, runs
the model as LiteRT does, and takes an update over TCP.

The "board" is this machine, so its Python is the one running the tests, with this checkout on
PYTHONPATH (passed as ``python=`` and ``env=``). As root, a user ``wbtest<pid>`` is created for
the module (``useradd``, password field ``*``: no password, not locked) and removed after
(``userdel -r``), so the deployment logs in as someone else and writes only into that user's
home, provided that user can run this Python (a Python installed under /root cannot be: then,
and when the tests do not run as root, the current user logs in with the throwaway key, and the
package and the runner's slots go to the test's temporary folder).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import start_sim

from workbench.boards import get_board
from workbench.deploy import (
    PortBusy,
    RemoteMissing,
    SshAuthError,
    SshUnreachable,
    create_deployment_package,
    deploy_linux_package,
    stop_linux_runner,
)
from workbench.deploy.linux_package import systemd_unit
from workbench.link import open_device
from workbench.protocol import messages as m

pytest.importorskip("asyncssh", reason="the deploy extra: pip install 'tinyml-workbench[deploy]'")

SSHD = "/usr/sbin/sshd"
REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "workbench-test",
                    "-f", str(path)], check=True, timeout=30)
    return path


def _throwaway_user() -> str | None:
    """As root: a new user ``wbtest<pid>`` (password field ``*``: no password, not locked)
    that can run this Python with this checkout, else None (the user is removed again: e.g.
    a Python under /root, which other users cannot enter)."""
    if os.geteuid() != 0 or not (shutil.which("useradd") and shutil.which("runuser")):
        return None
    name = f"wbtest{os.getpid()}"
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, timeout=30)
    subprocess.run(["usermod", "-p", "*", name], check=True, timeout=30)
    usable = subprocess.run(["runuser", "-u", name, "--", "env", f"PYTHONPATH={REPO}",
                             sys.executable, "-c", "import workbench.sim, ai_edge_litert"],
                            capture_output=True, timeout=60).returncode == 0
    if not usable:
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True, timeout=30)
        return None
    return name


@pytest.fixture(scope="module")
def sshd():
    """An OpenSSH server on 127.0.0.1:<free port>, for a throwaway user and key."""
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
        pytest.fail(f"no OpenSSH server at {SSHD}: install it (sudo apt-get install "
                    "openssh-server); .ci/run installs it in CI")
    # readable by the throwaway user (sshd reads authorized_keys as that user)
    d = Path(tempfile.mkdtemp(prefix="wb-sshd-"))
    d.chmod(0o755)
    host_key = _keygen(d / "host_ed25519")
    user_key = _keygen(d / "user_ed25519")
    other_key = _keygen(d / "other_ed25519")
    authorized = d / "authorized_keys"
    authorized.write_text((d / "user_ed25519.pub").read_text())
    authorized.chmod(0o644)
    created_user = _throwaway_user()
    user = created_user or pwd.getpwuid(os.getuid()).pw_name
    made_privsep = False
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", 0o755)  # sshd's privilege separation directory
        made_privsep = True
    port = _free_port()
    config = d / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {d / "sshd.pid"}
AuthorizedKeysFile {authorized}
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {user}
Subsystem sftp internal-sftp
LogLevel VERBOSE
""")
    known_hosts = d / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} " + (d / "host_ed25519.pub").read_text())
    log = open(d / "sshd.log", "wb")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail("sshd did not start: " + (d / "sshd.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("sshd did not listen: " + (d / "sshd.log").read_text())
                time.sleep(0.1)
        home = pwd.getpwnam(user).pw_dir
        yield SimpleNamespace(host="127.0.0.1", port=port, user=user, key=user_key,
                              other_key=other_key, known_hosts=str(known_hosts),
                              log=d / "sshd.log", home=home, dir=d,
                              throwaway=created_user is not None)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if created_user:
            subprocess.run(["userdel", "-r", "-f", created_user], timeout=30,
                           capture_output=True)
        if made_privsep:
            shutil.rmtree("/run/sshd", ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)


def _login(sshd) -> dict:
    return {"user": sshd.user, "key": sshd.key, "port": sshd.port,
            "known_hosts": sshd.known_hosts}


def _runner_options(sshd, tmp_path) -> dict:
    """The remote Python is this one, with this checkout first on its path."""
    opts = {"python": sys.executable, "env": {"PYTHONPATH": str(REPO)}, "bind": "127.0.0.1",
            "runner_port": _free_port(), "start": "background"}
    if sshd.throwaway:
        opts["remote_dir"] = f"{sshd.home}/workbench-runner"
    else:  # keep the current user's home clean
        opts["state_dir"] = str(tmp_path / "state")
        opts["remote_dir"] = str(tmp_path / "remote")
    return opts


def _retrained(model: bytes) -> bytes:
    """sine_float with another output bias (-0.160 -> 0.5): a different, valid model, as a
    head-only retrain gives."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    it.allocate_tensors()
    bias = next(d for d in it.get_tensor_details()
                if d["name"] == "sequential/dense_2/BiasAdd/ReadVariableOp")
    old = it.get_tensor(bias["index"]).astype("<f4").tobytes()
    assert model.count(old) == 1
    return model.replace(old, np.array([0.5], "<f4").tobytes())


def _litert(model: bytes, x: np.ndarray) -> np.ndarray:
    """LiteRT run here, directly (not through the workbench's runner)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def _kill_by_pid_file(path: str | None) -> None:
    if path and os.path.exists(path):
        try:
            os.kill(int(Path(path).read_text().strip()), signal.SIGKILL)
        except (ValueError, ProcessLookupError):
            pass


def test_linux_package_deploys_over_ssh_and_updates_over_tcp(sshd, tmp_path, sine_model):
    pkg = create_deployment_package(sine_model, "rpi4", tmp_path / "pkg")
    opts = _runner_options(sshd, tmp_path)
    dep = None
    try:
        dep = deploy_linux_package(pkg.path, sshd.host, **_login(sshd), **opts)
        assert dep.method == "background" and dep.board == "rpi4"
        assert dep.url == f"socket://127.0.0.1:{opts['runner_port']}"
        # the runner runs as the SSH user, from the folder it was copied to
        assert Path(dep.pid_file).read_text().strip() == str(dep.pid)
        assert os.stat(f"/proc/{dep.pid}").st_uid == pwd.getpwnam(sshd.user).pw_uid
        assert dep.remote_dir.startswith(sshd.home) or not sshd.throwaway
        assert (Path(dep.remote_dir) / "model.tflite").read_bytes() == sine_model
        assert "Accepted publickey for " + sshd.user in sshd.log.read_text()
        # the upload committed the package's model into slot A
        assert dep.slot.state == m.SlotState.ACTIVE and dep.slot.sha256.hex() == pkg.sha256

        x = np.array([[1.3]], np.float32)
        with open_device(dep.url) as dev:
            assert dev.info.board_id == "rpi4" and "LiteRT" in dev.info.firmware
            assert not dev.info.capabilities & m.Capability.SIMULATED
            assert dev.info.sensor_count == 0  # a Linux board's runner has no sensors
            first = dev.infer(x)
            assert not first.latency_estimated
            np.testing.assert_array_equal(first.outputs[0], _litert(sine_model, x))

            # an update over TCP: the retrained model into the other slot, committed
            new = _retrained(sine_model)
            slot = dev.upload_model(new, name="sine-v2")
            assert slot.index == 1 and slot.state == m.SlotState.ACTIVE
            second = dev.infer(x)
            np.testing.assert_array_equal(second.outputs[0], _litert(new, x))
            assert not np.array_equal(second.outputs[0], first.outputs[0])
            # and the next one replaces the fallback (the host's check passed)
            dev.upload_model(sine_model, name="sine-v3")
            np.testing.assert_array_equal(dev.infer(x).outputs[0], first.outputs[0])
            assert dev.rollback() == 1
            np.testing.assert_array_equal(dev.infer(x).outputs[0], second.outputs[0])
    finally:  # no stray runner, whatever failed
        stopped = stop_linux_runner(sshd.host, **_login(sshd), remote_dir=opts["remote_dir"])
        _kill_by_pid_file(f"{opts['remote_dir']}/runner.pid")
    assert stopped == f"process {dep.pid}"
    assert not os.path.exists(f"/proc/{dep.pid}") or _zombie(dep.pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_package_contents(tmp_path, sine_model):
    import json

    pkg = create_deployment_package(sine_model, "jetson-nano", tmp_path / "pkg", port=6000)
    names = sorted(f.name for f in pkg.files)
    assert names == sorted(p.name for p in pkg.path.iterdir()) == [
        "README.md", "model.tflite", "package.json", "run-workbench-runner.sh",
        "workbench-runner.service"]
    assert (pkg.path / "model.tflite").read_bytes() == sine_model
    assert pkg.arena_bytes is None and pkg.target == "jetson-nano"
    meta = json.loads((pkg.path / "package.json").read_text())
    assert meta["board"] == "jetson-nano" and meta["port"] == 6000 and meta["sha256"] == pkg.sha256
    launcher = pkg.path / "run-workbench-runner.sh"
    assert os.access(launcher, os.X_OK)
    text = launcher.read_text()
    assert "-m workbench.sim --board jetson-nano --bind" in text and "6000" in text
    subprocess.run(["sh", "-n", str(launcher)], check=True, timeout=10)  # shell syntax
    for line in ("pip install", "systemctl enable --now workbench-runner.service",
                 "socket://raspberrypi.local:6000", "scp -r pkg pi@raspberrypi.local:",
                 "deploy_linux_package('pkg', "):
        assert line in pkg.readme
    unit = (pkg.path / "workbench-runner.service").read_text()
    _check_unit(unit, tmp_path, pkg.path)
    # the units deploy_linux_package writes: for systemctl --user, and for root
    for user_unit in (True, False):
        text = systemd_unit(get_board("rpi4"), install_dir=str(pkg.path), port=6001,
                            user_unit=user_unit, dynamic_user=False,
                            env={"PYTHONPATH": "/a dir/with spaces"})
        assert 'Environment="PYTHONPATH=/a dir/with spaces"' in text
        assert ("default.target" if user_unit else "multi-user.target") in text
        assert "DynamicUser" not in text
        if shutil.which("systemd-analyze"):
            placed = tmp_path / f"u{user_unit}" / "workbench-runner.service"
            placed.parent.mkdir()
            placed.write_text(text)
            runtime = tmp_path / f"xdg{user_unit}"  # a user manager's runtime directory
            runtime.mkdir(mode=0o700)
            r = subprocess.run(["systemd-analyze", *(["--user"] if user_unit else []), "verify",
                                str(placed)], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
            assert r.returncode == 0, r.stderr


def _check_unit(unit: str, tmp_path, install_dir) -> None:
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in unit.splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            current[key] = value
    assert set(sections) == {"Unit", "Service", "Install"}
    assert sections["Service"]["ExecStart"] == "/opt/workbench-runner/run-workbench-runner.sh"
    assert sections["Install"]["WantedBy"] == "multi-user.target"
    assert sections["Service"]["StateDirectory"] == "workbench"
    verify = shutil.which("systemd-analyze")
    if verify:  # systemd's own parser; ExecStart must exist, so point it at the package
        placed = tmp_path / "workbench-runner.service"
        placed.write_text(unit.replace("/opt/workbench-runner", str(install_dir)))
        r = subprocess.run([verify, "verify", str(placed)], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr


def test_wrong_key_is_a_clear_auth_error(sshd, tmp_path, sine_model):
    pkg = create_deployment_package(sine_model, "rpi4", tmp_path / "pkg")
    login = {**_login(sshd), "key": sshd.other_key}
    with pytest.raises(SshAuthError, match=f"refused the login.*user='{sshd.user}'.*"
                       "authorized_keys"):
        deploy_linux_package(pkg.path, sshd.host, **login, **_runner_options(sshd, tmp_path))
    assert isinstance(SshAuthError("x"), PermissionError)


def test_nothing_listening_is_a_clear_error(tmp_path, sine_model):
    pkg = create_deployment_package(sine_model, "rpi4", tmp_path / "pkg")
    port = _free_port()
    with pytest.raises(SshUnreachable, match=f"no SSH server|cannot reach an SSH server at "
                       f"127.0.0.1:{port}.*runs sshd"):
        deploy_linux_package(pkg.path, "127.0.0.1", user="pi", port=port, known_hosts=None)


def test_missing_python_and_busy_port_are_named(sshd, tmp_path, sine_model):
    pkg = create_deployment_package(sine_model, "rpi4", tmp_path / "pkg")
    opts = _runner_options(sshd, tmp_path)
    with pytest.raises(RemoteMissing, match="no Python at '/nonexistent/python3'.*apt install"):
        deploy_linux_package(pkg.path, sshd.host, **_login(sshd),
                             **{**opts, "python": "/nonexistent/python3"})
    bare = shutil.which("python3", path="/usr/bin:/bin")  # the system's, without the workbench
    if bare and subprocess.run([bare, "-c", "import workbench"], capture_output=True).returncode:
        with pytest.raises(RemoteMissing, match="cannot import.*No module named.*pip install"):
            deploy_linux_package(pkg.path, sshd.host, **_login(sshd),
                                 **{**opts, "python": bare, "env": {}})
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", opts["runner_port"]))
        holder.listen(1)
        with pytest.raises(PortBusy, match=f"port {opts['runner_port']} on 127.0.0.1 is in use"):
            deploy_linux_package(pkg.path, sshd.host, **_login(sshd), **opts)


def test_a_linux_board_runs_litert_in_the_firmware(sim_url, sine_model):
    """sim://rpi4 (the runner of the package, started here): LiteRT, not TFLite Micro; HELLO
    names the board without the SIMULATED capability and without sensors; the slot's arena
    is 0 (LiteRT sizes its own memory); latencies are measured, not estimated."""
    with open_device(sim_url("rpi4")) as dev:
        assert dev.info.board_id == "rpi4" and dev.info.firmware.startswith("workbench-litert")
        caps = dev.info.capabilities
        assert caps & m.Capability.MODEL_UPDATE and caps & m.Capability.INFER
        assert not caps & (m.Capability.SIMULATED | m.Capability.STREAM)
        assert dev.info.sensor_count == 0
        assert dev.info.ram_bytes == 0xFFFF_FFFF  # 4 GiB does not fit INFO's u32: saturated
        slot = dev.upload_model(sine_model, name="sine")
        assert slot.arena_bytes == 0
        x = np.array([[0.25]], np.float32)
        r = dev.infer(x)
        assert not r.latency_estimated
        np.testing.assert_array_equal(r.outputs[0], _litert(sine_model, x))


def test_runner_bind_address_and_busy_port(tmp_path):
    proc, line = start_sim("--board", "rpi4", "--bind", "0.0.0.0", "--tcp", "0",
                           "--flash", str(tmp_path / "a.flash"))
    try:
        assert line.startswith("TCP 0.0.0.0:")
        port = int(line.rsplit(":", 1)[1])
        with open_device(f"socket://127.0.0.1:{port}") as dev:
            assert dev.info.board_id == "rpi4"
        busy = subprocess.run([sys.executable, "-m", "workbench.sim", "--board", "rpi4",
                               "--bind", "0.0.0.0", "--tcp", str(port), "--flash",
                               str(tmp_path / "b.flash")], capture_output=True, text=True,
                              timeout=60)
        assert busy.returncode == 2
        assert f"TCP port {port} on 0.0.0.0 is in use by another program" in busy.stderr
    finally:
        proc.terminate()
        proc.wait(10)
