"""The trace's outcomes and ``trace --all``'s rows are built without validation
(``perf.trusted_model``): each one must be the record validation builds from the same
values — same fields, same fields set, same JSON — on every recorded lab snapshot, with and
without replies and hops."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from labreport import snapshot as snapmod
from labreport.analysis import analyze
from labreport.analysis.trace import build_world, run_flow
from labreport.analysis.trace.fronts import FrontRow, all_fronts
from labreport.analysis.trace.model import Flow, Outcome

FIX = Path(__file__).parent / "fixtures" / "trace-reply"
NAMES = sorted(p.name[: -len(".json.gz")] for p in FIX.glob("*.json.gz"))


def _validated(cls: type, rec: object) -> object:
    """``rec`` built again through validation from the fields it was given."""
    return cls(**{k: getattr(rec, k) for k in rec.model_fields_set})  # type: ignore[attr-defined]


def _same(rec: object, cls: type) -> None:
    good = _validated(cls, rec)
    assert rec == good
    assert rec.model_fields_set == good.model_fields_set  # type: ignore[attr-defined]
    if isinstance(rec, Outcome):  # its hops are plain objects: Outcome.to_json is its JSON
        assert json.dumps(rec.to_json()) == json.dumps(good.to_json())  # type: ignore[attr-defined]
    else:
        assert rec.model_dump_json() == good.model_dump_json()  # type: ignore[attr-defined]
    assert list(rec.__dict__) == list(good.__dict__)


@pytest.mark.parametrize("name", NAMES)
def test_rows_and_outcomes_equal_validated(name: str) -> None:
    snap = snapmod.from_dict(json.loads(gzip.decompress((FIX / f"{name}.json.gz").read_bytes())))
    analysis = analyze(snap)
    world = build_world(snap, analysis)
    checked = 0
    for replies in (False, True):
        rows = all_fronts(world, analysis, replies=replies)
        assert rows, f"{name}: no fronts"
        for row in rows:
            _same(row, FrontRow)
            checked += 1
            ip, _, port = row.front.rpartition(":")
            if not port.isdigit() or row.source_kind == "node":
                continue
            for hops in (False, True):
                res = run_flow(world, Flow(src=row.source, dst=ip, dport=int(port), entry_node=world_node(world),
                                           entry="outside"), hops=hops, replies=replies)
                for o in res.outcomes:
                    _same(o, Outcome)
                    assert hops or not o.hops
                    checked += 1
    assert checked > 10


def world_node(world: object) -> str:
    return next(iter(world.nodes))  # type: ignore[attr-defined]
