// libFuzzer target for the config reader (src/fedpp/core/config.hpp): whatever the TOML text,
// parsing, every typed getter, `--set` overrides, the resolved document and the unknown-key
// check either work or throw fedpp::Error; they never crash, hang or throw anything else.
// Built with -DFEDPP_BUILD_FUZZ=ON and clang (scripts/fuzz.sh).
#include <cstdint>
#include <string>

#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"

namespace {

// Keys of every shape the project reads: top-level, nested, lists, strings.
const char* const kKeys[] = {"seed",          "rounds",          "algorithm.name",
                             "train.lr",      "train.batch_size", "data.dataset",
                             "data.alpha",    "codec.down.bits", "fleet.profile",
                             "deploy.listen", "a.b.c.d",         "hetero.models",
                             "",              ".",               "x..y"};

template <class F>
void guarded(F&& f) {
  try {
    f();
  } catch (const fedpp::Error&) {
    // a clear error naming the key: what a user gets for a bad config
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // The first line, if short, is also tried as a `--set key=value` override.
  const std::string first = text.substr(0, std::min<size_t>(text.find('\n'), 200));
  guarded([&] {
    fedpp::Config cfg = fedpp::Config::from_string(text, "fuzz.toml");
    for (const char* k : kKeys) {
      guarded([&] { (void)cfg.has(k); });
      guarded([&] { (void)cfg.get_int(k, 1, -5, 1000); });
      guarded([&] { (void)cfg.get_double(k, 0.5, 0.0, 1.0); });
      guarded([&] { (void)cfg.get_bool(k, false); });
      guarded([&] { (void)cfg.get_string(k, "d"); });
      guarded([&] { (void)cfg.get_choice(k, "a", {"a", "b"}); });
      guarded([&] { (void)cfg.get_strings(k, {"x"}); });
      guarded([&] { (void)cfg.get_doubles(k, {1.0}); });
    }
    guarded([&] { cfg.set(first); });
    guarded([&] { cfg.mark_used("deploy"); });
    guarded([&] { (void)cfg.resolved_toml(); });
    guarded([&] { (void)cfg.resolved_json(); });
    guarded([&] { cfg.check_all_used(); });
  });
  guarded([&] {
    fedpp::Config empty;
    empty.set(first);
    (void)empty.resolved_json();
  });
  return 0;
}
