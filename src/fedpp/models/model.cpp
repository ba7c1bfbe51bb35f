#include <fedpp/models/model.hpp>

#include <fedpp/core/error.hpp>
#include <fedpp/models/resnet.hpp>
#include <fedpp/models/zoo.hpp>

#include <functional>
#include <utility>

namespace fedpp {

torch::Tensor channels_last(const torch::Tensor& x) {
  return x.dim() == 4 ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

void make_channels_last(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters(true))
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  for (auto& b : m.buffers(true))
    if (b.dim() == 4) b.set_data(b.contiguous(at::MemoryFormat::ChannelsLast));
}

std::shared_ptr<Model> Model::with_widths(const std::vector<int64_t>&) const {
  throw Error("model " + name_ + " does not support Federated Dropout");
}

namespace {

struct Entry {
  std::string name;
  std::string description;
  std::function<ModelPtr(const ModelSpec&)> make;
};

std::function<ModelPtr(const ModelSpec&)> convnet(std::string name, ConvNetConfig cfg) {
  return [name, cfg](const ModelSpec& s) { return std::make_shared<ConvNet>(name, s, cfg); };
}

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = [] {
    std::vector<Entry> e;
    e.push_back({"fedavg_cnn",
                 "FedAvg CNN: conv5x5(32,same) pool, conv5x5(64,same) pool, FC 512, FC classes "
                 "(1,663,370 params at 1x28x28/10)",
                 convnet("fedavg_cnn", fedavg_cnn_config())});
    const char* fc1[] = {"16/32/2000", "16/16/2000", "16/32/1000", "16/32/800", "16/32/500"};
    for (int k = 1; k <= 5; ++k) {
      const std::string n = "cnn" + std::to_string(k);
      e.push_back({n,
                   "FedMoE zoo CNN-" + std::to_string(k) + " (c1/c2/FC1 " + fc1[k - 1] +
                       "): conv5x5 pool x2, FC1, FC 500 = representation, FC classes",
                   convnet(n, fedmoe_cnn_config(k))});
    }
    e.push_back({"mlp", "MLP: FC 200, FC 200 = representation, FC classes",
                 convnet("mlp", mlp_config())});
    e.push_back({"resnet8",
                 "FedGKT edge ResNet-8: conv3x3(16) BN ReLU = feature map, 2 bottleneck blocks, "
                 "pool, FC 64->classes",
                 [](const ModelSpec& s) { return std::make_shared<ResNet8>(s); }});
    for (int64_t depth : {56, 110}) {
      const int64_t blocks = (depth - 2) / 9;
      const std::string n = "resnet" + std::to_string(depth);
      e.push_back({n + "_server",
                   "FedGKT server ResNet-" + std::to_string(depth) +
                       ": input = 16-channel feature map {16,H,W}, bottleneck stages [" +
                       std::to_string(blocks) + "x3], pool, FC 256->classes",
                   [n, blocks](const ModelSpec& s) {
                     return std::make_shared<ResNetServer>(n + "_server", s, blocks);
                   }});
    }
    for (int64_t depth : {56, 110}) {
      const int64_t blocks = (depth - 2) / 9;
      const std::string n = "resnet" + std::to_string(depth);
      e.push_back({n,
                   "ResNet-" + std::to_string(depth) +
                       " (bottleneck, CIFAR): conv3x3(16) BN ReLU stem + the FedGKT server body",
                   [n, blocks](const ModelSpec& s) {
                     return std::make_shared<BottleneckResNet>(
                         n, s, true, std::vector<int64_t>{blocks, blocks, blocks});
                   }});
    }
    return e;
  }();
  return entries;
}

const Entry& find(const std::string& name) {
  for (const auto& e : registry())
    if (e.name == name) return e;
  std::string known;
  for (const auto& e : registry()) known += (known.empty() ? "" : ", ") + e.name;
  throw Error("unknown model '" + name + "'; known models: " + known);
}

}  // namespace

ModelPtr make_model(const std::string& name, const ModelSpec& spec) {
  return find(name).make(spec);
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& e : registry()) names.push_back(e.name);
  return names;
}

std::string model_description(const std::string& name) { return find(name).description; }

int64_t count_parameters(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace fedpp
