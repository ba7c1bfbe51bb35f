#include "fedpp/runtime/grpc_bytes.hpp"

namespace fedpp {

grpc::Slice share_slice(std::shared_ptr<const std::string> bytes) {
  if (bytes->empty()) return grpc::Slice();
  auto* owner = new std::shared_ptr<const std::string>(std::move(bytes));
  return grpc::Slice(
      const_cast<char*>((*owner)->data()), (*owner)->size(),
      [](void* p) { delete static_cast<std::shared_ptr<const std::string>*>(p); }, owner);
}

grpc::ByteBuffer prefixed_buffer(const std::string& prefix, const grpc::Slice& data) {
  const grpc::Slice parts[2] = {grpc::Slice(prefix), data};
  return grpc::ByteBuffer(parts, data.size() > 0 ? 2 : 1);
}

bool buffer_views(const grpc::ByteBuffer& b, std::vector<grpc::Slice>* keep,
                  std::vector<std::string_view>* views) {
  keep->clear();
  views->clear();
  if (!b.Dump(keep).ok()) return false;
  views->reserve(keep->size());
  for (const auto& s : *keep)
    views->emplace_back(reinterpret_cast<const char*>(s.begin()), s.size());
  return true;
}

}  // namespace fedpp
