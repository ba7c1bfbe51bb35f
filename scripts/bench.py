#!/usr/bin/env python3
"""Run fedpp's benchmarks and write their table into bench/README.md (issue 12, item 7).

Run it alone on a quiet machine (no build, test or experiment beside it): every figure is the
median of --reps runs, and the allocator comparison runs the two settings in turn (A B A B ...)
and takes the ratio pair by pair, so that a drift of the machine's speed does not bias it.

    scripts/bench.py                   # all benchmarks, 5 runs each (about 30 minutes on 2 cores)
    scripts/bench.py --reps 3 --only models,codec
    scripts/bench.py --render-only     # rewrite bench/README.md from bench/results.json

What it runs (each from build/, as README.md's build makes them):
  models    bench_models: local-training samples/s per zoo model, batch 64, 2 threads; each
            repetition runs it with fedpp's process settings, without huge pages
            (FEDPP_HUGEPAGES=0) and with glibc's malloc defaults (also FEDPP_MALLOC_TUNING=0,
            runtime/threads.hpp), in turn.
  overhead  bench_overhead: FedAvg rounds in the simulation against a bare LibTorch loop, each
            in its own process, in turn.
  codec     bench_codec: encode and decode of the whole FedAvg CNN, headline pipelines.
  compression  bench_compression_round: the codec's share of a Federated Dropout round
            (configs/fedavg_fmnist_compressed.toml, 3 rounds) with Hadamard and with Kashin,
            in turn.
  rss       peak resident memory of one round of bench/fedavg_20_clients.toml (issue 12's
            20-client FedAvg job on all 70,000 Fashion-MNIST images), from the kernel's
            accounting of the finished process.
  deploy    bench_deploy: gRPC round overhead (50 clients) and a 100 MB model over loopback,
            with and without huge pages, in turn.
  idle      bench_deploy --idle-clients 1000: 1,000 lightweight clients (one connection each)
            hold a long poll open; the server process's thread count and peak RSS.
  memory    bench_client_memory 1000: private state of 1,000 FedMoE clients and the peak RSS,
            one process per input shape (bytes: one run).
  mpi       the same FedAvg run (bench/mpi_fedavg.toml) in one process and over `mpirun -np 2`
            and `-np 3`, in turn; per-round wall time from metrics.csv (docs/scale.md). Skipped
            when mpirun is missing or fedpp was built without MPI.
The raw figures go to bench/results.json; bench/README.md's table between the markers
<!-- bench:begin --> and <!-- bench:end --> is generated from it. Only the standard library.
"""
import argparse
import csv
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
RESULTS = os.path.join(ROOT, "bench", "results.json")
README = os.path.join(ROOT, "bench", "README.md")
CODEC_ROWS = ["float32", "identity+q8", "hadamard+q4", "hadamard+s0.5+q4", "kashin+q4",
              "kashin+s0.5+q4"]
ALL = ["models", "overhead", "codec", "compression", "rss", "deploy", "idle", "memory", "mpi"]
# bench_compression_round settings: the default config (Hadamard both ways) and Kashin.
COMPRESSION = {"hadamard": [], "kashin": ["--set", 'codec.down.transform="kashin"',
                                         "--set", 'codec.up.transform="kashin"']}
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1"}


def run(cmd, env=None, timeout=1800):
    e = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    e.update(env or {})
    p = subprocess.run(cmd, cwd=ROOT, env=e, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"bench.py: error: {' '.join(cmd)} exited {p.returncode}:\n{p.stderr[-2000:]}")
    return p.stdout


def gbench(binary, args, env=None):
    """Google Benchmark's JSON: name -> list of its iteration runs (one per repetition)."""
    out = run([binary, "--benchmark_format=json"] + args, env)
    runs = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type", "iteration") == "iteration":
            runs.setdefault(b["name"].replace("/real_time", ""), []).append(b)
    return runs


