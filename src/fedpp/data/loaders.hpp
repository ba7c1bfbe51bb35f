// Loaders for the official on-disk formats. Each returns raw data (uint8 images [N, C, H, W],
// int64 labels [N]); normalise() turns them into a Dataset. Every problem with a file (missing,
// wrong magic number, truncated, a label out of range) throws fedpp::Error naming the file and
// what is wrong.
//
// - IDX (MNIST, Fashion-MNIST, EMNIST): idx3-ubyte images and idx1-ubyte labels, gzip (.gz) or
//   plain. File names as distributed: train-images-idx3-ubyte[.gz] etc.
// - CIFAR-10 binary: data_batch_1..5.bin, test_batch.bin; records of 1 label byte + 3072 pixels.
// - CIFAR-100 binary: train.bin, test.bin; records of coarse byte, fine byte, 3072 pixels.
// - CINIC-10: <root>/{train,valid,test}/<class>/*.png, classes in sorted folder order.
// - synthetic: Gaussian class clusters, deterministic from a seed.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "fedpp/data/dataset.hpp"

namespace fedpp {

struct RawData {
  torch::Tensor images;  // uint8 [N, C, H, W]
  torch::Tensor labels;  // int64 [N]
  int64_t num_classes = 0;
};

// IDX pair; num_classes checks the labels (0 = infer as max+1).
RawData load_idx(const std::string& images_path, const std::string& labels_path,
                 int64_t num_classes = 0);
// CIFAR-10 binary files of one split (paths of the .bin files to concatenate).
RawData load_cifar10_bin(const std::vector<std::string>& files);
// CIFAR-100 binary file of one split; fine labels (100) or coarse labels (20).
RawData load_cifar100_bin(const std::string& file, bool coarse = false);
// CINIC-10 split folder (e.g. <root>/train): one folder per class, PNG images inside; samples
// class by class in sorted folder order, or, with by_file_name, ordered by file name across the
// classes (a client folder that write_folder_splits wrote: its files are numbered in order).
RawData load_image_folder(const std::string& split_dir, bool by_file_name = false);
// Synthetic: n samples of shape {c, h, w} from `classes` Gaussian clusters.
RawData make_synthetic(int64_t n, int64_t classes, int64_t c, int64_t h, int64_t w,
                       uint64_t seed);

// Per-channel mean and standard deviation of uint8 images scaled to [0, 1].
ChannelStats channel_stats(const torch::Tensor& images_u8);
// (images / 255 - mean) / std per channel, as float32.
Dataset normalise(const RawData& raw, const ChannelStats& stats, const std::string& name);

// Loads the source named by config key data.dataset from data.root (default roots per dataset,
// e.g. /usr/share/datasets/fashion-mnist), normalising both splits with the train statistics.
// data.subset_train / data.subset_test (0 = all) take a seeded subset for quick runs.
DataSplits load_splits(const Config& cfg, uint64_t seed);

// Clients with their own data (data.client_dirs): one client's folder, laid out as data.root of
// data.dataset is (IDX files; CIFAR binary files, where a client's folder may hold fewer than
// five data_batch files; CINIC-style train/ and test/ PNG folders with every class folder
// present, empty or not). Its train split is the client's training data and its test split the
// client's own test split, each whole (data.subset_train must be 0), normalised with the fixed
// data.mean / data.std. want_train = false reads the test split only. Throws fedpp::Error naming
// the folder or file that is missing or wrong.
DataSplits load_folder_splits(const Config& cfg, const std::string& dir, bool want_train = true);
// With data.client_dirs: the global test set, the test split of data.root (data.subset_test
// applies, seeded as load_splits does), normalised with data.mean / data.std. No train split is
// read.
Dataset load_global_test(const Config& cfg, uint64_t seed);
// The inverse of load_folder_splits: writes a train and a test split (normalised with `stats`)
// into `dir` in data.dataset's layout, so that load_folder_splits with data.mean/std = stats
// reads back equal tensors (pixels are recovered exactly). CIFAR-100 records carry the label
// trained on in both label bytes. Throws fedpp::Error for synthetic data or a failed write.
void write_folder_splits(const Config& cfg, const Dataset& train, const Dataset& test,
                         const ChannelStats& stats, const std::string& dir);
// data.mean and data.std as ChannelStats; throws fedpp::Error when missing or invalid.
ChannelStats fixed_channel_stats(const Config& cfg);

}  // namespace fedpp
