// Dataset readers on the real label files in ../shared/data (expected counts from the data README
// and from Python's csv module over the same files), and malformed inputs asserting the message.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <unistd.h>

#include "data/chexpert.h"
#include "data/rsna.h"
#include "data/siim.h"
#include "support/errors.h"
#include "support/files.h"
#include "support/fixtures.h"
#include "tensor/error.h"

using namespace cxr::data;

namespace {
std::string shared(const std::string& rel) {
  return cxr::test::shared_data_path(rel);
}
#define NEED(path) \
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared data missing: " << path

using cxr::test::TempDir;

int64_t count_ones(const std::vector<uint8_t>& m) {
  int64_t n = 0;
  for (auto v : m) n += v;
  return n;
}
}  // namespace

TEST(CheXpert, FullTrainCsvFrontalCountsAndPolicies) {
  auto csv = shared("chexpert/chexpert_train.csv.gz");
  NEED(csv);
  Dataset ones = read_chexpert("/data/CheXpert-v1.0-small", csv);
  ASSERT_EQ(ones.size(), 191027u);  // README: 191,027 frontal rows
  EXPECT_EQ(ones.samples[0].id, "train/patient00001/study1/view1_frontal.jpg");
  EXPECT_EQ(ones.samples[0].patient_id, "patient00001");
  EXPECT_EQ(ones.samples[0].image_path,
            "/data/CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg");
  // Counts over frontal rows (Python csv): {1.0, -1.0} per label.
  const int64_t pos[5] = {29720, 23385, 12983, 49675, 76899};
  const int64_t unc[5] = {29863, 6707, 24381, 11818, 9578};
  Dataset zeros = read_chexpert("", csv, {Uncertainty::Zeros});
  Dataset ign = read_chexpert("", csv, {Uncertainty::Ignore});
  Dataset mixed = read_chexpert("", csv, {Uncertainty::Mixed});
  for (int k = 0; k < 5; ++k) {
    int64_t n1 = 0, n0 = 0, nn = 0, nm = 0;
    for (size_t i = 0; i < ones.size(); ++i) {
      n1 += ones.samples[i].labels[k] == 1.0f;
      n0 += zeros.samples[i].labels[k] == 1.0f;
      nn += std::isnan(ign.samples[i].labels[k]);
      nm += mixed.samples[i].labels[k] == 1.0f;
    }
    EXPECT_EQ(n1, pos[k] + unc[k]) << k;
    EXPECT_EQ(n0, pos[k]) << k;
    EXPECT_EQ(nn, unc[k]) << k;
    EXPECT_EQ(nm, (k == 1 || k == 2) ? pos[k] : pos[k] + unc[k]) << k;
  }
  Dataset all = read_chexpert("", csv, {Uncertainty::Ones, /*frontal_only=*/false});
  EXPECT_EQ(all.size(), 223414u);
  std::set<std::string> ids;
  for (auto& s : ones.samples) ids.insert(s.id);
  EXPECT_EQ(ids.size(), ones.size());  // ids are unique
}

TEST(CheXpert, JfhealthcareValidVariant) {
  auto csv = shared("chexpert/valid_as_jfhealthcare_dev.csv");
  NEED(csv);
  Dataset v = read_chexpert("/root/CheXpert-v1.0", csv);
  ASSERT_EQ(v.size(), 202u);  // 234 images, 202 frontal
  EXPECT_EQ(v.samples[0].id, "valid/patient64541/study1/view1_frontal.jpg");
  EXPECT_EQ(v.samples[0].image_path,
            "/root/CheXpert-v1.0/valid/patient64541/study1/view1_frontal.jpg");
  std::set<std::string> patients;
  for (auto& s : v.samples) patients.insert(s.patient_id);
  EXPECT_EQ(patients.size(), 200u);
  const int64_t pos[5] = {75, 66, 32, 42, 64};
  for (int k = 0; k < 5; ++k) {
    int64_t n = 0;
    for (auto& s : v.samples) n += s.labels[k] == 1.0f;
    EXPECT_EQ(n, pos[k]) << chexpert_labels()[k];
  }
  EXPECT_EQ(read_chexpert("", csv, {Uncertainty::Ones, false}).size(), 234u);
}

TEST(CheXpert, JfhealthcareTrainMatchesOfficialRows) {
  auto jf = shared("chexpert/train_first1969_as_jfhealthcare.csv");
  auto off = shared("chexpert/chexpert_train.csv.gz");
  NEED(jf);
  NEED(off);
  CheXpertOptions o{Uncertainty::Ignore, false};
  Dataset a = read_chexpert("", jf, o), b = read_chexpert("", off, o);
  // Python csv counts 1,970 data rows (the README says 1,969).
  ASSERT_EQ(a.size(), 1970u);
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a.samples[i].id, b.samples[i].id) << i;
    for (int k = 0; k < 5; ++k) {
      float x = a.samples[i].labels[k], y = b.samples[i].labels[k];
      EXPECT_TRUE(x == y || (std::isnan(x) && std::isnan(y))) << i << " " << k;
    }
  }
}

