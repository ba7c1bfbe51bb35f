// The `fedpp` binary: run an experiment, list models and algorithms, draw reports.
// Every user error ends in one line "fedpp: error: ..." and exit status 2.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "fedpp/cli/deploy.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/data/loaders.hpp"
#include "fedpp/fl/algorithm.hpp"
#include "fedpp/fl/training.hpp"
#include "fedpp/models/model.hpp"
#include "fedpp/models/state_dict.hpp"
#include "fedpp/report/run_writer.hpp"
#include "fedpp/runtime/mpi.hpp"
#include "fedpp/runtime/simulation.hpp"
#include "fedpp/runtime/threads.hpp"

namespace {

void print_done(const std::vector<fedpp::Row>& rows) {
  const auto& last = rows.back();
  double wall = 0;
  for (const auto& r : rows) wall += r.at("wall_s");
  std::string acc = last.count("accuracy") ? fmt::format("accuracy {:.4f}", last.at("accuracy"))
                                           : std::string();
  if (last.count("personal_accuracy_mean"))
    acc += fmt::format("{}personal accuracy {:.4f}", acc.empty() ? "" : ", ",
                       last.at("personal_accuracy_mean"));
  spdlog::info("done: {} after {} rounds in {:.1f} s", acc, rows.size(), wall);
}

int cmd_run(const std::string& path, const std::vector<std::string>& sets,
            const std::string& out, bool check_only, bool resume) {
  auto cfg = fedpp::Config::from_file(path);
  for (const auto& s : sets) cfg.set(s);
  if (check_only) cfg.set("output.dir=\"\"");  // --check writes nothing
  else if (!out.empty()) cfg.set("output.dir=\"" + out + "\"");
  if (const int world = fedpp::mpi_launch_size(); world > 1 && !check_only) {
#ifdef FEDPP_HAVE_MPI
    auto rows = fedpp::run_mpi(cfg, resume);  // empty on the client ranks
    if (!rows.empty()) print_done(rows);
    return 0;
#else
    throw fedpp::Error("started by an MPI launcher with " + std::to_string(world) +
                       " processes, but this fedpp was built without MPI: install "
                       "libopenmpi-dev and rebuild (CMake option FEDPP_MPI finds it), or run "
                       "fedpp without mpirun");
#endif
  }
  fedpp::Simulation sim(cfg);  // reads and validates every key, loads and partitions the data
  if (check_only) {
    std::printf("ok: %s (%s, %zu clients, %lld rounds)\n", path.c_str(),
                sim.options().algorithm.c_str(), sim.data().clients.size(),
                static_cast<long long>(sim.options().rounds));
    return 0;
  }
  spdlog::info("fedpp run: {} ({}), {} clients, {} rounds, results in {}",
               sim.options().algorithm, path, sim.data().clients.size(), sim.options().rounds,
               sim.options().output_dir.empty() ? "(none)" : sim.options().output_dir);
  if (resume) sim.resume();
  print_done(sim.run());
  return 0;
}

// fedpp eval: a saved model (global_model.pt, or a PyTorch state dict of a zoo model) scored on
// the config's global test set, or run on given inputs with the logits written out.
int cmd_eval(const std::string& model_path, const std::string& config_path,
             const std::vector<std::string>& sets, const std::string& inputs,
             const std::string& logits_out) {
  auto cfg = fedpp::Config::from_file(config_path);
  for (const auto& s : sets) cfg.set(s);
  const auto name = cfg.get_choice("model.name", "fedavg_cnn", fedpp::model_names());
  auto data = fedpp::load_federated_data(cfg);
  auto model = fedpp::make_model(name, fedpp::spec_of(*data));
  auto file = fedpp::load_state_dict(model_path);
  fedpp::check_state_dict_fits(file, *model, name, model_path);
  fedpp::load_module_state(*model, file);
  model->eval();
  torch::NoGradGuard no_grad;
  if (!inputs.empty()) {
    FEDPP_CHECK(!logits_out.empty(), "--inputs needs --logits OUT.pt (where to write the logits)");
    auto x = fedpp::load_tensor(inputs).to(torch::kFloat);
    const auto& shape = fedpp::spec_of(*data).input_shape;
    std::vector<int64_t> want{x.dim() > 0 ? x.size(0) : 0};
    want.insert(want.end(), shape.begin(), shape.end());
    FEDPP_CHECK(x.sizes() == c10::IntArrayRef(want),
                "inputs '" + inputs + "' have shape " + c10::str(x.sizes()) + ", the model needs " +
                    c10::str(c10::IntArrayRef(want)) + " (N images of the config's data shape)");
    fedpp::NamedTensors out;
    out.set("logits", model->forward(x));
    fedpp::save_state_dict(out, logits_out);
    std::printf("wrote logits of %lld inputs to %s\n", static_cast<long long>(x.size(0)),
                logits_out.c_str());
    return 0;
  }
  const auto& test = data->global_test;
  FEDPP_CHECK(test.size() > 0, "the config's data has no global test set to evaluate on");
  auto s = fedpp::evaluate_logits(test, [&](const torch::Tensor& x) { return model->forward(x); });
  std::printf("accuracy %.4f  loss %.4f  on %lld test images (%s)\n", s.accuracy, s.loss,
              static_cast<long long>(s.samples), test.name.c_str());
  return 0;
}

// fedpp data: the tensors fedpp feeds the models, for analysis outside fedpp (e.g. scoring an
// exported personalised model in PyTorch): one client's train and test splits, or the global
// test set, as a dict of tensors that torch.load reads (x: float [N, C, H, W] after fedpp's
// normalisation, y: int64 [N]).
// With --client-folders DIR: every client's splits as a folder DIR/client_<k> in the data set's
// own file format, which data.client_dirs (fedpp run) and fedpp join --data read back to the
// same tensors; prints the keys that do so.
int cmd_client_folders(const fedpp::Config& cfg, const fedpp::FederatedData& data,
                       const std::string& dir) {
  FEDPP_CHECK(!cfg.has("data.client_dirs"),
              "the config already reads client folders (data.client_dirs); --client-folders "
              "writes them from a partition: give a config without data.client_dirs");
  const auto n = static_cast<int64_t>(data.clients.size());
  for (int64_t k = 0; k < n; ++k) {
    const auto& c = data.clients[static_cast<size_t>(k)];
    fedpp::write_folder_splits(cfg, c.train, c.test, data.stats,
                               dir + "/client_" + std::to_string(k));
  }
  auto list = [](const std::vector<double>& v) {
    std::string s = "[";
    char buf[32];
    for (size_t i = 0; i < v.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%.17g", v[i]);  // exact: the run normalises alike
      s += (i ? "," : "") + std::string(buf);
    }
    return s + "]";
  };
  std::printf("wrote the train and test splits of %lld clients to %s/client_0 .. client_%lld\n"
              "read them with (the partition keys are then ignored):\n"
              "  --set 'data.client_dirs=\"%s/client_{k}\"' --set 'data.mean=%s' "
              "--set 'data.std=%s' --set data.subset_train=0\n",
              static_cast<long long>(n), dir.c_str(), static_cast<long long>(n - 1), dir.c_str(),
              list(data.stats.mean).c_str(), list(data.stats.std).c_str());
  return 0;
}

int cmd_data(const std::string& config_path, const std::vector<std::string>& sets,
             int64_t client, const std::string& out, const std::string& folders) {
  auto cfg = fedpp::Config::from_file(config_path);
  for (const auto& s : sets) cfg.set(s);
  FEDPP_CHECK(out.empty() != folders.empty(),
              "fedpp data writes either a tensor file (--out FILE.pt) or client folders "
              "(--client-folders DIR): give one of the two");
  auto data = fedpp::load_federated_data(cfg);
  if (!folders.empty()) return cmd_client_folders(cfg, *data, folders);
  fedpp::NamedTensors t;
  if (client < 0) {
    FEDPP_CHECK(data->global_test.size() > 0, "the config's data has no global test set: give "
                                              "--client K for a client's splits");
    t.set("test_x", data->global_test.inputs());
    t.set("test_y", data->global_test.y);
  } else {
    const auto n = static_cast<int64_t>(data->clients.size());
    FEDPP_CHECK(client < n, "--client " + std::to_string(client) + " is out of range: the " +
                                "config's partition has clients 0.." + std::to_string(n - 1));
    const auto& c = data->clients[static_cast<size_t>(client)];
    t.set("train_x", c.train.inputs());
    t.set("train_y", c.train.y);
    t.set("test_x", c.test.inputs());
    t.set("test_y", c.test.y);
  }
  fedpp::save_state_dict(t, out);
  const std::string what = client < 0 ? std::string("the global test set")
                                       : "client " + std::to_string(client) + "'s splits";
  std::printf("wrote %s of %s to %s\n", what.c_str(), config_path.c_str(), out.c_str());
  return 0;
}

int cmd_models(const std::vector<int64_t>& shape, int64_t classes) {
  fedpp::ModelSpec spec{shape, classes};
  std::printf("%-18s %14s %16s  %s\n", "model", "parameters", "MACs/sample", "description");
  for (const auto& name : fedpp::model_names()) {
    try {
      auto m = fedpp::make_model(name, spec);
      std::printf("%-18s %14lld %16lld  %s\n", name.c_str(),
                  static_cast<long long>(fedpp::count_parameters(*m)),
                  static_cast<long long>(m->macs_per_sample()),
                  fedpp::model_description(name).c_str());
    } catch (const fedpp::Error& e) {
      std::printf("%-18s %14s %16s  (%s)\n", name.c_str(), "-", "-", e.what());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fedpp::use_huge_pages(argv);  // may re-execute this program once (runtime/threads.hpp)
  CLI::App app{"fedpp: federated learning on heterogeneous clients"};
  app.require_subcommand(1);

  auto* run = app.add_subcommand("run", "Run an experiment in simulation");
  std::string config_path, out_dir;
  std::vector<std::string> sets;
  run->add_option("config", config_path, "experiment config (TOML)")->required();
  run->add_option("--set", sets, "override a config key: --set train.lr=0.05 (repeatable)");
  run->add_option("--out", out_dir, "results folder (overrides output.dir)");
  bool check_only = false;
  run->add_flag("--check", check_only,
                "validate the config (every key, the data, the models) and exit without training");
  bool resume = false;
  run->add_flag("--resume", resume,
                "continue the run in output.dir (--out) from its last checkpoint "
                "(output.checkpoint_every), with the config it was started with");

  auto* data_cmd = app.add_subcommand(
      "data", "Write the tensors fedpp trains and tests on (a client's splits or the global test "
              "set) for torch.load");
  std::string data_config, data_out;
  std::vector<std::string> data_sets;
  int64_t data_client = -1;
  data_cmd->add_option("config", data_config, "experiment config (TOML)")->required();
  data_cmd->add_option("--set", data_sets, "override a config key (repeatable)");
  data_cmd->add_option("--client", data_client,
                       "this client's train and test splits (default: the global test set)");
  data_cmd->add_option("--out", data_out, "output file (.pt)");
  std::string data_folders;
  data_cmd->add_option("--client-folders", data_folders,
                       "instead: write every client's splits as DIR/client_<k> in the data set's "
                       "file format, for data.client_dirs and fedpp join --data");

  auto* models = app.add_subcommand("models", "List the model zoo with sizes and costs");
  std::vector<int64_t> shape{1, 28, 28};
  int64_t classes = 10;
  models->add_option("--input", shape, "input shape C H W")->expected(3);
  models->add_option("--classes", classes, "number of classes");

  auto* eval = app.add_subcommand("eval", "Score a saved model (global_model.pt) on a config's test set");
  std::string eval_model, eval_config, eval_inputs, eval_logits;
  std::vector<std::string> eval_sets;
  eval->add_option("model", eval_model, "model file (a PyTorch state dict)")->required();
  eval->add_option("config", eval_config, "config naming model.name and the data")->required();
  eval->add_option("--set", eval_sets, "override a config key (repeatable)");
  eval->add_option("--inputs", eval_inputs, "instead: run the model on this tensor file (torch.save(x, path))");
  eval->add_option("--logits", eval_logits, "with --inputs: write the logits here");

  auto* algos = app.add_subcommand("algorithms", "List the algorithms");

  auto* report = app.add_subcommand("report", "Plot accuracy vs rounds and vs bytes for runs");
  std::vector<std::string> runs;
  std::string report_out = "report", metric = "auto";
  report->add_option("runs", runs, "run folders")->required();
  report->add_option("--out", report_out, "output folder for the plots");
  report->add_option("--metric", metric, "column to plot (accuracy, personal_accuracy_mean)");

  fedpp::add_deploy_commands(app);  // serve, join, tokens: run in their callbacks

  spdlog::set_pattern("[%H:%M:%S] %v");
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    if (*run) return cmd_run(config_path, sets, out_dir, check_only, resume);
    if (*models) return cmd_models(shape, classes);
    if (*data_cmd) return cmd_data(data_config, data_sets, data_client, data_out, data_folders);
    if (*eval) return cmd_eval(eval_model, eval_config, eval_sets, eval_inputs, eval_logits);
    if (*algos) {
      for (const auto& n : fedpp::algorithm_names())
        std::printf("%-14s %s\n", n.c_str(), fedpp::find_algorithm(n).description.c_str());
      return 0;
    }
    if (*report) {
      for (const auto& p : fedpp::plot_runs(runs, report_out, metric))
        std::printf("%s\n", p.c_str());
      return 0;
    }
  } catch (const fedpp::Error& e) {
    std::fprintf(stderr, "fedpp: error: %s\n", e.what());
    return 2;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "fedpp: error: %s\n", e.what_without_backtrace());
    return 2;
  } catch (const std::exception& e) {  // file system, allocation, ...: still one line, no abort
    std::fprintf(stderr, "fedpp: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
