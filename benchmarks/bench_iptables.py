"""Benchmark: iptables-save parsing + kube-proxy service decoding at 10,000 services.

    python3 benchmarks/bench_iptables.py [--services 10000] [--endpoints 3] [--repeat 3]

1. ``gen_iptables.render`` writes a kube-proxy v1.28-style ``iptables-save`` dump
   (10,000 services × 3 endpoints ≈ 110,000 lines; every 10th service also a NodePort)
   and its ground truth.
2. In this process: ``iptables_save.parse`` and ``decode_iptables`` timed (best and median
   of --repeat runs), peak RSS from ``resource.getrusage``; the decoded records are checked
   against the ground truth (names, cluster IPs, ports, node ports, endpoint addresses and
   order, rule probabilities, shares summing to 1).
3. The CLI end to end as a user runs it, each command in its own process with its own
   peak RSS (``os.wait4``), --repeat times: ``labreport import --iptables-save DUMP --out
   SNAP`` then ``labreport analyze SNAP --json`` (default redaction in both), and
   ``analyze --no-redact`` beside them; the analysis JSON is checked against the ground
   truth (names, cluster IPs, endpoint addresses in order). The floors (a bare split pass in
   a fresh python3; iptables-save as root) and the load average are printed in the same run.

Targets (issue 14): import + analyze ≤ 1.0 s wall, ≤ 300 MB each. Prints the figures; exit
1 when the output is wrong (not when a target is missed: the figures say so).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import floors  # noqa: E402

from labreport.analysis.services_iptables import decode_iptables  # noqa: E402
from labreport.parsers import iptables_save  # noqa: E402


def check(records, truth) -> list[str]:
    """Differences between decoded records and the generator's ground truth."""
    errors: list[str] = []
    got = {r.name: r for r in records}
    if len(got) != len(truth):
        errors.append(f"{len(got)} records, expected {len(truth)}")
    for t in truth:
        r = got.get(t["name"])
        if r is None:
            errors.append(f"missing {t['name']}")
            continue
        for key in ("cluster_ip", "port", "protocol", "node_port", "no_endpoints", "session_affinity"):
            if getattr(r, key) != t[key]:
                errors.append(f"{t['name']}: {key} {getattr(r, key)!r} != {t[key]!r}")
        eps = r.endpoints or []
        if [e.address for e in eps] != [e["address"] for e in t["endpoints"]]:
            errors.append(f"{t['name']}: endpoints differ")
            continue
        for e, te in zip(eps, t["endpoints"]):
            if e.rule_probability != te["rule_probability"] or abs(e.probability - te["probability"]) > 1e-6:
                errors.append(f"{t['name']}: {e.address} probability {e.rule_probability}/{e.probability}")
        if eps and abs(sum(e.probability for e in eps) - 1.0) > 1e-9:
            errors.append(f"{t['name']}: shares sum to {sum(e.probability for e in eps)}")
        if len(errors) > 20:
            break
    return errors


