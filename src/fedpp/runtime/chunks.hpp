// Reassembly of a message that travels in chunks (the gRPC runtime's FetchTask and SendReply
// streams): the sender announces the total size first, then sends the bytes in pieces.
//
// The assembler refuses an announced total over its cap before anything is kept, never holds
// more than the announced total (a piece that would pass it is refused and the message is
// spoiled), and reserves memory in bounded steps as bytes arrive, not for what was announced,
// so a sender that announces much and sends little costs little. Plain bytes; no torch, no
// gRPC. Not thread-safe: one assembler per stream.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace fedpp {

class ChunkAssembler {
 public:
  enum class State { kReceiving, kComplete, kTooLarge, kOverflow };

  // `total`: the announced size in bytes; `max_bytes`: the cap (state kTooLarge when above it).
  ChunkAssembler(uint64_t total, uint64_t max_bytes);

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

}  // namespace fedpp
