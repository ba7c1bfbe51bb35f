// Lossy and lossless encoding of one tensor for the wire (docs/methods/feddropout.md).
//
// A Pipeline applies, per tensor flattened to a vector x of length d:
//   1. a basis transform: identity | hadamard (randomized, orthonormal) | kashin;
//   2. subsampling: keep a fraction s of coordinates chosen by the seed, scaled by 1/s;
//   3. stochastic unbiased uniform quantisation to q bits (1..16) with real bit packing,
//      or plain float32 (q = 0) / float16 (float16 = true) values.
// Tensors with fewer than min_elements elements, integer and bool tensors, and every tensor of a
// lossless spec travel raw (their own dtype, bit-exact) whatever the transform: a transform
// alone would only add rounding. Lossy steps work in float32.
// encode() returns a self-describing byte string (a small header naming the steps and their
// parameters, then the payload), so decode() needs only those bytes and the same seed. Seeds
// are derived by the caller from (run seed, direction, round, client, tensor name), so both
// ends agree and runs repeat exactly. All sizes are bytes actually sent.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace fedpp {

class Config;

struct CodecSpec {
  std::string transform = "identity";  // identity | hadamard | kashin
  double subsample = 1.0;              // fraction kept, (0, 1]
  int bits = 0;                        // 0 = no quantisation; 1..16 = q-bit quantisation
  bool float16 = false;                // with bits = 0: send values as float16
  int64_t min_elements = 10000;        // smaller tensors travel raw (uncompressed)
  int kashin_iterations = 3;
  double kashin_eta = 0.9;
  double kashin_delta = 1.0;

  bool lossless() const {
    return subsample >= 1.0 && bits == 0 && !float16;
  }
  std::string describe() const;  // e.g. "hadamard+s0.25+q4", "identity+f16"
  // Throws fedpp::Error naming the first invalid field.
  void validate() const;
};

// Reads keys <section>.transform, .subsample, .bits, .float16, .min_elements,
// .kashin_iterations, .kashin_eta, .kashin_delta (all optional) with validation.
CodecSpec codec_spec_from_config(const Config& cfg, const std::string& section);

class Pipeline {
 public:
  Pipeline() = default;
  explicit Pipeline(CodecSpec spec);  // validates the spec
  const CodecSpec& spec() const { return spec_; }

  // Any float, integer or bool CPU or device tensor (any shape); integer tensors (labels,
  // indices) travel losslessly. Throws fedpp::Error for a lossy step on NaN/Inf values.
  std::string encode(const torch::Tensor& t, uint64_t seed) const;
  // Inverse of encode: same shape as the input to encode (`shape`), on the CPU; float32 after
  // lossy steps, else the dtype that was sent. Any Pipeline decodes any encoding (the bytes
  // name their steps). Throws fedpp::Error on malformed bytes (truncated, bad header, size or
  // shape mismatch) naming what is wrong.
  torch::Tensor decode(const std::string& bytes, const std::vector<int64_t>& shape,
                       uint64_t seed) const;
  // The same, taking the bytes: a raw (lossless) encoding whose values are aligned after the
  // 12-byte header (float32, int32, float16, bfloat16, 8- and 16-bit integers; not 8-byte
  // types, which land 4 bytes off) becomes a tensor over those bytes without a copy (the
  // tensor owns them; a large float32 reply is decoded without touching a second buffer of its
  // size). Every other encoding decodes as above, with the same errors.
  torch::Tensor decode(std::string&& bytes, const std::vector<int64_t>& shape,
                       uint64_t seed) const;

 private:
  CodecSpec spec_;
};

}  // namespace fedpp
