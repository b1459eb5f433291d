"""Versioned snapshots and summaries of a dataset.

A snapshot is a manifest of exactly what the dataset holds (every recording's
samples hash, labels, regions, rate, channels) saved under the SHA-256 of its
canonical JSON. A trained model that names the hash names its data: the
same hash means the same bytes and labels, and :func:`verify_snapshot` says
whether the folder still holds them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from .folders import _write_json_atomic
from .store import Dataset, DatasetError, _now_iso


def _manifest(dataset: Dataset) -> dict:
    recs = []
    for meta in sorted(dataset.recordings(), key=lambda m: m.id):
        recs.append({"id": meta.id, "samples_sha256": dataset.content_hash(meta.id),
                     "samples": meta.samples, "channels": list(meta.channels),
                     "dtype": meta.dtype, "scale": meta.scale, "rate_hz": meta.rate_hz,
                     "label": meta.label,
                     "regions": [[r.start, r.end, r.label] for r in meta.regions],
                     "split": meta.extra.get("split")})
    return {"format": "workbench-snapshot", "version": 1, "recordings": recs}


def _hash(manifest: dict) -> str:
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    id: str
    """SHA-256 of the manifest: the dataset version's name."""
    created: str
    note: str
    recordings: int

    @property
    def short(self) -> str:
        return self.id[:12]


def snapshot(dataset: Dataset, note: str = "") -> Snapshot:
    """Freeze the dataset's present contents. Same contents, same id (idempotent)."""
    manifest = _manifest(dataset)
    sid = _hash(manifest)
    d = dataset.root / "snapshots"
    d.mkdir(exist_ok=True)
    path = d / f"{sid}.json"
    if path.exists():
        data = json.loads(path.read_text())
    else:
        data = {"id": sid, "created": _now_iso(), "note": note, "manifest": manifest}
        _write_json_atomic(path, data)
    return Snapshot(sid, data["created"], data["note"], len(manifest["recordings"]))


def snapshots(dataset: Dataset) -> list[Snapshot]:
    """Every snapshot taken, oldest first."""
    out = []
    for path in sorted((dataset.root / "snapshots").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        out.append(Snapshot(data["id"], data["created"], data.get("note", ""),
                            len(data["manifest"]["recordings"])))
    return sorted(out, key=lambda s: s.created)


def load_manifest(dataset: Dataset, snapshot_id: str) -> dict:
    """The manifest of a snapshot (a unique prefix of its id is enough).

    Raises DatasetError if the id is not hexadecimal (it names a file), matches no snapshot
    or more than one, or its manifest was edited."""
    if not isinstance(snapshot_id, str) or not re.fullmatch(r"[0-9a-f]{1,64}", snapshot_id):
        raise DatasetError(f"{snapshot_id!r} is not a snapshot id (hexadecimal, as "
                           "snapshot() returns it)")
    matches = list((dataset.root / "snapshots").glob(f"{snapshot_id}*.json"))
    if len(matches) != 1:
        raise DatasetError(f"{'no' if not matches else 'more than one'} snapshot matches "
                           f"{snapshot_id!r}")
    data = json.loads(matches[0].read_text())
    if _hash(data["manifest"]) != data["id"]:
        raise DatasetError(f"snapshot {data['id'][:12]} was edited: its manifest no longer "
                           "matches its id")
    return data["manifest"]


def verify_snapshot(dataset: Dataset, snapshot_id: str) -> list[str]:
    """Differences between a snapshot and the folder now (empty: identical)."""
    then = {r["id"]: r for r in load_manifest(dataset, snapshot_id)["recordings"]}
    now = {r["id"]: r for r in _manifest(dataset)["recordings"]}
    diffs = [f"{rid}: dropped since the snapshot" for rid in sorted(then.keys() - now.keys())]
    diffs += [f"{rid}: added since the snapshot" for rid in sorted(now.keys() - then.keys())]
    for rid in sorted(then.keys() & now.keys()):
        for key in then[rid]:
            if then[rid][key] != now[rid][key]:
                diffs.append(f"{rid}: {key} changed")
    return diffs


@dataclass(frozen=True)
class Summary:
    """Counts and durations per label, for class balance at a glance."""

    recordings: int
    duration_s: float
    per_label: dict[str, dict]
    """label -> {"recordings": n, "seconds": s, "share": fraction of labelled seconds}."""
    unlabelled: int
    interrupted: int
    lost_samples: int

    def table(self) -> str:
        lines = [f"{'label':16s} {'recordings':>10s} {'seconds':>9s} {'share':>6s}"]
        for label, row in self.per_label.items():
            lines.append(f"{label:16s} {row['recordings']:10d} {row['seconds']:9.1f} "
                         f"{row['share']:6.1%}")
        lines.append(f"{self.recordings} recordings, {self.duration_s:.1f} s, "
                     f"{self.unlabelled} unlabelled, {self.interrupted} interrupted, "
                     f"{self.lost_samples} samples lost")
        return "\n".join(lines)

    def imbalance(self) -> float:
        """Largest over smallest labelled duration (1.0 is balanced)."""
        secs = [r["seconds"] for r in self.per_label.values() if r["seconds"] > 0]
        return max(secs) / min(secs) if secs else 1.0


def summarize(dataset: Dataset) -> Summary:
    """Recordings and seconds per label (regions count by their own length)."""
    recs: Counter = Counter()
    secs: defaultdict = defaultdict(float)
    unlabelled = interrupted = lost = 0
    total = 0.0
    for meta in dataset.recordings():
        total += meta.duration_s
        interrupted += meta.interrupted
        lost += meta.lost
        if meta.regions:
            for r in meta.regions:
                secs[r.label] += (r.end - r.start) / meta.rate_hz
            for label in {r.label for r in meta.regions}:
                recs[label] += 1
        elif meta.label:
            secs[meta.label] += meta.duration_s
            recs[meta.label] += 1
        else:
            unlabelled += 1
    labelled = sum(secs.values()) or 1.0
    per_label = {label: {"recordings": recs[label], "seconds": secs[label],
                         "share": secs[label] / labelled} for label in sorted(secs)}
    return Summary(len(dataset), total, per_label, unlabelled, interrupted, lost)
