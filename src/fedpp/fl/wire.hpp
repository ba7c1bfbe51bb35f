// The wire format of a Message (proto/fedpp.proto, version kWireVersion): the same bytes in
// simulation (where they are only counted) and in deployment (where they cross the network).
// Tensors are encoded by a codec Pipeline; with a `reference` (what the sender received from the
// other side this round), a float tensor of the same name and shape travels as the difference
// from it (the "update") when the pipeline is lossy, or always with Delta::kAlways. The update
// is what lossy up-link compression compresses, and it lets the receiver add it to its own
// exact copy of what it sent (Caldas et al., TFF): the error of a lossy down-link then never
// enters the server's model. An algorithm that uploads something other than new values of
// received tensors gives it other names.
#pragma once
#include <cstdint>
#include <string>

#include "fedpp/codec/codec.hpp"
#include "fedpp/fl/message.hpp"

namespace fedpp {

constexpr uint32_t kWireVersion = 1;

// Seed for tensor `name` of a message whose codec seed is `seed`.
uint64_t tensor_seed(uint64_t seed, const std::string& name);

// When tensors matching `reference` travel as updates: kWhenLossy (lossless pipelines send
// values bit-exact), or kAlways (the sender's reference is a lossy copy of the receiver's, so
// only the difference is meaningful to the receiver).
enum class Delta { kWhenLossy, kAlways };

std::string encode_message(const Message& m, const Pipeline& pipeline, uint64_t seed,
                           const NamedTensors* reference = nullptr,
                           Delta delta = Delta::kWhenLossy);
// What a receiver accepts, checked on the message's tensor headers before any payload is
// expanded (a few bytes of a lossy encoding can stand for gigabytes of floats).
struct DecodeLimits {
  // Cap on the decoded size of the whole message: the sum over its tensors of elements x 4
  // bytes (float32, what lossy encodings decode to; raw payloads are as large as their bytes).
  // 0 = no cap.
  int64_t max_decoded_bytes = 0;
  // A tensor named like one of these must have its shape (not owned; may be null).
  const NamedTensors* shapes = nullptr;
  // With `shapes`: the message must carry exactly those tensors, each once (none missing, none
  // other); checked on the headers too. Not for a message whose config holds the key
  // `exempt_config_key` (when not empty): e.g. a client's report that its fit failed, which
  // carries no tensors and is rejected for that reason by the receiver.
  bool exact = false;
  std::string exempt_config_key;
};

// Throws fedpp::Error for malformed bytes, a wrong version, a delta without its reference, or
// a message outside `limits` (naming the tensor, or the sizes against the cap).
Message decode_message(const std::string& bytes, uint64_t seed,
                       const NamedTensors* reference = nullptr,
                       const DecodeLimits& limits = {});

}  // namespace fedpp
