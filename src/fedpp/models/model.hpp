// Model — the interface every zoo model implements, and the model registry.
//
// A model maps a batch [B, C, H, W] to logits [B, classes]. It is also split into a feature
// extractor (features: input -> representation [B, feature_dim]) and a head (head:
// representation -> logits), which FedMoE, LG-FedAvg, FedGH, FedProto and FML use.
// Models are built for any input shape and class count; they report their parameter count and
// multiply-adds per sample (forward pass), and, for Federated Dropout, their hidden units.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fedpp {

struct ModelSpec {
  std::vector<int64_t> input_shape;  // {C, H, W}
  int64_t num_classes = 10;
};

// Hidden units Federated Dropout may drop: a group of `size` units (conv filters or FC units).
// Unit i of the group lives at index range [i*block, (i+1)*block) along `dim` of each tensor
// listed (e.g. conv2.weight dim 0 block 1; fc1.weight dim 1 block H*W after a flatten).
struct UnitSlice {
  std::string tensor;
  int64_t dim = 0;
  int64_t block = 1;
};
struct UnitGroup {
  std::string name;
  int64_t size = 0;
  std::vector<UnitSlice> slices;
};

class Model : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor x) { return head(features(x)); }
  virtual torch::Tensor features(torch::Tensor x) = 0;
  virtual torch::Tensor head(torch::Tensor r) = 0;
  virtual int64_t feature_dim() const = 0;
  // Multiply-adds of one forward pass of one sample (convolutions and linear layers).
  virtual int64_t macs_per_sample() const = 0;
  // Multiply-adds of features() alone.
  virtual int64_t feature_macs_per_sample() const = 0;
  // Hidden units, for Federated Dropout; empty when the model does not support it.
  virtual std::vector<UnitGroup> unit_groups() const { return {}; }
  // The same architecture with group i shrunk to widths[i] units (widths.size() ==
  // unit_groups().size()); the new model's tensors have the same names.
  virtual std::shared_ptr<Model> with_widths(const std::vector<int64_t>& widths) const;
  const std::string& model_name() const { return name_; }

 protected:
  std::string name_;
};

using ModelPtr = std::shared_ptr<Model>;

// Memory layout. Zoo models with convolutions keep their 4-D weights and activations
// channels-last (NHWC in memory; shapes, names and values unchanged): oneDNN's convolution,
// pooling and batch-norm kernels run them 15-35% faster here (bench/README.md). A model calls
// channels_last() on the 4-D input of each entry point and make_channels_last(*this) at the end
// of its constructor. Whatever leaves a model (codecs, checkpoints, model files) is read through
// contiguous(), so the layout never reaches bytes or files.
torch::Tensor channels_last(const torch::Tensor& x);  // 4-D: channels-last (no copy if it is)
void make_channels_last(torch::nn::Module& m);         // every 4-D parameter and buffer, in place

// Builds a registered model; unknown names throw fedpp::Error listing the known ones.
ModelPtr make_model(const std::string& name, const ModelSpec& spec);
// Names of all registered models, in display order.
std::vector<std::string> model_names();
std::string model_description(const std::string& name);
int64_t count_parameters(const torch::nn::Module& m);

}  // namespace fedpp
