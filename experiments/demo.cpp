// `cxr demo`: trains a small CNN from scratch on procedurally generated chest-X-ray-like images
// (two lung fields; half of them with a pneumothorax-like air pocket: a dark band without lung
// markings along the outer edge of one lung, bounded by a bright pleural line) and reports its test
// accuracy. It exercises the library end to end — Philox data generation, conv2d/pooling/linear
// forward and backward, cross-entropy, the autograd engine, nn modules and AdamW — until the study
// pipeline replaces it as the README's main job.
#include <unistd.h>  // isatty

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "autograd/engine.h"     // backward
#include "autograd/grad_mode.h"  // NoGradGuard
#include "autograd/loss.h"       // cross_entropy
#include "experiments/commands.h"
#include "nn/nn.h"     // Sequential, Conv2d, BatchNorm2d, ...
#include "nn/optim.h"  // AdamW
#include "tensor/ops.h"

namespace cxr::experiments {

namespace {

struct DemoOptions {
  int64_t image_size = 32;
  int64_t train_images = 2048;
  int64_t test_images = 512;
  int64_t batch = 32;
  int64_t epochs = 4;
  double lr = 3e-3;
  uint64_t seed = 1;
};

// Images [n, 1, s, s] in [0, 1] and labels [n] (1 = air pocket present), from `gen`.
struct Batch {
  Tensor images, labels;
};

Batch make_phantoms(int64_t n, int64_t s, Generator& gen) {
  Tensor images = raw::empty({n, 1, s, s});
  Tensor labels = raw::empty({n}, kInt64);
  // Per image: 8 uniforms for the geometry, plus per-pixel noise.
  Tensor shape_params = raw::rand({n, 8}, gen, kFloat64);
  Tensor noise = raw::randn({n, s, s}, gen, kFloat32, 0.0, 0.04);
  const double* u = shape_params.data<double>();
  const float* z = noise.data<float>();
  float* img = images.data<float>();
  int64_t* lab = labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const double* p = u + i * 8;
    const bool pocket = p[0] < 0.5;
    lab[i] = pocket ? 1 : 0;
    const double cx = 0.5 + 0.04 * (p[1] - 0.5);  // body centre
    const double lung_w = 0.17 + 0.04 * p[2], lung_h = 0.30 + 0.06 * p[3];
    const double gap = 0.07 + 0.03 * p[4];   // mediastinum half-width
    const int side = p[5] < 0.5 ? -1 : 1;    // which lung has the pocket
    const double depth = 0.25 + 0.2 * p[6];  // pocket width, fraction of lung
    const double rib_phase = 6.2832 * p[7];
    for (int64_t y = 0; y < s; ++y) {
      for (int64_t x = 0; x < s; ++x) {
        const double fx = (double(x) + 0.5) / double(s), fy = (double(y) + 0.5) / double(s);
        // Soft tissue: brighter body, darker outside.
        double v = std::abs(fx - cx) < 0.42 ? 0.65 : 0.15;
        for (int l : {-1, 1}) {
          const double lx = cx + l * (gap + lung_w), ly = 0.5;
          const double dx = (fx - lx) / lung_w, dy = (fy - ly) / lung_h;
          const double r2 = dx * dx + dy * dy;
          if (r2 >= 1.0) continue;
          // Aerated lung: dark with vessel/rib markings.
          double lung = 0.30 + 0.06 * std::sin(18.0 * fy + rib_phase) + 0.04 * std::sin(25.0 * fx);
          if (pocket && l == side) {
            const double outer = l * dx;                                    // 1 at the lateral edge
            if (outer > 1.0 - 2.0 * depth) lung = 0.12;                     // air: no markings
            if (std::abs(outer - (1.0 - 2.0 * depth)) < 0.08) lung = 0.55;  // pleural line
          }
          v = lung;
        }
        img[(i * s + y) * s + x] = float(v) + z[(i * s + y) * s + x];
      }
    }
  }
  return {images, labels};
}

// conv(3x3) -> BatchNorm -> ReLU, three times with 2x2 pooling in between, then global average
// pooling and a linear classifier: [N, 1, S, S] -> logits [N, 2].
std::shared_ptr<nn::Sequential> make_cnn() {
  auto block = [](int64_t in, int64_t out) {
    return std::vector<nn::ModulePtr>{
        std::make_shared<nn::Conv2d>(in, out, 3, nn::Conv2dOptions{.padding = 1}),
        std::make_shared<nn::BatchNorm2d>(out), std::make_shared<nn::ReLU>()};
  };
  auto net = std::make_shared<nn::Sequential>();
  for (auto [in, out] : {std::pair<int64_t, int64_t>{1, 8}, {8, 16}, {16, 32}}) {
    for (auto& m : block(in, out)) net->push_back(m);
    if (out != 32) net->push_back(std::make_shared<nn::MaxPool2d>(2));
  }
  net->push_back(std::make_shared<nn::AdaptiveAvgPool2d>(1));
  net->push_back(std::make_shared<nn::Flatten>(1));
  net->push_back(std::make_shared<nn::Linear>(32, 2));
  return net;
}

double accuracy(const Tensor& logits, const Tensor& labels) {
  Tensor pred = raw::argmax(logits, 1);
  auto pv = pred.to_vector<int64_t>();
  auto lv = labels.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < pv.size(); ++i) correct += pv[i] == lv[i];
  return double(correct) / double(pv.size());
}

