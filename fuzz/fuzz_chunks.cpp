// libFuzzer target for src/fedpp/runtime/chunks.hpp, the chunk layer of the gRPC task and reply
// streams. The first input byte picks what is fuzzed:
// - even: the chunk assembler. Then an announced total (4 bytes) followed by pieces, each a
//   2-byte length and that many bytes. Whatever the sequence, the assembler never holds more
//   than the announced total, refuses a total over its cap, and when complete holds exactly the
//   concatenated pieces.
// - odd: the hand-written Chunk / ReplyChunk reader, differentially against protobuf. The next
//   byte sets where the rest is cut into pieces (as gRPC's slices would cut it); whenever the
//   reader accepts a Chunk, protobuf parses the same bytes to the same fields; whenever it
//   accepts a ReplyChunk that protobuf accepts too, the fields agree (the header's contents are
//   protobuf's to parse); every view lies in the input.
// A violation aborts (a crash the fuzzer reports). Built with -DFEDPP_BUILD_FUZZ=ON and clang
// (scripts/fuzz.sh).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fedpp/proto/fedpp.pb.h"
#include "fedpp/runtime/chunks.hpp"

namespace {

void assembler(const uint8_t* data, size_t size) {
  if (size < 4) return;
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
}

void inside(const fedpp::Pieces& p, std::string_view whole) {
  uint64_t n = 0;
  for (auto v : p.parts) {
    if (v.data() < whole.data() || v.data() + v.size() > whole.data() + whole.size()) std::abort();
    n += v.size();
  }
  if (n != p.size) std::abort();
}

void wire(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const size_t step = 1 + data[0] % 7;  // cut every `step` bytes (and an empty piece below)
  const std::string_view whole(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string_view> pieces;
  for (size_t at = 0; at < whole.size(); at += step) pieces.push_back(whole.substr(at, step));
  pieces.insert(pieces.begin() + static_cast<long>(data[0] % (pieces.size() + 1)),
                std::string_view());  // an empty slice anywhere
  uint64_t total = 0;
  fedpp::Pieces d, h;
  if (fedpp::read_chunk(pieces, &total, &d).empty()) {
    inside(d, whole);
    fedpp::wire::Chunk c;
    if (!c.ParseFromArray(whole.data(), static_cast<int>(whole.size()))) std::abort();
    if (c.total_size() != total || c.data() != d.join()) std::abort();
  }
  bool has_header = false;
  if (fedpp::read_reply_chunk(pieces, &has_header, &h, &d).empty()) {
    inside(h, whole);
    inside(d, whole);
    // The reader leaves the header's contents to protobuf (the server parses the joined
    // occurrences): whenever protobuf accepts the whole chunk, the joined header parses to
    // protobuf's merged header and the data agree.
    fedpp::wire::ReplyChunk c;
    if (c.ParseFromArray(whole.data(), static_cast<int>(whole.size()))) {
      fedpp::wire::ReplyHeader merged;
      if (!merged.ParseFromString(h.join())) std::abort();
      if (c.data() != d.join() || c.has_header() != has_header) std::abort();
      if (merged.SerializeAsString() != c.header().SerializeAsString()) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  if (data[0] & 1)
    wire(data + 1, size - 1);
  else
    assembler(data + 1, size - 1);
  return 0;
}
