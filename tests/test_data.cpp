// Data layer: loaders on small files written here in the official formats (and corrupt
// variants of them), channel statistics, load_splits, partitioners and make_federated.
#include <gtest/gtest.h>
#include <png.h>
#include <zlib.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/data/dataset.hpp"
#include "fedpp/data/loaders.hpp"
#include "fedpp/data/partition.hpp"
#include "fedpp/runtime/simulation.hpp"

namespace fs = std::filesystem;
using namespace fedpp;

namespace {

using Bytes = std::vector<uint8_t>;

// ---- writers for the official formats ----------------------------------------------------

void put_be32(Bytes* b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b->push_back(uint8_t(v >> s));
}

// Pixel j of image i in the test IDX files.
uint8_t idx_pixel(int64_t i, int64_t j) { return uint8_t((i * 31 + j * 7) % 256); }

Bytes idx_images(int64_t n, int64_t rows, int64_t cols, uint32_t magic = 0x00000803) {
  Bytes b;
  put_be32(&b, magic);
  put_be32(&b, uint32_t(n));
  put_be32(&b, uint32_t(rows));
  put_be32(&b, uint32_t(cols));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < rows * cols; ++j) b.push_back(idx_pixel(i, j));
  return b;
}

Bytes idx_labels(const std::vector<uint8_t>& labels, uint32_t magic = 0x00000801) {
  Bytes b;
  put_be32(&b, magic);
  put_be32(&b, uint32_t(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

void write_file(const fs::path& path, const Bytes& b, bool gz = false) {
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, b.data(), unsigned(b.size())), int(b.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                                std::streamsize(b.size()));
  }
}

// CIFAR records: `label_bytes` label bytes, then pixels with plane p value (10*i + p) at
// position 0 of each plane and i elsewhere.
Bytes cifar_records(const std::vector<std::vector<uint8_t>>& labels) {
  Bytes b;
  for (size_t i = 0; i < labels.size(); ++i) {
    b.insert(b.end(), labels[i].begin(), labels[i].end());
    for (int p = 0; p < 3; ++p)
      for (int j = 0; j < 1024; ++j) b.push_back(uint8_t(j == 0 ? 10 * i + p : i));
  }
  return b;
}

// Writes a w x h PNG in `format` (PNG_FORMAT_RGB, _GRAY, _RGBA) from interleaved bytes.
void write_png(const fs::path& path, int w, int h, uint32_t format, const Bytes& px) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = uint32_t(w);
  img.height = uint32_t(h);
  img.format = format;
  ASSERT_TRUE(png_image_write_to_file(&img, path.c_str(), 0, px.data(), 0, nullptr))
      << img.message;
}

// A fresh temporary folder per test, removed afterwards.
class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("fedpp_data_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// Runs f, expects fedpp::Error whose message contains every one of `parts`.
template <class F>
void expect_error(F f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected fedpp::Error mentioning " << parts.front();
  } catch (const Error& e) {
    for (const auto& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "message lacks '" << part << "': " << e.what();
  }
}

std::vector<int64_t> to_vec(const torch::Tensor& t) {
  auto c = t.to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

torch::Tensor balanced_labels(int64_t per_class, int64_t classes) {
  return torch::arange(per_class * classes, torch::kInt64).remainder(classes);
}

// Asserts that the lists hold every index in [0, n) exactly once, each list sorted.
void expect_exact_cover(const std::vector<std::vector<int64_t>>& lists, int64_t n) {
  std::vector<int> seen(size_t(n), 0);
  for (const auto& l : lists) {
    EXPECT_TRUE(std::is_sorted(l.begin(), l.end()));
    for (int64_t i : l) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, n);
      ++seen[size_t(i)];
    }
  }
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[size_t(i)], 1) << "index " << i;
}

std::set<int64_t> classes_of(const std::vector<int64_t>& idx, const torch::Tensor& labels) {
  std::set<int64_t> s;
  for (int64_t i : idx) s.insert(labels[i].item<int64_t>());
  return s;
}

}  // namespace

// ---- IDX ---------------------------------------------------------------------------------

TEST_F(DataTest, IdxPlainAndGzipLoadTheSame) {
  for (bool gz : {false, true}) {
    std::string suffix = gz ? ".gz" : "";
    write_file(p("img" + suffix), idx_images(5, 3, 4), gz);
    write_file(p("lab" + suffix), idx_labels({0, 1, 2, 9, 4}), gz);
    RawData raw = load_idx(p("img" + suffix), p("lab" + suffix), 10);
    ASSERT_EQ(raw.images.sizes(), (std::vector<int64_t>{5, 1, 3, 4}));
    EXPECT_EQ(raw.images.scalar_type(), torch::kUInt8);
    EXPECT_EQ(raw.labels.scalar_type(), torch::kInt64);
    EXPECT_EQ(raw.num_classes, 10);
    EXPECT_EQ(raw.labels[3].item<int64_t>(), 9);
    EXPECT_EQ(raw.images[2][0][1][3].item<uint8_t>(), idx_pixel(2, 1 * 4 + 3));
  }
  // num_classes = 0 infers max + 1.
  EXPECT_EQ(load_idx(p("img"), p("lab")).num_classes, 10);
}

