"""Policy routing through ``labreport import``: `ip rule` (text or -j) and `ip route show
table all` pasted beside `ip addr` and `iptables-save` of the kernel lab's node
(tests/fixtures/trace-policy/, recorded by ``python3 -m tests.support.capture_policy``; see
the README there) give the same routes as the kernel's `ip route get` answers recorded at the
same moment. Bad `ip rule` input is a clear error or a marked partial result, never a
traceback. No root needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labreport import snapshot as snapmod
from labreport.analysis import analyze
from labreport.analysis.trace import Flow, build_world, run_flow
from labreport.status import ExitStatus
from tests.test_trace_policy_kernel import FORWARDED, check_same, model

FIX = Path(__file__).resolve().parent / "fixtures" / "trace-policy"
ANSWERS = json.loads((FIX / "kernel-answers.json").read_text())


def _import(cli, tmp_path: Path, *rule_files: Path, name: str = "snap") -> snapmod.Snapshot:
    out = tmp_path / name
    args = ["import", "--node", "r", "--ip-addr", FIX / "ip-addr.out", "--ip-route", FIX / "ip-route-table-all.out",
            "--iptables-save", FIX / "iptables-save.out"]
    for f in rule_files:
        args += ["--ip-rule", f]
    code, _, err = cli(*args, "--out", out)
    assert code == 0, err
    return snapmod.load(out)


@pytest.mark.parametrize("rules", ["ip-rule.out", "ip-j-rule.out"])
def test_imported_rules_route_like_the_kernel(cli, tmp_path, rules):
    snap = _import(cli, tmp_path, FIX / rules, FIX / "ip-6-rule.out")
    host = snap.nodes[0].netns[0]
    assert len(host.rules) == sum(len((FIX / f).read_text().strip().splitlines()) for f in ("ip-rule.out", "ip-6-rule.out"))
    assert sum(r.family == "inet6" for r in host.rules) == 5  # the 3 rules and the 2 defaults
    assert any(e.command == ("ip -j rule" if "-j" in rules else "ip rule") for e in snap.nodes[0].evidence)
    world = build_world(snap, analyze(snap))
    assert len(ANSWERS) == len(FORWARDED)
    for case in FORWARDED:
        check_same(case, ANSWERS[case.id]["answer"], *model(world, case))
    res = run_flow(world, Flow(src="192.168.71.2", dst="10.99.99.9", dport=9000, proto="udp", entry="outside",
                               entry_node="r", entry_dev="lan0"))
    assert not any("ip rules were not collected" in n for n in res.notes), res.notes


def test_without_rules_the_defaults_stand_and_a_note_says_so(cli, tmp_path):
    snap = _import(cli, tmp_path)
    world = build_world(snap, analyze(snap))
    res = run_flow(world, Flow(src="192.168.71.130", dst="10.99.99.9", dport=9000, proto="udp", entry="outside",
                               entry_node="r", entry_dev="lan0"))
    (o,) = res.outcomes
    hop = [h for h in o.hops if h.kind == "route"][-1]
    # the main table decides (rule 32766 assumed), not table 100 of the real rules
    assert (hop.table, hop.device, hop.rule) == ("main", "up1", "32766: from all lookup main")
    assert "default rules assumed" in (hop.detail or "")
    assert any("ip rules were not collected" in n and "100" in n for n in res.notes), res.notes


def test_garbage_ip_rule_is_a_clear_error(cli, tmp_path):
    bad = tmp_path / "rule.txt"
    bad.write_text("this is what I typed\nno rules here, sorry\n")
    code, out, err = cli("import", "--ip-rule", bad, "--out", tmp_path / "x")
    assert code != 0 and "Traceback" not in err + out
    assert "rule.txt" in err and "ip rule" in err
    # another command's output given as --ip-rule names the right option
    code, out, err = cli("import", "--ip-rule", FIX / "ip-route-table-all.out", "--out", tmp_path / "y")
    assert code != 0 and "Traceback" not in err + out and "--ip-route" in err, err


def test_partly_readable_ip_rule_keeps_the_rest_and_warns(cli, tmp_path):
    text = (FIX / "ip-rule.out").read_text().splitlines()
    text.insert(3, "150:\tfrom all frobnicate 7 lookup 9")
    text.insert(5, "<<garbled line from a PDF>>")
    f = tmp_path / "rule.txt"
    f.write_text("\n".join(text) + "\n")
    snap = _import(cli, tmp_path, f)
    node = snap.nodes[0]
    assert len(node.netns[0].rules) == len(text) - 2
    lines = sorted(w.line_no for w in node.warnings if w.parser == "ip-rule")
    assert lines == [4, 6] and any("frobnicate" in w.message for w in node.warnings)
    # --keep-going: an unreadable file marks the node partial, the others are kept
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01garbage")
    code, _, err = cli("import", "--node", "r", "--ip-rule", bad, "--ip-rule", FIX / "ip-rule.out", "--keep-going",
                       "--out", tmp_path / "partial")
    assert code == ExitStatus.PARTIAL and "Traceback" not in err
    snap = snapmod.load(tmp_path / "partial")
    assert snap.nodes[0].status == "partial" and len(snap.nodes[0].netns[0].rules) == 21


@pytest.mark.parametrize("lang,title,word", [("en", "ip rules (policy routing)", "Matches"),
                                             ("zh", "ip rule（策略路由）", "匹配条件")])
def test_report_lists_the_non_default_rules(cli, tmp_path, lang, title, word):
    from labreport.render.report import render_report

    snap = _import(cli, tmp_path, FIX / "ip-rule.out")
    res = render_report(snap, fmt="md", lang=lang, out_dir=tmp_path / lang)
    assert not res.missing_keys
    text = res.main.read_text("utf-8")
    assert title in text and word in text
    section = text[text.index(title):]
    section = section[:section.find("\n#", 1) if "\n#" in section[1:] else len(section)]
    rows = [ln for ln in section.splitlines() if ln.startswith("| IPv4")]
    non_default = [ln for ln in (FIX / "ip-rule.out").read_text().splitlines()
                   if ln.split(":")[0] not in ("0", "32766", "32767")]
    assert len(rows) == len(non_default) == 18
    assert any("`from 192.168.71.128/25`" in r and "`lookup 100`" in r for r in rows), rows
    assert any("`not from all to 10.96.0.0/12`" in r for r in rows), rows
    assert not any(r.split("|")[2].strip() in ("0", "32766", "32767") for r in rows)
    # with only the kernel's defaults (an import of a fresh namespace's ip rule): no section
    fresh = Path(__file__).resolve().parent / "fixtures" / "parsers" / "ip-rule" / "here-ip-rule-defaults.out"
    snap = _import(cli, tmp_path, fresh, name="defaults")
    assert len(snap.nodes[0].netns[0].rules) == 3
    res = render_report(snap, fmt="md", lang=lang, out_dir=tmp_path / (lang + "-defaults"))
    assert title not in res.main.read_text("utf-8")


def test_report_escapes_rule_text(cli, tmp_path):
    """An interface name is free text in a paste: it reaches the HTML escaped."""
    from labreport.render.report import render_report

    f = tmp_path / "rule.txt"
    f.write_text("0:\tfrom all lookup local\n100:\tfrom all iif <b>x</b> lookup 100\n32766:\tfrom all lookup main\n")
    snap = _import(cli, tmp_path, f)
    res = render_report(snap, fmt="html", lang="en", out_dir=tmp_path / "html")
    html = res.main.read_text("utf-8")
    assert "iif &lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def _route(cli, snap_dir: Path, *extra: str) -> tuple[dict, dict]:
    code, out, err = cli("trace", snap_dir, "--from", "192.168.71.2", "--to", "10.96.5.5:5300", "--proto", "udp",
                         "--via", "r", *extra, "--json")
    assert code == 0, err
    data = json.loads(out)
    (o,) = data["outcomes"]
    return data, [h for h in o["hops"] if h["kind"] == "route"][-1]


def test_trace_mark_and_iif_choose_the_rule_the_kernel_chose(cli, tmp_path):
    """`trace --mark` sets the packet's fwmark before the first hook, `--iif` the device it
    arrives on: each changes the table the recorded rules pick, as the kernel's answers say."""
    _import(cli, tmp_path, FIX / "ip-rule.out")
    snap_dir = tmp_path / "snap"
    # udp/5300: no mangle rule marks it, so the mark is only the one --mark gives
    plain = ANSWERS["192.168.71.2>10.96.5.5:udp/5300@lan0"]["answer"]
    marked = ANSWERS["192.168.71.2>10.96.5.5:udp/5353@lan0+0x10"]["answer"]  # the mark decides, not the port
    assert plain["table"] != marked["table"]
    data, hop = _route(cli, snap_dir, "--iif", "lan0")
    assert (hop["table"], hop["device"]) == (plain["table"], plain["dev"]) and data["flow"]["mark"] == 0
    for mark in ("0x10/0xff", "16", "0x10"):
        data, hop = _route(cli, snap_dir, "--iif", "lan0", "--mark", mark)
        assert (hop["table"], hop["device"]) == (marked["table"], marked["dev"]), (mark, hop)
        assert hop["rule"].startswith("150:") and data["flow"]["mark"] == 0x10
        assert "mark 0x10" in data["description"] and "iif lan0" in data["description"]
    # bits the rule's mask leaves out do not matter: 0x110/0xfff still matches fwmark 0x10/0xff
    _, hop = _route(cli, snap_dir, "--iif", "lan0", "--mark", "0x110/0xfff")
    assert hop["table"] == marked["table"]
    _, hop = _route(cli, snap_dir, "--iif", "lan0", "--mark", "0x11")  # one bit inside the mask differs
    assert hop["table"] == plain["table"]
    # --iif lan1: rule 200 `iif lan1 lookup 300`, as the kernel answered for a packet on lan1
    lan1 = ANSWERS["192.168.72.2>10.99.99.9:udp/9000@lan1"]["answer"]
    code, out, err = cli("trace", snap_dir, "--from", "192.168.72.2", "--to", "10.99.99.9:9000", "--proto", "udp",
                         "--via", "r", "--iif", "lan1", "--json")
    assert code == 0, err
    hop = [h for h in json.loads(out)["outcomes"][0]["hops"] if h["kind"] == "route"][-1]
    assert (hop["table"], hop["device"]) == (lan1["table"], lan1["dev"]) == ("300", "up2")
    assert json.loads(out)["flow"]["entry_dev"] == "lan1"
    # the text header line shows both
    code, out, err = cli("trace", snap_dir, "--from", "192.168.71.2", "--to", "10.96.5.5:5300", "--proto", "udp",
                         "--via", "r", "--iif", "lan0", "--mark", "0x10/0xff")
    assert code == 0, err
    assert out.splitlines()[0].endswith("[udp, mark 0x10/0xff, iif lan0]"), out
    assert "rule 150 `from all fwmark 0x10/0xff lookup 200`" in out


