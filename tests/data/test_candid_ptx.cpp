// CANDID-PTX reader on hand-written files in the published schema (no real sample is public; see
// ../shared/data/candid_ptx/README.md). Mask pixel counts follow from the RLE definition.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "data/candid_ptx.h"
#include "support/errors.h"
#include "support/files.h"
#include "tensor/error.h"

using namespace cxr::data;

namespace {
using cxr::test::TempDir;
int64_t ones(const std::vector<uint8_t>& m) {
  int64_t n = 0;
  for (auto v : m) n += v;
  return n;
}
const char* kReports =
    "\xEF\xBB\xBFSOPInstanceUID,StudyInstanceUID,filename,EncodedPixels,Report\n"
    "1.2.3.dcm,9.1,P101_a.dcm,0 10,\"Small right apical pneumothorax, unchanged.\"\n"
    "1.2.3.dcm,9.1,P101_a.dcm,5 10,\"Small right apical pneumothorax, unchanged.\"\n"
    "1.2.4.dcm,9.2,P102_b.dcm,-1,No pneumothorax.\n"
    "1.2.5.dcm,9.3,P101_c.dcm,-1,Normal.\n";
}  // namespace

TEST(CandidPtx, ReadsReportsTubesAndFractures) {
  TempDir d;
  d.write("Pneumothorax_reports.csv", kReports);
  d.write("chest_tube.csv",
          "anon_SOPUID,annotation_ref,mask_rle\n1.2.3.dcm,t1,100 4\n1.2.3.dcm,t2,200 3\n");
  d.write("Rib_fracture_mask_rle.csv",
          "anon_SOPUID,annotation_ref,mask_rle\n1.2.4.dcm,r1,-1\n1.2.5.dcm,r2,7 2\n");
  Dataset ds = read_candid_ptx(d.dir.string());
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds.label_names,
            (std::vector<std::string>{"Pneumothorax", "Chest Tube", "Rib Fracture"}));
  const Sample& a = ds.samples[ds.index_of("1.2.3.dcm")];
  EXPECT_EQ(a.patient_id, "P101");
  EXPECT_EQ(a.labels, (std::vector<float>{1, 1, 0}));
  EXPECT_EQ(a.mask_rles.size(), 2u);
  // Rows decode separately: "0 10" = flat 0..9, "5 10" = flat 5..14; union = 0..14.
  EXPECT_EQ(ones(a.decode_mask()), 15);
  EXPECT_EQ(ones(a.decode_extra_mask("chest_tube")), 7);
  EXPECT_EQ(a.report, "Small right apical pneumothorax, unchanged.");
  EXPECT_EQ(a.image_path, (d.dir / "dataset" / "1.2.3.dcm").string());
  const Sample& b = ds.samples[ds.index_of("1.2.4.dcm")];
  EXPECT_EQ(b.labels, (std::vector<float>{0, 0, 0}));  // "-1" fracture row = negative
  EXPECT_TRUE(b.has_mask_annotation);
  const Sample& c = ds.samples[ds.index_of("1.2.5.dcm")];
  EXPECT_EQ(c.labels, (std::vector<float>{0, 0, 1}));
  EXPECT_EQ(ones(c.decode_extra_mask("rib_fracture")), 2);
  CandidPtxOptions po;
  po.positive_only = true;
  EXPECT_EQ(read_candid_ptx(d.dir.string(), po).size(), 1u);
}

TEST(CandidPtx, MalformedInputs) {
  TempDir d;
  d.write("Pneumothorax_reports.csv",
          "SOPInstanceUID,filename,EncodedPixels,Report\n1.2.3.dcm,P1_x,1048575 5,r\n");
  auto m = cxr::test::error_message([&] { read_candid_ptx(d.dir.string()); });
  EXPECT_NE(m.find("Pneumothorax_reports.csv:2: 1.2.3.dcm:"), std::string::npos) << m;
  EXPECT_NE(m.find("leaves the 1024x1024 image"), std::string::npos) << m;
  d.write("Pneumothorax_reports.csv",
          "SOPInstanceUID,filename,EncodedPixels,Report\n1.2.3.dcm,P1_x,-1,r\n");
  d.write("chest_tube.csv", "anon_SOPUID,annotation_ref,mask_rle\n9.9.9.dcm,t,1 1\n");
  m = cxr::test::error_message([&] { read_candid_ptx(d.dir.string()); });
  EXPECT_NE(m.find("chest_tube.csv:2: chest_tube row for image '9.9.9.dcm' which is not in"),
            std::string::npos)
      << m;
  std::filesystem::remove(d.dir / "chest_tube.csv");
  CandidPtxOptions check;
  check.check_images = true;
  m = cxr::test::error_message([&] { read_candid_ptx(d.dir.string(), check); });
  EXPECT_NE(m.find("SOPInstanceUID 1.2.3.dcm: image '"), std::string::npos) << m;
  EXPECT_NE(m.find("' not found"), std::string::npos) << m;
  d.write("dataset/1.2.3.dcm", "x");
  EXPECT_EQ(read_candid_ptx(d.dir.string(), check).size(), 1u);
  std::filesystem::remove(d.dir / "Pneumothorax_reports.csv");
  m = cxr::test::error_message([&] { read_candid_ptx(d.dir.string()); });
  EXPECT_NE(m.find("Pneumothorax_reports.csv: cannot open"), std::string::npos) << m;
}
