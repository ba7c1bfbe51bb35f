#include "fedpp/runtime/chunks.hpp"

#include <algorithm>

namespace fedpp {

ChunkAssembler::ChunkAssembler(uint64_t total, uint64_t max_bytes)
    : total_(total),
      state_(total > max_bytes ? State::kTooLarge
             : total == 0      ? State::kComplete
                               : State::kReceiving) {
  if (state_ == State::kReceiving) bytes_.reserve(static_cast<size_t>(std::min(total, kReserveStep)));
}

bool ChunkAssembler::add(std::string_view piece) {
  if (state_ == State::kTooLarge || state_ == State::kOverflow) return false;
  if (piece.size() > total_ - bytes_.size()) {
    state_ = State::kOverflow;
    return false;
  }
  if (bytes_.capacity() < bytes_.size() + piece.size())  // grow in bounded steps
    bytes_.reserve(static_cast<size_t>(
        std::min<uint64_t>(total_, bytes_.size() + std::max<uint64_t>(piece.size(), kReserveStep))));
  bytes_.append(piece);
  if (bytes_.size() == total_) state_ = State::kComplete;
  return true;
}

std::string ChunkAssembler::take() {
  std::string out = std::move(bytes_);
  bytes_.clear();
  return out;
}

}  // namespace fedpp
