// Image IO: PNG 8/16-bit gray/RGB(A) with known pixel values (tests/golden/gen_images.py writes
// them with its own PNG encoder), JPEG against DCMTK's reference decode of the SIIM sample, PNG
// writing, and the error messages for bad files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "data/csv.h"
#include "data/image_io.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/creation.h"
#include "tensor/error.h"

using namespace cxr;
using namespace cxr::data;

namespace {
std::string image_fixture(const std::string& name) {
  return std::string(CXR_FIXTURE_DIR) + "/images/" + name;
}
constexpr int W = 5, H = 3;
}  // namespace

TEST(ImageIO, Gray8Png) {
  Tensor t = read_image(image_fixture("gray8.png"));
  ASSERT_EQ(t.sizes(), (Shape{1, H, W}));
  EXPECT_EQ(t.dtype(), kFloat32);
  for (int r = 0; r < H; ++r)
    for (int c = 0; c < W; ++c) EXPECT_FLOAT_EQ(t.at({0, r, c}), float((10 * r + 40 * c) / 255.0));
  Tensor u = read_image_u8(image_fixture("gray8.png"));
  EXPECT_EQ(u.dtype(), kUInt8);
  EXPECT_EQ(u.at({0, 2, 4}), 20 + 160);
  auto info = read_image_info(image_fixture("gray8.png"));
  EXPECT_EQ(info.width, W);
  EXPECT_EQ(info.height, H);
  EXPECT_EQ(info.channels, 1);
  EXPECT_EQ(info.bit_depth, 8);
}

TEST(ImageIO, Gray16PngKeepsPrecision) {
  Tensor t = read_image(image_fixture("gray16.png"));
  ASSERT_EQ(t.sizes(), (Shape{1, H, W}));
  for (int r = 0; r < H; ++r)
    for (int c = 0; c < W; ++c)
      EXPECT_FLOAT_EQ(t.at({0, r, c}), float((1000 * r + 12345 * c + 7) / 65535.0));
  EXPECT_EQ(read_image_info(image_fixture("gray16.png")).bit_depth, 16);
  Tensor u = read_image_u8(image_fixture("gray16.png"));
  EXPECT_EQ(u.at({0, 2, 4}), std::lround((2000 + 4 * 12345 + 7) * 255.0 / 65535.0));
}

TEST(ImageIO, RgbPngModes) {
  for (const char* name : {"rgb8.png", "rgba8.png"}) {
    Tensor rgb = read_image(image_fixture(name), ColorMode::Keep);
    ASSERT_EQ(rgb.sizes(), (Shape{3, H, W})) << name;
    Tensor gray = read_image(image_fixture(name));
    ASSERT_EQ(gray.sizes(), (Shape{1, H, W}));
    for (int r = 0; r < H; ++r)
      for (int c = 0; c < W; ++c) {
        double R = 50 * c, G = 100 * r, B = 255 - 50 * c;
        EXPECT_FLOAT_EQ(rgb.at({0, r, c}), float(R / 255));
        EXPECT_FLOAT_EQ(rgb.at({1, r, c}), float(G / 255));
        EXPECT_FLOAT_EQ(rgb.at({2, r, c}), float(B / 255));
        // ITU-R BT.601 luma.
        EXPECT_NEAR(gray.at({0, r, c}), (0.299 * R + 0.587 * G + 0.114 * B) / 255, 1e-6);
      }
  }
  Tensor g3 = read_image(image_fixture("gray8.png"), ColorMode::RGB);
  ASSERT_EQ(g3.sizes(), (Shape{3, H, W}));
  EXPECT_FLOAT_EQ(g3.at({2, 1, 1}), float(50 / 255.0));
}

TEST(ImageIO, BadFilesNameFileAndReason) {
  auto m = cxr::test::error_message([] { read_image(image_fixture("truncated.png")); });
  EXPECT_NE(m.find("truncated.png"), std::string::npos) << m;
  EXPECT_NE(m.find("truncated"), std::string::npos) << m;
  m = cxr::test::error_message([] { read_image(image_fixture("not_an_image.png")); });
  EXPECT_NE(m.find("not_an_image.png: unsupported image format"), std::string::npos) << m;
  m = cxr::test::error_message([] { read_image("/nonexistent/x.png"); });
  EXPECT_NE(m.find("/nonexistent/x.png: cannot open"), std::string::npos) << m;
}