# The process settings compared (runtime/threads.hpp): fedpp's default, then without huge pages,
# then glibc's malloc defaults (neither huge pages nor fedpp's thresholds).
NO_HUGE = {"FEDPP_HUGEPAGES": "0"}
GLIBC_DEFAULTS = {"FEDPP_HUGEPAGES": "0", "FEDPP_MALLOC_TUNING": "0"}


def bench_models(build, reps):
    keys = ["samples_per_s", "no_hugepages_samples_per_s", "glibc_default_samples_per_s"]
    out, meta = {}, {}
    for _ in range(reps):  # the three settings in turn, ratios pair by pair
        runs = [gbench(f"{build}/bench_models", ["--benchmark_min_time=1"], env)
                for env in (None, NO_HUGE, GLIBC_DEFAULTS)]
        for name in runs[0]:
            v = out.setdefault(name.split("/")[-1], {k: [] for k in keys + ["ratio_huge",
                                                                             "ratio"]})
            ips = [rr[name][0]["items_per_second"] for rr in runs]
            for k, x in zip(keys, ips):
                v[k].append(x)
            v["ratio_huge"].append(ips[0] / ips[1])
            v["ratio"].append(ips[0] / ips[2])
            meta[name.split("/")[-1]] = {"params": runs[0][name][0]["params"],
                                         "mmacs": runs[0][name][0]["MMACs/sample"]}
    return {n: {**v, **meta[n]} for n, v in out.items()}


def bench_overhead(build, reps):
    """bare and fedpp in separate processes, in turn (bare, fedpp, bare, ...)."""
    rows = []
    for _ in range(reps):
        bare = float(re.search(r"bare LibTorch loop :\s+([\d.]+) s",
                               run([f"{build}/bench_overhead", "--arm", "bare"])).group(1))
        fed = float(re.search(r"fedpp FedAvg rounds:\s+([\d.]+) s",
                              run([f"{build}/bench_overhead", "--arm", "fedpp"])).group(1))
        rows.append({"bare_s": bare, "fedpp_s": fed, "overhead": fed / bare - 1})
    return rows


def bench_codec(build, reps):
    flt = "^(encode|decode)/(" + "|".join(re.escape(r) for r in CODEC_ROWS) + ")$"
    res = gbench(f"{build}/bench_codec", [f"--benchmark_filter={flt}",
                                          f"--benchmark_repetitions={reps}",
                                          "--benchmark_min_time=0.5"])
    out = {}
    for name, runs in res.items():
        to_ms = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
        out[name] = {"ms": [b["real_time"] * to_ms[b["time_unit"]] for b in runs],
                     "bytes": runs[0]["bytes_per_model"], "ratio_vs_f32": runs[0]["ratio_vs_f32"]}
    return out


def bench_compression(build, reps):
    """Per setting, per run: round wall s, codec s (serial sum) and bytes per client (totals)."""
    out = {k: [] for k in COMPRESSION}
    for _ in range(reps):
        for setting, args in COMPRESSION.items():
            text = run([f"{build}/bench_compression_round"] + args)
            tot = re.search(r"^total\s+([\d.]+)\s+([\d.]+)", text, re.M)
            rows = re.findall(r"^\s*\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+%\s+(\d+)\s+(\d+)", text, re.M)
            desc = re.search(r"down (\S+), up (\S+),", text)
            out[setting].append({"wall_s": float(tot.group(1)), "codec_s": float(tot.group(2)),
                                 "down_bytes": float(rows[-1][0]), "up_bytes": float(rows[-1][1]),
                                 "down": desc.group(1), "up": desc.group(2)})
    return out


