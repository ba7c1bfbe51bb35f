#!/usr/bin/env python3
"""Tests of scripts/sweep.py (the experiment harness), run by CTest: python3 test_sweep.py FEDPP.

- a grid runs every arm x point x seed and writes only the small result files;
- killed in the middle of a run, it resumes without redoing finished runs and leaves no partial
  folder; the summary regenerated from results/ is byte-identical;
- an arm with its own seeds (a subset of the grid's) runs only those;
- a grid naming an unknown key or method fails before any run starts, naming it.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SWEEP = os.path.join(HERE, "..", "scripts", "sweep.py")

BASE = """seed = 1
rounds = 4
[algorithm]
name = "fedavg"
[data]
dataset = "synthetic"
synthetic_samples = 600
synthetic_test_samples = 200
synthetic_classes = 4
synthetic_shape = [1, 8, 8]
num_clients = 3
[model]
name = "mlp"
[train]
lr = 0.05
batch_size = 16
[runtime]
workers = 1
"""

GRID = """name = "toy"
title = "Toy grid"
seeds = [1, 2]
config = "{base}"
set = ['rounds=4']
target = 0.5
last = 2
reference = "fedavg,train.lr=0.05"
columns = ["fit_train_loss"]
[grid]
"train.lr" = [0.05]
[[arm]]
name = "fedavg"
[[arm]]
name = "fedprox"
set = ['algorithm.name="fedprox"', 'fedprox.mu=0.1']
[[arm]]
name = "fedprox_mu1"
seeds = [1]
set = ['algorithm.name="fedprox"', 'fedprox.mu=1.0']
"""


def sweep(fedpp, grid, results, *extra, **kw):
    return subprocess.run([sys.executable, SWEEP, grid, "--fedpp", fedpp, "--results", results,
                           *extra], capture_output=True, text=True, **kw)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def main():
    fedpp = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="fedpp_sweep_test_")
    try:
        base = os.path.join(tmp, "base.toml")
        with open(base, "w") as f:
            f.write(BASE)
        grid = os.path.join(tmp, "grid.toml")
        with open(grid, "w") as f:
            f.write(GRID.format(base=base))
        results = os.path.join(tmp, "results")
        exp = os.path.join(results, "toy")
        runs = [os.path.join(exp, arm + ",train.lr=0.05", f"seed{s}")
                for s in (1, 2) for arm in ("fedavg", "fedprox")]

        # Two runs, then stop (as a session that ends would).
        r = sweep(fedpp, grid, results, "--max-runs", "2")
        check(r.returncode == 0, f"first sweep failed: {r.stderr}")
        check(all(os.path.isdir(d) for d in runs[:2]), f"runs 1-2 missing: {os.listdir(exp)}")
        check(not any(os.path.exists(d) for d in runs[2:]), "runs 3-4 ran despite --max-runs 2")
        check(sorted(os.listdir(runs[0])) == ["config.toml", "metrics.csv", "run.json"],
              f"a finished run keeps only small files: {os.listdir(runs[0])}")
        first = {d: read(os.path.join(d, "run.json")) for d in runs[:2]}

        # Killed while run 3 is under way: its .partial folder stays behind.
        p = subprocess.Popen([sys.executable, SWEEP, grid, "--fedpp", fedpp, "--results", results],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        partial = runs[2] + ".partial"
        deadline = time.time() + 120
        while not os.path.exists(partial) and p.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        check(os.path.exists(partial), "never saw run 3 under way")
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        check(not os.path.exists(runs[2]), "a killed run must not count as finished")

        # Resumed: finishes runs 3 and 4 only.
        r = sweep(fedpp, grid, results)
        check(r.returncode == 0, f"resumed sweep failed: {r.stderr}")
        check(all(os.path.isdir(d) for d in runs), "not every run finished")
        check(not any(n.endswith(".partial") for _, ds, _ in os.walk(exp) for n in ds),
              "a .partial folder was left behind")
        for d, content in first.items():
            check(read(os.path.join(d, "run.json")) == content, f"{d} was run again")
        summary = read(os.path.join(exp, "summary.md"))
        summary_csv = read(os.path.join(exp, "summary.csv"))
        check(b"| fedavg,train.lr=0.05 | 2/2 | 4 |" in summary, summary.decode())
        check(b"| fedprox,train.lr=0.05 | 2/2 | 4 |" in summary, summary.decode())
        # An arm with seeds = [1] runs seed 1 only, and the summary counts it of 1.
        mu1 = os.path.join(exp, "fedprox_mu1,train.lr=0.05")
        check(sorted(os.listdir(mu1)) == ["seed1"], f"arm seeds ignored: {os.listdir(mu1)}")
        check(b"| fedprox_mu1,train.lr=0.05 | 1/1 | 4 |" in summary, summary.decode())
        check("Δ vs fedavg,train.lr=0.05" in summary.decode(), "no paired difference column")
        check("| run | fit_train_loss |" in summary.decode(), "no table of the extra columns")
        check("| fedavg,train.lr=0.05 | 2/2 | 4 |" in summary.decode() and
              "+0.00 ± 0.00" in summary.decode(), "the reference's difference to itself is not 0")

        # The summary is a function of results/ alone.
        os.remove(os.path.join(exp, "summary.md"))
        r = sweep(fedpp, grid, results, "--summary-only")
        check(r.returncode == 0, r.stderr)
        check(read(os.path.join(exp, "summary.md")) == summary, "summary.md differs when regenerated")
        check(read(os.path.join(exp, "summary.csv")) == summary_csv, "summary.csv differs")

        # A reference may name an arm: each run is paired with that arm at its own grid point
        # (here one point, so the same pairs as naming the run).
        with open(grid) as f:
            grid_text = f.read()
        with open(grid, "w") as f:
            f.write(grid_text.replace('reference = "fedavg,train.lr=0.05"', 'reference = "fedavg"'))
        r = sweep(fedpp, grid, results, "--summary-only")
        check(r.returncode == 0, r.stderr)
        check(read(os.path.join(exp, "summary.csv")) == summary_csv,
              "an arm as reference pairs differently from the run it names")
        with open(grid, "w") as f:
            f.write(grid_text.replace('reference = "fedavg,train.lr=0.05"', 'reference = "nope"'))
        r = sweep(fedpp, grid, results, "--summary-only")
        check(r.returncode != 0 and 'reference = "nope" is not a run or an arm' in r.stderr,
              r.stderr)
        with open(grid, "w") as f:
            f.write(grid_text)
        r = sweep(fedpp, grid, results, "--summary-only")
        check(r.returncode == 0 and read(os.path.join(exp, "summary.md")) == summary,
              "summary.md differs after the reference was restored")

        # Same config and seed, same numbers: rerunning a finished run gives identical metrics
        # (timing columns aside).
        def strip(path):
            lines = read(path).decode().splitlines()
            header = lines[0].split(",")
            keep = [i for i, h in enumerate(header) if not h.endswith("_s")]
            return [[row.split(",")[i] for i in keep] for row in lines]
        again = os.path.join(tmp, "again")
        r = sweep(fedpp, grid, again)
        check(r.returncode == 0, r.stderr)
        for d in runs:
            twin = d.replace(results, again)
            check(strip(os.path.join(d, "metrics.csv")) == strip(os.path.join(twin, "metrics.csv")),
                  f"{d}: a second sweep gave other numbers")

        # Bad grids fail before any run, naming the problem.
        for bad_set, word in (("'train.learning_rate=0.1'", "train.learning_rate"),
                              ("'algorithm.name=\"fedsgd\"'", "fedsgd")):
            bad = os.path.join(tmp, "bad.toml")
            with open(bad, "w") as f:
                f.write(GRID.format(base=base).replace('name = "toy"', 'name = "bad"')
                        .replace("set = ['rounds=4']", f"set = ['rounds=4', {bad_set}]"))
            r = sweep(fedpp, bad, results)
            check(r.returncode != 0, f"grid with {word} did not fail")
            check(word in r.stderr, f"the error does not name {word}: {r.stderr}")
            bad_dir = os.path.join(results, "bad")
            check(not os.path.exists(bad_dir) or not any(
                n.startswith("seed") for _, ds, _ in os.walk(bad_dir) for n in ds),
                "a run started before validation failed")
        with open(os.path.join(tmp, "armseed.toml"), "w") as f:
            f.write(GRID.format(base=base).replace("seeds = [1]\n", "seeds = [3]\n"))
        r = sweep(fedpp, os.path.join(tmp, "armseed.toml"), results)
        check(r.returncode == 2 and "fedprox_mu1" in r.stderr,
              f"an arm seed outside the grid's not refused: {r.stderr}")
        with open(os.path.join(tmp, "typo.toml"), "w") as f:
            f.write(GRID.format(base=base).replace("seeds =", "seed ="))
        r = sweep(fedpp, os.path.join(tmp, "typo.toml"), results)
        check(r.returncode == 2 and "'seed'" in r.stderr, f"unknown grid key not named: {r.stderr}")

        # A run that diverges (non-finite loss) is a result, not a crash: recorded, and the grid
        # goes on; the summary counts it apart.
        with open(os.path.join(tmp, "lr.toml"), "w") as f:
            f.write(GRID.format(base=base).replace('name = "toy"', 'name = "lr"')
                    .replace('"train.lr" = [0.05]', '"train.lr" = [1000.0, 0.05]')
                    .replace("seeds = [1, 2]", "seeds = [1]"))
        r = sweep(fedpp, os.path.join(tmp, "lr.toml"), results)
        check(r.returncode == 0, f"a diverging run stopped the grid: {r.stderr}")
        blown = os.path.join(results, "lr", "fedavg,train.lr=1000.0", "seed1", "run.json")
        check(os.path.exists(blown) and b'"diverged": true' in read(blown), "divergence not recorded")
        lr_summary = read(os.path.join(results, "lr", "summary.md")).decode()
        check("| fedavg,train.lr=1000.0 | 0/1 (1 diverged) |" in lr_summary, lr_summary)
        check("| fedavg,train.lr=0.05 | 1/1 |" in lr_summary, lr_summary)

        # fedpp report draws a band per sweep folder.
        r = subprocess.run([fedpp, "report", os.path.dirname(runs[0]), os.path.dirname(runs[1]),
                            "--out", os.path.join(tmp, "plots")], capture_output=True, text=True)
        check(r.returncode == 0, f"fedpp report on sweep folders failed: {r.stderr}")
        gp = read(os.path.join(tmp, "plots", "plots.gp")).decode()
        check("filledcurves" in gp and "(2 seeds)" in gp and "noenhanced" in gp, gp)
        print("sweep harness: all checks passed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