TEST(ImageIO, WritePngRoundTripAndAtomic) {
  auto dir =
      std::filesystem::temp_directory_path() / ("cxr_image_io_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::vector<float> v(2 * 3 * 4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i) / 23.0f;
  v[0] = -0.5f;  // clamped to 0
  v[1] = 2.0f;   // clamped to 1
  Tensor img = raw::from_vector(v, {1, 6, 4});
  auto p = (dir / "out.png").string();
  write_png(p, img);
  Tensor back = read_image_u8(p);
  ASSERT_EQ(back.sizes(), (Shape{1, 6, 4}));
  EXPECT_EQ(back.at({0, 0, 0}), 0);
  EXPECT_EQ(back.at({0, 0, 1}), 255);
  for (int i = 2; i < 24; ++i)
    EXPECT_EQ(back.at({0, i / 4, i % 4}), std::lround(i / 23.0 * 255.0)) << i;
  // Only the final file remains (no temporaries).
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  // RGB uint8 round trip.
  Tensor rgb = raw::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255},
                                {3, 2, 2});
  Tensor rgb8 = raw::to(rgb, kUInt8);
  write_png(p, rgb8);
  Tensor rb = read_image_u8(p, ColorMode::Keep);
  ASSERT_EQ(rb.sizes(), (Shape{3, 2, 2}));
  EXPECT_EQ(rb.to_vector<int64_t>(), rgb8.to_vector<int64_t>());
  EXPECT_THROW(write_png(p, raw::zeros({2, 2, 2})), cxr::Error);
  EXPECT_THROW(write_png((dir / "no_such_dir" / "x.png").string(), img), cxr::Error);
  std::filesystem::remove_all(dir);
}

// The SIIM DICOM's pixel data is one baseline-JPEG fragment; decode it with stb and compare with
// DCMTK's decode (derived/…decoded.pgm; Pillow/libjpeg-turbo agree with it exactly). stb uses a
// different integer IDCT, so values may differ by a few levels.
TEST(ImageIO, JpegAgainstReferenceDecode) {
  auto dcm = cxr::test::shared_data_path(
      "siim_acr/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm");
  auto pgm = cxr::test::shared_data_path(
      "siim_acr/derived/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.decoded.pgm");
  if (!std::filesystem::exists(dcm) || !std::filesystem::exists(pgm))
    GTEST_SKIP() << "shared data missing: " << dcm;
  std::string bytes = read_text_file(dcm);
  size_t soi = bytes.find("\xFF\xD8\xFF");
  ASSERT_NE(soi, std::string::npos);
  size_t eoi = bytes.rfind("\xFF\xD9");
  ASSERT_NE(eoi, std::string::npos);
  std::string jpeg = bytes.substr(soi, eoi + 2 - soi);
  Tensor t = decode_image(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size(), "siim.jpg");
  ASSERT_EQ(t.sizes(), (Shape{1, 1024, 1024}));
  std::string ref = read_text_file(pgm);
  ASSERT_EQ(ref.size(), 1048593u);
  const uint8_t* rp = reinterpret_cast<const uint8_t*>(ref.data()) + (ref.size() - 1048576);
  const float* tp = t.data<float>();
  double sum_abs = 0;
  int max_abs = 0;
  for (int64_t i = 0; i < 1048576; ++i) {
    int d = std::abs(int(std::lround(tp[i] * 255.0)) - int(rp[i]));
    sum_abs += d;
    max_abs = std::max(max_abs, d);
  }
  EXPECT_LT(sum_abs / 1048576.0, 0.5);
  EXPECT_LE(max_abs, 8);
  // README: (512,512)=208, (100,900)=195, (0,0)=0.
  EXPECT_NEAR(tp[512 * 1024 + 512] * 255.0, 208, 3);
  EXPECT_NEAR(tp[100 * 1024 + 900] * 255.0, 195, 3);
  EXPECT_NEAR(tp[0] * 255.0, 0, 3);
}

TEST(ImageIO, RealCheXpertJpeg) {
  auto path = cxr::test::shared_data_path("chexpert/view1_frontal_gaetandi_320x320.jpg");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared data missing: " << path;
  auto info = read_image_info(path);
  EXPECT_EQ(info.width, 320);
  EXPECT_EQ(info.height, 320);
  EXPECT_EQ(info.channels, 1);
  Tensor t = read_image(path);
  EXPECT_EQ(t.sizes(), (Shape{1, 320, 320}));
}

TEST(ImageIO, TruncatedJpegNamesFile) {
  auto path = cxr::test::shared_data_path("chexpert/view1_frontal_gaetandi_320x320.jpg");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared data missing: " << path;
  std::string bytes = read_text_file(path);
  auto cut =
      std::filesystem::temp_directory_path() / ("cxr_cut_" + std::to_string(::getpid()) + ".jpg");
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  auto m = cxr::test::error_message([&] { read_image(cut.string()); });
  std::filesystem::remove(cut);
  EXPECT_NE(m.find(cut.string() + ": truncated JPEG"), std::string::npos) << m;
}
