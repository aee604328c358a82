// CUDA convolutions (tensor/conv.h) through cuDNN's convolution API (cudnnConvolutionForward,
// ...BackwardData, ...BackwardFilter) on contiguous NCHW tensors. Data and compute types: float32
// with TF32 tensor cores allowed (CUDNN_DEFAULT_MATH), float16/bfloat16 with float32 compute on
// tensor cores, float64 in float64. The algorithms of each (pass, shapes, parameters, dtype,
// device) come once from cuDNN's heuristics (cudnnGet*Algorithm_v7) and are cached: the supported
// ones that do not down-convert to a lower precision and need at most kMaxWorkspace of scratch
// memory, fastest first, deterministic ones (same input, same bits; not the backward algorithms
// that add with atomics) before the others. The first that cuDNN accepts at run time is used and
// remembered. The scratch memory comes from the memory pool as a uint8 tensor. The bias is written
// into the output first and the convolution added onto it (beta = 1), as the CPU kernel does.
// Should no algorithm run for a half-precision problem, it is computed in float32 and converted
// back (as on the CPU).
#include "tensor/creation.h"
#include "tensor/cuda/context.cuh"
#include "tensor/cuda/conv.h"

#ifdef CXR_WITH_CUDNN
#include <limits>
#include <map>
#include <mutex>
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

// An algorithm of a pass and the math type it runs with.
struct Choice {
  int algo;
  cudnnMathType_t math;
};

// The usable results of a heuristics query in cuDNN's order (fastest first), the deterministic ones
// (same input, same bits) before the others: supported, not down-converting to a lower precision,
// needing at most kMaxWorkspace of scratch memory.
template <typename Perf>
std::vector<Choice> usable(const std::vector<Perf>& perf, int count) {
  std::vector<Choice> out;
  for (const bool deterministic : {true, false}) {
    for (int i = 0; i < count; ++i) {
      const Perf& r = perf[size_t(i)];
      if (r.status == CUDNN_STATUS_SUCCESS &&
          (r.determinism == CUDNN_DETERMINISTIC) == deterministic &&
          r.mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && r.memory <= kMaxWorkspace)
        out.push_back(Choice{int(r.algo), r.mathType});
    }
  }
  return out;
}

// cuDNN's heuristics for `pass` on the problem of `d`.
std::vector<Choice> candidates(Pass pass, const ConvDescs& d, cudnnHandle_t h) {
  int max = 0, count = 0;
  switch (pass) {
    case Pass::kForward: {
      CXR_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(max));
      CXR_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.get(), d.w.get(), d.conv.get(),
                                                             d.y.get(), max, &count, perf.data()));
      return usable(perf, count);
    }
    case Pass::kBackwardData: {
      CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<size_t>(max));
      CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), max, &count, perf.data()));
      return usable(perf, count);
    }
    case Pass::kBackwardFilter: {
      CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(static_cast<size_t>(max));
      CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), max, &count, perf.data()));
      return usable(perf, count);
    }
  }
  return {};
}

// The scratch memory `algo` of `pass` needs on the problem of `d` (with the math type on d.conv).
cudnnStatus_t workspace_size(Pass pass, const ConvDescs& d, cudnnHandle_t h, int algo,
                             size_t* bytes) {
  switch (pass) {
    case Pass::kForward:
      return cudnnGetConvolutionForwardWorkspaceSize(
          h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(), cudnnConvolutionFwdAlgo_t(algo), bytes);
    case Pass::kBackwardData:
      return cudnnGetConvolutionBackwardDataWorkspaceSize(
          h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), cudnnConvolutionBwdDataAlgo_t(algo),
          bytes);
    case Pass::kBackwardFilter:
      return cudnnGetConvolutionBackwardFilterWorkspaceSize(
          h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), cudnnConvolutionBwdFilterAlgo_t(algo),
          bytes);
  }
  return CUDNN_STATUS_BAD_PARAM;
}

bool not_supported(cudnnStatus_t status) {
  return CUDNN_STATUS_CATEGORY(status) == CUDNN_STATUS_NOT_SUPPORTED;
}

// The candidates of a problem and the first of them known to run.
struct Plan {
  std::vector<Choice> choices;
  size_t first = 0;
};

