// Batch loader (see loader.h). Workers claim batch numbers in order, at most prefetch_batches ahead
// of the one the training loop waits for, and put finished batches (or their exception) into a map
// keyed by batch number; next() takes them in order. Every wait is on a condition that a worker's
// exit or stop_ makes true, so an exception can never leave the consumer waiting.
#include "data/loader.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "data/dicom.h"
#include "data/image_io.h"
#include "data/rng.h"
#include "data/sample.h"
#include "tensor/creation.h"
#include "tensor/error.h"
#include "tensor/pinned.h"

namespace cxr::data {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Tensor stack(const std::vector<Example>& ex, const std::vector<int64_t>& indices,
             Tensor Example::*field, const char* what) {
  const Tensor& first = ex[0].*field;
  if (!first.defined()) {
    for (size_t i = 0; i < ex.size(); ++i)
      CXR_CHECK(!(ex[i].*field).defined(), "collate: sample ", indices[i], " has a ", what,
                " but sample ", indices[0], " has none");
    return {};
  }
  Shape shape = first.sizes();
  shape.insert(shape.begin(), int64_t(ex.size()));
  Tensor out = raw::empty(shape, first.dtype());
  const size_t bytes = size_t(first.numel()) * first.element_size();
  auto* dst = static_cast<uint8_t*>(out.data_ptr());
  for (size_t i = 0; i < ex.size(); ++i) {
    const Tensor& t = ex[i].*field;
    CXR_CHECK(t.defined() && t.sizes() == first.sizes() && t.dtype() == first.dtype(),
              "collate: ", what, " of sample ", indices[i], " is ",
              t.defined() ? describe(t) : "missing", ", expected ", describe(first),
              " like sample ", indices[0]);
    const Tensor c = raw::contiguous(t);
    std::memcpy(dst + i * bytes, c.data_ptr(), bytes);
  }
  return out;
}

}  // namespace

FunctionSource::FunctionSource(int64_t size, Fn fn) : size_(size), fn_(std::move(fn)) {
  CXR_CHECK(size >= 0, "FunctionSource: size must be >= 0, got ", size);
  CXR_CHECK(fn_ != nullptr, "FunctionSource: empty function");
}

namespace {
class ReaderSource : public ExampleSource {
 public:
  ReaderSource(std::shared_ptr<const Dataset> d, Pipeline p, bool masks)
      : d_(std::move(d)), p_(std::move(p)), masks_(masks) {
    CXR_CHECK(d_ != nullptr, "dataset_source: no dataset");
  }
  int64_t size() const override { return int64_t(d_->size()); }
  Example get(int64_t index, Generator& gen) const override {
    CXR_CHECK(index >= 0 && index < size(), "dataset_source: index ", index, " out of range for ",
              size(), " samples");
    const Sample& s = d_->samples[size_t(index)];
    Example e;
    e.id = s.id;
    e.image = read_any_image(s.image_path);  // DICOM, PNG or JPEG, grayscale [1, H, W]
    if (masks_ && s.has_mask_annotation) {
      Tensor m = s.mask_tensor();
      if (m.size(-2) != e.image.size(-2) || m.size(-1) != e.image.size(-1))
        m = resize(m, e.image.size(-2), e.image.size(-1), Interp::Nearest);
      e.mask = m;
    }
    if (!s.labels.empty()) e.labels = raw::from_vector(s.labels, {int64_t(s.labels.size())});
    p_(e.image, e.mask, gen);
    return e;
  }

 private:
  std::shared_ptr<const Dataset> d_;
  Pipeline p_;
  bool masks_;
};
}  // namespace

std::shared_ptr<ExampleSource> dataset_source(std::shared_ptr<const Dataset> dataset,
                                              Pipeline pipeline, bool with_masks) {
  return std::make_shared<ReaderSource>(std::move(dataset), std::move(pipeline), with_masks);
}

Batch collate(const std::vector<Example>& examples, const std::vector<int64_t>& indices) {
  CXR_CHECK(!examples.empty() && examples.size() == indices.size(),
            "collate: expected as many indices as examples (>= 1), got ", examples.size(), " and ",
            indices.size());
  Batch b;
  b.images = stack(examples, indices, &Example::image, "image");
  CXR_CHECK(b.images.defined(), "collate: sample ", indices[0], " has no image");
  b.masks = stack(examples, indices, &Example::mask, "mask");
  b.labels = stack(examples, indices, &Example::labels, "labels");
  b.indices = indices;
  for (const Example& e : examples) b.ids.push_back(e.id);
  return b;
}

Loader::Loader(std::shared_ptr<const ExampleSource> dataset, LoaderOptions options)
    : data_(std::move(dataset)), opt_(options) {
  CXR_CHECK(data_ != nullptr, "Loader: no dataset");
  CXR_CHECK(opt_.batch_size >= 1, "Loader: batch_size must be >= 1, got ", opt_.batch_size);
  CXR_CHECK(opt_.workers >= 0 && opt_.workers <= 256, "Loader: workers must be in [0, 256], got ",
            opt_.workers);
  CXR_CHECK(opt_.prefetch_batches >= 1, "Loader: prefetch_batches must be >= 1, got ",
            opt_.prefetch_batches);
  CXR_CHECK(opt_.world_size >= 1 && opt_.rank >= 0 && opt_.rank < opt_.world_size,
            "Loader: need 0 <= rank < world_size, got rank ", opt_.rank, " of ", opt_.world_size);
}

