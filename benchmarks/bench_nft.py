"""Benchmark: kube-proxy nftables mode at 10,000 services × 3 endpoints, from what
``nft list ruleset`` really prints.

    python3 benchmarks/bench_nft.py [--services 10000] [--endpoints 3] [--repeat 3] [--regenerate]

1. The listing (once; kept in benchmarks/out/nft-<N>x<E>/, gitignored): ``gen_nft`` writes
   the transaction kube-proxy v1.33 would run, it is loaded with ``nft -f`` into a network
   namespace of this script's own (the kernel takes ~47 s for 10,000 services), and
   ``nft list ruleset`` / ``nft -j list ruleset`` are saved; the namespace is deleted.
   ``--regenerate`` redoes it (needs root and nft).
2. In this process: ``parsers.nft.parse`` + ``services_nft.decode_nft`` on the text
   listing, timed (best / median of --repeat), checked against the ground truth
   (``gen_nft.compare``: names, IPs, ports, node ports, affinity, endpoints, shares).
3. The CLI end to end, each in its own process with its own peak RSS (``os.wait4``):
   ``labreport import --nft ruleset.nft --out SNAP`` then ``labreport analyze SNAP --json``
   (best pair of --repeat; the analysis JSON checked service by service against the truth).

Targets (issue 14; issue 7's were 2 s and 600 MB): import + analyze ≤ 1.0 s, ≤ 300 MB each.
Prints the figures; exit 1 when the decoded services are wrong (a missed target is reported
in the figures). Each command runs as the console script runs it (``labreport.cli.run``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import floors  # noqa: E402

from tests.support import gen_nft  # noqa: E402

from labreport.analysis.services_nft import decode_nft  # noqa: E402
from labreport.parsers import nft  # noqa: E402


def prepare(out: Path, services: int, endpoints: int) -> None:
    """Generate, load into a namespace of our own, list, and clean up."""
    out.mkdir(parents=True, exist_ok=True)
    specs = gen_nft.bulk_services(services, endpoints)
    rules = out / "rules.nft"
    rules.write_text(gen_nft.transaction(specs))
    (out / "truth.json").write_text(json.dumps([gen_nft.truth_of(s) for s in specs]))
    ns = f"lrnftb{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        t0 = time.monotonic()
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", str(rules)], check=True)
        t1 = time.monotonic()
        for argv, name in ((["nft", "list", "ruleset"], "ruleset.nft"), (["nft", "-j", "list", "ruleset"], "ruleset.json")):
            start = time.monotonic()
            with open(out / name, "w") as fh:
                subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, stdout=fh)
            print(f"  {' '.join(argv)}: {time.monotonic() - start:.1f} s, {(out / name).stat().st_size / 1e6:.1f} MB")
        print(f"  nft -f ({services} services × {endpoints} endpoints): {t1 - t0:.1f} s in the kernel")
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def measure_collector(out: Path) -> None:
    """Load the rules into a namespace of our own and time, there, one `nft list ruleset`
    (the floor) and the nftables collector (target: ≤ 1.1× the floor)."""
    ns = f"lrnftc{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", str(out / "rules.nft")], check=True)
        def list_once() -> float:
            t0 = time.monotonic()
            subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "ruleset"], check=True, stdout=subprocess.DEVNULL)
            return time.monotonic() - t0

        list_once()  # the first listing after loading also warms the kernel's caches
        floor = list_once()
        code = (
            "import sys, time; from collectors.base import CollectContext, run_collector\n"
            "from collectors.nftables import NftablesCollector\n"
            "t = time.monotonic(); o = run_collector(NftablesCollector(), CollectContext())\n"
            "n = sum(len(c.rules) for t_ in o.nftables.tables for c in t_.chains)\n"
            "print(f'{time.monotonic() - t:.3f} {o.status.ok} {n}')\n"
        )
        res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], check=True, cwd=ROOT,
                             capture_output=True, text=True)
        took, ok, rules = res.stdout.split()
        floor = min(floor, list_once())  # once more after the collector: the machine's load varies
        print(f"floor: nft list ruleset (in the namespace): {floor:.1f} s")
        print(f"nftables collector (one listing, parsed into typed rules): {float(took):.1f} s, ok={ok}, "
              f"{rules} rules = {float(took) / floor:.2f}x the floor (target ≤ 1.1x); "
              f"load average {os.getloadavg()[0]:.1f}")
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def run_cli_rss(args: list[str]) -> tuple[float, float, float, int, bytes, bytes]:
    """(wall s, CPU s, peak RSS MB, exit code, stdout, stderr) of one `labreport …`, run as
    the console script runs it (``labreport.cli.run``: the schema cache, the quick exit), as
    bench_iptables and bench_render_cluster do; ``main()`` alone is what tests call."""
    code = "from labreport.cli import run; run()"
    start = time.monotonic()
    with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-c", code, *args], dict(os.environ),
                             file_actions=[(os.POSIX_SPAWN_DUP2, so.fileno(), 1), (os.POSIX_SPAWN_DUP2, se.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        seconds = time.monotonic() - start
        so.seek(0)
        se.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return seconds, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), so.read(), se.read()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--collect", action="store_true", help="also time the live nftables collector (loads the rules again)")
    args = ap.parse_args(argv)

    out = ROOT / "benchmarks" / "out" / f"nft-{args.services}x{args.endpoints}"
    listing = out / "ruleset.nft"
    if args.regenerate or not listing.exists():
        print(f"preparing {out} (nft -f into a namespace of our own) …")
        prepare(out, args.services, args.endpoints)
    if args.collect:
        measure_collector(out)
    truth = json.loads((out / "truth.json").read_text())
    text = listing.read_text()
    print(f"listing: {listing} ({len(text) / 1e6:.1f} MB, {text.count(chr(10))} lines)")

    # 3. the CLI first, each step its own process (a child started after this process grew
    # would inherit its peak RSS)
    # (best of --repeat pairs; default redaction in both, as a user runs them)
    load0 = os.getloadavg()[0]
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        snap = Path(tmp) / "snap"
        for _ in range(args.repeat):
            t_imp, cpu_imp, rss_imp, code, _, err = run_cli_rss(["import", "--nft", str(listing), "--out", str(snap), "-q"])
            if code != 0:
                print("import failed:", err.decode()[-2000:])
                return 1
            t_an, cpu_an, rss_an, code, stdout, err = run_cli_rss(["analyze", str(snap), "--json"])
            if code not in (0, 10):
                print("analyze failed:", err.decode()[-2000:])
                return 1
            pairs.append((t_imp, cpu_imp, rss_imp, t_an, cpu_an, rss_an))
        snap_mb = (snap / "snapshot.json").stat().st_size / 1e6
        analysis = json.loads(stdout)
        n_services = sum(len(n.get("services") or []) for n in analysis.get("nodes", []))
        mode = {n["proxy_mode"]["mode"] for n in analysis.get("nodes", [])}
        from types import SimpleNamespace

        # every service of the CLI's JSON against the generator's truth, as the in-process records below
        cli_records = [SimpleNamespace(**{**sv, "endpoints": [SimpleNamespace(**e) for e in sv["endpoints"]]
                                          if sv.get("endpoints") is not None else None})
                       for nd in analysis.get("nodes", []) for sv in nd.get("services") or []]
        cli_problems = gen_nft.compare(cli_records, truth)
        print(f"analyze JSON (CLI): {n_services} service ports; "
              + ("exact vs truth" if not cli_problems else f"{len(cli_problems)} differences, e.g. {cli_problems[:3]}"))
        t_imp, cpu_imp, rss_imp, t_an, cpu_an, rss_an = min(pairs, key=lambda p: p[0] + p[3])
    # 2. in process
    times, cpus, parse_cpu = [], [], []
    records = []
    for _ in range(args.repeat):
        start, cstart = time.perf_counter(), time.process_time()
        res = nft.parse(text, source=str(listing))
        parse_cpu.append(time.process_time() - cstart)
        records, _ = decode_nft(res.value)
        times.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cstart)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    problems = gen_nft.compare(records, truth)
    print(f"parse + decode (in process): best {min(times):.2f} s wall / {min(cpus):.2f} s CPU "
          f"(parse {min(parse_cpu):.2f} s CPU), median {statistics.median(times):.2f} s wall, "
          f"peak RSS {rss:.0f} MB; {len(records)} service ports; "
          + ("exact vs truth" if not problems else f"{len(problems)} differences, e.g. {problems[:3]}"))

    split_s = floors.split_pass(listing)
    print(f"floor: a bare Python split pass over the listing (fresh python3, start-up included): {split_s:.2f} s")
    total, total_cpu = t_imp + t_an, cpu_imp + cpu_an
    peak = max(rss_imp, rss_an)
    ok_time, ok_mem = total <= 1.0, peak <= 300
    print(f"labreport import --nft (best of {len(pairs)}): {t_imp:.2f} s wall / {cpu_imp:.2f} s CPU, "
          f"peak RSS {rss_imp:.0f} MB; snapshot {snap_mb:.1f} MB")
    print(f"labreport analyze --json: {t_an:.2f} s wall / {cpu_an:.2f} s CPU, peak RSS {rss_an:.0f} MB "
          f"({n_services} services, mode {sorted(mode)})")
    print(f"import + analyze: {total:.2f} s wall / {total_cpu:.2f} s CPU ({'≤' if ok_time else '>'} 1 s), "
          f"peak {peak:.0f} MB ({'≤' if ok_mem else '>'} 300 MB), {total / split_s:.1f}x the split pass; "
          f"load average {load0:.1f} before, {os.getloadavg()[0]:.1f} after")
    if problems or cli_problems or n_services != len(truth) or mode != {"nftables"}:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
