// CSV reader: BOM, quoting, trimming, CRLF, trailing commas, and file:line errors.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/csv.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/error.h"

using namespace cxr::data;

TEST(Csv, BomQuotesCrlfAndTrim) {
  std::string text =
      "\xEF\xBB\xBF"
      "ImageId, EncodedPixels ,Note\r\n"
      "a, 1 2 ,\"x, \"\"y\"\"\"\r\n"
      "\r\n"
      "b,-1,\"multi\nline\"\r\n";
  auto t = parse_csv(text, "mem.csv");
  ASSERT_EQ(t.header.size(), 3u);
  EXPECT_EQ(t.header[0], "ImageId");
  EXPECT_EQ(t.header[1], "EncodedPixels");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.rows[0][1], "1 2");
  EXPECT_EQ(t.rows[0][2], "x, \"y\"");
  EXPECT_EQ(t.rows[1][2], "multi\nline");
  EXPECT_EQ(t.lines[0], 2);
  EXPECT_EQ(t.lines[1], 4);
  EXPECT_EQ(t.column("Note"), 2u);
}

TEST(Csv, TrailingCommaTolerated) {
  auto t = parse_csv("a,b,c\n1,,\n1,2,3,\n", "t.csv");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.rows[0][2], "");
  EXPECT_EQ(t.rows[1][2], "3");
}

TEST(Csv, BadRowNamesFileAndLine) {
  EXPECT_ERROR_CONTAINS(parse_csv("a,b\n1,2\n1,2,3\n", "bad.csv"),
                        "bad.csv:3: expected 2 fields, got 3");
  EXPECT_THROW(parse_csv("a,b\n\"1,2\n", "q.csv"), cxr::Error);
  EXPECT_THROW(parse_csv("", "empty.csv"), cxr::Error);
  EXPECT_ERROR_CONTAINS(parse_csv("a,b\n1,2\n", "m.csv").column("zzz"), "missing column 'zzz'");
}

TEST(Csv, MissingFile) {
  EXPECT_ERROR_CONTAINS(read_csv("/nonexistent/labels.csv"), "/nonexistent/labels.csv");
}

TEST(Csv, RealSiimSampleWithBom) {
  auto path = cxr::test::shared_data_path("siim_acr/train-rle-sample.csv");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared data missing: " << path;
  auto t = read_csv(path);
  ASSERT_EQ(t.header.size(), 2u);
  EXPECT_EQ(t.header[0], "fname");  // the BOM is not part of the name
  EXPECT_EQ(t.header[1], "mask");
  EXPECT_EQ(t.size(), 10u);
  int negatives = 0;
  for (auto& r : t.rows) negatives += r[1] == "-1";
  EXPECT_EQ(negatives, 5);
}