TEST_F(DataTest, IdxErrorsNameTheFile) {
  write_file(p("img"), idx_images(4, 2, 2));
  write_file(p("lab"), idx_labels({0, 1, 2, 3}));
  expect_error([&] { load_idx(p("nosuch-images"), p("lab")); }, {"nosuch-images", "not found"});
  // Wrong magic: a labels file given as images and vice versa.
  expect_error([&] { load_idx(p("lab"), p("lab")); }, {p("lab"), "magic"});
  expect_error([&] { load_idx(p("img"), p("img")); }, {p("img"), "magic"});
  // Truncated: the header promises more pixels than there are.
  Bytes cut = idx_images(4, 2, 2);
  cut.resize(cut.size() - 3);
  write_file(p("cut-images"), cut);
  expect_error([&] { load_idx(p("cut-images"), p("lab")); }, {"cut-images", "truncated"});
  write_file(p("cut-images.gz"), cut, true);
  expect_error([&] { load_idx(p("cut-images.gz"), p("lab")); }, {"cut-images.gz", "truncated"});
  // A gzip stream cut in the middle.
  write_file(p("full.gz"), idx_images(200, 28, 28), true);
  auto size = fs::file_size(p("full.gz"));
  fs::resize_file(p("full.gz"), size / 2);
  expect_error([&] { load_idx(p("full.gz"), p("lab")); }, {"full.gz"});
  // Header shorter than 16 bytes.
  write_file(p("tiny"), Bytes{0, 0, 8});
  expect_error([&] { load_idx(p("tiny"), p("lab")); }, {"tiny", "truncated"});
  // Count mismatch between images and labels.
  write_file(p("lab3"), idx_labels({0, 1, 2}));
  expect_error([&] { load_idx(p("img"), p("lab3")); }, {"lab3", "4 images", "3 labels"});
  // Label out of range.
  write_file(p("lab-bad"), idx_labels({0, 1, 12, 3}));
  expect_error([&] { load_idx(p("img"), p("lab-bad"), 10); }, {"lab-bad", "label 12"});
  // A header that holds no image yet shapes an overflowing tensor: the input with which the
  // loader fuzzer crashed LibTorch 1.13 (0 images of 0xd0000000 x 0xd0000000 pixels).
  write_file(p("empty-huge"), idx_images(0, 0xd0000000, 0xd0000000));
  expect_error([&] { load_idx(p("empty-huge"), p("lab")); }, {"empty-huge", "0 images of"});
}

// ---- CIFAR -------------------------------------------------------------------------------

