#!/usr/bin/env python3
"""fedpp sweep: run a grid of experiments (arms x config points x seeds), resumably, and summarise it.

    scripts/sweep.py GRID.toml                 # run what is missing, then write the summary
    scripts/sweep.py GRID.toml --summary-only  # regenerate the summary from results/ (no runs)
    scripts/sweep.py GRID.toml --check         # validate the grid and every run's config, run nothing
    scripts/sweep.py GRID.toml --list          # the runs, with done / to do

A grid file (TOML; experiments/*.toml hold the project's):

    name = "hetero_dir_n10"            # results go to <results>/<name>/ (default results/)
    seeds = [1, 2, 3]
    config = "configs/fedmoe_fmnist_pat.toml"   # default config of every arm
    set = ['rounds=50', 'data.partition="dirichlet"']   # overrides for every run
    metric = "personal_accuracy_mean"  # column summarised ("auto": personal if present, else accuracy)
    target = 0.85                      # for "rounds to target"
    last = 10                          # window of the "mean of the last rounds" column
    title = "..."                      # optional, for the summary's heading
    reference = "standalone"           # optional run or arm name (an arm: at each grid point): adds each run's difference to it,
                                       # paired by seed (same partition), mean +- sd
    split_bytes = true                 # optional: bytes down and up in separate columns
    columns = ["fit_train_loss"]       # optional: more metrics.csv columns, each as its mean over
                                       # the last rounds (mean +- sd over seeds), in a second table
    [grid]                             # optional: every combination, for every arm
    "train.lr" = [0.001, 0.01, 0.1]
    [[arm]]                            # one per method / variant
    name = "fedmoe"
    config = "configs/fedmoe_fmnist_pat.toml"   # optional, else the grid's
    set = ['algorithm.name="fedmoe"']           # optional
    seeds = [1]                                 # optional: a subset of the grid's seeds (e.g.
                                                # the rejected rates of a short sweep)

Runs go one after another, seed by seed (every arm and point of seed 1 first), so a grid stopped
part-way already compares all arms. Each run is `fedpp run CONFIG --set ...` into
<results>/<name>/<arm>[,key=value...]/seed<N>.partial/, renamed to .../seed<N>/ once it has
finished; a folder without the .partial suffix is complete and is never run again, so a grid
killed at any point resumes where it stopped. A finished run keeps only small files:
metrics.csv (one row per round), config.toml (the resolved config: every key, defaults filled
in) and run.json (command, fedpp commit, seconds); commit them. Before the first run every
arm/point is validated with `fedpp run --check` (unknown keys, bad values, unknown methods fail
here, naming the key). The summary (<results>/<name>/summary.md and summary.csv) is a function of
the committed files only, so regenerating it gives the same bytes. Plots: `fedpp report
<results>/<name>/<run>...` draws one band (mean +- sd over seeds) per run folder. Runs on a
simulated device fleet (fleet.profile) add simulated minutes to the target and in all to the
summary.

Only the Python standard library is used (tomllib: Python >= 3.11).
"""
import argparse
import csv
import datetime
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time
import tomllib

GRID_KEYS = {"name", "seeds", "config", "set", "metric", "target", "last", "title", "grid", "arm",
             "note", "reference", "split_bytes", "columns"}
ARM_KEYS = {"name", "config", "set", "seeds"}
KEEP = ("metrics.csv", "config.toml")


