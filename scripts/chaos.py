#!/usr/bin/env python3
"""Chaos trials for a deployment (issue 11), on loopback only and bounded in time.

    scripts/chaos.py [--fedpp build/fedpp] [--trials 10] [--clients 6] [--rounds 6]
                     [--kill-fraction 0.3] [--algorithm fedmoe] [--work DIR] [--keep]

Each trial starts `fedpp serve` and one `fedpp join` per client on 127.0.0.1 and, in every
round at a random moment 0.1-1 s after it began, SIGKILLs a random 30% of the clients (each is
restarted with its state folder after up to a second), except in one round chosen at random
after the first checkpoint (or the first later round it catches), where it SIGKILLs the server
and restarts it with `--resume`. A trial survives when the server finishes every round (exit 0)
within --trial-timeout seconds, no client failing by itself; its final models are identical when metrics.csv (timing columns aside), global_model.pt (where the method has one) and
every client's personalised model (output.save_client_models), byte for byte, equal those of
`fedpp run` on the same config (the simulation, which is what an undisturbed deployment
gives). Prints one line per trial and then "survived K/N, identical final models M/N"; exits 0
only when both are N/N.

The default method is FedMoE because its clients keep private state between rounds (the
personalised expert and gate): a killed client must come back with it for the models to match.
Each trial uses its own seed (--seed + trial), so the data, the sampling and the kill times
differ between trials. Stdlib only; nothing leaves the machine.
"""
import argparse
import csv
import glob
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TIMING = {"wall_s", "fit_s", "eval_s"}  # columns that measure this machine's time

