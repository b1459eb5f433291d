"""The virtual board's SMP (mcumgr) personality, driven by the real PyPI client smpclient.

Every test runs a real board process (``python -m workbench.sim --mode smp``) behind a real
pty and talks to it with smpclient's serial transport; images are made by imgtool's CLI,
signed with a throwaway Ed25519 key. The image hash SMP reports is checked against the
SHA-256 computed here over the image's header and payload, and the model the board runs
is read back from its application info (``model:<sha256 of the payload>``).
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import start_sim
from test_tflite import _edit_sine  # tests/ is on sys.path

from workbench.boards import get_board

pytest.importorskip("smpclient")
from smpclient import SMPClient  # noqa: E402
from smpclient.exceptions import SMPUploadError  # noqa: E402
from smpclient.requests.image_management import (  # noqa: E402
    ImageErase,
    ImageStatesRead,
    ImageStatesWrite,
    ImageUploadWrite,
)
from smpclient.requests.os_management import (  # noqa: E402
    EchoWrite,
    MCUMgrParametersRead,
    OSApplicationInfoRead,
    ResetWrite,
)
from smpclient.requests.statistics_management import ListOfGroups  # noqa: E402
from smpclient.transport.serial import SMPSerialTransport  # noqa: E402

from workbench.deploy.smp_update import (  # noqa: E402
    SmpImageError,
    SmpPortError,
    SmpUpdateError,
    smp_update,
)

IMGTOOL = str(Path(sys.executable).parent / "imgtool")
SLOT = get_board("nano33ble").model_slots.slot_bytes


# ---------------------------------------------------------------------- images
@pytest.fixture(scope="module")
def key(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("key") / "key.pem"
    subprocess.run([IMGTOOL, "keygen", "-k", str(path), "-t", "ed25519"], check=True)
    return path


@pytest.fixture(scope="module")
def sign(key, tmp_path_factory):
    """sign(payload, version) -> an MCUboot image made by `imgtool sign`."""
    d = tmp_path_factory.mktemp("img")

    def make(payload: bytes, version: str = "1.0.0") -> bytes:
        src, out = d / "in.bin", d / "out.bin"
        src.write_bytes(payload)
        subprocess.run([IMGTOOL, "sign", "-k", str(key), "--header-size", "0x20", "--pad-header",
                        "--align", "4", "--version", version, "--slot-size", str(SLOT),
                        str(src), str(out)], check=True, capture_output=True)
        return out.read_bytes()

    return make


def described(text: bytes) -> bytes:
    """sine_float with another description: another valid model (a long text makes it big)."""

    def edit(model):
        model.description = text

    return _edit_sine(edit)


def mcuboot_hash(image: bytes) -> bytes:
    """The SHA-256 MCUboot puts in the image's TLV: header, payload, protected TLVs."""
    hdr, prot, size = struct.unpack_from("<HHI", image, 8)
    return hashlib.sha256(image[:hdr + size + prot]).digest()


@pytest.fixture(scope="module")
def model_a() -> bytes:
    return described(b"model A")


@pytest.fixture(scope="module")
def model_b() -> bytes:
    return described(b"model B")


# ---------------------------------------------------------------------- the board
@pytest.fixture
def board(tmp_path):
    """start() -> the pty of a fresh SMP board; restart() keeps its flash file."""
    procs = []
    flash = tmp_path / "smp.flash"

    def start(*extra: str) -> str:
        proc, line = start_sim("--mode", "smp", "--pty", "--baud", "921600",
                               "--flash", str(flash), *extra)
        assert line.startswith("PTY ")
        procs.append(proc)
        return line.split()[1]

    yield start
    for p in procs:
        p.kill()
        p.wait()


