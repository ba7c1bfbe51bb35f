#include "fedpp/runtime/grpc_client.hpp"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <csignal>
#include <filesystem>
#include <limits>
#include <optional>
#include <thread>

#include "fedpp/core/error.hpp"
#include "fedpp/core/files.hpp"
#include "fedpp/runtime/chunks.hpp"
#include "fedpp/runtime/grpc_auth.hpp"
#include "fedpp/runtime/grpc_bytes.hpp"
#include "fedpp/runtime/client_pool.hpp"
#include "fedpp/fl/wire.hpp"
#include "fedpp/proto/fedpp.grpc.pb.h"
#include "fedpp/runtime/grpc_server.hpp"
#include "fedpp/runtime/server_loop.hpp"
#include "fedpp/runtime/run_identity.hpp"
#include "fedpp/runtime/simulation.hpp"
#include "fedpp/runtime/state_store.hpp"
#include "fedpp/runtime/threads.hpp"

namespace fedpp {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using grpc::Status;
using grpc::StatusCode;

namespace {
double secs_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

struct FederationClient::Impl {
  Config cfg;            // checked against the server's keys at the first join
  std::string identity;  // run_identity(cfg), taken before any key is marked known
  JoinOptions jo;
  RunOptions opt;
  DeployOptions dep;
  int64_t threads = 1;
  std::shared_ptr<const FederatedData> data;
  std::unique_ptr<ClientRunner> runner;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<wire::Federation::Stub> stub;
  // FetchTask and SendReply called with raw buffers (fetch(), send()); registered on `channel`
  // once.
  std::optional<grpc::internal::RpcMethod> fetch_method, send_method;
  std::string run_id;
  bool tls_hint_given = false;
  ClientStats stats;
  // The newest evaluation task (round, bytes): the server's part of an exported personalised
  // model (output.save_client_models), e.g. FedMoE's global expert.
  int64_t last_eval_round = 0;
  std::string last_eval_task;

  // Retry state: time of the last successful call and the current backoff.
  Clock::time_point last_ok = Clock::now();
  double backoff_s = 0.1;
  bool reconnected = false;

  std::unique_ptr<grpc::ClientContext> context(double timeout_s) {
    auto c = std::make_unique<grpc::ClientContext>();
    c->AddMetadata(kClientIdHeader, std::to_string(jo.client_id));
    c->AddMetadata(kTokenHeader, jo.token);
    // Wait for the connection within the deadline rather than fail at once: a call that waits
    // is also what drives a reconnection attempt forward (gRPC polls in the calling thread).
    c->set_wait_for_ready(true);
    c->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
    return c;
  }
  // A task over deploy.max_message_bytes, inlined or announced for FetchTask: fatal.
  Error task_too_large(uint64_t bytes) const {
    return Error("the server sent a task of " + std::to_string(bytes) +
                 " bytes, more than deploy.max_message_bytes = " +
                 std::to_string(dep.max_message_bytes) + ": raise it on both ends");
  }
  // Seconds allowed for moving `bytes`: generous, at a floor of 1 MB/s.
  static double transfer_timeout_s(uint64_t bytes) { return 60.0 + static_cast<double>(bytes) / 1e6; }

  void ok() {
    last_ok = Clock::now();
    backoff_s = 0.1;
  }

  // A failed call: fatal errors throw, transient ones sleep (backoff) so that the caller retries.
  void failed(const Status& s, const char* what) {
    if (s.error_code() == StatusCode::PERMISSION_DENIED)
      throw Error("the server refused client " + std::to_string(jo.client_id) + " (" +
                  s.error_message() + "): check --client-id and --token" +
                  (jo.tls_cert.empty() ? "" : ", and the client certificate"));
    const bool tls = !jo.tls_ca.empty();
    // Over TLS a refused handshake (unknown CA, a name that does not match) looks like an
    // unreachable server to gRPC: say so at once, not only when giving up.
    if (tls && run_id.empty() && !tls_hint_given) {
      const std::string host = jo.server.substr(0, jo.server.rfind(':'));
      spdlog::warn("client {}: no TLS connection to {} yet ({}): if this persists, check that "
                   "--tls-ca signed the server's certificate and that the certificate names {} "
                   "(or give --tls-server-name)",
                   jo.client_id, jo.server, s.error_message(), host);
      tls_hint_given = true;
    }
    if (secs_since(last_ok) > dep.client_give_up_s)
      throw Error("server " + jo.server + " unreachable for " +
                  std::to_string(static_cast<int64_t>(secs_since(last_ok))) + " s (last error in " +
                  what + ": " + s.error_message() +
                  "); giving up (deploy.client_give_up_s). Check --server and that `fedpp serve` "
                  "runs" +
                  (tls ? std::string(", and the TLS settings: --tls-ca must be the CA that signed "
                                     "the server's certificate, whose name must match the host "
                                     "in --server (or --tls-server-name)")
                       : std::string(", and whether the server uses TLS (then give --tls-ca)")));
    spdlog::debug("client {}: {} failed ({}), retrying in {:.1f} s", jo.client_id, what,
                  s.error_message(), backoff_s);
    std::this_thread::sleep_for(std::chrono::duration<double>(backoff_s));
    backoff_s = std::min(5.0, backoff_s * 2);
    reconnected = true;
  }

