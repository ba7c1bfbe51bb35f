#include "fedpp/codec/bitpack.hpp"

#include <cstring>

#include "fedpp/codec/simd.hpp"

namespace fedpp::codec {

namespace {

// Widths that divide 8 (1, 2, 4, 8): byte b holds codes b*per .. b*per + per - 1, the first in
// its low bits; every byte is independent of the others, so the loops vectorise. The same
// stream as the general loop.
template <int Q>
FEDPP_CODEC_INLINE void pack_narrow(const uint16_t* codes, int64_t count, uint8_t* out) {
  constexpr int kPer = 8 / Q;
  constexpr uint32_t kMask = (1u << Q) - 1;
  const int64_t full = count / kPer;
  for (int64_t b = 0; b < full; ++b) {
    uint32_t byte = 0;
    for (int k = 0; k < kPer; ++k) byte |= (codes[b * kPer + k] & kMask) << (k * Q);
    out[b] = static_cast<uint8_t>(byte);
  }
  if (full * kPer < count) {  // the last byte: its unused high bits stay zero
    uint32_t byte = 0;
    for (int64_t i = full * kPer; i < count; ++i)
      byte |= (codes[i] & kMask) << ((i - full * kPer) * Q);
    out[full] = static_cast<uint8_t>(byte);
  }
}

template <int Q>
FEDPP_CODEC_INLINE void unpack_narrow(const uint8_t* in, int64_t count, uint16_t* codes) {
  constexpr int kPer = 8 / Q;
  constexpr uint32_t kMask = (1u << Q) - 1;
  const int64_t full = count / kPer;
  for (int64_t b = 0; b < full; ++b)
    for (int k = 0; k < kPer; ++k)
      codes[b * kPer + k] = static_cast<uint16_t>((uint32_t{in[b]} >> (k * Q)) & kMask);
  for (int64_t i = full * kPer; i < count; ++i)
    codes[i] = static_cast<uint16_t>((uint32_t{in[full]} >> ((i - full * kPer) * Q)) & kMask);
}

}  // namespace

int64_t packed_bytes(int64_t count, int q) { return (count * q + 7) / 8; }

FEDPP_CODEC_KERNEL void pack_bits(const uint16_t* codes, int64_t count, int q, uint8_t* out) {
  switch (q) {
    case 1: return pack_narrow<1>(codes, count, out);
    case 2: return pack_narrow<2>(codes, count, out);
    case 4: return pack_narrow<4>(codes, count, out);
    case 8: return pack_narrow<8>(codes, count, out);
    default: break;
  }
  const uint64_t mask = (uint64_t{1} << q) - 1;
  uint64_t acc = 0;  // pending bits, oldest in the low end
  int pending = 0;   // < 32 between codes
  for (int64_t i = 0; i < count; ++i) {
    acc |= (codes[i] & mask) << pending;
    pending += q;
    if (pending >= 32) {
      const uint32_t word = static_cast<uint32_t>(acc);
      std::memcpy(out, &word, 4);  // little-endian host (checked in codec.cpp)
      out += 4;
      acc >>= 32;
      pending -= 32;
    }
  }
  for (; pending > 0; pending -= 8, acc >>= 8) *out++ = static_cast<uint8_t>(acc);
}

FEDPP_CODEC_KERNEL void unpack_bits(const uint8_t* in, int64_t count, int q, uint16_t* codes) {
  switch (q) {
    case 1: return unpack_narrow<1>(in, count, codes);
    case 2: return unpack_narrow<2>(in, count, codes);
    case 4: return unpack_narrow<4>(in, count, codes);
    case 8: return unpack_narrow<8>(in, count, codes);
    default: break;
  }
  const uint64_t mask = (uint64_t{1} << q) - 1;
  const uint8_t* end = in + packed_bytes(count, q);
  uint64_t acc = 0;
  int avail = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (avail < q) {
      if (end - in >= 4) {
        uint32_t word;
        std::memcpy(&word, in, 4);
        acc |= uint64_t{word} << avail;
        avail += 32;
        in += 4;
      } else {
        while (avail < q) {  // the stream holds enough bytes for every code
          acc |= uint64_t{*in++} << avail;
          avail += 8;
        }
      }
    }
    codes[i] = static_cast<uint16_t>(acc & mask);
    acc >>= q;
    avail -= q;
  }
}

}  // namespace fedpp::codec
