#include "fedpp/runtime/grpc_server.hpp"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "fedpp/core/error.hpp"
#include "fedpp/core/files.hpp"
#include "fedpp/fl/wire.hpp"
#include "fedpp/proto/fedpp.grpc.pb.h"
#include "fedpp/runtime/checkpoint.hpp"
#include "fedpp/runtime/chunks.hpp"
#include "fedpp/runtime/client_pool.hpp"
#include "fedpp/runtime/grpc_auth.hpp"
#include "fedpp/runtime/grpc_bytes.hpp"
#include "fedpp/runtime/server_loop.hpp"
#include "fedpp/runtime/run_identity.hpp"
#include "fedpp/runtime/simulation.hpp"
#include "fedpp/runtime/threads.hpp"

namespace fedpp {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using grpc::Status;
using grpc::StatusCode;

DeployOptions DeployOptions::from_config(const Config& cfg) {
  DeployOptions o;
  o.listen = cfg.get_string("deploy.listen", o.listen);
  o.round_timeout_s = cfg.get_double("deploy.round_timeout_s", o.round_timeout_s, 0.01, 1e8);
  o.min_replies = cfg.get_int("deploy.min_replies", o.min_replies, 0);
  o.max_message_bytes =
      cfg.get_int("deploy.max_message_bytes", o.max_message_bytes, 1024, int64_t{1} << 40);
  o.chunk_bytes = cfg.get_int("deploy.chunk_bytes", o.chunk_bytes, 1024, int64_t{64} << 20);
  o.max_inflight_bytes =
      cfg.get_int("deploy.max_inflight_bytes", o.max_inflight_bytes, 1024, int64_t{1} << 42);
  o.max_client_samples =
      cfg.get_int("deploy.max_client_samples", o.max_client_samples, 1, int64_t{1} << 40);
  o.poll_s = cfg.get_double("deploy.poll_s", o.poll_s, 0.01, 3600);
  o.client_give_up_s = cfg.get_double("deploy.client_give_up_s", o.client_give_up_s, 0, 1e8);
  o.checkpoint_dir = cfg.get_string("deploy.checkpoint_dir", "");
  o.tls_cert = cfg.get_string("deploy.tls_cert", "");
  o.tls_key = cfg.get_string("deploy.tls_key", "");
  o.tls_client_ca = cfg.get_string("deploy.tls_client_ca", "");
  o.tokens_file = cfg.get_string("deploy.tokens_file", "");
  o.token_secret = cfg.get_string("deploy.token_secret", "");
  return o;
}

namespace {

std::string random_run_id() {
  std::random_device rd;
  std::string id;
  static const char* hex = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) id += hex[rd() & 15];
  return id;
}

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
Clock::duration dur(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace

// Poll is served with gRPC's callback API (the other calls are synchronous): a long poll that
// waits is a parked reactor, not a blocked thread, so that 1,000 connected clients waiting for
// their task cost no thread each (bench_deploy --idle-clients). Join, FetchTask and SendReply
// hold a thread only while they work or move bytes.
using PollService = wire::Federation::WithCallbackMethod_Poll<wire::Federation::Service>;

struct FederationServer::Impl final : public PollService {
  enum class Phase { kIdle, kFit, kEval, kDone };

  // A long poll. Answered (Finish) exactly once, by whoever takes it out of `polls` (or by
  // Poll itself when it is not parked), and always outside `mu` (Finish may run gRPC
  // callbacks inline). gRPC deletes it via OnDone.
  struct PollReactor final : public grpc::ServerUnaryReactor {
    Impl* s;
    int64_t client;
    wire::TaskHeader* rep;
    Clock::time_point until;
    uint64_t max_inline;  // PollRequest.max_inline_bytes, capped by deploy.chunk_bytes
    // The task to copy into the answer (set by fill() under mu, copied by answer() outside
    // it), and the bytes it holds against kInlineBudget (inline_inflight) until OnDone.
    std::shared_ptr<const std::string> task;
    uint64_t charged = 0;
    PollReactor(Impl* server, int64_t c, wire::TaskHeader* reply, Clock::time_point t,
                uint64_t inline_max)
        : s(server), client(c), rep(reply), until(t), max_inline(inline_max) {}
    void OnCancel() override {  // the client went away or its deadline passed
      bool mine;
      {
        std::lock_guard<std::mutex> l(s->mu);
        mine = s->unpark(this);
      }
      if (mine) Finish(Status(StatusCode::CANCELLED, "poll cancelled"));
    }
    // Answers OK with what fill() put in `rep`, the inlined task copied in here.
    void answer() {
      if (task) rep->set_task(*task);
      task.reset();
      Finish(Status::OK);
    }
    void OnDone() override {
      if (charged > 0) {
        std::lock_guard<std::mutex> l(s->mu);
        s->inline_inflight -= charged;
      }
      delete this;
    }
  };
  // At most this many bytes of inlined tasks are held in answers not yet done (each is held
  // twice until then: copied into its answer, and serialized by gRPC); past it, tasks are
  // announced and fetched as before, so that 1,000 clients polling at once do not copy 1,000
  // tasks.
  static constexpr uint64_t kInlineBudget = uint64_t{64} << 20;

  Config cfg;
  ServeOptions sopt;
  RunOptions opt;
  DeployOptions dep;
  std::shared_ptr<const FederatedData> data;
  std::unique_ptr<ServerLoop> loop;
  std::vector<std::string> tokens;
  std::string run_id, fingerprint, ckpt_dir;
  std::vector<Row> rows;
  int64_t start_round = 1;
  int port = 0;

  // Shared with the handlers, under mu.
  std::mutex mu;
  std::condition_variable cv;
  Phase phase = Phase::kIdle;
  int64_t round = 0;
  std::map<int64_t, std::shared_ptr<const std::string>> tasks;
  std::set<int64_t> answered;
  size_t accepted = 0;
  size_t fit_target = 0;  // over-selection: replies the fit phase keeps (0 = every one)
  int64_t transport_rejected = 0;  // replies refused before ServerLoop saw them (oversized)
  std::map<int64_t, Clock::time_point> last_seen;
  std::set<int64_t> told_done;
  bool stopping = false;
  std::set<int64_t> streaming;   // clients with a reply stream open (one each at a time)
  uint64_t inflight_bytes = 0;   // sum of the announced sizes of the open reply streams
  int decoding = 0;              // replies being decoded outside the lock (close_phase waits)
  // Parked long polls: at most one per client (a newer poll answers the older one WAIT), and
  // their deadlines in order for the timer thread that answers them WAIT when their wait ends.
  std::map<int64_t, PollReactor*> polls;
  std::set<std::pair<Clock::time_point, int64_t>> poll_expiry;
  std::condition_variable timer_cv;
  uint64_t inline_inflight = 0;  // bytes of inlined tasks in answers not yet done (kInlineBudget)
  bool timer_stop = false;
  std::thread timer;
  // Last, so that it is destroyed first: its destructor waits for the calls in flight, whose
  // handlers use the members above.
  std::unique_ptr<grpc::Server> server;

  Impl() {
    MarkMethodStreamed(2, new grpc::internal::SplitServerStreamingHandler<wire::FetchRequest,
                                                                          grpc::ByteBuffer>(
                              [this](grpc::ServerContext* ctx, FetchStream* out) {
                                return fetch_task(ctx, out);
                              }));
    // A client-streaming handler marked "streamed" (gRPC then treats the method as
    // bidirectional, which for a synchronous handler only means that no request is read
    // before it runs, as for client streaming).
    MarkMethodStreamed(3, new grpc::internal::ClientStreamingHandler<Impl, grpc::ByteBuffer,
                                                                     wire::Ack>(
                              [](Impl* self, grpc::ServerContext* ctx, ReplyStream* in,
                                 wire::Ack* ack) { return self->send_reply(ctx, in, ack); },
                              this));
  }
  ~Impl() { stop_polls(); }  // also when the constructor threw after starting the timer

  int64_t num_clients() const { return static_cast<int64_t>(tokens.size()); }
  bool has_task(int64_t c) const { return tasks.count(c) && !answered.count(c); }
  wire::TaskHeader::Kind kind() const {
    return phase == Phase::kFit ? wire::TaskHeader::FIT : wire::TaskHeader::EVALUATE;
  }
  bool open_for(int64_t c, int64_t r, int k) const {
    return (phase == Phase::kFit || phase == Phase::kEval) && r == round && k == kind() &&
           has_task(c);
  }

  // ---- handlers -------------------------------------------------------------------------

  Status authenticate(grpc::ServerContextBase* ctx, int64_t* client) {
    const auto& md = ctx->client_metadata();
    auto id = md.find(kClientIdHeader), tok = md.find(kTokenHeader);
    if (id == md.end() || tok == md.end())
      return Status(StatusCode::PERMISSION_DENIED, "missing client id or token");
    int64_t c = -1;
    auto [p, ec] = std::from_chars(id->second.data(), id->second.data() + id->second.size(), c);
    const bool id_ok = ec == std::errc() && p == id->second.data() + id->second.size() && c >= 0 &&
                       c < num_clients();
    const std::string& want = id_ok ? tokens[static_cast<size_t>(c)] : std::string();
    if (!id_ok || want.empty() || tok->second.size() != want.size() ||
        CRYPTO_memcmp(tok->second.data(), want.data(), want.size()) != 0) {
      spdlog::warn("refused a call from {} as client '{}': unknown client or bad token",
                   ctx->peer(), std::string(id->second.data(), id->second.size()));
      return Status(StatusCode::PERMISSION_DENIED, "unknown client id or bad token");
    }
    *client = c;
    std::lock_guard<std::mutex> l(mu);
    last_seen[c] = Clock::now();
    return Status::OK;
  }

  Status Join(grpc::ServerContext* ctx, const wire::JoinRequest* req,
              wire::JoinReply* rep) override {
    int64_t c = 0;
    if (auto s = authenticate(ctx, &c); !s.ok()) return s;
    if (req->version() != kWireVersion)
      return Status(StatusCode::FAILED_PRECONDITION,
                    "client speaks wire version " + std::to_string(req->version()) +
                        ", server " + std::to_string(kWireVersion) +
                        ": run the same fedpp version on both ends");
    rep->set_run_id(run_id);
    rep->set_seed(opt.seed);
    rep->set_algorithm(opt.algorithm);
    rep->set_num_clients(num_clients());
    rep->set_rounds(opt.rounds);
    rep->set_run_identity(fingerprint);
    spdlog::info("client {} joined from {}", c, ctx->peer());
    return Status::OK;
  }

  // ---- long polls (callback API) ----------------------------------------------------------

  // Whether a poll of client c is answered now rather than parked. Under mu.
  // A task counts only while its phase is open: between a phase's close and the next publish
  // (replies still decoding) a poll parks instead of being told WAIT at once and polling again.
  bool poll_ready(int64_t c) const {
    return stopping || phase == Phase::kDone || (has_task(c) && phase != Phase::kIdle);
  }

  // Fills a poll's answer from the state now: DONE, the task header (and the task itself when
  // it fits the poll's max_inline and kInlineBudget; copied in by answer()), or WAIT. Under mu.
  void fill(PollReactor* r) {
    const int64_t c = r->client;
    wire::TaskHeader* rep = r->rep;
    if (phase == Phase::kDone) {
      rep->set_kind(wire::TaskHeader::DONE);
      told_done.insert(c);
      cv.notify_all();  // finish() waits for the clients to hear it
    } else if (has_task(c) && phase != Phase::kIdle) {
      const auto& task = tasks.at(c);
      rep->set_kind(kind());
      rep->set_round(round);
      rep->set_message_size(task->size());
      if (task->size() <= r->max_inline && r->charged == 0 &&
          inline_inflight + task->size() <= kInlineBudget) {
        r->task = task;
        r->charged = task->size();
        inline_inflight += r->charged;
      }
    } else {
      rep->set_kind(wire::TaskHeader::WAIT);
    }
  }

  // Takes a parked poll out of the waiting structures; false if it was not parked (already
  // answered). Under mu.
  bool unpark(PollReactor* r) {
    auto it = polls.find(r->client);
    if (it == polls.end() || it->second != r) return false;
    polls.erase(it);
    poll_expiry.erase({r->until, r->client});
    return true;
  }

  // Unparks and fills every parked poll that is ready now (all of them with `all`). Under mu;
  // the caller answers the returned ones with answer() after releasing mu.
  std::vector<PollReactor*> take_ready(bool all = false) {
    std::vector<PollReactor*> ready;
    for (const auto& [c, r] : polls)
      if (all || poll_ready(c)) ready.push_back(r);
    for (auto* r : ready) {
      unpark(r);
      fill(r);
    }
    return ready;
  }
  static void answer(const std::vector<PollReactor*>& ready) {
    for (auto* r : ready) r->answer();
  }

  grpc::ServerUnaryReactor* Poll(grpc::CallbackServerContext* ctx, const wire::PollRequest* req,
                                 wire::TaskHeader* rep) override {
    int64_t c = 0;
    if (auto st = authenticate(ctx, &c); !st.ok()) {
      auto* r = ctx->DefaultReactor();
      r->Finish(st);
      return r;
    }
    const double wait = std::clamp(req->wait_s(), 0.0, dep.poll_s);
    const uint64_t max_inline =
        std::min(req->max_inline_bytes(), static_cast<uint64_t>(dep.chunk_bytes));
    auto* r = new PollReactor(this, c, rep, Clock::now() + dur(wait), max_inline);
    PollReactor* replaced = nullptr;
    bool parked = false;
    {
      std::lock_guard<std::mutex> l(mu);
      if (!poll_ready(c) && wait > 0) {
        if (auto it = polls.find(c); it != polls.end()) {  // one parked poll per client
          replaced = it->second;
          unpark(replaced);
          fill(replaced);
        }
        polls[c] = r;
        poll_expiry.insert({r->until, c});
        timer_cv.notify_one();
        parked = true;  // answered later by take_ready, the timer or OnCancel
      } else {
        fill(r);
      }
    }
    if (replaced) replaced->answer();
    if (!parked) r->answer();
    // Another thread may answer a parked reactor before it is returned: gRPC then completes
    // it once it is bound, and calls OnDone (which deletes it) only after that.
    return r;
  }

  // The timer thread: answers every parked poll whose wait has ended (WAIT, or whatever the
  // state says by then). Runs until timer_stop.
  void poll_timer() {
    std::unique_lock<std::mutex> l(mu);
    while (!timer_stop) {
      std::vector<PollReactor*> due;
      const auto now = Clock::now();
      while (!poll_expiry.empty() && poll_expiry.begin()->first <= now) {
        auto* r = polls.at(poll_expiry.begin()->second);
        unpark(r);
        fill(r);
        due.push_back(r);
      }
      if (!due.empty()) {
        l.unlock();
        answer(due);
        l.lock();
        continue;
      }
      if (poll_expiry.empty())
        timer_cv.wait(l);
      else
        timer_cv.wait_until(l, poll_expiry.begin()->first);
    }
  }
  // FetchTask writes raw buffers (the handler is installed in Impl()): each chunk is a prefix
  // of a few bytes and a reference into the task (grpc_bytes.hpp), so the task's bytes are not
  // copied into protobuf strings and again into gRPC's buffers on their way to the socket.
  using FetchStream = grpc::ServerSplitStreamer<wire::FetchRequest, grpc::ByteBuffer>;
  Status fetch_task(grpc::ServerContext* ctx, FetchStream* out) {
    int64_t c = 0;
    if (auto s = authenticate(ctx, &c); !s.ok()) return s;
    wire::FetchRequest req;
    if (!out->Read(&req))
      return Status(StatusCode::INVALID_ARGUMENT, "FetchTask without a request");
    std::shared_ptr<const std::string> bytes;
    {
      std::lock_guard<std::mutex> l(mu);
      if (!open_for(c, req.round(), req.kind()))
        return Status(StatusCode::FAILED_PRECONDITION,
                      "the task of round " + std::to_string(req.round()) +
                          " is no longer open for this client");
      bytes = tasks.at(c);
    }
    const size_t chunk = static_cast<size_t>(dep.chunk_bytes), total = bytes->size();
    const grpc::Slice whole = share_slice(std::move(bytes));
    size_t off = 0;
    do {
      const size_t n = std::min(chunk, total - off);
      const grpc::ByteBuffer b =
          prefixed_buffer(chunk_prefix(n, off == 0 ? total : 0), whole.sub(off, off + n));
      if (!out->Write(b)) return Status(StatusCode::CANCELLED, "client went away");
      off += n;
    } while (off < total);
    return Status::OK;
  }

  // SendReply reads raw buffers (the handler is installed in Impl()): each chunk's data is
  // read where gRPC received it and copied once, into the assembler.
  using ReplyStream = grpc::ServerReader<grpc::ByteBuffer>;
  Status send_reply(grpc::ServerContext* ctx, ReplyStream* in, wire::Ack* ack) {
    int64_t c = 0;
    if (auto s = authenticate(ctx, &c); !s.ok()) return s;
    grpc::ByteBuffer buf;
    std::vector<grpc::Slice> keep;
    std::vector<std::string_view> views;
    Pieces header, data;
    bool has_header = false;
    // The next chunk of the stream into `data` (its header, if any, into `header`): false at
    // the stream's end, a non-OK status for a malformed chunk.
    auto next = [&](Status* bad) {
      if (!in->Read(&buf)) return false;
      std::string why = buffer_views(buf, &keep, &views)
                            ? read_reply_chunk(views, &has_header, &header, &data)
                            : "it could not be read";
      if (!why.empty())
        *bad = Status(StatusCode::INVALID_ARGUMENT, "malformed reply chunk: " + why);
      return why.empty();
    };
    Status bad;
    wire::ReplyHeader h;
    if (!next(&bad) || !has_header || !h.ParseFromString(header.join()))
      return bad.ok() ? Status(StatusCode::INVALID_ARGUMENT,
                               "a reply starts with a chunk with a header")
                      : bad;
    const uint64_t total = h.total_size();
    auto reject = [&](const std::string& why) {
      ack->set_accepted(false);
      ack->set_reason(why);
      spdlog::warn("round {}: reply of client {} rejected: {}", h.round(), c, why);
      return Status::OK;
    };
    {
      std::lock_guard<std::mutex> l(mu);
      if (streaming.count(c))  // before anything else: a second stream is refused unread
        return Status(StatusCode::UNAVAILABLE,
                      "client " + std::to_string(c) +
                          " already has a reply stream open: send one reply at a time");
      if (!open_for(c, h.round(), h.kind()))
        return reject("late or not asked: round " + std::to_string(h.round()) +
                      " is not open for this client");
      if (total > static_cast<uint64_t>(dep.max_message_bytes)) {
        answered.insert(c);
        ++transport_rejected;
        cv.notify_all();
        const std::string why = "reply of " + std::to_string(total) +
                                " bytes exceeds deploy.max_message_bytes = " +
                                std::to_string(dep.max_message_bytes);
        spdlog::warn("round {}: reply of client {} rejected: {}", h.round(), c, why);
        return Status(StatusCode::RESOURCE_EXHAUSTED, why);
      }
      // A bound on the bytes all open reply streams announce (a stream is always admitted
      // when no other is open); one stream per client (above). UNAVAILABLE: an honest client
      // retries after its backoff.
      if (inflight_bytes > 0 && inflight_bytes + total > static_cast<uint64_t>(dep.max_inflight_bytes))
        return Status(StatusCode::UNAVAILABLE,
                      "the server is receiving " + std::to_string(inflight_bytes) +
                          " bytes of replies (deploy.max_inflight_bytes = " +
                          std::to_string(dep.max_inflight_bytes) + "): retry shortly");
      streaming.insert(c);
      inflight_bytes += total;
    }
    struct StreamSlot {  // gives the stream's admission back however the handler ends
      Impl* s;
      int64_t c;
      uint64_t n;
      ~StreamSlot() {
        std::lock_guard<std::mutex> l(s->mu);
        s->streaming.erase(c);
        s->inflight_bytes -= n;
        s->cv.notify_all();
      }
    } slot{this, c, total};
    ChunkAssembler assembler(total, static_cast<uint64_t>(dep.max_message_bytes));
    auto add = [&] {
      for (auto p : data.parts)
        if (!assembler.add(p)) return false;
      return true;
    };
    bool spoiled = !add();
    while (!spoiled && next(&bad)) spoiled = !add();
    if (!bad.ok()) return bad;  // a client that sends garbage may send again
    if (spoiled) {  // a protocol violation: counts as this client's (bad) reply
      std::lock_guard<std::mutex> l(mu);
      if (open_for(c, h.round(), h.kind())) {
        answered.insert(c);
        ++transport_rejected;
        cv.notify_all();
      }
      spdlog::warn("round {}: reply of client {} rejected: more bytes than its header's {}",
                   h.round(), c, total);
      return Status(StatusCode::INVALID_ARGUMENT,
                    "reply stream carried more bytes than its header's " + std::to_string(total));
    }
    if (!assembler.complete())  // the client went away mid-stream; it may send again
      return Status(StatusCode::INVALID_ARGUMENT,
                    "reply stream ended after " + std::to_string(assembler.received()) + " of " +
                        std::to_string(total) + " bytes");
    std::string bytes = assembler.take();
    bool fit = false;
    {
      std::lock_guard<std::mutex> l(mu);
      if (!open_for(c, h.round(), h.kind()))
        return reject("late: round " + std::to_string(h.round()) + " closed while it arrived");
      fit = phase == Phase::kFit;
      // Over-selection: the round keeps its first fit_target accepted replies, however the
      // handlers and the driver interleave.
      if (fit && fit_target > 0 && accepted >= fit_target)
        return reject("late: round " + std::to_string(h.round()) + " already has its " +
                      std::to_string(fit_target) + " replies (sampling.over_select)");
      ++decoding;  // the driver waits for it before the round moves on (close_phase)
    }
    // Decoding and validation, the expensive part, outside the lock: other clients' polls and
    // replies go on meanwhile. Bounded by deploy.max_decoded_bytes before any payload expands.
    ServerLoop::CheckedReply checked;
    ServerLoop::CheckedEval checked_eval;
    const bool eval_reply = !fit && !bytes.empty();  // empty: the client has no test data
    if (fit)
      checked = loop->check_reply(c, bytes);
    else if (eval_reply)
      checked_eval = loop->check_eval(c, bytes);
    bytes.clear();
    bytes.shrink_to_fit();
    std::string reason;
    {
      std::lock_guard<std::mutex> l(mu);
      --decoding;
      cv.notify_all();
      if (!open_for(c, h.round(), h.kind()))
        return reject("late: round " + std::to_string(h.round()) + " closed while it decoded");
      if (fit && fit_target > 0 && accepted >= fit_target)
        return reject("late: round " + std::to_string(h.round()) + " already has its " +
                      std::to_string(fit_target) + " replies (sampling.over_select)");
      try {
        if (fit)
          reason = loop->add_reply(std::move(checked));
        else if (eval_reply)
          reason = loop->add_eval(std::move(checked_eval));
      } catch (const std::exception& e) {
        reason = e.what();
      }
      answered.insert(c);
      if (reason.empty()) ++accepted;
      cv.notify_all();
      if (sopt.crash_at_round == round && fit) {
        spdlog::error("--crash-at-round {}: killing the server mid-round (testing)", round);
        std::raise(SIGKILL);
      }
    }
    if (!reason.empty() && !fit)
      spdlog::warn("round {}: evaluation of client {} rejected: {}", h.round(), c, reason);
    ack->set_accepted(reason.empty());
    ack->set_reason(reason);
    return Status::OK;
  }

  // ---- the driver -----------------------------------------------------------------------

  void publish(Phase p, int64_t r, std::vector<Task> ts) {
    std::vector<PollReactor*> ready;
    {
      std::lock_guard<std::mutex> l(mu);
      phase = p;
      round = r;
      tasks.clear();
      for (auto& t : ts) tasks[t.client] = std::make_shared<const std::string>(std::move(t.bytes));
      answered.clear();
      accepted = 0;
      transport_rejected = 0;
      cv.notify_all();
      ready = take_ready();
    }
    answer(ready);  // the parked polls of the clients that have a task now
  }

  void close_phase() {
    std::unique_lock<std::mutex> l(mu);
    phase = Phase::kIdle;
    // A reply still decoding reads the round's messages: the loop may not move on before it
    // is done (bounded: decoding is capped by deploy.max_decoded_bytes). Its result is
    // refused, as the phase is closed.
    cv.wait(l, [&] { return decoding == 0; });
    tasks.clear();
  }

  // Waits for the replies of the open phase (rules in grpc_server.hpp); `need` = replies that
  // must be accepted before the deadline may close it (0: the deadline alone closes it);
  // `target` > 0 closes it as soon as that many are accepted (sampling.over_select); `hard_s`
  // > 0 closes it that many seconds after it opened, once it has one accepted reply (or
  // deploy.min_replies when set; sampling.deadline_s), so that a round never closes empty
  // because no client had connected yet. The phase is closed before the lock is released, so nothing is
  // accepted after the close. Returns how many asked clients had not answered.
  size_t wait_replies(size_t need, const char* what, size_t target = 0, double hard_s = 0) {
    const auto start = Clock::now();
    const auto deadline = start + dur(dep.round_timeout_s);
    const auto hard = hard_s > 0 ? start + dur(hard_s) : Clock::time_point::max();
    auto next_warn = deadline;
    std::unique_lock<std::mutex> l(mu);
    // The hard deadline needs one accepted reply, or deploy.min_replies when set.
    const size_t hard_need =
        dep.min_replies > 0 ? std::min(tasks.size(), static_cast<size_t>(dep.min_replies)) : 1;
    while (answered.size() < tasks.size()) {
      if (target > 0 && accepted >= target) break;
      const auto now = Clock::now();
      if (now >= hard && accepted >= hard_need) break;
      if (now >= deadline && accepted >= need) break;
      if (now >= next_warn) {
        spdlog::warn("round {}: {} of {} {} replies accepted after {:.0f} s; waiting for "
                     "deploy.min_replies = {} (clients that reconnect get their task again)",
                     round, accepted, tasks.size(), what, secs(now - deadline) + dep.round_timeout_s,
                     need);
        next_warn = now + dur(dep.round_timeout_s);
      }
      // Wake at the next moment a rule can change its verdict without a reply arriving (a
      // reply notifies cv): the deadline, the next warning, the hard deadline while it lies
      // ahead. next_warn starts at the deadline and then only moves ahead of now; a passed
      // deadline or hard deadline waits for replies alone. (Waiting until a moment already
      // past, as max(deadline, now) once did, spins the loop on a core until replies come.)
      auto wake = next_warn;
      if (hard > now) wake = std::min(wake, hard);
      cv.wait_until(l, wake);
    }
    const size_t missing_count = tasks.size() - answered.size();
    if (missing_count > 0) {
      std::string missing;
      for (const auto& [c, t] : tasks)
        if (!answered.count(c)) missing += (missing.empty() ? "" : " ") + std::to_string(c);
      spdlog::warn("round {}: closing with {} of {} {} replies; no reply from client(s) {}",
                   round, answered.size(), tasks.size(), what, missing);
    }
    phase = Phase::kIdle;  // late replies are refused from here on
    return missing_count;
  }

  void run_round(int64_t r) {
    auto fit = loop->begin_round(r);
    const size_t n = fit.size();
    const size_t need = dep.min_replies == 0 ? n : std::min(n, static_cast<size_t>(dep.min_replies));
    const bool over = opt.over_select > 1.0;
    {
      std::lock_guard<std::mutex> l(mu);
      fit_target = over ? static_cast<size_t>(loop->target_replies()) : 0;
    }
    publish(Phase::kFit, r, std::move(fit));
    // Over-selection keeps the first target_replies() accepted replies; the deadline drops
    // the rest, as the simulation's clock does (runtime/fleet.hpp), here in real seconds.
    const size_t late = wait_replies(need, "fit", fit_target, opt.deadline_s);
    int64_t refused;
    {
      std::lock_guard<std::mutex> l(mu);
      refused = transport_rejected;
    }
    close_phase();
    Row row = loop->end_round();
    row["rejected"] += static_cast<double>(refused);
    if (over || opt.deadline_s > 0) row["dropped"] = static_cast<double>(late);
    if (loop->eval_due(r)) {
      auto ev = loop->begin_eval(r);
      if (!ev.empty()) {
        publish(Phase::kEval, r, std::move(ev));
        wait_replies(0, "evaluation");
        close_phase();
      }
      loop->end_eval(&row);
    }
    rows.push_back(loop->record(std::move(row)));
    write_checkpoint(ckpt_dir, Checkpoint{r, run_id, fingerprint, loop->algorithm().save_state(),
                                          rows, ""});
  }

  void finish() {
    std::unique_lock<std::mutex> l(mu);
    phase = Phase::kDone;
    cv.notify_all();
    auto ready = take_ready();  // every parked poll hears DONE
    l.unlock();
    answer(ready);
    l.lock();
    // Let every client seen lately hear "done" (bounded: a vanished client never will).
    const auto until = Clock::now() + dur(std::min(30.0, dep.poll_s + 5));
    const auto recent = dur(2 * dep.poll_s + 5);
    cv.wait_until(l, until, [&] {
      for (const auto& [c, t] : last_seen)
        if (!told_done.count(c) && Clock::now() - t < recent) return false;
      return true;
    });
    stopping = true;
    cv.notify_all();
    ready = take_ready(true);
    l.unlock();
    answer(ready);
  }

  // Answers every parked poll, stops the timer thread and waits for it. Before the server
  // shuts down: a parked reactor would hold its shutdown up to the deadline.
  void stop_polls() {
    std::vector<PollReactor*> ready;
    {
      std::lock_guard<std::mutex> l(mu);
      stopping = true;
      timer_stop = true;
      cv.notify_all();
      timer_cv.notify_all();
      ready = take_ready(true);
    }
    answer(ready);
    if (timer.joinable()) timer.join();
  }
};

FederationServer::FederationServer(Config cfg, const ServeOptions& sopt)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.cfg = cfg;
  s.sopt = sopt;
  s.opt = RunOptions::from_config(cfg);
  s.dep = DeployOptions::from_config(cfg);
  if (!sopt.listen.empty()) s.dep.listen = sopt.listen;
  // The same thread settings as the simulation, so that server-side numbers match it.
  const auto threads_of = ClientPoolOptions::from_config(cfg);
  const int64_t workers = threads_of.workers, threads = threads_of.threads;
  cfg.mark_used("runtime");
  if (cfg.has("fleet.profile"))
    spdlog::warn("fleet.* simulates devices and is ignored by fedpp serve, whose clients are "
                 "real; sampling.deadline_s and sampling.over_select apply in real seconds");
  cfg.mark_used("fleet");
  set_worker_threads(static_cast<int>(threads));

  s.data = load_federated_data(cfg, kNoClients);  // with data.client_dirs: the global test set
  const auto& info = find_algorithm(s.opt.algorithm);
  AlgorithmSetup setup = setup_for(cfg, s.opt, *s.data);
  if (!s.data->clients_known)  // the clients hold their own data: bound what a reply may claim
    setup.client_train_sizes.assign(static_cast<size_t>(setup.num_clients), s.dep.max_client_samples);
  s.loop = std::make_unique<ServerLoop>(cfg, s.opt, info, setup, s.data->global_test);
  s.loop->set_tolerate_bad_replies(true);
  info.make_client(setup);  // reads the client half's keys, so that the check below covers them
  cfg.check_all_used();
  set_worker_threads(static_cast<int>(workers * threads));

  s.tokens = load_tokens(s.dep.tokens_file, s.dep.token_secret, setup.num_clients);
  s.fingerprint = run_identity(cfg);
  s.ckpt_dir = s.dep.checkpoint_dir;
  if (s.ckpt_dir.empty()) {
    FEDPP_CHECK(!s.opt.output_dir.empty(),
                "fedpp serve checkpoints after every round: set output.dir or "
                "deploy.checkpoint_dir");
    s.ckpt_dir = s.opt.output_dir + "/checkpoint";
  }

  auto ck = read_checkpoint(s.ckpt_dir);
  if (sopt.resume) {
    FEDPP_CHECK(ck, "--resume: no checkpoint in '" + s.ckpt_dir +
                        "' (deploy.checkpoint_dir): start without --resume");
    const auto diff = identity_differences(s.fingerprint, ck->fingerprint);
    std::string keys;
    for (const auto& d : diff) keys += (keys.empty() ? "" : "; ") + d;
    FEDPP_CHECK(diff.empty(), "--resume: this config differs from the run checkpointed in '" +
                                  s.ckpt_dir + "' (" + keys +
                                  "); resume with the run's config, or start without --resume");
    s.loop->algorithm().load_state(ck->state);
    s.rows = ck->rows;
    s.start_round = ck->round + 1;
    s.run_id = ck->run_id;
    spdlog::info("resuming run {} after round {} from {}", s.run_id, ck->round, s.ckpt_dir);
  } else {
    if (ck)
      spdlog::warn("'{}' holds a checkpoint of round {}: starting a new run that replaces it "
                   "(use --resume to continue it)",
                   s.ckpt_dir, ck->round);
    s.run_id = random_run_id();
  }
  s.loop->open_results(s.data->summary_json(), s.start_round - 1);
  s.loop->restore_results(s.rows);

  const auto& d = s.dep;
  auto creds = server_credentials(d.tls_cert, d.tls_key, d.tls_client_ca);
  s.timer = std::thread([&s] { s.poll_timer(); });  // waits for parked polls (~Impl joins it)
  grpc::ServerBuilder builder;
  builder.AddListeningPort(d.listen, creds, &s.port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(d.chunk_bytes + 65536));
  builder.RegisterService(&s);
  s.server = builder.BuildAndStart();
  FEDPP_CHECK(s.server && s.port > 0, "cannot listen on '" + d.listen +
                                          "' (deploy.listen / --listen): is the port in use or "
                                          "the address not of this machine?");
  spdlog::info("fedpp serve: {} ({}), listening on {} (port {}){}, checkpoints in {}",
               s.opt.algorithm, s.fingerprint, d.listen, s.port,
               d.tls_cert.empty() ? "" : d.tls_client_ca.empty() ? ", TLS" : ", mutual TLS",
               s.ckpt_dir);
}

FederationServer::~FederationServer() {
  impl_->stop_polls();
  if (impl_->server) {
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
}

int FederationServer::port() const { return impl_->port; }

std::vector<Row> FederationServer::run() {
  Impl& s = *impl_;
  for (int64_t r = s.start_round; r <= s.opt.rounds; ++r) s.run_round(r);
  s.finish();
  s.stop_polls();
  s.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return s.rows;
}

}  // namespace fedpp
