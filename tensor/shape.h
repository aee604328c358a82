// Shapes and strides: broadcasting, contiguous strides, dim normalisation, printing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cxr {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
// Row-major strides (in elements) of a contiguous tensor of this shape.
Shape contiguous_strides(const Shape& shape);
// NumPy broadcasting of two shapes; throws cxr::Error naming `op` and both shapes if impossible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Maps a possibly negative dim into [0, ndim); throws naming `op` when out of range.
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);
// Sorted, de-duplicated, normalised dims; an empty list means all dims.
std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);
// "[2, 3, 4]"
std::string shape_str(const Shape& shape);

}  // namespace cxr
