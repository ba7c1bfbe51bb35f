#include "fedpp/core/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "fedpp/core/error.hpp"

namespace fedpp {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int err,
                       const std::string& hint) {
  throw Error("cannot " + what + " '" + path + "': " + std::strerror(err) +
              (hint.empty() ? std::string() : " (" + hint + ")"));
}

// Writes all of `bytes` to `fd`; returns 0 or the errno.
int write_all(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    off += static_cast<size_t>(n);
  }
  return 0;
}

void fsync_dir(const std::string& path) {
  auto dir = std::filesystem::path(path).parent_path();
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // best effort: the file itself is synced
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes, const std::string& hint,
                       Durability durability) {
  const bool sync = durability == Durability::kPowerLoss;
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("create", tmp, errno, hint);
  int err = write_all(fd, bytes);
  if (!err && sync && ::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (err) {
    std::remove(tmp.c_str());
    fail("write", tmp, err, hint);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    fail("rename to", path, err, hint);
  }
  if (sync) fsync_dir(path);
}

void append_file(const std::string& path, const std::string& text, const std::string& hint) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail("open", path, errno, hint);
  int err = write_all(fd, text);
  if (!err && ::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (err) fail("append to", path, err, hint);
}

std::string read_input_file(const std::string& path, const std::string& what,
                            uint64_t max_bytes) {
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(path, ec);
  FEDPP_CHECK(regular && !ec, what + " '" + path + "' is not a readable file: check the path");
  const uint64_t size = std::filesystem::file_size(path, ec);
  FEDPP_CHECK(!ec, what + " '" + path + "' cannot be read: " + ec.message());
  FEDPP_CHECK(size <= max_bytes, what + " '" + path + "' has " + std::to_string(size) +
                                     " bytes, more than the " + std::to_string(max_bytes) +
                                     " this input may have");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  FEDPP_CHECK(f, what + " '" + path + "' cannot be read: " + std::strerror(errno));
  std::string out(static_cast<size_t>(size), '\0');
  const size_t got = out.empty() ? 0 : std::fread(out.data(), 1, out.size(), f);
  std::fclose(f);
  FEDPP_CHECK(got == out.size(), what + " '" + path + "' changed or failed while being read");
  return out;
}

}  // namespace fedpp
