// All raw (non-differentiable) tensor ops. Models use the differentiable API in autograd/ instead.
#pragma once

#include "tensor/conv.h"        // conv2d, pooling, upsampling
#include "tensor/creation.h"    // zeros, arange, copy_, to(dtype)
#include "tensor/elementwise.h" // unary/binary/compare with broadcasting
#include "tensor/indexing.h"    // gather, scatter_add, cat, pad, ...
#include "tensor/linalg.h"      // matmul, bmm, linear
#include "tensor/nn_ops.h"      // softmax, norms, dropout, embedding, attention
#include "tensor/random.h"      // Philox Generator, rand/randn
#include "tensor/reduce.h"      // sum, mean, var, max, logsumexp, cumsum
#include "tensor/tensor.h"
#include "tensor/views.h"       // reshape, permute, slice, expand
