#include "fedpp/codec/codec.hpp"

#include <cmath>
#include <cstring>
#include <memory>
#include <limits>
#include <sstream>

#include "fedpp/codec/bitpack.hpp"
#include "fedpp/codec/hadamard.hpp"
#include "fedpp/codec/kashin.hpp"
#include "fedpp/codec/quantize.hpp"
#include "fedpp/codec/random.hpp"
#include "fedpp/codec/subsample.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/core/shape_check.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the codec writes its wire format with memcpy and needs a little-endian host");

namespace fedpp {
namespace {

// ---- wire layout ----------------------------------------------------------------------------
// Every encoding starts with the 12-byte common header:
//   u8 magic, u8 version, u8 kind (raw | lossy), u8 dtype code, u64 d (element count)
// raw:   the d elements in the tensor's own dtype, little-endian.
// lossy: u8 transform, u8 format (f32 | f16 | quantized), u8 bits, u8 flags (bit 0: constant),
//        u64 n (transformed length), u64 k (values sent; k < n means subsampled), then
//        f32: 4k bytes; f16: 2k bytes; quantized: f32 value if constant, else f32 lo, f32 hi and
//        packed_bytes(k, bits) bytes of codes.
constexpr uint8_t kMagic = 0xFD;
constexpr uint8_t kVersion = 1;
constexpr size_t kCommonHeader = 12;
constexpr size_t kLossyHeader = kCommonHeader + 20;
// Lossy tensors are limited so that a malicious header cannot make decode allocate unboundedly.
constexpr int64_t kMaxLossyElements = int64_t{1} << 31;

enum Kind : uint8_t { kRaw = 0, kLossy = 1 };
enum Transform : uint8_t { kIdentity = 0, kHadamard = 1, kKashin = 2 };
enum Format : uint8_t { kF32 = 0, kF16 = 1, kQuantized = 2 };
constexpr uint8_t kFlagConstant = 1;

struct DtypeInfo {
  uint8_t code;
  torch::ScalarType type;
  size_t size;
  const char* name;
};
constexpr DtypeInfo kDtypes[] = {
    {1, torch::kFloat, 4, "float32"}, {2, torch::kDouble, 8, "float64"},
    {3, torch::kHalf, 2, "float16"},  {4, torch::kBFloat16, 2, "bfloat16"},
    {5, torch::kByte, 1, "uint8"},    {6, torch::kChar, 1, "int8"},
    {7, torch::kShort, 2, "int16"},   {8, torch::kInt, 4, "int32"},
    {9, torch::kLong, 8, "int64"},    {10, torch::kBool, 1, "bool"},
};

const DtypeInfo& dtype_of(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d;
  throw Error(std::string("codec: cannot encode a tensor of dtype ") + c10::toString(t) +
              "; supported: float32/64, float16, bfloat16, bool and integer types");
}

const DtypeInfo* dtype_of_code(uint8_t code) {
  for (const auto& d : kDtypes)
    if (d.code == code) return &d;
  return nullptr;
}

const char* transform_name(uint8_t t) {
  return t == kHadamard ? "hadamard" : t == kKashin ? "kashin" : "identity";
}

uint8_t transform_id(const std::string& name) {
  return name == "hadamard" ? kHadamard : name == "kashin" ? kKashin : kIdentity;
}

int64_t transformed_dim(uint8_t transform, int64_t d) {
  return transform == kHadamard ? codec::next_pow2(d)
         : transform == kKashin ? codec::kashin_dim(d)
                                : d;
}

// Appends little-endian scalars to a pre-sized buffer.
struct Writer {
  char* p;
  template <class T>
  void put(T v) {
    std::memcpy(p, &v, sizeof(T));
    p += sizeof(T);
  }
  void put_bytes(const void* src, size_t n) {
    if (n) std::memcpy(p, src, n);
    p += n;
  }
};

template <class T>
T read_at(const std::string& b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string fmt_double(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

bool all_finite(const float* x, int64_t n) {
  bool ok = true;  // no early exit, so the loop vectorizes
  for (int64_t i = 0; i < n; ++i) ok &= std::abs(x[i]) <= std::numeric_limits<float>::max();
  return ok;
}

std::string encode_raw(const torch::Tensor& x, const DtypeInfo& dt) {
  const auto d = static_cast<uint64_t>(x.numel());
  std::string out(kCommonHeader + d * dt.size, '\0');
  Writer w{out.data()};
  w.put(kMagic), w.put(kVersion), w.put(uint8_t{kRaw}), w.put(dt.code), w.put(d);
  w.put_bytes(x.data_ptr(), d * dt.size);
  return out;
}

}  // namespace

// ---- spec -----------------------------------------------------------------------------------

std::string CodecSpec::describe() const {
  std::string s = transform;
  if (subsample < 1.0) s += "+s" + fmt_double(subsample);
  if (bits > 0)
    s += "+q" + std::to_string(bits);
  else if (float16)
    s += "+f16";
  return s;
}

void CodecSpec::validate() const {
  FEDPP_CHECK(transform == "identity" || transform == "hadamard" || transform == "kashin",
              "codec transform '" + transform + "' is not one of: identity, hadamard, kashin");
  FEDPP_CHECK(subsample > 0.0 && subsample <= 1.0,
              "codec subsample = " + fmt_double(subsample) + " must be in (0, 1]");
  FEDPP_CHECK(bits >= 0 && bits <= 16,
              "codec bits = " + std::to_string(bits) + " must be 0 (off) or 1..16");
  FEDPP_CHECK(!(float16 && bits > 0),
              "codec float16 = true needs bits = 0 (it sends unquantised half floats)");
  FEDPP_CHECK(min_elements >= 0,
              "codec min_elements = " + std::to_string(min_elements) + " must be >= 0");
  FEDPP_CHECK(kashin_iterations >= 1 && kashin_iterations <= 100,
              "codec kashin_iterations = " + std::to_string(kashin_iterations) +
                  " must be in 1..100");
  FEDPP_CHECK(kashin_eta > 0.0 && kashin_eta <= 1.0,
              "codec kashin_eta = " + fmt_double(kashin_eta) + " must be in (0, 1]");
  FEDPP_CHECK(kashin_delta > 0.0 && std::isfinite(kashin_delta),
              "codec kashin_delta = " + fmt_double(kashin_delta) + " must be > 0");
}

CodecSpec codec_spec_from_config(const Config& cfg, const std::string& section) {
  const std::string p = section.empty() ? "" : section + ".";
  CodecSpec s;
  s.transform = cfg.get_choice(p + "transform", s.transform, {"identity", "hadamard", "kashin"});
  s.subsample = cfg.get_double(p + "subsample", s.subsample, 0.0, 1.0);
  FEDPP_CHECK(s.subsample > 0.0, "config key '" + p + "subsample' = 0 must be in (0, 1]: it is "
                                     "the fraction of coordinates kept");
  s.bits = static_cast<int>(cfg.get_int(p + "bits", s.bits, 0, 16));
  s.float16 = cfg.get_bool(p + "float16", s.float16);
  FEDPP_CHECK(!(s.float16 && s.bits > 0),
              "config keys '" + p + "float16' and '" + p + "bits' conflict: float16 = true sends "
              "unquantised half floats, so set bits = 0 or float16 = false");
  s.min_elements = cfg.get_int(p + "min_elements", s.min_elements, 0);
  s.kashin_iterations =
      static_cast<int>(cfg.get_int(p + "kashin_iterations", s.kashin_iterations, 1, 100));
  s.kashin_eta = cfg.get_double(p + "kashin_eta", s.kashin_eta, 0.0, 1.0);
  FEDPP_CHECK(s.kashin_eta > 0.0, "config key '" + p + "kashin_eta' = 0 must be in (0, 1]");
  s.kashin_delta = cfg.get_double(p + "kashin_delta", s.kashin_delta, 0.0);
  FEDPP_CHECK(s.kashin_delta > 0.0, "config key '" + p + "kashin_delta' = 0 must be > 0");
  s.validate();
  return s;
}

// ---- pipeline -------------------------------------------------------------------------------

Pipeline::Pipeline(CodecSpec spec) : spec_(std::move(spec)) { spec_.validate(); }

std::string Pipeline::encode(const torch::Tensor& t, uint64_t seed) const {
  FEDPP_CHECK(t.defined(), "codec: cannot encode an undefined tensor");
  torch::Tensor x = t.detach();
  if (!x.device().is_cpu()) x = x.cpu();
  const DtypeInfo& dt = dtype_of(x.scalar_type());
  const int64_t d = x.numel();
  const bool lossy =
      x.is_floating_point() && d > 0 && d >= spec_.min_elements && !spec_.lossless();
  if (!lossy) return encode_raw(x.contiguous(), dt);

  FEDPP_CHECK(d <= kMaxLossyElements,
              "codec: a tensor of " + std::to_string(d) + " elements is too large for lossy "
              "compression (limit 2^31); split it or use a lossless codec");
  x = x.to(torch::kFloat).contiguous();
  const float* v = x.data_ptr<float>();
  const uint8_t tid = transform_id(spec_.transform);
  FEDPP_CHECK((tid == kIdentity && spec_.bits == 0) || all_finite(v, d),
              "codec: cannot compress a tensor with NaN or infinite values (" +
                  spec_.describe() + "): the model or update diverged; check the learning "
                                     "rate");

  // 1. basis transform: v now points at the n coefficients.
  const int64_t n = transformed_dim(tid, d);
  const uint64_t sign_seed = codec::stream_seed(seed, codec::Stream::kSigns);
  std::vector<float> coefs;
  if (tid != kIdentity) {
    coefs.resize(n);
    if (tid == kHadamard)
      codec::hadamard_forward(v, d, n, sign_seed, coefs.data());
    else
      codec::kashin_encode(v, d, sign_seed,
                           {spec_.kashin_iterations, spec_.kashin_eta, spec_.kashin_delta},
                           coefs.data());
    v = coefs.data();
  }
  // 2. subsampling: v now points at the k values sent.
  const int64_t k = codec::subsample_count(n, spec_.subsample);
  std::vector<float> kept;
  if (k < n) {
    kept.resize(k);
    codec::subsample_gather(v, n, k, codec::stream_seed(seed, codec::Stream::kSubsample),
                            kept.data());
    v = kept.data();
  }
  // 3. values: quantised, float16 or float32.
  const uint8_t format = spec_.bits > 0 ? kQuantized : spec_.float16 ? kF16 : kF32;
  codec::QuantRange range;
  uint8_t flags = 0;
  size_t payload = 4 * static_cast<size_t>(k);
  if (format == kF16) payload = 2 * static_cast<size_t>(k);
  if (format == kQuantized) {
    range = codec::value_range(v, k);
    if (range.lo == range.hi) flags |= kFlagConstant;
    payload = (flags & kFlagConstant) ? 4 : 8 + codec::packed_bytes(k, spec_.bits);
  }

  std::string out(kLossyHeader + payload, '\0');
  Writer w{out.data()};
  w.put(kMagic), w.put(kVersion), w.put(uint8_t{kLossy}), w.put(uint8_t{1});  // float32
  w.put(static_cast<uint64_t>(d));
  w.put(tid), w.put(format), w.put(static_cast<uint8_t>(spec_.bits)), w.put(flags);
  w.put(static_cast<uint64_t>(n)), w.put(static_cast<uint64_t>(k));
  if (format == kF32) {
    w.put_bytes(v, payload);
  } else if (format == kF16) {
    torch::Tensor h = torch::from_blob(const_cast<float*>(v), {k}, torch::kFloat).to(torch::kHalf);
    w.put_bytes(h.data_ptr(), payload);
  } else if (flags & kFlagConstant) {
    w.put(range.lo);
  } else {
    w.put(range.lo), w.put(range.hi);
    std::vector<uint16_t> codes(k);
    codec::quantize(v, k, spec_.bits, range, codec::stream_seed(seed, codec::Stream::kQuantize),
                    codes.data());
    codec::pack_bits(codes.data(), k, spec_.bits, reinterpret_cast<uint8_t*>(w.p));
  }
  return out;
}

torch::Tensor Pipeline::decode(std::string&& bytes, const std::vector<int64_t>& shape,
                               uint64_t seed) const {
  // Only the layout is read here; decode(const&) checks everything and is the one that throws.
  if (bytes.size() < kCommonHeader || read_at<uint8_t>(bytes, 0) != kMagic ||
      read_at<uint8_t>(bytes, 1) != kVersion || read_at<uint8_t>(bytes, 2) != kRaw)
    return decode(static_cast<const std::string&>(bytes), shape, seed);
  const DtypeInfo* dt = dtype_of_code(read_at<uint8_t>(bytes, 3));
  const int64_t numel = checked_numel(shape.data(), shape.size(), int64_t{1} << 40,
                                      "codec: cannot decode a tensor of shape " + shape_str(shape));
  if (dt == nullptr || dt->type == torch::kBool || numel == 0 ||
      read_at<uint64_t>(bytes, 4) != static_cast<uint64_t>(numel) ||
      (bytes.size() - kCommonHeader) / dt->size != static_cast<uint64_t>(numel) ||
      (bytes.size() - kCommonHeader) % dt->size != 0)
    return decode(static_cast<const std::string&>(bytes), shape, seed);
  auto owner = std::make_shared<std::string>(std::move(bytes));
  char* body = owner->data() + kCommonHeader;
  if (reinterpret_cast<uintptr_t>(body) % dt->size != 0) return decode(*owner, shape, seed);
  // The storage cannot be resized (from_blob); nothing resizes a decoded tensor.
  return torch::from_blob(body, shape, [owner](void*) mutable { owner.reset(); },
                          torch::TensorOptions().dtype(dt->type));
}

torch::Tensor Pipeline::decode(const std::string& bytes, const std::vector<int64_t>& shape,
                               uint64_t seed) const {
  const std::string what = "codec: cannot decode a tensor of shape " + shape_str(shape) + ": ";
  const int64_t numel = checked_numel(shape.data(), shape.size(), int64_t{1} << 40,
                                      "codec: cannot decode a tensor of shape " + shape_str(shape));
  FEDPP_CHECK(bytes.size() >= kCommonHeader,
              what + "only " + std::to_string(bytes.size()) +
                  " bytes, fewer than the 12-byte header (truncated)");
  const auto magic = read_at<uint8_t>(bytes, 0), version = read_at<uint8_t>(bytes, 1);
  const auto kind = read_at<uint8_t>(bytes, 2), code = read_at<uint8_t>(bytes, 3);
  const auto d = read_at<uint64_t>(bytes, 4);
  FEDPP_CHECK(magic == kMagic, what + "bad magic byte " + std::to_string(magic) +
                                   " (not a fedpp codec encoding)");
  FEDPP_CHECK(version == kVersion, what + "codec version " + std::to_string(version) +
                                       ", this build reads version " + std::to_string(kVersion) +
                                       ": run the same fedpp version on both ends");
  FEDPP_CHECK(d == static_cast<uint64_t>(numel),
              what + "it has " + std::to_string(numel) + " elements but the encoding holds " +
                  std::to_string(d));
  const DtypeInfo* dt = dtype_of_code(code);
  FEDPP_CHECK(dt != nullptr, what + "unknown dtype code " + std::to_string(code));

  if (kind == kRaw) {
    const size_t body = bytes.size() - kCommonHeader;  // compared by division: no overflow
    FEDPP_CHECK(body % dt->size == 0 && body / dt->size == static_cast<uint64_t>(numel),
                what + std::to_string(bytes.size()) + " bytes where raw " + dt->name +
                    " needs 12 + " + std::to_string(numel) + " * " + std::to_string(dt->size));
    torch::Tensor out = torch::empty(shape, torch::TensorOptions().dtype(dt->type));
    if (numel) std::memcpy(out.data_ptr(), bytes.data() + kCommonHeader, numel * dt->size);
    if (dt->type == torch::kBool) {
      const auto* b = reinterpret_cast<const uint8_t*>(bytes.data() + kCommonHeader);
      for (int64_t i = 0; i < numel; ++i)
        FEDPP_CHECK(b[i] <= 1, what + "bool value " + std::to_string(b[i]) + " is not 0 or 1");
    }
    return out;
  }

  FEDPP_CHECK(kind == kLossy, what + "unknown encoding kind " + std::to_string(kind));
  FEDPP_CHECK(code == 1, what + "a lossy encoding must hold float32, not " + dt->name);
  FEDPP_CHECK(numel >= 1 && numel <= kMaxLossyElements,
              what + "a lossy encoding of " + std::to_string(numel) + " elements is not valid");
  FEDPP_CHECK(bytes.size() >= kLossyHeader, what + "only " + std::to_string(bytes.size()) +
                                                " bytes, fewer than the 32-byte lossy header "
                                                "(truncated)");
  const auto tid = read_at<uint8_t>(bytes, 12), format = read_at<uint8_t>(bytes, 13);
  const auto bits = read_at<uint8_t>(bytes, 14), flags = read_at<uint8_t>(bytes, 15);
  const auto n_field = read_at<uint64_t>(bytes, 16), k_field = read_at<uint64_t>(bytes, 24);
  FEDPP_CHECK(tid <= kKashin, what + "unknown transform id " + std::to_string(tid));
  FEDPP_CHECK(format <= kQuantized, what + "unknown value format " + std::to_string(format));
  FEDPP_CHECK(format == kQuantized ? bits >= 1 && bits <= 16 : bits == 0,
              what + "invalid bit width " + std::to_string(bits));
  FEDPP_CHECK(flags == 0 || (flags == kFlagConstant && format == kQuantized),
              what + "invalid flags " + std::to_string(flags));
  const int64_t n = transformed_dim(tid, numel);
  FEDPP_CHECK(n_field == static_cast<uint64_t>(n),
              what + "transformed length " + std::to_string(n_field) + " where " +
                  transform_name(tid) + " needs " + std::to_string(n));
  FEDPP_CHECK(k_field >= 1 && k_field <= static_cast<uint64_t>(n),
              what + "value count " + std::to_string(k_field) + " is not in 1.." +
                  std::to_string(n));
  const auto k = static_cast<int64_t>(k_field);
  size_t payload = format == kF32   ? 4 * static_cast<size_t>(k)
                   : format == kF16 ? 2 * static_cast<size_t>(k)
                   : (flags & kFlagConstant) ? 4
                                             : 8 + codec::packed_bytes(k, bits);
  FEDPP_CHECK(bytes.size() == kLossyHeader + payload,
              what + std::to_string(bytes.size()) + " bytes where the header announces " +
                  std::to_string(kLossyHeader + payload) + " (truncated or corrupt)");

  torch::Tensor out = torch::empty({numel}, torch::kFloat);
  float* o = out.data_ptr<float>();
  std::vector<float> coef_store, kept_store;
  float* coefs = o;  // identity: the coefficients are the output
  if (tid != kIdentity) {
    coef_store.resize(n);
    coefs = coef_store.data();
  }
  float* vals = coefs;
  if (k < n) {
    kept_store.resize(k);
    vals = kept_store.data();
  }

  const char* p = bytes.data() + kLossyHeader;
  if (format == kF32) {
    std::memcpy(vals, p, payload);
  } else if (format == kF16) {
    torch::Tensor h = torch::empty({k}, torch::kHalf);
    std::memcpy(h.data_ptr(), p, payload);
    torch::Tensor f = h.to(torch::kFloat);
    std::memcpy(vals, f.data_ptr<float>(), 4 * static_cast<size_t>(k));
  } else if (flags & kFlagConstant) {
    const auto c = read_at<float>(bytes, kLossyHeader);
    FEDPP_CHECK(std::isfinite(c), what + "non-finite constant value");
    std::fill(vals, vals + k, c);
  } else {
    const codec::QuantRange range{read_at<float>(bytes, kLossyHeader),
                                  read_at<float>(bytes, kLossyHeader + 4)};
    FEDPP_CHECK(std::isfinite(range.lo) && std::isfinite(range.hi) && range.lo < range.hi,
                what + "invalid quantisation range");
    std::vector<uint16_t> codes(k);
    codec::unpack_bits(reinterpret_cast<const uint8_t*>(p + 8), k, bits, codes.data());
    codec::dequantize(codes.data(), k, bits, range, vals);
  }
  if (k < n)
    codec::subsample_scatter(vals, n, k, codec::stream_seed(seed, codec::Stream::kSubsample),
                             static_cast<float>(static_cast<double>(n) / k), coefs);
  if (tid != kIdentity)
    codec::hadamard_inverse(coefs, n, numel, codec::stream_seed(seed, codec::Stream::kSigns), o);
  return out.view(shape);
}

}  // namespace fedpp