def die(msg):
    print(f"sweep: error: {msg}", file=sys.stderr)
    sys.exit(2)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def load_grid(path):
    try:
        with open(path, "rb") as f:
            g = tomllib.load(f)
    except FileNotFoundError:
        die(f"grid file '{path}' not found")
    except tomllib.TOMLDecodeError as e:
        die(f"grid file '{path}' is not valid TOML: {e}")
    for k in g:
        if k not in GRID_KEYS:
            die(f"unknown key '{k}' in grid file {path}: remove or correct it "
                f"(known: {', '.join(sorted(GRID_KEYS))})")
    if not isinstance(g.get("name"), str) or not g["name"] or "/" in g["name"]:
        die(f"grid file {path} needs name = \"...\" (a folder name, no '/')")
    seeds = g.get("seeds", [1])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        die(f"seeds in {path} must be a non-empty list of non-negative integers")
    arms = g.get("arm", [])
    if not isinstance(arms, list) or not arms:
        die(f"grid file {path} has no [[arm]] tables: add at least one")
    names = set()
    for a in arms:
        for k in a:
            if k not in ARM_KEYS:
                die(f"unknown key '{k}' in an [[arm]] of {path} (known: {', '.join(sorted(ARM_KEYS))})")
        if not isinstance(a.get("name"), str) or not a["name"] or "/" in a["name"] or "," in a["name"]:
            die(f"every [[arm]] in {path} needs name = \"...\" (no '/' or ',')")
        if a["name"] in names:
            die(f"arm name '{a['name']}' appears twice in {path}")
        names.add(a["name"])
        arm_seeds = a.get("seeds", seeds)
        if not isinstance(arm_seeds, list) or not arm_seeds or \
                not all(isinstance(x, int) and x in seeds for x in arm_seeds):
            die(f"seeds of arm '{a['name']}' in {path} must be a non-empty list of the grid's "
                f"seeds ({seeds})")
        if not a.get("config", g.get("config")):
            die(f"arm '{a['name']}' has no config and the grid sets no default config")
    grid = g.get("grid", {})
    for k, vs in grid.items():
        if not isinstance(vs, list) or not vs:
            die(f"[grid] '{k}' in {path} must be a non-empty list of values")
    cols = g.get("columns", [])
    if not isinstance(cols, list) or not all(isinstance(c, str) and c for c in cols):
        die(f"columns in {path} must be a list of metrics.csv column names")
    g.setdefault("set", [])
    g.setdefault("metric", "auto")
    g.setdefault("target", 0.9)
    g.setdefault("last", 10)
    g["seeds"] = seeds
    return g


def runs_of(g, root):
    """All runs in execution order: seed-major, then arm, then grid point."""
    grid = g.get("grid", {})
    keys = list(grid)
    points = [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))] or [{}]
    out = []
    for seed in g["seeds"]:
        for arm in g["arm"]:
            if seed not in arm.get("seeds", g["seeds"]):
                continue
            for p in points:
                label = ",".join([arm["name"]] + [f"{k}={toml_value(v).strip(chr(34))}" for k, v in p.items()])
                sets = list(g["set"]) + list(arm.get("set", [])) + \
                    [f"{k}={toml_value(v)}" for k, v in p.items()] + [f"seed={seed}", "output.quiet=true"]
                out.append({"label": label, "seed": seed, "config": arm.get("config", g.get("config")),
                            "sets": sets, "dir": os.path.join(root, g["name"], label, f"seed{seed}")})
    return out


def read_info(r):
    path = os.path.join(r["dir"], "run.json")
    if not os.path.exists(path):
        die(f"{r['dir']} has no run.json: it was not made by this harness; delete it to rerun")
    with open(path) as f:
        return json.load(f)


def check_same_command(r):
    """A finished run must have been made by the command the grid gives today; otherwise the grid
    file changed under its results and the two must not be mixed."""
    want = ["fedpp"] + fedpp_cmd("fedpp", r)[1:]
    got = read_info(r).get("command")
    if got != want:
        die(f"{r['dir']} was made by another command than the grid now gives "
            f"({' '.join(got or [])} vs {' '.join(want)}): the grid file changed; move the old "
            "results away or restore the grid")


def fedpp_cmd(fedpp, run, out=None, check=False):
    cmd = [fedpp, "run", run["config"]]
    for s in run["sets"]:
        cmd += ["--set", s]
    if check:
        cmd.append("--check")
    if out:
        cmd += ["--out", out]
    return cmd


