"""The virtual board's SMP (mcumgr) personality: a Zephyr-like management server.

``python -m workbench.sim --mode smp --pty`` runs a board that speaks the Simple
Management Protocol over its serial port instead of the workbench's framed protocol, the
way a Zephyr application with ``CONFIG_MCUMGR_TRANSPORT_UART`` does (mcumgr's "SMP over
console" framing): each SMP message (8-byte header + CBOR map) is wrapped as
``[u16 length][message][u16 CRC16-XMODEM]`` (big-endian), base64-encoded, and sent as
lines of at most 128 bytes, the first starting with 0x06 0x09 and the rest with
0x04 0x14, each ending in ``\\n``. The ``smp`` package (companion of the ``smpclient``
client) does the framing and parses the requests here.

Implemented (docs/protocol.md, "SMP (mcumgr) personality of the virtual board"):

- group 0 (os): echo, reset (the boot decision runs again: a pending test image boots
  once, an unconfirmed one reverts), MCUmgr parameters (``buf_size``), application info,
  bootloader info;
- group 1 (img): state read, state write (test / confirm), upload (chunked, resumable),
  erase. The slots are :class:`~workbench.sim.smp_slots.McubootSlots`: MCUboot's
  direct-XIP-with-revert semantics on the flash's write-once trailer records.

The uploaded MCUboot image is what the slot holds; the model the board runs is its
payload (after ``hdr_size`` header bytes), checked with TFLite Micro when the upload ends,
exactly as the framed board checks a model at MODEL_END. Requests for other groups or
commands are answered with ``rc`` 8 (MGMT_ERR_ENOTSUP), as Zephyr does.

:class:`SmpFirmware` is a :class:`~workbench.sim.firmware.VirtualFirmware` (same board,
sensors, flash and model runner) whose byte input is SMP; the server
(:mod:`workbench.sim.server`) feeds it exactly as it feeds the framed firmware.
"""

from __future__ import annotations

import binascii
import hashlib
import struct
import sys

import cbor2
from pydantic import ValidationError
from smp import header as smphdr
from smp import image_management as smpimg
from smp import packet as smppacket
from smp.exceptions import SMPBadContinueDelimiter, SMPBadCRC, SMPBadStartDelimiter

from ..protocol.image import ImageError, open_image
from ..tflite import ModelError, ProbeResult, TflmRunner
from .firmware import FIRMWARE_VERSION, VirtualFirmware
from .smp_slots import ImageRefused, ImgErr, McubootSlots, read_image

BUF_SIZE = 2048
"""Reassembly buffer for one decoded request (Zephyr's CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE),
reported by the MCUmgr parameters command: smpclient sizes its upload chunks from it."""
BUF_COUNT = 4
LINE_LENGTH = 128
"""Bytes per console line the board sends (Zephyr's SMP console line length)."""
LINE_MAX = 4 * BUF_SIZE
"""Bytes kept while waiting for a newline; a longer run without one is discarded."""

READ, READ_RSP, WRITE, WRITE_RSP = 0, 1, 2, 3
OS, IMG = 0, 1
ECHO, RESET, PARAMS, INFO, BOOTLOADER = 0, 5, 6, 7, 8
STATE, UPLOAD, ERASE = 0, 1, 5


class MgmtErr:
    """General MCUmgr error codes (``rc`` of a response; Zephyr's ``mcumgr_err_t``)."""

    EUNKNOWN, EINVAL, ENOTSUP, UNSUPPORTED_TOO_NEW = 1, 3, 8, 13


OS_INVALID_FORMAT, OS_QUERY_YIELDS_NO_ANSWER = 2, 3
"""os group error codes (``OS_MGMT_ERR_*``)."""

_V1_RC = {ImgErr.NO_IMAGE: 5, ImgErr.NO_TLVS: 5, ImgErr.NO_FREE_SLOT: 6,
          ImgErr.CURRENT_VERSION_IS_NEWER: 6, ImgErr.IMAGE_ALREADY_PENDING: 6,
          ImgErr.INVALID_SLOT: 3, ImgErr.INVALID_OFFSET: 3, ImgErr.INVALID_LENGTH: 3,
          ImgErr.INVALID_IMAGE_HEADER: 3, ImgErr.INVALID_HASH: 3}
"""An image group error as the ``rc`` of an SMP version 1 answer (Zephyr's
``img_mgmt_translate_error_code``); the rest are MGMT_ERR_EUNKNOWN."""

INFO_FIELDS = "snrvbmpio"
"""Zephyr's application info format letters, in the order their fields are printed."""


class _Reply(Exception):
    """Answer the request being handled with an error body (raised inside a handler)."""

    def __init__(self, body: dict) -> None:
        super().__init__(body)
        self.body = body


