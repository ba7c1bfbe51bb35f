// Bottleneck ResNets for CIFAR-sized inputs, as used by FedGKT (docs/methods/fedgkt.md, after FedML's
// resnet56_gkt): the edge model "resnet8", the server models "resnet56_server" and
// "resnet110_server" (whose input is ResNet-8's 16-channel feature map H), and the full
// "resnet56" / "resnet110" (stem + server body) for FedAvg on the big model.
// Tensor names follow torchvision: conv1/bn1 (stem), layerS.B.{conv1,bn1,conv2,bn2,conv3,bn3},
// layerS.B.downsample.{0,1}, fc. BatchNorm running statistics are buffers, not parameters.
#pragma once
#include <fedpp/models/model.hpp>

namespace fedpp {

// Bottleneck block, expansion 4: 1x1 (in->planes) BN ReLU, 3x3 stride s (planes->planes) BN
// ReLU, 1x1 (planes->4*planes) BN, plus the identity (or a 1x1 stride-s conv + BN when the shape
// changes), then ReLU. Convolutions have no bias.
class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in_channels, int64_t planes, int64_t stride);
  torch::Tensor forward(torch::Tensor x);
  // Output spatial size for an input of size `in` (either dimension).
  int64_t out_size(int64_t in) const { return (in - 1) / stride_ + 1; }
  // Multiply-adds for one sample with an h x w input.
  int64_t macs(int64_t h, int64_t w) const;

 private:
  int64_t in_, planes_, stride_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(Bottleneck);

// Optional stem (conv3x3 C->16 no bias, BN, ReLU), then stages of bottleneck blocks with planes
// 16, 32, 64, ... (stride 1 for the first stage, 2 after), global average pool, Linear.
// features() = the pooled vector [B, 64 * 2^(stages-1)]; head() = the Linear.
class BottleneckResNet : public Model {
 public:
  BottleneckResNet(std::string name, ModelSpec spec, bool stem,
                   std::vector<int64_t> blocks_per_stage);
  torch::Tensor features(torch::Tensor x) override;
  torch::Tensor head(torch::Tensor r) override;
  int64_t feature_dim() const override { return feature_dim_; }
  int64_t macs_per_sample() const override { return macs_; }
  int64_t feature_macs_per_sample() const override { return feature_macs_; }
  const ModelSpec& spec() const { return spec_; }

 protected:
  torch::Tensor stem(torch::Tensor x);  // identity when built without a stem
  torch::Tensor body(torch::Tensor h);  // stages + pool: [B, feature_dim]
  int64_t stem_macs_ = 0;

 private:
  ModelSpec spec_;
  bool has_stem_;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  std::vector<torch::nn::Sequential> stages_;
  torch::nn::Linear fc_{nullptr};
  int64_t feature_dim_ = 0, macs_ = 0, feature_macs_ = 0;
};

// FedGKT's edge model: stem = feature map H [B,16,H,W], one stage of 2 blocks (64 channels),
// pool, Linear(64 -> classes).
class ResNet8 : public BottleneckResNet {
 public:
  explicit ResNet8(ModelSpec spec);
  torch::Tensor feature_map(torch::Tensor x) { return stem(x); }       // [B,16,H,W]
  torch::Tensor forward_from_map(torch::Tensor h) { return head(body(h)); }  // logits
  std::vector<int64_t> feature_map_shape() const;                      // {16,H,W}
  int64_t feature_map_macs_per_sample() const { return stem_macs_; }
};

// FedGKT's server model: spec.input_shape is the feature map shape {16,H,W} (the first block
// takes whatever channel count it is given); no stem.
// blocks_per_stage 6 for ResNet-56, 12 for ResNet-110 (three stages).
class ResNetServer : public BottleneckResNet {
 public:
  ResNetServer(std::string name, ModelSpec spec, int64_t blocks_per_stage);
};

}  // namespace fedpp
