"""A multi-node run writes each node to disk the moment it arrives, then assembles.

Layout inside the snapshot directory while a run is going on::

    DIR/run.json              the run: planned node names (in order), tool version, start time
    DIR/nodes/00003-web1.json one NodeSnapshot each, written atomically as the node arrives

When every node is in (or the run is stopped by Ctrl-C, SIGTERM or ``--deadline``),
``assemble`` streams the parts into ``DIR/snapshot.json`` (atomically: a temporary file,
then rename) without holding more than one node in memory, and removes the parts.

A run that is killed outright (SIGKILL, a power cut) leaves ``run.json`` and the parts of the
nodes it finished: ``labreport.snapshot.load(DIR)`` then loads them as a partial snapshot
(``labreport.snapshot.load_partial``), every node that had not arrived marked failed with the reason. So memory
stays bounded by one node whatever the cluster's size, and a killed run keeps what it had.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import shutil
from pathlib import Path
from typing import IO, Optional, Sequence

from labreport.atomic import atomic_open, atomic_write
from labreport.snapshot import PARTS_DIR, RUN_FILE, NodeSnapshot, Snapshot, _parts_by_index, is_partial_run, load_partial
from labreport.snapshot import _missing_node as _missing

__all__ = ["PARTS_DIR", "RUN_FILE", "Parts", "is_partial_run", "load_partial", "part_name", "stub"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def part_name(index: int, node: str) -> str:
    return f"{index:05d}-{_UNSAFE.sub('_', node)[:80]}.json"


def stub(node: NodeSnapshot) -> NodeSnapshot:
    """What the run keeps in memory of a node once its part is on disk."""
    return NodeSnapshot(name=node.name, source=node.source, status=node.status, error=node.error,
                        collected_at=node.collected_at)


class Parts:
    """The parts of one run in ``root`` (the snapshot directory, or a temporary one)."""

    def __init__(self, root: Path, nodes: Sequence[str], *, tool_version: Optional[str] = None,
                 source: str = "ssh", redact: bool = True):
        self.root = Path(root)
        self.redact = redact  # each part is redacted before it reaches the disk (labreport.redact)
        self.redacted_kinds: set[str] = set()
        self.nodes = list(nodes)
        self.dir = self.root / PARTS_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.json"):  # an earlier killed run's parts are not this run's
            old.unlink()
        _write_atomic(self.root / RUN_FILE, json.dumps({
            "labreport_run": 1, "tool_version": tool_version, "started_at": _now(), "source": source,
            "nodes": self.nodes}))

    def write(self, index: int, node: NodeSnapshot) -> NodeSnapshot:
        """Write one node's part (atomically, redacted unless asked not to); returns the stub
        to keep in memory."""
        if self.redact:
            from labreport.redact import redact_value

            data, kinds = redact_value(node.model_dump(mode="json"))
            node = NodeSnapshot.model_validate(data)
            self.redacted_kinds.update(kinds)
        _write_atomic(self.dir / part_name(index, self.nodes[index]), node.model_dump_json())
        return stub(node)

    def assemble(self, snap: Snapshot, out: Optional[IO[str]] = None) -> Optional[Path]:
        """Write ``snap`` (its own nodes ignored) with the parts as its nodes, to ``out`` or
        atomically to ``root/snapshot.json``; then remove the parts and run.json."""
        if out is not None:
            _stream(self, snap, out)
            return None
        target = self.root / "snapshot.json"
        with atomic_open(target) as fh:
            _stream(self, snap, fh)
        self.cleanup()
        return target

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            (self.root / RUN_FILE).unlink()
        except OSError:
            pass


def _write_atomic(path: Path, text: str) -> None:
    # no fsync for a part or run.json: one per node would cost a disk flush per arrival,
    # and the assembled snapshot.json is fsynced
    atomic_write(path, text, fsync=False)


def _stream(parts: Parts, snap: Snapshot, fh: IO[str]) -> None:
    header = snap.model_dump(mode="json", exclude={"nodes", "cluster"})
    text = json.dumps(header, indent=1, ensure_ascii=False)
    fh.write(text[:-2] + ',\n "nodes": [\n')  # drop the closing "\n}"
    found = _parts_by_index(parts.root)
    for i, name in enumerate(parts.nodes):
        if i:
            fh.write(",\n")
        p = found.get(i)
        if p is not None:
            with open(p, encoding="utf-8") as part:
                shutil.copyfileobj(part, fh)
        else:
            fh.write(_missing(name, "the run stopped before this node finished").model_dump_json())
    fh.write('\n ],\n "cluster": ')
    fh.write(snap.cluster.model_dump_json() if snap.cluster is not None else "null")
    fh.write("\n}\n")
