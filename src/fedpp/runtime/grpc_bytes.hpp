// gRPC byte buffers for the task and reply streams without protobuf copies (grpc_server.cpp,
// grpc_client.cpp): a message's bytes are shared into gRPC as one reference-counted slice, each
// chunk travels as a short hand-encoded prefix (chunks.hpp) plus a sub-slice of it (gRPC copies
// a sub-slice of 23 bytes or less inline instead), and a received chunk is read as views of
// gRPC's own slices. The bytes then cross user space once on
// each side: gRPC's write to the socket, and the receiver's copy into its ChunkAssembler.
//
// Threading: the functions are pure; a shared Slice may be used from any thread (gRPC counts
// its references atomically).
#pragma once
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fedpp {

// One slice over all of *bytes that keeps `bytes` alive (a copy of the shared_ptr) until gRPC
// drops its last reference to the slice or any sub-slice. No byte is copied.
grpc::Slice share_slice(std::shared_ptr<const std::string> bytes);

// A buffer holding `prefix` (copied; a few bytes) followed by `data` (referenced).
grpc::ByteBuffer prefixed_buffer(const std::string& prefix, const grpc::Slice& data);

// Views of a received buffer's bytes, in order. *keep holds the slices the views point into:
// they stay valid while *keep lives and is not modified. Returns false when the buffer cannot
// be read (gRPC refused to dump it).
bool buffer_views(const grpc::ByteBuffer& b, std::vector<grpc::Slice>* keep,
                  std::vector<std::string_view>* views);

}  // namespace fedpp
