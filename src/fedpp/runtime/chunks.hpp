// Reassembly of a message that travels in chunks (the gRPC runtime's FetchTask and SendReply
// streams): the sender announces the total size first, then sends the bytes in pieces. And the
// wire form of one chunk, written and read without protobuf (below).
//
// The assembler refuses an announced total over its cap before anything is kept, never holds
// more than the announced total in bytes received (a piece that would pass it is refused and
// the message is spoiled; a reused buffer may keep a larger earlier message's capacity), and
// reserves memory in bounded steps as bytes arrive, not for what was announced,
// so a sender that announces much and sends little costs little. Plain bytes; no torch, no
// gRPC. Not thread-safe: one assembler per stream.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fedpp {

class ChunkAssembler {
 public:
  enum class State { kReceiving, kComplete, kTooLarge, kOverflow };

  // `total`: the announced size in bytes; `max_bytes`: the cap (state kTooLarge when above it).
  // `reuse`: a buffer whose memory the message is assembled into (its contents are dropped, its
  // capacity kept): a receiver that hands back the previous message's buffer writes into memory
  // it has already touched, instead of faulting in fresh pages for every message (which costs
  // more than the copy itself on some virtual machines: bench/README.md, "What bounds gRPC").
  ChunkAssembler(uint64_t total, uint64_t max_bytes, std::string reuse = {});

  // Appends a piece. Returns false when the message is spoiled: announced over the cap, or
  // this piece would take it past the announced total (state kOverflow; nothing is appended).
  bool add(std::string_view piece);

  State state() const { return state_; }
  bool complete() const { return state_ == State::kComplete; }
  uint64_t total() const { return total_; }
  uint64_t received() const { return bytes_.size(); }
  // The assembled bytes (complete or not); the assembler is empty afterwards.
  std::string take();

  // Bytes reserved ahead of what arrived, at most (the reservation step).
  static constexpr uint64_t kReserveStep = uint64_t{64} << 20;

 private:
  uint64_t total_;
  State state_;
  std::string bytes_;
};

// ---- one chunk on the wire, without protobuf ----------------------------------------------
// proto/fedpp.proto's `Chunk` (bytes data = 1; uint64 total_size = 2) and `ReplyChunk`
// (ReplyHeader header = 1; bytes data = 2), encoded and read by hand so that a chunk's data can
// travel as a reference into the whole message: the gRPC runtime sends a short prefix and a view
// of the message's bytes, and reads the data straight out of gRPC's receive buffers, instead of
// copying each chunk into a protobuf string and that again into gRPC's buffers. Parse-compatible
// with protobuf both ways (what one writes the other reads to the same fields; the bytes differ:
// total_size is written before data): fields in any order, a repeated singular field's last
// occurrence wins, an embedded message's occurrences merge, unknown fields are skipped, tags and
// varints as protobuf bounds them (tests/test_deploy.cpp and fuzz/fuzz_chunks.cpp check against
// protobuf). Refused, where protobuf would accept: group fields (wire types 3, 4; deprecated,
// never written by fedpp) and a ReplyChunk whose header occurrences exceed kMaxReplyHeaderBytes
// (a real header is under 40 bytes; the bound keeps a hostile chunk of many tiny occurrences
// from costing more than its size).

// Bytes held in pieces (views into a received message's buffers, in order); owns nothing.
struct Pieces {
  std::vector<std::string_view> parts;
  uint64_t size = 0;
  void append(std::string_view p);
  void clear();
  std::string join() const;
};

// The bytes that precede `n` bytes of data in a serialized Chunk: total_size when nonzero, then
// data's tag and length. Prefix + data is a valid serialized Chunk.
std::string chunk_prefix(uint64_t n, uint64_t total_size);
// The same for a ReplyChunk: the serialized ReplyHeader `*header` when given (even if empty, as
// protobuf writes a set message field), then data's tag and length.
std::string reply_chunk_prefix(uint64_t n, const std::string* header);

// Read one serialized Chunk held in `message` (pieces in order): *total_size (0 when absent) and
// *data as views into `message`. Return "" when well formed, else what is malformed (the
// outputs are then unspecified).
std::string read_chunk(const std::vector<std::string_view>& message, uint64_t* total_size,
                       Pieces* data);
constexpr uint64_t kMaxReplyHeaderBytes = 1024;

// Read one serialized ReplyChunk: *has_header whether field 1 occurs, *header every occurrence
// of it in order (their concatenation parses as the merged ReplyHeader), *data field 2's last.
std::string read_reply_chunk(const std::vector<std::string_view>& message, bool* has_header,
                             Pieces* header, Pieces* data);

}  // namespace fedpp
