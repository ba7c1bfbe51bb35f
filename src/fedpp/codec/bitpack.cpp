#include "fedpp/codec/bitpack.hpp"

#include <cstring>

namespace fedpp::codec {

int64_t packed_bytes(int64_t count, int q) { return (count * q + 7) / 8; }

void pack_bits(const uint16_t* codes, int64_t count, int q, uint8_t* out) {
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

void unpack_bits(const uint8_t* in, int64_t count, int q, uint16_t* codes) {
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
