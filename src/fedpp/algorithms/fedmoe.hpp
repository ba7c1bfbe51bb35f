// FedMoE / pFedMoE (Yi et al., arXiv 2402.01350): model-heterogeneous personalised FL with a
// per-client mixture of two experts (specification: docs/methods/fedmoe.md).
//
// Client k: local expert F_k = features() of its own zoo model (common/hetero.hpp), global expert G =
// features() of zoo model fedmoe.global_expert (default cnn5, shared), gate H_k = flattened raw
// input -> norm -> Linear(d, m) -> Sigmoid -> Linear(m, 2) -> Softmax, head P_k = its own
// model's head. r = a_g * G(x) + a_l * F_k(x); logits = P_k(r). All four are trained together
// on one cross-entropy loss (train.*; optional fedmoe.gate_lr). Only G's feature tensors and
// num_samples travel up; the server averages G by sample count (AveragingServer). F_k, P_k and H_k stay in the
// client's ClientState (prefixes "local." and "gate.").
//
// Config keys: fedmoe.global_expert (zoo name; its feature_dim must equal every client model's),
// fedmoe.gate_norm (layernorm | batchnorm | switchnorm | none, default layernorm; switchnorm is
// the paper's Switch Normalization, Luo et al. 2019, over the raw image), fedmoe.gate_hidden
// (m, 128), fedmoe.gate_lr (0 = train.lr), fedmoe.gate_init_local (0 = off: the gate's output
// bias starts at zero, so a_l starts near 0.5; p in (0, 1): the bias starts at logit(p), so a_l
// starts near p), fedmoe.mix (gate | fixed | local_only | global_only), plus hetero.* and
// train.*.
// Fit metrics: num_samples, train_loss, client_macs, personal_accuracy_after_fit (test accuracy
// of the MoE with the freshly trained G), gate_global_weight (mean a_g over the test split).
// Evaluate metrics: accuracy, loss, num_samples, gate_global_weight (with the received G).
#pragma once
#include <memory>
#include <string>

#include "fedpp/algorithms/common/averaging.hpp"
#include "fedpp/algorithms/common/hetero.hpp"
#include "fedpp/fl/training.hpp"

namespace fedpp {

// Switch Normalization (Luo et al., ICLR 2019) of an image batch [B, C, ...]: the mean and the
// variance are learned softmax mixtures of instance (per sample and channel), layer (per sample)
// and batch (per channel; running averages in eval mode) statistics, then a per-channel affine.
class SwitchNormImpl : public torch::nn::Module {
 public:
  explicit SwitchNormImpl(int64_t channels, double momentum = 0.1, double eps = 1e-5);
  torch::Tensor forward(torch::Tensor x);  // x [B, C, ...] -> same shape

 private:
  int64_t c_;
  double momentum_, eps_;
  torch::Tensor weight_, bias_, mean_weight_, var_weight_, running_mean_, running_var_;
};
TORCH_MODULE(SwitchNorm);

// The gate H_k. forward: x [B, ...] (flattened inside) -> weights [B, 2] = (a_g, a_l), rows
// summing to 1. `input_shape` is one sample's shape (C, H, W); `norm` one of layernorm,
// batchnorm, switchnorm (over the image, before flattening), none.
class MoeGateImpl : public torch::nn::Module {
 public:
  MoeGateImpl(const std::vector<int64_t>& input_shape, int64_t hidden, const std::string& norm);
  // Sets the output layer's bias so that a_l = p for a zero hidden contribution (0 < p < 1).
  void init_towards_local(double p);
  torch::Tensor forward(torch::Tensor x);
  // Multiply-adds of one forward pass of one sample.
  int64_t macs_per_sample() const;

 private:
  int64_t d_, m_;
  std::string norm_kind_;
  torch::nn::LayerNorm ln_{nullptr};
  torch::nn::BatchNorm1d bn_{nullptr};
  SwitchNorm sn_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(MoeGate);

// How the two experts are mixed (fedmoe.mix).
enum class MoeMix { kGate, kFixed, kLocalOnly, kGlobalOnly };

// One client's mixture, built from modules it does not own (the worker's caches).
struct MoeForward {
  Model* global = nullptr;  // G: features() used
  Model* local = nullptr;   // F_k and P_k: features() and head() used
  MoeGateImpl* gate = nullptr;  // H_k (used only when mix == kGate)
  MoeMix mix = MoeMix::kGate;
  // Mixing weights [B, 2] (a_g, a_l) for input x.
  torch::Tensor weights(const torch::Tensor& x) const;
  // logits = head(a_g * G(x) + a_l * F(x)); *w_out receives the weights when given.
  torch::Tensor operator()(const torch::Tensor& x, torch::Tensor* w_out = nullptr) const;
};

class FedMoeServer : public AveragingServer {
 public:
  explicit FedMoeServer(const AlgorithmSetup& setup);
  // Personalised evaluation: each client mixes the current G with its private parts.
  std::optional<Message> configure_evaluate(int64_t round, int64_t client_id) override;
  const NamedTensors& global_expert() const { return global_; }  // G's feature tensors
};

class FedMoeClient : public ClientAlgorithm {
 public:
  explicit FedMoeClient(const AlgorithmSetup& setup);
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;
  // The client's MoE as a composite "fedmoe" model: tensors "global." (G's feature tensors, from
  // `shared`: the server's evaluation message), "local." (F_k and P_k: the client's zoo model)
  // and "gate." (H_k); parts name global_expert, local (zoo models), mix, gate_norm and
  // gate_hidden. nullopt when the client never trained or `shared` holds no global expert.
  // scripts/fedpp_models.py builds the PyTorch module (docs/models.md).
  std::optional<ExportedModel> personal_model(int64_t client_id, const ClientState& state,
                                              const Message& shared) const override;

 private:
  // The client's mixture with G from `in` and private parts from ctx.state (or fresh).
  MoeForward load(const Message& in, const ClientContext& ctx);
  struct Eval {
    EvalStats stats;
    double gate_global = 0.0;
  };
  Eval evaluate_mixture(const MoeForward& moe, const Dataset& test) const;

  AlgorithmSetup setup_;
  TrainOptions train_;
  std::vector<std::string> models_;  // zoo model of every client
  MoeMix mix_;
  double gate_lr_;
  double gate_init_local_;
  int64_t gate_hidden_;
  std::string gate_norm_;
  ModelPtr global_;                  // this worker's G (weights arrive with every message)
  std::vector<std::string> global_names_;
  MoeGate gate_{nullptr};            // this worker's gate (weights from the client's state)
  PrivateModels locals_;
};

AlgorithmInfo fedmoe_info();

}  // namespace fedpp
