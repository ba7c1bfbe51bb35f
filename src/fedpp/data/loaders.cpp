#include "fedpp/data/loaders.hpp"

#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <utility>

#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/core/files.hpp"
#include "fedpp/core/random.hpp"
#include "fedpp/core/seed.hpp"

namespace fs = std::filesystem;

namespace fedpp {
namespace {

constexpr uint32_t kIdxImagesMagic = 0x00000803;
constexpr uint32_t kIdxLabelsMagic = 0x00000801;
constexpr int64_t kCifarPixels = 3 * 32 * 32;

std::string str(int64_t v) { return std::to_string(v); }

// The whole content of a file, gunzipped if it is gzip (zlib reads plain files unchanged).
std::vector<uint8_t> read_all(const std::string& path) {
  FEDPP_CHECK(fs::is_regular_file(path),
              path + ": file not found; check the path (data.root) or install the data set");
  gzFile f = gzopen(path.c_str(), "rb");
  FEDPP_CHECK(f != nullptr, path + ": cannot be opened for reading; check its permissions");
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  for (;;) {
    int got = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (got < 0) {
      int errnum = 0;
      std::string msg = gzerror(f, &errnum);
      gzclose(f);
      throw Error(path + ": cannot be read (" + msg +
                  "); the file is corrupt or truncated, download it again");
    }
    if (got == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + got);
  }
  gzclose(f);
  return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) |
         uint32_t(b[at + 3]);
}

// Checks that a buffer holds exactly `want` bytes (header promise), naming the file.
void check_size(const std::string& path, size_t have, unsigned __int128 want,
                const std::string& what) {
  FEDPP_CHECK(have >= want, path + ": truncated: the header promises " + what +
                                " but the file holds only " + str(int64_t(have)) +
                                " bytes after the header; download it again");
  FEDPP_CHECK(have == want, path + ": " + str(int64_t(have - size_t(want))) +
                                " unexpected bytes after " + what +
                                "; the file is corrupt or not an IDX file, download it again");
}

torch::Tensor bytes_to_tensor(const uint8_t* data, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<uint8_t*>(data), shape, torch::kUInt8).clone();
}

// Throws naming the file when a label is outside [0, num_classes).
void check_labels(const torch::Tensor& labels, int64_t num_classes, const std::string& path) {
  if (labels.numel() == 0) return;
  auto bad = (labels < 0).logical_or(labels >= num_classes).nonzero();
  if (bad.size(0) == 0) return;
  int64_t i = bad[0][0].item<int64_t>();
  throw Error(path + ": label " + str(labels[i].item<int64_t>()) + " of sample " + str(i) +
              " is outside [0, " + str(num_classes) +
              "); the file is corrupt or belongs to another data set");
}

void check_magic(const std::string& path, const std::vector<uint8_t>& b, uint32_t want,
                 const std::string& kind) {
  FEDPP_CHECK(b.size() >= 4, path + ": truncated: " + str(int64_t(b.size())) +
                                 " bytes, too short to be an IDX file; download it again");
  char hex[11];
  std::snprintf(hex, sizeof hex, "0x%08x", be32(b, 0));
  char want_hex[11];
  std::snprintf(want_hex, sizeof want_hex, "0x%08x", want);
  FEDPP_CHECK(be32(b, 0) == want, path + ": wrong magic number " + hex + " (expected " +
                                      want_hex + " for " + kind +
                                      "); check that the file name matches its content");
}

// The largest image fedpp reads (pixels): a header claiming more is corrupt.
constexpr int64_t kMaxImagePixels = int64_t{4096} * 4096;

torch::Tensor read_idx_images(const std::string& path) {
  auto b = read_all(path);
  check_magic(path, b, kIdxImagesMagic, "idx3-ubyte images");
  FEDPP_CHECK(b.size() >= 16, path + ": truncated: " + str(int64_t(b.size())) +
                                  " bytes, shorter than the 16-byte IDX image header");
  int64_t n = be32(b, 4), rows = be32(b, 8), cols = be32(b, 12);
  // An absurd header is refused before any tensor is shaped by it: {0, 2^31, 2^31} holds no
  // byte but overflows LibTorch's strides. (No image at all is allowed: a client's empty split.)
  FEDPP_CHECK(rows >= 1 && cols >= 1 && rows <= kMaxImagePixels && cols <= kMaxImagePixels &&
                  rows * cols <= kMaxImagePixels,  // each bounded first: no overflow
              path + ": its header claims " + str(n) + " images of " + str(rows) + "x" +
                  str(cols) + " pixels; fedpp reads images of 1x1 to 4096x4096 pixels: the " +
                  "file is corrupt or not IDX images, download it again");
  check_size(path, b.size() - 16, (unsigned __int128)(n) * rows * cols,
             str(n) + " images of " + str(rows) + "x" + str(cols));
  return bytes_to_tensor(b.data() + 16, {n, 1, rows, cols});
}