TEST_F(DataTest, Cifar10ConcatenatesBatchesChannelMajor) {
  write_file(p("data_batch_1.bin"), cifar_records({{3}, {7}}));
  write_file(p("data_batch_2.bin"), cifar_records({{9}}));
  RawData raw = load_cifar10_bin({p("data_batch_1.bin"), p("data_batch_2.bin")});
  ASSERT_EQ(raw.images.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_EQ(raw.num_classes, 10);
  EXPECT_EQ(to_vec(raw.labels), (std::vector<int64_t>{3, 7, 9}));
  // Plane p of record i starts with 10*i + p: R, G, B planes in that order.
  EXPECT_EQ(raw.images[1][0][0][0].item<uint8_t>(), 10);
  EXPECT_EQ(raw.images[1][2][0][0].item<uint8_t>(), 12);
  EXPECT_EQ(raw.images[1][2][31][31].item<uint8_t>(), 1);
}

TEST_F(DataTest, Cifar10Errors) {
  expect_error([&] { load_cifar10_bin({p("data_batch_1.bin")}); },
               {"data_batch_1.bin", "not found"});
  Bytes b = cifar_records({{1}, {2}});
  b.pop_back();
  write_file(p("short.bin"), b);
  expect_error([&] { load_cifar10_bin({p("short.bin")}); }, {"short.bin", "3073"});
  write_file(p("bad.bin"), cifar_records({{1}, {10}}));
  expect_error([&] { load_cifar10_bin({p("bad.bin")}); }, {"bad.bin", "label 10"});
}

TEST_F(DataTest, Cifar100FineAndCoarse) {
  write_file(p("train.bin"), cifar_records({{4, 44}, {19, 99}}));
  RawData fine = load_cifar100_bin(p("train.bin"));
  RawData coarse = load_cifar100_bin(p("train.bin"), true);
  EXPECT_EQ(fine.num_classes, 100);
  EXPECT_EQ(coarse.num_classes, 20);
  EXPECT_EQ(to_vec(fine.labels), (std::vector<int64_t>{44, 99}));
  EXPECT_EQ(to_vec(coarse.labels), (std::vector<int64_t>{4, 19}));
  EXPECT_EQ(fine.images[1][1][0][0].item<uint8_t>(), 11);
  write_file(p("bad.bin"), cifar_records({{20, 1}}));
  expect_error([&] { load_cifar100_bin(p("bad.bin"), true); }, {"bad.bin", "label 20"});
  write_file(p("odd.bin"), Bytes(3073 * 2, 0));
  expect_error([&] { load_cifar100_bin(p("odd.bin")); }, {"odd.bin", "3074"});
}

// ---- CINIC-10 image folders ----------------------------------------------------------------

TEST_F(DataTest, ImageFolderDecodesRgbGrayAndRgba) {
  fs::create_directories(dir_ / "train" / "b_cat");
  fs::create_directories(dir_ / "train" / "a_dog");
  const int w = 3, h = 2;
  Bytes rgb, gray, rgba;
  for (int i = 0; i < w * h; ++i) {
    rgb.insert(rgb.end(), {uint8_t(i), uint8_t(100 + i), uint8_t(200 + i)});
    gray.push_back(uint8_t(50 + i));
    rgba.insert(rgba.end(), {uint8_t(10 + i), uint8_t(20 + i), uint8_t(30 + i), 255});
  }
  write_png(dir_ / "train" / "b_cat" / "0.png", w, h, PNG_FORMAT_RGB, rgb);
  write_png(dir_ / "train" / "a_dog" / "x.png", w, h, PNG_FORMAT_GRAY, gray);
  write_png(dir_ / "train" / "a_dog" / "y.png", w, h, PNG_FORMAT_RGBA, rgba);
  RawData raw = load_image_folder(p("train"));
  ASSERT_EQ(raw.images.sizes(), (std::vector<int64_t>{3, 3, h, w}));
  EXPECT_EQ(raw.num_classes, 2);
  // Classes in sorted folder order: a_dog = 0 (x.png, y.png), b_cat = 1.
  EXPECT_EQ(to_vec(raw.labels), (std::vector<int64_t>{0, 0, 1}));
  // Pixel (row 1, col 2) = i 5.
  EXPECT_EQ(raw.images[0][0][1][2].item<uint8_t>(), 55);  // gray replicated
  EXPECT_EQ(raw.images[0][2][1][2].item<uint8_t>(), 55);
  EXPECT_EQ(raw.images[1][1][1][2].item<uint8_t>(), 25);  // RGBA, opaque
  EXPECT_EQ(raw.images[2][0][1][2].item<uint8_t>(), 5);   // RGB planes
  EXPECT_EQ(raw.images[2][2][1][2].item<uint8_t>(), 205);
}

TEST_F(DataTest, ImageFolderErrors) {
  expect_error([&] { load_image_folder(p("train")); }, {"train", "not found"});
  fs::create_directories(dir_ / "train" / "c0");
  fs::create_directories(dir_ / "train" / "c1");
  write_png(dir_ / "train" / "c0" / "a.png", 4, 4, PNG_FORMAT_GRAY, Bytes(16, 1));
  write_png(dir_ / "train" / "c1" / "b.png", 5, 4, PNG_FORMAT_GRAY, Bytes(20, 1));
  expect_error([&] { load_image_folder(p("train")); }, {"b.png", "5x4"});
  fs::remove(dir_ / "train" / "c1" / "b.png");
  write_file(dir_ / "train" / "c1" / "b.png", Bytes{'n', 'o', 't', ' ', 'p', 'n', 'g'});
  expect_error([&] { load_image_folder(p("train")); }, {"b.png", "PNG"});
}

// A PNG header alone sizes the folder's buffer: a 100000x100000 claim (a few bytes, found by
// thinking like fuzz/fuzz_loaders.cpp) is refused before anything is allocated.
TEST_F(DataTest, ImageFolderRefusesAHugeClaimedImage) {
  fs::create_directories(dir_ / "train" / "c0");
  auto be32 = [](Bytes* b, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b->push_back(static_cast<uint8_t>(v >> s));
  };
  Bytes png{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr{'I', 'H', 'D', 'R'};
  be32(&ihdr, 100000);
  be32(&ihdr, 100000);
  for (uint8_t b : {8, 2, 0, 0, 0}) ihdr.push_back(b);  // 8-bit RGB
  be32(&png, 13);
  png.insert(png.end(), ihdr.begin(), ihdr.end());
  be32(&png, static_cast<uint32_t>(crc32(0, ihdr.data(), static_cast<uInt>(ihdr.size()))));
  for (const char* tag : {"IDAT", "IEND"}) {  // empty chunks: libpng reads the header up to IDAT
    be32(&png, 0);
    png.insert(png.end(), tag, tag + 4);
    be32(&png, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(tag), 4)));
  }
  write_file(dir_ / "train" / "c0" / "huge.png", png);
  expect_error([&] { load_image_folder(p("train")); }, {"huge.png", "100000x100000", "4096x4096"});
}

// ---- synthetic, statistics, normalisation --------------------------------------------------

TEST(DataSynthetic, DeterministicBalancedAndSeparable) {
  RawData a = make_synthetic(300, 3, 1, 4, 4, 7);
  RawData b = make_synthetic(300, 3, 1, 4, 4, 7);
  RawData c = make_synthetic(300, 3, 1, 4, 4, 8);
  ASSERT_EQ(a.images.sizes(), (std::vector<int64_t>{300, 1, 4, 4}));
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_FALSE(torch::equal(a.images, c.images));
  EXPECT_EQ(a.num_classes, 3);
  EXPECT_TRUE(torch::equal(torch::bincount(a.labels), torch::full({3}, 100, torch::kInt64)));
  // Class means differ clearly: clusters around distinct centres.
  auto x = a.images.to(torch::kFloat32).flatten(1);
  auto m0 = x.index({a.labels == 0}).mean(0), m1 = x.index({a.labels == 1}).mean(0);
  EXPECT_GT((m0 - m1).abs().mean().item<float>(), 20.f);
  expect_error([] { make_synthetic(0, 3, 1, 4, 4, 1); }, {"synthetic"});
}

