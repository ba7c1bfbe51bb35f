// Codec throughput on a whole FedAvg CNN (1,663,370 float parameters, methods/feddropout.md):
// one iteration encodes (or decodes) every tensor of the model once, on one thread, with the
// reference experiments' min_elements = 10000. Counters: bytes per model and the compression
// ratio against float32.
//   bench_codec --benchmark_filter=kashin
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "fedpp/runtime/threads.hpp"
#include "fedpp/codec/codec.hpp"

namespace {

const std::vector<std::vector<int64_t>> kShapes = {{32, 1, 5, 5},    {32}, {64, 32, 5, 5}, {64},
                                                   {512, 3136},      {512}, {10, 512},     {10}};

const std::vector<torch::Tensor>& model() {
  static const std::vector<torch::Tensor> tensors = [] {
    torch::manual_seed(0);
    std::vector<torch::Tensor> ts;
    for (const auto& s : kShapes) ts.push_back(torch::randn(s) * 0.05);
    return ts;
  }();
  return tensors;
}

double model_floats() {
  double n = 0;
  for (const auto& t : model()) n += double(t.numel());
  return n;
}

std::vector<std::string> encode_model(const fedpp::Pipeline& p, size_t* bytes) {
  std::vector<std::string> out;
  *bytes = 0;
  for (size_t i = 0; i < model().size(); ++i) {
    out.push_back(p.encode(model()[i], 1000 + i));
    *bytes += out.back().size();
  }
  return out;
}

void set_counters(benchmark::State& state, size_t bytes) {
  state.counters["bytes_per_model"] = double(bytes);
  state.counters["ratio_vs_f32"] = 4.0 * model_floats() / double(bytes);
}

void BM_Encode(benchmark::State& state, fedpp::CodecSpec spec) {
  const fedpp::Pipeline p(spec);
  size_t bytes = 0;
  for (auto _ : state) benchmark::DoNotOptimize(encode_model(p, &bytes));
  set_counters(state, bytes);
}

void BM_Decode(benchmark::State& state, fedpp::CodecSpec spec) {
  const fedpp::Pipeline p(spec);
  size_t bytes = 0;
  const std::vector<std::string> enc = encode_model(p, &bytes);
  for (auto _ : state)
    for (size_t i = 0; i < enc.size(); ++i)
      benchmark::DoNotOptimize(p.decode(enc[i], kShapes[i], 1000 + i));
  set_counters(state, bytes);
}

void register_all() {
  std::vector<fedpp::CodecSpec> specs;
  fedpp::CodecSpec raw;
  specs.push_back(raw);
  fedpp::CodecSpec f16;
  f16.float16 = true;
  specs.push_back(f16);
  for (const char* transform : {"identity", "hadamard", "kashin"}) {
    for (double s : {1.0, 0.5, 0.25}) {
      for (int q : {8, 4, 2, 1}) {
        fedpp::CodecSpec c;
        c.transform = transform;
        c.subsample = s;
        c.bits = q;
        specs.push_back(c);
      }
    }
  }
  for (const auto& c : specs) {
    const std::string label = c.lossless() ? "float32" : c.describe();
    benchmark::RegisterBenchmark(("encode/" + label).c_str(), BM_Encode, c)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("decode/" + label).c_str(), BM_Decode, c)
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  fedpp::use_huge_pages(argv);  // may re-execute this program once (runtime/threads.hpp)
  torch::set_num_threads(1);  // the codec itself is single-threaded; measure one core
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
