#!/usr/bin/env python3
"""Node process figures: resident memory of idle `9ten node run` processes (libp2p, iroh, the
stores and the control API), and `9ten testnet` runs. Prints a Markdown report.

    cargo build --release --bin 9ten && python3 scripts/bench_node.py

Reference for memory: `cargo bench -p nineten-node --bench gossip` reports an idle node without
iroh and the control API in the same way (run both in one session). Nodes run on 127.0.0.1 in temporary folders, removed after.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NINETEN = os.path.join(ROOT, "target", "release", "9ten")
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "20"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def status(data):
    out = subprocess.run([NINETEN, "--data-dir", data, "node", "status"], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return dict(line.split(None, 1) for line in out.splitlines() if line.strip())


def start(data, peers=()):
    args = [NINETEN, "--data-dir", data, "node", "run"]
    for p in peers:
        args += ["--peer", p]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while not os.path.exists(os.path.join(data, "control.json")):
        if time.time() > deadline:
            sys.exit("a node did not start")
        time.sleep(0.05)
    return proc


def main():
    print("## Node processes (scripts/bench_node.py)\n")
    with tempfile.TemporaryDirectory(prefix="9ten-bench-") as tmp:
        dirs = [os.path.join(tmp, f"n{i}") for i in range(3)]
        first = start(dirs[0])
        addr = status(dirs[0])["libp2p"].strip()
        others = [start(d, [addr]) for d in dirs[1:]]
        procs = [first] + others
        time.sleep(IDLE_S)
        kbs = [rss_kb(p.pid) for p in procs]
        peers = [status(d)["peers"].strip() for d in dirs]
        for d in dirs:
            subprocess.run([NINETEN, "--data-dir", d, "node", "stop"], check=True,
                           stdout=subprocess.DEVNULL)
        for p in procs:
            p.wait(timeout=30)
    print(f"Idle `9ten node run`, 3 nodes connected on 127.0.0.1, after {IDLE_S:.0f} s "
          f"(peers seen: {', '.join(peers)}):\n")
    print("| process | resident memory |")
    print("|---|---|")
    for i, kb in enumerate(kbs):
        print(f"| node {i} | {kb / 1024:.1f} MB |")
    print(f"| median | **{statistics.median(kbs) / 1024:.1f} MB** (goal < 50 MB) |")
    print()

    print("`9ten testnet` (release build), 3 runs:\n")
    print("| seed | nodes | plays | TTFA p50 | TTFA p95 | bytes by other peers | receipts held by all | wall time |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in (1, 2, 3):
        with tempfile.TemporaryDirectory(prefix="9ten-bench-") as out:
            subprocess.run([NINETEN, "testnet", "--seed", str(seed), "--out", out], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(os.path.join(out, "report.json")) as f:
                r = json.load(f)
        total = r["bytes"]["artist_nodes"] + r["bytes"]["other_peers"]
        share = 100.0 * r["bytes"]["other_peers"] / total if total else 0.0
        print(f"| {seed} | {r['nodes']} | {r['plays']} | {r['ttfa_ms']['p50']:.1f} ms | "
              f"{r['ttfa_ms']['p95']:.1f} ms | {share:.0f}% | "
              f"{r['receipts']['held_by_all_nodes']}/{r['receipts']['signed']} | {r['elapsed_s']:.1f} s |")


if __name__ == "__main__":
    main()
