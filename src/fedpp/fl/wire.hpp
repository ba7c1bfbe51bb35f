// The wire format of a Message (proto/fedpp.proto, version kWireVersion): the same bytes in
// simulation (where they are only counted) and in deployment (where they cross the network).
// Tensors are encoded by a codec Pipeline; with a lossy pipeline and a `reference` (what the
// sender received from the other side this round), a float tensor of the same name and shape
// travels as the difference from it (the "update"), which is what lossy up-link compression
// compresses. An algorithm that uploads something other than new values of received tensors
// gives it other names.
#pragma once
#include <cstdint>
#include <string>

#include "fedpp/codec/codec.hpp"
#include "fedpp/fl/message.hpp"

namespace fedpp {

constexpr uint32_t kWireVersion = 1;

// Seed for tensor `name` of a message whose codec seed is `seed`.
uint64_t tensor_seed(uint64_t seed, const std::string& name);

std::string encode_message(const Message& m, const Pipeline& pipeline, uint64_t seed,
                           const NamedTensors* reference = nullptr);
// Throws fedpp::Error for malformed bytes, a wrong version, or a delta without its reference.
Message decode_message(const std::string& bytes, uint64_t seed,
                       const NamedTensors* reference = nullptr);

}  // namespace fedpp
