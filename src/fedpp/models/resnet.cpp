#include <fedpp/models/resnet.hpp>

#include <fedpp/core/error.hpp>
#include <fedpp/models/shape.hpp>

namespace fedpp {

namespace {
torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false));
}
}  // namespace

BottleneckImpl::BottleneckImpl(int64_t in_channels, int64_t planes, int64_t stride)
    : in_(in_channels), planes_(planes), stride_(stride) {
  const int64_t out = planes * kExpansion;
  conv1_ = register_module("conv1", conv(in_, planes, 1, 1));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2_ = register_module("conv2", conv(planes, planes, 3, stride));
  bn2_ = register_module("bn2", torch::nn::BatchNorm2d(planes));
  conv3_ = register_module("conv3", conv(planes, out, 1, 1));
  bn3_ = register_module("bn3", torch::nn::BatchNorm2d(out));
  if (stride != 1 || in_ != out)
    downsample_ = register_module(
        "downsample", torch::nn::Sequential(conv(in_, out, 1, stride), torch::nn::BatchNorm2d(out)));
}

torch::Tensor BottleneckImpl::forward(torch::Tensor x) {
  auto y = torch::relu(bn1_(conv1_(x)));
  y = torch::relu(bn2_(conv2_(y)));
  y = bn3_(conv3_(y));
  return torch::relu(y + (downsample_ ? downsample_->forward(x) : x));
}

int64_t BottleneckImpl::macs(int64_t h, int64_t w) const {
  const int64_t oh = out_size(h), ow = out_size(w), out = planes_ * kExpansion;
  int64_t m = conv_macs(h, w, planes_, in_, 1) + conv_macs(oh, ow, planes_, planes_, 3) +
              conv_macs(oh, ow, out, planes_, 1);
  if (downsample_) m += conv_macs(oh, ow, out, in_, 1);
  return m;
}

BottleneckResNet::BottleneckResNet(std::string name, ModelSpec spec, bool stem,
                                   std::vector<int64_t> blocks_per_stage)
    : spec_(std::move(spec)), has_stem_(stem) {
  name_ = std::move(name);
  check_input_shape(name_, spec_);
  int64_t c = spec_.input_shape[0], h = spec_.input_shape[1], w = spec_.input_shape[2];
  if (stem) {
    conv1_ = register_module("conv1", conv(c, 16, 3, 1));
    bn1_ = register_module("bn1", torch::nn::BatchNorm2d(16));
    stem_macs_ = conv_macs(h, w, 16, c, 3);
    macs_ = stem_macs_;
    c = 16;
  }
  for (size_t s = 0; s < blocks_per_stage.size(); ++s) {
    const int64_t planes = int64_t{16} << s;
    torch::nn::Sequential stage;
    for (int64_t b = 0; b < blocks_per_stage[s]; ++b) {
      Bottleneck block(c, planes, (s > 0 && b == 0) ? 2 : 1);
      macs_ += block->macs(h, w);
      h = block->out_size(h);
      w = block->out_size(w);
      c = planes * BottleneckImpl::kExpansion;
      stage->push_back(block);
    }
    stages_.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  feature_dim_ = c;
  feature_macs_ = macs_;
  fc_ = register_module("fc", torch::nn::Linear(c, spec_.num_classes));
  macs_ += c * spec_.num_classes;
  make_channels_last(*this);
}

torch::Tensor BottleneckResNet::stem(torch::Tensor x) {
  x = channels_last(x);
  return has_stem_ ? torch::relu(bn1_(conv1_(x))) : x;
}

torch::Tensor BottleneckResNet::body(torch::Tensor h) {
  h = channels_last(h);
  for (auto& stage : stages_) h = stage->forward(h);
  return h.mean({2, 3});
}

torch::Tensor BottleneckResNet::features(torch::Tensor x) { return body(stem(x)); }

torch::Tensor BottleneckResNet::head(torch::Tensor r) { return fc_(r); }

ResNet8::ResNet8(ModelSpec spec) : BottleneckResNet("resnet8", std::move(spec), true, {2}) {}

std::vector<int64_t> ResNet8::feature_map_shape() const {
  return {16, spec().input_shape[1], spec().input_shape[2]};
}

ResNetServer::ResNetServer(std::string name, ModelSpec spec, int64_t blocks_per_stage)
    : BottleneckResNet(std::move(name), std::move(spec), false,
                       {blocks_per_stage, blocks_per_stage, blocks_per_stage}) {}

}  // namespace fedpp
