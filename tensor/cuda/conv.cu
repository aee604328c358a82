// CUDA convolutions (tensor/conv.h) through cuDNN's convolution API (cudnnConvolutionForward,
// ...BackwardData, ...BackwardFilter) on contiguous NCHW tensors. Data and compute types: float32
// with TF32 tensor cores allowed (CUDNN_DEFAULT_MATH), float16/bfloat16 with float32 compute on
// tensor cores, float64 in float64. The algorithm of each (pass, shapes, parameters, dtype, device)
// is chosen once from cuDNN's heuristics (cudnnGet*Algorithm_v7) and cached: the first result that
// is supported, deterministic (same input, same bits; the backward algorithms that add with
// atomics are skipped while another one exists), does not down-convert to a lower precision and
// needs at most kMaxWorkspace of scratch memory, which comes from the memory pool as a uint8
// tensor. The bias is written into the output first and the convolution added onto it (beta = 1),
// as the CPU kernel does. Should cuDNN offer no algorithm at all for a half-precision problem, it
// is computed in float32 and converted back (as on the CPU).
#include "tensor/creation.h"
#include "tensor/cuda/context.cuh"
#include "tensor/cuda/conv.h"

#ifdef CXR_WITH_CUDNN
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <vector>
#endif

namespace cxr::cuda {

#ifdef CXR_WITH_CUDNN
namespace {

constexpr size_t kMaxWorkspace = size_t(1) << 30;

// A cuDNN descriptor, created with the object and destroyed with it.
template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class Descriptor {
 public:
  Descriptor() { CXR_CUDNN_CHECK(Create(&d_)); }
  ~Descriptor() { Destroy(d_); }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  T get() const { return d_; }

 private:
  T d_ = nullptr;
};
using TensorDesc =
    Descriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc =
    Descriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc = Descriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                            cudnnDestroyConvolutionDescriptor>;

cudnnDataType_t data_type(DType dtype) {
  switch (dtype) {
    case kFloat32:
      return CUDNN_DATA_FLOAT;
    case kFloat64:
      return CUDNN_DATA_DOUBLE;
    case kFloat16:
      return CUDNN_DATA_HALF;
    case kBFloat16:
      return CUDNN_DATA_BFLOAT16;
    default:
      CXR_FAIL("conv2d on CUDA: no cuDNN type for dtype ", dtype_name(dtype));
  }
}

bool is_half(DType dtype) {
  return dtype == kFloat16 || dtype == kBFloat16;
}

// cuDNN takes sizes and convolution parameters as int.
int as_int(int64_t v) {
  CXR_CHECK(v >= 0 && v <= std::numeric_limits<int>::max(), "conv2d on CUDA: size ", v,
            " is outside cuDNN's 32-bit range");
  return int(v);
}

// The descriptors of one convolution: input x [N, C, H, W], weight w [OC, C/groups, KH, KW] and
// output y [N, OC, OH, OW] (the forward pass's names, also in the backward passes).
struct ConvDescs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;

  ConvDescs(const Shape& xs, const Shape& ws, const Shape& ys, const Conv2dParams& p, DType dtype) {
    const cudnnDataType_t type = data_type(dtype);
    CXR_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x.get(), CUDNN_TENSOR_NCHW, type, as_int(xs[0]),
                                               as_int(xs[1]), as_int(xs[2]), as_int(xs[3])));
    CXR_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y.get(), CUDNN_TENSOR_NCHW, type, as_int(ys[0]),
                                               as_int(ys[1]), as_int(ys[2]), as_int(ys[3])));
    CXR_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w.get(), type, CUDNN_TENSOR_NCHW, as_int(ws[0]),
                                               as_int(ws[1]), as_int(ws[2]), as_int(ws[3])));
    // Half types accumulate in float32 (cuDNN's "pseudo half" configurations).
    const cudnnDataType_t compute = dtype == kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    CXR_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        conv.get(), as_int(p.padding[0]), as_int(p.padding[1]), as_int(p.stride[0]),
        as_int(p.stride[1]), as_int(p.dilation[0]), as_int(p.dilation[1]), CUDNN_CROSS_CORRELATION,
        compute));
    CXR_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv.get(), as_int(p.groups)));
    // float32: the default math allows TF32 tensor cores; half types: tensor cores.
    CXR_CUDNN_CHECK(cudnnSetConvolutionMathType(
        conv.get(), is_half(dtype) ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH));
  }
};

enum class Pass { kForward, kBackwardData, kBackwardFilter };

// The algorithm chosen for a problem, its math type and its scratch memory in bytes.
struct Choice {
  int algo;
  cudnnMathType_t math;
  size_t workspace;
};

// The first usable result of a heuristics query (they come fastest first); with `deterministic`,
// only algorithms that give the same bits on every run.
template <typename Perf>
std::optional<Choice> pick(const std::vector<Perf>& perf, int count, bool deterministic) {
  for (int i = 0; i < count; ++i) {
    const Perf& r = perf[size_t(i)];
    if (r.status == CUDNN_STATUS_SUCCESS &&
        (!deterministic || r.determinism == CUDNN_DETERMINISTIC) &&
        r.mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && r.memory <= kMaxWorkspace)
      return Choice{int(r.algo), r.mathType, r.memory};
  }
  return std::nullopt;
}