class SmpFirmware(VirtualFirmware):
    """A virtual board whose serial port speaks SMP (see the module docstring).

    Same contract as :class:`VirtualFirmware`: the server calls :meth:`receive` with bytes
    from the host and :meth:`tick`; answers go out through ``send``. May raise
    :class:`~workbench.sim.flash.PowerCut` from :meth:`receive` (an armed power cut).
    """

    def __init__(self, board, flash, send, **kwargs) -> None:
        self.slots = McubootSlots(flash)
        self.model_sha256: str | None = None
        """SHA-256 of the model (the running image's payload) loaded since the last boot."""
        self.bad_frames = 0
        self._rx = bytearray()
        self._decoder = None
        kwargs.pop("mode", None)
        kwargs.pop("line_sensor", None)
        super().__init__(board, flash, send, **kwargs)

    # ------------------------------------------------------------------ boot
    def _load_active(self) -> None:
        """After the boot decision (VirtualFirmware._boot): load the running image's model."""
        self.slots.booted()
        self.runner = None
        self.inputs.clear()
        self.outputs = []
        self.model_sha256 = None
        slot = self.slots.running
        if slot is None:
            return
        info = self.slots.info(slot)
        if info is None:
            self._log(f"slot {slot} does not hold a readable MCUboot image; no model runs")
            return
        payload = info.payload(self.flash.read(slot))
        digest = hashlib.sha256(payload).hexdigest()
        try:
            self.runner = TflmRunner(payload, self.board.model_slots.arena_bytes,
                                     probed=self._verified.get(digest), spawn=self._spawn)
        except ModelError as e:
            self._log(f"the model in slot {slot} failed to load: {e}")
            return
        self.model_sha256 = digest

    def host_connected(self) -> None:
        self._rx.clear()  # the host flushes its side on open; start at a line boundary
        self._decoder = None

    def _log(self, text: str) -> None:
        self.logs.append(text)
        print(f"workbench sim (smp): {text}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ input
    def receive(self, data: bytes) -> None:
        """Bytes from the host: console lines, of which SMP lines are reassembled into
        requests and answered; other text is ignored, as Zephyr's console does."""
        self._rx.extend(data)
        while True:
            end = self._rx.find(b"\n")
            if end < 0:
                if len(self._rx) > LINE_MAX:
                    self._rx.clear()
                    self._decoder = None
                    self.bad_frames += 1
                return
            line = bytes(self._rx[:end + 1])
            del self._rx[:end + 1]
            self._line(line)

    def _line(self, line: bytes) -> None:
        head = line[:smppacket.DELIMITER_SIZE]
        if head == smppacket.START_DELIMITER:
            self._decoder = smppacket.decode()
            next(self._decoder)
        elif head != smppacket.CONTINUE_DELIMITER or self._decoder is None:
            return  # console text, or the rest of a request that was dropped
        try:
            self._decoder.send(line)
        except StopIteration as done:
            self._decoder = None
            self._request(bytes(done.value))
        except (SMPBadStartDelimiter, SMPBadContinueDelimiter, SMPBadCRC, binascii.Error,
                struct.error, ValueError):
            self._decoder = None
            self.bad_frames += 1

    # ------------------------------------------------------------------ requests
    def _request(self, frame: bytes) -> None:
        if len(frame) < smphdr.Header.SIZE or len(frame) > BUF_SIZE:
            self.bad_frames += 1
            return
        res_ver_op, _, length, group, seq, cmd = struct.unpack_from("!BBHHBB", frame)
        op, version = res_ver_op & 0x7, (res_ver_op >> 3) & 0x3
        if op not in (READ, WRITE):
            return  # a response, not a request
        reply = _Answer(self, op + 1, version, group, seq, cmd)
        if version > smphdr.Version.V2:
            return reply.send({"rc": MgmtErr.UNSUPPORTED_TOO_NEW})
        try:
            header = smphdr.Header.loads(frame[:smphdr.Header.SIZE])
        except ValueError:  # a command id the group does not have
            return reply.send({"rc": MgmtErr.ENOTSUP})
        body = frame[smphdr.Header.SIZE:]
        try:
            req = cbor2.loads(body) if body else {}
        except (cbor2.CBORDecodeError, ValueError):
            req = None
        if length != len(body) or not isinstance(req, dict):
            return reply.send({"rc": MgmtErr.EINVAL})
        handler = self._HANDLERS.get((group, cmd, op))
        if handler is None:
            return reply.send({"rc": MgmtErr.ENOTSUP})
        try:
            reply.send(handler(self, header, req, reply))
        except _Reply as r:
            reply.send(r.body)
        except ImageRefused as e:
            self._log(f"refused: {e} (img rc {e.rc.value} {e.rc.name})")
            reply.send(reply.group_error(IMG, e.rc, str(e)))
        except ValidationError:
            reply.send({"rc": MgmtErr.EINVAL})

    # os group ---------------------------------------------------------------
    def _echo(self, header, req, reply) -> dict:
        if not isinstance(req.get("d"), str):
            raise _Reply({"rc": MgmtErr.EINVAL})
        return {"r": req["d"]}

    def _reset(self, header, req, reply) -> dict | None:
        reply.send({})  # Zephyr answers, then resets
        self._boot()
        self._rx.clear()
        self._decoder = None
        return None

    def _params(self, header, req, reply) -> dict:
        return {"buf_size": BUF_SIZE, "buf_count": BUF_COUNT}

    def _info(self, header, req, reply) -> dict:
        fmt = req.get("format", "s")
        if not isinstance(fmt, str) or set(fmt) - set(INFO_FIELDS + "a"):
            raise _Reply(reply.group_error(OS, OS_INVALID_FORMAT, f"format {fmt!r}"))
        fields = {
            "s": "workbench-sim", "n": self.board.id,
            "r": FIRMWARE_VERSION.split()[-1],
            "v": "model:" + (self.model_sha256 or "none"),
            "m": self.board.id, "p": "tflite-micro", "i": self.board.name.replace(" ", "_"),
            "o": "workbench",
        }
        wanted = INFO_FIELDS if "a" in fmt else fmt
        return {"output": " ".join(fields[c] for c in INFO_FIELDS if c in wanted and c in fields)}

    def _bootloader(self, header, req, reply) -> dict:
        if "query" in req:
            raise _Reply(reply.group_error(OS, OS_QUERY_YIELDS_NO_ANSWER, "no queries"))
        return {"bootloader": "MCUboot"}

    # img group --------------------------------------------------------------
    def _state_read(self, header, req, reply) -> dict:
        return {"images": self.slots.states()}

    def _state_write(self, header, req, reply) -> dict:
        ask = smpimg.ImageStatesWriteRequest.load(header, req)
        self.slots.set_state(ask.hash, ask.confirm)
        return {"images": self.slots.states()}

    def _upload(self, header, req, reply) -> dict:
        if "off" not in req:
            raise ImageRefused(ImgErr.INVALID_OFFSET, "the request has no `off`")
        req.setdefault("data", b"")
        ask = smpimg.ImageUploadWriteRequest.load(header, req)
        off, match = self.slots.upload_chunk(ask.off, ask.data, ask.len, ask.sha,
                                             ask.image or 0, bool(ask.upgrade),
                                             self._check_image)
        if match is False:
            self._log("the uploaded image does not match its `sha`; slot marked invalid")
        return {"off": off} if match is None else {"off": off, "match": match}

    def _check_image(self, stored: bytes) -> int:
        """Whether a complete upload may run: a readable MCUboot image whose payload runs
        in TFLite Micro within the board's arena. Returns the arena it needs."""
        info = read_image(stored)
        payload = info.payload(stored)
        if self.keys:  # a keyed board runs only images signed by a key it trusts
            try:
                open_image(stored, self.keys)
            except ImageError as e:
                raise ImageRefused(ImgErr.INVALID_HASH, str(e)) from None
        checked = self.engine.check(payload)   # the image is read: check the model it runs
        if not isinstance(checked, ProbeResult):
            raise ImageRefused(ImgErr.INVALID_IMAGE_VECTOR_TABLE,
                               f"the image's payload is not a model this board runs: {checked[1]}")
        keep = {s.sha256 for s in self.flash.table.slots}
        self._verified = {d: r for d, r in self._verified.items() if d in keep}
        self._verified[hashlib.sha256(payload).hexdigest()] = checked
        return checked.arena_limit

    def _erase(self, header, req, reply) -> dict:
        slot = req.get("slot")
        if slot is not None and type(slot) is not int:
            raise _Reply({"rc": MgmtErr.EINVAL})
        self.slots.erase(slot)
        return {}

    _HANDLERS = {
        (OS, ECHO, WRITE): _echo, (OS, RESET, WRITE): _reset, (OS, PARAMS, READ): _params,
        (OS, INFO, READ): _info, (OS, BOOTLOADER, READ): _bootloader,
        (IMG, STATE, READ): _state_read, (IMG, STATE, WRITE): _state_write,
        (IMG, UPLOAD, WRITE): _upload, (IMG, ERASE, WRITE): _erase,
    }


class _Answer:
    """The response to one request: same group, command, sequence and SMP version."""

    def __init__(self, fw: SmpFirmware, op: int, version: int, group: int, seq: int,
                 cmd: int) -> None:
        self.fw, self.op, self.version = fw, op, version
        self.group, self.seq, self.cmd = group, seq, cmd
        self.sent = False

    def group_error(self, group: int, rc: int, why: str) -> dict:
        """A group's error: ``err: {group, rc}`` in SMP version 2, ``rc`` (translated to
        MGMT_ERR, with ``rsn``) in version 1."""
        if self.version == smphdr.Version.V2:
            return {"err": {"group": group, "rc": int(rc)}}
        code = _V1_RC.get(rc, MgmtErr.EUNKNOWN) if group == IMG else MgmtErr.EUNKNOWN
        return {"rc": code, "rsn": why}

    def send(self, body: dict | None) -> None:
        if body is None or self.sent:
            return
        self.sent = True
        data = cbor2.dumps(body)
        frame = struct.pack("!BBHHBB", (self.version << 3) | self.op, 0, len(data),
                            self.group, self.seq, self.cmd) + data
        for line in smppacket.encode(frame, line_length=LINE_LENGTH):
            self.fw._send_bytes(line)
