"""The device protocol, shared by the host link, the virtual board and firmware tests.

Three layers, each testable by feeding it bytes (no port, no thread):

- :mod:`.framing`: COBS + CRC-32 frames delimited by 0x00 (:class:`~.framing.FrameParser`,
  :func:`~.framing.encode_frame`);
- :mod:`.messages`: the message set, type and error codes, and every payload codec
  (one namespace over :mod:`.codes`, :mod:`.wire` and one module per family of
  messages); :mod:`.limits`: the range of every field a host sets;
- :mod:`.linemode`: the plain-text convention hobbyist sketches follow (one sample per
  line), with sample-rate estimation from arrival times.

docs/protocol.md specifies all three for firmware authors; its worked examples are
the golden vectors of :mod:`.golden` (``golden_vectors.json``), which the tests check
against these codecs and the document. This package imports nothing else of
``workbench`` but the error root (:mod:`workbench.errors`).
"""

from __future__ import annotations
