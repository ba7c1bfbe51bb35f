#include "fedpp/algorithms/common/distill.hpp"

#include "fedpp/core/error.hpp"

namespace fedpp {

namespace F = torch::nn::functional;

torch::Tensor kd_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                      double temperature) {
  FEDPP_CHECK(temperature > 0, "distillation temperature must be > 0");
  auto log_p_student = F::log_softmax(student_logits / temperature, F::LogSoftmaxFuncOptions(1));
  auto p_teacher = F::softmax(teacher_logits.detach() / temperature, F::SoftmaxFuncOptions(1));
  auto kl = F::kl_div(log_p_student, p_teacher, F::KLDivFuncOptions().reduction(torch::kBatchMean));
  return kl * (temperature * temperature);
}

void ClassMeans::put(NamedTensors& tensors, const std::string& name) const {
  tensors.set(name, means);
  tensors.set(name + "_counts", counts);
}

ClassMeans ClassMeans::get(const NamedTensors& tensors, const std::string& name,
                           int64_t classes) {
  FEDPP_CHECK(tensors.contains(name) && tensors.contains(name + "_counts"),
              "message lacks per-class tensors '" + name + "' and '" + name + "_counts'");
  ClassMeans m{tensors.at(name).to(torch::kFloat), tensors.at(name + "_counts").to(torch::kFloat)};
  FEDPP_CHECK(m.means.dim() == 2 && m.means.size(0) == classes && m.counts.dim() == 1 &&
                  m.counts.size(0) == classes,
              "per-class tensor '" + name + "' has shape " + c10::str(m.means.sizes()) +
                  " (counts " + c10::str(m.counts.sizes()) + "), expected [" +
                  std::to_string(classes) + ", D] and [" + std::to_string(classes) + "]");
  return m;
}

ClassMeans class_means(const torch::Tensor& values, const torch::Tensor& labels,
                       int64_t classes) {
  auto v = values.detach().to(torch::kFloat).cpu();
  auto y = labels.cpu();
  auto sums = torch::zeros({classes, v.size(1)}, torch::kFloat).index_add_(0, y, v);
  auto counts = torch::zeros({classes}, torch::kFloat)
                    .index_add_(0, y, torch::ones({y.size(0)}, torch::kFloat));
  return {sums / counts.clamp_min(1).unsqueeze(1), counts};
}

ClassMeans class_means_over(const Dataset& data,
                            const std::function<torch::Tensor(const torch::Tensor&)>& fn,
                            int64_t classes, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  torch::Tensor sums, counts = torch::zeros({classes}, torch::kFloat);
  for (int64_t start = 0; start < data.size(); start += batch_size) {
    int64_t end = std::min(data.size(), start + batch_size);
    auto part = class_means(fn(data.inputs(start, end)), data.y.slice(0, start, end), classes);
    auto s = part.means * part.counts.unsqueeze(1);
    sums = sums.defined() ? sums + s : s;
    counts += part.counts;
  }
  FEDPP_CHECK(sums.defined(), "cannot compute class means of an empty data set");
  return {sums / counts.clamp_min(1).unsqueeze(1), counts};
}

ClassMeans average_class_means(const std::vector<Reply>& replies, const std::string& name,
                               int64_t classes) {
  FEDPP_CHECK(!replies.empty(), "cannot average per-class tensors of zero replies");
  torch::Tensor sums, counts;
  for (const auto& r : replies) {
    ClassMeans m;
    try {
      m = ClassMeans::get(r.message.tensors, name, classes);
    } catch (const Error& e) {
      throw Error("client " + std::to_string(r.client_id) + ": " + e.what());
    }
    FEDPP_CHECK(!sums.defined() || m.means.sizes() == sums.sizes(),
                "client " + std::to_string(r.client_id) + " sent '" + name + "' of shape " +
                    c10::str(m.means.sizes()) + ", others " + c10::str(sums.sizes()) +
                    "; every client model needs the same representation size (hetero.models)");
    auto s = m.means.to(torch::kDouble) * m.counts.to(torch::kDouble).unsqueeze(1);
    sums = sums.defined() ? sums + s : s;
    counts = counts.defined() ? counts + m.counts.to(torch::kDouble) : m.counts.to(torch::kDouble);
  }
  return {(sums / counts.clamp_min(1).unsqueeze(1)).to(torch::kFloat), counts.to(torch::kFloat)};
}

namespace {
// Rows of the global table for each label, and a [B] 0/1 mask of rows whose class is present.
std::pair<torch::Tensor, torch::Tensor> targets_of(const torch::Tensor& labels,
                                                   const ClassMeans& global,
                                                   const torch::Device& dev) {
  auto y = labels.to(dev);
  auto t = global.means.to(dev).index_select(0, y);
  auto mask = global.counts.to(dev).index_select(0, y).gt(0).to(torch::kFloat);
  return {t, mask};
}
}  // namespace

torch::Tensor class_target_mse(const torch::Tensor& values, const torch::Tensor& labels,
                               const ClassMeans& global) {
  auto [t, mask] = targets_of(labels, global, values.device());
  auto sq = (values - t).pow(2) * mask.unsqueeze(1);
  return sq.sum() / static_cast<double>(values.numel());
}

torch::Tensor class_target_kd(const torch::Tensor& logits, const torch::Tensor& labels,
                              const ClassMeans& global, double temperature) {
  auto [t, mask] = targets_of(labels, global, logits.device());
  auto log_p = F::log_softmax(logits / temperature, F::LogSoftmaxFuncOptions(1));
  auto q = F::softmax(t / temperature, F::SoftmaxFuncOptions(1));
  auto per_row = (q * (q.clamp_min(1e-12).log() - log_p)).sum(1) * mask;
  return per_row.sum() / static_cast<double>(logits.size(0)) * (temperature * temperature);
}

Message evaluation_reply(const EvalStats& s) {
  Message out;
  out.metrics = {{"accuracy", s.accuracy}, {"loss", s.loss},
                 {"num_samples", static_cast<double>(s.samples)}};
  return out;
}

ClassMeansServer::ClassMeansServer(const AlgorithmSetup& setup, std::string name,
                                   bool send_on_evaluate)
    : name_(std::move(name)), classes_(setup.spec.num_classes),
      send_on_evaluate_(send_on_evaluate) {}

Message ClassMeansServer::configure_fit(int64_t, int64_t) { return save_state(); }

void ClassMeansServer::aggregate(int64_t, const std::vector<Reply>& replies) {
  if (replies.empty()) return;  // nothing arrived: keep the last global means
  global_ = average_class_means(replies, name_, classes_);
}

std::optional<Message> ClassMeansServer::configure_evaluate(int64_t round, int64_t client_id) {
  return send_on_evaluate_ ? configure_fit(round, client_id) : Message{};
}

Message ClassMeansServer::save_state() const {
  Message m;
  if (global_.means.defined()) global_.put(m.tensors, name_);
  return m;
}

void ClassMeansServer::load_state(const Message& state) {
  global_ = state.tensors.empty() ? ClassMeans{} : ClassMeans::get(state.tensors, name_, classes_);
}

}  // namespace fedpp
