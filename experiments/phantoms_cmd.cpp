// `cxr phantoms`: writes a procedural phantom dataset in a real dataset's layout
// (data/phantom_writer.h), or with --sheet a sample-sheet PNG of the phantom findings.
#include <array>
#include <cstdio>
#include <memory>
#include <string>

#include "data/phantom_writer.h"
#include "experiments/commands.h"
#include "tensor/error.h"

namespace cxr::experiments {

namespace {

struct PhantomsOptions {
  std::string layout, out, sheet;
  int64_t count = 100, size = 256, sheet_tile = 128;
  uint64_t seed = 0;
  double noise = 0.025, valid_fraction = 0.1, uncertain = 0.0;
  std::array<double, data::kNumFindings> prevalence{-1, -1, -1, -1, -1, -1};  // -1: layout default
  bool force = false, quiet = false;
};

void run_phantoms(const PhantomsOptions& o) {
  if (!o.sheet.empty()) {
    CXR_CHECK(o.out.empty() && o.layout.empty(),
              "phantoms: --sheet writes only the sample sheet (drop --layout/--out)");
    data::write_phantom_sheet(o.sheet, o.sheet_tile, o.seed);
    std::printf("wrote phantom sheet %s\n", o.sheet.c_str());
    return;
  }
  CXR_CHECK(!o.layout.empty(),
            "phantoms: --layout is required (chexpert, rsna, siim or candid-ptx)");
  CXR_CHECK(!o.out.empty(), "phantoms: --out is required");
  data::PhantomDatasetOptions d;
  d.layout = data::parse_phantom_layout(o.layout);
  d.count = o.count;
  d.seed = o.seed;
  d.phantom.size = o.size;
  d.phantom.noise = o.noise;
  d.phantom.prevalence = data::default_prevalence(d.layout);
  for (int k = 0; k < data::kNumFindings; ++k)
    if (o.prevalence[size_t(k)] != -1) d.phantom.prevalence[size_t(k)] = o.prevalence[size_t(k)];
  d.valid_fraction = o.valid_fraction;
  d.uncertain = o.uncertain;
  d.overwrite = o.force;
  d.quiet = o.quiet;
  const data::PhantomDatasetSummary s = data::write_phantom_dataset(o.out, d);
  std::printf("wrote %lld %s phantoms (%lldx%lld) to %s; positives:",
              static_cast<long long>(s.images), data::phantom_layout_name(d.layout),
              static_cast<long long>(o.size), static_cast<long long>(o.size), s.root.c_str());
  for (int k = 0; k < data::kNumFindings; ++k)
    std::printf(" %s %lld", data::finding_name(data::Finding(k)),
                static_cast<long long>(s.positives[size_t(k)]));
  std::printf("\n");
}

}  // namespace

Command register_phantoms(CLI::App& app) {
  auto o = std::make_shared<PhantomsOptions>();
  CLI::App* sub = app.add_subcommand(
      "phantoms", "Write a procedural chest-X-ray phantom dataset in a real dataset's layout");
  sub->add_option("--layout", o->layout, "chexpert, rsna, siim or candid-ptx");
  sub->add_option("--out", o->out,
                  "Output folder (written atomically; must not exist unless --force)");
  sub->add_option("--count", o->count, "Number of images")->capture_default_str();
  sub->add_option("--size", o->size, "Image side in pixels (32..8192)")->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed")->capture_default_str();
  sub->add_option("--noise", o->noise, "Pixel noise std")->capture_default_str();
  for (int k = 0; k < data::kNumFindings; ++k)
    sub->add_option(std::string("--prevalence-") + data::finding_name(data::Finding(k)),
                    o->prevalence[size_t(k)],
                    std::string("Probability of ") + data::finding_name(data::Finding(k)) +
                        " (default: the layout's)");
  sub->add_option("--valid-fraction", o->valid_fraction, "CheXpert: share of images in valid.csv")
      ->capture_default_str();
  sub->add_option("--uncertain", o->uncertain, "CheXpert: probability a train positive is -1.0")
      ->capture_default_str();
  sub->add_flag("--force", o->force, "Replace an existing output folder");
  sub->add_flag("--quiet", o->quiet, "No progress lines");
  sub->add_option("--sheet", o->sheet, "Write only a sample-sheet PNG to this path");
  sub->add_option("--sheet-tile", o->sheet_tile, "Sample-sheet tile size in pixels")
      ->capture_default_str();
  return {sub, [o] { run_phantoms(*o); }};
}

}  // namespace cxr::experiments
