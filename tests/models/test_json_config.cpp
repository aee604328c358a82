// JsonConfig: typed getters, fallbacks, and errors that name the source and the key.
#include <gtest/gtest.h>

#include "models/json_config.h"
#include "support/errors.h"
#include "support/files.h"

namespace cxr::models {
namespace {

JsonConfig make(const char* text) {
  return JsonConfig(nlohmann::json::parse(text), "test config");
}

TEST(JsonConfig, ReadsTypedValuesAndFallbacks) {
  JsonConfig c = make(R"({"n": 3, "x": 2.5, "i": 2, "b": true, "s": "hi", "l": [1, 2],
                          "f": [0.5, 1], "names": ["a", "b"], "o": {"k": 1}, "nul": null})");
  EXPECT_EQ(c.get_int("n", 0), 3);
  EXPECT_EQ(c.get_double("x", 0), 2.5);
  EXPECT_EQ(c.get_double("i", 0), 2.0);  // an integer is a number
  EXPECT_TRUE(c.get_bool("b", false));
  EXPECT_EQ(c.get_string("s", ""), "hi");
  EXPECT_EQ(c.get_int_list("l", {}), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.get_double_list("f", {}), (std::vector<double>{0.5, 1.0}));
  EXPECT_EQ(c.get_string_list("names", {}), (std::vector<std::string>{"a", "b"}));
  JsonConfig o = c.get_object("o");
  EXPECT_EQ(o.get_int("k", 0), 1);
  EXPECT_EQ(o.source(), "test config.o");
  EXPECT_EQ(c.get_int("absent", 7), 7);
  EXPECT_EQ(c.get_int("nul", 8), 8);  // null means "use the default"
  EXPECT_NO_THROW(c.check_all_used());
}

TEST(JsonConfig, WrongTypesNameTheKey) {
  JsonConfig c = make(R"({"n": 2.5, "s": 3, "b": "yes", "l": [1, "x"]})");
  EXPECT_ERROR_CONTAINS(c.get_int("n", 0), "test config: key 'n' must be an integer, got 2.5");
  EXPECT_ERROR_CONTAINS(c.get_string("s", ""), "key 's' must be a string");
  EXPECT_ERROR_CONTAINS(c.get_bool("b", false), "key 'b' must be true or false");
  EXPECT_ERROR_CONTAINS(c.get_int_list("l", {}), "key 'l' must be a list of integers");
  EXPECT_ERROR_CONTAINS(c.require_int("missing"), "missing required key 'missing'");
}

TEST(JsonConfig, UnknownKeysAreRejectedByName) {
  JsonConfig c =
      make(R"({"epochs": 2, "epohcs": 3, "_class_name": "X", "_diffusers_version": "1"})");
  c.get_int("epochs", 1);
  c.ignore({"_*"});
  EXPECT_ERROR_CONTAINS(c.check_all_used(), "unknown key epohcs");
  EXPECT_ERROR_CONTAINS(c.check_all_used(), "known keys: epochs");
  c.ignore({"epohcs"});
  EXPECT_NO_THROW(c.check_all_used());
}

TEST(JsonConfig, FilesAndTheirErrors) {
  test::TempDir dir;
  const std::string good = dir.write("good.json", "{\"a\": 1} // a comment\n");
  EXPECT_EQ(JsonConfig::from_file(good).get_int("a", 0), 1);
  const std::string bad = dir.write("bad.json", "{\"a\": 1,,}");
  EXPECT_ERROR_CONTAINS(JsonConfig::from_file(bad), "bad.json' is not valid JSON");
  EXPECT_ERROR_CONTAINS(JsonConfig::from_file(dir.write("list.json", "[1]")),
                        "expected a JSON object");
  EXPECT_ERROR_CONTAINS(JsonConfig::from_file((dir.dir / "none.json").string()),
                        "cannot open config file");
}

}  // namespace
}  // namespace cxr::models
