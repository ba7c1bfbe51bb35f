#include "fedpp/models/state_dict.hpp"

#include <torch/serialize.h>

#include <fstream>
#include <iterator>

#include "fedpp/core/error.hpp"
#include "fedpp/core/files.hpp"

namespace fedpp {

void save_state_dict(const NamedTensors& tensors, const std::string& path) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, t] : tensors) dict.insert(name, t.detach().cpu().contiguous());
  const std::vector<char> bytes = torch::pickle_save(dict);
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()),
                    "the model file's folder must be writable, with free space");
}

namespace {
// LibTorch's C++ unpickler reads what torch::pickle_save and Python's torch.save (protocol 2)
// write for tensors and plain dicts of two or more entries; it cannot read an OrderedDict (what
// module.state_dict() returns) or a one-entry dict.
c10::IValue load_pickle(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  FEDPP_CHECK(in.good(), what + " '" + path + "' not found or unreadable");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  FEDPP_CHECK(!bytes.empty(), what + " '" + path + "' is empty");
  try {
    return torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    std::string why = e.what_without_backtrace();
    why = why.substr(0, why.find('\n'));
    throw Error(what + " '" + path + "' is not a PyTorch state dict (truncated, or another "
                "format; from Python write torch.save(dict(model.state_dict()), path): a plain "
                "dict, as LibTorch cannot read OrderedDict): " + why);
  }
}
}  // namespace

torch::Tensor load_tensor(const std::string& path) {
  c10::IValue v = load_pickle(path, "tensor file");
  if (v.isTensor()) return v.toTensor();
  FEDPP_CHECK(v.isGenericDict(), "tensor file '" + path + "' holds a " + v.tagKind() +
                                     ", not a tensor: write it with torch.save(x, path)");
  for (const auto& item : v.toGenericDict())
    if (item.key().isString() && item.key().toStringRef() == "x" && item.value().isTensor())
      return item.value().toTensor();
  throw Error("tensor file '" + path + "' is a dict without a tensor 'x': write torch.save(x, path)");
}

NamedTensors load_state_dict(const std::string& path) {
  c10::IValue v = load_pickle(path, "model file");
  FEDPP_CHECK(v.isGenericDict(), "model file '" + path + "' holds a " + v.tagKind() +
                                     ", not a state dict (a dict of name -> tensor)");
  NamedTensors out;
  for (const auto& item : v.toGenericDict()) {
    FEDPP_CHECK(item.key().isString() && item.value().isTensor(),
                "model file '" + path + "' holds an entry that is not name -> tensor");
    out.set(item.key().toStringRef(), item.value().toTensor());
  }
  return out;
}

void check_state_dict_fits(const NamedTensors& file, const torch::nn::Module& model,
                           const std::string& model_name, const std::string& path) {
  const NamedTensors want = module_state(model);
  for (const auto& [name, t] : want) {
    FEDPP_CHECK(file.contains(name), "model file '" + path + "' has no tensor '" + name +
                                         "' of model '" + model_name +
                                         "': was it saved from another model?");
    const auto& got = file.at(name);
    FEDPP_CHECK(got.sizes() == t.sizes() && got.scalar_type() == t.scalar_type(),
                "model file '" + path + "': tensor '" + name + "' is " +
                    c10::str(got.scalar_type(), got.sizes()) + ", model '" + model_name +
                    "' needs " + c10::str(t.scalar_type(), t.sizes()));
  }
  for (const auto& [name, t] : file)
    FEDPP_CHECK(want.contains(name), "model file '" + path + "' has tensor '" + name +
                                         "', which model '" + model_name + "' does not have");
}

}  // namespace fedpp