// Pixels held as uint8 and normalised a batch at a time give the same floats, bit for bit, as
// normalising the whole split once (as the loaders did before), for a gather, a slice and all,
// in a subset and after pooling two splits.
TEST(DataStats, BatchesOfPixelsNormaliseLikeTheWholeSplit) {
  auto gen = at::detail::createCPUGenerator(3);
  auto img = torch::randint(0, 256, {300, 3, 5, 4}, gen, torch::kLong).to(torch::kUInt8);
  RawData raw{img, torch::randint(0, 10, {300}, gen, torch::kLong), 10};
  const ChannelStats st = channel_stats(img);
  Dataset ds = normalise(raw, st, "toy");
  std::vector<float> mean(st.mean.begin(), st.mean.end()), sd(st.std.begin(), st.std.end());
  const auto whole = img.to(torch::kFloat32)
                         .div_(255.f)
                         .sub_(torch::tensor(mean).view({1, 3, 1, 1}))
                         .div_(torch::tensor(sd).view({1, 3, 1, 1}));
  EXPECT_EQ(ds.x.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(torch::equal(ds.inputs(), whole));
  EXPECT_TRUE(torch::equal(ds.inputs(37, 101), whole.slice(0, 37, 101)));
  const auto idx = torch::randperm(300, gen).slice(0, 0, 64);
  EXPECT_TRUE(torch::equal(ds.inputs(idx), whole.index_select(0, idx)));
  Dataset sub = ds.subset({5, 250, 7});
  EXPECT_TRUE(torch::equal(sub.inputs(), whole.index_select(0, torch::tensor({5, 250, 7}))));
  Dataset floats;  // float inputs pass through untouched
  floats.x = whole;
  floats.y = raw.labels;
  EXPECT_TRUE(torch::equal(floats.inputs(idx), whole.index_select(0, idx)));
}

TEST(DataStats, ChannelStatsAndNormalise) {
  // Channel 0 holds 0 and 255 (mean 0.5, std 0.5); channel 1 is constant 51 (0.2, std 0).
  auto img = torch::zeros({2, 2, 1, 1}, torch::kUInt8);
  img[1][0][0][0] = 255;
  img.select(1, 1).fill_(51);
  ChannelStats s = channel_stats(img);
  ASSERT_EQ(s.mean.size(), 2u);
  EXPECT_NEAR(s.mean[0], 0.5, 1e-12);
  EXPECT_NEAR(s.std[0], 0.5, 1e-12);
  EXPECT_NEAR(s.mean[1], 0.2, 1e-12);
  EXPECT_NEAR(s.std[1], 0.0, 1e-12);
  RawData raw{img, torch::tensor({0, 1}, torch::kInt64), 2};
  Dataset ds = normalise(raw, s, "toy");
  EXPECT_EQ(ds.x.scalar_type(), torch::kUInt8);  // pixels; inputs() normalises
  EXPECT_EQ(ds.inputs().scalar_type(), torch::kFloat32);
  EXPECT_NEAR(ds.inputs()[0][0][0][0].item<float>(), -1.f, 1e-6);
  EXPECT_NEAR(ds.inputs()[1][0][0][0].item<float>(), 1.f, 1e-6);
  EXPECT_NEAR(ds.inputs()[1][1][0][0].item<float>(), 0.f, 1e-6);  // constant channel: finite zero
  EXPECT_EQ(ds.sample_shape(), (std::vector<int64_t>{2, 1, 1}));
  Dataset sub = ds.subset({1});
  EXPECT_EQ(sub.size(), 1);
  EXPECT_EQ(sub.y[0].item<int64_t>(), 1);
}

// ---- load_splits ---------------------------------------------------------------------------

TEST_F(DataTest, LoadSplitsIdxFromDataRoot) {
  write_file(p("train-images-idx3-ubyte.gz"), idx_images(20, 4, 4), true);
  write_file(p("train-labels-idx1-ubyte.gz"), idx_labels(std::vector<uint8_t>(20, 3)), true);
  write_file(p("t10k-images-idx3-ubyte"), idx_images(6, 4, 4));  // plain works too
  write_file(p("t10k-labels-idx1-ubyte"), idx_labels({0, 1, 2, 3, 4, 9}));
  Config cfg = Config::from_string("[data]\ndataset = \"mnist\"\nroot = \"" + dir_.string() +
                                   "\"\nsubset_train = 8\n");
  DataSplits s = load_splits(cfg, 1);
  EXPECT_EQ(s.train.size(), 8);
  EXPECT_EQ(s.test.size(), 6);
  EXPECT_EQ(s.train.num_classes, 10);
  EXPECT_EQ(s.train.name, "mnist");
  EXPECT_EQ(s.train.sample_shape(), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_NEAR(s.train.inputs().mean().item<float>(), 0.f, 1e-4);
  EXPECT_NEAR(s.train.inputs().std(false).item<float>(), 1.f, 1e-4);
  // Same seed, same subset; all data.* keys of load_splits were read.
  EXPECT_TRUE(torch::equal(load_splits(cfg, 1).train.x, s.train.x));
  EXPECT_NO_THROW(cfg.check_all_used());
  // A missing file names the file and the fix.
  fs::remove(p("t10k-labels-idx1-ubyte"));
  expect_error([&] { load_splits(cfg, 1); }, {"t10k-labels-idx1-ubyte", "data.root"});
}

TEST_F(DataTest, LoadSplitsEmnistIsTransposedUpright) {
  for (std::string split : {"train", "test"}) {
    write_file(p("emnist-digits-" + split + "-images-idx3-ubyte"), idx_images(3, 2, 3));
    write_file(p("emnist-digits-" + split + "-labels-idx1-ubyte"), idx_labels({0, 5, 1}));
  }
  Config cfg = Config::from_string("[data]\ndataset = \"emnist\"\nemnist_split = \"digits\"\n"
                                   "root = \"" + dir_.string() + "\"\n");
  DataSplits s = load_splits(cfg, 0);
  EXPECT_EQ(s.train.sample_shape(), (std::vector<int64_t>{1, 3, 2}));
  EXPECT_EQ(s.train.num_classes, 10);  // the split's class count, not the labels' max + 1
  RawData stored = load_idx(p("emnist-digits-train-images-idx3-ubyte"),
                            p("emnist-digits-train-labels-idx1-ubyte"));
  auto st = channel_stats(stored.images);
  auto x = stored.images.to(torch::kFloat32).div(255).sub(st.mean[0]).div(st.std[0]);
  EXPECT_TRUE(torch::allclose(s.train.inputs(), x.transpose(2, 3)));
}

TEST_F(DataTest, LoadSplitsCifarInArchiveFolder) {
  fs::create_directories(dir_ / "cifar-10-batches-bin");
  for (int i = 1; i <= 5; ++i)
    write_file(dir_ / "cifar-10-batches-bin" / ("data_batch_" + std::to_string(i) + ".bin"),
               cifar_records({{uint8_t(i)}, {0}}));
  Config cfg = Config::from_string("[data]\ndataset = \"cifar10\"\nroot = \"" + dir_.string() +
                                   "\"\n");
  expect_error([&] { load_splits(cfg, 0); }, {"test_batch.bin"});
  write_file(dir_ / "cifar-10-batches-bin" / "test_batch.bin", cifar_records({{2}}));
  DataSplits s = load_splits(cfg, 0);
  EXPECT_EQ(s.train.size(), 10);
  EXPECT_EQ(s.test.size(), 1);
  EXPECT_EQ(s.train.sample_shape(), (std::vector<int64_t>{3, 32, 32}));
  // No default root for CIFAR: the error asks for data.root.
  expect_error([] { load_splits(Config::from_string("[data]\ndataset = \"cifar100\"\n"), 0); },
               {"data.root"});
}

TEST_F(DataTest, LoadSplitsCinicMergesValid) {
  for (std::string split : {"train", "valid", "test"})
    for (std::string cls : {"airplane", "bird"}) {
      fs::create_directories(dir_ / split / cls);
      write_png(dir_ / split / cls / "1.png", 2, 2, PNG_FORMAT_RGB, Bytes(12, cls[0]));
    }
  std::string base = "[data]\ndataset = \"cinic10\"\nroot = \"" + dir_.string() + "\"\n";
  EXPECT_EQ(load_splits(Config::from_string(base), 0).train.size(), 2);
  DataSplits s = load_splits(Config::from_string(base + "cinic_use_valid = true\n"), 0);
  EXPECT_EQ(s.train.size(), 4);
  EXPECT_EQ(s.test.size(), 2);
  EXPECT_EQ(s.train.num_classes, 2);
}

TEST(DataLoadSplits, SyntheticFromConfig) {
  Config cfg = Config::from_string(
      "[data]\ndataset = \"synthetic\"\nsynthetic_samples = 120\nsynthetic_test_samples = 30\n"
      "synthetic_classes = 4\nsynthetic_shape = [3, 5, 5]\n");
  DataSplits s = load_splits(cfg, 3);
  EXPECT_EQ(s.train.size(), 120);
  EXPECT_EQ(s.test.size(), 30);
  EXPECT_EQ(s.train.num_classes, 4);
  EXPECT_EQ(s.train.sample_shape(), (std::vector<int64_t>{3, 5, 5}));
  EXPECT_TRUE(torch::equal(load_splits(cfg, 3).test.x, s.test.x));
  EXPECT_FALSE(torch::equal(load_splits(cfg, 4).test.x, s.test.x));
}

TEST(DataLoadSplits, RealFashionMnist) {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(root + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  DataSplits s = load_splits(Config::from_string("[data]\ndataset = \"fashion-mnist\"\n"), 0);
  EXPECT_EQ(s.train.size(), 60000);
  EXPECT_EQ(s.test.size(), 10000);
  EXPECT_EQ(s.train.sample_shape(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(s.train.num_classes, 10);
  EXPECT_TRUE(torch::equal(torch::bincount(s.train.y), torch::full({10}, 6000, torch::kInt64)));
  EXPECT_NEAR(s.train.inputs().mean().item<float>(), 0.f, 1e-3);
  EXPECT_NEAR(s.train.inputs().std().item<float>(), 1.f, 1e-3);
}

// ---- partitioners --------------------------------------------------------------------------

TEST(DataPartition, EveryIndexExactlyOnce) {
  auto labels = balanced_labels(97, 10);
  for (std::string kind : {"iid", "dirichlet", "pathological"}) {
    PartitionSpec spec;
    spec.kind = kind;
    spec.num_clients = 7;
    spec.seed = 11;
    auto parts = partition_indices(labels, 10, spec);
    ASSERT_EQ(parts.size(), 7u) << kind;
    expect_exact_cover(parts, labels.size(0));
  }
}

TEST(DataPartition, IidIsNearEqual) {
  PartitionSpec spec;
  spec.num_clients = 6;
  auto parts = partition_indices(balanced_labels(10, 10), 10, spec);
  for (const auto& l : parts) EXPECT_TRUE(l.size() == 16 || l.size() == 17);
}

TEST(DataPartition, DirichletRespectsMinSamplesOrSaysWhy) {
  auto labels = balanced_labels(100, 10);
  PartitionSpec spec;
  spec.kind = "dirichlet";
  spec.num_clients = 20;
  spec.alpha = 0.1;
  spec.min_samples = 15;
  spec.seed = 5;
  auto parts = partition_indices(labels, 10, spec);
  expect_exact_cover(parts, 1000);
  for (const auto& l : parts) EXPECT_GE(l.size(), 15u);
  // Small alpha makes clients skewed: most hold few classes heavily.
  spec.min_samples = 60;  // 20 * 60 > 1000 samples: impossible
  expect_error([&] { partition_indices(labels, 10, spec); }, {"data.min_samples"});
  spec.min_samples = 45;  // possible in principle, (almost) never with alpha 0.001
  spec.alpha = 0.001;
  expect_error([&] { partition_indices(labels, 10, spec); }, {"data.alpha", "data.min_samples"});
  spec.alpha = 0;
  expect_error([&] { partition_indices(labels, 10, spec); }, {"data.alpha"});
}

TEST(DataPartition, PathologicalGivesKClassesWithBoundedShares) {
  auto labels = balanced_labels(1000, 10);
  PartitionSpec spec;
  spec.kind = "pathological";
  spec.num_clients = 10;
  spec.classes_per_client = 2;
  spec.seed = 3;
  auto parts = partition_indices(labels, 10, spec);
  expect_exact_cover(parts, 10000);
  for (const auto& l : parts) {
    auto cls = classes_of(l, labels);
    ASSERT_EQ(cls.size(), 2u);
    // Each class has 2 holders with U(0.4, 0.6) shares renormalised: within [0.4, 0.6].
    for (int64_t c : cls) {
      auto count = std::count_if(l.begin(), l.end(),
                                 [&](int64_t i) { return labels[i].item<int64_t>() == c; });
      EXPECT_GE(count, 399);
      EXPECT_LE(count, 601);
    }
  }
  // Every class held by the same number of clients (round-robin): 10*2/10 = 2.
  std::vector<int> holders(10, 0);
  for (const auto& l : parts)
    for (int64_t c : classes_of(l, labels)) ++holders[size_t(c)];
  for (int h : holders) EXPECT_EQ(h, 2);
  spec.num_clients = 4;  // 4 * 2 < 10 classes: some samples would be orphaned
  expect_error([&] { partition_indices(labels, 10, spec); }, {"data.classes_per_client"});
}

TEST(DataPartition, SeededAndDeterministic) {
  auto labels = balanced_labels(50, 10);
  for (std::string kind : {"iid", "dirichlet", "pathological"}) {
    PartitionSpec spec;
    spec.kind = kind;
    spec.num_clients = 10;  // pathological: 2 holders per class, so shares are drawn
    spec.min_samples = 1;
    spec.seed = 42;
    auto a = partition_indices(labels, 10, spec);
    EXPECT_EQ(a, partition_indices(labels, 10, spec)) << kind;
    spec.seed = 43;
    EXPECT_NE(a, partition_indices(labels, 10, spec)) << kind;
  }
}

TEST(DataPartition, SplitTrainTestFollowsLabels) {
  auto labels = torch::tensor({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2}, torch::kInt64);
  std::vector<int64_t> idx = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  std::vector<int64_t> train, test;
  split_train_test(idx, labels, 0.2, 9, &train, &test);
  auto count = [&](const std::vector<int64_t>& v, int64_t c) {
    return std::count_if(v.begin(), v.end(), [&](int64_t i) { return labels[i].item<int64_t>() == c; });
  };
  EXPECT_EQ(count(test, 0), 2);
  EXPECT_EQ(count(test, 1), 1);
  EXPECT_EQ(count(test, 2), 0);
  EXPECT_EQ(train.size() + test.size(), idx.size());
  std::vector<int64_t> all(train);
  all.insert(all.end(), test.begin(), test.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, idx);
  std::vector<int64_t> train2, test2;
  split_train_test(idx, labels, 0.2, 9, &train2, &test2);
  EXPECT_EQ(test, test2);
}

// ---- make_federated ------------------------------------------------------------------------

TEST(DataFederated, PoolTrainGivesDisjointTestPartsWithOwnLabels) {
  DataSplits s{normalise(make_synthetic(2000, 10, 1, 4, 4, 1), {{0.5}, {0.25}}, "syn"),
               normalise(make_synthetic(500, 10, 1, 4, 4, 2), {{0.5}, {0.25}}, "syn")};
  Config cfg = Config::from_string(
      "[data]\npartition = \"pathological\"\nnum_clients = 10\nclasses_per_client = 2\n");
  FederatedData fd = make_federated(s, cfg, 7);
  ASSERT_EQ(fd.clients.size(), 10u);
  EXPECT_EQ(fd.global_test.size(), 500);
  int64_t train_total = 0, test_total = 0;
  for (size_t i = 0; i < fd.clients.size(); ++i) {
    const auto& c = fd.clients[i];
    auto train_cls = std::get<0>(at::_unique(c.train.y)), test_cls = std::get<0>(at::_unique(c.test.y));
    EXPECT_EQ(train_cls.numel(), 2);
    EXPECT_TRUE(torch::equal(std::get<0>(train_cls.sort()), std::get<0>(test_cls.sort())))
        << "client " << i;
    EXPECT_EQ(fd.summary[i].train_samples, c.train.size());
    EXPECT_EQ(fd.summary[i].test_samples, c.test.size());
    train_total += c.train.size();
    test_total += c.test.size();
  }
  EXPECT_EQ(train_total, 2000);
  EXPECT_EQ(test_total, 500);  // every test sample used once (each class has holders)
  auto j = nlohmann::json::parse(fd.summary_json());
  EXPECT_EQ(j["clients"].size(), 10u);
  EXPECT_EQ(j["clients"][0]["classes_held"], 2);
  EXPECT_EQ(j["total_train_samples"], 2000);
  EXPECT_EQ(make_federated(s, cfg, 7).summary_json(), fd.summary_json());
}

TEST(DataFederated, PoolAllSplitsInsideEachClient) {
  Config cfg = Config::from_string(
      "[data]\ndataset = \"synthetic\"\nsynthetic_samples = 800\nsynthetic_test_samples = 200\n"
      "synthetic_shape = [1, 3, 3]\npartition = \"dirichlet\"\nalpha = 1.0\nnum_clients = 5\n"
      "min_samples = 20\npool = \"all\"\nclient_test_fraction = 0.25\n");
  DataSplits s = load_splits(cfg, 1);
  FederatedData fd = make_federated(s, cfg, 1);
  EXPECT_NO_THROW(cfg.check_all_used());
  int64_t total = 0;
  for (const auto& c : fd.clients) {
    total += c.train.size() + c.test.size();
    EXPECT_GE(c.train.size() + c.test.size(), 20);
    EXPECT_NEAR(double(c.test.size()) / double(c.train.size() + c.test.size()), 0.25, 0.05);
  }
  EXPECT_EQ(total, 1000);
  EXPECT_EQ(fd.global_test.size(), 200);
  // Defaults: iid over 10 clients.
  FederatedData iid = make_federated(s, Config::from_string(""), 1);
  EXPECT_EQ(iid.clients.size(), 10u);
  EXPECT_EQ(iid.clients[0].train.size(), 80);
  expect_error([&] { make_federated(s, Config::from_string("[data]\nalpha = -1.0\n"), 1); },
               {"data.alpha"});
}

// ---- clients with their own data (data.client_dirs) ------------------------------------------

namespace {

// A TOML list of doubles that reads back to the same doubles.
std::string exact_list(const std::vector<double>& v) {
  std::string s = "[";
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%.17g", v[i]);
    s += (i ? "," : "") + std::string(buf);
  }
  return s + "]";
}

void expect_same(const Dataset& a, const Dataset& b, const std::string& what) {
  EXPECT_EQ(a.num_classes, b.num_classes) << what;
  ASSERT_EQ(a.x.sizes(), b.x.sizes()) << what;
  EXPECT_TRUE(torch::equal(a.x, b.x)) << what;
  EXPECT_TRUE(torch::equal(a.y, b.y)) << what;
}

}  // namespace

TEST_F(DataTest, ClientFoldersReadBackThePartitionExactly) {
  std::vector<uint8_t> train_labels, test_labels;
  for (int i = 0; i < 120; ++i) train_labels.push_back(uint8_t((i * 7) % 10));
  for (int i = 0; i < 40; ++i) test_labels.push_back(uint8_t(i % 10));
  write_file(p("train-images-idx3-ubyte"), idx_images(120, 6, 6));
  write_file(p("train-labels-idx1-ubyte"), idx_labels(train_labels));
  write_file(p("t10k-images-idx3-ubyte"), idx_images(40, 6, 6));
  write_file(p("t10k-labels-idx1-ubyte"), idx_labels(test_labels));
  const std::string base = "seed = 3\n[data]\ndataset = \"fashion-mnist\"\nroot = \"" +
                           dir_.string() + "\"\nnum_clients = 4\npartition = \"dirichlet\"\n" +
                           "alpha = 0.5\nmin_samples = 5\nsubset_test = 30\n";
  const Config cfg = Config::from_string(base);
  auto pooled = load_federated_data(cfg);
  for (size_t k = 0; k < 4; ++k)
    write_folder_splits(cfg, pooled->clients[k].train, pooled->clients[k].test, pooled->stats,
                        p("clients/client_" + std::to_string(k)));

  // (Config copies share one document: each variant is built afresh.)
  auto make_own = [&](const std::string& extra) {
    Config c = Config::from_string(base + extra);
    c.set("data.client_dirs=\"" + p("clients") + "/client_{k}\"");
    c.set("data.mean=" + exact_list(pooled->stats.mean));
    c.set("data.std=" + exact_list(pooled->stats.std));
    return c;
  };
  Config own = make_own("");
  auto folders = load_federated_data(own);
  ASSERT_EQ(folders->clients.size(), 4u);
  EXPECT_TRUE(folders->clients_known);
  for (size_t k = 0; k < 4; ++k) {
    expect_same(folders->clients[k].train, pooled->clients[k].train, "train " + std::to_string(k));
    expect_same(folders->clients[k].test, pooled->clients[k].test, "test " + std::to_string(k));
  }
  expect_same(folders->global_test, pooled->global_test, "global test");
  EXPECT_EQ(folders->summary_json(), pooled->summary_json());
  EXPECT_NO_THROW(own.check_all_used());  // the partition keys are read and ignored

  // The server reads the global test set only; a client its own folder only, from anywhere.
  auto server = load_federated_data(own, kNoClients);
  EXPECT_FALSE(server->clients_known);
  ASSERT_EQ(server->clients.size(), 4u);
  for (const auto& c : server->clients) EXPECT_EQ(c.train.size(), 0);
  expect_same(server->global_test, pooled->global_test, "server's global test");
  fs::rename(p("clients/client_2"), p("mine"));
  auto client = load_federated_data(own, 2, p("mine"));
  EXPECT_FALSE(client->clients_known);
  EXPECT_EQ(client->global_test.size(), 0);
  EXPECT_EQ(client->clients[0].train.size(), 0);
  expect_same(client->clients[2].train, pooled->clients[2].train, "client 2 from --data");
  expect_same(client->clients[2].test, pooled->clients[2].test, "client 2's test from --data");

  // One clear error for each way to get it wrong.
  expect_error([&] { load_federated_data(own); }, {"client_2", "not found", "data.client_dirs"});
  expect_error([&] { load_federated_data(own, 7, p("mine")); }, {"client 7", "out of range"});
  Config no_k = make_own("");
  no_k.set("data.client_dirs=\"" + p("clients") + "\"");
  expect_error([&] { load_federated_data(no_k, 2, p("mine")); }, {"must contain {k}"});
  Config no_stats = Config::from_string(base);
  no_stats.set("data.client_dirs=\"" + p("clients") + "/client_{k}\"");
  expect_error([&] { load_federated_data(no_stats, 2, p("mine")); },
               {"data.mean and data.std", "--client-folders"});
  Config subset = make_own("subset_train = 10\n");
  expect_error([&] { load_federated_data(subset, 2, p("mine")); }, {"data.subset_train"});
  expect_error([&] { load_federated_data(cfg, 2, p("mine")); }, {"needs data.client_dirs"});
}

// Every loader format a client folder may use reads back what write_folder_splits wrote: CIFAR-10
// and CIFAR-100 records, CINIC-style PNG folders (a class no image of the client has still has
// its folder), EMNIST letters (stored transposed, labelled from 1).
TEST_F(DataTest, ClientFolderFormatsRoundTrip) {
  struct Case {
    std::string dataset;
    int64_t c, h, w, classes;
  };
  torch::manual_seed(11);
  for (const Case& k : {Case{"cifar10", 3, 32, 32, 10}, Case{"cifar100", 3, 32, 32, 100},
                        Case{"cinic10", 3, 6, 5, 10}, Case{"emnist", 1, 5, 7, 26}}) {
    const bool rgb = k.c == 3;
    const std::string stats = rgb ? "mean = [0.3, 0.4, 0.5]\nstd = [0.2, 0.25, 0.3]\n"
                                  : "mean = [0.3]\nstd = [0.2]\n";
    Config cfg = Config::from_string("[data]\ndataset = \"" + k.dataset +
                                     "\"\nemnist_split = \"letters\"\n" + stats);
    const ChannelStats st = fixed_channel_stats(cfg);
    auto make = [&](int64_t n) {
      RawData raw{torch::randint(0, 256, {n, k.c, k.h, k.w}, torch::kUInt8),
                  torch::randint(1, k.classes, {n}, torch::kInt64), k.classes};  // no class 0
      return normalise(raw, st, k.dataset);
    };
    const Dataset train = make(9), test = make(4);
    const std::string dir = p("folder_" + k.dataset);
    write_folder_splits(cfg, train, test, st, dir);
    DataSplits back = load_folder_splits(cfg, dir);
    expect_same(back.train, train, k.dataset + " train");
    expect_same(back.test, test, k.dataset + " test");
    EXPECT_TRUE(torch::equal(load_folder_splits(cfg, dir, false).test.x, test.x)) << k.dataset;
    EXPECT_EQ(load_folder_splits(cfg, dir, false).train.size(), 0) << k.dataset;
  }
  Config synthetic = Config::from_string("[data]\ndataset = \"synthetic\"\nmean = [0.5]\nstd = [0.5]\n");
  expect_error([&] { load_folder_splits(synthetic, p("x")); }, {"synthetic"});
}
