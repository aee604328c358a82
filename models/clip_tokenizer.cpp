// The CLIP byte-level BPE tokenizer (see clip_tokenizer.h; facts from openai/CLIP
// clip/simple_tokenizer.py and transformers models/clip/tokenization_clip.py).
#include "models/clip_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <mutex>

#include "tensor/creation.h"
#include "tensor/error.h"
#include "tensor/file_io.h"

namespace cxr::models {

namespace {

constexpr const char* kEndOfWord = "</w>";
constexpr size_t kCacheLimit = 1 << 16;  // BPE results kept before the cache starts afresh

// ---- UTF-8 ----

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// The code points of UTF-8 text; invalid UTF-8 throws naming the byte offset.
std::vector<char32_t> decode_utf8(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    CXR_CHECK(len > 0 && i + len <= s.size(), "CLIP tokenizer: invalid UTF-8 at byte ", i,
              " of the text");
    char32_t cp = len == 1 ? b : b & (0x7F >> len);
    for (int k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      CXR_CHECK((c & 0xC0) == 0x80, "CLIP tokenizer: invalid UTF-8 at byte ", i + k,
                " of the text");
      cp = (cp << 6) | (c & 0x3F);
    }
    out.push_back(cp);
    i += size_t(len);
  }
  return out;
}

// ---- Unicode classes (exact for U+0000-U+00FF; an approximation beyond, see the header) ----

enum class CharClass { Letter, Number, Space, Other };

// Python's str whitespace (what re's \s matches in whitespace_clean).
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

struct ClassRange {
  char32_t lo, hi;
  CharClass cls;
};

// Non-letter ranges above U+007F, sorted; code points outside every range count as letters.
// Latin-1 is exact (Unicode categories Lu/Ll/Lo/N*); beyond it the common punctuation, symbol,
// combining-mark and digit blocks.
constexpr ClassRange kClassRanges[] = {
    {0x80, 0xA9, CharClass::Other},       // C1 controls, NBSP (space handled first), ¡..©
    {0xAB, 0xB1, CharClass::Other},       // « .. ±
    {0xB2, 0xB3, CharClass::Number},      // ² ³
    {0xB4, 0xB4, CharClass::Other},       // ´
    {0xB6, 0xB8, CharClass::Other},       // ¶ · ¸
    {0xB9, 0xB9, CharClass::Number},      // ¹
    {0xBB, 0xBB, CharClass::Other},       // »
    {0xBC, 0xBE, CharClass::Number},      // ¼ ½ ¾
    {0xBF, 0xBF, CharClass::Other},       // ¿
    {0xD7, 0xD7, CharClass::Other},       // ×
    {0xF7, 0xF7, CharClass::Other},       // ÷
    {0x2C2, 0x2C5, CharClass::Other},     // modifier symbols
    {0x2D2, 0x2DF, CharClass::Other},     // modifier symbols
    {0x2E5, 0x2EB, CharClass::Other},     // tone letters
    {0x2ED, 0x2ED, CharClass::Other},     //
    {0x2EF, 0x36F, CharClass::Other},     // modifier symbols, combining diacritics
    {0x375, 0x375, CharClass::Other},     // Greek lower numeral sign
    {0x37E, 0x37E, CharClass::Other},     // Greek question mark
    {0x384, 0x385, CharClass::Other},     // Greek tonos
    {0x387, 0x387, CharClass::Other},     // Greek ano teleia
    {0x3F6, 0x3F6, CharClass::Other},     // reversed lunate epsilon symbol
    {0x482, 0x489, CharClass::Other},     // Cyrillic thousands sign, combining marks
    {0x55A, 0x55F, CharClass::Other},     // Armenian punctuation
    {0x589, 0x58A, CharClass::Other},     // Armenian full stop, hyphen
    {0x58D, 0x58F, CharClass::Other},     // Armenian symbols, dram sign
    {0x591, 0x5CF, CharClass::Other},     // Hebrew points and punctuation
    {0x5F3, 0x5F4, CharClass::Other},     // Hebrew geresh, gershayim
    {0x600, 0x61F, CharClass::Other},     // Arabic signs and punctuation
    {0x64B, 0x65F, CharClass::Other},     // Arabic harakat
    {0x660, 0x669, CharClass::Number},    // Arabic-Indic digits
    {0x66A, 0x66D, CharClass::Other},     // Arabic punctuation
    {0x6F0, 0x6F9, CharClass::Number},    // extended Arabic-Indic digits
    {0x964, 0x965, CharClass::Other},     // Devanagari danda
    {0x966, 0x96F, CharClass::Number},    // Devanagari digits
    {0xE50, 0xE59, CharClass::Number},    // Thai digits
    {0x2000, 0x206F, CharClass::Other},   // general punctuation
    {0x2070, 0x2070, CharClass::Number},  // ⁰
    {0x2074, 0x2079, CharClass::Number},  // ⁴..⁹
    {0x207A, 0x207E, CharClass::Other},   // superscript signs
    {0x2080, 0x2089, CharClass::Number},  // ₀..₉
    {0x208A, 0x208E, CharClass::Other},   // subscript signs
    {0x20A0, 0x20FF, CharClass::Other},   // currency, combining marks for symbols
    {0x2100, 0x2101, CharClass::Other},   // letterlike symbols (the letters among them stay)
    {0x2103, 0x2106, CharClass::Other},   //
    {0x2108, 0x2109, CharClass::Other},   //
    {0x2114, 0x2114, CharClass::Other},   //
    {0x2116, 0x2118, CharClass::Other},   //
    {0x211E, 0x2123, CharClass::Other},   //
    {0x2125, 0x2125, CharClass::Other},   //
    {0x2127, 0x2127, CharClass::Other},   //
    {0x2129, 0x2129, CharClass::Other},   //
    {0x212E, 0x212E, CharClass::Other},   //
    {0x213A, 0x213B, CharClass::Other},   //
    {0x2140, 0x2144, CharClass::Other},   //
    {0x214A, 0x214D, CharClass::Other},   //
    {0x214F, 0x214F, CharClass::Other},   //
    {0x2150, 0x2182, CharClass::Number},  // number forms (fractions, Roman numerals)
    {0x2185, 0x2189, CharClass::Number},  //
    {0x218A, 0x245F, CharClass::Other},   // arrows, mathematical operators, technical, ...
    {0x2460, 0x249B, CharClass::Number},  // circled and parenthesised numbers
    {0x249C, 0x24E9, CharClass::Other},   // parenthesised and circled letters (So)
    {0x24EA, 0x24FF, CharClass::Number},  // circled numbers
    {0x2500, 0x2775, CharClass::Other},   // box drawing, shapes, dingbats
    {0x2776, 0x2793, CharClass::Number},  // dingbat circled numbers
    {0x2794, 0x2BFF, CharClass::Other},   // arrows, math, misc symbols
    {0x2CE5, 0x2CEA, CharClass::Other},   // Coptic symbols
    {0x2CEF, 0x2CFF, CharClass::Other},   // Coptic marks and punctuation
    {0x2DE0, 0x2E7F, CharClass::Other},   // Cyrillic combining letters, supplemental punctuation
    {0x2E80, 0x3004, CharClass::Other},   // CJK radicals, ideographic description, CJK punctuation
    {0x3007, 0x3007, CharClass::Number},  // 〇
    {0x3008, 0x3020, CharClass::Other},   // CJK brackets and marks
    {0x3021, 0x3029, CharClass::Number},  // Hangzhou numerals
    {0x302A, 0x3030, CharClass::Other},   // tone marks, wavy dash
    {0x3036, 0x3037, CharClass::Other},   //
    {0x3038, 0x303A, CharClass::Number},  //
    {0x303D, 0x303F, CharClass::Other},   //
    {0x3099, 0x309C, CharClass::Other},   // kana voicing marks
    {0x30A0, 0x30A0, CharClass::Other},   // katakana double hyphen
    {0x30FB, 0x30FB, CharClass::Other},   // katakana middle dot
    {0x3190, 0x3191, CharClass::Other},   // kanbun marks
    {0x3192, 0x3195, CharClass::Number},  // kanbun numbers
    {0x3196, 0x319F, CharClass::Other},   //
    {0x31C0, 0x31E3, CharClass::Other},   // CJK strokes
    {0x3200, 0x321F, CharClass::Other},   // enclosed CJK letters and months
    {0x3220, 0x3229, CharClass::Number},  // parenthesised ideographic numbers
    {0x322A, 0x3247, CharClass::Other},   //
    {0x3248, 0x324F, CharClass::Number},  // circled numbers on black squares
    {0x3250, 0x3250, CharClass::Other},   //
    {0x3251, 0x325F, CharClass::Number},  // circled numbers 21..35
    {0x3260, 0x327F, CharClass::Other},   //
    {0x3280, 0x3289, CharClass::Number},  // circled ideographic numbers
    {0x328A, 0x32B0, CharClass::Other},   //
    {0x32B1, 0x32BF, CharClass::Number},  // circled numbers 36..50
    {0x32C0, 0x33FF, CharClass::Other},   // CJK compatibility
    {0x4DC0, 0x4DFF, CharClass::Other},   // hexagrams
    {0xD800, 0xF8FF, CharClass::Other},   // surrogates, private use
    {0xFD3E, 0xFD3F, CharClass::Other},   // ornate parentheses
    {0xFE00, 0xFE6F, CharClass::Other},   // variation selectors, vertical/small forms
    {0xFEFF, 0xFF0F, CharClass::Other},   // BOM, fullwidth punctuation
    {0xFF10, 0xFF19, CharClass::Number},  // fullwidth digits
    {0xFF1A, 0xFF20, CharClass::Other},   //
    {0xFF3B, 0xFF40, CharClass::Other},   //
    {0xFF5B, 0xFF65, CharClass::Other},   //
    {0xFFE0, 0xFFFF, CharClass::Other},   // fullwidth signs, specials
    {0x1D7CE, 0x1D7FF, CharClass::Number},  // mathematical digits
    {0x1F000, 0x1FAFF, CharClass::Other},   // emoji and pictographs
    {0xE0000, 0x10FFFF, CharClass::Other},  // tags, variation selectors, private use
};

// The binary search in char_class needs sorted, disjoint ranges.
constexpr bool ranges_sorted() {
  for (size_t i = 0; i < std::size(kClassRanges); ++i)
    if (kClassRanges[i].lo > kClassRanges[i].hi ||
        (i > 0 && kClassRanges[i - 1].hi >= kClassRanges[i].lo))
      return false;
  return true;
}
static_assert(ranges_sorted(), "kClassRanges must be sorted and disjoint");

CharClass char_class(char32_t c) {
  if (is_space(c)) return CharClass::Space;
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::Letter;
    if (c >= '0' && c <= '9') return CharClass::Number;
    return CharClass::Other;
  }
  const auto* end = std::end(kClassRanges);
  const auto* it = std::upper_bound(std::begin(kClassRanges), end, c,
                                    [](char32_t v, const ClassRange& r) { return v < r.lo; });
  if (it != std::begin(kClassRanges) && c <= (it - 1)->hi) return (it - 1)->cls;
  return CharClass::Letter;
}