void run_demo(const DemoOptions& o) {
  CXR_CHECK(o.image_size >= 8 && o.image_size % 4 == 0,
            "demo: --image-size must be a multiple of 4 ", "and at least 8, got ", o.image_size);
  CXR_CHECK(
      o.batch > 0 && o.train_images >= o.batch && o.test_images > 0 && o.epochs > 0,
      "demo: --batch, --train, --test and --epochs must be positive, with --train >= --batch");
  const bool tty = ::isatty(STDOUT_FILENO);
  Generator gen(o.seed);
  Batch train = make_phantoms(o.train_images, o.image_size, gen);
  Batch test = make_phantoms(o.test_images, o.image_size, gen);
  manual_seed(o.seed);  // the layers' initialisation draws from the default generator
  auto model = make_cnn();
  nn::AdamW optimizer(model->parameters(), nn::AdamOptions{.lr = o.lr, .weight_decay = 1e-4});
  const int64_t steps = o.train_images / o.batch;
  std::printf("cxr demo: %lld training and %lld test phantoms of %lldx%lld, %lld epochs\n",
              (long long)o.train_images, (long long)o.test_images, (long long)o.image_size,
              (long long)o.image_size, (long long)o.epochs);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
    Tensor order = raw::randperm(o.train_images, gen);
    double loss_sum = 0, acc_sum = 0;
    for (int64_t s = 0; s < steps; ++s) {
      Tensor idx = raw::slice(order, 0, s * o.batch, (s + 1) * o.batch);
      Tensor x = raw::index_select(train.images, 0, idx);
      Tensor y = raw::index_select(train.labels, 0, idx);
      Tensor logits = model->forward(x);
      Tensor loss = cxr::cross_entropy(logits, y);
      optimizer.zero_grad();
      backward(loss);
      optimizer.step();
      loss_sum += loss.item();
      acc_sum += accuracy(logits, y);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double seen = double((epoch - 1) * steps + s + 1) * double(o.batch);
      if (tty || s + 1 == steps)
        std::printf("%sepoch %lld/%lld  step %lld/%lld  loss %.4f  train acc %.3f  %.0f img/s%s",
                    tty ? "\r" : "", (long long)epoch, (long long)o.epochs, (long long)(s + 1),
                    (long long)steps, loss_sum / double(s + 1), acc_sum / double(s + 1),
                    seen / secs, tty && s + 1 < steps ? "" : "\n");
      std::fflush(stdout);
    }
  }
  autograd::NoGradGuard no_grad;
  model->eval();
  const double test_acc = accuracy(model->forward(test.images), test.labels);
  std::printf("test accuracy %.3f on %lld held-out phantoms (chance 0.5)\n", test_acc,
              (long long)o.test_images);
}

}  // namespace

Command register_demo(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* sub = app.add_subcommand(
      "demo", "Train a small CNN on generated chest-X-ray-like phantoms (library demo)");
  sub->add_option("--image-size", options->image_size, "Phantom side in pixels (multiple of 4)")
      ->capture_default_str();
  sub->add_option("--train", options->train_images, "Number of training images")
      ->capture_default_str();
  sub->add_option("--test", options->test_images, "Number of test images")->capture_default_str();
  sub->add_option("--batch", options->batch, "Batch size")->capture_default_str();
  sub->add_option("--epochs", options->epochs, "Training epochs")->capture_default_str();
  sub->add_option("--lr", options->lr, "AdamW learning rate")->capture_default_str();
  sub->add_option("--seed", options->seed, "Seed of the Philox generator")->capture_default_str();
  return {sub, [options] { run_demo(*options); }};
}

}  // namespace cxr::experiments