TEST(CheXpert, MalformedInputs) {
  TempDir d;
  const std::string header =
      "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung "
      "Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural "
      "Effusion,Pleural Other,Fracture,Support Devices\n";
  auto bad_label =
      d.write("bad_label.csv", header +
                                   "CheXpert-v1.0-small/train/patient1/study1/"
                                   "view1_frontal.jpg,F,1,Frontal,AP,,,2.0,,,,,,,,,,,\n");
  auto m = cxr::test::error_message([&] { read_chexpert("", bad_label); });
  EXPECT_NE(m.find("bad_label.csv:2: column 'Cardiomegaly': bad value '2.0'"), std::string::npos)
      << m;
  auto bad_text =
      d.write("bad_text.csv", header +
                                  "CheXpert-v1.0-small/train/patient1/study1/"
                                  "view1_frontal.jpg,F,1,Frontal,AP,,,,,,yes,,,,,,,,\n");
  m = cxr::test::error_message([&] { read_chexpert("", bad_text); });
  EXPECT_NE(m.find("bad_text.csv:2: column 'Edema': bad value 'yes'"), std::string::npos) << m;
  auto short_row = d.write("short.csv", header + "a/train/p/x.jpg,F,1,Frontal\n");
  m = cxr::test::error_message([&] { read_chexpert("", short_row); });
  EXPECT_NE(m.find("short.csv:2: expected 19 fields, got 4"), std::string::npos) << m;
  auto missing_col = d.write("nocol.csv", "Path,Frontal/Lateral\nx.jpg,Frontal\n");
  m = cxr::test::error_message([&] { read_chexpert("", missing_col); });
  EXPECT_NE(m.find("missing column 'Atelectasis'"), std::string::npos) << m;
  auto ok = d.write("ok.csv", header +
                                  "CheXpert-v1.0-small/train/patient1/study1/"
                                  "view1_frontal.jpg,F,1,Frontal,AP,,,1.0,,,,,,,,,,,\n");
  CheXpertOptions check;
  check.check_images = true;
  m = cxr::test::error_message([&] { read_chexpert(d.dir.string(), ok, check); });
  EXPECT_NE(m.find("ok.csv:2: image '" +
                   (d.dir / "train/patient1/study1/view1_frontal.jpg").string() + "' not found"),
            std::string::npos)
      << m;
  d.write("train/patient1/study1/view1_frontal.jpg", "x");
  EXPECT_EQ(read_chexpert(d.dir.string(), ok, check).size(), 1u);
}

TEST(Rsna, RealLabelsCollapseToPatients) {
  auto csv = shared("rsna_pneumonia/stage_2_train_labels.csv");
  NEED(csv);
  Dataset ds = read_rsna("/rsna", {}, csv);
  ASSERT_EQ(ds.size(), 26684u);
  int64_t positive = 0, boxes = 0;
  std::map<size_t, int64_t> per_patient;
  for (auto& s : ds.samples) {
    positive += s.labels[0] == 1.0f;
    boxes += int64_t(s.boxes.size());
    if (!s.boxes.empty()) per_patient[s.boxes.size()]++;
    EXPECT_EQ(s.labels[0] == 1.0f, !s.boxes.empty());
  }
  EXPECT_EQ(positive, 6012);
  EXPECT_EQ(boxes, 9555);
  EXPECT_EQ(per_patient[1], 2614);
  EXPECT_EQ(per_patient[2], 3266);
  EXPECT_EQ(per_patient[3], 119);
  EXPECT_EQ(per_patient[4], 13);
  EXPECT_EQ(ds.samples[0].id, "0004cfab-14fd-4e49-80ba-63a80b6bddd6");
  EXPECT_EQ(ds.samples[0].image_path,
            "/rsna/stage_2_train_images/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm");
}

TEST(Rsna, MalformedInputs) {
  TempDir d;
  auto bad = d.write("stage_2_train_labels.csv",
                     "patientId,x,y,width,height,Target\np1,,,,,0\np2,1.0,2.0,3.0,4.0,2\n");
  auto m = cxr::test::error_message([&] { read_rsna(d.dir.string()); });
  EXPECT_NE(m.find("stage_2_train_labels.csv:3: column 'Target': bad value '2'"), std::string::npos)
      << m;
  d.write("stage_2_train_labels.csv", "patientId,x,y,width,height,Target\np2,1.0,abc,3.0,4.0,1\n");
  m = cxr::test::error_message([&] { read_rsna(d.dir.string()); });
  EXPECT_NE(m.find(":2: column 'y': bad value 'abc'"), std::string::npos) << m;
  d.write("stage_2_train_labels.csv",
          "patientId,x,y,width,height,Target\np2,1.0,2.0,3.0,4.0,1\np2,5,6,7,8,1\n");
  RsnaOptions check;
  check.check_images = true;
  m = cxr::test::error_message([&] { read_rsna(d.dir.string(), check); });
  EXPECT_NE(m.find("patientId p2: image '"), std::string::npos) << m;
  EXPECT_NE(m.find("p2.dcm' not found"), std::string::npos) << m;
  d.write("stage_2_train_images/p2.png", "x");
  Dataset ds = read_rsna(d.dir.string(), check);
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds.samples[0].boxes.size(), 2u);
  EXPECT_FLOAT_EQ(ds.samples[0].boxes[1].height, 8.0f);
  EXPECT_NE(ds.samples[0].image_path.find("p2.png"), std::string::npos);
}