// Python's str.lower() on one code point, for ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic
// and fullwidth Latin; other code points are returned unchanged. U+0130 (İ) lowers to two code
// points, as in Python.
void append_lower(std::u32string& out, char32_t c) {
  auto in = [c](char32_t lo, char32_t hi) { return c >= lo && c <= hi; };
  if (in('A', 'Z') || (in(0xC0, 0xDE) && c != 0xD7) || in(0x391, 0x3A1) || in(0x3A3, 0x3AB) ||
      in(0x410, 0x42F) || in(0xFF21, 0xFF3A)) {
    out += c + 0x20;
  } else if (c == 0x130) {
    out += U"i\u0307";
  } else if ((in(0x100, 0x12F) || in(0x132, 0x137) || in(0x14A, 0x177)) && c % 2 == 0) {
    out += c + 1;
  } else if ((in(0x139, 0x148) || in(0x179, 0x17E)) && c % 2 == 1) {
    out += c + 1;
  } else if (c == 0x178) {
    out += char32_t(0xFF);
  } else if (in(0x400, 0x40F)) {
    out += c + 0x50;
  } else if (c == 0x386) {
    out += char32_t(0x3AC);
  } else if (in(0x388, 0x38A)) {
    out += c + 0x25;
  } else if (c == 0x38C) {
    out += char32_t(0x3CC);
  } else if (in(0x38E, 0x38F)) {
    out += c + 0x3F;
  } else {
    out += c;
  }
}