def bench_rss(build, reps):
    """Peak RSS (MiB) and wall s of `fedpp run bench/fedavg_20_clients.toml`, one process a run,
    and the round's own times from its metrics.csv (fit_s: the round's training, aggregation
    included; eval_s: evaluation)."""
    import tempfile
    import time
    out = []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as d:
            # A fresh Python child measures the one fedpp process, alone in its RUSAGE_CHILDREN.
            probe = ("import resource,subprocess,sys;"
                     "subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL);"
                     "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
            t0 = time.monotonic()
            kb = run([sys.executable, "-c", probe, f"{build}/fedpp", "run",
                      "bench/fedavg_20_clients.toml", "--set", f'output.dir="{d}"'])
            wall = time.monotonic() - t0
            with open(os.path.join(d, "metrics.csv")) as f:
                rows = list(csv.DictReader(f))
            out.append({"peak_mb": int(kb.strip()) / 1024, "wall_s": wall,
                        "fit_s": float(rows[0]["fit_s"]), "eval_s": float(rows[0]["eval_s"])})
    return out


def bench_deploy(build, reps):
    """fedpp's default and without huge pages, in turn."""
    out = {"default": [], "no_hugepages": []}
    for _ in range(reps):
        for setting, env in (("default", None), ("no_hugepages", NO_HUGE)):
            text = run([f"{build}/bench_deploy"], env)
            m = re.search(r"rounds 2-6, mean: simulation ([\d.]+) s/round, gRPC deployment "
                          r"([\d.]+) s/round", text)
            ms = re.search(r"rounds 11-\d+, median: simulation ([\d.]+) s/round, gRPC deployment "
                           r"([\d.]+) s/round", text)
            cpu = re.search(r"simulation ([\d.]+) s; gRPC deployment: server process ([\d.]+) s, "
                            r"client process ([\d.]+) s", text)
            d = re.search(r"download \(FetchTask\) first ([\d.]+) MB/s, later ([\d.]+) MB/s", text)
            u = re.search(r"upload .*? first ([\d.]+) MB/s, later ([\d.]+) MB/s", text)
            tcp = re.search(r"into fresh memory ([\d.]+) MB/s, into touched memory ([\d.]+) MB/s",
                            text)
            out[setting].append({"sim_round_s": float(m.group(1)),
                                 "grpc_round_s": float(m.group(2)),
                                 "sim_steady_s": float(ms.group(1)),
                                 "grpc_steady_s": float(ms.group(2)),
                                 "cpu_sim_s": float(cpu.group(1)),
                                 "cpu_server_s": float(cpu.group(2)),
                                 "cpu_clients_s": float(cpu.group(3)),
                                 "down1_mb_s": float(d.group(1)), "down_mb_s": float(d.group(2)),
                                 "up1_mb_s": float(u.group(1)), "up_mb_s": float(u.group(2)),
                                 "tcp_fresh_mb_s": float(tcp.group(1)),
                                 "tcp_mb_s": float(tcp.group(2))})
    return out


IDLE_CLIENTS = 1000


def bench_idle(build, reps):
    """Server threads and peak RSS while 1,000 clients' long polls wait (10 s)."""
    out = []
    for _ in range(reps):
        text = run([f"{build}/bench_deploy", "--idle-clients", str(IDLE_CLIENTS), "--wait-s", "10"])
        t = re.search(r"(\d+) threads before the clients came, peak (\d+) .*?peak RSS ([\d.]+) MiB",
                      text)
        w = re.search(r"(\d+) answered WAIT after their [\d.]+ s wait \(between ([\d.]+) and "
                      r"([\d.]+) s", text)
        out.append({"clients": IDLE_CLIENTS, "threads_before": int(t.group(1)),
                    "threads_peak": int(t.group(2)), "peak_rss_mib": float(t.group(3)),
                    "answered_wait": int(w.group(1)), "first_s": float(w.group(2)),
                    "last_s": float(w.group(3))})
    return out


MEMORY_CLIENTS = 1000


def bench_memory(build, reps):
    """Per input shape, in its own process: the clients' private state and the peak RSS (MB)."""
    res = {}
    for which in ("mnist", "cifar"):
        out = run([f"{build}/bench_client_memory", str(MEMORY_CLIENTS), which])
        shape, mb = re.search(r"input \[([\d, ]+)\].*?total ([\d.]+) MB", out, re.S).groups()
        peak = float(re.search(r"peak RSS of the process so far ([\d.]+) MiB", out).group(1))
        res[f"[{shape}]"] = {"state_mb": float(mb), "peak_mb": peak, "clients": MEMORY_CLIENTS}
    return res


def bench_mpi(build, reps):
    import csv
    import shutil
    import tempfile
    import time
    mpirun = shutil.which("mpirun")
    if not mpirun:
        print("bench.py: mpi: mpirun not found (apt-get install openmpi-bin): skipped")
        return None
    cfg = os.path.join(ROOT, "bench", "mpi_fedavg.toml")
    arms = {"1 process, 2 workers": [],
            "mpirun -np 2 (1 client rank, 2 workers)": ["-np", "2", "--bind-to", "none"],
            "mpirun -np 3 (2 client ranks, 1 worker each)": ["-np", "3", "--bind-to", "none"]}
    out = {a: {"round_s": [], "fit_s": [], "process_s": []} for a in arms}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(reps):
            for arm, np_args in arms.items():
                folder = os.path.join(tmp, "run")
                cmd = [f"{build}/fedpp", "run", cfg, "--out", folder]
                if "-np 3" in arm:
                    cmd += ["--set", "runtime.workers=1"]
                if np_args:
                    cmd = [mpirun] + np_args + cmd
                t0 = time.monotonic()
                run(cmd, MPI_ENV)
                out[arm]["process_s"].append(time.monotonic() - t0)
                rows = list(csv.DictReader(open(os.path.join(folder, "metrics.csv"))))[1:]
                out[arm]["round_s"].append(statistics.mean(float(r["wall_s"]) for r in rows))
                out[arm]["fit_s"].append(statistics.mean(float(r["fit_s"]) for r in rows))
                shutil.rmtree(folder)
    return out


def med(xs):
    return statistics.median(xs)


def spread(xs, fmt):
    return f"{fmt.format(med(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def render(r):
    m = r["machine"]
    L = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB. Each cell: median "
         "(min–max) of the runs; each section says when, at which commit and how many runs "
         "(`scripts/bench.py --reps N --only SECTION`).", ""]
    meta = r.get("meta", {})

    def when(name):
        w = meta.get(name, {})
        return (f"Measured {w.get('date', '?')} at commit {w.get('commit', '?')}, "
                f"{w.get('reps', '?')} runs.")
    if "models" in r:
        L += ["### Local training (`bench_models`: batch 64, 2 threads, SGD)", "",
              when("models") + " Three process settings in turn (runtime/threads.hpp): "
              "fedpp's default (huge pages and its malloc thresholds), `FEDPP_HUGEPAGES=0`, and "
              "glibc's malloc defaults (`FEDPP_HUGEPAGES=0 FEDPP_MALLOC_TUNING=0`); speed-ups "
              "are medians of the ratios pair by pair.", "",
              "| model | params | MMACs/sample | samples/s | without huge pages | "
              "glibc's malloc defaults | speed-up vs no huge pages | vs glibc defaults |",
              "|---|---|---|---|---|---|---|---|"]
        for n, v in r["models"].items():
            nohuge = v.get("no_hugepages_samples_per_s")
            L.append(f"| {n} | {v['params']:,.0f} | {v['mmacs']:.2f} | "
                     f"{spread(v['samples_per_s'], '{:,.0f}')} | "
                     f"{spread(nohuge, '{:,.0f}') if nohuge else '–'} | "
                     f"{spread(v['glibc_default_samples_per_s'], '{:,.0f}')} | "
                     f"{(format(med(v['ratio_huge']), '.2f') + 'x') if nohuge else '–'} | "
                     f"{med(v['ratio']):.2f}x |")
        L.append("")
    if "overhead" in r:
        o = r["overhead"]
        L += ["### Framework overhead (`bench_overhead`: FedAvg CNN, 10 clients x 300 samples, "
              "batch 32, 3 rounds, 1 worker x 2 threads)", "", when("overhead") +
              " The bare loop and fedpp run in separate processes, in turn.", "",
              "| bare LibTorch loop | fedpp FedAvg rounds | overhead |", "|---|---|---|",
              f"| {spread([x['bare_s'] for x in o], '{:.2f}')} s | "
              f"{spread([x['fedpp_s'] for x in o], '{:.2f}')} s | "
              f"{spread([100 * x['overhead'] for x in o], '{:+.1f}')} % |", ""]
    if "codec" in r:
        L += ["### Codecs (`bench_codec`: the whole FedAvg CNN, 1,663,370 floats, one thread)",
              "", when("codec"), "",
              "| pipeline | bytes | vs float32 | encode ms | decode ms |", "|---|---|---|---|---|"]
        for p in CODEC_ROWS:
            e, d = r["codec"].get(f"encode/{p}"), r["codec"].get(f"decode/{p}")
            if e and d:
                L.append(f"| {p} | {e['bytes']:,.0f} | {e['ratio_vs_f32']:.1f}x | "
                         f"{spread(e['ms'], '{:.1f}')} | {spread(d['ms'], '{:.1f}')} |")
        L.append("")
    if "compression" in r:
        L += ["### Compression in a round (`bench_compression_round`: Federated Dropout 0.25, "
              "FedAvg CNN, 5 clients, 3 rounds, 2 workers)", "", when("compression") +
              " Codec time is the serial sum of every encode and decode of the rounds (server "
              "encode, client decode, client encode, server decode per client) on one thread: "
              "an upper bound on what compression adds, as the clients' share runs on the "
              "worker threads. Issue 12's targets: at most 2% (Hadamard) and 4% (Kashin).", "",
              "| codecs (down / up) | round wall s (3 rounds) | codec s | codec share | "
              "bytes down / up per client |", "|---|---|---|---|---|"]
        for setting, rows in r["compression"].items():
            share = [100 * x["codec_s"] / x["wall_s"] for x in rows]
            L.append(f"| {rows[0]['down']} / {rows[0]['up']} | "
                     f"{spread([x['wall_s'] for x in rows], '{:.2f}')} | "
                     f"{spread([x['codec_s'] for x in rows], '{:.3f}')} | "
                     f"{spread(share, '{:.1f}')} % | "
                     f"{rows[0]['down_bytes']:,.0f} / {rows[0]['up_bytes']:,.0f} |")
        L.append("")
    if "rss" in r:
        L += ["### Peak memory (`fedpp run bench/fedavg_20_clients.toml`: FedAvg, 20 clients, "
              "70,000 Fashion-MNIST images, one round)", "", when("rss") + " Peak resident set "
              "of the process (the kernel's accounting); issue 12's target is 0.7 GB. The "
              "round's training (`fit_s` of metrics.csv: the 20 clients' local epoch, their "
              "messages and the aggregation) and its evaluation; issue 12 started from 37-39 s "
              "of training a round and asks for 1.5x faster (at most 25 s).", "",
              "| peak RSS | wall s (build, one round, evaluation) | training s (fit_s) | "
              "evaluation s (eval_s) |", "|---|---|---|---|",
              f"| {spread([x['peak_mb'] for x in r['rss']], '{:,.0f}')} MiB | "
              f"{spread([x['wall_s'] for x in r['rss']], '{:.1f}')} | "
              f"{spread([x['fit_s'] for x in r['rss'] if 'fit_s' in x], '{:.1f}')} | "
              f"{spread([x['eval_s'] for x in r['rss'] if 'eval_s' in x], '{:.1f}')} |", ""]
    if "deploy" in r:
        d = r["deploy"]
        if isinstance(d, list):  # results.json from before the settings were compared
            d = {"default": d}
        L += ["### gRPC deployment on loopback (`bench_deploy`)", "", when("deploy") +
              " Round overhead: the same run of 50 clients (mlp on 1x4x4 inputs, 178 KB per"
              " message, 30 rounds) in simulation and through gRPC on loopback (the server in one"
              " process, the 50 clients in another, each with its own connection): wall time per"
              " round, the mean of rounds 2-6 (connections and gRPC still warming up) and the"
              " median of rounds 11-30; CPU time per round over the whole runs. Issue 12's"
              " target: at most 20 ms more than the simulation.", "",
              "| setting | rounds 2-6: simulation / gRPC | rounds 11-30: simulation / gRPC | "
              "overhead, rounds 2-6 / 11-30 | CPU per round: simulation / server / clients |",
              "|---|---|---|---|---|"]
        names = {"default": "default (huge pages)", "no_hugepages": "`FEDPP_HUGEPAGES=0`"}

        def ms(rows, key):
            if key not in rows[0]:  # results.json from before this was measured
                return "—"
            return f"{spread([x[key] * 1e3 for x in rows], '{:.0f}')} ms"

        def diff(rows, a, b):
            if a not in rows[0]:
                return "—"
            return f"{spread([(x[b] - x[a]) * 1e3 for x in rows], '{:.0f}')} ms"
        for setting, rows in d.items():
            L.append(f"| {names.get(setting, setting)} | "
                     f"{ms(rows, 'sim_round_s')} / {ms(rows, 'grpc_round_s')} | "
                     f"{ms(rows, 'sim_steady_s')} / {ms(rows, 'grpc_steady_s')} | "
                     f"{diff(rows, 'sim_round_s', 'grpc_round_s')} / "
                     f"{diff(rows, 'sim_steady_s', 'grpc_steady_s')} | "
                     f"{ms(rows, 'cpu_sim_s')} / {ms(rows, 'cpu_server_s')} / "
                     f"{ms(rows, 'cpu_clients_s')} |")
        L += ["", "Transfers of a 100 MB model (one client): the first (the client's receive "
              "buffer, and gRPC's flow-control window, start cold) and the median of the later "
              "ones; a plain TCP copy, measured in the same process (so it gains from huge pages "
              "too), into a destination first touched by the copy (fresh) and into one touched "
              "before. Issue 12's target: half of the TCP copy both ways.", "",
              "| setting | 100 MB down, first / later | 100 MB up (incl. decode), first / later | "
              "plain TCP copy, fresh / touched |", "|---|---|---|---|"]

        def pair(rows, a, b, old_is_first=True):
            if a not in rows[0]:  # results.json from before first and later were told apart:
                old = spread([x[b] for x in rows], '{:.0f}')  # one round; TCP into touched memory
                return f"{old} / —" if old_is_first else f"— / {old}"
            return (f"{spread([x[a] for x in rows], '{:.0f}')} / "
                    f"{spread([x[b] for x in rows], '{:.0f}')}")
        for setting, rows in d.items():
            L.append(f"| {names.get(setting, setting)} | "
                     f"{pair(rows, 'down1_mb_s', 'down_mb_s')} MB/s | "
                     f"{pair(rows, 'up1_mb_s', 'up_mb_s')} MB/s | "
                     f"{pair(rows, 'tcp_fresh_mb_s', 'tcp_mb_s', False)} MB/s |")
        L.append("")
    if "idle" in r:
        rows = r["idle"]
        n = rows[0]["clients"]
        L += [f"### {n:,} waiting clients (`bench_deploy --idle-clients {n} --wait-s 10`)", "",
              when("idle") + f" {n:,} clients, each on its own connection, hold a long poll "
              "open on a server that has no task for them; the server process's threads and "
              "peak RSS (the clients run in a child process). Issue 12 asks that they cost no "
              "thread each: built at 663ef65 (synchronous Poll), the server held one thread per "
              "waiting poll (1,011 threads at 1,000 clients, peak RSS 328 MiB; one run of the "
              "same command).", "",
              "| server threads before | peak while the polls wait | peak RSS | polls answered "
              "WAIT | answered between (s after the first poll) |", "|---|---|---|---|---|",
              f"| {spread([x['threads_before'] for x in rows], '{:.0f}')} | "
              f"{spread([x['threads_peak'] for x in rows], '{:.0f}')} | "
              f"{spread([x['peak_rss_mib'] for x in rows], '{:.0f}')} MiB | "
              f"{min(x['answered_wait'] for x in rows):,} of {n:,} (fewest in a run) | "
              f"{spread([x['first_s'] for x in rows], '{:.2f}')} to "
              f"{spread([x['last_s'] for x in rows], '{:.2f}')} |", ""]
    if "memory" in r:
        mem = r["memory"]  # state in MB (10^6 bytes), peak RSS in MiB (the kernel's KiB / 1024)
        n = next(iter(mem.values())).get("clients", 100) if mem and isinstance(
            next(iter(mem.values())), dict) else 100
        L += [f"### Client state (`bench_client_memory {n}`: {n:,} heterogeneous FedMoE clients, "
              "runtime.state = memory, one input shape per process)", "", when("memory") +
              " Issue 12 asks that 1,000 clients fit in 24 GB.", "",
              "| input | private state, all clients | peak RSS of the process |", "|---|---|---|"]
        for shape, v in mem.items():
            if isinstance(v, dict):
                L.append(f"| {shape} | {v['state_mb']:,.1f} MB | {v['peak_mb']:,.0f} MiB |")
            else:  # results.json from before the peak was recorded
                L.append(f"| {shape} | {v:.1f} MB | – |")
        L.append("")
    if r.get("mpi"):
        L += ["### MPI (`bench/mpi_fedavg.toml`: FedAvg CNN, 6,000 images, 10 clients, "
              "rounds 2-4 of 4; docs/scale.md)", "", when("mpi"), "",
              "| layout | wall s per round | of which client training (fit_s) | whole process s |",
              "|---|---|---|---|"]
        for arm, v in r["mpi"].items():
            L.append(f"| {arm} | {spread(v['round_s'], '{:.2f}')} | "
                     f"{spread(v['fit_s'], '{:.2f}')} | {spread(v['process_s'], '{:.1f}')} |")
        L.append("")
    return "\n".join(L)


