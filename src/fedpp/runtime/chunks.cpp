#include "fedpp/runtime/chunks.hpp"

#include <algorithm>
#include <functional>

namespace fedpp {

ChunkAssembler::ChunkAssembler(uint64_t total, uint64_t max_bytes, std::string reuse)
    : total_(total),
      state_(total > max_bytes ? State::kTooLarge
             : total == 0      ? State::kComplete
                               : State::kReceiving),
      bytes_(std::move(reuse)) {
  bytes_.clear();
  if (state_ == State::kTooLarge) std::string().swap(bytes_);  // keeps nothing for a refusal
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

void Pieces::append(std::string_view p) {
  if (p.empty()) return;
  parts.push_back(p);
  size += p.size();
}

void Pieces::clear() {
  parts.clear();
  size = 0;
}

std::string Pieces::join() const {
  std::string out;
  out.reserve(static_cast<size_t>(size));
  for (auto p : parts) out.append(p);
  return out;
}

namespace {

void put_varint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(static_cast<uint8_t>(v) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

constexpr int kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5;

// Reads a serialized message held in pieces, field by field.
class WireReader {
 public:
  explicit WireReader(const std::vector<std::string_view>& p) : p_(p) {}

  bool at_end() {
    settle();
    return i_ == p_.size();
  }
  // Up to `max_bytes` bytes: 10 for a 64-bit value (bits past 64 dropped), 5 for a tag or a
  // length, as protobuf reads them.
  bool varint(uint64_t* v, int max_bytes = 10) {
    *v = 0;
    for (int k = 0; k < max_bytes; ++k) {
      settle();
      if (i_ == p_.size()) return false;
      const auto b = static_cast<uint8_t>(p_[i_][off_++]);
      *v |= static_cast<uint64_t>(b & 0x7f) << (7 * k);
      if (b < 0x80) return true;
    }
    return false;
  }
  // The next n bytes, as views appended to *out (skipped when out is null).
  bool take(uint64_t n, Pieces* out) {
    while (n > 0) {
      settle();
      if (i_ == p_.size()) return false;
      const auto m = std::min<uint64_t>(n, p_[i_].size() - off_);
      if (out) out->append(p_[i_].substr(off_, static_cast<size_t>(m)));
      off_ += static_cast<size_t>(m);
      n -= m;
    }
    return true;
  }

 private:
  void settle() {
    while (i_ < p_.size() && off_ == p_[i_].size()) {
      ++i_;
      off_ = 0;
    }
  }
  const std::vector<std::string_view>& p_;
  size_t i_ = 0, off_ = 0;
};

// Walks every field: on_varint(field, value) and on_bytes(field) -> where to put the bytes
// (null: skip) are asked for the fields the caller knows; the rest are skipped.
std::string walk(const std::vector<std::string_view>& message,
                 const std::function<void(uint32_t, uint64_t)>& on_varint,
                 const std::function<Pieces*(uint32_t)>& on_bytes) {
  WireReader r(message);
  while (!r.at_end()) {
    uint64_t tag = 0;
    if (!r.varint(&tag, 5)) return "a field's tag is cut off or longer than 5 bytes";
    tag &= 0xffffffffu;  // as protobuf reads a tag: 32 bits
    if ((tag >> 3) == 0) return "a field has an invalid tag " + std::to_string(tag);
    const auto field = static_cast<uint32_t>(tag >> 3);
    const int type = static_cast<int>(tag & 7);
    uint64_t v = 0;
    switch (type) {
      case kVarint:
        if (!r.varint(&v)) return "field " + std::to_string(field) + "'s value runs past the end";
        on_varint(field, v);
        break;
      case kFixed64:
      case kFixed32:
        if (!r.take(type == kFixed64 ? 8 : 4, nullptr))
          return "field " + std::to_string(field) + "'s value runs past the end";
        break;
      case kBytes: {
        if (!r.varint(&v, 5) || v > 0x7fffffffu)
          return "field " + std::to_string(field) + " has an invalid length";
        if (!r.take(v, on_bytes(field)))
          return "field " + std::to_string(field) + " announces " + std::to_string(v) +
                 " bytes, more than the chunk holds";
        break;
      }
      default:
        return "field " + std::to_string(field) + " has wire type " + std::to_string(type) +
               " (groups and unknown types are not accepted)";
    }
  }
  return "";
}

}  // namespace

std::string chunk_prefix(uint64_t n, uint64_t total_size) {
  std::string out;
  if (total_size != 0) {
    out.push_back(static_cast<char>(2 << 3 | kVarint));
    put_varint(&out, total_size);
  }
  out.push_back(static_cast<char>(1 << 3 | kBytes));
  put_varint(&out, n);
  return out;
}

std::string reply_chunk_prefix(uint64_t n, const std::string* header) {
  std::string out;
  if (header) {
    out.push_back(static_cast<char>(1 << 3 | kBytes));
    put_varint(&out, header->size());
    out.append(*header);
  }
  out.push_back(static_cast<char>(2 << 3 | kBytes));
  put_varint(&out, n);
  return out;
}

std::string read_chunk(const std::vector<std::string_view>& message, uint64_t* total_size,
                       Pieces* data) {
  *total_size = 0;
  data->clear();
  return walk(
      message, [&](uint32_t f, uint64_t v) { if (f == 2) *total_size = v; },
      [&](uint32_t f) -> Pieces* {
        if (f != 1) return nullptr;
        data->clear();  // the last occurrence wins
        return data;
      });
}

std::string read_reply_chunk(const std::vector<std::string_view>& message, bool* has_header,
                             Pieces* header, Pieces* data) {
  *has_header = false;
  header->clear();
  data->clear();
  std::string why = walk(
      message, [](uint32_t, uint64_t) {},
      [&](uint32_t f) -> Pieces* {
        if (f == 1) {  // an embedded message's occurrences merge
          *has_header = true;
          // Past the bound, stop keeping views (the walk goes on; the size is checked below).
          return header->size > kMaxReplyHeaderBytes ? nullptr : header;
        }
        if (f != 2) return nullptr;
        data->clear();
        return data;
      });
  if (why.empty() && header->size > kMaxReplyHeaderBytes)
    why = "its header is over " + std::to_string(kMaxReplyHeaderBytes) + " bytes";
  return why;
}

}  // namespace fedpp