std::string to_utf8(const std::u32string& s, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) append_utf8(out, s[i]);
  return out;
}

// ---- bytes_to_unicode (simple_tokenizer.py) ----

bool is_printable_byte(int b) {
  return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
}

// Byte -> printable code point: 33..126, 161..172, 174..255 map to themselves, the other 68 bytes
// to 256, 257, ... in increasing byte order.
const std::array<std::string, 256>& byte_chars() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    char32_t next = 256;
    for (int b = 0; b < 256; ++b)
      append_utf8(t[size_t(b)], is_printable_byte(b) ? char32_t(b) : next++);
    return t;
  }();
  return table;
}

// The byte characters in bytes_to_unicode()'s dict order (the printable bytes, then the others),
// the order of ids 0..255 in OpenAI's vocabulary.
std::vector<std::string> byte_chars_in_vocab_order() {
  std::vector<std::string> out;
  for (int printable = 1; printable >= 0; --printable)
    for (int b = 0; b < 256; ++b)
      if (is_printable_byte(b) == bool(printable)) out.push_back(byte_chars()[size_t(b)]);
  return out;
}

// Printable code point -> byte (the inverse of byte_chars).
const std::unordered_map<char32_t, unsigned char>& char_bytes() {
  static const std::unordered_map<char32_t, unsigned char> table = [] {
    std::unordered_map<char32_t, unsigned char> t;
    for (int b = 0; b < 256; ++b) t[decode_utf8(byte_chars()[size_t(b)])[0]] = (unsigned char)b;
    return t;
  }();
  return table;
}