  // ---- private state, one version per round ---------------------------------------------

  fs::path base() const { return fs::path(jo.state_dir) / run_id; }
  // The newest saved round < round (or <= round with `inclusive`); 0 when none.
  int64_t newest(int64_t round, bool inclusive) const {
    int64_t best = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(base(), ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("round_", 0) != 0) continue;
      const int64_t r = std::atoll(n.c_str() + 6);
      if ((r < round || (inclusive && r == round)) && r > best) best = r;
    }
    return best;
  }
  // The newest evaluation task kept in the state folder (see work()), after a restart.
  void load_eval_task() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(base(), ec)) {
      const auto n = e.path().filename().string();
      if (n.rfind("eval_task_", 0) != 0 || n.size() < 15) continue;
      int64_t r = 0;
      auto [p, err] = std::from_chars(n.data() + 10, n.data() + n.size() - 4, r);
      if (err != std::errc() || p != n.data() + n.size() - 4 || r <= last_eval_round) continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in.bad()) {
        last_eval_round = r;
        last_eval_task = std::move(bytes);
      }
    }
  }
  fs::path round_dir(int64_t r) const { return base() / ("round_" + std::to_string(r)); }
  ClientState load_state(int64_t from) const {
    if (from == 0) return ClientState{};
    return make_disk_store(round_dir(from).string())->load(jo.client_id);
  }

  // ---- the calls ------------------------------------------------------------------------

  void join() {
    wire::JoinRequest req;
    req.set_version(kWireVersion);
    while (true) {
      wire::JoinReply rep;
      // A small call: 10 s is ample, and a refused TLS handshake surfaces that soon (calls wait
      // for a connection, so gRPC reports it only as the deadline passing).
      auto ctx = context(10);
      Status s = stub->Join(ctx.get(), req, &rep);
      if (!s.ok()) {
        if (s.error_code() == StatusCode::FAILED_PRECONDITION) throw Error(s.error_message());
        failed(s, "Join");
        continue;
      }
      ok();
      // The run id names this client's state folder: never a path from the network.
      FEDPP_CHECK(!rep.run_id().empty() && rep.run_id().size() <= 64 &&
                      std::all_of(rep.run_id().begin(), rep.run_id().end(),
                                  [](char ch) {
                                    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
                                  }),
                  "the server sent a malformed run id (not 1-64 hex digits); refusing to use it "
                  "as a folder name: is " + jo.server + " a fedpp server of this version?");
      auto differ = [&](const std::string& key, const std::string& here, const std::string& there) {
        FEDPP_CHECK(here == there, "this client's config differs from the server's: " + key + " " +
                                       here + " here, " + there +
                                       " on the server; use the same config file on both ends");
      };
      differ("seed", std::to_string(opt.seed), std::to_string(rep.seed()));
      differ("algorithm.name", opt.algorithm, rep.algorithm());
      differ("number of clients (data.num_clients)", std::to_string(data->clients.size()),
             std::to_string(rep.num_clients()));
      differ("rounds", std::to_string(opt.rounds), std::to_string(rep.rounds()));
      // Every run-defining key this client reads or sets against the server's; then no key may
      // be one that neither end knows (a typo).
      const auto diff = identity_differences(identity, rep.run_identity());
      std::string keys;
      for (const auto& d : diff) keys += (keys.empty() ? "" : "; ") + d;
      FEDPP_CHECK(diff.empty(), "this client's config differs from the server's (" + keys +
                                    "); use the same config file on both ends");
      for (const auto& k : identity_keys(rep.run_identity())) cfg.mark_used(k);
      cfg.check_all_used();
      FEDPP_CHECK(run_id.empty() || run_id == rep.run_id(),
                  "the server started a new run (run id " + rep.run_id() + ", was " + run_id +
                      "): restart fedpp join to take part in it");
      if (run_id.empty())
        spdlog::info("client {} joined run {} at {}", jo.client_id, rep.run_id(), jo.server);
      run_id = rep.run_id();
      reconnected = false;
      return;
    }
  }

  // Downloads the announced task into *out, reusing *out's memory (the caller keeps one buffer
  // across rounds); a non-OK status when it failed.
  Status fetch(const wire::TaskHeader& h, std::string* out) {
    const auto t0 = Clock::now();
    wire::FetchRequest req;
    req.set_round(h.round());
    req.set_kind(h.kind());
    auto ctx = context(transfer_timeout_s(h.message_size()));
    // Raw buffers: each chunk's data is read where gRPC received it and copied once, into the
    // assembler (the server writes the same Chunk messages without protobuf; grpc_bytes.hpp).
    std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
        grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(channel.get(), *fetch_method,
                                                                       ctx.get(), req));
    grpc::ByteBuffer buf;
    std::vector<grpc::Slice> keep;
    std::vector<std::string_view> views;
    Pieces piece;
    std::optional<ChunkAssembler> assembler;
    auto keep_buffer = [&] {  // the receive buffer stays this client's, emptied
      if (assembler) *out = assembler->take();
      out->clear();
    };
    auto give_up = [&](StatusCode code, const std::string& why) {
      ctx->TryCancel();
      reader->Finish();
      keep_buffer();
      return Status(code, why);
    };
    while (reader->Read(&buf)) {
      uint64_t total = 0;
      if (!buffer_views(buf, &keep, &views))
        return give_up(StatusCode::DATA_LOSS, "a task chunk could not be read");
      if (auto why = read_chunk(views, &total, &piece); !why.empty())
        return give_up(StatusCode::DATA_LOSS, "the server sent a malformed task chunk: " + why);
      if (!assembler) {
        assembler.emplace(total, static_cast<uint64_t>(dep.max_message_bytes), std::move(*out));
        if (assembler->state() == ChunkAssembler::State::kTooLarge) {
          give_up(StatusCode::CANCELLED, "");
          throw task_too_large(total);
        }
      }
      for (auto p : piece.parts)
        if (!assembler->add(p))
          return give_up(StatusCode::DATA_LOSS, "the server sent more bytes than it announced");
    }
    Status s = reader->Finish();
    const double took = secs_since(t0);
    stats.fetch_s += took;
    stats.bytes_down += assembler ? static_cast<int64_t>(assembler->received()) : 0;
    if (!s.ok() || !(assembler && assembler->complete())) {
      keep_buffer();
      return s.ok() ? Status(StatusCode::DATA_LOSS, "task stream ended early") : s;
    }
    *out = assembler->take();
    stats.fetches.push_back({static_cast<int64_t>(out->size()), took});
    return s;
  }

  // Uploads a reply as raw buffers: each chunk is a hand-encoded prefix and a reference into
  // *bytes (grpc_bytes.hpp), so the reply is not copied into protobuf strings and again into
  // gRPC's buffers; the first chunk carries the header.
  Status send(const wire::TaskHeader& h, const std::shared_ptr<const std::string>& bytes,
              wire::Ack* ack) {
    const auto t0 = Clock::now();
    auto ctx = context(transfer_timeout_s(bytes->size()));
    std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer(
        grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(channel.get(), *send_method,
                                                                       ctx.get(), ack));
    wire::ReplyHeader hdr;
    hdr.set_round(h.round());
    hdr.set_kind(h.kind());
    hdr.set_total_size(bytes->size());
    const std::string header = hdr.SerializeAsString();
    const size_t chunk = static_cast<size_t>(dep.chunk_bytes), total = bytes->size();
    const grpc::Slice whole = share_slice(bytes);
    size_t off = 0;
    do {
      const size_t n = std::min(chunk, total - off);
      const std::string prefix = reply_chunk_prefix(n, off == 0 ? &header : nullptr);
      const grpc::ByteBuffer b =
          prefixed_buffer(prefix, n > 0 ? whole.sub(off, off + n) : grpc::Slice());
      if (!writer->Write(b)) break;  // the server ended the call: Finish() says why
      off += n;
    } while (off < total);
    writer->WritesDone();
    Status s = writer->Finish();
    if (s.ok()) {
      const double took = secs_since(t0);
      stats.send_s += took;
      stats.bytes_up += static_cast<int64_t>(total);
      stats.sends.push_back({static_cast<int64_t>(total), took});
    }
    return s;
  }

  std::string work(const wire::TaskHeader& h, const std::string& task) {
    const int64_t r = h.round(), c = jo.client_id;
    const ClientData& mine = data->clients[static_cast<size_t>(c)];
    if (h.kind() == wire::TaskHeader::FIT) {
      const int64_t from = newest(r, false);
      ClientState state = load_state(from);
      bool failed = false;
      std::string reply = runner->fit_or_report(r, c, task, mine, &state, &failed);
      if (jo.delay_s > 0)  // testing: a slow device
        std::this_thread::sleep_for(std::chrono::duration<double>(jo.delay_s));
      if (failed)  // reported to the server, which counts it as rejected; the state stays
        spdlog::warn("client {}: round {}: local training failed; the server is told so", c, r);
      // A client without private state (FedAvg, FedProx, ...) writes nothing: an fsync per
      // round (~2 ms on a VM's disk) is no cost to one device but serialises 50 clients that
      // share a disk (bench_deploy). Once any version exists (of any round: a redone round may
      // have left one), every fit writes its own, so that no stale version is read later.
      if (!state.empty() || newest(std::numeric_limits<int64_t>::max(), true) > 0) {
        make_disk_store(round_dir(r).string())->save(c, std::move(state));
        // Keep the version this fit started from (a resumed server may ask for round r again)
        // and the new one; drop older ones.
        std::error_code ec;
        for (int64_t k = newest(from, false); k > 0; k = newest(k, false))
          fs::remove_all(round_dir(k), ec);
      }
      ++stats.fits;
      return reply;
    }
    ++stats.evals;
    last_eval_round = r;  // an exported personalised model is built with the newest one
    last_eval_task = task;
    if (opt.save_client_models) {  // kept on disk too: a restarted client must export the same
      std::error_code mk;
      fs::create_directories(base(), mk);
      write_file_atomic((base() / ("eval_task_" + std::to_string(r) + ".bin")).string(), task,
                        "the client's --state-dir");
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(base(), ec)) {
        const auto n = e.path().filename().string();
        if (n.rfind("eval_task_", 0) == 0 && n != "eval_task_" + std::to_string(r) + ".bin")
          fs::remove(e.path(), ec);
      }
    }
    // The personalised model is written after every evaluation (the newest replaces the one
    // before), so that a client killed between hearing "done" and exporting still leaves the
    // model of the last round: the server it would rejoin is gone by then.
    ClientState state = load_state(newest(r, true));
    if (opt.save_client_models)
      runner->save_personal_model(r, c, task, state, (base() / "client_models").string());
    if (mine.test.size() == 0) return "";  // nothing to evaluate on: an empty reply says so
    return runner->evaluate(r, c, task, mine, &state);
  }

  void deliver(const wire::TaskHeader& h, std::string reply_bytes) {
    const auto reply = std::make_shared<const std::string>(std::move(reply_bytes));
    while (true) {
      wire::Ack ack;
      Status s = send(h, reply, &ack);
      if (s.ok()) {
        ok();
        if (!ack.accepted())
          spdlog::warn("client {}: round {}: the server left out this reply: {}", jo.client_id,
                       h.round(), ack.reason());
        return;
      }
      const auto code = s.error_code();
      if (code == StatusCode::FAILED_PRECONDITION || code == StatusCode::RESOURCE_EXHAUSTED ||
          code == StatusCode::INVALID_ARGUMENT) {
        spdlog::warn("client {}: round {}: reply refused: {}", jo.client_id, h.round(),
                     s.error_message());
        return;
      }
      failed(s, "SendReply");
    }
  }

  ClientStats run() {
    set_worker_threads(static_cast<int>(threads));
    join();
    std::string task;  // one buffer for every download: its pages are touched once, not per task
    while (true) {
      if (reconnected) join();
      wire::PollRequest req;
      req.set_wait_s(dep.poll_s);
      // A task up to one chunk may come inside the answer (the channel takes messages of
      // chunk_bytes + 64 KiB), and never one over this client's deploy.max_message_bytes.
      req.set_max_inline_bytes(
          static_cast<uint64_t>(std::min(dep.chunk_bytes, dep.max_message_bytes)));
      wire::TaskHeader h;
      auto ctx = context(dep.poll_s + 30);
      Status s = stub->Poll(ctx.get(), req, &h);
      if (!s.ok()) {
        failed(s, "Poll");
        continue;
      }
      ok();
      if (h.kind() == wire::TaskHeader::DONE) {
        spdlog::info("client {}: the run is done ({} fits, {} evaluations; {} tasks came inside "
                     "the poll's answer, {} by FetchTask)",
                     jo.client_id, stats.fits, stats.evals, stats.inline_tasks,
                     stats.fetches.size());
        if (opt.save_client_models) {
          const auto dir = (base() / "client_models").string();
          const auto last = newest(std::numeric_limits<int64_t>::max(), true);
          if (last_eval_round == 0) load_eval_task();  // restarted after its last evaluation
          if (!runner->save_personal_model(last_eval_round, jo.client_id, last_eval_task,
                                           load_state(last), dir)
                   .empty())
            spdlog::info("client {}: personalised model written to {}/client_{}.pt", jo.client_id,
                         dir, jo.client_id);
        }
        return stats;
      }
      if (h.kind() == wire::TaskHeader::WAIT) continue;
      if (h.task().size() == h.message_size()) {  // inlined: no FetchTask call
        if (h.message_size() > static_cast<uint64_t>(dep.max_message_bytes))
          throw task_too_large(h.message_size());
        task.assign(h.task());  // into the kept buffer
        ++stats.inline_tasks;
        stats.bytes_down += static_cast<int64_t>(task.size());
      } else {
        s = fetch(h, &task);
        if (!s.ok()) {
          if (s.error_code() != StatusCode::FAILED_PRECONDITION) failed(s, "FetchTask");
          continue;
        }
        ok();
      }
      if (jo.crash_at_round == h.round() && h.kind() == wire::TaskHeader::FIT) {
        spdlog::error("--crash-at-round {}: killing client {} mid-round (testing)", h.round(),
                      jo.client_id);
        std::raise(SIGKILL);
      }
      deliver(h, work(h, task));
    }
  }
};

