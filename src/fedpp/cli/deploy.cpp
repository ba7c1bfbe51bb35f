#include "fedpp/cli/deploy.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>

#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/runtime/grpc_client.hpp"
#include "fedpp/runtime/grpc_server.hpp"

namespace fedpp {

namespace {

struct DeployArgs {
  std::string config;
  std::vector<std::string> sets;
  ServeOptions serve;
  JoinOptions join;
  std::string token_file;
};

Config load(const DeployArgs& a) {
  auto cfg = Config::from_file(a.config);
  for (const auto& s : a.sets) cfg.set(s);
  return cfg;
}

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

void add_deploy_commands(CLI::App& app) {
  auto args = std::make_shared<DeployArgs>();

  auto* serve = app.add_subcommand("serve", "Run the server of a deployment (gRPC)");
  serve->add_option("config", args->config, "experiment config (TOML)")->required();
  serve->add_option("--set", args->sets, "override a config key (repeatable)");
  serve->add_option("--listen", args->serve.listen,
                    "address to listen on, HOST:PORT (overrides deploy.listen)");
  serve->add_flag("--resume", args->serve.resume,
                  "continue from the last completed round in deploy.checkpoint_dir");
  serve->add_option("--crash-at-round", args->serve.crash_at_round,
                    "testing: kill the server once this round has a reply")
      ->group("");
  serve->callback([args] {
    FederationServer server(load(*args), args->serve);
    auto rows = server.run();
    const auto& last = rows.back();
    spdlog::info("done: {} rounds{}", rows.size(),
                 last.count("accuracy") ? fmt::format(", accuracy {:.4f}", last.at("accuracy"))
                                        : std::string());
  });

  auto* join = app.add_subcommand("join", "Run one client of a deployment (gRPC)");
  join->add_option("config", args->config, "experiment config (TOML), the server's")->required();
  join->add_option("--set", args->sets, "override a config key (repeatable)");
  join->add_option("--server", args->join.server, "the server, HOST:PORT")->required();
  join->add_option("--client-id", args->join.client_id, "this client's id, 0..N-1")->required();
  auto* tok = join->add_option("--token", args->join.token, "this client's token");
  auto* tokf = join->add_option("--token-file", args->token_file,
                                "file holding this client's token (kept out of `ps`)");
  tok->excludes(tokf);
  join->add_option("--data", args->join.data_dir,
                   "this client's own data folder (needs data.client_dirs in the config)");
  join->add_option("--state-dir", args->join.state_dir,
                   "where the client keeps its private state (default fedpp_state/client_ID)");
  join->add_option("--tls-ca", args->join.tls_ca,
                   "PEM certificate of the CA that signed the server's certificate: use TLS");
  join->add_option("--tls-cert", args->join.tls_cert, "client certificate (mutual TLS)");
  join->add_option("--tls-key", args->join.tls_key, "client private key (mutual TLS)");
  join->add_option("--tls-server-name", args->join.tls_server_name,
                   "name in the server's certificate, when --server uses another name or an IP");
  join->add_option("--crash-at-round", args->join.crash_at_round,
                   "testing: kill the client after it fetched this round's task")
      ->group("");
  join->add_option("--delay-s", args->join.delay_s,
                   "testing: a slow device, wait this many seconds after each fit")
      ->check(CLI::Range(0.0, 3600.0))
      ->group("");
  join->callback([args] {
    if (!args->token_file.empty())
      args->join.token = trim(read_named_file(args->token_file, "--token-file"));
    FederationClient client(load(*args), args->join);
    auto st = client.run();
    spdlog::info("client {}: {:.1f} MB down in {:.2f} s, {:.1f} MB up in {:.2f} s",
                 args->join.client_id, st.bytes_down / 1e6, st.fetch_s, st.bytes_up / 1e6,
                 st.send_s);
  });

  auto* tokens = app.add_subcommand(
      "tokens", "Print \"client_id token\" for every client from deploy.token_secret");
  tokens->add_option("config", args->config, "experiment config (TOML)")->required();
  tokens->add_option("--set", args->sets, "override a config key (repeatable)");
  tokens->callback([args] {
    auto cfg = load(*args);
    const auto secret = cfg.get_string("deploy.token_secret", "");
    FEDPP_CHECK(!secret.empty(), "fedpp tokens derives tokens from deploy.token_secret: set it "
                                 "(e.g. --set deploy.token_secret=\"$(openssl rand -hex 32)\")");
    // The partition has exactly data.num_clients clients (same default as data/partition.cpp).
    const int64_t n = cfg.get_int("data.num_clients", 10, 1);
    for (int64_t c = 0; c < n; ++c)
      std::printf("%lld %s\n", static_cast<long long>(c), derive_token(secret, c).c_str());
  });
}

}  // namespace fedpp
