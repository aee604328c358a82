// Everything of the nn/ layer in one include: Module, containers, layers and init.
#pragma once

#include "nn/activation.h"           // Identity, ReLU, SiLU, GELU, QuickGELU, Sigmoid, Tanh
#include "nn/attention.h"            // diffusers' Attention block
#include "nn/containers.h"           // Sequential, ModuleList, ModuleDict
#include "nn/conv.h"                 // Conv2d
#include "nn/dropout.h"              // Dropout
#include "nn/embedding.h"            // Embedding
#include "nn/flatten.h"              // Flatten
#include "nn/init.h"                 // init::kaiming_uniform, xavier_uniform, zero_module, ...
#include "nn/linear.h"               // Linear
#include "nn/module.h"               // Module, StateDict, LoadReport
#include "nn/multihead_attention.h"  // MultiheadAttention
#include "nn/normalization.h"        // GroupNorm, LayerNorm, BatchNorm2d
#include "nn/pooling.h"              // MaxPool2d, AvgPool2d, AdaptiveAvgPool2d
#include "nn/upsample.h"             // Upsample