// A deterministic algorithm when cuDNN has one, else any usable one (whose results may then differ
// in the last bits from run to run).
template <typename Perf>
std::optional<Choice> pick(const std::vector<Perf>& perf, int count) {
  std::optional<Choice> c = pick(perf, count, true);
  return c ? c : pick(perf, count, false);
}

// Asks cuDNN's heuristics for the algorithm of `pass` on the problem of `d` and sizes its
// workspace for the math type it runs with (set on d.conv).
std::optional<Choice> query(Pass pass, const ConvDescs& d, cudnnHandle_t h) {
  int max = 0, count = 0;
  std::optional<Choice> c;
  size_t bytes = 0;
  switch (pass) {
    case Pass::kForward: {
      CXR_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(max));
      CXR_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.get(), d.w.get(), d.conv.get(),
                                                             d.y.get(), max, &count, perf.data()));
      if (!(c = pick(perf, count))) return c;
      CXR_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), c->math));
      CXR_CUDNN_CHECK(
          cudnnGetConvolutionForwardWorkspaceSize(h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(),
                                                  cudnnConvolutionFwdAlgo_t(c->algo), &bytes));
      break;
    }
    case Pass::kBackwardData: {
      CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<size_t>(max));
      CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), max, &count, perf.data()));
      if (!(c = pick(perf, count))) return c;
      CXR_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), c->math));
      CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
          h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), cudnnConvolutionBwdDataAlgo_t(c->algo),
          &bytes));
      break;
    }
    case Pass::kBackwardFilter: {
      CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(static_cast<size_t>(max));
      CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), max, &count, perf.data()));
      if (!(c = pick(perf, count))) return c;
      CXR_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), c->math));
      CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
          h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(),
          cudnnConvolutionBwdFilterAlgo_t(c->algo), &bytes));
      break;
    }
  }
  c->workspace = bytes;
  return c;
}

// The cached choice for (pass, device, dtype, input and weight shapes, parameters), queried on
// first use; leaves d.conv set to the choice's math type.
std::optional<Choice> choose(Pass pass, const ConvDescs& d, const Shape& xs, const Shape& ws,
                             const Conv2dParams& p, DType dtype, int device) {
  std::vector<int64_t> key = {int64_t(pass), device, int64_t(dtype)};
  key.insert(key.end(), xs.begin(), xs.end());
  key.insert(key.end(), ws.begin(), ws.end());
  for (const Int2& v : {p.stride, p.padding, p.dilation}) key.insert(key.end(), v.begin(), v.end());
  key.push_back(p.groups);

  static std::mutex mutex;
  static std::map<std::vector<int64_t>, std::optional<Choice>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, query(pass, d, cudnn_handle(device))).first;
  if (it->second) CXR_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), it->second->math));
  return it->second;
}

// Scratch memory of a choice, from the pool (returned in stream order when the tensor dies).
struct Workspace {
  Tensor t;
  void* ptr = nullptr;
  size_t bytes = 0;
  Workspace(const Choice& c, Device device) : bytes(c.workspace) {
    if (bytes == 0) return;
    t = raw::empty({int64_t(bytes)}, kUInt8, device);
    ptr = t.data_ptr();
  }
};

// alpha/beta for cuDNN: double for float64 data, float otherwise.
struct Scale {
  double d;
  float f;
  explicit Scale(double v) : d(v), f(float(v)) {}
  const void* ptr(DType dtype) const {
    return dtype == kFloat64 ? static_cast<const void*>(&d) : &f;
  }
};

