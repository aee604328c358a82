// The data of a downstream run (task_data.h).
#include "experiments/task_data.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "data/candid_ptx.h"
#include "data/chexpert.h"
#include "data/dicom.h"
#include "data/rsna.h"
#include "data/siim.h"
#include "data/splits.h"
#include "data/synthetic.h"
#include "data/transforms.h"
#include "tensor/error.h"
#include "tensor/random.h"

namespace cxr::experiments {

namespace {

// The side of the RLE grid: the config's, or (0) the side of the dataset's first image — SIIM-style
// RLEs are written on the image's own pixel grid (1024 for the published datasets, the phantom
// size for phantom datasets).
int64_t mask_size(const TrainConfig& c, const data::Dataset& ds) {
  if (c.mask_size > 0 || ds.samples.empty()) return c.mask_size > 0 ? c.mask_size : 1024;
  const Tensor first = data::read_any_image(ds.samples.front().image_path);
  CXR_CHECK(first.size(-1) == first.size(-2), "mask_size: the first image of ", c.dataset, " ('",
            ds.samples.front().image_path, "') is not square (", first.size(-2), "x",
            first.size(-1), "); set mask_size to the side of the RLE grid");
  return first.size(-1);
}

// The dataset as one sample list (CheXpert: train.csv and valid.csv together; the official split
// keeps valid.csv as the test set).
data::Dataset read_dataset(const TrainConfig& c, std::optional<data::Split>* official) {
  if (c.dataset == "rsna") return data::read_rsna(c.data_root);
  if (c.dataset == "siim") {
    data::SiimOptions o;
    o.positive_only = c.positive_only;
    o.mask_size = mask_size(c, data::read_siim(c.data_root, o));
    return data::read_siim(c.data_root, o);
  }
  if (c.dataset == "candid-ptx") {
    data::CandidPtxOptions o;
    o.positive_only = c.positive_only;
    o.mask_size = mask_size(c, data::read_candid_ptx(c.data_root, o));
    return data::read_candid_ptx(c.data_root, o);
  }
  CXR_CHECK(c.dataset == "chexpert", "unknown dataset '", c.dataset, "'");
  data::CheXpertSplit cs = data::read_chexpert_official(c.data_root);
  *official = data::official_split(cs.train, cs.test, c.split_seed, c.val_fraction);
  data::Dataset all = std::move(cs.train);
  for (auto& s : cs.test.samples) all.samples.push_back(std::move(s));
  return all;
}

// The columns of `ds.label_names` that `wanted` names, in its order.
std::vector<size_t> label_columns(const data::Dataset& ds, const std::vector<std::string>& wanted) {
  std::vector<size_t> cols;
  for (const auto& name : wanted) {
    auto it = std::find(ds.label_names.begin(), ds.label_names.end(), name);
    if (it == ds.label_names.end()) {
      std::string known;
      for (const auto& n : ds.label_names) known += (known.empty() ? "" : ", ") + n;
      CXR_FAIL("config key 'labels': dataset ", ds.name, " has no label '", name,
               "' (labels: ", known, ")");
    }
    cols.push_back(size_t(it - ds.label_names.begin()));
  }
  return cols;
}

// The samples of `ds` at `indices`, keeping only the label columns `cols`.
std::shared_ptr<data::Dataset> subset(const data::Dataset& ds, const std::vector<size_t>& indices,
                                      const std::vector<size_t>& cols,
                                      const std::vector<std::string>& label_names) {
  auto out = std::make_shared<data::Dataset>();
  out->name = ds.name;
  out->root = ds.root;
  out->label_names = label_names;
  for (size_t i : indices) {
    data::Sample s = ds.samples[i];
    std::vector<float> labels;
    for (size_t c : cols) labels.push_back(s.labels.at(c));
    s.labels = std::move(labels);
    out->samples.push_back(std::move(s));
  }
  return out;
}

data::Pipeline pipeline(const TrainConfig& c, bool train) {
  data::Pipeline p =
      train && c.augment ? data::train_pipeline(c.image_size) : data::eval_pipeline(c.image_size);
  // Intensities to [-1, 1] (MGCA's Normalize(0.5, 0.5)).
  p.add(data::normalize_step({0.5}, {0.5}), "normalize");
  return p;
}

}  // namespace

std::string TaskData::summary() const {
  return train->name + ": " + std::to_string(real_train + synthetic_train) + " train (" +
         std::to_string(real_train) + " real + " + std::to_string(synthetic_train) +
         " synthetic), " + std::to_string(val->size()) + " val, " + std::to_string(test->size()) +
         " test";
}

TaskData prepare_task_data(TaskKind task, const TrainConfig& c) {
  std::optional<data::Split> official;
  const data::Dataset ds = read_dataset(c, &official);
  CXR_CHECK(!ds.samples.empty(), "dataset ", c.dataset, " at '", c.data_root, "' has no samples");

  TaskData out;
  const bool cls = task == TaskKind::Classification;
  std::vector<size_t> cols;
  if (cls) {
    out.label_names = c.labels.empty()
                          ? (c.dataset == "chexpert" ? data::chexpert_labels() : ds.label_names)
                          : c.labels;
    cols = label_columns(ds, out.label_names);
  }

  // The split: given, or made from the seed (the caller saves it with the run).
  data::Split& split = out.split;
  if (!c.split_file.empty()) {
    split = data::read_split(c.split_file);
  } else {
    split = official ? *official
                     : data::random_split(ds, {.test_fraction = c.test_fraction,
                                               .val_fraction = c.val_fraction,
                                               .seed = uint64_t(c.split_seed)});
    out.split_generated = true;
  }
  data::check_split(ds, split);
  const std::vector<std::string> train_ids = split.train_fraction(c.train_fraction);
  CXR_CHECK(!train_ids.empty(), "the training split of ", c.dataset, " is empty");
  CXR_CHECK(!split.test.empty(), "the test split of ", c.dataset,
            " is empty (raise test_fraction or use a split file with test rows)");

  auto train = subset(ds, data::indices_of(ds, train_ids), cols, out.label_names);
  out.real_train = int64_t(train->size());
  if (c.synthetic_per_real > 0) {
    // Synthetic images: a seeded draw without replacement of round(k * real) images.
    const data::Dataset syn = data::read_synthetic(c.synthetic_dir, out.label_names);
    const int64_t want = std::llround(c.synthetic_per_real * double(out.real_train));
    CXR_CHECK(want <= int64_t(syn.size()), "synthetic_per_real ", c.synthetic_per_real, " needs ",
              want, " synthetic images for ", out.real_train, " real ones, but '", c.synthetic_dir,
              "' has ", syn.size());
    Generator gen(c.seed ^ 0x53594e5448ULL);  // "SYNTH": its own stream, apart from training
    std::vector<size_t> order;
    for (int64_t i : raw::randperm(int64_t(syn.size()), gen).to_vector<int64_t>())
      order.push_back(size_t(i));
    order.resize(size_t(want));
    std::vector<size_t> all_cols(out.label_names.size());
    std::iota(all_cols.begin(), all_cols.end(), size_t(0));
    auto picked = subset(syn, order, all_cols, out.label_names);
    for (auto& s : picked->samples) train->samples.push_back(std::move(s));
    out.synthetic_train = want;
  }
  out.train = train;
  out.val = subset(ds, data::indices_of(ds, split.val), cols, out.label_names);
  out.test = subset(ds, data::indices_of(ds, split.test), cols, out.label_names);

  out.positives.assign(out.label_names.size(), 0);
  out.negatives.assign(out.label_names.size(), 0);
  for (const auto& s : out.train->samples)
    for (size_t l = 0; l < s.labels.size(); ++l) {
      if (data::is_ignored(s.labels[l])) continue;
      (s.labels[l] > 0.5f ? out.positives : out.negatives)[l] += 1;
    }

  const bool masks = !cls;
  out.train_source = data::dataset_source(out.train, pipeline(c, true), masks);
  out.val_source = data::dataset_source(out.val, pipeline(c, false), masks);
  out.test_source = data::dataset_source(out.test, pipeline(c, false), masks);
  return out;
}

}  // namespace cxr::experiments
