// The CLIP BPE tokenizer (models/clip_tokenizer.h): ids equal openai/CLIP simple_tokenizer.py's on
// the shared test vectors (../shared/data/tokenizers/clip) and transformers' CLIPTokenizer on the
// cases of tests/golden/gen_clip_tokenizer.py (tests/fixtures/clip_tokenizer.json), both with the
// real 49408-token vocabulary built from openai/CLIP's merges file; then folders (save/load,
// special tokens, errors naming the file), the learned vocabulary and the batch tensor.
#include "models/clip_tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "data/csv.h"  // read_text_file (decompresses .gz)
#include "experiments/commands.h"
#include "support/errors.h"
#include "support/files.h"
#include "support/fixtures.h"

namespace cxr::models {
namespace {

// openai/CLIP's vocabulary: the first 49152 - 256 - 2 merges of bpe_simple_vocab_16e6.txt.gz.
const ClipTokenizer& openai_tokenizer() {
  static const ClipTokenizer tok = [] {
    const std::string path = test::shared_data_path("tokenizers/clip/bpe_simple_vocab_16e6.txt.gz");
    auto merges = ClipTokenizer::parse_merges(data::read_text_file(path), path);
    merges.resize(49152 - 256 - 2);
    return ClipTokenizer::from_merges(std::move(merges));
  }();
  return tok;
}

nlohmann::json read_json(const std::string& path) {
  const std::string text = test::read_text(path);
  EXPECT_FALSE(text.empty()) << "cannot read " << path;
  return nlohmann::json::parse(text);
}

std::vector<int64_t> ints(const nlohmann::json& j) {
  return j.get<std::vector<int64_t>>();
}

TEST(ClipTokenizer, OpenAiLayout) {
  const ClipTokenizer& tok = openai_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 49408);
  EXPECT_EQ(tok.bos_id(), 49406);
  EXPECT_EQ(tok.eos_id(), 49407);
  EXPECT_EQ(tok.pad_id(), 49407);
  EXPECT_EQ(tok.vocab().at("!"), 0);
  EXPECT_EQ(tok.vocab().at("!</w>"), 256);
  EXPECT_EQ(tok.model_max_length(), 77);
}

TEST(ClipTokenizer, SharedTestVectors) {
  const nlohmann::json vectors =
      read_json(test::shared_data_path("tokenizers/clip/clip_test_vectors.json"));
  const ClipTokenizer& tok = openai_tokenizer();
  ASSERT_EQ(vectors["sot"].get<int64_t>(), tok.bos_id());
  ASSERT_EQ(vectors["eot"].get<int64_t>(), tok.eos_id());
  ASSERT_GE(vectors["cases"].size(), 10u);
  for (const auto& c : vectors["cases"]) {
    const std::string text = c["text"];
    const std::vector<int64_t> expected = ints(c["ids_with_sot_eot"]);
    EXPECT_EQ(tok(text, 77, false).input_ids, expected) << text;
    EXPECT_EQ(tok.tokenize(text), c["bpe_tokens"].get<std::vector<std::string>>()) << text;
    const std::vector<int64_t> content(expected.begin() + 1, expected.end() - 1);
    EXPECT_EQ(tok.decode(content), c["decoded"].get<std::string>()) << text;
  }
}

TEST(ClipTokenizer, MatchesTransformers) {
  const nlohmann::json fixture = read_json(std::string(CXR_FIXTURE_DIR) + "/clip_tokenizer.json");
  const ClipTokenizer& tok = openai_tokenizer();
  ASSERT_GE(fixture["cases"].size(), 30u);
  for (const auto& c : fixture["cases"]) {
    const std::string text = c["text"];
    const int64_t max_length = c["max_length"];
    const ClipEncoding padded = tok(text, max_length);
    EXPECT_EQ(padded.input_ids, ints(c["input_ids"])) << text;
    EXPECT_EQ(padded.attention_mask, ints(c["attention_mask"])) << text;
    EXPECT_EQ(tok(text, max_length, false).input_ids, ints(c["ids_no_pad"])) << text;
  }
}

TEST(ClipTokenizer, CleanAndPreTokenize) {
  EXPECT_EQ(clip_clean_text("  A\t\tB \n c  "), "a b c");
  EXPECT_EQ(clip_clean_text("ÀÉÎ Straße"), "àéî straße");
  using V = std::vector<std::string>;
  EXPECT_EQ(clip_pre_tokenize("don't 12 ab!?c'll"),
            (V{"don", "'t", "1", "2", "ab", "!?", "c", "'ll"}));
  EXPECT_EQ(clip_pre_tokenize("a<|endoftext|>.<|endoftext|>"),
            (V{"a", "<|endoftext|>", ".<|", "endoftext", "|>"}));
  EXPECT_EQ(clip_pre_tokenize("café ½"), (V{"café", "½"}));
  EXPECT_ERROR_CONTAINS(clip_clean_text("bad \xff byte"), "invalid UTF-8 at byte 4");
}

TEST(ClipTokenizer, BatchTensor) {
  const ClipTokenizer& tok = openai_tokenizer();
  const Tensor ids = tok.input_ids({"a photo of a cat", ""});
  ASSERT_EQ(ids.shape(), (Shape{2, 77}));
  EXPECT_EQ(ids.dtype(), kInt64);
  const std::vector<int64_t> v = ids.to_vector<int64_t>();
  const std::vector<int64_t> first = tok("a photo of a cat").input_ids;
  const std::vector<int64_t> second = tok("").input_ids;
  EXPECT_EQ(std::vector<int64_t>(v.begin(), v.begin() + 77), first);
  EXPECT_EQ(std::vector<int64_t>(v.begin() + 77, v.end()), second);
  EXPECT_ERROR_CONTAINS(tok("x", 1), "max_length must be at least 2");
}

TEST(ClipTokenizer, SaveLoadRoundTrip) {
  const ClipTokenizer& tok = openai_tokenizer();
  test::TempDir dir;
  const std::string folder = (dir.dir / "tokenizer").string();
  tok.save(folder);
  const ClipTokenizer loaded = ClipTokenizer::load(folder);
  EXPECT_EQ(loaded.vocab_size(), 49408);
  EXPECT_EQ(loaded.merges().size(), tok.merges().size());
  for (const char* text : {"A chest X-ray with a large right pneumothorax.", "café 12 ½ don't"})
    EXPECT_EQ(loaded(text).input_ids, tok(text).input_ids) << text;
  EXPECT_EQ(test::read_text(folder + "/merges.txt").substr(0, 14), "#version: 0.2\n");
}

// A folder with its own special tokens (SD2.x pads with "!") and length limit.
TEST(ClipTokenizer, SpecialTokenFiles) {
  test::TempDir dir;
  const ClipTokenizer base = ClipTokenizer::train({"chest x-ray"}, 3);
  base.save(dir.dir.string());
  dir.write("special_tokens_map.json",
            R"({"bos_token": {"content": "<|startoftext|>", "lstrip": false},
                "eos_token": "<|endoftext|>", "pad_token": "!", "unk_token": "<|endoftext|>"})");
  dir.write("tokenizer_config.json", R"({"model_max_length": 8, "pad_token": "<|endoftext|>"})");
  const ClipTokenizer tok = ClipTokenizer::load(dir.dir.string());
  EXPECT_EQ(tok.pad_id(), tok.vocab().at("!"));
  EXPECT_EQ(tok.model_max_length(), 8);
  const ClipEncoding e = tok("chest");
  ASSERT_EQ(e.input_ids.size(), 8u);
  EXPECT_EQ(e.input_ids.back(), tok.vocab().at("!"));
  const size_t n = tok.encode("chest").size() + 2;  // BOS, the word's tokens, EOS
  ASSERT_LT(n, 8u);
  std::vector<int64_t> mask(8, 0);
  std::fill(mask.begin(), mask.begin() + std::ptrdiff_t(n), 1);
  EXPECT_EQ(e.attention_mask, mask);
}

