// Loader throughput: images/s for decoding + transforming 512x512 PNG phantoms through the batch
// loader (0 and 2 worker threads; the training pipeline: pad, resize to 512, random affine,
// brightness/contrast), against the raw single-thread PNG decode rate of the same files measured in
// the same run. Counters:
//   images_per_s     images delivered per second (wall time)
//   raw_decode_per_s read_image() alone on the same files, one thread, best of 3 passes
//   vs_raw_decode    images_per_s / raw_decode_per_s (> 1: workers hide decode + transform cost)
//
//   build/<dir>/bench/bench_loader --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "data/image_io.h"
#include "data/loader.h"
#include "data/phantom.h"
#include "data/transforms.h"

namespace {

using namespace cxr;
using namespace cxr::data;
namespace fs = std::filesystem;

constexpr int64_t kImages = 48, kSize = 512;

struct Files {
  fs::path dir;
  std::vector<std::string> paths;
  double raw_rate = 0;
  Files() {
    dir = fs::temp_directory_path() / ("cxr_bench_loader_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    PhantomOptions o;
    o.size = kSize;
    for (int64_t i = 0; i < kImages; ++i) {
      paths.push_back((dir / ("p" + std::to_string(i) + ".png")).string());
      write_png(paths.back(), make_phantom(o, 1, i).image);
    }
    for (int pass = 0; pass < 3; ++pass) {
      const auto t0 = std::chrono::steady_clock::now();
      for (const auto& p : paths) benchmark::DoNotOptimize(read_image(p).data_ptr());
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      raw_rate = std::max(raw_rate, double(kImages) / s);
    }
  }
  ~Files() { fs::remove_all(dir); }
};

Files& files() {
  static Files f;
  return f;
}

void BM_RawDecode(benchmark::State& state) {
  Files& f = files();
  int64_t n = 0;
  for (auto _ : state)
    for (const auto& p : f.paths) {
      benchmark::DoNotOptimize(read_image(p).data_ptr());
      ++n;
    }
  state.counters["images_per_s"] = benchmark::Counter(double(n), benchmark::Counter::kIsRate);
  state.counters["raw_decode_per_s"] = f.raw_rate;
}

void BM_Loader(benchmark::State& state) {
  Files& f = files();
  const Pipeline pipe = train_pipeline(kSize);
  auto source = std::make_shared<FunctionSource>(kImages, [&f, pipe](int64_t i, Generator& g) {
    Example e;
    Tensor mask;
    e.image = read_image(f.paths[size_t(i)]);
    pipe(e.image, mask, g);
    return e;
  });
  LoaderOptions o;
  o.batch_size = 8;
  o.workers = int(state.range(0));
  o.prefetch_batches = 4;
  Loader loader(source, o);
  int64_t n = 0, epoch = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    loader.start_epoch(epoch++);
    while (auto b = loader.next()) n += b->size();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["images_per_s"] = double(n) / s;
  state.counters["raw_decode_per_s"] = f.raw_rate;
  state.counters["vs_raw_decode"] = double(n) / s / f.raw_rate;
}

}  // namespace

BENCHMARK(BM_RawDecode)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Loader)
    ->Arg(0)
    ->Arg(2)
    ->ArgName("workers")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_MAIN();
