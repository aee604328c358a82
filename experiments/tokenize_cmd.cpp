// `cxr tokenize --tokenizer DIR TEXT…`: the CLIP token ids of each text, one line per text (ids
// separated by spaces), framed as the SD pipelines feed the text encoder: BOS, the text's tokens
// (truncated), EOS, padded with the pad token to --max-length (the folder's model_max_length, 77
// for SD1.x) unless --no-pad.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "experiments/commands.h"
#include "models/clip_tokenizer.h"

namespace cxr::experiments {

namespace {

struct TokenizeOptions {
  std::string tokenizer;
  std::vector<std::string> texts;
  int64_t max_length = -1;  // < 0: the tokenizer's model_max_length
  bool no_pad = false;
};

void run_tokenize(const TokenizeOptions& o) {
  const models::ClipTokenizer tok = models::ClipTokenizer::load(o.tokenizer);
  for (const std::string& text : o.texts) {
    const models::ClipEncoding e = tok(text, o.max_length, !o.no_pad);
    std::string line;
    for (int64_t id : e.input_ids) line += (line.empty() ? "" : " ") + std::to_string(id);
    std::cout << line << '\n';
  }
  std::cout.flush();
}

}  // namespace

Command register_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* sub = app.add_subcommand(
      "tokenize",
      "Print the CLIP token ids of each text (one line per text) with a tokenizer folder");
  sub->add_option("--tokenizer", o->tokenizer,
                  "Tokenizer folder (vocab.json, merges.txt; a diffusers model's tokenizer/)")
      ->required();
  sub->add_option("--max-length", o->max_length,
                  "Sequence length with BOS and EOS (default: the folder's model_max_length, 77)");
  sub->add_flag("--no-pad", o->no_pad, "Do not pad to --max-length (still truncate)");
  sub->add_option("text", o->texts, "Texts to tokenize")->required();
  return {sub, [o] { run_tokenize(*o); }};
}

}  // namespace cxr::experiments