TEST(Siim, FullLabelFileMergesRows) {
  auto csv = shared("siim_acr/siim-pneumothorax-train-rle.csv.gz");
  NEED(csv);
  Dataset ds = read_siim("", {}, csv);
  ASSERT_EQ(ds.size(), 12047u);  // README: 12,047 unique images, 2,669 positive
  int64_t pos = 0;
  for (auto& s : ds.samples) pos += s.labels[0] == 1.0f;
  EXPECT_EQ(pos, 2669);
  // Multi-row images (rle_decode_expectations.json): union pixel counts.
  const auto& a = ds.samples[ds.index_of("1.2.276.0.7230010.3.1.4.8323329.3514.1517875178.176496")];
  EXPECT_EQ(a.mask_rles.size(), 3u);
  EXPECT_EQ(count_ones(a.decode_mask()), 33057);
  const auto& b =
      ds.samples[ds.index_of("1.2.276.0.7230010.3.1.4.8323329.12143.1517875237.684007")];
  EXPECT_EQ(b.mask_rles.size(), 2u);
  EXPECT_EQ(count_ones(b.decode_mask()), 19817);
  auto t = b.mask_tensor();
  EXPECT_EQ(t.sizes(), (cxr::Shape{1, 1024, 1024}));
  SiimOptions po;
  po.positive_only = true;
  EXPECT_EQ(read_siim("", po, csv).size(), 2669u);
}

TEST(Siim, SampleAndSubsetFiles) {
  auto sample = shared("siim_acr/train-rle-sample.csv");
  auto subset = shared("siim_acr/train-rle_subset1500_fin.csv");
  NEED(sample);
  NEED(subset);
  Dataset s = read_siim("/siim", {}, sample);
  ASSERT_EQ(s.size(), 10u);
  const auto& x = s.samples[s.index_of("1.2.276.0.7230010.3.1.4.8323329.4904.1517875185.355709")];
  EXPECT_EQ(count_ones(x.decode_mask()), 9418);
  EXPECT_EQ(x.image_path,
            "/siim/dicom-images-train/1.2.276.0.7230010.3.1.4.8323329.4904.1517875185.355709.dcm");
  Dataset sub = read_siim("", {}, subset);
  int64_t pos = 0;
  for (auto& q : sub.samples) pos += q.labels[0] == 1.0f;
  int64_t rows_pos = 0;
  for (auto& q : sub.samples) rows_pos += int64_t(q.mask_rles.size());
  EXPECT_EQ(rows_pos, 500);  // 500 positive rows, 1000 "-1" rows
  EXPECT_LE(pos, 500);
}

TEST(Siim, MalformedInputsAndImageLookup) {
  TempDir d;
  d.write("train-rle.csv", "ImageId, EncodedPixels\nimg1, -1\nimg2, 1048570 10\n");
  auto m = cxr::test::error_message([&] { read_siim(d.dir.string()); });
  EXPECT_NE(m.find("train-rle.csv:3: ImageId img2:"), std::string::npos) << m;
  EXPECT_NE(m.find("leaves the 1024x1024 image"), std::string::npos) << m;
  d.write("train-rle.csv", "ImageId, EncodedPixels\nimg1, 3 x\n");
  m = cxr::test::error_message([&] { read_siim(d.dir.string()); });
  EXPECT_NE(m.find("bad token 'x'"), std::string::npos) << m;
  d.write("train-rle.csv", "ImageId, EncodedPixels\nimg1, -1\nimg2, 10 5\nimg2, 12 5\n");
  SiimOptions check;
  check.check_images = true;
  m = cxr::test::error_message([&] { read_siim(d.dir.string(), check); });
  EXPECT_NE(m.find("image 'img1.dcm' not found under"), std::string::npos) << m;
  d.write("dicom-images-train/study/series/img1.dcm", "x");
  d.write("dicom-images-train/study/series/img2.dcm", "x");
  Dataset ds = read_siim(d.dir.string(), check);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.samples[1].image_path,
            (d.dir / "dicom-images-train/study/series/img2.dcm").string());
  EXPECT_EQ(count_ones(ds.samples[1].decode_mask()), 7);  // flat 10..14 and 12..16 -> 10..16
}
