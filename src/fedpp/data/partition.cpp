#include "fedpp/data/partition.hpp"

#include <algorithm>
#include <map>
#include <numeric>

#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/core/random.hpp"
#include "fedpp/core/seed.hpp"
#include "fedpp/data/loaders.hpp"

namespace fedpp {
namespace {

using Lists = std::vector<std::vector<int64_t>>;

std::string str(int64_t v) { return std::to_string(v); }

// Sample indices grouped by label; throws on a label outside [0, num_classes).
Lists indices_by_class(const torch::Tensor& labels, int64_t num_classes) {
  auto y = labels.to(torch::kInt64).contiguous();
  const int64_t* p = y.data_ptr<int64_t>();
  Lists by_class(static_cast<size_t>(num_classes));
  for (int64_t i = 0; i < y.numel(); ++i) {
    FEDPP_CHECK(p[i] >= 0 && p[i] < num_classes,
                "partition: label " + str(p[i]) + " of sample " + str(i) + " is outside [0, " +
                    str(num_classes) + ")");
    by_class[size_t(p[i])].push_back(i);
  }
  return by_class;
}

// Cuts `idx` into consecutive parts proportional to `shares` (cumulative rounding, so every
// index lands in exactly one part) and appends part j to (*out)[owners[j]].
void deal(const std::vector<int64_t>& idx, const std::vector<double>& shares,
          const std::vector<int64_t>& owners, Lists* out) {
  const double total = std::accumulate(shares.begin(), shares.end(), 0.0);
  const int64_t n = int64_t(idx.size());
  double cum = 0;
  int64_t start = 0;
  for (size_t j = 0; j < shares.size(); ++j) {
    cum += shares[j];
    int64_t end = j + 1 == shares.size() ? n : std::min(n, int64_t(std::llround(cum / total * n)));
    auto& dst = (*out)[size_t(owners[j])];
    dst.insert(dst.end(), idx.begin() + start, idx.begin() + std::max(start, end));
    start = std::max(start, end);
  }
}

std::vector<int64_t> range(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

Lists partition_iid(int64_t n, int64_t clients, Rng& rng) {
  auto perm = range(n);
  shuffle(perm, rng);
  Lists out(static_cast<size_t>(clients));
  deal(perm, std::vector<double>(size_t(clients), 1.0), range(clients), &out);
  return out;
}

// Shares of a Dirichlet(alpha, ..., alpha) draw over `k` parts, via normalised Gamma draws.
std::vector<double> dirichlet_shares(int64_t k, double alpha, Rng& rng) {
  Gamma gamma(alpha, 1.0);
  std::vector<double> s(static_cast<size_t>(k));
  for (auto& v : s) v = gamma(rng);
  if (std::accumulate(s.begin(), s.end(), 0.0) <= 0.0) {  // all draws underflowed (tiny alpha)
    std::fill(s.begin(), s.end(), 0.0);
    s[uniform_below(rng, s.size())] = 1.0;
  }
  return s;
}

Lists partition_dirichlet(Lists by_class, const PartitionSpec& spec, Rng& rng) {
  const int64_t clients = spec.num_clients;
  int64_t n = 0;
  for (auto& idx : by_class) {
    shuffle(idx, rng);
    n += int64_t(idx.size());
  }
  FEDPP_CHECK(n >= clients * spec.min_samples,
              "dirichlet partition: " + str(n) + " samples cannot give each of data.num_clients = " +
                  str(clients) + " clients data.min_samples = " + str(spec.min_samples) +
                  " samples; lower data.min_samples or data.num_clients");
  constexpr int kMaxDraws = 1000;
  for (int draw = 0; draw < kMaxDraws; ++draw) {
  Lists out(static_cast<size_t>(clients));
    for (const auto& idx : by_class)
      deal(idx, dirichlet_shares(clients, spec.alpha, rng), range(clients), &out);
    bool ok = std::all_of(out.begin(), out.end(),
                          [&](const auto& l) { return int64_t(l.size()) >= spec.min_samples; });
    if (ok) return out;
  }
  throw Error("dirichlet partition: no draw in " + str(kMaxDraws) + " gave every one of the " +
              str(clients) + " clients at least data.min_samples = " + str(spec.min_samples) +
              " samples with data.alpha = " + std::to_string(spec.alpha) +
              "; raise data.alpha or lower data.min_samples");
}

Lists partition_pathological(Lists by_class, const PartitionSpec& spec, Rng& rng) {
  const int64_t classes = int64_t(by_class.size()), clients = spec.num_clients;
  const int64_t k = spec.classes_per_client;
  FEDPP_CHECK(k <= classes, "pathological partition: data.classes_per_client = " + str(k) +
                                " exceeds the " + str(classes) + " classes of the data set");
  FEDPP_CHECK(clients * k >= classes,
              "pathological partition: data.num_clients * data.classes_per_client = " +
                  str(clients * k) + " is less than the " + str(classes) +
                  " classes, so some samples would belong to no client; raise either key");
  // Client i holds classes (i*k + j) mod C, j < k: round-robin, near-equal holders per class.
  Lists holders(static_cast<size_t>(classes));
  for (int64_t i = 0; i < clients; ++i)
    for (int64_t j = 0; j < k; ++j) holders[size_t((i * k + j) % classes)].push_back(i);
  Lists out(static_cast<size_t>(clients));
  for (int64_t c = 0; c < classes; ++c) {
    auto& idx = by_class[size_t(c)];
    shuffle(idx, rng);
    std::vector<double> shares;
    for (size_t h = 0; h < holders[size_t(c)].size(); ++h) shares.push_back(uniform_real(rng, 0.4, 0.6));
    deal(idx, shares, holders[size_t(c)], &out);
  }
  return out;
}

Dataset concat(const Dataset& a, const Dataset& b) {
  Dataset out;
  FEDPP_CHECK(a.x.scalar_type() == b.x.scalar_type(),
              "data.pool = \"all\": the train and test splits hold inputs of different types");
  out.x = torch::cat({a.x, b.x});
  out.y = torch::cat({a.y, b.y});
  out.mean = a.mean;  // one normalisation for both splits (DataSplits::stats)
  out.sd = a.sd;
  out.num_classes = a.num_classes;
  out.name = a.name;
  return out;
}

// Deals the test split to clients class by class, in proportion to each client's share of that
// class in its train part; the parts are disjoint and follow each client's own labels.
Lists test_by_train_share(const Lists& train_lists, const torch::Tensor& train_y,
                          const torch::Tensor& test_y, int64_t num_classes, uint64_t seed) {
  auto y = train_y.to(torch::kInt64).contiguous();
  const int64_t* p = y.data_ptr<int64_t>();
  Rng rng(seed);
  Lists test_by_class = indices_by_class(test_y, num_classes);
  Lists out(train_lists.size());
  for (int64_t c = 0; c < num_classes; ++c) {
    std::vector<double> shares;
    std::vector<int64_t> owners;
    for (size_t i = 0; i < train_lists.size(); ++i) {
      int64_t count = std::count_if(train_lists[i].begin(), train_lists[i].end(),
                                    [&](int64_t j) { return p[j] == c; });
      if (count > 0) {
        shares.push_back(double(count));
        owners.push_back(int64_t(i));
      }
    }
    if (owners.empty()) continue;  // no client trains on class c: its test samples go unused
    auto& idx = test_by_class[size_t(c)];
    shuffle(idx, rng);
    deal(idx, shares, owners, &out);
  }
  for (auto& l : out) std::sort(l.begin(), l.end());
  return out;
}

ClientSummary summarise(int64_t client, const ClientData& cd, int64_t num_classes) {
  ClientSummary s;
  s.client = client;
  s.train_samples = cd.train.size();
  s.test_samples = cd.test.size();
  s.train_per_class.assign(size_t(num_classes), 0);
  auto y = cd.train.y.to(torch::kInt64).contiguous();
  const int64_t* p = y.data_ptr<int64_t>();
  for (int64_t i = 0; i < y.numel(); ++i) ++s.train_per_class[size_t(p[i])];
  return s;
}

}  // namespace

std::vector<std::vector<int64_t>> partition_indices(const torch::Tensor& labels,
                                                    int64_t num_classes,
                                                    const PartitionSpec& spec) {
  FEDPP_CHECK(spec.num_clients >= 1,
              "data.num_clients must be at least 1 (got " + str(spec.num_clients) + ")");
  FEDPP_CHECK(num_classes >= 1, "partition: the data set has no classes");
  Rng rng(spec.seed);
  Lists by_class = indices_by_class(labels, num_classes);
  Lists out;
  if (spec.kind == "iid") {
    out = partition_iid(labels.size(0), spec.num_clients, rng);
  } else if (spec.kind == "dirichlet") {
    FEDPP_CHECK(spec.alpha > 0, "data.alpha must be > 0 (got " + std::to_string(spec.alpha) + ")");
    out = partition_dirichlet(std::move(by_class), spec, rng);
  } else if (spec.kind == "pathological") {
    FEDPP_CHECK(spec.classes_per_client >= 1, "data.classes_per_client must be at least 1");
    out = partition_pathological(std::move(by_class), spec, rng);
  } else {
    throw Error("data.partition = \"" + spec.kind +
                "\" is not one of iid, dirichlet, pathological");
  }
  for (size_t i = 0; i < out.size(); ++i) {
    FEDPP_CHECK(!out[i].empty() || spec.kind == "dirichlet",
                spec.kind + " partition: client " + str(int64_t(i)) + " of data.num_clients = " +
                    str(spec.num_clients) + " gets no samples; use fewer clients or more data");
    std::sort(out[i].begin(), out[i].end());
  }
  return out;
}

void split_train_test(const std::vector<int64_t>& idx, const torch::Tensor& labels,
                      double test_fraction, uint64_t seed, std::vector<int64_t>* train,
                      std::vector<int64_t>* test) {
  FEDPP_CHECK(test_fraction >= 0 && test_fraction <= 1,
              "test fraction must be in [0, 1] (got " + std::to_string(test_fraction) + ")");
  auto y = labels.to(torch::kInt64).contiguous();
  const int64_t* p = y.data_ptr<int64_t>();
  std::map<int64_t, std::vector<int64_t>> by_label;
  for (int64_t i : idx) by_label[p[i]].push_back(i);
  Rng rng(seed);
  train->clear();
  test->clear();
  for (auto& [label, members] : by_label) {
    shuffle(members, rng);
    auto n_test = int64_t(std::llround(test_fraction * double(members.size())));
    test->insert(test->end(), members.begin(), members.begin() + n_test);
    train->insert(train->end(), members.begin() + n_test, members.end());
  }
  std::sort(train->begin(), train->end());
  std::sort(test->begin(), test->end());
}

FederatedData make_federated(DataSplits splits, const Config& cfg, uint64_t seed) {
  PartitionSpec spec;
  spec.kind = cfg.get_choice("data.partition", "iid", {"iid", "dirichlet", "pathological"});
  spec.num_clients = cfg.get_int("data.num_clients", 10, 1);
  spec.alpha = cfg.get_double("data.alpha", 0.5);
  spec.classes_per_client = cfg.get_int("data.classes_per_client", 2, 1);
  spec.min_samples = cfg.get_int("data.min_samples", 10, 0);
  spec.seed = derive_seed(seed, Purpose::kPartition, {hash_name("partition")});
  const double test_fraction = cfg.get_double("data.client_test_fraction", 0.2, 0.0, 1.0);
  const std::string pool = cfg.get_choice("data.pool", "train", {"train", "all"});
  FEDPP_CHECK(spec.alpha > 0, "data.alpha must be > 0 (got " + std::to_string(spec.alpha) + ")");

  const int64_t classes = splits.train.num_classes;
  FEDPP_CHECK(splits.test.num_classes == classes,
              "the train split has " + str(classes) + " classes but the test split has " +
                  str(splits.test.num_classes));
  FederatedData fd;
  fd.global_test = splits.test;
  fd.stats = splits.stats;
  if (pool == "train") {
    Lists train = partition_indices(splits.train.y, classes, spec);
    Lists test = test_by_train_share(train, splits.train.y, splits.test.y, classes,
                                     derive_seed(seed, Purpose::kPartition, {hash_name("test")}));
    for (size_t i = 0; i < train.size(); ++i)
      fd.clients.push_back({splits.train.subset(train[i]), splits.test.subset(test[i])});
  } else {
    Dataset all = concat(splits.train, splits.test);
    splits.train = Dataset{};  // pooled into `all`: drop this copy (freed if the caller moved it)
    Lists parts = partition_indices(all.y, classes, spec);
    for (size_t i = 0; i < parts.size(); ++i) {
      std::vector<int64_t> tr, te;
      split_train_test(parts[i], all.y, test_fraction,
                       derive_seed(seed, Purpose::kPartition, {hash_name("client_split"), i}),
                       &tr, &te);
      fd.clients.push_back({all.subset(tr), all.subset(te)});
    }
  }
  for (size_t i = 0; i < fd.clients.size(); ++i)
    fd.summary.push_back(summarise(int64_t(i), fd.clients[i], classes));
  return fd;
}

std::string client_dir(const Config& cfg, int64_t client) {
  std::string t = cfg.get_string("data.client_dirs", "");
  FEDPP_CHECK(!t.empty(), "data.client_dirs is not set");
  const auto at = t.find("{k}");
  FEDPP_CHECK(at != std::string::npos,
              "data.client_dirs = \"" + t + "\" must contain {k}, which becomes the client id "
              "(e.g. \"clients/client_{k}\")");
  return t.replace(at, 3, std::to_string(client));
}

FederatedData load_client_folders(const Config& cfg, uint64_t seed, int64_t only,
                                  const std::string& dir) {
  const int64_t n = cfg.get_int("data.num_clients", 10, 1);
  (void)client_dir(cfg, 0);  // the template is checked on every process, even one reading none
  // The partition keys describe a split of a pooled data set; here each folder is a client's.
  for (const char* key : {"data.partition", "data.alpha", "data.classes_per_client",
                          "data.min_samples", "data.client_test_fraction", "data.pool"})
    cfg.mark_used(key);
  FEDPP_CHECK(only >= kNoClients && only < n,
              "client " + str(only) + " is out of range: data.num_clients = " + str(n) +
                  " gives clients 0.." + str(n - 1));
  FederatedData fd;
  fd.clients.resize(size_t(n));
  fd.clients_known = only == kAllClients;
  fd.stats = fixed_channel_stats(cfg);
  if (only != kAllClients && only != kNoClients) {
    DataSplits s = load_folder_splits(cfg, dir.empty() ? client_dir(cfg, only) : dir);
    fd.summary.push_back(summarise(only, {s.train, s.test}, s.train.num_classes));
    fd.clients[size_t(only)] = {std::move(s.train), std::move(s.test)};
    return fd;  // a deployed client: its own data only, no global test set
  }
  fd.global_test = load_global_test(cfg, seed);
  if (only == kNoClients) return fd;
  for (int64_t k = 0; k < n; ++k) {
    const std::string d = client_dir(cfg, k);
    DataSplits s = load_folder_splits(cfg, d);
    FEDPP_CHECK(s.train.num_classes == fd.global_test.num_classes &&
                    s.train.sample_shape() == fd.global_test.sample_shape(),
                "client folder '" + d + "' holds " + str(s.train.num_classes) +
                    " classes of images shaped unlike the global test set of data.root; every "
                    "client must hold the same kind of data");
    fd.summary.push_back(summarise(k, {s.train, s.test}, s.train.num_classes));
    fd.clients[size_t(k)] = {std::move(s.train), std::move(s.test)};
  }
  return fd;
}

}  // namespace fedpp
