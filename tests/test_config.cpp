#include <gtest/gtest.h>

#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"

using fedpp::Config;

namespace {
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const fedpp::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, ReadsTypedValuesAndDefaults) {
  auto c = Config::from_string("rounds = 5\n[train]\nlr = 0.1\nbatch_size = 32\n"
                               "[data]\ndataset = \"mnist\"\nflag = true\n");
  EXPECT_EQ(c.get_int("rounds", 1), 5);
  EXPECT_DOUBLE_EQ(c.get_double("train.lr", 0.5), 0.1);
  EXPECT_EQ(c.get_int("train.batch_size", 1), 32);
  EXPECT_EQ(c.get_string("data.dataset", "x"), "mnist");
  EXPECT_TRUE(c.get_bool("data.flag", false));
  EXPECT_EQ(c.get_int("train.local_epochs", 7), 7);  // default
  EXPECT_NO_THROW(c.check_all_used());
}

TEST(Config, ADirectoryIsNotAConfig) {
  try {
    Config::from_file(testing::TempDir());
    FAIL() << "expected an error";
  } catch (const fedpp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

TEST(Config, IntegerAcceptedWhereNumberExpected) {
  auto c = Config::from_string("[train]\nlr = 1\n");
  EXPECT_DOUBLE_EQ(c.get_double("train.lr", 0.5), 1.0);
}

TEST(Config, UnknownKeyNamedWithKnownKeys) {
  auto c = Config::from_string("[train]\nlr = 0.1\nlearning_rate = 0.2\n");
  c.get_double("train.lr", 0.5);
  auto msg = error_of([&] { c.check_all_used(); });
  EXPECT_NE(msg.find("train.learning_rate"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.lr"), std::string::npos) << msg;
}

TEST(Config, BadTypeAndRangeNameTheKey) {
  auto c = Config::from_string("[train]\nlr = \"fast\"\nbatch_size = -3\n");
  auto m1 = error_of([&] { c.get_double("train.lr", 0.1); });
  EXPECT_NE(m1.find("train.lr"), std::string::npos) << m1;
  EXPECT_NE(m1.find("must be a number"), std::string::npos) << m1;
  auto m2 = error_of([&] { c.get_int("train.batch_size", 1, 1, 100); });
  EXPECT_NE(m2.find("train.batch_size"), std::string::npos) << m2;
  EXPECT_NE(m2.find("out of range"), std::string::npos) << m2;
}

TEST(Config, ChoiceListsAlternatives) {
  auto c = Config::from_string("[data]\npartition = \"dirichlett\"\n");
  auto m = error_of([&] { c.get_choice("data.partition", "iid", {"iid", "dirichlet"}); });
  EXPECT_NE(m.find("dirichlett"), std::string::npos);
  EXPECT_NE(m.find("iid, dirichlet"), std::string::npos) << m;
}

TEST(Config, SyntaxErrorNamesLine) {
  auto m = error_of([] { Config::from_string("a = 1\nb = = 2\n", "x.toml"); });
  EXPECT_NE(m.find("x.toml line 2"), std::string::npos) << m;
}

TEST(Config, MissingFileIsClearError) {
  auto m = error_of([] { Config::from_file("/nonexistent/exp.toml"); });
  EXPECT_NE(m.find("/nonexistent/exp.toml"), std::string::npos) << m;
}

TEST(Config, OverridesParseTomlValues) {
  auto c = Config::from_string("[train]\nlr = 0.1\n");
  c.set("train.lr=0.5");
  c.set("model.name=mlp");
  c.set("data.shape=[1, 2]");
  EXPECT_DOUBLE_EQ(c.get_double("train.lr", 0), 0.5);
  EXPECT_EQ(c.get_string("model.name", ""), "mlp");
  EXPECT_EQ(c.get_doubles("data.shape", {}).size(), 2u);
  EXPECT_NE(error_of([&] { c.set("novalue"); }), "");
}

TEST(Config, ResolvedHoldsDefaults) {
  auto c = Config::from_string("rounds = 3\n");
  c.get_int("rounds", 1);
  c.get_double("train.lr", 0.25);
  auto t = c.resolved_toml();
  EXPECT_NE(t.find("rounds = 3"), std::string::npos) << t;
  EXPECT_NE(t.find("lr = 0.25"), std::string::npos) << t;
}
