// Synthetic image sets: the images a generator wrote (`cxr sample`) with what they were generated
// from, listed in <dir>/synthetic.csv:
//   id,image,mask,prompt,<label>,...
// image (required) and mask (optional) are paths relative to <dir>; mask is a PNG whose non-zero
// pixels are the finding (an empty field or a missing column = no finding: an all-black condition);
// prompt (optional) is the text condition; every other column is a label (0/1, empty = unknown).
// Each row becomes a Sample with synthetic = true, so the split guard keeps it out of val/test.
#pragma once

#include <string>
#include <vector>

#include "data/sample.h"

namespace cxr::data {

// Reads <dir>/synthetic.csv. `label_names` are the labels the caller needs, in its order: each
// must be a column (throws naming the missing ones and the columns present). Masks are read now
// and kept as absolute RLE at the mask's own size; image files are checked to exist. Errors name
// the file and line.
Dataset read_synthetic(const std::string& dir, const std::vector<std::string>& label_names);

}  // namespace cxr::data
