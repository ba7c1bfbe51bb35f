// Bit packing of q-bit codes (q = 1..16) into a dense little-endian bit stream: code i occupies
// stream bits [i*q, (i+1)*q), least significant bit first, and stream bit b is bit (b % 8) of
// byte b / 8. A run of `count` codes takes exactly packed_bytes(count, q) bytes; the unused high
// bits of the last byte are zero.
#pragma once
#include <cstdint>

namespace fedpp::codec {

// ceil(count * q / 8).
int64_t packed_bytes(int64_t count, int q);

// Writes packed_bytes(count, q) bytes to `out`. Only the low q bits of each code are used.
void pack_bits(const uint16_t* codes, int64_t count, int q, uint8_t* out);

// Reads packed_bytes(count, q) bytes from `in` into `count` codes.
void unpack_bits(const uint8_t* in, int64_t count, int q, uint16_t* codes);

}  // namespace fedpp::codec
