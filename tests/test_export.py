#!/usr/bin/env python3
"""A model fedpp trained, read by Python's torch (Debian python3-torch) into the module of
scripts/fedpp_models.py, gives the same logits as fedpp on the same inputs; and a state dict
that PyTorch wrote starts a fedpp run (model.init). Run by CTest: python3 test_export.py FEDPP.
Exit code 77 (CTest: skipped) when this Python has no torch."""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("python3-torch is not installed: apt-get install python3-torch")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
from fedpp_models import FedGKT, build, build_exported  # noqa: E402

CONFIG = """seed = 4
rounds = 1
[data]
dataset = "synthetic"
synthetic_samples = 300
synthetic_test_samples = 60
synthetic_classes = 4
num_clients = 2
[model]
name = "{model}"
[train]
lr = 0.02
batch_size = 32
[runtime]
workers = 1
[output]
quiet = true
"""


def run(*cmd):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {r.stderr}")
    return r.stdout


def main():
    fedpp = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="fedpp_export_") as tmp:
        for name in ("mlp", "fedavg_cnn", "cnn3", "resnet8"):
            cfg = os.path.join(tmp, f"{name}.toml")
            with open(cfg, "w") as f:
                f.write(CONFIG.format(model=name))
            out = os.path.join(tmp, name)
            run(fedpp, "run", cfg, "--out", out)
            state = torch.load(os.path.join(out, "global_model.pt"))
            model = build(name, (1, 28, 28), 4)
            model.load_state_dict(state)  # strict: every name and shape must match
            model.eval()
            gen = torch.Generator().manual_seed(1)
            x = torch.randn(16, 1, 28, 28, generator=gen)
            torch.save(x, os.path.join(tmp, "inputs.pt"))
            run(fedpp, "eval", os.path.join(out, "global_model.pt"), cfg, "--inputs",
                os.path.join(tmp, "inputs.pt"), "--logits", os.path.join(tmp, "logits.pt"))
            theirs = torch.load(os.path.join(tmp, "logits.pt"))["logits"]
            with torch.no_grad():
                ours = model(x)
            if not torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5):
                raise AssertionError(f"{name}: PyTorch logits differ from fedpp's by "
                                     f"{(ours - theirs).abs().max().item()}")
            if not torch.equal(ours.argmax(1), theirs.argmax(1)):
                raise AssertionError(f"{name}: predictions differ")

        # A state dict PyTorch wrote starts a fedpp run, and fedpp eval scores it.
        model = build("mlp", (1, 28, 28), 4)
        torch.save(dict(model.state_dict()), os.path.join(tmp, "from_pytorch.pt"))
        cfg = os.path.join(tmp, "mlp.toml")
        out = run(fedpp, "eval", os.path.join(tmp, "from_pytorch.pt"), cfg)
        if "accuracy" not in out:
            raise AssertionError(f"fedpp eval printed no accuracy: {out}")
        run(fedpp, "run", cfg, "--out", os.path.join(tmp, "init"), "--set",
            f'model.init="{os.path.join(tmp, "from_pytorch.pt")}"')
        # An OrderedDict (what state_dict() returns) cannot be read by LibTorch: the error says
        # how to save it instead.
        torch.save(model.state_dict(), os.path.join(tmp, "ordered.pt"))
        r = subprocess.run([fedpp, "eval", os.path.join(tmp, "ordered.pt"), cfg],
                           capture_output=True, text=True)
        if r.returncode != 2 or "dict(model.state_dict())" not in r.stderr:
            raise AssertionError(f"an OrderedDict file was not refused with the fix: {r.stderr}")
        # Another architecture's file: one clear error naming the tensor.
        r = subprocess.run([fedpp, "eval", os.path.join(tmp, "from_pytorch.pt"),
                            os.path.join(tmp, "cnn3.toml")], capture_output=True, text=True)
        if r.returncode != 2 or "conv1.weight" not in r.stderr:
            raise AssertionError(f"a foreign model file was not refused clearly: {r.stderr}")
        # Personalised models: every Standalone client's own (heterogeneous) model, written with
        # output.save_client_models, loads into its PyTorch module and predicts as fedpp does.
        cfg = os.path.join(tmp, "standalone.toml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(model="mlp").replace(
                '[model]\nname = "mlp"', '[algorithm]\nname = "standalone"'))
        out = os.path.join(tmp, "standalone")
        run(fedpp, "run", cfg, "--out", out, "--set", "output.save_client_models=true")
        with open(os.path.join(out, "client_models", "index.json")) as f:
            index = json.load(f)
        if [e["model"] for e in index] != ["cnn1", "cnn2"]:
            raise AssertionError(f"client_models/index.json lists {index}")
        x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(2))
        torch.save(x, os.path.join(tmp, "inputs.pt"))
        for e in index:
            path = os.path.join(out, "client_models", e["file"])
            model = build(e["model"], (1, 28, 28), 4)
            model.load_state_dict(torch.load(path))
            model.eval()
            run(fedpp, "eval", path, cfg, "--set", f'model.name="{e["model"]}"', "--inputs",
                os.path.join(tmp, "inputs.pt"), "--logits", os.path.join(tmp, "logits.pt"))
            theirs = torch.load(os.path.join(tmp, "logits.pt"))["logits"]
            with torch.no_grad():
                ours = model(x)
            if not torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5):
                raise AssertionError(f"client {e['client']}: PyTorch logits differ from fedpp's")
        # FedMoE: each client's mixture (the final global expert, its own model and gate) loads
        # into the PyTorch FedMoE module and scores the client's test split (fedpp data) exactly
        # as fedpp's last personalised evaluation did.
        cfg = os.path.join(tmp, "fedmoe.toml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(model="mlp").replace(
                '[model]\nname = "mlp"', '[algorithm]\nname = "fedmoe"'))
        out = os.path.join(tmp, "fedmoe")
        # The gate starts leaning to the local expert (a_l near 0.9), so that a module mixing
        # the experts the wrong way round scores differently.
        run(fedpp, "run", cfg, "--out", out, "--set", "rounds=2", "--set",
            "output.save_client_models=true", "--set", "fedmoe.gate_init_local=0.9")
        with open(os.path.join(out, "client_models", "index.json")) as f:
            index = json.load(f)
        with open(os.path.join(out, "clients.jsonl")) as f:
            last = [json.loads(line) for line in f][-1]
        reported = {c["client"]: c["accuracy"] for c in last["clients"]}
        gate = {c["client"]: c["gate_global_weight"] for c in last["clients"]}
        if [e["model"] for e in index] != ["fedmoe", "fedmoe"] or len(reported) != 2:
            raise AssertionError(f"FedMoE client models: index {index}, evaluation {last}")
        for e in index:
            model = build_exported(e, (1, 28, 28), 4)
            model.load_state_dict(torch.load(os.path.join(out, "client_models", e["file"])))
            model.eval()
            split = os.path.join(tmp, f"client{e['client']}.pt")
            run(fedpp, "data", cfg, "--client", str(e["client"]), "--out", split)
            d = torch.load(split)
            with torch.no_grad():
                acc = (model(d["test_x"]).argmax(1) == d["test_y"]).double().mean().item()
                a_g = model.gate(d["test_x"])[:, 0].double().mean().item()
            if abs(a_g - gate[e["client"]]) > 1e-5:
                raise AssertionError(f"FedMoE client {e['client']}: mean gate weight of the "
                                     f"global expert {a_g} in PyTorch, {gate[e['client']]} "
                                     "in fedpp")
            if abs(acc - reported[e["client"]]) > 1e-12 or len(d["test_y"]) == 0:
                raise AssertionError(f"FedMoE client {e['client']} ({e['local']} + "
                                     f"{e['global_expert']}): PyTorch accuracy {acc} on "
                                     f"{len(d['test_y'])} images, fedpp reported "
                                     f"{reported[e['client']]}")
        check_fedgkt(fedpp, tmp)
    print("export: PyTorch reads fedpp's models (FedAvg, Standalone, FedMoE, FedGKT) and fedpp "
          "reads PyTorch's")