torch::Tensor read_idx_labels(const std::string& path) {
  auto b = read_all(path);
  check_magic(path, b, kIdxLabelsMagic, "idx1-ubyte labels");
  FEDPP_CHECK(b.size() >= 8, path + ": truncated: " + str(int64_t(b.size())) +
                                 " bytes, shorter than the 8-byte IDX label header");
  int64_t n = be32(b, 4);
  check_size(path, b.size() - 8, n, str(n) + " labels");
  return bytes_to_tensor(b.data() + 8, {n}).to(torch::kInt64);
}

// Reads CIFAR records of `record` bytes: label bytes first, then 3072 channel-major pixels.
// Returns {images uint8 [N,3,32,32], the label byte at `label_at` as int64 [N]}.
std::pair<torch::Tensor, torch::Tensor> read_cifar_records(const std::string& path,
                                                           int64_t record, int64_t label_at) {
  auto b = read_all(path);
  FEDPP_CHECK(!b.empty() && b.size() % record == 0,
              path + ": " + str(int64_t(b.size())) + " bytes is not a whole number of " +
                  str(record) + "-byte CIFAR records; the file is truncated or not a CIFAR " +
                  "binary file, download it again");
  int64_t n = int64_t(b.size()) / record;
  auto rec = bytes_to_tensor(b.data(), {n, record});
  auto images = rec.slice(1, record - kCifarPixels).reshape({n, 3, 32, 32}).contiguous();
  auto labels = rec.select(1, label_at).to(torch::kInt64);
  return {images, labels};
}

// Decodes one PNG file as 8-bit RGB into dst (h*w*3 bytes); any colour type is converted.
void decode_png(const std::string& path, int64_t w, int64_t h, uint8_t* dst) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str()))
    throw Error(path + ": not a readable PNG image (" + img.message + "); remove or replace it");
  if (int64_t(img.width) != w || int64_t(img.height) != h) {
    std::string got = str(img.width) + "x" + str(img.height);
    png_image_free(&img);
    throw Error(path + ": image is " + got + " but the other images are " + str(w) + "x" +
                str(h) + "; all images of a data set must have one size");
  }
  img.format = PNG_FORMAT_RGB;
  std::memset(dst, 0, size_t(w * h * 3));  // alpha is composited onto black
  if (!png_image_finish_read(&img, nullptr, dst, 0, nullptr)) {
    std::string msg = img.message;
    png_image_free(&img);
    throw Error(path + ": PNG data is corrupt (" + msg + "); remove or replace it");
  }
}

// Width and height of a PNG file.
std::pair<int64_t, int64_t> png_size(const std::string& path) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str()))
    throw Error(path + ": not a readable PNG image (" + img.message + "); remove or replace it");
  std::pair<int64_t, int64_t> wh{img.width, img.height};
  png_image_free(&img);
  // The header alone decides the size of the whole data set's buffer: refuse sizes no image
  // data set has before allocating them.
  FEDPP_CHECK(wh.first * wh.second <= kMaxImagePixels,
              path + ": its header claims a " + str(wh.first) + "x" + str(wh.second) +
                  " image, larger than the 4096x4096 fedpp reads; the file is corrupt or not " +
                  "an image of a data set, remove or replace it");
  return wh;
}

std::vector<fs::path> sorted_entries(const fs::path& dir, bool want_dirs) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (want_dirs && e.is_directory()) out.push_back(e.path());
    if (!want_dirs && e.is_regular_file()) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (ext == ".png") out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

RawData load_idx(const std::string& images_path, const std::string& labels_path,
                 int64_t num_classes) {
  RawData raw;
  raw.images = read_idx_images(images_path);
  raw.labels = read_idx_labels(labels_path);
  FEDPP_CHECK(raw.images.size(0) == raw.labels.size(0),
              images_path + " holds " + str(raw.images.size(0)) + " images but " + labels_path +
                  " holds " + str(raw.labels.size(0)) +
                  " labels; the two files must come from the same split and release");
  raw.num_classes = num_classes > 0 ? num_classes
                    : raw.labels.numel() ? raw.labels.max().item<int64_t>() + 1
                                         : 0;
  check_labels(raw.labels, raw.num_classes, labels_path);
  return raw;
}

