"""Data-driven parser tests (like jc): every ``tests/fixtures/parsers/<parser>/X.out`` is a
real command output (seed reports, captured on this machine, or quoted from public
sources — see the README there) and ``X.json`` next to it holds the records expected,
written from reading the output by hand. One test per pair, an empty-input test per
parser, and a conformance test that EVERY registered parser has at least one pair (the
rule-set parsers iptables-save, nft and ipvsadm included: their one record is the whole
rule set). Other files beside the pairs (decoder expectations, ground truth, inputs of
lab tests) are read by their own tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labreport import parsers
from labreport.errors import ParseError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "parsers"
SEEDS = Path(__file__).resolve().parent / "fixtures" / "seeds"
PAIRS = sorted(FIXTURES.glob("*/*.out"))


def parser_module(name: str):
    """A registered parser."""
    return parsers.get(name)


def _subset(expected: Any, actual: Any, where: str = "") -> None:
    """Every key in expected has the same value in actual (recursively); lists match
    element by element and have the same length."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for k, v in expected.items():
            assert k in actual, f"{where}.{k}: missing (have {sorted(actual)})"
            _subset(v, actual[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(expected) == len(actual), f"{where}: {len(actual)} items, expected {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            _subset(e, a, f"{where}[{i}]")
    else:
        assert expected == actual, f"{where}: {actual!r} != expected {expected!r}"


def _records(name: str, value: Any) -> list[Any]:
    """The parse result as a list of records: a rule-set parser returns one record."""
    return value if isinstance(value, list) else [value]


def _as_dict(name: str, value: Any) -> dict[str, Any]:
    if name == "kubectl":
        out = dict(value)
        spec = value.get("spec") or {}
        tspec = (spec.get("template") or {}).get("spec", spec)
        if "containers" in tspec:
            out["spec_containers"] = [c["name"] for c in tspec["containers"]]
        return out
    out = value.model_dump(mode="json")
    if name == "iptables-save":  # a rule is stored as [spec, line_no, counters]: compared as the record it is
        for table in out["tables"].values():
            for chain in table["chains"].values():
                chain["rules"] = [{"spec": r.spec, "line_no": r.line_no, "counters": None if r.counters is None else
                                   list(r.counters)} for r in value.tables[table["name"]].chains[chain["name"]].rules]
    return out


@pytest.mark.parametrize("path", PAIRS, ids=[f"{p.parent.name}/{p.stem}" for p in PAIRS])
def test_fixture_pair(path: Path) -> None:
    name = path.parent.name
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    result = parser_module(name).parse(path.read_text(encoding="utf-8"), source=path.name)
    assert result.parser == name
    got = [_as_dict(name, v) for v in _records(name, result.value)]
    _subset(expected["records"], got, name)
    assert [w.line_no for w in result.warnings] == expected["warning_lines"], [
        (w.line_no, w.message) for w in result.warnings
    ]
    for w in result.warnings:
        assert w.source == path.name and w.parser == name


@pytest.mark.parametrize("path", PAIRS, ids=[f"{p.parent.name}/{p.stem}" for p in PAIRS])
def test_fixture_is_detected_as_its_parser(path: Path) -> None:
    """Format detection (used by `labreport import`) picks the right parser for each real output."""
    from labreport.importer import _detect_among

    every = list(parsers.load_all())
    assert _detect_among(path.read_text(encoding="utf-8"), every) == path.parent.name
    if path.parent.name in parsers.PARSERS:
        assert parsers.detect(path.read_text(encoding="utf-8")) == path.parent.name


ALL = list(parsers.PARSERS)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("text", ["", "   \n\t\n", b"", b"\x00\x01\x02garbage\x00"])
def test_empty_or_binary_input_is_a_parse_error(name: str, text: Any) -> None:
    with pytest.raises(ParseError) as exc:
        parser_module(name).parse(text, source="empty.txt")
    assert "empty.txt" in str(exc.value)


@pytest.mark.parametrize("name", ALL)
def test_wrong_format_is_a_parse_error(name: str) -> None:
    other = "wrong.txt: this is a paragraph of a lab report, not a command output.\n" * 3
    with pytest.raises(ParseError):
        parser_module(name).parse(other, source="wrong.txt")


def test_every_registered_parser_has_fixtures() -> None:
    loaded = parsers.load_all()
    assert list(loaded) == list(parsers.PARSERS)
    for name, mod in loaded.items():
        pairs = list((FIXTURES / name).glob("*.out"))
        assert pairs, f"parser {name} has no fixture pair in tests/fixtures/parsers/{name}/"
        assert all(p.with_suffix(".json").exists() for p in pairs), name
        assert mod.INFO.name == name
        assert callable(mod.INFO.detect) and callable(mod.parse)


def test_every_fixture_directory_is_a_registered_parser() -> None:
    # one layout for every parser: tests/fixtures/parsers/<parser>/; bridge-fdb is read by
    # ip_addr.parse_fdb (no registry entry: see the README there)
    dirs = {d.name for d in FIXTURES.iterdir() if d.is_dir()}
    assert dirs - {"bridge-fdb"} == set(parsers.PARSERS)


# ----------------------------------------------------------------------------- specific facts


def test_pdf_wrapped_etcd_line_is_joined_like_the_repaired_copy() -> None:
    from labreport.parsers import ps

    wrapped = ps.parse((SEEDS / "seed000/master-ps-aux-grep-kube.wrapped.txt").read_text()).value
    clean = ps.parse((SEEDS / "seed000/master-ps-aux-grep-kube.txt").read_text()).value
    assert len(wrapped) == len(clean) == 1
    cmd = wrapped[0].command
    assert cmd == clean[0].command
    # flags that the PDF broke in the middle of their name or value
    for flag in ("--initial-cluster=master=https://192.168.1.12:2380", "--key-file=/etc/kubernetes/pki/etcd/server.key",
                 "--peer-client-cert-auth=true", "--listen-metrics-urls=http://127.0.0.1:2381",
                 "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt"):
        assert f" {flag}" in cmd
    assert " - " not in cmd and "-- " not in cmd


def test_prompt_and_command_line_are_skipped_not_warned() -> None:
    from labreport.parsers import ps

    text = (SEEDS / "seed001/worker-ps-aux-grep-kube.txt").read_text()
    assert text.startswith("root@k8s-worker:/etc/containerd# ps aux | grep kube")
    r = ps.parse(text)
    assert r.warnings == []
    assert [p.pid for p in r.value] == [4955, 5104, 5444, 14679]
    assert r.value[-1].command == "grep --color=auto kube"


def test_truncated_commands_are_marked() -> None:
    from labreport.parsers import ps

    text = ("root      1874  0.0  0.0   2920  1868 ?        S    09:04   0:00 /usr/bin/kubelet --config=/var/lib/kube.....\n"
            "root      1875  0.0  0.0   2920  1868 ?        S    09:04   0:00 kube-apiserver --advertise-address=1.2.3.4 ...\n")
    procs = ps.parse(text).value
    assert [p.truncated for p in procs] == [True, True]
    assert procs[0].command == "/usr/bin/kubelet --config=/var/lib/kube"
    assert not procs[1].command.endswith(".")


def test_unreadable_line_becomes_a_warning_with_its_number() -> None:
    from labreport.parsers import ps

    text = "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND\nroot 12 0.0 0.1 100 20 ? S 10:00 0:00 sleep 1\nroot 13 x y\n"
    r = ps.parse(text, source="p.txt")
    assert [p.pid for p in r.value] == [12]
    assert [(w.line_no, w.source) for w in r.warnings] == [(3, "p.txt")]


def test_docker_inspect_fragment_takes_the_inspected_name() -> None:
    from labreport.parsers import docker_inspect

    text = (SEEDS / "seed000/worker-docker-inspect-networkmode.wrapped.txt").read_text()
    (c,) = docker_inspect.parse(text, name="k8s_viewer_pod_default_05260c21-c524-41c7-82e7-ea61f09f4f2f_0").value
    assert c.network_mode == "container:23f2f68378cc2b4f42d9f01845882040e7390b84736c7e05196fafb55f1fed72"
    assert (c.pod_name, c.container_name, c.is_sandbox, c.fragment) == ("pod", "viewer", False, True)


def test_same_link_printed_twice_is_merged() -> None:
    """`ip link show eth0` then `ip addr` in one paste: one eth0 with the addresses."""
    from labreport.parsers import ip_addr

    links = ip_addr.parse((SEEDS / "seed001/pod-downloader-ip-link-addr.txt").read_text()).value
    assert [lk.name for lk in links] == ["lo", "eth0"]
    assert [a.local for a in links[1].addresses] == ["10.244.1.2", "fe80::bcab:81ff:feb0:b772"]


def test_kubectl_list_from_the_api_is_unwrapped_with_item_kinds() -> None:
    """A raw API list (items without kind), from the cluster owner's API fixtures."""
    from labreport.parsers import kubectl

    path = Path(__file__).resolve().parent / "fixtures" / "k8s-api" / "services.json"
    raw = json.loads(path.read_text())
    objs = kubectl.parse(path.read_text()).value
    assert len(objs) == len(raw["items"]) > 0
    assert {o["kind"] for o in objs} == {"Service"}
    assert [o["metadata"]["name"] for o in objs] == [i["metadata"]["name"] for i in raw["items"]]


def test_kubectl_yaml_error_after_a_document_keeps_it() -> None:
    from labreport.parsers import kubectl

    good = (SEEDS / "seed001/testservice.yaml").read_text()
    r = kubectl.parse(good + "---\nkind: Pod\nmetadata: {name: [unclosed\n", source="m.yaml")
    assert [o["kind"] for o in r.value] == ["Service"]
    assert len(r.warnings) == 1 and "YAML error" in r.warnings[0].message
