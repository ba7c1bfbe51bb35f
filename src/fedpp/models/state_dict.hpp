// Model files that PyTorch reads: a state dict (tensor name -> tensor) pickled the way Python's
// torch.save writes it, so that in Python `torch.load(path)` returns a dict that the matching
// nn.Module's load_state_dict accepts (module definitions: scripts/fedpp_models.py, and
// docs/models.md). Tensor names and shapes are those of the zoo model's module_state(), e.g.
// conv1.weight [32, 1, 5, 5] for fedavg_cnn at 1x28x28.
// Written files are complete or absent: written to "<path>.tmp", flushed, then renamed.
// Every function throws fedpp::Error with one sentence naming the file and the problem.
#pragma once
#include <string>

#include "fedpp/core/named_tensors.hpp"

namespace fedpp {

// Writes `tensors` (on any device; saved from the CPU) to `path`.
void save_state_dict(const NamedTensors& tensors, const std::string& path);

// Reads a file written by save_state_dict, or by Python's torch.save(dict(module.state_dict())):
// a plain dict, since LibTorch's unpickler cannot read the OrderedDict that state_dict()
// returns. Throws for a missing, truncated or foreign file, or one that is not a dict of
// str -> tensor.
NamedTensors load_state_dict(const std::string& path);

// Reads one tensor: a file of Python's torch.save(x, path), or a dict holding it as "x".
torch::Tensor load_tensor(const std::string& path);

// Checks that `file` (read from `path`) fits `model` (zoo model `model_name`): the same tensor
// names, shapes and dtypes. Throws naming the first tensor that differs.
void check_state_dict_fits(const NamedTensors& file, const torch::nn::Module& model,
                           const std::string& model_name, const std::string& path);

}  // namespace fedpp
