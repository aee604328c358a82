// The CLIP byte-level BPE tokenizer (openai/CLIP clip/simple_tokenizer.py; transformers
// models/clip/tokenization_clip.py), the tokenizer of Stable Diffusion 1.x (spec/diffusion.md
// §3.4). A tokenizer folder is a diffusers model's tokenizer/: vocab.json (token -> id), merges.txt
// ("#version: 0.2" then one "a b" merge per line, by rank) and optionally special_tokens_map.json
// and tokenizer_config.json (special tokens, model_max_length).
//
// Pipeline: clean-up (whitespace runs -> one space, strip, lowercase), pre-tokenisation by CLIP's
// regex, each pre-token's UTF-8 bytes mapped to printable characters (bytes_to_unicode), BPE by
// merge rank with "</w>" closing the word, vocabulary lookup; then framing [BOS] + ids + [EOS],
// truncated and padded to max_length (77) as transformers' tokenizer(padding="max_length",
// truncation=True).
//
// Not done, compared with the references:
// - ftfy.fix_text (mojibake repair) and OpenAI's html.unescape: not applied (transformers 5 applies
//   neither); transformers' NFC normalisation is not applied either (input is assumed NFC).
// - Unicode letter/number classes and lowercasing are exact for ASCII and Latin-1 (U+0000-U+00FF)
//   and cover Latin Extended-A, Greek, Cyrillic, fullwidth forms and the common punctuation, symbol
//   and digit blocks through a small range table (clip_tokenizer.cpp); other code points count as
//   letters (so e.g. combining marks of Indic scripts, which the reference treats as non-letters,
//   join the letter run) and keep their case; Greek final sigma is not special-cased. Checked
//   against Python's regex module: the pre-tokenisation agrees on ~98% of the assigned code points
//   (the rest: marks, digits and symbols of other scripts). utf8proc would make it exact.
#pragma once

#include <cstdint>
#include <memory>  // std::unique_ptr cache
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>  // std::pair
#include <vector>

#include "tensor/tensor.h"

namespace cxr::models {

// One framed sequence: input_ids [BOS, tokens..., EOS, PAD...] and the attention mask (1 for BOS,
// tokens and EOS, 0 for padding), as transformers' tokenizer returns them.
struct ClipEncoding {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> attention_mask;
};

// The special tokens and length limit of a tokenizer folder (defaults: SD1.x's tokenizer, whose
// pad token is "<|endoftext|>").
struct ClipSpecialTokens {
  std::string bos = "<|startoftext|>";
  std::string eos = "<|endoftext|>";
  std::string pad = "<|endoftext|>";
  std::string unk = "<|endoftext|>";
  int64_t model_max_length = 77;
};

class ClipTokenizer {
 public:
  using Merge = std::pair<std::string, std::string>;

  // vocab: token -> id; merges in rank order (rank = index). Every special token and every merge's
  // result must be in the vocabulary.
  ClipTokenizer(std::unordered_map<std::string, int64_t> vocab, std::vector<Merge> merges,
                ClipSpecialTokens special = {});
  ~ClipTokenizer();
  ClipTokenizer(ClipTokenizer&&) noexcept;
  ClipTokenizer& operator=(ClipTokenizer&&) noexcept;

  // Loads a tokenizer folder (vocab.json, merges.txt; special_tokens_map.json and
  // tokenizer_config.json when present). Errors name the file and what is wrong in it.
  static ClipTokenizer load(const std::string& dir);
  // Writes vocab.json, merges.txt, special_tokens_map.json and tokenizer_config.json into `dir`
  // (created if needed) in transformers' format, so that transformers.CLIPTokenizer loads them.
  void save(const std::string& dir) const;

  // The OpenAI vocabulary layout built from merges alone (simple_tokenizer.py): ids 0..255 the
  // byte characters, 256..511 the same with "</w>", then one id per merge (its concatenation),
  // then "<|startoftext|>" and "<|endoftext|>". For openai/CLIP's bpe_simple_vocab_16e6.txt, pass
  // its first 48894 merges (49152 - 256 - 2): that gives the 49408-token vocabulary of SD1.x.
  static ClipTokenizer from_merges(std::vector<Merge> merges);
  // Parses merges text (a merges.txt or OpenAI's bpe_simple_vocab file): a first line starting
  // with '#' or containing "#version" is a header and skipped, empty lines are skipped, every
  // other line must be two space-separated symbols. `source` names the text in errors.
  static std::vector<Merge> parse_merges(std::string_view text, const std::string& source);
  // A tokenizer the project can build itself: BPE merges learned from `texts` (cleaned and
  // pre-tokenised like the input they will tokenise): up to `num_merges` times, the most frequent
  // adjacent symbol pair (ties: the smallest pair in byte order) is merged. num_merges = 0 gives
  // the plain byte-level vocabulary (514 tokens). The layout is from_merges'.
  static ClipTokenizer train(const std::vector<std::string>& texts, int64_t num_merges);

  // The BPE tokens of `text` (e.g. "hello</w>"), without special tokens.
  std::vector<std::string> tokenize(const std::string& text) const;
  // Their ids (no BOS/EOS). A pre-token spelling a special token ("<|endoftext|>") maps to its id.
  std::vector<int64_t> encode(const std::string& text) const;
  // [BOS] + encode(text)[:max_length - 2] + [EOS], padded with the pad id to max_length when `pad`.
  // max_length < 0 means model_max_length; it must be at least 2.
  ClipEncoding operator()(const std::string& text, int64_t max_length = -1, bool pad = true) const;
  // A batch of framed, padded sequences: int64 [texts, max_length] (the text encoder's input_ids).
  Tensor input_ids(const std::vector<std::string>& texts, int64_t max_length = -1) const;
  // The text of ids as simple_tokenizer.py decodes it: tokens joined, bytes restored, "</w>" ->
  // " " (special tokens appear as their text). Unknown ids throw.
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  // One more than the largest id (the text encoder's vocab_size).
  int64_t vocab_size() const { return vocab_size_; }
  int64_t model_max_length() const { return special_.model_max_length; }
  const std::unordered_map<std::string, int64_t>& vocab() const { return vocab_; }
  const std::vector<Merge>& merges() const { return merges_; }
  const ClipSpecialTokens& special_tokens() const { return special_; }

 private:
  struct Cache;
  // The BPE symbols of one pre-token given as its byte characters (cached).
  std::vector<std::string> bpe(const std::string& word) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<Merge> merges_;
  ClipSpecialTokens special_;
  std::unordered_map<std::string, int64_t> ranks_;   // "a b" -> rank
  std::unordered_map<int64_t, std::string> tokens_;  // id -> token
  int64_t bos_id_ = 0, eos_id_ = 0, pad_id_ = 0, unk_id_ = 0, vocab_size_ = 0;
  std::unique_ptr<Cache> cache_;
};

// The clean-up step, exposed for tests: whitespace runs -> one space, stripped, lowercased.
std::string clip_clean_text(std::string_view text);
// CLIP's pre-tokenisation regex on cleaned text:
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
std::vector<std::string> clip_pre_tokenize(std::string_view cleaned);

}  // namespace cxr::models