CONFIG = """seed = {seed}
rounds = {rounds}
[algorithm]
name = "{algorithm}"
[data]
dataset = "synthetic"
synthetic_samples = 1200
synthetic_test_samples = 200
synthetic_classes = 4
num_clients = {clients}
partition = "pathological"
classes_per_client = 2
pool = "all"
client_test_fraction = 0.2
[sampling]
fraction = 0.67
[train]
local_epochs = 1
lr = 0.05
momentum = 0.9
batch_size = 32
[runtime]
workers = 1
threads = 1
[output]
quiet = true
dir = "{out}"
save_client_models = true
[deploy]
token_secret = "chaos-trials-secret"
poll_s = 0.5
round_timeout_s = 600
client_give_up_s = 120
"""
EXTRA = {
    "fedmoe": '[hetero]\nsetting = "heterogeneous"\n[fedmoe]\nglobal_expert = "cnn5"\n',
    "fedavg": '[model]\nname = "cnn5"\n',
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows_of(folder):
    path = os.path.join(folder, "metrics.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def done_rounds(folder):
    path = os.path.join(folder, "metrics.csv")
    try:
        with open(path) as f:
            return max(0, sum(1 for _ in f) - 1)
    except OSError:
        return 0


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


class Trial:
    def __init__(self, args, index):
        self.args = args
        self.index = index
        self.seed = args.seed + index
        self.rng = random.Random(self.seed)
        self.dir = os.path.join(args.work, f"trial{index}")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.out = os.path.join(self.dir, "out")
        self.config = os.path.join(self.dir, "config.toml")
        with open(self.config, "w") as f:
            f.write(CONFIG.format(seed=self.seed, rounds=args.rounds, algorithm=args.algorithm,
                                  clients=args.clients, out=self.out) + EXTRA[args.algorithm])
        self.port = free_port()
        self.logs = []
        self.client_kills = 0
        self.server_kills = 0

    def start(self, name, cmd):
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        self.logs.append(log.name)
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))

    def serve(self, resume):
        cmd = [self.args.fedpp, "serve", self.config, "--listen", f"127.0.0.1:{self.port}"]
        return self.start("server", cmd + (["--resume"] if resume else []))

    def join(self, c):
        token = self.tokens[c]
        return self.start(f"client{c}", [
            self.args.fedpp, "join", self.config, "--server", f"127.0.0.1:{self.port}",
            "--client-id", str(c), "--token", token,
            "--state-dir", os.path.join(self.dir, f"state{c}")])

    def reference(self):
        ref = os.path.join(self.dir, "reference")
        p = subprocess.run([self.args.fedpp, "run", self.config, "--out", ref],
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            sys.exit(f"chaos: the reference simulation failed:\n{p.stderr[-2000:]}")
        return ref

    def run(self):
        a = self.args
        ref = self.reference()
        p = subprocess.run([a.fedpp, "tokens", self.config], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"chaos: fedpp tokens failed:\n{p.stderr[-2000:]}")
        self.tokens = {int(l.split()[0]): l.split()[1] for l in p.stdout.split("\n") if l.strip()}
        server = self.serve(False)
        clients = {c: self.join(c) for c in range(a.clients)}
        restart_at = {}  # client -> time to restart it
        # One event per round, at a random moment inside it: SIGKILL a random kill_fraction of
        # the clients, or, in one round chosen at random (after the first checkpoint), the server.
        server_round = self.rng.randint(2, max(2, a.rounds - 1))  # later rounds may catch it
        start = time.monotonic()
        survived = False
        seen = -1      # rounds completed when the current round's event was scheduled
        event = None   # time of the current round's event
        while time.monotonic() - start < a.trial_timeout:
            now = time.monotonic()
            for c, t in list(restart_at.items()):
                if now >= t:
                    clients[c] = self.join(c)
                    del restart_at[c]
            crashed = [c for c, p in clients.items() if c not in restart_at and p.poll() not in (None, 0)]
            if crashed:  # a client that failed by itself (not killed here): the trial fails
                print(f"  client(s) {crashed} exited with an error; see client<id>.log", flush=True)
                break
            rc = server.poll()
            if rc is not None:
                survived = rc == 0 and done_rounds(self.out) == a.rounds
                break
            done = done_rounds(self.out)
            if done != seen and done < a.rounds:  # round done + 1 is running: schedule its event
                seen = done
                event = now + self.rng.uniform(0.1, 1.0)
            if event is not None and now >= event:
                event = None
                # Only mid-round: skip when the round it was drawn for has closed meanwhile
                # (after the last round the clients are exporting their models; a client killed
                # then has no server left to rejoin, which is outside these trials).
                if done_rounds(self.out) != seen:
                    continue
                if done + 1 >= server_round and self.server_kills == 0:
                    server.send_signal(signal.SIGKILL)
                    server.wait()
                    self.server_kills += 1
                    time.sleep(self.rng.uniform(0.2, 1.0))
                    server = self.serve(True)
                else:
                    alive = [c for c, p in clients.items() if p.poll() is None and c not in restart_at]
                    k = min(len(alive), math.ceil(a.kill_fraction * a.clients))
                    for c in self.rng.sample(alive, k):
                        clients[c].send_signal(signal.SIGKILL)
                        clients[c].wait()
                        self.client_kills += 1
                        restart_at[c] = time.monotonic() + self.rng.uniform(0.0, 1.0)
            time.sleep(0.05)
        if server.poll() is None:
            server.kill()
            server.wait()
        # Clients hear "done" and exit; any left after a grace period are stopped.
        deadline = time.monotonic() + 15
        for p in clients.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        same_rows = rows_of(self.out) == rows_of(ref) and len(rows_of(ref)) == a.rounds
        # The global model (where the method has one) and every client's personalised model.
        pairs = [(os.path.join(self.out, "global_model.pt"), os.path.join(ref, "global_model.pt"))]
        for c in range(a.clients):
            runs = glob.glob(os.path.join(self.dir, f"state{c}", "*", "client_models"))
            mine = os.path.join(runs[0], f"client_{c}.pt") if len(runs) == 1 else "(none)"
            pairs.append((mine, os.path.join(ref, "client_models", f"client_{c}.pt")))
        same_model = all(read_bytes(x) == read_bytes(y) for x, y in pairs) and \
            any(read_bytes(y) is not None for _, y in pairs)
        identical = survived and same_rows and same_model
        print(f"trial {self.index + 1}: seed {self.seed}, {self.client_kills} client kills, "
              f"{self.server_kills} server kill(s), {time.monotonic() - start:.0f} s: "
              f"{'survived' if survived else 'FAILED'}, "
              f"{'identical' if identical else 'DIFFERENT'} "
              f"(metrics {'=' if same_rows else '!='}, models "
              f"{'=' if same_model else '!='})", flush=True)
        if not (survived and identical):
            print(f"  logs: {self.dir}", flush=True)
        return survived, identical


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fedpp", default="build/fedpp")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--kill-fraction", type=float, default=0.3)
    ap.add_argument("--algorithm", choices=sorted(EXTRA), default="fedmoe")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trial-timeout", type=float, default=300)
    ap.add_argument("--work", default=None, help="folder for the trials (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the trials' folders")
    args = ap.parse_args()
    if not (os.path.isfile(args.fedpp) and os.access(args.fedpp, os.X_OK)):
        sys.exit(f"chaos: no fedpp binary at '{args.fedpp}': build it or pass --fedpp")
    if not 2 <= args.clients <= 64 or not 1 <= args.rounds <= 100 or not 0 < args.kill_fraction < 1:
        sys.exit("chaos: need 2-64 clients, 1-100 rounds and a kill fraction in (0, 1)")
    args.fedpp = os.path.abspath(args.fedpp)
    tmp = args.work is None
    args.work = args.work or tempfile.mkdtemp(prefix="fedpp_chaos_")
    survived = identical = 0
    failed = False
    for i in range(args.trials):
        s, same = Trial(args, i).run()
        survived += s
        identical += same
        failed |= not (s and same)
    print(f"survived {survived}/{args.trials}, identical final models {identical}/{args.trials}")
    if tmp and not args.keep and not failed:
        shutil.rmtree(args.work, ignore_errors=True)
    sys.exit(0 if survived == identical == args.trials else 1)


if __name__ == "__main__":
    main()
