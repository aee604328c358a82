// Phantom datasets in the real layouts: written, then re-read by the dataset readers (CheXpert,
// RSNA, SIIM, CANDID-PTX) and compared with the generator's own labels and masks; CSV headers and
// RLE rows also checked directly; atomic output, errors, and the loader over reader samples.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "data/candid_ptx.h"
#include "data/chexpert.h"
#include "data/csv.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "data/phantom_writer.h"
#include "data/rle.h"
#include "data/rsna.h"
#include "data/siim.h"
#include "data/transforms.h"
#include "tensor/error.h"

using namespace cxr;
using namespace cxr::data;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("cxr_phantom_writer_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

PhantomDatasetOptions opts(PhantomLayout l, int64_t count) {
  PhantomDatasetOptions o;
  o.layout = l;
  o.count = count;
  o.seed = 21;
  o.phantom.size = 64;
  o.phantom.prevalence = default_prevalence(l);
  return o;
}

std::vector<uint8_t> bytes(const Tensor& m) {
  const uint8_t* p = m.data<uint8_t>();
  return std::vector<uint8_t>(p, p + m.numel());
}

}  // namespace

TEST(PhantomWriter, CheXpertReadBackMatchesGenerator) {
  TempDir t;
  PhantomDatasetOptions o = opts(PhantomLayout::CheXpert, 30);
  o.phantom.prevalence = {0.3, 0.5, 0.5, 0.5, 0.5, 0.5};
  const fs::path root = t.path / "chexpert";
  const PhantomDatasetSummary sum = write_phantom_dataset(root.string(), o);
  EXPECT_EQ(sum.images, 30);
  const CsvTable train = read_csv((root / "train.csv").string());
  ASSERT_EQ(train.header.size(), 19u);
  EXPECT_EQ(train.header[0], "Path");
  EXPECT_EQ(train.header[18], "Support Devices");
  CheXpertOptions co;
  co.check_images = true;
  const CheXpertSplit split = read_chexpert_official(root.string(), co);
  ASSERT_EQ(split.train.size(), 27u);
  ASSERT_EQ(split.test.size(), 3u);
  // Sample labels: Atelectasis, Cardiomegaly, Consolidation, Edema, Pleural Effusion.
  const Finding order[5] = {Finding::Atelectasis, Finding::Cardiomegaly, Finding::Consolidation,
                            Finding::Edema, Finding::Effusion};
  int64_t positives = 0;
  for (size_t i = 0; i < 30; ++i) {
    const Sample& s = i < 27 ? split.train.samples[i] : split.test.samples[i - 27];
    const PhantomSample p = make_phantom(o.phantom, o.seed, int64_t(i));
    for (int k = 0; k < 5; ++k) {
      EXPECT_EQ(s.labels[size_t(k)], p.has(order[k]) ? 1.0f : 0.0f) << s.id << " label " << k;
      positives += p.has(order[k]);
    }
    if (i == 0 || i == 29) {
      const Tensor img = read_image(s.image_path);
      ASSERT_EQ(img.sizes(), (Shape{1, 64, 64}));
      const std::vector<float> a = img.to_vector<float>(), b = p.image.to_vector<float>();
      for (size_t q = 0; q < a.size(); ++q) ASSERT_NEAR(a[q], b[q], 0.51 / 255.0);
    }
  }
  EXPECT_GT(positives, 20);
  // The manifest lists every image with its caption.
  const CsvTable m = read_csv((root / "phantoms.csv").string());
  EXPECT_EQ(m.size(), 30u);
  EXPECT_EQ(m.rows[5][m.column("caption")], make_phantom(o.phantom, o.seed, 5).caption);
}

TEST(PhantomWriter, SiimMasksRoundTripThroughTheReader) {
  TempDir t;
  PhantomDatasetOptions o = opts(PhantomLayout::Siim, 16);
  o.phantom.prevalence[0] = 0.5;
  const fs::path root = t.path / "siim";
  const PhantomDatasetSummary sum = write_phantom_dataset(root.string(), o);
  EXPECT_GT(sum.positives[0], 2);
  const std::string header = read_text_file((root / "train-rle.csv").string());
  EXPECT_EQ(header.substr(0, header.find('\n')), "ImageId, EncodedPixels");
  SiimOptions so;
  so.mask_size = 64;
  so.check_images = true;
  const Dataset d = read_siim(root.string(), so);
  ASSERT_EQ(d.size(), 16u);
  const CsvTable m = read_csv((root / "phantoms.csv").string());
  for (size_t i = 0; i < 16; ++i) {
    const std::string id = m.rows[i][0];
    const Sample& s = d.samples[d.index_of(id)];
    const PhantomSample p = make_phantom(o.phantom, o.seed, int64_t(i));
    EXPECT_EQ(s.labels[0], p.has(Finding::Pneumothorax) ? 1.0f : 0.0f);
    EXPECT_EQ(s.decode_mask(), bytes(p.mask(Finding::Pneumothorax))) << id;
  }
  const SiimOptions pos{true, "", false, 64};
  EXPECT_EQ(int64_t(read_siim(root.string(), pos).size()), sum.positives[0]);
}

