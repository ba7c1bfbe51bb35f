// libFuzzer target for the data loaders (src/fedpp/data/loaders.hpp): whatever a data file
// holds (IDX images or labels, plain or gzip; CIFAR-10 and CIFAR-100 binary records; a PNG in
// an image folder), loading either returns data or throws fedpp::Error naming the file; it never
// crashes, hangs, or allocates what the file's header merely claims. The first input byte picks
// the loader, the rest is the file. Built with -DFEDPP_BUILD_FUZZ=ON and clang (scripts/fuzz.sh).
//
// With FEDPP_FUZZ_SEEDS=DIR in the environment, the first run writes one small valid file of
// each kind into DIR as a seed corpus.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "fedpp/core/error.hpp"
#include "fedpp/data/loaders.hpp"

namespace fs = std::filesystem;

namespace {

fs::path g_dir;  // a private temp folder for the files under test

void write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

std::string be32(uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

std::string idx_images(uint32_t n, uint32_t r, uint32_t c) {
  return be32(0x803) + be32(n) + be32(r) + be32(c) + std::string(size_t(n) * r * c, '\x7f');
}
std::string idx_labels(uint32_t n) { return be32(0x801) + be32(n) + std::string(n, '\x01'); }

// A 2x2 RGB PNG (made with Python's zlib; fixed bytes so the seed needs no encoder).
const unsigned char kPng[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd,
    0xd4, 0x9a, 0x73, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
    0xcf, 0xc0, 0x00, 0x44, 0x0c, 0x10, 0x0a, 0x00, 0x1f, 0xee, 0x03, 0xfd, 0x8b, 0x5f, 0x14,
    0xd4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

void write_seeds(const std::string& dir) {
  write(fs::path(dir) / "seed_idx_images", std::string(1, '\0') + idx_images(2, 3, 3));
  write(fs::path(dir) / "seed_idx_labels", std::string(1, '\1') + idx_labels(1));
  write(fs::path(dir) / "seed_cifar10", std::string(1, '\2') + std::string(3073, '\3'));
  write(fs::path(dir) / "seed_cifar100", std::string(1, '\3') + std::string(3074, '\4'));
  write(fs::path(dir) / "seed_png",
        std::string(1, '\4') + std::string(reinterpret_cast<const char*>(kPng), sizeof kPng));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);  // one input at a time; no pool to start per call
  std::string tmpl = (fs::temp_directory_path() / "fedpp_fuzz_loaders_XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) std::abort();
  g_dir = tmpl;
  fs::create_directories(g_dir / "folder" / "class_a");
  write(g_dir / "one_image", idx_images(1, 3, 3));
  write(g_dir / "one_label", idx_labels(1));
  if (const char* dir = std::getenv("FEDPP_FUZZ_SEEDS")) write_seeds(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  const fs::path input = g_dir / "input";
  try {
    switch (data[0] % 5) {
      case 0:
        write(input, file);
        (void)fedpp::load_idx(input.string(), (g_dir / "one_label").string());
        break;
      case 1:
        write(input, file);
        (void)fedpp::load_idx((g_dir / "one_image").string(), input.string(), 10);
        break;
      case 2:
        write(input, file);
        (void)fedpp::load_cifar10_bin({input.string()});
        break;
      case 3:
        write(input, file);
        (void)fedpp::load_cifar100_bin(input.string(), data[0] & 8);
        break;
      case 4:
        write(g_dir / "folder" / "class_a" / "x.png", file);
        (void)fedpp::load_image_folder((g_dir / "folder").string());
        break;
    }
  } catch (const fedpp::Error&) {
    // rejected with a reason naming the file: what a user gets for a bad data file
  }
  return 0;
}
