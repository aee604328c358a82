// Loader: deterministic order for a seed, every sample once per epoch, identical batches for any
// worker count, distributed mode, errors in workers surfacing in next() without deadlock, skipping
// and reporting bad samples, early destruction.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <set>
#include <string>

#include "data/loader.h"
#include "data/rng.h"
#include "tensor/creation.h"
#include "tensor/error.h"
#include "tensor/pinned.h"

using namespace cxr;
using namespace cxr::data;

namespace {

// Image [1, 2, 2] filled with index + a per-sample random number; label [2] = {index, 2 * index}.
std::shared_ptr<ExampleSource> numbers(int64_t n, int64_t bad_index = -1, bool bad_shape = false) {
  return std::make_shared<FunctionSource>(n, [=](int64_t i, Generator& g) {
    if (i == bad_index && !bad_shape) CXR_FAIL("cannot decode sample ", i);
    Example e;
    Rng r(g);
    e.image = raw::full({1, 2, (i == bad_index && bad_shape) ? 3 : 2}, double(i) + r.uniform());
    e.labels = raw::from_vector(std::vector<float>{float(i), float(2 * i)}, {2});
    e.id = "s" + std::to_string(i);
    return e;
  });
}

std::vector<Batch> run_epoch(Loader& l, int64_t epoch) {
  l.start_epoch(epoch);
  std::vector<Batch> out;
  while (auto b = l.next()) out.push_back(std::move(*b));
  return out;
}

std::vector<int64_t> flat_indices(const std::vector<Batch>& bs) {
  std::vector<int64_t> v;
  for (const Batch& b : bs) v.insert(v.end(), b.indices.begin(), b.indices.end());
  return v;
}

// Runs f with a deadline, failing (instead of hanging the suite) if it does not finish.
template <typename F>
void within_seconds(double s, F f) {
  auto fut = std::async(std::launch::async, f);
  ASSERT_EQ(fut.wait_for(std::chrono::duration<double>(s)), std::future_status::ready)
      << "deadlock?";
  fut.get();
}

}  // namespace

TEST(Loader, EverySampleOncePerEpochAndCollated) {
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 1;
  Loader l(numbers(23), o);
  EXPECT_EQ(l.batches_per_epoch(), 6);
  const std::vector<Batch> bs = run_epoch(l, 0);
  ASSERT_EQ(bs.size(), 6u);
  EXPECT_EQ(bs.back().size(), 3);
  std::vector<int64_t> idx = flat_indices(bs);
  std::sort(idx.begin(), idx.end());
  for (int64_t i = 0; i < 23; ++i) EXPECT_EQ(idx[size_t(i)], i);
  const Batch& b = bs[0];
  EXPECT_EQ(b.images.sizes(), (Shape{4, 1, 2, 2}));
  EXPECT_EQ(b.labels.sizes(), (Shape{4, 2}));
  for (int64_t k = 0; k < 4; ++k) {
    EXPECT_EQ(b.labels.at({k, 0}), double(b.indices[size_t(k)]));
    EXPECT_EQ(std::floor(b.images.at({k, 0, 1, 1})), double(b.indices[size_t(k)]));
    EXPECT_EQ(b.ids[size_t(k)], "s" + std::to_string(b.indices[size_t(k)]));
  }
  EXPECT_FALSE(b.masks.defined());
  EXPECT_EQ(l.stats().samples, 23);
  EXPECT_NE(l.progress_line().find("6/6 batches"), std::string::npos) << l.progress_line();
}

