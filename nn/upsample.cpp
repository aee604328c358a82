// Upsample layer over the differentiable upsampling ops of autograd/conv.h.
#include "nn/upsample.h"

#include <cmath>
#include <sstream>

#include "autograd/conv.h"  // upsample_nearest2d, upsample_bilinear2d

namespace cxr::nn {

Upsample::Upsample(double scale, UpsampleMode m, bool align) : Upsample(scale, scale, m, align) {}

Upsample::Upsample(double scale_h, double scale_w, UpsampleMode m, bool align)
    : Module("Upsample"),
      scale_factor(std::array<double, 2>{scale_h, scale_w}),
      mode(m),
      align_corners(align) {
  CXR_CHECK(scale_h > 0 && scale_w > 0, "Upsample: scale_factor must be positive, got (", scale_h,
            ", ", scale_w, ")");
  CXR_CHECK(!align || m == UpsampleMode::Bilinear,
            "Upsample: align_corners only applies to bilinear mode");
}

Upsample::Upsample(Size2 out, UpsampleMode m, bool align)
    : Module("Upsample"), size(out), mode(m), align_corners(align) {
  CXR_CHECK(out.h > 0 && out.w > 0, "Upsample: size ", out.str(), " must be positive");
  CXR_CHECK(!align || m == UpsampleMode::Bilinear,
            "Upsample: align_corners only applies to bilinear mode");
}

Tensor Upsample::forward(const Tensor& x) {
  CXR_CHECK(x.defined() && x.dim() == 4, "Upsample: expected input [N, C, H, W], got ",
            x.defined() ? describe(x) : std::string("undefined"));
  Int2 out;
  if (size) {
    out = size->pair();
  } else {
    out = {int64_t(std::floor(double(x.size(2)) * (*scale_factor)[0])),
           int64_t(std::floor(double(x.size(3)) * (*scale_factor)[1]))};
    CXR_CHECK(out[0] > 0 && out[1] > 0, "Upsample: scale_factor gives an empty output for ",
              describe(x));
  }
  return mode == UpsampleMode::Nearest ? upsample_nearest2d(x, out)
                                       : upsample_bilinear2d(x, out, align_corners);
}

std::string Upsample::extra_repr() const {
  std::ostringstream os;
  if (size)
    os << "size=" << size->str();
  else
    os << "scale_factor=(" << (*scale_factor)[0] << ", " << (*scale_factor)[1] << ")";
  os << ", mode='" << (mode == UpsampleMode::Nearest ? "nearest" : "bilinear") << "'";
  if (mode == UpsampleMode::Bilinear)
    os << ", align_corners=" << (align_corners ? "True" : "False");
  return os.str();
}

}  // namespace cxr::nn