RawData load_cifar10_bin(const std::vector<std::string>& files) {
  FEDPP_CHECK(!files.empty(), "CIFAR-10: no batch files given");
  std::vector<torch::Tensor> images, labels;
  for (const auto& f : files) {
    auto [x, y] = read_cifar_records(f, 1 + kCifarPixels, 0);
    check_labels(y, 10, f);
    images.push_back(x);
    labels.push_back(y);
  }
  return {torch::cat(images), torch::cat(labels), 10};
}

RawData load_cifar100_bin(const std::string& file, bool coarse) {
  auto [x, y] = read_cifar_records(file, 2 + kCifarPixels, coarse ? 0 : 1);
  int64_t classes = coarse ? 20 : 100;
  check_labels(y, classes, file);
  return {x, y, classes};
}

RawData load_image_folder(const std::string& split_dir, bool by_file_name) {
  FEDPP_CHECK(fs::is_directory(split_dir),
              split_dir + ": folder not found; set data.root to the CINIC-10 folder that holds " +
                  "train/, valid/ and test/");
  auto classes = sorted_entries(split_dir, true);
  FEDPP_CHECK(!classes.empty(), split_dir + ": no class folders inside; expected one folder " +
                                    "per class holding PNG images");
  std::vector<std::string> files;
  std::vector<int64_t> labels;
  for (size_t c = 0; c < classes.size(); ++c) {
    for (const auto& p : sorted_entries(classes[c], false)) {
      files.push_back(p.string());
      labels.push_back(int64_t(c));
    }
  }
  FEDPP_CHECK(!files.empty(), split_dir + ": no .png images in its class folders");
  if (by_file_name) {  // one order across the classes: by file name, then class
    std::vector<size_t> order(files.size());
    std::iota(order.begin(), order.end(), size_t{0});
    auto name = [&](size_t i) { return fs::path(files[i]).filename().string(); };
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::make_pair(name(a), labels[a]) < std::make_pair(name(b), labels[b]);
    });
    std::vector<std::string> f2;
    std::vector<int64_t> l2;
    for (size_t i : order) {
      f2.push_back(files[i]);
      l2.push_back(labels[i]);
    }
    files.swap(f2);
    labels.swap(l2);
  }
  const auto size = png_size(files[0]);
  const int64_t w = size.first, h = size.second;  // plain names: lambdas may capture them
  int64_t n = int64_t(files.size());
  auto hwc = torch::empty({n, h, w, 3}, torch::kUInt8);
  uint8_t* base = hwc.data_ptr<uint8_t>();
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) decode_png(files[i], w, h, base + i * h * w * 3);
  });
  return {hwc.permute({0, 3, 1, 2}).contiguous(), torch::tensor(labels, torch::kInt64),
          int64_t(classes.size())};
}

RawData make_synthetic(int64_t n, int64_t classes, int64_t c, int64_t h, int64_t w,
                       uint64_t seed) {
  FEDPP_CHECK(n > 0 && classes > 0 && c > 0 && h > 0 && w > 0,
              "synthetic data: samples, classes and shape must all be positive (got n=" + str(n) +
                  ", classes=" + str(classes) + ", shape=[" + str(c) + "," + str(h) + "," +
                  str(w) + "])");
  // Each class is a Gaussian cloud around its own centre image (pixel values around 128,
  // spread 40); samples add pixel noise of spread 50 and are clamped to [0, 255].
  Rng rng(seed);
  Normal<float> normal(0.f, 1.f);
  const int64_t d = c * h * w;
  std::vector<float> centres(static_cast<size_t>(classes * d));
  for (auto& v : centres) v = 128.f + 40.f * normal(rng);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = i % classes;
  shuffle(labels, rng);
  auto images = torch::empty({n, c, h, w}, torch::kUInt8);
  uint8_t* px = images.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const float* centre = centres.data() + labels[i] * d;
    for (int64_t j = 0; j < d; ++j) {
      float v = std::round(centre[j] + 50.f * normal(rng));
      px[i * d + j] = uint8_t(std::clamp(v, 0.f, 255.f));
    }
  }
  return {images, torch::tensor(labels, torch::kInt64), classes};
}

