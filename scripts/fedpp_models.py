"""PyTorch definitions of fedpp's zoo models, for the model files fedpp writes.

fedpp writes a run's global model as global_model.pt, a state dict that Python's torch.load reads.
The modules below have the same tensor names, shapes and forward pass as fedpp's ConvNet
(src/fedpp/models/zoo.hpp) and bottleneck ResNets (src/fedpp/models/resnet.hpp), so the saved
weights give the same predictions in PyTorch:

    import torch, sys
    sys.path.insert(0, "scripts")
    from fedpp_models import build
    model = build("fedavg_cnn", in_shape=(1, 28, 28), classes=10)
    model.load_state_dict(torch.load("runs/x/global_model.pt"))
    model.eval()
    logits = model(images)            # images: float [N, 1, 28, 28], scaled as fedpp's loaders do

Inputs are what fedpp feeds its models: pixel values / 255, then normalised per channel with
the mean and standard deviation of the run's training data (src/fedpp/data/loaders.cpp).
A model trained in PyTorch with these modules starts a fedpp run with model.init = "file.pt".

Personalised client models (output.save_client_models) are listed in client_models/index.json;
build_exported(entry) builds the module of one entry: a zoo model, or FedMoE's mixture
(model "fedmoe": the global expert's feature extractor, the client's own model and the gate):

    entry = json.load(open("runs/x/client_models/index.json"))[0]
    model = build_exported(entry, in_shape=(1, 28, 28), classes=10)
    model.load_state_dict(torch.load("runs/x/client_models/" + entry["file"]))

`fedpp data CONFIG --client K --out k.pt` writes that client's splits as fedpp feeds them.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

# (conv channels, same padding, hidden FC widths): src/fedpp/models/zoo.cpp
CONFIGS = {
    "fedavg_cnn": ((32, 64), True, (512,)),
    "cnn1": ((16, 32), False, (2000, 500)),
    "cnn2": ((16, 16), False, (2000, 500)),
    "cnn3": ((16, 32), False, (1000, 500)),
    "cnn4": ((16, 32), False, (800, 500)),
    "cnn5": ((16, 32), False, (500, 500)),
    "mlp": ((), False, (200, 200)),
}


class ConvNet(nn.Module):
    """5x5 convs (each ReLU then 2x2 max-pool), flatten, hidden FCs with ReLU, a linear head.
    Tensors: conv1, conv2, ..., fc1, fc2, ... (the last fc is the head)."""

    def __init__(self, in_shape, classes, conv_channels, same_padding, hidden, with_head=True):
        super().__init__()
        c, h, w = in_shape
        pad = 2 if same_padding else 0
        self.n_conv = len(conv_channels)
        for i, out in enumerate(conv_channels):
            setattr(self, f"conv{i + 1}", nn.Conv2d(c, out, 5, padding=pad))
            c, h, w = out, (h + 2 * pad - 4) // 2, (w + 2 * pad - 4) // 2
        widths = [c * h * w, *hidden, classes]
        self.n_fc = len(widths) - 1
        for i in range(self.n_fc if with_head else self.n_fc - 1):  # FedMoE's G has no head
            setattr(self, f"fc{i + 1}", nn.Linear(widths[i], widths[i + 1]))

    def features(self, x):
        for i in range(self.n_conv):
            x = F.max_pool2d(F.relu(getattr(self, f"conv{i + 1}")(x)), 2)
        x = torch.flatten(x, 1)
        for i in range(self.n_fc - 1):
            x = F.relu(getattr(self, f"fc{i + 1}")(x))
        return x

    def head(self, r):
        return getattr(self, f"fc{self.n_fc}")(r)

    def forward(self, x):
        return self.head(self.features(x))


class Bottleneck(nn.Module):
    """Bottleneck block, expansion 4 (src/fedpp/models/resnet.hpp): 1x1 BN ReLU, 3x3 stride s BN
    ReLU, 1x1 BN, plus the identity or downsample (1x1 stride-s conv + BN), then ReLU."""

    def __init__(self, in_channels, planes, stride):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or in_channels != out:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class BottleneckResNet(nn.Module):
    """fedpp's ResNets (FedGKT's, after FedML's resnet56_gkt). Optional stem (3x3 conv C->16, BN,
    ReLU: conv1, bn1), stages layer1, layer2, ... of bottleneck blocks with planes 16, 32, 64
    (stride 2 at the start of every stage but the first), global average pool, Linear fc.
    resnet8: stem + one stage of 2 blocks (the FedGKT client; feature_map(x) is its stem's output
    H [N, 16, H, W]); resnet56 / resnet110: stem + 3 stages of 6 / 12 blocks; resnet56_server /
    resnet110_server: the same without the stem, whose input is H (in_shape = (16, H, W))."""

    def __init__(self, in_shape, classes, stem, blocks_per_stage):
        super().__init__()
        c = in_shape[0]
        self.stem = stem
        if stem:
            self.conv1 = nn.Conv2d(c, 16, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            c = 16
        self.n_stages = len(blocks_per_stage)
        for s, blocks in enumerate(blocks_per_stage):
            planes = 16 << s
            layers = []
            for b in range(blocks):
                layers.append(Bottleneck(c, planes, 2 if (s > 0 and b == 0) else 1))
                c = planes * 4
            setattr(self, f"layer{s + 1}", nn.Sequential(*layers))
        self.fc = nn.Linear(c, classes)

    def feature_map(self, x):
        return F.relu(self.bn1(self.conv1(x))) if self.stem else x

    def features(self, x):
        h = self.feature_map(x)
        for s in range(self.n_stages):
            h = getattr(self, f"layer{s + 1}")(h)
        return h.mean((2, 3))

    def head(self, r):
        return self.fc(r)

    def forward(self, x):
        return self.head(self.features(x))


# name -> (stem, blocks per stage): src/fedpp/models/resnet.cpp, zoo.cpp
RESNETS = {
    "resnet8": (True, (2,)),
    "resnet56": (True, (6, 6, 6)),
    "resnet110": (True, (12, 12, 12)),
    "resnet56_server": (False, (6, 6, 6)),
    "resnet110_server": (False, (12, 12, 12)),
}


def build(name, in_shape=(1, 28, 28), classes=10, with_head=True):
    """The zoo model `name` (fedavg_cnn, cnn1..cnn5, mlp, resnet8, resnet56, resnet110,
    resnet56_server, resnet110_server) for inputs `in_shape` = (C, H, W); a server ResNet's input
    is the resnet8 feature map, in_shape = (16, H, W)."""
    if name in RESNETS:
        stem, blocks = RESNETS[name]
        return BottleneckResNet(in_shape, classes, stem, blocks)
    if name not in CONFIGS:
        raise ValueError(f"no PyTorch definition for zoo model '{name}' here; known: "
                         f"{sorted(CONFIGS) + sorted(RESNETS)}")
    convs, same, hidden = CONFIGS[name]
    return ConvNet(in_shape, classes, convs, same, hidden, with_head)


class FedGKT(nn.Module):
    """FedGKT's large model as the paper scores it: a client's resnet8 extractor (its stem) followed
    by the server model (global_model.pt of a FedGKT run, fedgkt.server_model). Tensors: client.*
    (the whole resnet8, of which forward uses the stem), server.*. client_logits(x) is the
    client's resnet8 alone, what the edge device runs."""

    def __init__(self, server_model, in_shape, classes):
        super().__init__()
        self.client = build("resnet8", in_shape, classes)
        self.server = build(server_model, (16, in_shape[1], in_shape[2]), classes)

    def forward(self, x):
        return self.server(self.client.feature_map(x))

    def client_logits(self, x):
        return self.client(x)


