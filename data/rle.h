// Run-length encodings of binary masks, in the two conventions the chest X-ray datasets use.
// Masks are row-major uint8 buffers [H*W] (0 = background, 1 = foreground; decode writes 1).
//
// 1. Relative, column-major (SIIM-ACR train-rle.csv, CANDID-PTX): pairs (s, l); the flat index runs
//    down columns (flat = col*H + row); each s is the number of background pixels since the end of
//    the previous run (from 0 for the first). "-1" or "" means an empty mask. Format as described
//    by the competition's mask_functions.py (JonnoFTW/kaggle-pneumothorax @ 63240465),
//    spec/datasets.md §5.3. Our encoder also closes a run that touches the last pixel (the official
//    one drops it).
// 2. Absolute, row-major (CheXmask-style lung/heart masks): pairs (start, length) with 1-based
//    absolute starts over the row-major flat buffer; "-1" or "" means empty (spec/datasets.md
//    §5.4).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cxr::data {

// True for "-1" / "" (after trimming): the empty-mask marker.
bool rle_is_empty(std::string_view rle);

// Decodes a relative column-major RLE into a new [height*width] row-major mask.
std::vector<uint8_t> rle_decode_relative(std::string_view rle, int64_t height, int64_t width);
// ORs the decoded runs into an existing row-major mask (merging several rows of one image).
void rle_decode_relative_into(std::string_view rle, int64_t height, int64_t width, uint8_t* mask);
// Encodes a row-major mask (nonzero = foreground); "-1" when empty.
std::string rle_encode_relative(const uint8_t* mask, int64_t height, int64_t width);

// The absolute, row-major, 1-based convention.
std::vector<uint8_t> rle_decode_absolute(std::string_view rle, int64_t height, int64_t width);
void rle_decode_absolute_into(std::string_view rle, int64_t height, int64_t width, uint8_t* mask);
std::string rle_encode_absolute(const uint8_t* mask, int64_t height, int64_t width);

// Number of foreground pixels a relative RLE covers (validating it), without allocating a mask.
int64_t rle_relative_pixel_count(std::string_view rle, int64_t height, int64_t width);

}  // namespace cxr::data