Loader::~Loader() {
  stop_workers();
}

std::vector<int64_t> Loader::epoch_indices(int64_t epoch) const {
  const int64_t n = data_->size();
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  if (opt_.shuffle && n > 1) {
    // Fisher-Yates (Knuth, TAOCP vol. 2, Algorithm P) from a generator of (seed, epoch).
    Generator g(mix_seed(opt_.seed ^ 0x5A4D504C45520000ull, uint64_t(epoch)));
    Rng r(g);
    for (int64_t i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(r.below(i + 1))]);
  }
  if (opt_.world_size == 1 || n == 0) return order;
  const int64_t w = opt_.world_size, per = (n + w - 1) / w;
  std::vector<int64_t> mine;
  for (int64_t k = 0; k < per; ++k) mine.push_back(order[size_t((opt_.rank + k * w) % n)]);
  return mine;
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = int64_t(epoch_indices(0).size()), b = opt_.batch_size;
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  cv_ready_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Loader::start_epoch(int64_t epoch) {
  CXR_CHECK(epoch >= 0, "Loader::start_epoch: epoch must be >= 0, got ", epoch);
  stop_workers();
  epoch_ = epoch;
  const std::vector<int64_t> idx = epoch_indices(epoch);
  batches_.clear();
  for (size_t s = 0; s < idx.size(); s += size_t(opt_.batch_size)) {
    const size_t e = std::min(idx.size(), s + size_t(opt_.batch_size));
    if (opt_.drop_last && e - s < size_t(opt_.batch_size)) break;
    batches_.emplace_back(idx.begin() + std::ptrdiff_t(s), idx.begin() + std::ptrdiff_t(e));
  }
  delivered_batches_ = delivered_samples_ = skipped_ = 0;
  started_ = now_seconds();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready_.clear();
    next_claim_ = next_deliver_ = 0;
    stop_ = false;
  }
  for (int w = 0; w < opt_.workers; ++w) threads_.emplace_back([this] { worker_loop(); });
}

Loader::Result Loader::load_batch(int64_t b) const {
  Result res;
  try {
    std::vector<Example> ex;
    std::vector<int64_t> kept;
    for (int64_t index : batches_[size_t(b)]) {
      Generator g(mix_seed(mix_seed(opt_.seed, uint64_t(epoch_)), uint64_t(index)));
      if (!opt_.skip_bad) {
        ex.push_back(data_->get(index, g));
        kept.push_back(index);
        continue;
      }
      try {
        ex.push_back(data_->get(index, g));
        kept.push_back(index);
      } catch (const std::exception& e) {
        res.bad.push_back({epoch_, index, e.what()});
      }
    }
    if (!ex.empty()) {
      res.batch = collate(ex, kept);
      if (opt_.pin_memory)
        for (Tensor* t : {&res.batch->images, &res.batch->masks, &res.batch->labels})
          if (t->defined()) *t = pin(*t);
    }
  } catch (...) {
    res.error = std::current_exception();
  }
  return res;
}

void Loader::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t nb = int64_t(batches_.size());
  while (!stop_ && next_claim_ < nb) {
    if (next_claim_ >= next_deliver_ + opt_.prefetch_batches) {
      cv_work_.wait(lock);
      continue;
    }
    const int64_t b = next_claim_++;
    lock.unlock();
    Result r = load_batch(b);
    lock.lock();
    ready_[b] = std::move(r);
    cv_ready_.notify_all();
  }
}

std::optional<Batch> Loader::next() {
  CXR_CHECK(epoch_ >= 0, "Loader::next: call start_epoch first");
  const int64_t nb = int64_t(batches_.size());
  while (true) {
    Result r;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_ || next_deliver_ >= nb) return std::nullopt;
      const int64_t b = next_deliver_;
      if (threads_.empty()) {
        lock.unlock();
        r = load_batch(b);
        lock.lock();
      } else {
        cv_ready_.wait(lock, [&] { return stop_ || ready_.count(b) != 0; });
        if (stop_) return std::nullopt;
        r = std::move(ready_[b]);
        ready_.erase(b);
      }
      ++next_deliver_;
    }
    cv_work_.notify_all();
    for (BadSample& s : r.bad) bad_.push_back(std::move(s));
    skipped_ += int64_t(r.bad.size());
    if (r.error) {
      stop_workers();  // the epoch ends here; the error surfaces in the caller
      std::rethrow_exception(r.error);
    }
    if (!r.batch) continue;  // every sample of this batch was bad and skipped
    ++delivered_batches_;
    delivered_samples_ += r.batch->size();
    return std::move(r.batch);
  }
}

LoaderStats Loader::stats() const {
  LoaderStats s;
  s.epoch = epoch_;
  s.batches = delivered_batches_;
  s.samples = delivered_samples_;
  s.skipped = skipped_;
  s.batches_per_epoch = int64_t(batches_.size());
  s.seconds = epoch_ >= 0 ? now_seconds() - started_ : 0.0;
  return s;
}

std::string Loader::progress_line() const {
  const LoaderStats s = stats();
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "epoch %lld: %lld/%lld batches, %lld samples, %.1f samples/s, %lld skipped",
                static_cast<long long>(s.epoch), static_cast<long long>(s.batches),
                static_cast<long long>(s.batches_per_epoch), static_cast<long long>(s.samples),
                s.samples_per_second(), static_cast<long long>(s.skipped));
  return buf;
}

}  // namespace cxr::data
