// Portability macros shared by host C++ and CUDA code.
#pragma once

#if defined(__CUDACC__)
#define CXR_HD __host__ __device__ __forceinline__
#else
#define CXR_HD inline
#endif