// The byte characters of a pre-token, one string per byte.
std::vector<std::string> byte_symbols(const std::string& token) {
  std::vector<std::string> out;
  out.reserve(token.size());
  for (unsigned char b : token) out.push_back(byte_chars()[b]);
  return out;
}

// Merges every non-overlapping occurrence of the pair (a, b), left to right.
void merge_pair(std::vector<std::string>& word, const std::string& a, const std::string& b) {
  std::vector<std::string> merged;
  merged.reserve(word.size());
  for (size_t i = 0; i < word.size();) {
    if (i + 1 < word.size() && word[i] == a && word[i + 1] == b) {
      merged.push_back(a + b);
      i += 2;
    } else {
      merged.push_back(std::move(word[i]));
      ++i;
    }
  }
  word = std::move(merged);
}

// ---- files ----

nlohmann::json read_json(const std::filesystem::path& path) {
  const std::string text = read_file(path.string(), "CLIP tokenizer");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    CXR_FAIL("CLIP tokenizer: ", path.string(), " is not valid JSON: ", e.what());
  }
}

// A special token in special_tokens_map.json / tokenizer_config.json: a string or an added-token
// object {"content": ...}; empty when absent or null.
std::string special_token(const nlohmann::json& j, const char* key, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return {};
  const auto& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  CXR_CHECK(v.is_object() && v.contains("content") && v["content"].is_string(),
            "CLIP tokenizer: ", source, ": '", key,
            "' must be a string or an object with a string 'content', got ", v.dump());
  return v["content"].get<std::string>();
}

void read_special_tokens(const nlohmann::json& j, const std::string& source,
                         ClipSpecialTokens& special) {
  CXR_CHECK(j.is_object(), "CLIP tokenizer: ", source, " must hold a JSON object");
  const std::pair<const char*, std::string*> keys[] = {{"bos_token", &special.bos},
                                                       {"eos_token", &special.eos},
                                                       {"pad_token", &special.pad},
                                                       {"unk_token", &special.unk}};
  for (const auto& [key, slot] : keys) {
    std::string token = special_token(j, key, source);
    if (!token.empty()) *slot = std::move(token);
  }
}

}  // namespace

// ---- clean-up and pre-tokenisation ----

std::string clip_clean_text(std::string_view text) {
  std::u32string out;
  for (char32_t c : decode_utf8(text)) {
    if (is_space(c)) {
      if (!out.empty() && out.back() != U' ') out += U' ';
    } else {
      append_lower(out, c);
    }
  }
  if (!out.empty() && out.back() == U' ') out.pop_back();
  return to_utf8(out, 0, out.size());
}