class MoeGate(nn.Module):
    """FedMoE's gate H_k (src/fedpp/algorithms/fedmoe.hpp): flatten, norm, Linear(d, hidden),
    sigmoid, Linear(hidden, 2), softmax -> (a_g, a_l) per sample. Tensors: norm, fc1, fc2."""

    def __init__(self, in_shape, hidden, norm):
        super().__init__()
        d = 1
        for n in in_shape:
            d *= n
        if norm == "layernorm":
            self.norm = nn.LayerNorm(d)
        elif norm == "batchnorm":
            self.norm = nn.BatchNorm1d(d)
        elif norm == "none":
            self.norm = None
        else:
            raise ValueError(f"fedmoe.gate_norm = '{norm}' has no PyTorch definition here "
                             "(layernorm, batchnorm and none do)")
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, 2)

    def forward(self, x):
        x = torch.flatten(x, 1)
        if self.norm is not None:
            x = self.norm(x)
        return torch.softmax(self.fc2(torch.sigmoid(self.fc1(x))), 1)


class FedMoE(nn.Module):
    """A FedMoE client's model: logits = local.head(a_g * global.features(x) + a_l *
    local.features(x)), (a_g, a_l) from the gate (mix "gate") or fixed by the mix (fixed: 0.5 each,
    local_only: (0, 1), global_only: (1, 0)). Tensors: global.*, local.*, gate.*."""

    def __init__(self, parts, in_shape, classes):
        super().__init__()
        self.mix = parts["mix"]
        self.add_module("global", build(parts["global_expert"], in_shape, classes, with_head=False))
        self.local = build(parts["local"], in_shape, classes)
        self.gate = MoeGate(in_shape, int(parts["gate_hidden"]), parts["gate_norm"])

    def forward(self, x):
        fixed = {"fixed": 0.5, "local_only": 0.0, "global_only": 1.0}
        if self.mix == "gate":
            w = self.gate(x)
        else:
            ag = fixed[self.mix]
            w = torch.tensor([ag, 1.0 - ag], dtype=x.dtype).expand(x.shape[0], 2)
        r = w[:, 0:1] * getattr(self, "global").features(x) + w[:, 1:2] * self.local.features(x)
        return self.local.head(r)


def build_exported(entry, in_shape=(1, 28, 28), classes=10):
    """The module of one client_models/index.json entry (a zoo model, or "fedmoe")."""
    if entry["model"] == "fedmoe":
        return FedMoE(entry, in_shape, classes)
    return build(entry["model"], in_shape, classes)