def run(coro):
    """Run a coroutine to its end in a fresh event loop on its own thread (the browser tests'
    Playwright may leave an event loop running in this thread, where asyncio.run refuses)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def talk(port: str, *requests, timeout: float = 5.0):
    async def go():
        client = SMPClient(SMPSerialTransport(), port, timeout_s=timeout)
        await client.connect()
        try:
            return [await client.request(r) for r in requests]
        finally:
            await client.disconnect()

    answers = run(go())
    return answers[0] if len(answers) == 1 else answers


def upload(port: str, image: bytes, *, stop_after: int | None = None) -> list[int]:
    """Upload with smpclient; the offsets it was told. ``stop_after``: drop the link (close
    the port) once the board has this many bytes."""

    async def go():
        offsets = []
        client = SMPClient(SMPSerialTransport(), port, timeout_s=5.0)
        await client.connect()
        try:
            async for off in client.upload(image):
                offsets.append(off)
                if stop_after is not None and off >= stop_after:
                    break
        finally:
            await client.disconnect()
        return offsets

    return run(go())


def images(port: str) -> dict[int, dict]:
    """slot -> the state flags the board reports (only those set), version and hash."""
    out = {}
    for i in talk(port, ImageStatesRead()).images:
        row = {k: v for k, v in i.model_dump().items() if v is not None and v is not False}
        out[row.pop("slot")] = row
    return out


def running_model(port: str) -> str:
    text = talk(port, OSApplicationInfoRead(format="v")).output
    assert text.startswith("model:")
    return text[len("model:"):]


def reset(port: str) -> None:
    talk(port, ResetWrite())


def flags(row: dict) -> set[str]:
    return {k for k in ("active", "confirmed", "pending", "permanent") if row.get(k)}


def img_error(answer) -> int:
    assert answer.err.group == 1, answer
    return int(answer.err.rc)


# ---------------------------------------------------------------------- tests
def test_a_fresh_board_answers_and_lists_no_image(board):
    port = board()
    assert talk(port, EchoWrite(d="hello")).r == "hello"
    assert talk(port, MCUMgrParametersRead()).buf_size > 0
    assert images(port) == {}
    assert running_model(port) == "none"


def test_test_reset_confirm_and_revert(board, sign, model_a, model_b):
    port = board()
    a, b = sign(model_a, "1.0.0"), sign(model_b, "1.1.0")
    offsets = upload(port, a)
    assert offsets[-1] == len(a)
    assert images(port) == {0: {"version": "1.0.0", "hash": mcuboot_hash(a), "bootable": True}}
    talk(port, ImageStatesWrite(hash=mcuboot_hash(a)))
    assert flags(images(port)[0]) == {"pending"}
    reset(port)
    assert flags(images(port)[0]) == {"active"}  # on trial: not confirmed
    assert running_model(port) == hashlib.sha256(model_a).hexdigest()
    talk(port, ImageStatesWrite(confirm=True))
    assert flags(images(port)[0]) == {"active", "confirmed"}

    upload(port, b)
    state = images(port)
    assert state[1]["hash"] == mcuboot_hash(b) and state[1]["version"] == "1.1.0"
    assert flags(state[1]) == set()
    talk(port, ImageStatesWrite(hash=mcuboot_hash(b)))
    reset(port)
    state = images(port)
    assert flags(state[1]) == {"active"} and flags(state[0]) == {"confirmed"}  # revert target
    assert running_model(port) == hashlib.sha256(model_b).hexdigest()

    reset(port)  # not confirmed: MCUboot reverts
    state = images(port)
    assert flags(state[0]) == {"active", "confirmed"} and flags(state[1]) == set()
    assert running_model(port) == hashlib.sha256(model_a).hexdigest()

    talk(port, ImageStatesWrite(hash=mcuboot_hash(b)))  # test again, confirm this time
    reset(port)
    talk(port, ImageStatesWrite(confirm=True))
    reset(port)
    assert flags(images(port)[1]) == {"active", "confirmed"}
    assert running_model(port) == hashlib.sha256(model_b).hexdigest()


def test_a_permanent_switch_is_pending_then_stays(board, sign, model_a, model_b):
    port = board()
    a, b = sign(model_a), sign(model_b, "2.0.0")
    upload(port, a)
    talk(port, ImageStatesWrite(hash=mcuboot_hash(a), confirm=True))
    reset(port)
    upload(port, b)
    talk(port, ImageStatesWrite(hash=mcuboot_hash(b), confirm=True))
    state = images(port)
    assert flags(state[1]) == {"pending", "permanent"} and flags(state[0]) == {"active", "confirmed"}
    reset(port)
    reset(port)
    assert flags(images(port)[1]) == {"active", "confirmed"}
    assert running_model(port) == hashlib.sha256(model_b).hexdigest()


def test_an_upload_resumes_after_the_link_drops_and_after_a_restart(board, sign, tmp_path):
    big = sign(described(bytes(range(256)) * 120), "3.0.0")  # ~34 KB
    port = board()
    first = upload(port, big, stop_after=8000)
    assert first[-1] < len(big)
    again = upload(port, big)  # a new connection: the board answers where it stands
    assert again[0] == first[-1]
    assert images(port)[0]["hash"] == mcuboot_hash(big)

    other = sign(described(bytes(range(255, -1, -1)) * 120), "3.0.1")
    talk(port, ImageStatesWrite(hash=mcuboot_hash(big), confirm=True))
    reset(port)
    cut = upload(port, other, stop_after=12000)[-1]
    port = board()  # the board process restarts on the same flash (RAM state is lost)
    resumed = upload(port, other)
    assert 0 < resumed[0] <= cut and resumed[0] % 1024 == 0  # the trailer's progress marks
    assert images(port)[1]["hash"] == mcuboot_hash(other)


def test_bad_requests_get_mcumgr_error_codes(board, sign, model_a, model_b, sine_model):
    port = board()
    a = sign(model_a)
    assert int(talk(port, ListOfGroups()).rc) == 8  # unknown group: MGMT_ERR_ENOTSUP
    with pytest.raises(SMPUploadError) as e:
        upload(port, sine_model)  # a raw model, no MCUboot header
    assert img_error(e.value.args[0]) == 23
    with pytest.raises(SMPUploadError) as e:
        upload(port, a + bytes(SLOT))
    assert img_error(e.value.args[0]) == 30  # too large for the slot
    answer = talk(port, ImageUploadWrite(off=500, data=b"x" * 10))
    assert answer.off == 0  # no upload open: Zephyr answers the offset it expects
    assert img_error(talk(port, ImageStatesWrite(hash=bytes(32)))) == 8  # hash not found
    upload(port, a)
    talk(port, ImageStatesWrite(hash=mcuboot_hash(a), confirm=True))
    reset(port)
    assert img_error(talk(port, ImageStatesWrite(hash=mcuboot_hash(a)))) == 33  # test running
    assert img_error(talk(port, ImageErase(slot=0))) == 9  # the running slot

    with pytest.raises(SMPUploadError) as e:
        upload(port, sign(b"not a model" * 50))  # valid image, payload not a model
    assert img_error(e.value.args[0]) == 29
    tampered = bytearray(sign(model_b))
    tampered[100] ^= 1
    with pytest.raises(SMPUploadError) as e:
        upload(port, bytes(tampered))
    assert img_error(e.value.args[0]) == 24  # the SHA-256 TLV does not match
    state = images(port)
    assert list(state) == [0] and flags(state[0]) == {"active", "confirmed"}
    assert running_model(port) == hashlib.sha256(model_a).hexdigest()

    upload(port, sign(model_b))
    talk(port, ImageErase())  # the slot not running
    assert list(images(port)) == [0]


def test_smp_update_end_to_end(board, sign, model_a, model_b, sine_model, tmp_path):
    port = board()
    seen = []
    first = smp_update(port, sign(model_a), test=True, confirm=True,
                       progress=lambda done, total: seen.append((done, total)))
    assert first.running and first.confirmed
    assert seen[-1][0] == seen[-1][1]
    second = smp_update(port, sign(model_b, "1.1.0"), test=True, confirm=False)
    assert second.running and not second.confirmed and second.version == "1.1.0"
    assert running_model(port) == hashlib.sha256(model_b).hexdigest()
    reset(port)  # the unconfirmed test reverts
    assert running_model(port) == hashlib.sha256(model_a).hexdigest()

    with pytest.raises(SmpImageError, match="imgtool sign"):
        smp_update(port, sine_model)
    with pytest.raises(SmpPortError, match="no serial port"):
        smp_update(str(tmp_path / "ttyNONE"), sign(model_b))
    with pytest.raises(SmpUpdateError, match="does not run on this board") as e:
        smp_update(port, sign(b"not a model" * 50))
    assert e.value.rc == 29
    assert running_model(port) == hashlib.sha256(model_a).hexdigest()


def test_a_keyed_board_takes_only_images_signed_by_its_key(board, key, sign, model_a,
                                                           tmp_path):
    other = tmp_path / "other.pem"
    subprocess.run([IMGTOOL, "keygen", "-k", str(other), "-t", "ed25519"], check=True)
    port = board("--key", str(key))          # provisioned with the public half of `key`
    src, forged = tmp_path / "in.bin", tmp_path / "forged.bin"
    src.write_bytes(model_a)
    subprocess.run([IMGTOOL, "sign", "-k", str(other), "--header-size", "0x20", "--pad-header",
                    "--align", "4", "--version", "1.0.0", "--slot-size", str(SLOT),
                    str(src), str(forged)], check=True, capture_output=True)
    with pytest.raises(SMPUploadError):
        upload(port, forged.read_bytes())
    assert images(port) == {}                 # refused when the upload ended: not listed
    good = sign(model_a, "1.0.0")
    assert upload(port, good)[-1] == len(good)
    assert images(port)[0]["hash"] == mcuboot_hash(good)


def test_one_signed_artifact_serves_the_framed_board_and_the_smp_board(board, model_a,
                                                                       tmp_path, sim_url):
    """The update image deploy's signing makes (imgtool's format, with the manifest TLV)
    updates a keyed SMP board through smpclient and a keyed framed board alike."""
    from workbench.deploy.signing import generate_key, make_update_image
    from workbench.link import open_device

    generate_key(tmp_path / "k.pem")
    image = make_update_image(model_a, key=tmp_path / "k.pem", version=3)
    port = board("--key", str(tmp_path / "k.pem"))
    done = smp_update(port, image, test=True, confirm=True)
    assert done.running and done.confirmed and done.version == "0.0.3"
    assert running_model(port) == hashlib.sha256(model_a).hexdigest()
    with open_device(sim_url("nano33ble", key=str(tmp_path / "k.pem"))) as dev:
        slot = dev.upload_model(image, name="a", test=True)     # self-tested by the board
        assert slot.sha256 == hashlib.sha256(image).digest() and slot.state.name == "ACTIVE"