ChannelStats channel_stats(const torch::Tensor& images_u8) {
  FEDPP_CHECK(images_u8.scalar_type() == torch::kUInt8 && images_u8.dim() == 4,
              "channel_stats: expected uint8 images [N, C, H, W]");
  auto img = images_u8.contiguous();
  const int64_t n = img.size(0), channels = img.size(1), hw = img.size(2) * img.size(3);
  const uint8_t* px = img.data_ptr<uint8_t>();
  ChannelStats stats;
  for (int64_t ch = 0; ch < channels; ++ch) {
    // A histogram of byte values gives exact sums without a float copy of the images.
    std::vector<int64_t> hist(256, 0);
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* p = px + (i * channels + ch) * hw;
      for (int64_t j = 0; j < hw; ++j) ++hist[p[j]];
    }
    double count = double(n * hw), sum = 0, sq = 0;
    for (int v = 0; v < 256; ++v) sum += hist[v] * (v / 255.0);
    double mean = count > 0 ? sum / count : 0.0;
    for (int v = 0; v < 256; ++v) sq += hist[v] * (v / 255.0 - mean) * (v / 255.0 - mean);
    stats.mean.push_back(mean);
    stats.std.push_back(count > 0 ? std::sqrt(sq / count) : 0.0);
  }
  return stats;
}

// The per-channel mean and the standard deviation normalisation divides by, as float tensors of
// shape [1, C, 1, 1]; a constant channel (std 0) is divided by 1. Used both ways: normalise()
// and pixels_of().
std::pair<torch::Tensor, torch::Tensor> channel_scale(const ChannelStats& stats, int64_t channels,
                                                      const std::string& name) {
  FEDPP_CHECK(int64_t(stats.mean.size()) == channels && int64_t(stats.std.size()) == channels,
              name + ": channel statistics have " + str(int64_t(stats.mean.size())) +
                  " channels but the images have " + str(channels));
  std::vector<float> mean(stats.mean.begin(), stats.mean.end()), sd;
  for (double s : stats.std) sd.push_back(s > 1e-12 ? float(s) : 1.f);
  return {torch::tensor(mean).view({1, channels, 1, 1}),
          torch::tensor(sd).view({1, channels, 1, 1})};
}

Dataset normalise(const RawData& raw, const ChannelStats& stats, const std::string& name) {
  const auto [mean, sd] = channel_scale(stats, raw.images.size(1), name);
  Dataset ds;
  // The pixels stay uint8; Dataset::inputs() normalises a batch at a time.
  ds.x = raw.images.contiguous();
  ds.mean = mean;
  ds.sd = sd;
  ds.y = raw.labels.to(torch::kInt64).contiguous();
  ds.num_classes = raw.num_classes;
  ds.name = name;
  return ds;
}

// ---- load_splits ------------------------------------------------------------------------

