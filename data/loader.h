// Mini-batch loading: per-epoch seeded shuffling, a distributed-sampler mode (rank / world size),
// worker threads that decode and transform whole batches ahead of the training loop into a bounded
// prefetch queue, a progress/throughput counter, and error handling: an exception in a worker is
// re-thrown by next() in the training loop (never a deadlock), or, with skip_bad, the failing
// sample is dropped from its batch and reported.
//
// Determinism: the order depends only on (seed, epoch, rank, world size), and each sample gets its
// own Generator seeded from (seed, epoch, index), so batches are identical for any worker count.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/transforms.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace cxr::data {

struct Example {
  Tensor image;   // e.g. float32 [C, H, W]
  Tensor mask;    // optional, e.g. uint8 [K, H, W]
  Tensor labels;  // optional, e.g. float32 [L]
  std::string id;
};

// A random-access dataset; get() must be safe to call from several threads at once.
class ExampleSource {
 public:
  virtual ~ExampleSource() = default;
  virtual int64_t size() const = 0;
  // Loads (decodes, transforms) sample `index`, drawing any randomness from `gen`.
  virtual Example get(int64_t index, Generator& gen) const = 0;
};

// An ExampleSource from a function.
class FunctionSource : public ExampleSource {
 public:
  using Fn = std::function<Example(int64_t index, Generator& gen)>;
  FunctionSource(int64_t size, Fn fn);
  int64_t size() const override { return size_; }
  Example get(int64_t index, Generator& gen) const override { return fn_(index, gen); }

 private:
  int64_t size_;
  Fn fn_;
};

struct LoaderOptions {
  int64_t batch_size = 16;
  bool shuffle = true;
  bool drop_last = false;  // drop the last, incomplete batch
  uint64_t seed = 0;
  int workers = 2;           // 0 = load in the calling thread
  int prefetch_batches = 4;  // batches loaded ahead (per loader, >= 1)
  int rank = 0, world_size = 1;
  bool skip_bad = false;  // drop samples whose loading throws (reported by bad_samples())
  // Deliver the batch tensors in pinned (page-locked) host memory, copied there by the workers,
  // so that the copy to a GPU can be asynchronous (tensor/pinned.h).
  bool pin_memory = false;
};

struct Batch {
  Tensor images;  // [B, ...] stacked Example::image
  Tensor masks;   // [B, ...] when the examples have masks
  Tensor labels;  // [B, ...] when the examples have labels
  std::vector<int64_t> indices;
  std::vector<std::string> ids;
  int64_t size() const { return int64_t(indices.size()); }
};

struct BadSample {
  int64_t epoch = 0, index = 0;
  std::string error;
};

struct LoaderStats {
  int64_t epoch = 0, batches = 0, samples = 0, skipped = 0;
  int64_t batches_per_epoch = 0;
  double seconds = 0;  // since start_epoch
  double samples_per_second() const { return seconds > 0 ? double(samples) / seconds : 0.0; }
};

struct Dataset;  // data/sample.h (the readers' sample lists)

// Loads a reader's samples: the image (grayscale float32 [1, H, W] through read_any_image: DICOM,
// PNG or JPEG), the union of its RLE masks as uint8 [1, H, W] when it has a mask annotation
// (resized with nearest to the image when the RLE size differs) and its labels as float32 [L] (NaN
// = ignore), then applies `pipeline` to image and mask jointly.
std::shared_ptr<ExampleSource> dataset_source(std::shared_ptr<const Dataset> dataset,
                                              Pipeline pipeline, bool with_masks = true);

// Stacks examples into a batch (shapes and dtypes must agree; throws cxr::Error naming the index).
Batch collate(const std::vector<Example>& examples, const std::vector<int64_t>& indices);

class Loader {
 public:
  Loader(std::shared_ptr<const ExampleSource> dataset, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The dataset indices this rank visits in `epoch`, in order (distributed mode pads by wrapping
  // so every rank gets ceil(n / world_size) samples, as torch's DistributedSampler).
  std::vector<int64_t> epoch_indices(int64_t epoch) const;
  int64_t batches_per_epoch() const;
  // Starts (or restarts) an epoch: stops any running workers and launches new ones.
  void start_epoch(int64_t epoch);
  // The next batch of the epoch, or nullopt at its end. Re-throws a worker's exception (after
  // which the epoch is over).
  std::optional<Batch> next();
  const std::vector<BadSample>& bad_samples() const { return bad_; }
  LoaderStats stats() const;
  // "epoch 2: 40/125 batches, 640 samples, 812.3 samples/s, 1 skipped".
  std::string progress_line() const;
  const LoaderOptions& options() const { return opt_; }

 private:
  struct Result {
    std::optional<Batch> batch;
    std::exception_ptr error;
    std::vector<BadSample> bad;
  };
  Result load_batch(int64_t b) const;
  void worker_loop();
  void stop_workers();

  std::shared_ptr<const ExampleSource> data_;
  LoaderOptions opt_;
  int64_t epoch_ = -1;
  std::vector<std::vector<int64_t>> batches_;
  std::vector<BadSample> bad_;
  int64_t delivered_batches_ = 0, delivered_samples_ = 0, skipped_ = 0;
  double started_ = 0;

  // Shared with the workers (guarded by mu_).
  mutable std::mutex mu_;
  std::condition_variable cv_work_, cv_ready_;
  std::map<int64_t, Result> ready_;
  int64_t next_claim_ = 0, next_deliver_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cxr::data