TEST(ClipTokenizer, FileErrorsNameTheFile) {
  test::TempDir dir;
  const std::string root = dir.dir.string();
  EXPECT_ERROR_CONTAINS(ClipTokenizer::load(root + "/absent"), "absent is not a folder");
  EXPECT_ERROR_CONTAINS(ClipTokenizer::load(root), "cannot open " + root + "/vocab.json");
  dir.write("vocab.json", "{\"a\": 0,");
  EXPECT_ERROR_CONTAINS(ClipTokenizer::load(root), root + "/vocab.json is not valid JSON");
  dir.write("vocab.json", R"({"a": "zero"})");
  EXPECT_ERROR_CONTAINS(ClipTokenizer::load(root), "vocab.json: the id of 'a' must be an integer");

  ClipTokenizer::train({"ab"}, 1).save(root);
  EXPECT_NO_THROW(ClipTokenizer::load(root));  // the saved folder loads
  dir.write("merges.txt", "#version: 0.2\na b c\n");
  EXPECT_ERROR_CONTAINS(ClipTokenizer::load(root),
                        root + "/merges.txt line 2: expected two symbols");
  dir.write("merges.txt", "#version: 0.2\nq z\n");
  EXPECT_ERROR_CONTAINS(ClipTokenizer::load(root), "merge 1 'q z' gives 'qz', which is not in the");
  dir.write("merges.txt", "");
  EXPECT_ERROR_CONTAINS(ClipTokenizer::load(root), root + "/merges.txt is empty");
  ClipTokenizer::train({"ab"}, 1).save(root);
  dir.write("special_tokens_map.json", R"({"pad_token": "<pad>"})");
  EXPECT_ERROR_CONTAINS(ClipTokenizer::load(root),
                        "the pad token '<pad>' is not in the vocabulary");
  dir.write("special_tokens_map.json", R"({"pad_token": 3})");
  EXPECT_ERROR_CONTAINS(ClipTokenizer::load(root),
                        "special_tokens_map.json: 'pad_token' must be a string");
}

