// Broadcast strides for the strided loop.
#include "tensor/cpu/loops.h"

namespace cxr::cpu {

Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  const int64_t nd = int64_t(shape.size()), td = t.dim();
  CXR_CHECK(td <= nd, "broadcast: tensor ", describe(t), " has more dims than the target shape ",
            shape_str(shape));
  Shape strides(size_t(nd), 0);
  for (int64_t d = 0; d < td; ++d) {
    int64_t od = nd - td + d;
    int64_t size = t.sizes()[size_t(d)];
    CXR_CHECK(size == shape[size_t(od)] || size == 1, "broadcast: tensor ", describe(t),
              " cannot be broadcast to ", shape_str(shape));
    strides[size_t(od)] = size == 1 ? 0 : t.strides()[size_t(d)];
  }
  return strides;
}

}  // namespace cxr::cpu
