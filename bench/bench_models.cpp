// Local training throughput of each zoo model: SGD steps (lr 0.01, cross-entropy) on batches of
// 64 random inputs, 2 intra-op threads, threads and malloc set as the runtimes set them
// (runtime/threads.hpp; FEDPP_MALLOC_TUNING=0 for glibc's defaults); items_per_second =
// training samples per wall-clock second. Inputs: 1x28x28 for fedavg_cnn and mlp, the 16x32x32
// feature map for the FedGKT server models, 3x32x32 otherwise; 10 classes.
#include <benchmark/benchmark.h>

#include <fedpp/models/model.hpp>
#include <fedpp/runtime/threads.hpp>

namespace {

std::vector<int64_t> natural_shape(const std::string& name) {
  if (name == "fedavg_cnn" || name == "mlp") return {1, 28, 28};
  if (name.find("_server") != std::string::npos) return {16, 32, 32};  // FedGKT feature map
  return {3, 32, 32};
}

void train_steps(benchmark::State& state, const std::string& name) {
  fedpp::set_worker_threads(2);  // as a simulation worker does: malloc tuned, OpenBLAS at 1
  torch::manual_seed(0);
  constexpr int64_t batch = 64;
  const auto shape = natural_shape(name);
  auto model = fedpp::make_model(name, {shape, 10});
  model->train();
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.01));
  auto x = torch::randn({batch, shape[0], shape[1], shape[2]});
  auto y = torch::randint(0, 10, {batch}, torch::kLong);
  // Untimed warm-up: oneDNN builds (JITs) its kernels on the first steps of each shape, which
  // would otherwise dominate the slow models' few timed iterations.
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    opt.step();
  }
  for (auto _ : state) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["params"] = static_cast<double>(fedpp::count_parameters(*model));
  state.counters["MMACs/sample"] = model->macs_per_sample() / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  fedpp::use_huge_pages(argv);  // may re-execute this program once (runtime/threads.hpp)
  for (const auto& name : fedpp::model_names())
    benchmark::RegisterBenchmark(("train_step/" + name).c_str(), train_steps, name)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();  // items_per_second from wall time: the step runs on 2 threads
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