namespace {

struct DataKeys {
  std::string dataset, root, emnist_split;
  bool cifar100_coarse = false, cinic_use_valid = false;
  int64_t synthetic_samples = 0, synthetic_test_samples = 0, synthetic_classes = 0;
  std::vector<double> synthetic_shape;
  int64_t subset_train = 0, subset_test = 0;
  bool client_folder = false;  // root is one client's folder (data.client_dirs), not a release
  bool want_train = true;      // false: the test split only (a server with client folders)
};

std::string default_root(const std::string& dataset) {
  if (dataset == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  if (dataset == "mnist") return "/usr/share/datasets/mnist";
  return "";
}

// Every data.* key that load_splits knows is read here, whatever the data set, so that a
// misspelt key is reported by Config::check_all_used().
DataKeys read_keys(const Config& cfg) {
  DataKeys k;
  k.dataset = cfg.get_choice("data.dataset", "fashion-mnist",
                             {"fashion-mnist", "mnist", "emnist", "cifar10", "cifar100",
                              "cinic10", "synthetic"});
  k.root = cfg.get_string("data.root", default_root(k.dataset));
  k.emnist_split = cfg.get_choice("data.emnist_split", "balanced",
                                  {"balanced", "byclass", "bymerge", "digits", "letters",
                                   "mnist"});
  k.cifar100_coarse =
      cfg.get_choice("data.cifar100_labels", "fine", {"fine", "coarse"}) == "coarse";
  k.cinic_use_valid = cfg.get_bool("data.cinic_use_valid", false);
  k.synthetic_samples = cfg.get_int("data.synthetic_samples", 6000, 1);
  k.synthetic_test_samples = cfg.get_int("data.synthetic_test_samples", 1000, 1);
  k.synthetic_classes = cfg.get_int("data.synthetic_classes", 10, 2, 100000);
  k.synthetic_shape = cfg.get_doubles("data.synthetic_shape", {1, 28, 28});
  k.subset_train = cfg.get_int("data.subset_train", 0, 0);
  k.subset_test = cfg.get_int("data.subset_test", 0, 0);
  return k;
}

std::string install_hint(const std::string& dataset) {
  if (dataset == "fashion-mnist")
    return "install dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or set "
           "data.root to a folder holding the Fashion-MNIST IDX files";
  if (dataset == "mnist") return "set data.root to a folder holding the MNIST IDX files";
  if (dataset == "emnist")
    return "set data.root to a folder holding the EMNIST IDX files (emnist-<split>-...)";
  if (dataset == "cifar10")
    return "set data.root to the folder holding the CIFAR-10 binary version (data_batch_*.bin)";
  if (dataset == "cifar100")
    return "set data.root to the folder holding the CIFAR-100 binary version (train.bin)";
  return "set data.root to the CINIC-10 folder holding train/, valid/ and test/";
}

// root/name or root/name.gz, whichever exists.
std::string find_file(const std::string& root, const std::string& name,
                      const std::string& dataset) {
  for (const std::string& p : {root + "/" + name, root + "/" + name + ".gz"})
    if (fs::is_regular_file(p)) return p;
  throw Error("data.root '" + root + "': neither " + name + " nor " + name +
              ".gz is there; " + install_hint(dataset));
}

// The folder holding `marker`: root itself or the folder the official archive unpacks to.
std::string resolve_dir(const std::string& root, const std::string& archive_dir,
                        const std::string& marker, const std::string& dataset) {
  if (fs::is_regular_file(root + "/" + marker)) return root;
  if (fs::is_regular_file(root + "/" + archive_dir + "/" + marker))
    return root + "/" + archive_dir;
  throw Error("data.root '" + root + "': " + marker + " not found (nor in " + archive_dir +
              "/); " + install_hint(dataset));
}

std::pair<RawData, RawData> load_idx_splits(const DataKeys& k) {
  std::string prefix = k.dataset == "emnist" ? "emnist-" + k.emnist_split + "-" : "";
  std::string test = k.dataset == "emnist" ? "test" : "t10k";
  auto file = [&](const std::string& name) { return find_file(k.root, prefix + name, k.dataset); };
  // The class count of the release, not of the labels a file happens to hold: a client's folder
  // or a subset may lack a class. EMNIST letters are labelled 1..26 (shifted to 0..25 below).
  const int64_t classes = k.dataset != "emnist"                ? 10
                          : k.emnist_split == "byclass"        ? 62
                          : k.emnist_split == "letters"        ? 27
                          : k.emnist_split == "digits" || k.emnist_split == "mnist" ? 10
                                                               : 47;  // balanced, bymerge
  // Resolved one by one, so that a missing file is reported in a predictable order.
  std::string train_images, train_labels;
  if (k.want_train) {
    train_images = file("train-images-idx3-ubyte");
    train_labels = file("train-labels-idx1-ubyte");
  }
  std::string test_images = file(test + "-images-idx3-ubyte");
  std::string test_labels = file(test + "-labels-idx1-ubyte");
  RawData train = k.want_train ? load_idx(train_images, train_labels, classes) : RawData{};
  RawData tst = load_idx(test_images, test_labels, classes);
  if (k.dataset == "emnist") {
    for (RawData* r : {&train, &tst}) {
      if (!r->images.defined()) continue;
      r->images = r->images.transpose(2, 3).contiguous();  // EMNIST is stored transposed
      if (k.emnist_split == "letters") r->labels = r->labels - 1;  // letters are labelled 1..26
    }
    if (k.emnist_split == "letters") train.num_classes = tst.num_classes = 26;
  }
  return {train, tst};
}

std::pair<RawData, RawData> load_cifar_splits(const DataKeys& k) {
  if (k.dataset == "cifar10") {
    std::string dir = resolve_dir(k.root, "cifar-10-batches-bin",
                                  k.want_train ? "data_batch_1.bin" : "test_batch.bin", k.dataset);
    std::vector<std::string> batches;
    // The release has data_batch_1..5; a client's folder may hold fewer (at least the first).
    for (int i = 1; i <= 5; ++i) {
      std::string b = dir + "/data_batch_" + str(i) + ".bin";
      if (i == 1 || !k.client_folder || fs::exists(b)) batches.push_back(b);
    }
    return {k.want_train ? load_cifar10_bin(batches) : RawData{},
            load_cifar10_bin({dir + "/test_batch.bin"})};
  }
  std::string dir = resolve_dir(k.root, "cifar-100-binary", k.want_train ? "train.bin" : "test.bin",
                                k.dataset);
  return {k.want_train ? load_cifar100_bin(dir + "/train.bin", k.cifar100_coarse) : RawData{},
          load_cifar100_bin(dir + "/test.bin", k.cifar100_coarse)};
}

std::pair<RawData, RawData> load_cinic_splits(const DataKeys& k) {
  FEDPP_CHECK(fs::is_directory(k.root + "/test"),
              "data.root '" + k.root + "': no test/ folder; " + install_hint(k.dataset));
  RawData test = load_image_folder(k.root + "/test", k.client_folder);
  if (!k.want_train) return {RawData{}, test};
  RawData train = load_image_folder(k.root + "/train", k.client_folder);
  if (k.cinic_use_valid) {
    RawData valid = load_image_folder(k.root + "/valid");
    FEDPP_CHECK(valid.num_classes == train.num_classes,
                k.root + "/valid has " + str(valid.num_classes) + " class folders but train/ has " +
                    str(train.num_classes) + "; both must hold the same classes");
    train.images = torch::cat({train.images, valid.images});
    train.labels = torch::cat({train.labels, valid.labels});
  }
  FEDPP_CHECK(test.num_classes == train.num_classes,
              k.root + "/test has " + str(test.num_classes) + " class folders but train/ has " +
                  str(train.num_classes) + "; both must hold the same classes");
  return {train, test};
}

std::pair<RawData, RawData> make_synthetic_splits(const DataKeys& k, uint64_t seed) {
  const auto& s = k.synthetic_shape;
  FEDPP_CHECK(s.size() == 3 && s[0] >= 1 && s[1] >= 1 && s[2] >= 1,
              "data.synthetic_shape must be [C, H, W] with positive whole numbers");
  int64_t n_train = k.synthetic_samples, n_test = k.synthetic_test_samples;
  // One draw for both splits, so that they share the class centres.
  RawData all = make_synthetic(n_train + n_test, k.synthetic_classes, int64_t(s[0]),
                               int64_t(s[1]), int64_t(s[2]),
                               derive_seed(seed, Purpose::kMisc, {hash_name("synthetic")}));
  RawData train{all.images.slice(0, 0, n_train).contiguous(),
                all.labels.slice(0, 0, n_train).contiguous(), all.num_classes};
  RawData test{all.images.slice(0, n_train).contiguous(), all.labels.slice(0, n_train).contiguous(),
               all.num_classes};
  return {train, test};
}

// A seeded random subset of `count` samples (kept in their original order); 0 = all.
RawData take_subset(const RawData& raw, int64_t count, uint64_t seed) {
  int64_t n = raw.labels.size(0);
  if (count == 0 || count >= n) return raw;
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  Rng rng(seed);
  shuffle(idx, rng);
  idx.resize(size_t(count));
  std::sort(idx.begin(), idx.end());
  auto index = torch::tensor(idx, torch::kInt64);
  return {raw.images.index_select(0, index).contiguous(), raw.labels.index_select(0, index),
          raw.num_classes};
}

std::pair<RawData, RawData> load_raw(const DataKeys& k, uint64_t seed) {
  if (k.dataset == "synthetic") return make_synthetic_splits(k, seed);
  if (k.dataset == "cifar10" || k.dataset == "cifar100") return load_cifar_splits(k);
  if (k.dataset == "cinic10") return load_cinic_splits(k);
  return load_idx_splits(k);
}

void check_root(const DataKeys& k) {
  FEDPP_CHECK(k.dataset == "synthetic" || !k.root.empty(),
              "data.root is not set and data.dataset = \"" + k.dataset +
                  "\" has no default location; " + install_hint(k.dataset));
}

}  // namespace

DataSplits load_splits(const Config& cfg, uint64_t seed) {
  DataKeys k = read_keys(cfg);
  check_root(k);
  std::pair<RawData, RawData> raw = load_raw(k, seed);
  RawData train = take_subset(raw.first, k.subset_train,
                              derive_seed(seed, Purpose::kMisc, {hash_name("subset_train")}));
  RawData test = take_subset(raw.second, k.subset_test,
                             derive_seed(seed, Purpose::kMisc, {hash_name("subset_test")}));
  ChannelStats stats = channel_stats(train.images);
  return {normalise(train, stats, k.dataset), normalise(test, stats, k.dataset), stats};
}

ChannelStats fixed_channel_stats(const Config& cfg) {
  const std::string why =
      "data.client_dirs needs data.mean and data.std, one value per image channel (pixels "
      "scaled to [0, 1]): the clients and the server must normalise alike without sharing "
      "their data; `fedpp data CONFIG --client-folders DIR` prints the values of a partition";
  FEDPP_CHECK(cfg.has("data.mean") && cfg.has("data.std"), why);
  ChannelStats st{cfg.get_doubles("data.mean", {}), cfg.get_doubles("data.std", {})};
  FEDPP_CHECK(!st.mean.empty() && st.mean.size() == st.std.size(),
              "data.mean and data.std must list the same number of channels (got " +
                  str(int64_t(st.mean.size())) + " and " + str(int64_t(st.std.size())) + ")");
  for (size_t c = 0; c < st.std.size(); ++c)
    FEDPP_CHECK(std::isfinite(st.mean[c]) && std::isfinite(st.std[c]) && st.std[c] > 0,
                "data.std must be positive and data.mean finite (channel " + str(int64_t(c)) +
                    ")");
  return st;
}

DataSplits load_folder_splits(const Config& cfg, const std::string& dir, bool want_train) {
  DataKeys k = read_keys(cfg);
  FEDPP_CHECK(k.dataset != "synthetic",
              "data.client_dirs: data.dataset = \"synthetic\" has no files; write the clients' "
              "data in a format fedpp reads (IDX, CIFAR binary, PNG folders)");
  FEDPP_CHECK(k.subset_train == 0,
              "data.subset_train does not apply with data.client_dirs: each client trains on its "
              "whole folder; remove the key");
  FEDPP_CHECK(fs::is_directory(dir), "client data folder '" + dir + "' not found; check "
                                     "data.client_dirs (or fedpp join --data)");
  k.root = dir;
  k.client_folder = true;
  k.want_train = want_train;
  const ChannelStats stats = fixed_channel_stats(cfg);
  std::pair<RawData, RawData> raw = load_raw(k, 0);
  return {want_train ? normalise(raw.first, stats, k.dataset) : Dataset{},
          normalise(raw.second, stats, k.dataset), stats};
}

Dataset load_global_test(const Config& cfg, uint64_t seed) {
  DataKeys k = read_keys(cfg);
  check_root(k);
  FEDPP_CHECK(k.dataset != "synthetic", "data.client_dirs does not apply to synthetic data");
  k.want_train = false;
  RawData test = take_subset(load_raw(k, seed).second, k.subset_test,
                             derive_seed(seed, Purpose::kMisc, {hash_name("subset_test")}));
  return normalise(test, fixed_channel_stats(cfg), k.dataset);
}

// ---- write_folder_splits: the inverse of the loaders, for one client's folder ----------------

namespace {

// The pixels a normalised Dataset came from: round((x * std + mean) * 255), exact for bytes (the
// float error is far below half a grey level). uint8 [N, C, H, W].
torch::Tensor pixels_of(const Dataset& d, const ChannelStats& stats) {
  if (d.x.scalar_type() == torch::kUInt8) return d.x.contiguous();
  const auto [mean, sd] = channel_scale(stats, d.x.size(1), d.name);
  return (d.x * sd + mean)
      .mul(255.f)
      .round()
      .clamp(0, 255)
      .to(torch::kUInt8)
      .contiguous();
}

std::string bytes_of(const torch::Tensor& u8) {
  return {reinterpret_cast<const char*>(u8.data_ptr<uint8_t>()), size_t(u8.numel())};
}

void write_idx(const std::string& dir, const std::string& name, const torch::Tensor& px,
               const torch::Tensor& labels) {
  auto be = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  const auto n = uint32_t(px.size(0));
  write_file_atomic(dir + "/" + name + "-images-idx3-ubyte",
                    be(kIdxImagesMagic) + be(n) + be(uint32_t(px.size(2))) +
                        be(uint32_t(px.size(3))) + bytes_of(px));
  write_file_atomic(dir + "/" + name + "-labels-idx1-ubyte",
                    be(kIdxLabelsMagic) + be(n) + bytes_of(labels.to(torch::kUInt8).contiguous()));
}

// CIFAR records: `label_bytes` copies of the label, then the 3072 channel-major pixels.
void write_cifar(const std::string& path, const torch::Tensor& px, const torch::Tensor& labels,
                 int label_bytes) {
  FEDPP_CHECK(px.size(1) == 3 && px.size(2) == 32 && px.size(3) == 32,
              path + ": CIFAR records hold 3x32x32 images");
  auto lab = labels.to(torch::kUInt8).view({-1, 1}).expand({-1, label_bytes});
  write_file_atomic(path, bytes_of(torch::cat({lab, px.view({px.size(0), -1})}, 1).contiguous()));
}

void write_png_folder(const std::string& dir, const torch::Tensor& px, const torch::Tensor& labels,
                      int64_t classes) {
  FEDPP_CHECK(px.size(1) == 3, dir + ": PNG folders hold RGB images");
  // Every class folder, empty or not, so that sorted folder order gives the class ids back.
  auto folder = [&](int64_t c) {
    std::string name = std::to_string(c);
    return dir + "/class_" + std::string(name.size() < 4 ? 4 - name.size() : 0, '0') + name;
  };
  for (int64_t c = 0; c < classes; ++c) fs::create_directories(folder(c));
  auto hwc = px.permute({0, 2, 3, 1}).contiguous();
  const int64_t h = px.size(2), w = px.size(3);
  for (int64_t i = 0; i < px.size(0); ++i) {
    png_image img;
    std::memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = uint32_t(w);
    img.height = uint32_t(h);
    img.format = PNG_FORMAT_RGB;
    const uint8_t* row = hwc.data_ptr<uint8_t>() + i * h * w * 3;
    png_alloc_size_t size = 0;
    FEDPP_CHECK(png_image_write_to_memory(&img, nullptr, &size, 0, row, 0, nullptr),
                dir + ": cannot encode image " + str(i) + " as PNG (" + img.message + ")");
    std::string buf(size, '\0');
    FEDPP_CHECK(png_image_write_to_memory(&img, buf.data(), &size, 0, row, 0, nullptr),
                dir + ": cannot encode image " + str(i) + " as PNG (" + img.message + ")");
    buf.resize(size);
    std::string name = std::to_string(i);
    write_file_atomic(folder(labels[i].item<int64_t>()) + "/" +
                          std::string(name.size() < 6 ? 6 - name.size() : 0, '0') + name + ".png",
                      buf);
  }
}

}  // namespace

void write_folder_splits(const Config& cfg, const Dataset& train, const Dataset& test,
                         const ChannelStats& stats, const std::string& dir) {
  const DataKeys k = read_keys(cfg);
  FEDPP_CHECK(k.dataset != "synthetic",
              "data.dataset = \"synthetic\" has no file format to write client folders in");
  fs::create_directories(dir);
  for (const Dataset* d : {&train, &test}) {
    const bool is_train = d == &train;
    torch::Tensor px = pixels_of(*d, stats), y = d->y;
    if (k.dataset == "cifar10") {
      write_cifar(dir + (is_train ? "/data_batch_1.bin" : "/test_batch.bin"), px, y, 1);
    } else if (k.dataset == "cifar100") {  // both label bytes hold the label trained on
      write_cifar(dir + (is_train ? "/train.bin" : "/test.bin"), px, y, 2);
    } else if (k.dataset == "cinic10") {
      write_png_folder(dir + (is_train ? "/train" : "/test"), px, y, d->num_classes);
    } else {  // IDX: the release's names; EMNIST is stored transposed, letters labelled 1..26
      const bool emnist = k.dataset == "emnist";
      if (emnist) px = px.transpose(2, 3).contiguous();
      if (emnist && k.emnist_split == "letters") y = y + 1;
      const std::string prefix = emnist ? "emnist-" + k.emnist_split + "-" : "";
      write_idx(dir, prefix + (is_train ? "train" : emnist ? "test" : "t10k"), px, y);
    }
  }
}

}  // namespace fedpp
