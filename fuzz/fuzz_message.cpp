// libFuzzer target for decode_message (src/fedpp/fl/wire.hpp): whatever the bytes, decoding
// either returns a Message or throws fedpp::Error; it never crashes, hangs or throws anything
// else. Built with -DFEDPP_BUILD_FUZZ=ON and clang (scripts/fuzz.sh).
//
// With FEDPP_FUZZ_SEEDS=DIR in the environment, the first run writes valid messages of every
// codec (lossless, float16, quantised, subsampled, hadamard, kashin; with and without deltas)
// into DIR as a seed corpus, then fuzzes as usual.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "fedpp/core/error.hpp"
#include "fedpp/fl/wire.hpp"

namespace {

const fedpp::NamedTensors& reference() {
  static const fedpp::NamedTensors ref = [] {
    fedpp::NamedTensors r;
    r.set("w", torch::linspace(-1, 1, 64).reshape({8, 8}));
    r.set("b", torch::zeros({8}));
    r.set("big", torch::ones({4, 4, 4, 4}));
    return r;
  }();
  return ref;
}

void write_seeds(const std::string& dir) {
  fedpp::Message m;
  m.tensors.set("w", torch::linspace(0, 2, 64).reshape({8, 8}));
  m.tensors.set("b", torch::arange(8, torch::kFloat));
  m.tensors.set("big", torch::linspace(-3, 3, 256).reshape({4, 4, 4, 4}));
  m.tensors.set("labels", torch::arange(5, torch::kLong));
  m.tensors.set("mask", torch::ones({3}, torch::kBool));
  m.metrics["num_samples"] = 10;
  m.config["k"] = "v";
  std::vector<fedpp::CodecSpec> specs(6);
  specs[1].float16 = true;
  specs[2].bits = 4;
  specs[3].subsample = 0.5;
  specs[4].transform = "hadamard";
  specs[4].bits = 2;
  specs[5].transform = "kashin";
  specs[5].bits = 8;
  int i = 0;
  for (auto spec : specs) {
    spec.min_elements = 1;
    fedpp::Pipeline p(spec);
    for (const fedpp::NamedTensors* ref : {static_cast<const fedpp::NamedTensors*>(nullptr),
                                          &reference()}) {
      std::ofstream out(dir + "/seed_" + std::to_string(i++), std::ios::binary);
      out << fedpp::encode_message(m, p, 1, ref);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("FEDPP_FUZZ_SEEDS")) write_seeds(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  for (const fedpp::NamedTensors* ref : {static_cast<const fedpp::NamedTensors*>(nullptr),
                                        &reference()}) {
    try {
      fedpp::Message m = fedpp::decode_message(bytes, 1, ref);
      for (const auto& [name, t] : m.tensors) (void)t.numel();
    } catch (const fedpp::Error&) {
      // rejected with a reason: what a receiver does with bad bytes
    }
  }
  return 0;
}