@pytest.mark.parametrize("args,words", [
    (["--mark", "zz"], ["--mark", "'zz'", "not a number"]),
    (["--mark", "0x10/"], ["--mark", "mask", "not a number"]),
    (["--mark", "0x100/0xff"], ["--mark", "outside the mask 0xff"]),
    (["--mark", "0x100000000"], ["--mark", "32 bits"]),
    (["--mark", "-1"], ["--mark", "32 bits"]),
    (["--iif", "eth9"], ["--iif", "no device 'eth9' on r", "lan0, lan1, lo, up1, up2"]),
])
def test_trace_bad_mark_or_iif_is_a_click_error(cli, tmp_path, args, words):
    _import(cli, tmp_path, FIX / "ip-rule.out")
    code, out, err = cli("trace", tmp_path / "snap", "--from", "192.168.71.2", "--to", "10.96.5.5:5300", "--via", "r",
                         *args)
    assert code == 2 and "Traceback" not in out + err, (code, out, err)
    assert all(w in err for w in words), err


def test_trace_iif_is_for_an_outside_packet(cli, tmp_path):
    _import(cli, tmp_path, FIX / "ip-rule.out")
    code, out, err = cli("trace", tmp_path / "snap", "--from", "r", "--to", "10.96.5.5:5300", "--iif", "lan0")
    assert code == 2 and "Traceback" not in out + err and "outside" in err and "--iif" in err, err
    code, out, err = cli("trace", tmp_path / "snap", "--all", "--mark", "1")
    assert code == 2 and "--all" in err, err
