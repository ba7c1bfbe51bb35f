#include "fedpp/fl/wire.hpp"

#include <algorithm>

#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"
#include "fedpp/core/shape_check.hpp"
#include "fedpp/proto/fedpp.pb.h"

namespace fedpp {

uint64_t tensor_seed(uint64_t seed, const std::string& name) {
  return derive_seed(seed, {hash_name(name)});
}

namespace {
bool is_delta_of(const torch::Tensor& t, const NamedTensors* ref, const std::string& name) {
  return ref && t.is_floating_point() && ref->contains(name) &&
         ref->at(name).sizes() == t.sizes();
}
}  // namespace

std::string encode_message(const Message& m, const Pipeline& pipeline, uint64_t seed,
                           const NamedTensors* reference, Delta delta) {
  wire::Message w;
  w.set_version(kWireVersion);
  for (const auto& [name, t] : m.tensors) {
    auto* wt = w.add_tensors();
    wt->set_name(name);
    for (int64_t s : t.sizes()) wt->add_shape(s);
    torch::Tensor value = t.detach().cpu();
    // Lossless pipelines send values as they are (bit-exact, dtype kept); lossy ones compress
    // the update, which is much smaller than the value.
    const bool as_update = delta == Delta::kAlways || !pipeline.spec().lossless();
    if (as_update && is_delta_of(value, reference, name)) {
      value = value.to(torch::kFloat) - reference->at(name).to(torch::kFloat);
      wt->set_delta(true);
    }
    wt->set_data(pipeline.encode(value, tensor_seed(seed, name)));
  }
  for (const auto& [k, v] : m.metrics) (*w.mutable_metrics())[k] = v;
  for (const auto& [k, v] : m.config) (*w.mutable_config())[k] = v;
  std::string out;
  w.SerializeToString(&out);
  return out;
}

Message decode_message(const std::string& bytes, uint64_t seed, const NamedTensors* reference,
                       const DecodeLimits& limits) {
  wire::Message w;
  FEDPP_CHECK(w.ParseFromString(bytes),
              "malformed message: " + std::to_string(bytes.size()) +
                  " bytes are not a fedpp wire message");
  FEDPP_CHECK(w.version() == kWireVersion,
              "message has wire version " + std::to_string(w.version()) + ", this build speaks " +
                  std::to_string(kWireVersion) + ": run the same fedpp version on both ends");
  // Every tensor's declared shape is checked, and the decoded size summed, before any payload
  // is expanded.
  constexpr int64_t kMaxElements = int64_t{1} << 40;
  int64_t decoded = 0;
  const bool exempt = !limits.exempt_config_key.empty() &&
                      w.config().find(limits.exempt_config_key) != w.config().end();
  if (limits.exact && limits.shapes && !exempt) {
    for (const auto& wt : w.tensors())
      FEDPP_CHECK(limits.shapes->contains(wt.name()),
                  "tensor '" + wt.name().substr(0, 64) + "' is not one the message may carry");
    // Every name is expected, so the count matching means each once, none missing.
    FEDPP_CHECK(w.tensors_size() == static_cast<int>(limits.shapes->size()),
                "the message carries " + std::to_string(w.tensors_size()) +
                    " tensors where exactly " + std::to_string(limits.shapes->size()) +
                    " are expected");
  }
  for (const auto& wt : w.tensors()) {
    const int64_t numel = checked_numel(wt.shape().data(), size_t(wt.shape().size()), kMaxElements,
                                        "malformed message: tensor '" + wt.name() + "'");
    if (limits.shapes && limits.shapes->contains(wt.name())) {
      const auto want = limits.shapes->at(wt.name()).sizes();
      FEDPP_CHECK(std::vector<int64_t>(wt.shape().begin(), wt.shape().end()) == want.vec(),
                  "tensor '" + wt.name() + "' has shape " +
                      c10::str(c10::IntArrayRef(wt.shape().data(), wt.shape().size())) +
                      ", but was sent as " + c10::str(want));
    }
    decoded += std::max<int64_t>(numel * 4, static_cast<int64_t>(wt.data().size()));
    FEDPP_CHECK(limits.max_decoded_bytes <= 0 || decoded <= limits.max_decoded_bytes,
                "message decodes to more than " + std::to_string(limits.max_decoded_bytes) +
                    " bytes (at tensor '" + wt.name() + "', " + std::to_string(decoded) +
                    " bytes so far): refused before decoding; raise deploy.max_decoded_bytes if "
                    "honest replies are this large");
  }
  static const Pipeline decoder;
  Message m;
  for (auto& wt : *w.mutable_tensors()) {
    std::vector<int64_t> shape(wt.shape().begin(), wt.shape().end());
    // The payload is handed over: a raw tensor is decoded without copying it.
    torch::Tensor t =
        decoder.decode(std::move(*wt.mutable_data()), shape, tensor_seed(seed, wt.name()));
    if (wt.delta()) {
      FEDPP_CHECK(reference && reference->contains(wt.name()) &&
                      reference->at(wt.name()).sizes() == t.sizes(),
                  "malformed message: tensor '" + wt.name() +
                      "' is an update, but nothing of that name and shape was sent");
      const auto& ref = reference->at(wt.name());
      if (t.scalar_type() == torch::kFloat)
        t.add_(ref.to(torch::kFloat));  // in place: no second buffer of the tensor's size
      else
        t = t + ref.to(torch::kFloat);
      t = t.to(ref.scalar_type());  // the receiver's dtype
    }
    FEDPP_CHECK(!m.tensors.contains(wt.name()),
                "malformed message: tensor '" + wt.name() + "' appears twice");
    m.tensors.set(wt.name(), t);
  }
  for (const auto& [k, v] : w.metrics()) m.metrics[k] = v;
  for (const auto& [k, v] : w.config()) m.config[k] = v;
  return m;
}

}  // namespace fedpp
