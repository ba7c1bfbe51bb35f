#!/usr/bin/env python3
"""`mpirun -np K fedpp run CONFIG` gives the metrics of the single-process run (issue 15):
FedAvg, and FedMoE whose clients keep private state between rounds (which must stay on the rank
that hosts them), with clients sampled so that each rank trains a changing share. A client
rank's failure ends the run with an error naming the rank, and no rank hangs. Personalised client
models saved by the client ranks are the single-process files, byte for byte. A run checkpointed
over MPI resumes (over MPI or in one process) to the metrics of a run that never stopped.

Run by CTest (registered when CMake found MPI): python3 test_mpi.py FEDPP MPIRUN."""
import csv
import os
import subprocess
import sys
import tempfile

FEDPP, MPIRUN = sys.argv[1], sys.argv[2]
# Columns that measure this machine's time, not the run: they differ between any two runs.
TIMING = {"wall_s", "fit_s", "eval_s"}

BASE = """seed = 5
rounds = 3
[data]
dataset = "synthetic"
synthetic_samples = 1200
synthetic_test_samples = 200
synthetic_classes = 4
num_clients = 6
partition = "pathological"
classes_per_client = 2
pool = "all"
client_test_fraction = 0.2
[sampling]
fraction = 0.67
[train]
local_epochs = 2
lr = 0.05
momentum = 0.9
batch_size = 32
[runtime]
workers = 2
threads = 1
[output]
quiet = true
"""
FEDAVG = BASE.replace('partition = "pathological"', 'partition = "iid"') + \
    '[algorithm]\nname = "fedavg"\n[model]\nname = "cnn5"\n'
FEDMOE = BASE + '[algorithm]\nname = "fedmoe"\n[hetero]\nsetting = "heterogeneous"\n' \
                '[fedmoe]\nglobal_expert = "cnn5"\n'

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_btl_vader_single_copy_mechanism="none")


def metrics(folder):
    with open(os.path.join(folder, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def run(cmd, expect_ok=True):
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    if expect_ok and p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n"
                 f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def same_as_single_process(name, text, ranks, tmp):
    cfg = os.path.join(tmp, f"{name}.toml")
    with open(cfg, "w") as f:
        f.write(text)
    one, many = os.path.join(tmp, f"{name}_1"), os.path.join(tmp, f"{name}_mpi")
    run([FEDPP, "run", cfg, "--out", one])
    run([MPIRUN, "-np", str(ranks), FEDPP, "run", cfg, "--out", many])
    a, b = metrics(one), metrics(many)
    if len(a) != 3 or a != b:
        sys.exit(f"FAIL: {name}: metrics over {ranks} MPI processes differ from one process\n"
                 f"one process: {a}\nMPI:         {b}")
    if not any(float(v) > 0.3 for k, v in a[-1].items() if "accuracy" in k and v):
        sys.exit(f"FAIL: {name}: the run did not learn: {a}")
    print(f"ok: {name}: {ranks} processes give the single-process metrics ({len(a)} rounds)")


def client_models_as_one_process(tmp):
    """output.save_client_models: each client rank writes its clients' models; the folder equals
    the single-process one byte for byte (Standalone keeps a model per client)."""
    text = BASE + '[algorithm]\nname = "standalone"\n[hetero]\nsetting = "heterogeneous"\n' \
                  '[output]\nsave_client_models = true\n'
    text = text.replace("[output]\nquiet = true\n", "") + "quiet = true\n"
    cfg = os.path.join(tmp, "standalone.toml")
    with open(cfg, "w") as f:
        f.write(text)
    one, many = os.path.join(tmp, "st_1"), os.path.join(tmp, "st_mpi")
    run([FEDPP, "run", cfg, "--out", one])
    run([MPIRUN, "-np", "3", FEDPP, "run", cfg, "--out", many])
    files = sorted(os.listdir(os.path.join(one, "client_models")))
    if "index.json" not in files or len(files) < 4 or \
            files != sorted(os.listdir(os.path.join(many, "client_models"))):
        sys.exit(f"FAIL: client_models differ: {files}")
    for name in files:
        a = open(os.path.join(one, "client_models", name), "rb").read()
        b = open(os.path.join(many, "client_models", name), "rb").read()
        if a != b:
            sys.exit(f"FAIL: client_models/{name} differs between one process and MPI")
    print("ok: client models written by the client ranks equal the single-process ones "
          f"({len(files)} files)")


def resume_over_mpi(tmp):
    """output.checkpoint_every: rank 0 checkpoints the server, each client rank its clients'
    private state; `--resume` from the round-2 checkpoint redoes round 3 and gives the metrics of
    the single-process run, over MPI and in one process from the MPI checkpoint (same_as_single_
    process's FedMoE run must have run first)."""
    cfg = os.path.join(tmp, "fedmoe.toml")
    folder = os.path.join(tmp, "fedmoe_ckpt")
    every = ["--set", "output.checkpoint_every=2"]
    run([MPIRUN, "-np", "3", FEDPP, "run", cfg, "--out", folder] + every)
    states = os.path.join(folder, "checkpoint", "clients_2")
    if not os.path.isdir(states) or not [f for f in os.listdir(states) if f.endswith(".state")]:
        sys.exit(f"FAIL: the client ranks wrote no client state into {states}")
    expected = metrics(os.path.join(tmp, "fedmoe_1"))
    for how, cmd in (("3 MPI processes", [MPIRUN, "-np", "3"]), ("one process", [])):
        p = run(cmd + [FEDPP, "run", cfg, "--out", folder, "--resume"] + every)
        if "resuming after round 2" not in p.stdout + p.stderr:
            sys.exit(f"FAIL: --resume ({how}) did not start from the round-2 checkpoint:\n"
                     f"{(p.stdout + p.stderr)[-3000:]}")
        got = metrics(folder)
        if got != expected:
            sys.exit(f"FAIL: resumed ({how}) metrics differ from the run that never stopped\n"
                     f"expected: {expected}\nresumed:  {got}")
    print("ok: --resume from an MPI checkpoint (client states written by the client ranks) gives "
          "the single-process metrics, over MPI and in one process")


def failure_names_the_rank(tmp):
    cfg = os.path.join(tmp, "diverge.toml")
    with open(cfg, "w") as f:
        f.write(FEDAVG.replace("lr = 0.05", "lr = 1e3"))
    p = run([MPIRUN, "-np", "3", FEDPP, "run", cfg, "--out", os.path.join(tmp, "d")],
            expect_ok=False)
    out = p.stdout + p.stderr
    if p.returncode == 0 or "MPI rank" not in out or "non-finite" not in out:
        sys.exit(f"FAIL: a diverging client should end the run naming its rank (rc "
                 f"{p.returncode}):\n{out[-3000:]}")
    print("ok: a client rank's error ends the run and names the rank")


with tempfile.TemporaryDirectory() as tmp:
    same_as_single_process("fedavg", FEDAVG, 2, tmp)
    same_as_single_process("fedmoe", FEDMOE, 3, tmp)
    resume_over_mpi(tmp)
    client_models_as_one_process(tmp)
    failure_names_the_rank(tmp)