std::vector<std::string> clip_pre_tokenize(std::string_view cleaned) {
  const std::vector<char32_t> cps = decode_utf8(cleaned);
  const std::u32string s(cps.begin(), cps.end());
  auto starts_with = [&](size_t i, std::u32string_view p) {
    return s.compare(i, p.size(), p) == 0;
  };
  static constexpr std::u32string_view kLiterals[] = {
      U"<|startoftext|>", U"<|endoftext|>", U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    // The alternatives in the regex's order: the first that matches at i wins.
    size_t end = i;
    for (std::u32string_view lit : kLiterals) {
      if (starts_with(i, lit)) {
        end = i + lit.size();
        break;
      }
    }
    if (end == i) {
      const CharClass cls = char_class(s[i]);
      if (cls == CharClass::Space) {
        ++i;
        continue;
      }
      end = i + 1;
      if (cls != CharClass::Number) {  // letters and "other" runs are greedy; digits single
        while (end < s.size() && char_class(s[end]) == cls) ++end;
      }
    }
    out.push_back(to_utf8(s, i, end));
    i = end;
  }
  return out;
}

// ---- the tokenizer ----

struct ClipTokenizer::Cache {
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<std::string>> words;
};

ClipTokenizer::~ClipTokenizer() = default;
ClipTokenizer::ClipTokenizer(ClipTokenizer&&) noexcept = default;
ClipTokenizer& ClipTokenizer::operator=(ClipTokenizer&&) noexcept = default;

ClipTokenizer::ClipTokenizer(std::unordered_map<std::string, int64_t> vocab,
                             std::vector<Merge> merges, ClipSpecialTokens special)
    : vocab_(std::move(vocab)),
      merges_(std::move(merges)),
      special_(std::move(special)),
      cache_(std::make_unique<Cache>()) {
  CXR_CHECK(!vocab_.empty(), "CLIP tokenizer: the vocabulary is empty");
  for (const auto& [token, id] : vocab_) {
    CXR_CHECK(id >= 0, "CLIP tokenizer: token '", token, "' has negative id ", id);
    const auto [it, fresh] = tokens_.emplace(id, token);
    CXR_CHECK(fresh, "CLIP tokenizer: id ", id, " is given to both '", it->second, "' and '", token,
              "'");
    vocab_size_ = std::max(vocab_size_, id + 1);
  }
  for (size_t r = 0; r < merges_.size(); ++r) {
    const auto& [a, b] = merges_[r];
    CXR_CHECK(vocab_.count(a + b), "CLIP tokenizer: merge ", r + 1, " '", a, " ", b, "' gives '",
              a + b, "', which is not in the vocabulary");
    ranks_.emplace(a + " " + b, int64_t(r));  // a repeated merge keeps its first rank
  }
  auto id_of = [&](const std::string& token, const char* role) {
    const auto it = vocab_.find(token);
    CXR_CHECK(it != vocab_.end(), "CLIP tokenizer: the ", role, " token '", token,
              "' is not in the vocabulary");
    return it->second;
  };
  bos_id_ = id_of(special_.bos, "bos");
  eos_id_ = id_of(special_.eos, "eos");
  pad_id_ = id_of(special_.pad, "pad");
  unk_id_ = id_of(special_.unk, "unk");
  CXR_CHECK(special_.model_max_length >= 2, "CLIP tokenizer: model_max_length must be at least 2 ",
            "(BOS and EOS), got ", special_.model_max_length);
}

ClipTokenizer ClipTokenizer::load(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path root(dir);
  CXR_CHECK(fs::is_directory(root), "CLIP tokenizer: ", dir,
            " is not a folder (expected a tokenizer folder with vocab.json and merges.txt)");
  const fs::path vocab_path = root / "vocab.json";
  const nlohmann::json vocab_json = read_json(vocab_path);
  CXR_CHECK(vocab_json.is_object(), "CLIP tokenizer: ", vocab_path.string(),
            " must hold a JSON object token -> id");
  std::unordered_map<std::string, int64_t> vocab;
  for (const auto& [token, id] : vocab_json.items()) {
    CXR_CHECK(id.is_number_integer(), "CLIP tokenizer: ", vocab_path.string(), ": the id of '",
              token, "' must be an integer, got ", id.dump());
    vocab.emplace(token, id.get<int64_t>());
  }
  const fs::path merges_path = root / "merges.txt";
  std::vector<Merge> merges =
      parse_merges(read_file(merges_path.string(), "CLIP tokenizer"), merges_path.string());

  ClipSpecialTokens special;
  const fs::path config_path = root / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    const nlohmann::json config = read_json(config_path);
    read_special_tokens(config, config_path.string(), special);
    // Some configs give a huge float ("no limit"); only an integer limit is taken.
    if (config.contains("model_max_length") && config["model_max_length"].is_number_integer())
      special.model_max_length = config["model_max_length"].get<int64_t>();
  }
  const fs::path map_path = root / "special_tokens_map.json";
  if (fs::exists(map_path)) read_special_tokens(read_json(map_path), map_path.string(), special);

  try {
    return ClipTokenizer(std::move(vocab), std::move(merges), std::move(special));
  } catch (const Error& e) {
    CXR_FAIL(e.what(), " (tokenizer folder ", dir, ")");
  }
}

