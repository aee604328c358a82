// DICOM reading against the reference values in ../shared/data/README.md: the SIIM JPEG-baseline
// file vs DCMTK's dcmj2pnm decode (derived/…decoded.pgm), the uncompressed MONOCHROME1 10-bit CR
// (raw ACR-NEMA and Part-10 explicit LE), the MONOCHROME1-edited SIIM file, and JPEG 2000 as the
// unsupported transfer syntax.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "data/csv.h"
#include "data/dicom.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/error.h"

using namespace cxr;
using namespace cxr::data;

namespace {
std::string shared(const std::string& rel) {
  return cxr::test::shared_data_path(rel);
}
#define NEED(path) \
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared data missing: " << path
#define NEED_DCMTK() \
  if (!dicom_supported()) GTEST_SKIP() << "built without DCMTK"
const char* kSiim = "siim_acr/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm";
const char* kSiimPgm =
    "siim_acr/derived/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.decoded.pgm";
}  // namespace

TEST(Dicom, WithoutDcmtkTheErrorSaysHowToEnable) {
  if (dicom_supported()) GTEST_SKIP() << "built with DCMTK";
  auto m = cxr::test::error_message([] { read_dicom("x.dcm"); });
  EXPECT_NE(m.find("libdcmtk-dev"), std::string::npos) << m;
  EXPECT_NE(m.find("x.dcm"), std::string::npos) << m;
}

TEST(Dicom, SiimJpegBaselineMatchesReferenceDecode) {
  NEED_DCMTK();
  auto dcm = shared(kSiim), pgm = shared(kSiimPgm);
  NEED(dcm);
  NEED(pgm);
  DicomPixels px = read_dicom_pixels(dcm);
  EXPECT_EQ(px.transfer_syntax, "1.2.840.10008.1.2.4.50");
  EXPECT_EQ(px.rows, 1024);
  EXPECT_EQ(px.columns, 1024);
  EXPECT_EQ(px.bits_stored, 8);
  EXPECT_EQ(px.photometric, "MONOCHROME2");
  std::string ref = read_text_file(pgm);
  ASSERT_EQ(ref.size(), 1048593u);
  const uint8_t* rp = reinterpret_cast<const uint8_t*>(ref.data()) + 17;  // "P5\n1024 1024\n255\n"
  int64_t diff = 0, sum = 0;
  for (size_t i = 0; i < 1048576; ++i) {
    diff += px.stored[i] != int32_t(rp[i]);
    sum += px.stored[i];
  }
  EXPECT_EQ(diff, 0);
  EXPECT_NEAR(double(sum) / 1048576.0, 160.398039, 1e-6);  // README pixel stats
  EXPECT_EQ(px.stored[512 * 1024 + 512], 208);
  EXPECT_EQ(px.stored[100 * 1024 + 900], 195);
  EXPECT_EQ(px.stored[0], 0);
  Tensor t = read_dicom(dcm);
  ASSERT_EQ(t.sizes(), (Shape{1, 1024, 1024}));
  EXPECT_FLOAT_EQ(t.at({0, 512, 512}), float(208.0 / 255.0));
}

TEST(Dicom, Monochrome1TenBitUncompressed) {
  NEED_DCMTK();
  for (const char* rel : {"dicom_misc/CR-MONO1-10-chest",
                          "dicom_misc/derived/CR-MONO1-10-chest_part10_explicitLE.dcm"}) {
    auto path = shared(rel);
    NEED(path);
    DicomPixels px = read_dicom_pixels(path);
    EXPECT_EQ(px.rows, 440) << rel;
    EXPECT_EQ(px.columns, 440);
    EXPECT_EQ(px.bits_allocated, 16);
    EXPECT_EQ(px.bits_stored, 10);
    EXPECT_EQ(px.photometric, "MONOCHROME1");
    // README: min 0, max 979, mean 501.8573, (220,220)=285, (100,300)=685.
    int32_t mn = *std::min_element(px.stored.begin(), px.stored.end());
    int32_t mx = *std::max_element(px.stored.begin(), px.stored.end());
    double mean = 0;
    for (auto v : px.stored) mean += v;
    mean /= double(px.stored.size());
    EXPECT_EQ(mn, 0);
    EXPECT_EQ(mx, 979);
    EXPECT_NEAR(mean, 501.8573, 1e-4);
    EXPECT_EQ(px.stored[220 * 440 + 220], 285);
    EXPECT_EQ(px.stored[100 * 440 + 300], 685);
    // Float output: 10 stored bits -> /1023, MONOCHROME1 inverted.
    Tensor t = read_dicom(path);
    EXPECT_NEAR(t.at({0, 220, 220}), 1.0 - 285.0 / 1023.0, 1e-6);
    DicomOptions keep;
    keep.invert_monochrome1 = false;
    keep.range = DicomOptions::Range::MinMax;
    EXPECT_NEAR(read_dicom(path, keep).at({0, 100, 300}), 685.0 / 979.0, 1e-6);
  }
}

TEST(Dicom, Monochrome1JpegIsInverted) {
  NEED_DCMTK();
  auto path = shared("dicom_misc/Fake_MONOHR1.dcm");
  auto pgm = shared(kSiimPgm);
  NEED(path);
  NEED(pgm);
  Tensor t = read_dicom(path);
  std::string ref = read_text_file(pgm);
  const uint8_t* rp = reinterpret_cast<const uint8_t*>(ref.data()) + 17;
  EXPECT_NEAR(t.at({0, 512, 512}), 1.0 - rp[512 * 1024 + 512] / 255.0, 1e-6);
  EXPECT_NEAR(t.at({0, 0, 0}), 1.0, 1e-6);
}

TEST(Dicom, UnsupportedAndBadFiles) {
  NEED_DCMTK();
  auto j2k = shared("dicom_misc/RG1_J2KI.dcm");
  NEED(j2k);
  auto m = cxr::test::error_message([&] { read_dicom(j2k); });
  EXPECT_NE(m.find("RG1_J2KI.dcm"), std::string::npos) << m;
  EXPECT_NE(m.find("1.2.840.10008.1.2.4.91"), std::string::npos) << m;
  m = cxr::test::error_message([] { read_dicom("/nonexistent/a.dcm"); });
  EXPECT_NE(m.find("/nonexistent/a.dcm: cannot open"), std::string::npos) << m;
  auto csv = shared("siim_acr/train-rle-sample.csv");
  m = cxr::test::error_message([&] { read_dicom(csv); });
  EXPECT_NE(m.find("train-rle-sample.csv"), std::string::npos) << m;
  EXPECT_FALSE(m.empty());
  EXPECT_TRUE(looks_like_dicom(shared(kSiim)));
  EXPECT_FALSE(looks_like_dicom(csv));
}

TEST(Dicom, ReadAnyImageDispatches) {
  auto png = cxr::test::shared_data_path("misc_cxr/00000001_000.png");
  NEED(png);
  Tensor t = read_any_image(png);
  EXPECT_EQ(t.sizes(), (Shape{1, 512, 512}));
  if (!dicom_supported()) {
    EXPECT_THROW(read_any_image(shared(kSiim)), cxr::Error);
    return;
  }
  auto dcm = shared(kSiim);
  NEED(dcm);
  EXPECT_EQ(read_any_image(dcm).sizes(), (Shape{1, 1024, 1024}));
}
