// The plain feed-forward zoo models: "fedavg_cnn" (McMahan et al.'s CNN), "cnn1".."cnn5" (the
// FedMoE / pFedMoE model zoo) and "mlp". All are one class, ConvNet: zero or more 5x5 conv
// layers (each followed by ReLU and 2x2 max-pooling), a flatten, hidden FC layers (each followed
// by ReLU; the last hidden layer's output is the representation) and a final FC head.
// Tensor names: conv1, conv2, ..., fc1, fc2, ..., the last fc being the head. They are the same
// in every sub-model made by with_widths, which is what Federated Dropout maps back by.
#pragma once
#include <fedpp/models/model.hpp>

namespace fedpp {

struct ConvNetConfig {
  std::vector<int64_t> conv_channels;  // output channels of each 5x5 conv
  bool same_padding = false;           // pad 2 (spatial size kept) or no padding
  std::vector<int64_t> hidden;         // hidden FC widths (at least one); last = feature_dim
};

// Configurations of the registered models. k in 1..5 (table in docs/methods/fedmoe.md).
ConvNetConfig fedavg_cnn_config();
ConvNetConfig fedmoe_cnn_config(int k);
ConvNetConfig mlp_config();

class ConvNet : public Model {
 public:
  // Throws fedpp::Error when the input is too small for the convs and pools, or a width is < 1.
  ConvNet(std::string name, ModelSpec spec, ConvNetConfig config);

  torch::Tensor features(torch::Tensor x) override;
  torch::Tensor head(torch::Tensor r) override;
  int64_t feature_dim() const override { return config_.hidden.back(); }
  int64_t macs_per_sample() const override { return macs_; }
  int64_t feature_macs_per_sample() const override { return feature_macs_; }
  // One group per conv layer (its filters) then one per hidden FC layer (its units).
  std::vector<UnitGroup> unit_groups() const override;
  // widths[i] in [1, unit_groups()[i].size]; throws fedpp::Error otherwise.
  std::shared_ptr<Model> with_widths(const std::vector<int64_t>& widths) const override;

  const ModelSpec& spec() const { return spec_; }
  const ConvNetConfig& config() const { return config_; }

 private:
  ModelSpec spec_;
  ConvNetConfig config_;
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::Linear> fcs_;  // hidden layers, then the head
  int64_t flat_hw_ = 1;                 // H*W of the last conv stage's pooled output
  int64_t macs_ = 0;
  int64_t feature_macs_ = 0;
};

}  // namespace fedpp