TEST(PhantomWriter, RsnaBoxesCoverTheConsolidation) {
  TempDir t;
  PhantomDatasetOptions o = opts(PhantomLayout::Rsna, 16);
  o.phantom.prevalence[3] = 0.5;
  const fs::path root = t.path / "rsna";
  const PhantomDatasetSummary sum = write_phantom_dataset(root.string(), o);
  RsnaOptions ro;
  ro.check_images = true;
  const Dataset d = read_rsna(root.string(), ro);
  ASSERT_EQ(d.size(), 16u);
  const CsvTable m = read_csv((root / "phantoms.csv").string());
  int64_t pos = 0;
  for (size_t i = 0; i < 16; ++i) {
    const Sample& s = d.samples[d.index_of(m.rows[i][0])];
    const PhantomSample p = make_phantom(o.phantom, o.seed, int64_t(i));
    ASSERT_EQ(s.labels[0], p.has(Finding::Consolidation) ? 1.0f : 0.0f);
    pos += s.labels[0] > 0;
    EXPECT_EQ(s.boxes.empty(), !p.has(Finding::Consolidation));
    // Every mask pixel lies in some box.
    const uint8_t* mk = p.mask(Finding::Consolidation).data<uint8_t>();
    for (int64_t q = 0; q < 64 * 64; ++q) {
      if (!mk[q]) continue;
      bool in = false;
      for (const Box& b : s.boxes)
        in |= q % 64 >= b.x && q % 64 < b.x + b.width && q / 64 >= b.y && q / 64 < b.y + b.height;
      ASSERT_TRUE(in);
    }
  }
  EXPECT_EQ(pos, sum.positives[3]);
  const CsvTable cls = read_csv((root / "stage_2_detailed_class_info.csv").string());
  EXPECT_EQ(cls.header, (std::vector<std::string>{"patientId", "class"}));
}

TEST(PhantomWriter, CandidPtxCsvs) {
  TempDir t;
  PhantomDatasetOptions o = opts(PhantomLayout::CandidPtx, 12);
  o.phantom.prevalence[0] = 0.5;
  const fs::path root = t.path / "candid";
  write_phantom_dataset(root.string(), o);
  const CsvTable r = read_csv((root / "Pneumothorax_reports.csv").string());
  EXPECT_EQ(r.header, (std::vector<std::string>{"SOPInstanceUID", "StudyInstanceUID", "filename",
                                                "EncodedPixels", "Report"}));
  for (const char* f : {"chest_tube.csv", "acute_rib_fracture.csv"})
    EXPECT_EQ(read_csv((root / f).string()).header,
              (std::vector<std::string>{"anon_SOPUID", "annotation_ref", "mask_rle"}));
  std::map<std::string, std::vector<uint8_t>> masks;
  for (size_t k = 0; k < r.size(); ++k) {
    const std::string uid = r.rows[k][0];
    EXPECT_TRUE(fs::exists(root / "dataset" / uid)) << uid;
    EXPECT_EQ(r.rows[k][2].rfind("P", 0), 0u);
    auto& m = masks[uid];
    if (m.empty()) m.assign(64 * 64, 0);
    rle_decode_relative_into(r.rows[k][3], 64, 64, m.data());
  }
  ASSERT_EQ(masks.size(), 12u);
  const CsvTable man = read_csv((root / "phantoms.csv").string());
  for (size_t i = 0; i < 12; ++i) {
    const PhantomSample p = make_phantom(o.phantom, o.seed, int64_t(i));
    EXPECT_EQ(masks[man.rows[i][0]], bytes(p.mask(Finding::Pneumothorax)));
  }
}