def git_commit():
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return r.stdout.strip() + ("-dirty" if dirty else "") if r.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def check_reference(g, labels):
    """The grid's reference (a run, or an arm paired at each grid point), or None; dies if unknown."""
    ref = g.get("reference")
    if ref is not None and ref not in labels and ref not in {l.split(",")[0] for l in labels}:
        die(f"reference = \"{ref}\" is not a run or an arm of grid '{g['name']}' "
            f"(runs: {', '.join(sorted(set(labels)))})")
    return ref


def check_all(g, runs, fedpp):
    seen = set()
    for r in runs:
        if r["label"] in seen:
            continue
        seen.add(r["label"])
        res = subprocess.run(fedpp_cmd(fedpp, r, check=True), capture_output=True, text=True)
        if res.returncode != 0:
            msg = (res.stderr.strip().splitlines() or ["(no message)"])[-1]
            die(f"run '{r['label']}' of grid '{g['name']}' is invalid, nothing was run: {msg}")


def run_one(r, fedpp, commit):
    partial = r["dir"] + ".partial"
    shutil.rmtree(partial, ignore_errors=True)  # left by a run that was killed
    os.makedirs(os.path.dirname(partial), exist_ok=True)
    cmd = fedpp_cmd(fedpp, r, out=partial)
    load_before = os.getloadavg()[0]
    t0 = time.time()
    res = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    secs = time.time() - t0
    sys.stderr.write(res.stderr)
    lines = res.stderr.strip().splitlines()
    error = next((l for l in reversed(lines) if "error" in l), lines[-1] if lines else "")
    # Divergence (fedpp stops on a non-finite loss) is an outcome of the grid, e.g. of a learning
    # rate sweep: recorded, and the grid goes on. Any other failure stops the grid.
    diverged = res.returncode != 0 and "non-finite" in res.stderr
    if res.returncode != 0 and not diverged:
        die(f"run {r['label']} seed {r['seed']} failed (exit {res.returncode}); its partial results "
            f"are in {partial}; the command was: {' '.join(cmd)}")
    for f in os.listdir(partial):
        p = os.path.join(partial, f)
        if f not in KEEP:
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    info = {"command": ["fedpp"] + cmd[1:-2], "fedpp_commit": commit, "seconds": round(secs, 1),
            "diverged": diverged, "error": error if diverged else "",
            "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cpus": os.cpu_count(),
            # 1-minute load average before and after: a run beside other heavy work (load well
            # above the run's own threads) has a wall time that must not be quoted.
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    with open(os.path.join(partial, "run.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    os.rename(partial, r["dir"])


# ---- summary -------------------------------------------------------------------------------------

def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        rows = []
        for r in csv.DictReader(f):
            rows.append({k: float(v) for k, v in r.items() if v not in ("", None)})
    return rows


def metric_of(rows, metric):
    if metric != "auto":
        return metric
    return "personal_accuracy_mean" if any("personal_accuracy_mean" in r for r in rows) else "accuracy"


def last_mean(rows, col, last):
    """Mean of `col` over the last `last` rows that have it (None when none has)."""
    vals = [r[col] for r in rows if col in r][-last:]
    return sum(vals) / len(vals) if vals else None


def per_run(rows, metric, target, last, extra=()):
    col = metric_of(rows, metric)
    curve = [(int(r["round"]), r[col]) for r in rows if col in r]
    if not curve:
        return None
    accs = [a for _, a in curve]
    window = accs[-last:]
    reached = next((rd for rd, a in curve if a >= target), None)
    n = len(rows)
    # With a simulated fleet (fleet.profile): simulated seconds at the end and at the target.
    sim = {int(r["round"]): r["sim_time_s"] for r in rows if "sim_time_s" in r}

    def avg(col):
        vals = [r[col] for r in rows if col in r]
        return sum(vals) / len(vals) if vals else None

    down, up = avg("bytes_down_per_client"), avg("bytes_up_per_client")
    return {
        "column": col,
        "rounds": n,
        "final": accs[-1],
        "last_mean": sum(window) / len(window),
        "best": max(accs),
        "reached": reached,
        "bytes": (down or 0) + (up or 0) if down is not None or up is not None else None,
        "down": down,
        "up": up,
        "sim_total": sim[max(sim)] if sim else None,
        "sim_reached": sim.get(reached) if sim and reached is not None else None,
        "client_macs": avg("client_macs_per_client"),
        "server_macs": avg("server_macs"),
        "wall": sum(r.get("wall_s", 0.0) for r in rows),
        "extra": {c: last_mean(rows, c, last) for c in extra},
    }


def mean_sd(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def fmt_pm(m, sd, scale=100.0, digits=2):
    if m is None:
        return "—"
    return f"{m * scale:.{digits}f} ± {sd * scale:.{digits}f}"


def fmt_delta(m, sd):
    return "—" if m is None else f"{m * 100:+.2f} ± {sd * 100:.2f}"


def fmt_num(x, unit_suffix=""):
    if x is None:
        return "—"
    for unit, s in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= s:
            return f"{x / s:.3g}{unit}{unit_suffix}"
    return f"{x:.3g}{unit_suffix}"


def fmt_min(m, sd):
    return "—" if m is None else f"{m / 60:.1f} ± {sd / 60:.1f}"


def summarise(g, root, runs):
    out_dir = os.path.join(root, g["name"])
    labels = list(dict.fromkeys(r["label"] for r in runs))
    table, columns = [], set()
    total_wall = 0.0
    by_seed = {}  # label -> seed -> per-run stats
    for label in labels:
        stats, diverged = [], 0
        for r in runs:
            if r["label"] != label or not os.path.isdir(r["dir"]):
                continue
            info = read_info(r)
            if info.get("diverged"):
                diverged += 1
                continue
            s = per_run(read_metrics(r["dir"]), g["metric"], g["target"], g["last"],
                        g.get("columns", []))
            if s:
                stats.append(s)
                by_seed.setdefault(label, {})[r["seed"]] = s
                columns.add(s["column"])
        total_wall += sum(s["wall"] for s in stats)
        row = {"run": label, "seeds": len(stats), "diverged": diverged,
               "of": len([r for r in runs if r["label"] == label])}
        for k in ("final", "last_mean", "best", "bytes", "down", "up", "client_macs", "server_macs",
                  "wall", "sim_total"):
            row[k] = mean_sd([s[k] for s in stats])
        reached = [s["reached"] for s in stats if s["reached"] is not None]
        row["reached"] = (mean_sd(reached)[0], len(reached))
        row["sim_reached"] = mean_sd([s["sim_reached"] for s in stats])
        row["rounds"] = sorted({s["rounds"] for s in stats})
        row["extra"] = {c: mean_sd([s["extra"][c] for s in stats]) for c in g.get("columns", [])}
        table.append(row)
    ref = check_reference(g, labels)

    def ref_of(label):
        """The reference run for `label`: the named run, or the named arm at the same grid point."""
        return ref if ref in labels else ref + label[len(label.split(",")[0]):]

    for row in table:
        # The difference to the reference run of the same seed: the partition and the data are
        # the same, so the seed-to-seed spread of the data cancels out.
        pairs = [(s, by_seed.get(ref_of(row["run"]), {}).get(seed))
                 for seed, s in by_seed.get(row["run"], {}).items()]
        pairs = [(a, b) for a, b in pairs if b is not None]
        row["delta_final"] = mean_sd([a["final"] - b["final"] for a, b in pairs]) if ref else (None, None)
        row["delta_last"] = mean_sd([a["last_mean"] - b["last_mean"] for a, b in pairs]) if ref else (None, None)
        row["pairs"] = len(pairs)

    with open(os.path.join(out_dir, "summary.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["run", "seeds", "diverged", "rounds", "final_mean", "final_sd", "last_mean", "last_sd",
                    "best_mean", "best_sd", "rounds_to_target_mean", "seeds_reaching_target",
                    "bytes_per_client_round", "client_macs_per_client_round", "server_macs_per_round",
                    "wall_s_mean", "wall_s_sd", "delta_final_mean", "delta_final_sd",
                    "delta_last_mean", "delta_last_sd", "paired_seeds"])
        for t in table:
            def num(x):
                return "" if x is None else repr(round(x, 10))
            w.writerow([t["run"], t["seeds"], t["diverged"], "/".join(map(str, t["rounds"])),
                        num(t["final"][0]), num(t["final"][1]), num(t["last_mean"][0]),
                        num(t["last_mean"][1]), num(t["best"][0]), num(t["best"][1]),
                        num(t["reached"][0]), t["reached"][1], num(t["bytes"][0]),
                        num(t["client_macs"][0]), num(t["server_macs"][0]), num(t["wall"][0]),
                        num(t["wall"][1]), num(t["delta_final"][0]), num(t["delta_final"][1]),
                        num(t["delta_last"][0]), num(t["delta_last"][1]), t["pairs"]])

    col = "/".join(sorted(columns)) or g["metric"]
    split = bool(g.get("split_bytes", False))  # grid key: bytes down and up in two columns
    timed = any(t["sim_total"][0] is not None for t in table)  # runs with a fleet's clock
    bytes_head = "bytes down | bytes up" if split else "bytes/client/round"
    time_head = f" sim min to {g['target']:.0%} | sim min, all rounds |" if timed else ""
    lines = [f"# {g.get('title', g['name'])}", "",
             f"Generated by `scripts/sweep.py` from `results/{g['name']}/*/seed*/metrics.csv`; regenerate with "
             f"`scripts/sweep.py <grid> --summary-only`.", ""]
    if g.get("note"):
        lines += [g["note"].strip(), ""]
    lines += [f"Accuracy column: `{col}`, in percent, mean ± sd over the seeds that finished. "
              f"*Last {g['last']}* = mean over the last {g['last']} evaluated rounds of each run; "
              f"*best* = best evaluated round; *to {g['target']:.0%}* = first round reaching it "
              f"(mean over the seeds that reach it, and how many do). Bytes = down + up per sampled "
              f"client per round; MACs = multiply-adds per sampled client per round (training = 3x "
              f"forward); server MACs per round where the server trains. Wall = seconds per run. "
              f"Seeds = finished runs / runs in the grid; a diverged run (non-finite loss) is "
              f"counted apart and left out of the statistics." +
              (" Bytes down and up are per sampled client per round." if split else "") +
              (f" *Sim min* = simulated minutes on the run's device fleet (fleet.profile; "
               f"sim_time_s): to the first round at {g['target']:.0%} (mean over the seeds that reach "
               f"it) and for all rounds." if timed else "") +
              (f" *Δ vs {ref}* = the run's last-{g['last']} mean minus {ref}'s for the same seed "
               f"(same partition), mean ± sd over the paired seeds, in points: a difference "
               f"smaller than its sd is inside the noise." if ref else ""),
              "",
              f"| run | seeds | rounds | final | last {g['last']} | " +
              (f"Δ vs {ref} | " if ref else "") + f"best | to {g['target']:.0%} | "
              f"{bytes_head} | client MACs | server MACs | wall s |" + time_head,
              "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if ref else "") +
              ("---|" if split else "") + ("---|---|" if timed else "")]
    for t in table:
        reach = "—" if t["reached"][1] == 0 else f"{t['reached'][0]:.1f} ({t['reached'][1]}/{t['seeds']})"
        wall = "—" if t["wall"][0] is None else f"{t['wall'][0]:.0f} ± {t['wall'][1]:.0f}"
        div = f" ({t['diverged']} diverged)" if t["diverged"] else ""
        lines.append(
            f"| {t['run']} | {t['seeds']}/{t['of']}{div} | {'/'.join(map(str, t['rounds'])) or '—'} | "
            f"{fmt_pm(*t['final'])} | {fmt_pm(*t['last_mean'])} | " +
            (f"{fmt_delta(*t['delta_last'])} | " if ref else "") +
            f"{fmt_pm(*t['best'])} | {reach} | " +
            (f"{fmt_num(t['down'][0], 'B')} | {fmt_num(t['up'][0], 'B')} | " if split else
             f"{fmt_num(t['bytes'][0], 'B')} | ") +
            f"{fmt_num(t['client_macs'][0])} | {fmt_num(t['server_macs'][0])} | {wall} |" +
            (f" {fmt_min(*t['sim_reached'])} | {fmt_min(*t['sim_total'])} |" if timed else ""))
    extra = g.get("columns", [])
    if extra:
        lines += ["", f"Other columns of `metrics.csv`: each run's mean over its last {g['last']} "
                  f"rounds that have the column, mean ± sd over seeds (accuracies in percent).", "",
                  "| run | " + " | ".join(extra) + " |", "|---|" + "---|" * len(extra)]
        for t in table:
            cells = []
            for c in extra:
                m, sd = t["extra"][c]
                cells.append(fmt_pm(m, sd) if "accuracy" in c else
                             "—" if m is None else f"{m:.4g} ± {sd:.2g}")
            lines.append(f"| {t['run']} | " + " | ".join(cells) + " |")
    lines += ["", f"Compute: {total_wall / 3600:.2f} h of run wall time in all "
              f"({sum(t['seeds'] for t in table)} runs).", ""]
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write("\n".join(lines))
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("grid")
    ap.add_argument("--results", default="results", help="root of the results tree (default results/)")
    ap.add_argument("--fedpp", default=os.environ.get("FEDPP", "build/fedpp"))
    ap.add_argument("--commit", default="", help="the commit --fedpp was built from, for run.json "
                    "(default: this checkout's HEAD; give it for a binary built elsewhere)")
    ap.add_argument("--summary-only", action="store_true", help="only regenerate the summary")
    ap.add_argument("--check", action="store_true", help="validate the grid and its configs, run nothing")
    ap.add_argument("--list", action="store_true", help="list the runs and whether they are done")
    ap.add_argument("--max-runs", type=int, default=0, help="stop after this many new runs (0 = all)")
    ap.add_argument("--only", default="", help="run only runs whose name starts with one of these "
                    "comma-separated prefixes")
    args = ap.parse_args()

    g = load_grid(args.grid)
    runs = runs_of(g, args.results)
    check_reference(g, [r["label"] for r in runs])  # before any run starts
    if args.list:
        for r in runs:
            done = os.path.isdir(r["dir"])
            print(f"{'done ' if done else 'to do'}  {r['label']}  seed {r['seed']}")
        return
    if not args.summary_only:
        if not os.access(args.fedpp, os.X_OK):
            die(f"fedpp binary '{args.fedpp}' not found: build it (bash scripts/build.sh) or pass --fedpp")
        todo = [r for r in runs if not os.path.isdir(r["dir"])]  # renamed from .partial = finished
        for r in runs:
            if os.path.isdir(r["dir"]):
                check_same_command(r)
        if args.only:
            prefixes = args.only.split(",")
            todo = [r for r in todo if any(r["label"].startswith(p) for p in prefixes)]
        check_all(g, todo if not args.check else runs, args.fedpp)
        if args.check:
            print(f"ok: grid '{g['name']}': {len(runs)} runs, {len(todo)} to do")
            return
        os.makedirs(os.path.join(args.results, g["name"]), exist_ok=True)
        commit = args.commit or git_commit()
        t0 = time.time()
        for i, r in enumerate(todo):
            if args.max_runs and i >= args.max_runs:
                break
            print(f"[{time.time() - t0:7.0f}s] {i + 1}/{len(todo)} {r['label']} seed {r['seed']}",
                  flush=True)
            run_one(r, args.fedpp, commit)
    os.makedirs(os.path.join(args.results, g["name"]), exist_ok=True)
    summarise(g, args.results, runs)
    print(open(os.path.join(args.results, g["name"], "summary.md")).read())


if __name__ == "__main__":
    main()