// Runs `exec(algo, workspace, bytes)`, the one cuDNN call `call` of `pass` returning its status,
// with the algorithm cached for (pass, device, dtype, input and weight shapes, parameters): cuDNN's
// heuristics are asked once per problem, and should the execution refuse their pick as not
// supported, the next candidate is tried and the one that ran is remembered. The workspace comes
// from the memory pool (returned in stream order when the tensor dies). False when none ran.
template <typename Exec>
bool run_cached(Pass pass, const char* call, const ConvDescs& d, const Shape& xs, const Shape& ws,
                const Conv2dParams& p, DType dtype, Device device, Exec exec) {
  std::vector<int64_t> key = {int64_t(pass), device.index, int64_t(dtype)};
  key.insert(key.end(), xs.begin(), xs.end());
  key.insert(key.end(), ws.begin(), ws.end());
  for (const Int2& v : {p.stride, p.padding, p.dilation}) key.insert(key.end(), v.begin(), v.end());
  key.push_back(p.groups);

  static std::mutex mutex;
  static std::map<std::vector<int64_t>, Plan> cache;
  const cudnnHandle_t h = cudnn_handle(device.index);
  Plan plan;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, Plan{candidates(pass, d, h), 0}).first;
    plan = it->second;
  }
  for (size_t i = plan.first; i < plan.choices.size(); ++i) {
    const Choice& c = plan.choices[i];
    CXR_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), c.math));
    size_t bytes = 0;
    const cudnnStatus_t sized = workspace_size(pass, d, h, c.algo, &bytes);
    if (not_supported(sized)) continue;
    if (sized != CUDNN_STATUS_SUCCESS)
      fail_cudnn(sized, "cudnnGetConvolution*WorkspaceSize", __FILE__, __LINE__);
    const Tensor workspace = bytes > 0 ? raw::empty({int64_t(bytes)}, kUInt8, device) : Tensor();
    const cudnnStatus_t status =
        exec(c.algo, workspace.defined() ? workspace.data_ptr() : nullptr, bytes);
    if (not_supported(status)) continue;
    if (status != CUDNN_STATUS_SUCCESS) fail_cudnn(status, call, __FILE__, __LINE__);
    if (i != plan.first) {
      std::lock_guard<std::mutex> lock(mutex);
      cache[key].first = i;
    }
    return true;
  }
  return false;
}

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
  const Tensor xc = raw::contiguous(x), wc = raw::contiguous(weight);
  Tensor y = raw::empty(out_shape, dtype, x.device());
  if (bias.defined()) raw::copy_(y, bias_column);  // the convolution is added onto it (beta = 1)
  const Scale one(1.0), beta(bias.defined() ? 1.0 : 0.0);
  const bool ran =
      run_cached(Pass::kForward, "cudnnConvolutionForward", d, x.sizes(), weight.sizes(), p, dtype,
                 x.device(), [&](int algo, void* ws, size_t bytes) {
                   return cudnnConvolutionForward(cudnn_handle(device), one.ptr(dtype), d.x.get(),
                                                  xc.data_ptr(), d.w.get(), wc.data_ptr(),
                                                  d.conv.get(), cudnnConvolutionFwdAlgo_t(algo), ws,
                                                  bytes, beta.ptr(dtype), d.y.get(), y.data_ptr());
                 });
  if (ran) return y;
  CXR_CHECK(is_half(dtype), "conv2d on CUDA: cuDNN has no algorithm for input ", describe(x),
            " and weight ", describe(weight));
  return raw::to(conv2d(to_float32(x), to_float32(weight), to_float32(bias), p, out_shape), dtype);
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
  const Tensor gc = raw::contiguous(grad_out), wc = raw::contiguous(weight);
  const Scale one(1.0), zero(0.0);
  const bool ran = run_cached(
      Pass::kBackwardData, "cudnnConvolutionBackwardData", d, input_shape, weight.sizes(), p, dtype,
      grad_out.device(), [&](int algo, void* ws, size_t bytes) {
        return cudnnConvolutionBackwardData(cudnn_handle(device), one.ptr(dtype), d.w.get(),
                                            wc.data_ptr(), d.y.get(), gc.data_ptr(), d.conv.get(),
                                            cudnnConvolutionBwdDataAlgo_t(algo), ws, bytes,
                                            zero.ptr(dtype), d.x.get(), gx.data_ptr());
      });
  if (ran) return gx;
  CXR_CHECK(is_half(dtype), "conv2d_backward_input on CUDA: cuDNN has no algorithm for grad_out ",
            describe(grad_out), " and weight ", describe(weight));
  return raw::to(conv2d_backward_input(to_float32(grad_out), to_float32(weight), input_shape, p),
                 dtype);
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
  const Tensor gc = raw::contiguous(grad_out), xc = raw::contiguous(x);
  const Scale one(1.0), zero(0.0);
  const bool ran =
      run_cached(Pass::kBackwardFilter, "cudnnConvolutionBackwardFilter", d, x.sizes(),
                 weight_shape, p, dtype, grad_out.device(), [&](int algo, void* ws, size_t bytes) {
                   return cudnnConvolutionBackwardFilter(
                       cudnn_handle(device), one.ptr(dtype), d.x.get(), xc.data_ptr(), d.y.get(),
                       gc.data_ptr(), d.conv.get(), cudnnConvolutionBwdFilterAlgo_t(algo), ws,
                       bytes, zero.ptr(dtype), d.w.get(), gw.data_ptr());
                 });
  if (ran) return gw;
  CXR_CHECK(is_half(dtype), "conv2d_backward_weight on CUDA: cuDNN has no algorithm for grad_out ",
            describe(grad_out), " and input ", describe(x));
  return raw::to(conv2d_backward_weight(to_float32(grad_out), to_float32(x), weight_shape, p),
                 dtype);
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