void ClipTokenizer::save(const std::string& dir) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  CXR_CHECK(!ec, "CLIP tokenizer: cannot create the folder ", dir, ": ", ec.message());
  const fs::path root(dir);

  nlohmann::json vocab = nlohmann::json::object();  // keys sorted, as transformers writes them
  for (const auto& [token, id] : vocab_) vocab[token] = id;
  write_file_atomic((root / "vocab.json").string(), vocab.dump(2) + "\n", "CLIP tokenizer");

  std::string merges = "#version: 0.2\n";
  for (const auto& [a, b] : merges_) merges += a + " " + b + "\n";
  write_file_atomic((root / "merges.txt").string(), merges, "CLIP tokenizer");

  const nlohmann::json special = {{"bos_token", special_.bos},
                                  {"eos_token", special_.eos},
                                  {"pad_token", special_.pad},
                                  {"unk_token", special_.unk}};
  write_file_atomic((root / "special_tokens_map.json").string(), special.dump(2) + "\n",
                    "CLIP tokenizer");
  nlohmann::json config = special;
  config["model_max_length"] = special_.model_max_length;
  config["tokenizer_class"] = "CLIPTokenizer";
  write_file_atomic((root / "tokenizer_config.json").string(), config.dump(2) + "\n",
                    "CLIP tokenizer");
}

std::vector<ClipTokenizer::Merge> ClipTokenizer::parse_merges(std::string_view text,
                                                              const std::string& source) {
  CXR_CHECK(!text.empty(), "CLIP tokenizer: ", source, " is empty (expected merges)");
  std::vector<Merge> merges;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line_no == 1 && (line.front() == '#' || line.find("#version") != std::string_view::npos))
      continue;
    const size_t space = line.find(' ');
    const bool ok = space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
                    line.find(' ', space + 1) == std::string_view::npos;
    CXR_CHECK(ok, "CLIP tokenizer: ", source, " line ", line_no,
              ": expected two symbols separated by one space, got '", std::string(line), "'");
    merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
  }
  return merges;
}

ClipTokenizer ClipTokenizer::from_merges(std::vector<Merge> merges) {
  std::unordered_map<std::string, int64_t> vocab;
  int64_t id = 0;
  // A token seen twice keeps its later id, as simple_tokenizer.py's dict(zip(vocab, range(n))).
  auto add = [&](const std::string& token) { vocab[token] = id++; };
  const std::vector<std::string> chars = byte_chars_in_vocab_order();
  for (const std::string& c : chars) add(c);
  for (const std::string& c : chars) add(c + kEndOfWord);
  for (const auto& [a, b] : merges) add(a + b);
  const ClipSpecialTokens special;
  add(special.bos);
  add(special.eos);
  return ClipTokenizer(std::move(vocab), std::move(merges), special);
}

ClipTokenizer ClipTokenizer::train(const std::vector<std::string>& texts, int64_t num_merges) {
  CXR_CHECK(num_merges >= 0, "CLIP tokenizer train: num_merges must be >= 0, got ", num_merges);
  const ClipSpecialTokens special;
  // Distinct words (pre-tokens as symbol sequences, "</w>" on the last) with their counts.
  std::map<std::vector<std::string>, int64_t> counts;
  for (const std::string& text : texts) {
    for (const std::string& token : clip_pre_tokenize(clip_clean_text(text))) {
      if (token == special.bos || token == special.eos) continue;
      std::vector<std::string> word = byte_symbols(token);
      word.back() += kEndOfWord;
      ++counts[word];
    }
  }
  std::vector<std::pair<std::vector<std::string>, int64_t>> words(counts.begin(), counts.end());
  std::vector<Merge> merges;
  while (int64_t(merges.size()) < num_merges) {
    std::map<Merge, int64_t> pairs;  // ordered: the first of equal counts is the smallest pair
    for (const auto& [word, n] : words)
      for (size_t i = 0; i + 1 < word.size(); ++i) pairs[{word[i], word[i + 1]}] += n;
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;
    for (auto& entry : words) merge_pair(entry.first, best->first.first, best->first.second);
    merges.push_back(best->first);
  }
  return from_merges(std::move(merges));
}