def write_readme(r):
    text = open(README).read()
    new = re.sub(r"(<!-- bench:begin -->\n).*?(<!-- bench:end -->)",
                 lambda m: m.group(1) + render(r) + "\n" + m.group(2), text, flags=re.S)
    open(README, "w").write(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default=",".join(ALL), help="comma list of: " + ",".join(ALL))
    ap.add_argument("--render-only", action="store_true")
    a = ap.parse_args()
    if a.render_only:
        write_readme(json.load(open(RESULTS)))
        return
    only = a.only.split(",")
    bad = [x for x in only if x not in ALL]
    if bad:
        sys.exit(f"bench.py: error: unknown benchmark {bad}: choose from {','.join(ALL)}")
    if a.reps < 1:
        sys.exit("bench.py: error: --reps must be at least 1")
    build = os.path.join(ROOT, a.build)
    if not os.path.exists(f"{build}/bench_models"):
        sys.exit(f"bench.py: error: {build}/bench_models not found: build first (scripts/build.sh)")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    mem = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    # Measured code that is not the commit's says so (the two files results land in aside).
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                             capture_output=True, text=True).stdout.splitlines()
    if any(l[3:] not in ("bench/results.json", "bench/README.md") for l in changed):
        commit += "+uncommitted changes"
    r = json.load(open(RESULTS)) if os.path.exists(RESULTS) else {}  # sections not rerun stay
    r["machine"] = {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem / 2**20)}
    r.setdefault("meta", {})
    fns = {"models": bench_models, "overhead": bench_overhead, "codec": bench_codec,
           "compression": bench_compression, "rss": bench_rss, "deploy": bench_deploy,
           "idle": bench_idle, "memory": bench_memory, "mpi": bench_mpi}
    for name in ALL:
        if name in only:
            print(f"bench.py: {name} ...", flush=True)
            r[name] = fns[name](build, a.reps)
            r["meta"][name] = {"date": datetime.date.today().isoformat(), "commit": commit,
                               "reps": a.reps}
    json.dump(r, open(RESULTS, "w"), indent=1)
    write_readme(r)
    print(render(r))


if __name__ == "__main__":
    main()