TEST(ClipTokenizer, ByteLevelWithoutMerges) {
  const ClipTokenizer tok = ClipTokenizer::train({"anything"}, 0);
  EXPECT_EQ(tok.vocab_size(), 514);
  EXPECT_TRUE(tok.merges().empty());
  EXPECT_EQ(tok.tokenize("Ab 1"), (std::vector<std::string>{"a", "b</w>", "1</w>"}));
  EXPECT_EQ(tok.decode(tok.encode("Zürich, 2 mm")), "zürich , 2 mm ");
}

TEST(ClipTokenizer, LearnedMerges) {
  const std::vector<std::string> captions = {"left pneumothorax",        "right pneumothorax",
                                             "no pneumothorax",          "large left pneumothorax",
                                             "small right pneumothorax", "no acute findings",
                                             "left pleural effusion"};
  const ClipTokenizer tok = ClipTokenizer::train(captions, 40);
  EXPECT_EQ(tok.merges().size(), 40u);
  EXPECT_EQ(tok.vocab_size(), 512 + 40 + 2);
  EXPECT_EQ(tok.eos_id(), tok.vocab_size() - 1);
  // The most frequent pair is learned first: "e u" (5 x pneumothorax, 1 x pleural).
  EXPECT_EQ(tok.merges()[0], (ClipTokenizer::Merge{"e", "u"}));
  // The most frequent word becomes one token; every caption decodes back.
  EXPECT_EQ(tok.tokenize("pneumothorax"), (std::vector<std::string>{"pneumothorax</w>"}));
  for (const std::string& c : captions) EXPECT_EQ(tok.decode(tok.encode(c)), c + " ");
  // Deterministic, and the saved folder gives the same ids.
  EXPECT_EQ(ClipTokenizer::train(captions, 40).merges(), tok.merges());
  test::TempDir dir;
  tok.save(dir.dir.string());
  const ClipTokenizer loaded = ClipTokenizer::load(dir.dir.string());
  for (const std::string& c : captions) EXPECT_EQ(loaded(c).input_ids, tok(c).input_ids);
  // More merges than pairs: training stops when every word is one symbol.
  EXPECT_LT(ClipTokenizer::train({"ab ab"}, 100).merges().size(), 100u);
  EXPECT_ERROR_CONTAINS(ClipTokenizer::train(captions, -1), "num_merges must be >= 0");
}

// Runs `cxr tokenize ARGS` through its registration and returns what it printed.
std::string run_tokenize_command(const std::vector<std::string>& args) {
  CLI::App app("cxr");
  const experiments::Command cmd = experiments::register_tokenize(app);
  std::vector<std::string> argv = args;
  argv.insert(argv.begin(), "tokenize");
  std::reverse(argv.begin(), argv.end());  // CLI11's vector form takes the arguments reversed
  app.parse(argv);
  std::ostringstream out;
  std::streambuf* old = std::cout.rdbuf(out.rdbuf());
  try {
    cmd.run();
  } catch (...) {
    std::cout.rdbuf(old);
    throw;
  }
  std::cout.rdbuf(old);
  return out.str();
}

std::string join(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

TEST(TokenizeCommand, PrintsIdsPerText) {
  const ClipTokenizer& tok = openai_tokenizer();
  test::TempDir dir;
  tok.save(dir.dir.string());
  const std::string folder = dir.dir.string();
  EXPECT_EQ(run_tokenize_command({"--tokenizer", folder, "a photo of a cat", "No acute process."}),
            join(tok("a photo of a cat").input_ids) + "\n" +
                join(tok("No acute process.").input_ids) + "\n");
  EXPECT_EQ(run_tokenize_command({"--tokenizer", folder, "--no-pad", "a dog"}),
            "49406 320 1929 49407\n");
  EXPECT_EQ(run_tokenize_command({"--tokenizer", folder, "--max-length", "4", "a b c d"}),
            "49406 320 321 49407\n");
  EXPECT_ERROR_CONTAINS(run_tokenize_command({"--tokenizer", folder + "/none", "x"}),
                        "none is not a folder");
  EXPECT_ERROR_CONTAINS(run_tokenize_command({"--tokenizer", folder, "--max-length", "1", "x"}),
                        "max_length must be at least 2");
  EXPECT_THROW(run_tokenize_command({"--tokenizer", folder}), CLI::ParseError);  // no text
}

}  // namespace
}  // namespace cxr::models
