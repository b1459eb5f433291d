"""The update manifest: what travels with a model image, and how a runner proves it runs it.

An :class:`UpdateManifest` names a model image (name, version, size, SHA-256), says what
it needs (TFLite Micro's arena, measured on the host) and what it takes and gives (its
input and output tensors), and carries a few *golden* input/output pairs that TFLite
Micro computed on the host. A runner that loads the image runs the golden inputs and
must reproduce the golden outputs bit for bit (:meth:`UpdateManifest.self_test`): the
same TFLM kernels run on the host, the virtual board and the board.

Call order: :func:`make_manifest` (probes the model in a child process, then runs it in
this one), :meth:`UpdateManifest.to_json` to store or send it, :meth:`UpdateManifest.from_json`
to read it back (validating), :meth:`UpdateManifest.check` on the image received, then
:meth:`UpdateManifest.self_test` with any runner. The JSON schema is in docs/deploy.md
("Update manifest"). The data classes and both encodings (JSON, and the CBOR of an update
image's manifest TLV) live in :mod:`workbench.protocol.manifest`, where a device can read
them; this module re-exports them and adds :func:`make_manifest`, which needs TFLite Micro.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..protocol.manifest import (
    MANIFEST_FORMAT,
    MANIFEST_FORMAT_VERSION,
    GoldenPair,
    ManifestError,
    PairCheck,
    SelfTestResult,
    TensorSpec,
    UpdateManifest,
    _le_bytes,
)

__all__ = ["MANIFEST_FORMAT", "MANIFEST_FORMAT_VERSION", "GoldenPair", "ManifestError",
           "PairCheck", "SelfTestResult", "TensorSpec", "UpdateManifest", "make_manifest"]

#: Largest arena :func:`make_manifest` tries when it measures the model's need.
_ARENA_SEARCH_UPPER = 4 * 1024 * 1024


def _golden_input(rng: np.random.Generator, spec: TensorSpec) -> np.ndarray:
    dt = np.dtype(spec.dtype)
    if dt.kind == "f":
        return rng.standard_normal(spec.shape).astype(dt)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=spec.shape, dtype=dt, endpoint=True)
    if dt.kind == "b":
        return rng.integers(0, 1, size=spec.shape, endpoint=True).astype(dt)
    raise ManifestError(f"input '{spec.name}' has dtype {spec.dtype}: golden inputs cannot be "
                        "drawn for it")


def _spec(t: Any) -> TensorSpec:
    try:
        np.dtype(t.dtype)
    except TypeError:
        raise ManifestError(f"tensor '{t.name}' has type {t.dtype}, which numpy cannot hold; "
                            "a manifest cannot describe it") from None
    return TensorSpec(name=t.name, shape=tuple(int(d) for d in t.shape), dtype=t.dtype,
                      scale=None if t.scale is None else float(t.scale),
                      zero_point=None if t.zero_point is None else int(t.zero_point))


def make_manifest(model_bytes: bytes, *, name: str, version: int, n_golden: int = 4,
                  seed: int = 0) -> UpdateManifest:
    """Build the update manifest of a ``.tflite`` image.

    Call order: :func:`workbench.tflite.inspect_model` (the tensor specs), then
    :func:`workbench.tflite.min_arena` (the needed arena; child processes), then a
    :class:`workbench.tflite.TflmRunner` in this process given that probe (no second
    probe) runs ``n_golden`` inputs drawn from ``numpy.random.default_rng(seed)``: the
    full range of integer dtypes, standard normal for floats. Same bytes and seed give
    the same manifest.

    Raises:
        ManifestError: an empty name, a version or ``n_golden`` below 1, a tensor dtype
            that cannot be drawn or held.
        ModelError: the bytes are not a ``.tflite`` model.
        ProbeError: the model does not run in TFLite Micro (``exc.result.failure`` says why).
    """
    from ..tflite import TflmRunner, inspect_model, min_arena

    if not isinstance(name, str) or not name.strip():
        raise ManifestError("make_manifest needs name=: the model's name, e.g. 'kws'")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ManifestError(f"version must be an int >= 1, got {version!r}")
    if isinstance(n_golden, bool) or not isinstance(n_golden, int) or n_golden < 1:
        raise ManifestError(f"n_golden must be an int >= 1, got {n_golden!r}")
    data = bytes(model_bytes)
    info = inspect_model(data)
    inputs = tuple(_spec(t) for t in info.inputs)
    outputs = tuple(_spec(t) for t in info.outputs)
    rng = np.random.default_rng(seed)
    drawn = [[_golden_input(rng, s) for s in inputs] for _ in range(n_golden)]
    fit = min_arena(data, _ARENA_SEARCH_UPPER)
    runner = TflmRunner(data, fit.needed_bytes, probed=fit.probe)
    golden = []
    for xs in drawn:
        ys = runner.invoke(xs)
        golden.append(GoldenPair(tuple(_le_bytes(x).hex() for x in xs),
                                 tuple(_le_bytes(np.asarray(y, dtype=s.dtype)).hex()
                                       for y, s in zip(ys, outputs))))
    return UpdateManifest(name=name, version=version, size=len(data),
                          sha256=hashlib.sha256(data).hexdigest(), arena_bytes=fit.needed_bytes,
                          inputs=inputs, outputs=outputs, golden=tuple(golden))