std::vector<std::string> ClipTokenizer::bpe(const std::string& token) const {
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    const auto it = cache_->words.find(token);
    if (it != cache_->words.end()) return it->second;
  }
  std::vector<std::string> word = byte_symbols(token);
  word.back() += kEndOfWord;
  // Repeatedly merge the adjacent pair of lowest rank (simple_tokenizer.py bpe()).
  while (word.size() > 1) {
    int64_t best_rank = -1;
    size_t best = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      const auto it = ranks_.find(word[i] + " " + word[i + 1]);
      if (it != ranks_.end() && (best_rank < 0 || it->second < best_rank)) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best_rank < 0) break;
    const std::string a = word[best], b = word[best + 1];
    merge_pair(word, a, b);
  }
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->words.size() >= kCacheLimit) cache_->words.clear();
  cache_->words.emplace(token, word);
  return word;
}

std::vector<std::string> ClipTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  for (const std::string& token : clip_pre_tokenize(clip_clean_text(text))) {
    if (token == special_.bos || token == special_.eos) {
      out.push_back(token);
      continue;
    }
    for (std::string& symbol : bpe(token)) out.push_back(std::move(symbol));
  }
  return out;
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::string& token : tokenize(text)) {
    const auto it = vocab_.find(token);
    ids.push_back(it == vocab_.end() ? unk_id_ : it->second);
  }
  return ids;
}

ClipEncoding ClipTokenizer::operator()(const std::string& text, int64_t max_length,
                                       bool pad) const {
  if (max_length < 0) max_length = special_.model_max_length;
  CXR_CHECK(max_length >= 2, "CLIP tokenizer: max_length must be at least 2 (BOS and EOS), got ",
            max_length);
  const std::vector<int64_t> ids = encode(text);
  const size_t keep = std::min(ids.size(), size_t(max_length - 2));
  ClipEncoding out;
  out.input_ids.push_back(bos_id_);
  out.input_ids.insert(out.input_ids.end(), ids.begin(), ids.begin() + std::ptrdiff_t(keep));
  out.input_ids.push_back(eos_id_);
  out.attention_mask.assign(out.input_ids.size(), 1);
  if (pad) {
    out.input_ids.resize(size_t(max_length), pad_id_);
    out.attention_mask.resize(size_t(max_length), 0);
  }
  return out;
}

Tensor ClipTokenizer::input_ids(const std::vector<std::string>& texts, int64_t max_length) const {
  if (max_length < 0) max_length = special_.model_max_length;
  std::vector<int64_t> ids;
  ids.reserve(texts.size() * size_t(max_length));
  for (const std::string& text : texts) {
    const ClipEncoding e = (*this)(text, max_length, true);
    ids.insert(ids.end(), e.input_ids.begin(), e.input_ids.end());
  }
  return raw::from_vector(ids, {int64_t(texts.size()), max_length}, kInt64);
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string joined;
  for (int64_t id : ids) {
    const auto it = tokens_.find(id);
    CXR_CHECK(it != tokens_.end(), "CLIP tokenizer decode: id ", id, " is not in the vocabulary");
    joined += it->second;
  }
  std::string bytes;
  for (char32_t c : decode_utf8(joined)) {
    const auto it = char_bytes().find(c);
    if (it != char_bytes().end()) {
      bytes += char(it->second);
    } else {
      append_utf8(bytes, c);  // not a byte character (cannot come from the byte-level vocabulary)
    }
  }
  std::string out;
  for (size_t i = 0; i < bytes.size();) {
    if (bytes.compare(i, 4, kEndOfWord) == 0) {
      out += ' ';
      i += 4;
    } else {
      out += bytes[i++];
    }
  }
  return out;
}

}  // namespace cxr::models