def accuracy(logits, y):
    return (logits.argmax(1) == y).double().mean().item()


def check_fedgkt(fedpp, tmp):
    """FedGKT: the server model (global_model.pt) behind each client's resnet8 extractor scores the
    global test set as fedpp's evaluation did (mean and worst client), each resnet8 alone too, and
    each client's resnet8 scores its own test split as its personalised evaluation reported."""
    cfg = os.path.join(tmp, "fedgkt.toml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(model="mlp").replace(
            '[model]\nname = "mlp"', '[algorithm]\nname = "fedgkt"').replace(
            "[train]\nlr = 0.02\nbatch_size = 32", "[fedgkt]\nbatch_size = 32"))
    out = os.path.join(tmp, "fedgkt")
    run(fedpp, "run", cfg, "--out", out, "--set", "rounds=2", "--set", "fedgkt.server_epochs=1",
        "--set", "output.save_client_models=true")
    with open(os.path.join(out, "client_models", "index.json")) as f:
        index = json.load(f)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        metrics = [json.loads(line) for line in f][-1]
    with open(os.path.join(out, "clients.jsonl")) as f:
        personal = {c["client"]: c["accuracy"] for c in [json.loads(l) for l in f][-1]["clients"]}
    if [e["model"] for e in index] != ["resnet8", "resnet8"] or len(personal) != 2:
        raise AssertionError(f"FedGKT client models: index {index}, evaluation {personal}")
    test = os.path.join(tmp, "fedgkt_test.pt")
    run(fedpp, "data", cfg, "--out", test)
    t = torch.load(test)
    server = torch.load(os.path.join(out, "global_model.pt"))
    joint, alone, joint_loss, alone_loss = [], [], [], []
    for e in index:
        model = FedGKT("resnet56_server", (1, 28, 28), 4)
        model.client.load_state_dict(torch.load(os.path.join(out, "client_models", e["file"])))
        model.server.load_state_dict(server)
        model.eval()
        split = os.path.join(tmp, f"gkt_client{e['client']}.pt")
        run(fedpp, "data", cfg, "--client", str(e["client"]), "--out", split)
        d = torch.load(split)
        with torch.no_grad():
            z, zc = model(t["test_x"]), model.client_logits(t["test_x"])
            joint.append(accuracy(z, t["test_y"]))
            alone.append(accuracy(zc, t["test_y"]))
            joint_loss.append(torch.nn.functional.cross_entropy(z, t["test_y"]).item())
            alone_loss.append(torch.nn.functional.cross_entropy(zc, t["test_y"]).item())
            own = accuracy(model.client_logits(d["test_x"]), d["test_y"])
        if abs(own - personal[e["client"]]) > 1e-12:
            raise AssertionError(f"FedGKT client {e['client']}: its resnet8 scores {own} on its "
                                 f"split in PyTorch, fedpp reported {personal[e['client']]}")
    # Accuracies exactly; the mean cross-entropies (continuous, so a wrong module cannot match
    # by chance) to float32 rounding.
    want = {"accuracy": (sum(joint) / 2, 1e-9), "accuracy_min": (min(joint), 1e-9),
            "client_accuracy": (sum(alone) / 2, 1e-9), "loss": (sum(joint_loss) / 2, 1e-5),
            "client_loss": (sum(alone_loss) / 2, 1e-5)}
    for k, (v, tol) in want.items():
        if abs(metrics[k] - v) > tol * max(1.0, abs(v)):
            raise AssertionError(f"FedGKT {k}: {v} in PyTorch (per client {joint}, {alone}), "
                                 f"{metrics[k]} in fedpp")


if __name__ == "__main__":
    main()