FederationClient::FederationClient(Config cfg, JoinOptions jo,
                                   std::shared_ptr<const FederatedData> data)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  FEDPP_CHECK(!jo.server.empty(), "fedpp join needs --server HOST:PORT");
  FEDPP_CHECK(!jo.token.empty(), "fedpp join needs the client's token (--token or --token-file)");
  if (jo.state_dir.empty()) jo.state_dir = "fedpp_state/client_" + std::to_string(jo.client_id);
  s.opt = RunOptions::from_config(cfg);
  s.dep = DeployOptions::from_config(cfg);
  s.threads = ClientPoolOptions::from_config(cfg).threads;
  FEDPP_CHECK(jo.client_id >= 0, "--client-id " + std::to_string(jo.client_id) +
                                     " is out of range: client ids start at 0");
  if (data) {
    s.data = std::move(data);
    cfg.mark_used("data");  // partitioned from this config by the caller, which read data.*
  } else {
    s.data = load_federated_data(cfg, jo.client_id, jo.data_dir);  // client folders: its own
  }
  const int64_t n = static_cast<int64_t>(s.data->clients.size());
  FEDPP_CHECK(jo.client_id >= 0 && jo.client_id < n,
              "--client-id " + std::to_string(jo.client_id) + " is out of range: the config's " +
                  "partition (data.num_clients) has clients 0.." + std::to_string(n - 1));
  AlgorithmSetup setup = setup_for(cfg, s.opt, *s.data);
  s.runner = std::make_unique<ClientRunner>(s.opt, find_algorithm(s.opt.algorithm).make_client(setup));
  // Keys outside the run identity may differ between the machines of a run; each end reads its
  // own deploy.*, and the server's runtime.* and output.* are not the client's business.
  for (const char* section : {"deploy", "runtime", "output"}) cfg.mark_used(section);
  cfg.mark_used("fleet");  // simulated devices: the simulation's business (runtime/fleet.hpp)
  s.cfg = cfg;
  s.identity = run_identity(cfg);

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(s.dep.chunk_bytes + 65536));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own per client
  if (!jo.tls_ca.empty() && !jo.tls_server_name.empty())
    args.SetSslTargetNameOverride(jo.tls_server_name);
  auto creds = client_credentials(jo.tls_ca, jo.tls_cert, jo.tls_key, jo.client_id);
  s.channel = grpc::CreateCustomChannel(jo.server, creds, args);
  s.stub = wire::Federation::NewStub(s.channel);
  s.fetch_method.emplace("/fedpp.wire.Federation/FetchTask",
                         grpc::internal::RpcMethod::SERVER_STREAMING, s.channel);
  s.send_method.emplace("/fedpp.wire.Federation/SendReply",
                        grpc::internal::RpcMethod::CLIENT_STREAMING, s.channel);
  s.jo = std::move(jo);
}

FederationClient::~FederationClient() = default;

ClientStats FederationClient::run() { return impl_->run(); }

}  // namespace fedpp
