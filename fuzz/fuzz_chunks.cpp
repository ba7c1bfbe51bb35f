// libFuzzer target for the chunk assembler (src/fedpp/runtime/chunks.hpp) that reassembles
// gRPC task and reply streams: the input is an announced total (4 bytes) followed by pieces,
// each a 2-byte length and that many bytes. Whatever the sequence, the assembler never holds
// more than the announced total, refuses a total over its cap, and when complete holds exactly
// the concatenated pieces; a violation aborts (a crash the fuzzer reports).
// Built with -DFEDPP_BUILD_FUZZ=ON and clang (scripts/fuzz.sh).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fedpp/runtime/chunks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint64_t total = (uint64_t(data[0]) << 24 | uint64_t(data[1]) << 16 |
                          uint64_t(data[2]) << 8 | data[3]) & 0x7fffffff;
  const uint64_t cap = 1 << 20;
  fedpp::ChunkAssembler a(total, cap);
  if ((total > cap) != (a.state() == fedpp::ChunkAssembler::State::kTooLarge)) std::abort();
  std::string sent;
  size_t at = 4;
  bool spoiled = false;
  while (at + 2 <= size) {
    const size_t n = std::min<size_t>(size - at - 2, size_t(data[at]) << 8 | data[at + 1]);
    std::string_view piece(reinterpret_cast<const char*>(data) + at + 2, n);
    at += 2 + n;
    const bool want = !spoiled && total <= cap && sent.size() + piece.size() <= total;
    const bool ok = a.add(piece);
    if (ok != want) std::abort();
    if (ok) sent.append(piece);
    spoiled |= !ok;
    if (a.received() > a.total() || (!spoiled && a.received() != sent.size())) std::abort();
  }
  if (a.complete() && a.take() != sent) std::abort();
  return 0;
}
