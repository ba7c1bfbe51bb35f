// FedGKT: group knowledge transfer (He et al., NeurIPS 2020; docs/methods/fedgkt.md).
//
// Clients train a small "resnet8" (their private model, kept in ClientState); the server trains
// a large "resnet56_server" / "resnet110_server" (fedgkt.server_model) on the clients' 16-channel
// feature maps H. Logits flow both ways for knowledge distillation; no weights travel.
//
// One round on the fedpp API:
//   configure_fit(r, k)  -> {server_logits [n_k, classes] f32, server_idx [n_k] i64}: the server
//                           logits of client k's train rows from the last aggregate (empty in the
//                           first round, and for a client the server has no upload from yet).
//   client fit           -> stores the logits in its state by train row ("kd.logits", mask
//                           "kd.have"); trains resnet8 for fedgkt.client_epochs with
//                           CE + alpha * KD(T) on the rows that have server logits (plain CE
//                           before it has any); then, in eval mode, extracts for every train row
//                           {features H, client_logits z_c, labels, idx = row numbers} and, with
//                           fedgkt.send_test_features, {test_features, test_labels} of its test
//                           split. Feature maps travel as float32 tensors: the up-link codec
//                           (codec.up.float16 / codec.up.bits) compresses them.
//   aggregate(r)         -> replaces each replying client's entry in the FeatureCache; trains the
//                           server model for fedgkt.server_epochs over all cached entries (client
//                           order and rows shuffled per epoch) with CE, or KD(z_s <- z_c) +
//                           alpha * CE when fedgkt.server_kd; then computes z_s for every cached
//                           row, keyed by the client's own row indices, for the next configure_fit.
// Logits are keyed by sample (row), never by batch position (the reference code's defect).
//
// Optimisers: Adam (lr fedgkt.client_lr / fedgkt.server_lr, weight decay fedgkt.weight_decay),
// batch fedgkt.batch_size. The client's Adam moments persist in its ClientState between rounds
// (FedML's GKTClientTrainer also builds its optimiser once per client for the whole run). The
// server's learning rate is multiplied by fedgkt.server_lr_factor when its training loss has not
// improved (relatively, by 1e-4) for fedgkt.server_lr_patience steps of the scheduler
// (PyTorch's ReduceLROnPlateau, mode "min"; LibTorch 1.13 has no C++ version). Where it steps,
// fedgkt.scheduler_step: "round" (default; the reference steps once per round, after the server
// epochs; it steps on its best test accuracy, fedpp on the round's last-epoch training loss so
// that no test data steers training) or "epoch" (after every server epoch).
// Server loss: KD(z_s <- z_c) + alpha * CE (the paper's; fedgkt.server_kd = true, the default),
// or CE alone (the reference code's default recipe; server_kd = false).
// Client initialisation: fedgkt.common_init = true (default) starts every client's resnet8 from
// one seeded initialisation (the reference seeds every process alike and copies one stem and
// first stage into every client); false gives each client its own seed.
//
// Evaluation (every eval round), as the paper and docs/methods/fedgkt.md define it, on the global
// test set (the one FedAvg is scored on):
//   (a) ServerAlgorithm::evaluate runs, for every client that has uploaded, that client's
//       extractor (its resnet8's stem) followed by the server model over the whole global test
//       set: "accuracy" / "loss" are the means over clients, "accuracy_min" the worst client.
//       "client_accuracy" / "client_accuracy_min": each client's resnet8 alone on the same set
//       (what the edge device runs offline). For this every fit reply carries the client's
//       resnet8 weights ("eval.<name>", about 42 kB for 1x28x28; the reference instead uploads
//       the feature maps of the whole test set, about 50 MB per client on Fashion-MNIST, for the
//       same numbers). The server never trains on them.
//       Also "server_train_loss", "server_lr", "server_macs" (multiply-adds the server spent in
//       the last aggregate, evaluation excluded) and the cache's memory and disk bytes.
//   (b) Personalised columns, on each client's own test split (which follows its label mix,
//       so the server path can exploit the client's label prior): with
//       fedgkt.send_test_features = true (default false) the client uploads its split's feature
//       maps and evaluate adds "personal_server_accuracy" (mean over clients) and "_min";
//       configure_evaluate sends an empty message and ClientAlgorithm::evaluate reports the
//       client's resnet8 alone on its split ("personal_accuracy_*").
// Costs: client_macs = 3 x resnet8 forward MACs x trained samples + one forward pass over the
// train rows (+ the stem over the test rows when they are sent).
#pragma once
#include <memory>
#include <string>

#include "fedpp/algorithms/common/distill.hpp"  // kd_loss
#include "fedpp/algorithms/feature_cache.hpp"
#include "fedpp/fl/algorithm.hpp"
#include "fedpp/fl/training.hpp"
#include "fedpp/models/resnet.hpp"