TEST(Loader, DeterministicForSeedDifferentAcrossEpochsAndSeeds) {
  LoaderOptions o;
  o.batch_size = 5;
  o.seed = 7;
  Loader a(numbers(40), o), b(numbers(40), o);
  EXPECT_EQ(flat_indices(run_epoch(a, 0)), flat_indices(run_epoch(b, 0)));
  EXPECT_NE(a.epoch_indices(0), a.epoch_indices(1));
  o.seed = 8;
  Loader c(numbers(40), o);
  EXPECT_NE(a.epoch_indices(0), c.epoch_indices(0));
  o.shuffle = false;
  Loader d(numbers(5), o);
  EXPECT_EQ(d.epoch_indices(3), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(Loader, SameBatchesForAnyWorkerCount) {
  LoaderOptions o;
  o.batch_size = 3;
  o.seed = 11;
  std::vector<std::vector<float>> ref;
  for (int workers : {0, 1, 2, 4}) {
    o.workers = workers;
    o.prefetch_batches = workers == 4 ? 1 : 3;
    Loader l(numbers(31), o);
    std::vector<std::vector<float>> got;
    for (const Batch& b : run_epoch(l, 2)) got.push_back(b.images.to_vector<float>());
    if (ref.empty())
      ref = got;
    else
      EXPECT_EQ(got, ref) << workers << " workers";
  }
}

// pin_memory: the same batches, with every tensor in pinned memory (tensor/pinned.h).
TEST(Loader, PinMemoryDeliversTheSameBatchesPinned) {
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 5;
  Loader plain(numbers(10), o);
  const std::vector<Batch> ref = run_epoch(plain, 0);
  o.pin_memory = true;
  Loader pinned(numbers(10), o);
  std::vector<Batch> got;
  try {
    got = run_epoch(pinned, 0);
  } catch (const Error& e) {
    // Only a locked-memory limit may stop it, and the message says which.
    ASSERT_NE(std::string(e.what()).find("RLIMIT_MEMLOCK"), std::string::npos) << e.what();
    GTEST_SKIP() << "locked memory is limited here: " << e.what();
  }
  ASSERT_EQ(got.size(), ref.size());
  for (size_t b = 0; b < got.size(); ++b) {
    EXPECT_TRUE(is_pinned(got[b].images));
    EXPECT_TRUE(is_pinned(got[b].labels));
    EXPECT_FALSE(is_pinned(ref[b].images));
    EXPECT_EQ(got[b].images.to_vector<float>(), ref[b].images.to_vector<float>());
    EXPECT_EQ(got[b].labels.to_vector<float>(), ref[b].labels.to_vector<float>());
    EXPECT_EQ(got[b].indices, ref[b].indices);
  }
}

TEST(Loader, DistributedRanksPartitionTheEpoch) {
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 3;
  o.world_size = 3;
  std::multiset<int64_t> all;
  for (int r = 0; r < 3; ++r) {
    o.rank = r;
    Loader l(numbers(10), o);
    const std::vector<int64_t> idx = flat_indices(run_epoch(l, 1));
    EXPECT_EQ(idx.size(), 4u);  // ceil(10 / 3)
    all.insert(idx.begin(), idx.end());
  }
  EXPECT_EQ(all.size(), 12u);
  for (int64_t i = 0; i < 10; ++i) EXPECT_GE(all.count(i), 1u);
}

TEST(Loader, DropLast) {
  LoaderOptions o;
  o.batch_size = 4;
  o.drop_last = true;
  Loader l(numbers(10), o);
  EXPECT_EQ(l.batches_per_epoch(), 2);
  EXPECT_EQ(run_epoch(l, 0).size(), 2u);
}

TEST(Loader, WorkerErrorSurfacesWithoutDeadlock) {
  for (int workers : {0, 1, 2, 3}) {
    within_seconds(20, [&] {
      LoaderOptions o;
      o.batch_size = 2;
      o.workers = workers;
      o.prefetch_batches = 2;
      Loader l(numbers(50, 13), o);
      l.start_epoch(0);
      bool thrown = false;
      try {
        while (l.next()) {
        }
      } catch (const cxr::Error& e) {
        thrown = true;
        EXPECT_NE(std::string(e.what()).find("cannot decode sample 13"), std::string::npos);
      }
      EXPECT_TRUE(thrown) << workers << " workers";
      EXPECT_FALSE(l.next().has_value());  // the epoch is over
      // A new epoch can start after the error.
      l.start_epoch(1);
      EXPECT_THROW(
          {
            while (l.next()) {
            }
          },
          cxr::Error);
    });
  }
}

TEST(Loader, CollateErrorSurfaces) {
  within_seconds(20, [] {
    LoaderOptions o;
    o.batch_size = 50;
    Loader l(numbers(50, 7, true), o);
    l.start_epoch(0);
    try {
      l.next();
      FAIL() << "expected a collate error";
    } catch (const cxr::Error& e) {
      EXPECT_NE(std::string(e.what()).find("sample 7"), std::string::npos) << e.what();
    }
  });
}

TEST(Loader, SkipBadSamplesAndReport) {
  within_seconds(20, [] {
    LoaderOptions o;
    o.batch_size = 4;
    o.skip_bad = true;
    Loader l(numbers(21, 5), o);
    const std::vector<int64_t> idx = flat_indices(run_epoch(l, 0));
    EXPECT_EQ(idx.size(), 20u);
    EXPECT_EQ(std::count(idx.begin(), idx.end(), 5), 0);
    ASSERT_EQ(l.bad_samples().size(), 1u);
    EXPECT_EQ(l.bad_samples()[0].index, 5);
    EXPECT_NE(l.bad_samples()[0].error.find("cannot decode"), std::string::npos);
    EXPECT_EQ(l.stats().skipped, 1);
  });
}

TEST(Loader, DestroyMidEpochDoesNotHang) {
  within_seconds(20, [] {
    LoaderOptions o;
    o.batch_size = 1;
    o.workers = 3;
    o.prefetch_batches = 1;
    Loader l(numbers(100), o);
    l.start_epoch(0);
    EXPECT_TRUE(l.next().has_value());
    l.start_epoch(1);  // restart while workers wait for room
    EXPECT_TRUE(l.next().has_value());
  });
}

TEST(Loader, BadOptions) {
  LoaderOptions o;
  o.batch_size = 0;
  EXPECT_THROW(Loader(numbers(3), o), cxr::Error);
  o.batch_size = 1;
  o.rank = 2;
  o.world_size = 2;
  EXPECT_THROW(Loader(numbers(3), o), cxr::Error);
  o.rank = 0;
  Loader l(numbers(3), o);
  EXPECT_THROW(l.next(), cxr::Error);  // no epoch started
}
