#include <fedpp/models/zoo.hpp>

#include <fedpp/core/error.hpp>
#include <fedpp/models/shape.hpp>

namespace fedpp {

ConvNetConfig fedavg_cnn_config() { return {{32, 64}, true, {512}}; }

ConvNetConfig fedmoe_cnn_config(int k) {
  FEDPP_CHECK(k >= 1 && k <= 5, "FedMoE zoo model cnn" + std::to_string(k) +
                                    " does not exist: use cnn1..cnn5");
  static const int64_t c2[] = {32, 16, 32, 32, 32};
  static const int64_t fc1[] = {2000, 2000, 1000, 800, 500};
  return {{16, c2[k - 1]}, false, {fc1[k - 1], 500}};
}

ConvNetConfig mlp_config() { return {{}, false, {200, 200}}; }

ConvNet::ConvNet(std::string name, ModelSpec spec, ConvNetConfig config)
    : spec_(std::move(spec)), config_(std::move(config)) {
  name_ = std::move(name);
  check_input_shape(name_, spec_);
  FEDPP_CHECK(!config_.hidden.empty(), "model " + name_ + " needs at least one hidden FC layer");
  constexpr int64_t k = 5;
  const int64_t pad = config_.same_padding ? 2 : 0;
  int64_t c = spec_.input_shape[0], h = spec_.input_shape[1], w = spec_.input_shape[2];
  for (size_t i = 0; i < config_.conv_channels.size(); ++i) {
    const int64_t out = config_.conv_channels[i];
    FEDPP_CHECK(out >= 1, "model " + name_ + ": conv" + std::to_string(i + 1) +
                              " needs at least one filter");
    const int64_t oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
    FEDPP_CHECK(oh >= 2 && ow >= 2, "model " + name_ + " needs a larger input than " +
                                        shape_string(spec_.input_shape) + " (conv" +
                                        std::to_string(i + 1) + " would see " +
                                        std::to_string(h) + "x" + std::to_string(w) + ")");
    macs_ += conv_macs(oh, ow, out, c, k);
    convs_.push_back(register_module(
        "conv" + std::to_string(i + 1),
        torch::nn::Conv2d(torch::nn::Conv2dOptions(c, out, k).padding(pad))));
    c = out;
    h = oh / 2;
    w = ow / 2;
  }
  flat_hw_ = h * w;
  int64_t in = c * h * w;
  std::vector<int64_t> widths = config_.hidden;
  widths.push_back(spec_.num_classes);
  for (size_t i = 0; i < widths.size(); ++i) {
    FEDPP_CHECK(widths[i] >= 1, "model " + name_ + ": fc" + std::to_string(i + 1) +
                                    " needs at least one unit");
    if (i + 1 == widths.size()) feature_macs_ = macs_;
    macs_ += in * widths[i];
    fcs_.push_back(register_module("fc" + std::to_string(i + 1),
                                   torch::nn::Linear(in, widths[i])));
    in = widths[i];
  }
  make_channels_last(*this);
}

torch::Tensor ConvNet::features(torch::Tensor x) {
  x = channels_last(x);
  for (auto& conv : convs_) x = torch::max_pool2d(torch::relu(conv(x)), 2);
  x = x.flatten(1);
  for (size_t i = 0; i + 1 < fcs_.size(); ++i) x = torch::relu(fcs_[i](x));
  return x;
}

torch::Tensor ConvNet::head(torch::Tensor r) { return fcs_.back()(r); }

std::vector<UnitGroup> ConvNet::unit_groups() const {
  std::vector<UnitGroup> groups;
  const size_t nconv = convs_.size();
  for (size_t i = 0; i < nconv; ++i) {
    const std::string self = "conv" + std::to_string(i + 1);
    UnitGroup g{self, config_.conv_channels[i], {{self + ".weight", 0, 1}, {self + ".bias", 0, 1}}};
    if (i + 1 < nconv)
      g.slices.push_back({"conv" + std::to_string(i + 2) + ".weight", 1, 1});
    else  // flatten: filter c owns columns [c*H*W, (c+1)*H*W) of fc1
      g.slices.push_back({"fc1.weight", 1, flat_hw_});
    groups.push_back(std::move(g));
  }
  for (size_t i = 0; i < config_.hidden.size(); ++i) {
    const std::string self = "fc" + std::to_string(i + 1);
    groups.push_back({self, config_.hidden[i],
                      {{self + ".weight", 0, 1},
                       {self + ".bias", 0, 1},
                       {"fc" + std::to_string(i + 2) + ".weight", 1, 1}}});
  }
  return groups;
}

std::shared_ptr<Model> ConvNet::with_widths(const std::vector<int64_t>& widths) const {
  const auto groups = unit_groups();
  FEDPP_CHECK(widths.size() == groups.size(),
              "model " + name_ + " has " + std::to_string(groups.size()) +
                  " unit groups but " + std::to_string(widths.size()) + " widths were given");
  ConvNetConfig cfg = config_;
  for (size_t i = 0; i < widths.size(); ++i) {
    FEDPP_CHECK(widths[i] >= 1 && widths[i] <= groups[i].size,
                "model " + name_ + ": width " + std::to_string(widths[i]) + " for " +
                    groups[i].name + " must be in [1, " + std::to_string(groups[i].size) + "]");
    if (i < cfg.conv_channels.size())
      cfg.conv_channels[i] = widths[i];
    else
      cfg.hidden[i - cfg.conv_channels.size()] = widths[i];
  }
  return std::make_shared<ConvNet>(name_, spec_, cfg);
}

}  // namespace fedpp