TEST(PhantomWriter, DeterministicAndAtomic) {
  TempDir t;
  PhantomDatasetOptions o = opts(PhantomLayout::Siim, 6);
  const fs::path a = t.path / "a", b = t.path / "b";
  write_phantom_dataset(a.string(), o);
  write_phantom_dataset(b.string(), o);
  EXPECT_EQ(read_text_file((a / "train-rle.csv").string()),
            read_text_file((b / "train-rle.csv").string()));
  // An existing folder is refused unless overwrite is set, and left as it was.
  EXPECT_THROW(write_phantom_dataset(a.string(), o), cxr::Error);
  EXPECT_TRUE(fs::exists(a / "train-rle.csv"));
  o.overwrite = true;
  o.count = 3;
  write_phantom_dataset(a.string(), o);
  EXPECT_EQ(read_csv((a / "phantoms.csv").string()).size(), 3u);
  // A failure leaves nothing behind (the parent "folder" is a file).
  std::ofstream(t.path / "file") << "x";
  EXPECT_THROW(write_phantom_dataset((t.path / "file" / "out").string(), o), std::exception);
  for (const auto& e : fs::directory_iterator(t.path))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST(PhantomWriter, BadOptionsAndSheet) {
  TempDir t;
  EXPECT_THROW(parse_phantom_layout("mimic"), cxr::Error);
  EXPECT_EQ(parse_phantom_layout("candid-ptx"), PhantomLayout::CandidPtx);
  PhantomDatasetOptions o = opts(PhantomLayout::Rsna, 0);
  EXPECT_THROW(write_phantom_dataset((t.path / "x").string(), o), cxr::Error);
  EXPECT_FALSE(fs::exists(t.path / "x"));
  const fs::path sheet = t.path / "sheet.png";
  write_phantom_sheet(sheet.string(), 48, 1);
  const ImageInfo info = read_image_info(sheet.string());
  EXPECT_EQ(info.width, 7 * 48);
  EXPECT_EQ(info.height, 2 * 48);
  EXPECT_EQ(info.channels, 3);
}

TEST(PhantomWriter, ConnectedComponents) {
  // 3x4:  1 1 0 1 / 0 0 0 1 / 1 0 1 1  -> {0, 1}, {3, 7, 11, 10}, {8} (4-connectivity, in scan
  // order)
  const uint8_t m[12] = {1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1};
  const auto c = connected_components(m, 3, 4);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0], (std::vector<uint8_t>{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(c[1], (std::vector<uint8_t>{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 1}));
  EXPECT_EQ(c[2], (std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST(PhantomWriter, LoaderOverReaderSamples) {
  // SIIM phantoms -> read_siim -> dataset_source (eval pipeline to 32x32) -> Loader batches whose
  // masks equal the generator's masks resized with nearest, and images its images resized.
  TempDir t;
  PhantomDatasetOptions o = opts(PhantomLayout::Siim, 10);
  o.phantom.prevalence[0] = 0.6;
  const fs::path root = t.path / "siim";
  write_phantom_dataset(root.string(), o);
  SiimOptions so;
  so.mask_size = 64;
  auto d = std::make_shared<const Dataset>(read_siim(root.string(), so));
  LoaderOptions lo;
  lo.batch_size = 4;
  lo.workers = 2;
  Loader l(dataset_source(d, eval_pipeline(32)), lo);
  l.start_epoch(0);
  const CsvTable m = read_csv((root / "phantoms.csv").string());
  std::map<std::string, int64_t> index_of_id;
  for (size_t i = 0; i < m.size(); ++i) index_of_id[m.rows[i][0]] = int64_t(i);
  int64_t seen = 0;
  while (auto b = l.next()) {
    ASSERT_EQ(b->images.sizes(), (Shape{b->size(), 1, 32, 32}));
    ASSERT_EQ(b->masks.sizes(), (Shape{b->size(), 1, 32, 32}));
    ASSERT_EQ(b->labels.sizes(), (Shape{b->size(), 1}));
    for (int64_t k = 0; k < b->size(); ++k) {
      const PhantomSample p = make_phantom(o.phantom, o.seed, index_of_id.at(b->ids[size_t(k)]));
      const Tensor want = resize(p.mask(Finding::Pneumothorax), 32, 32, Interp::Nearest);
      const std::vector<double> got = b->masks.to_vector<double>();
      const std::vector<double> w = want.to_vector<double>();
      for (size_t q = 0; q < w.size(); ++q) ASSERT_EQ(got[size_t(k) * 1024 + q], w[q]);
      EXPECT_EQ(b->labels.at({k, 0}), p.has(Finding::Pneumothorax) ? 1.0 : 0.0);
      const Tensor img = resize(p.image, 32, 32, Interp::Area);
      EXPECT_NEAR(b->images.at({k, 0, 16, 16}), img.at({16, 16}), 2.0 / 255.0);
      ++seen;
    }
  }
  EXPECT_EQ(seen, 10);
}

TEST(PhantomWriter, CandidPtxReadBackByTheReader) {
  TempDir t;
  PhantomDatasetOptions o = opts(PhantomLayout::CandidPtx, 12);
  o.phantom.prevalence[0] = 0.5;
  const fs::path root = t.path / "candid";
  const PhantomDatasetSummary sum = write_phantom_dataset(root.string(), o);
  CandidPtxOptions co;
  co.mask_size = 64;
  co.check_images = true;
  const Dataset d = read_candid_ptx(root.string(), co);
  ASSERT_EQ(d.size(), 12u);
  const CsvTable m = read_csv((root / "phantoms.csv").string());
  for (size_t i = 0; i < 12; ++i) {
    const Sample& s = d.samples[d.index_of(m.rows[i][0])];
    const PhantomSample p = make_phantom(o.phantom, o.seed, int64_t(i));
    EXPECT_EQ(s.labels[0], p.has(Finding::Pneumothorax) ? 1.0f : 0.0f);
    EXPECT_EQ(s.labels[1], 0.0f);  // no chest tubes
    EXPECT_EQ(s.labels[2], 0.0f);  // no rib fractures
    EXPECT_EQ(s.decode_mask(), bytes(p.mask(Finding::Pneumothorax)));
    EXPECT_EQ(s.patient_id,
              "P" + std::string(5 - std::to_string(i + 1).size(), '0') + std::to_string(i + 1));
    EXPECT_NE(s.report.find(p.caption), std::string::npos) << s.report;
  }
  co.positive_only = true;
  EXPECT_EQ(int64_t(read_candid_ptx(root.string(), co).size()), sum.positives[0]);
}