def run_child(argv: list[str], stdout=subprocess.DEVNULL) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS MB, exit code) of one command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        print(f"  {' '.join(argv[:3])}… exited {proc.returncode}: {err.strip()[-500:]}", file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="iptables parse + decode benchmark")
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="keep the dump and snapshot in this directory")
    ap.add_argument("--no-kernel", action="store_true", help="skip the iptables-restore/-save floor (root)")
    args = ap.parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-ipt-"))
    work.mkdir(parents=True, exist_ok=True)
    ok = True
    try:
        # the dump is written by a child, so this process stays small while it starts the
        # CLI children (Linux keeps ru_maxrss across fork+exec: a big parent inflates them)
        subprocess.run([sys.executable, "-m", "tests.support.gen_iptables", "--services", str(args.services),
                        "--endpoints", str(args.endpoints), "--out", str(work)], check=True, cwd=ROOT)
        dump = work / "iptables-save.txt"
        truth = json.loads((work / "truth.json").read_text())
        load = os.getloadavg()
        print(f"dump: {args.services} services x {args.endpoints} endpoints, {dump.stat().st_size / 1e6:.1f} MB "
              f"({dump}); {os.cpu_count()} CPUs, load average {load[0]:.1f}")

        split_s = floors.split_pass(dump)
        print(f"floor: a bare Python split pass over the dump (fresh python3, start-up included): {split_s:.2f} s")
        kernel = None if args.no_kernel else floors.iptables_save_floor(dump)
        if kernel is not None:
            print(f"floor: iptables-save of the same rules in a namespace of our own: {kernel[1]:.2f} s "
                  f"(iptables-restore took {kernel[0]:.1f} s)")
        exe = shutil.which("labreport")
        if exe:
            # the package byte-compiled, as an installed one is (PYTHONDONTWRITEBYTECODE in a
            # developer's shell would otherwise make every child compile ~200 modules)
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "labreport")], check=False,
                           stdout=subprocess.DEVNULL)
            snap = work / "snap"
            out_json = work / "analysis.json"
            runs: dict[str, list[tuple[float, float, float]]] = {"import": [], "analyze": [], "analyze-nr": []}
            rc_all = 0
            for _ in range(args.repeat):
                imp = [exe, "import", "--iptables-save", str(dump), "--out", str(snap), "-q"]
                t, c, r, rc = run_child(imp)
                runs["import"].append((t, c, r))
                with open(out_json, "wb") as fh:
                    t2, c2, r2, rc2 = run_child([exe, "analyze", str(snap), "--json"], stdout=fh)
                runs["analyze"].append((t2, c2, r2))
                t3, c3, r3, rc3 = run_child([exe, "analyze", str(snap), "--json", "--no-redact"])
                runs["analyze-nr"].append((t3, c3, r3))
                rc_all = rc_all or rc or rc2 or rc3
            size = (snap / "snapshot.json").stat().st_size / 1e6

            def fig(key: str) -> str:
                v = runs[key]
                walls = [x[0] for x in v]
                return (f"best {min(walls):.2f} s wall (median {statistics.median(walls):.2f}), "
                        f"{min(x[1] for x in v):.2f} s CPU, peak RSS {max(x[2] for x in v):.0f} MB")

            print(f"labreport import --iptables-save (default redaction): {fig('import')}; snapshot {size:.1f} MB")
            print(f"labreport analyze --json (default redaction):         {fig('analyze')}")
            print(f"labreport analyze --json --no-redact:                 {fig('analyze-nr')}")
            pairs = [(i[0] + a[0], max(i[2], a[2])) for i, a in zip(runs["import"], runs["analyze"])]
            best_wall = min(p[0] for p in pairs)
            print(f"CLI import + analyze (two processes, default redaction): best {best_wall:.2f} s wall, "
                  f"median {statistics.median(p[0] for p in pairs):.2f} s, max peak RSS {max(p[1] for p in pairs):.0f} MB "
                  f"(target <= 1.0 s, <= 300 MB each); floor in the same run: split pass {split_s:.2f} s "
                  f"({best_wall / split_s:.1f}x)" + (f", iptables-save {kernel[1]:.2f} s" if kernel else "")
                  + f"; load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
            if rc_all == 0:
                data = json.loads(out_json.read_text())
                n = sum(len(n.get("services", [])) for n in data.get("nodes", []))
                if n != len(truth):
                    ok = False
                    print(f"WRONG: analyze reports {n} service ports, expected {len(truth)}")
                else:
                    from types import SimpleNamespace

                    recs = [SimpleNamespace(**{**sv, "endpoints": [SimpleNamespace(**e) for e in sv["endpoints"]]
                                               if sv.get("endpoints") is not None else None})
                            for nd in data["nodes"] for sv in nd.get("services", [])]
                    errors = check(recs, truth)  # every service, as the in-process check below
                    if errors:
                        ok = False
                        print("WRONG: analyze JSON: " + "; ".join(errors[:10]))
                    else:
                        print(f"analyze JSON: {n} service ports, every one as the generator's ground truth")
            else:
                ok = False
        else:
            print("labreport CLI not on PATH: end-to-end figures skipped")

        # the same pipeline in one process (what `labreport render` and library users run):
        # build the node from the pasted dump, then analyze it — no snapshot file between
        pipeline = (
            "import sys, time, resource\n"
            "from labreport.importer import build_node\n"
            "from labreport.snapshot import Snapshot\n"
            "from labreport.analysis import analyze\n"
            "text = open(sys.argv[1]).read()\n"
            "t0 = time.perf_counter()\n"
            "node = build_node('node', {'iptables-save': [(sys.argv[1], text)]})\n"
            "a = analyze(Snapshot(nodes=[node]))\n"
            "t1 = time.perf_counter()\n"
            "print(f'{t1 - t0:.3f} {len(a.nodes[0].services)}')\n"
        )
        times, peak = [], 0.0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", pipeline, str(dump)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd=str(ROOT))
            _, status, usage = os.wait4(proc.pid, 0)
            out = proc.stdout.read().decode().split() if proc.stdout else []
            if os.waitstatus_to_exitcode(status) != 0 or len(out) != 2 or int(out[1]) != len(truth):
                ok = False
                print(f"WRONG: in-process pipeline: {out} {proc.stderr.read().decode()[-300:] if proc.stderr else ''}")
                break
            times.append(float(out[0]))
            peak = max(peak, usage.ru_maxrss / 1024.0)
        if times:
            print(f"in one process, import (build_node) + analyze(): best {min(times):.2f} s, median "
                  f"{statistics.median(times):.2f} s, peak RSS {peak:.0f} MB (target <= 1 s, <= 300 MB)")

        text = dump.read_text()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        parse_t, decode_t, parse_c, decode_c = [], [], [], []
        records = None
        for _ in range(args.repeat):
            records = None
            t0, c0 = time.perf_counter(), time.process_time()
            res = iptables_save.parse(text, source=str(dump))
            t1, c1 = time.perf_counter(), time.process_time()
            records, _masq = decode_iptables(res.value)
            t2, c2 = time.perf_counter(), time.process_time()
            parse_t.append(t1 - t0)
            decode_t.append(t2 - t1)
            parse_c.append(c1 - c0)
            decode_c.append(c2 - c1)
            del res
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(f"parse:  best {min(parse_t):.3f} s wall ({min(parse_c):.3f} s CPU), "
              f"median {statistics.median(parse_t):.3f} s wall")
        print(f"decode: best {min(decode_t):.3f} s wall ({min(decode_c):.3f} s CPU), "
              f"median {statistics.median(decode_t):.3f} s wall")
        best = min(range(args.repeat), key=lambda i: parse_t[i] + decode_t[i])
        print(f"parse+decode: best {parse_t[best] + decode_t[best]:.3f} s wall "
              f"({min(p + d for p, d in zip(parse_c, decode_c)):.3f} s CPU); peak RSS of this process "
              f"{rss:.0f} MB ({rss0:.0f} MB with the dump read, before parsing)")
        errors = check(records, truth)
        if errors:
            ok = False
            print("WRONG: " + "; ".join(errors[:10]))
        else:
            print(f"correct: {len(records)} service ports match the ground truth")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
