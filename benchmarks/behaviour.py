"""A fingerprint of every method's behaviour: losses and accuracies of one short run each, to hold a refactoring to.

Runs every registered way of distilling (the DFKD-FGVC baseline and full method, DeepInversion, ADI, ZSKD and the
two real-data references) in fast mode (``DFKD_FAST=1``: 1 epoch of 2 iterations, t = k = 2, batch 16, 200 test
images) on the shipped Fashion-MNIST teacher with seed 0, and writes every logged loss and accuracy to JSON.
With ``--compare OLD.json`` it prints each value beside the old one and exits with status 1 when any differs
(bit for bit: the values are compared as the floats they are).

    OMP_NUM_THREADS=1 python benchmarks/behaviour.py --out /tmp/before.json
    ... change the code ...
    OMP_NUM_THREADS=1 python benchmarks/behaviour.py --out /tmp/after.json --compare /tmp/before.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

RUNS = {
    "baseline": dict(method="dfkd-fgvc", generator="attention", generator_width=8,
                     method_options={"beta": 0, "gamma": 0}, generator_options={"lam": 0}),
    "dfkd-fgvc": dict(method="dfkd-fgvc", generator="attention", generator_width=8,
                      method_options={"beta": 10, "gamma": 8, "order": 3}, generator_options={"lam": 0.05}),
    "deepinversion": dict(method="deepinversion"),
    "adi": dict(method="adi"),
    "zskd": dict(method="zskd"),
    "real-kd": dict(method="real-kd"),
    "real-labels": dict(method="real-labels"),
}


def fingerprint() -> dict:
    """``{run: {"history": [...], "best": float, "last": float}}`` of every run of :data:`RUNS`."""
    os.environ["DFKD_FAST"] = "1"
    from dfkd_lib.experiment import run_distillation

    out = {}
    for name, kw in RUNS.items():
        r = run_distillation("fashion-mnist", student_width=8, progress=False, **kw)
        history = [{k: v for k, v in h.items() if k != "wall_s"} for h in r["history"]]  # time is not behaviour
        out[name] = {"history": history, "best": r["best_accuracy"], "last": r["last_accuracy"]}
        print(f"{name:14s} best {r['best_accuracy']:.4f} last {r['last_accuracy']:.4f}", flush=True)
    return out


def compare(new: dict, old: dict) -> int:
    """Print the values that differ; the number of them."""
    diffs = 0
    for run in sorted(set(new) | set(old)):
        a, b = json.dumps(new.get(run), sort_keys=True), json.dumps(old.get(run), sort_keys=True)
        if a != b:
            diffs += 1
            print(f"DIFFERS {run}:\n  now {a[:400]}\n  was {b[:400]}")
    print("behaviour: " + ("identical, bit for bit" if diffs == 0 else f"{diffs} run(s) differ"))
    return diffs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="benchmarks/results/behaviour.json")
    ap.add_argument("--compare", default=None, help="an earlier fingerprint to compare with")
    args = ap.parse_args(argv)
    old = json.loads(Path(args.compare).read_text()) if args.compare else None  # read before anything is written
    fp = fingerprint()
    if args.compare and Path(args.out).resolve() == Path(args.compare).resolve():
        print(f"not writing {args.out}: it is the fingerprint compared against (pass --out elsewhere to keep this one)")
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(fp, indent=1))
        print(f"wrote {args.out}")
    if old is not None:
        return 1 if compare(fp, old) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