Tensor to_float32(const Tensor& t) {
  return t.defined() ? raw::to(t, kFloat32) : t;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
              const Shape& out_shape) {
  DeviceGuard guard(x.device());
  const DType dtype = x.dtype();
  const int device = x.device().index;
  // The bias [OC] as a [OC, 1, 1] view, broadcast over images and pixels when copied into y.
  const Tensor bias_column = bias.defined() ? Tensor(bias.storage(), {bias.size(0), 1, 1},
                                                     {bias.stride(0), 1, 1}, bias.offset(), dtype)
                                            : Tensor();
  if (shape_numel(out_shape) == 0 || x.size(1) == 0) {
    // Nothing to compute, or no input channels: y is the bias alone (an empty sum).
    Tensor y = raw::empty(out_shape, dtype, x.device());
    if (y.numel() > 0 && bias.defined()) raw::copy_(y, bias_column);
    if (y.numel() > 0 && !bias.defined()) raw::fill_(y, 0.0);
    return y;
  }
  const ConvDescs d(x.sizes(), weight.sizes(), out_shape, p, dtype);
  const std::optional<Choice> c =
      choose(Pass::kForward, d, x.sizes(), weight.sizes(), p, dtype, device);
  if (!c) {
    CXR_CHECK(is_half(dtype), "conv2d on CUDA: cuDNN has no algorithm for input ", describe(x),
              " and weight ", describe(weight));
    return raw::to(conv2d(to_float32(x), to_float32(weight), to_float32(bias), p, out_shape),
                   dtype);
  }
  Tensor y = raw::empty(out_shape, dtype, x.device());
  if (bias.defined()) raw::copy_(y, bias_column);  // the convolution is added onto it (beta = 1)
  const Tensor xc = raw::contiguous(x), wc = raw::contiguous(weight);
  const Workspace ws(*c, x.device());
  const Scale one(1.0), beta(bias.defined() ? 1.0 : 0.0);
  CXR_CUDNN_CHECK(cudnnConvolutionForward(cudnn_handle(device), one.ptr(dtype), d.x.get(),
                                          xc.data_ptr(), d.w.get(), wc.data_ptr(), d.conv.get(),
                                          cudnnConvolutionFwdAlgo_t(c->algo), ws.ptr, ws.bytes,
                                          beta.ptr(dtype), d.y.get(), y.data_ptr()));
  return y;
}

Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dParams& p) {
  DeviceGuard guard(grad_out.device());
  const DType dtype = grad_out.dtype();
  const int device = grad_out.device().index;
  Tensor gx = raw::empty(input_shape, dtype, grad_out.device());
  if (gx.numel() == 0) return gx;
  if (grad_out.numel() == 0) {  // no output channels: nothing flows back
    raw::fill_(gx, 0.0);
    return gx;
  }
  const ConvDescs d(input_shape, weight.sizes(), grad_out.sizes(), p, dtype);
  const std::optional<Choice> c =
      choose(Pass::kBackwardData, d, input_shape, weight.sizes(), p, dtype, device);
  if (!c) {
    CXR_CHECK(is_half(dtype), "conv2d_backward_input on CUDA: cuDNN has no algorithm for grad_out ",
              describe(grad_out), " and weight ", describe(weight));
    return raw::to(conv2d_backward_input(to_float32(grad_out), to_float32(weight), input_shape, p),
                   dtype);
  }
  const Tensor gc = raw::contiguous(grad_out), wc = raw::contiguous(weight);
  const Workspace ws(*c, grad_out.device());
  const Scale one(1.0), zero(0.0);
  CXR_CUDNN_CHECK(cudnnConvolutionBackwardData(
      cudnn_handle(device), one.ptr(dtype), d.w.get(), wc.data_ptr(), d.y.get(), gc.data_ptr(),
      d.conv.get(), cudnnConvolutionBwdDataAlgo_t(c->algo), ws.ptr, ws.bytes, zero.ptr(dtype),
      d.x.get(), gx.data_ptr()));
  return gx;
}

Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dParams& p) {
  DeviceGuard guard(grad_out.device());
  const DType dtype = grad_out.dtype();
  const int device = grad_out.device().index;
  Tensor gw = raw::empty(weight_shape, dtype, grad_out.device());
  if (gw.numel() == 0) return gw;
  if (x.size(0) == 0) {  // no images: an empty sum
    raw::fill_(gw, 0.0);
    return gw;
  }
  const ConvDescs d(x.sizes(), weight_shape, grad_out.sizes(), p, dtype);
  const std::optional<Choice> c =
      choose(Pass::kBackwardFilter, d, x.sizes(), weight_shape, p, dtype, device);
  if (!c) {
    CXR_CHECK(is_half(dtype),
              "conv2d_backward_weight on CUDA: cuDNN has no algorithm for grad_out ",
              describe(grad_out), " and input ", describe(x));
    return raw::to(conv2d_backward_weight(to_float32(grad_out), to_float32(x), weight_shape, p),
                   dtype);
  }
  const Tensor gc = raw::contiguous(grad_out), xc = raw::contiguous(x);
  const Workspace ws(*c, grad_out.device());
  const Scale one(1.0), zero(0.0);
  CXR_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      cudnn_handle(device), one.ptr(dtype), d.x.get(), xc.data_ptr(), d.y.get(), gc.data_ptr(),
      d.conv.get(), cudnnConvolutionBwdFilterAlgo_t(c->algo), ws.ptr, ws.bytes, zero.ptr(dtype),
      d.w.get(), gw.data_ptr()));
  return gw;
}

#else  // no cuDNN in this build

Tensor conv2d(const Tensor& x, const Tensor&, const Tensor&, const Conv2dParams&, const Shape&) {
  CXR_FAIL("conv2d: input ", describe(x), " is on ", x.device().str(),
           ", but this build has no cuDNN (CUDA convolutions need it)");
}
Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor&, const Shape&,
                             const Conv2dParams&) {
  CXR_FAIL("conv2d_backward_input: grad_out ", describe(grad_out), " is on ",
           grad_out.device().str(), ", but this build has no cuDNN (CUDA convolutions need it)");
}
Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor&, const Shape&,
                              const Conv2dParams&) {
  CXR_FAIL("conv2d_backward_weight: grad_out ", describe(grad_out), " is on ",
           grad_out.device().str(), ", but this build has no cuDNN (CUDA convolutions need it)");
}

#endif

}  // namespace cxr::cuda
