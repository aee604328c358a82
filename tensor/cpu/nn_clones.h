// The function attribute of the NN kernels' inner loops (softmax, norms, attention): each such
// function is compiled for AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3) and the baseline, and the
// loader picks one (ifunc). Inside these functions a*b+c may be fused into one FMA
// (fp-contract=fast, local to them), which makes the shared float32 exp (tensor/math.h) about 30%
// cheaper per element on Zen 4 and changes results by at most an ulp.
#pragma once

#define CXR_NN_CLONES                                                          \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), \
                 optimize("fp-contract=fast")))