namespace fedpp {

// ReduceLROnPlateau (mode min, relative threshold, no cooldown), stepped once per epoch.
class PlateauScheduler {
 public:
  PlateauScheduler(double factor, int64_t patience, double threshold = 1e-4, double min_lr = 0.0);
  // Records one epoch's loss; after more than `patience` epochs without improvement multiplies
  // the optimiser's learning rate by `factor` (not below min_lr). Returns true when it did.
  bool step(double loss, torch::optim::Optimizer& opt);
  double best() const { return best_; }
  int64_t bad_epochs() const { return bad_; }
  void restore(double best, int64_t bad) { best_ = best; bad_ = bad; }

 private:
  double factor_, threshold_, min_lr_;
  int64_t patience_;
  double best_;
  int64_t bad_ = 0;
};

// Adam's per-parameter moments and step counts as NamedTensors ("<param>.exp_avg",
// "<param>.exp_avg_sq", "<param>.step"), and back. Parameters without state are skipped.
NamedTensors adam_state(torch::optim::Adam& opt, const torch::nn::Module& m);
void load_adam_state(torch::optim::Adam& opt, const torch::nn::Module& m, const NamedTensors& s);

struct GktOptions {
  std::string server_model = "resnet56_server";  // resnet56_server | resnet110_server
  int64_t client_epochs = 1;
  int64_t server_epochs = 20;     // default 20 for data.partition = "iid", else 10 (the paper)
  int64_t batch_size = 256;
  double client_lr = 0.001, server_lr = 0.001, weight_decay = 1e-4;
  double temperature = 3.0, alpha = 1.0;
  bool server_kd = true;          // server loss KD(z_s <- z_c) + alpha * CE (false: CE alone)
  double server_lr_factor = 0.1;
  int64_t server_lr_patience = 10;  // scheduler steps (rounds or epochs, see scheduler_step)
  std::string scheduler_step = "round";  // round | epoch
  bool common_init = true;        // every client's resnet8 starts from the same weights
  std::string cache_dtype = "float16";
  int64_t cache_max_bytes = int64_t(1) << 30;
  std::string cache_dir;          // "" = a fresh folder in the system temp dir
  bool send_test_features = false;
  // Reads every fedgkt.* key (with validation).
  static GktOptions from_config(const Config& cfg);
};

class FedGktServer : public ServerAlgorithm {
 public:
  explicit FedGktServer(const AlgorithmSetup& setup);
  Message configure_fit(int64_t round, int64_t client_id) override;
  void aggregate(int64_t round, const std::vector<Reply>& replies) override;
  std::map<std::string, double> evaluate(int64_t round, const Dataset& test) override;
  std::optional<Message> configure_evaluate(int64_t round, int64_t client_id) override;
  Message save_state() const override;
  void load_state(const Message& state) override;
  // The server model (fedgkt.server_model, e.g. "resnet56_server") as it stands after the last
  // aggregate: its input is a client extractor's feature map [B, 16, H, W], so in PyTorch it
  // runs behind a client's resnet8 stem (docs/models.md, FedGKT).
  std::optional<ExportedModel> global_model() const override;

  Model& model() { return *model_; }
  const FeatureCache& cache() const { return *cache_; }
  const GktOptions& options() const { return opt_; }

 private:
  void train_server(int64_t round);
  void compute_logits();

  AlgorithmSetup setup_;
  GktOptions opt_;
  std::vector<int64_t> map_shape_;  // {16, H, W}
  ModelPtr model_;
  std::unique_ptr<torch::optim::Adam> adam_;
  PlateauScheduler plateau_;
  std::unique_ptr<FeatureCache> cache_;
  std::map<int64_t, std::pair<torch::Tensor, torch::Tensor>> logits_;  // client -> (idx, z_s)
  std::map<int64_t, NamedTensors> client_models_;  // client -> its last resnet8 (evaluation)
  std::shared_ptr<ResNet8> eval_client_;            // a resnet8 to load them into
  double last_train_loss_ = 0.0, last_macs_ = 0.0;
};

class FedGktClient : public ClientAlgorithm {
 public:
  explicit FedGktClient(const AlgorithmSetup& setup);
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;
  // The client's resnet8 (what its personalised evaluation scores; nullopt before it trained).
  std::optional<ExportedModel> personal_model(int64_t client_id, const ClientState& state,
                                              const Message& shared) const override;

 private:
  // Loads the client's resnet8 from its state (a fresh seeded one on its first round).
  void restore(const ClientContext& ctx);

  AlgorithmSetup setup_;
  GktOptions opt_;
  std::shared_ptr<ResNet8> model_;  // this worker's copy; weights come from ClientState
};

AlgorithmInfo fedgkt_info();

}  // namespace fedpp
