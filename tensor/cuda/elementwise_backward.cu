// CUDA kernels of the elementwise backward ops (tensor/elementwise.h): grad * f'(x) for every
// UnaryOp and for leaky_relu, softplus and clamp, through the backward() of the tensor/math.h
// functors, in the compute type of the dtype, as the CPU loops do.
#include "tensor/cuda/elementwise.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/dtype.h"
#include "tensor/math.h"

namespace cxr::cuda {

namespace {

// (g, x) -> fn.backward(g, x).
template <typename Fn>
struct BackwardFn {
  Fn fn;
  template <typename C>
  __device__ C operator()(C g, C x) const {
    return fn.backward(g, x);
  }
};

template <typename Fn>
BackwardFn<Fn> backward_of(Fn fn) {
  return {fn};
}

}  // namespace

void unary_backward(UnaryOp op, const Tensor& out, const Tensor& grad, const Tensor& x) {
  const char* name = unary_op_name(op);
  CXR_DISPATCH_FLOAT(x.dtype(), name, ([&]<typename T>() {
                       math::visit_unary(op, [&](auto fn) {
                         launch_map<T, T, 2>(out, {&grad, &x}, backward_of(fn), name);
                       });
                     }));
}

void leaky_relu_backward(const Tensor& out, const Tensor& grad, const Tensor& x,
                         double negative_slope) {
  CXR_DISPATCH_FLOAT(x.dtype(), "leaky_relu_backward", ([&]<typename T>() {
                       using C = compute_t<T>;
                       launch_map<T, T, 2>(out, {&grad, &x},
                                           backward_of(math::LeakyReluFn<C>{C(negative_slope)}),
                                           "leaky_relu_backward");
                     }));
}

void softplus_backward(const Tensor& out, const Tensor& grad, const Tensor& x, double beta,
                       double threshold) {
  CXR_DISPATCH_FLOAT(x.dtype(), "softplus_backward", ([&]<typename T>() {
                       using C = compute_t<T>;
                       launch_map<T, T, 2>(out, {&grad, &x},
                                           backward_of(math::SoftplusFn<C>{C(beta), C(threshold)}),
                                           "softplus_backward");
                     }));
}

void clamp_backward(const Tensor& out, const Tensor& grad, const Tensor& x, double lo, double hi) {
  CXR_DISPATCH_FLOAT(x.dtype(), "clamp_backward", ([&]<typename T>() {
                       using C = compute_t<T>;
                       launch_map<T, T, 2>(out, {&grad, &x},
                                           backward_of(math::ClampFn<C>{C(lo), C(hi)}),
                                           "clamp_backward");
                     }));
}

}  // namespace cxr::cuda
