// End to end: a small CNN built from nn/ layers learns which quadrant of a noisy image holds a
// bright square, trained with nn::SGD on generated data, to >= 95% accuracy on held-out images in
// a few seconds.
#include <gtest/gtest.h>

#include <chrono>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/loss.h"
#include "nn/nn.h"
#include "nn/optim.h"
#include "tensor/ops.h"

using namespace cxr;
using namespace cxr::nn;

namespace {

constexpr int64_t kSize = 16, kSquare = 4;

// `n` images [n, 1, 16, 16]: noise N(0, 0.25²) plus a square of +1 placed uniformly inside one
// quadrant; labels (int64) are the quadrant: 0 top-left, 1 top-right, 2 bottom-left,
// 3 bottom-right.
std::pair<Tensor, Tensor> make_batch(int64_t n, Generator& gen) {
  Tensor images = raw::randn({n, 1, kSize, kSize}, gen, kFloat32, 0.0, 0.25);
  std::vector<int64_t> pos =
      raw::randint(0, 4 * (kSize / 2 - kSquare + 1) * (kSize / 2 - kSquare + 1), {n}, gen)
          .to_vector<int64_t>();
  float* px = images.data<float>();
  std::vector<int64_t> labels(static_cast<size_t>(n));
  const int64_t places = kSize / 2 - kSquare + 1;  // top-left corners within a quadrant, per axis
  for (int64_t i = 0; i < n; ++i) {
    const int64_t quadrant = pos[size_t(i)] / (places * places);
    const int64_t r = pos[size_t(i)] % (places * places);
    const int64_t y0 = (quadrant / 2) * (kSize / 2) + r / places;
    const int64_t x0 = (quadrant % 2) * (kSize / 2) + r % places;
    for (int64_t y = y0; y < y0 + kSquare; ++y)
      for (int64_t x = x0; x < x0 + kSquare; ++x) px[(i * kSize + y) * kSize + x] += 1.0f;
    labels[size_t(i)] = quadrant;
  }
  return {images, raw::from_vector(labels, {n})};
}

std::shared_ptr<Sequential> make_cnn() {
  auto net = std::make_shared<Sequential>();
  net->push_back(std::make_shared<Conv2d>(1, 8, 3, Conv2dOptions{.padding = 1}));
  net->push_back(std::make_shared<BatchNorm2d>(8));
  net->push_back(std::make_shared<ReLU>());
  net->push_back(std::make_shared<MaxPool2d>(2));
  net->push_back(std::make_shared<Conv2d>(8, 16, 3, Conv2dOptions{.padding = 1}));
  net->push_back(std::make_shared<ReLU>());
  net->push_back(std::make_shared<AdaptiveAvgPool2d>(2));  // one cell per quadrant
  net->push_back(std::make_shared<Flatten>());
  net->push_back(std::make_shared<Linear>(64, 4));
  return net;
}

double accuracy(Module& net, const Tensor& images, const Tensor& labels) {
  autograd::NoGradGuard no_grad;
  std::vector<int64_t> predicted = raw::argmax(net.forward(images), 1).to_vector<int64_t>();
  std::vector<int64_t> truth = labels.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < truth.size(); ++i) correct += predicted[i] == truth[i];
  return double(correct) / double(truth.size());
}

}  // namespace

TEST(TrainCnn, LearnsWhichQuadrantHoldsTheSquare) {
  const auto start = std::chrono::steady_clock::now();
  manual_seed(2024);
  auto net = make_cnn();
  Generator data(77);
  auto [test_images, test_labels] = make_batch(512, data);
  net->eval();
  const double before = accuracy(*net, test_images, test_labels);

  SGD opt(net->parameters(), {.lr = 0.05, .momentum = 0.9});
  net->train();
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 80; ++step) {
    auto [x, y] = make_batch(32, data);
    Tensor loss = cross_entropy(net->forward(x), y);
    opt.zero_grad();
    backward(loss);
    opt.step();
    (step == 0 ? first_loss : last_loss) = loss.item();
  }
  net->eval();
  const double after = accuracy(*net, test_images, test_labels);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("seconds", std::to_string(seconds));
  EXPECT_LT(before, 0.5) << "an untrained network should be near chance (0.25)";
  EXPECT_LT(last_loss, 0.5 * first_loss);
  EXPECT_GE(after, 0.95) << "accuracy " << before << " -> " << after << ", losses " << first_loss
                         << " -> " << last_loss << ", " << seconds << " s";
}
