// The report figures (experiments/plot.h) and their raster canvas (experiments/raster.h): nice
// ticks from the 1-2-5 rule (expected values worked out by hand in the comments), the SVG's
// structure (tag balance, one path per series, one marker per finite point, XML escaping, the
// data -> pixel mapping of the shared layout), the PNG's pixels at the places the layout maps
// points and error bars to, text boxes, and the errors on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "data/image_io.h"
#include "experiments/plot.h"
#include "experiments/raster.h"
#include "support/errors.h"
#include "support/files.h"

namespace cxr::experiments {
namespace {

constexpr Rgb kWhite{255, 255, 255};

// --- nice_ticks -------------------------------------------------------------------------------

TEST(NiceTicks, UnitRangeStepsByTwoTenths) {
  // step 0.1 would need 11 ticks > 6; step 0.2 needs 0, 0.2, ..., 1.0 = 6.
  const std::vector<double> t = nice_ticks(0.0, 1.0);
  const std::vector<double> want = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0};
  ASSERT_EQ(t.size(), want.size());
  for (size_t i = 0; i < t.size(); ++i) EXPECT_DOUBLE_EQ(t[i], want[i]) << i;
}

TEST(NiceTicks, NarrowRangeStepsByTwoHundredths) {
  // step 0.01: 0.63..0.71 = 9 ticks > 6; step 0.02: floor(31.5) = 31 -> 0.62, ceil(35.5) = 36 ->
  // 0.72, 6 ticks.
  const std::vector<double> t = nice_ticks(0.63, 0.71);
  const std::vector<double> want = {0.62, 0.64, 0.66, 0.68, 0.70, 0.72};
  ASSERT_EQ(t.size(), want.size());
  for (size_t i = 0; i < t.size(); ++i) EXPECT_DOUBLE_EQ(t[i], want[i]) << i;
}

TEST(NiceTicks, ExactMultiplesAddNoExtraTick) {
  // 0.6 / 0.2 is 2.9999999999999996 in doubles; the ticks must still start at 0.6, not 0.4.
  // Step 0.1 covers 0.6..1.2 with 7 ticks > 6, so step 0.2: 0.6, 0.8, 1.0, 1.2.
  const std::vector<double> t = nice_ticks(0.6, 1.2);
  const std::vector<double> want = {0.6, 0.8, 1.0, 1.2};
  ASSERT_EQ(t.size(), want.size());
  for (size_t i = 0; i < t.size(); ++i) EXPECT_DOUBLE_EQ(t[i], want[i]) << i;
}

TEST(NiceTicks, LargeRangeAndMaxTicks) {
  // 0..37 with at most 5 ticks: step 5 needs 0..40 = 9, step 10 needs 0..40 = 5.
  const std::vector<double> t = nice_ticks(0.0, 37.0, 5);
  const std::vector<double> want = {0, 10, 20, 30, 40};
  ASSERT_EQ(t.size(), want.size());
  for (size_t i = 0; i < t.size(); ++i) EXPECT_DOUBLE_EQ(t[i], want[i]) << i;
  // Negative ranges: -0.3..0.1 with step 0.1 = 5 ticks.
  const std::vector<double> n = nice_ticks(-0.3, 0.1);
  const std::vector<double> want_n = {-0.3, -0.2, -0.1, 0.0, 0.1};
  ASSERT_EQ(n.size(), want_n.size());
  for (size_t i = 0; i < n.size(); ++i) EXPECT_NEAR(n[i], want_n[i], 1e-15) << i;
}

TEST(NiceTicks, DegenerateRangeIsWidened) {
  // 0.5 widens to 0.45..0.55 (half of 0.1 each side): step 0.02 needs 0.44..0.56 = 7 ticks,
  // step 0.05 needs 0.45, 0.5, 0.55.
  const std::vector<double> t = nice_ticks(0.5, 0.5);
  const std::vector<double> want = {0.45, 0.5, 0.55};
  ASSERT_EQ(t.size(), want.size());
  for (size_t i = 0; i < t.size(); ++i) EXPECT_DOUBLE_EQ(t[i], want[i]) << i;
  // 0 widens to -0.5..0.5: -0.5, 0, 0.5.
  const std::vector<double> z = nice_ticks(0.0, 0.0);
  ASSERT_EQ(z.size(), 3u);
  EXPECT_DOUBLE_EQ(z[0], -0.5);
  EXPECT_DOUBLE_EQ(z[1], 0.0);
  EXPECT_DOUBLE_EQ(z[2], 0.5);
}

TEST(NiceTicks, BadInput) {
  EXPECT_ERROR_CONTAINS(nice_ticks(1.0, 0.0), "nice_ticks");
  EXPECT_ERROR_CONTAINS(nice_ticks(0.0, NAN), "nice_ticks");
  EXPECT_ERROR_CONTAINS(nice_ticks(0.0, 1.0, 1), "max_ticks");
}

// --- the plots under test ---------------------------------------------------------------------

LinePlot study_plot() {
  LinePlot p;
  p.title = "Pneumothorax <F1> & Dice";
  p.x_label = "Synthetic multiplier";
  p.y_label = "F1";
  p.categories = {"0", "2x", "5x", "10x", "25x"};
  p.series = {{"1% real", {0.40, 0.55, NAN, 0.55, 0.70}, {0.02, 0.03, NAN, 0.01, 0.05}},
              {"10% real", {0.60, 0.62, 0.64, 0.66, 0.65}, {0.01, 0.01, 0.01, 0.01, 0.01}},
              {"100% real", {0.75, 0.76, 0.77, 0.77, 0.78}, {0.0, 0.01, 0.01, 0.01, 0.02}}};
  return p;
}

// One series with wide error bars, so the bars' ends lie well outside the markers.
LinePlot single_series_plot() {
  LinePlot p;
  p.title = "one";
  p.categories = {"0", "2x", "5x"};
  p.series = {{"s", {0.2, 0.5, 0.8}, {0.1, 0.1, 0.1}}};
  return p;
}

Rgb pixel(const Tensor& img, int x, int y) {
  const int64_t h = img.size(1), w = img.size(2);
  const uint8_t* p = img.data<uint8_t>();
  const auto at = [&](int64_t c) { return p[c * h * w + int64_t(y) * w + x]; };
  return {at(0), at(1), at(2)};
}

int px(double v) {
  return int(std::floor(v));
}

// --- layout -----------------------------------------------------------------------------------

TEST(PlotLayout, MapsCategoriesEvenlyAndValuesLinearly) {
  const LinePlot p = study_plot();
  const PlotLayout L = plot_layout(p);
  // Data range 0.38..0.80 (0.40 - 0.02, 0.78 + 0.02) padded by 5% of 0.42 each side:
  // 0.359..0.821; step 0.1 covers 0.3..0.9 with 7 ticks > 6, step 0.2 covers 0.2..1.0 with 5.
  ASSERT_EQ(L.y_ticks.size(), 5u);
  EXPECT_DOUBLE_EQ(L.y_lo, 0.2);
  EXPECT_DOUBLE_EQ(L.y_hi, 1.0);
  EXPECT_EQ(L.y_tick_labels.front(), "0.2");
  EXPECT_EQ(L.y_tick_labels.back(), "1.0");
  EXPECT_GT(L.left, 0);
  EXPECT_LT(L.right, p.width);
  EXPECT_GT(L.top, 0);
  EXPECT_LT(L.bottom, p.height);
  // Slot centres: equal spacing (right - left) / 5, half a slot in from each edge.
  const double slot = (L.right - L.left) / 5;
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(L.x_at(i), L.left + (i + 0.5) * slot, 1e-9) << i;
  EXPECT_DOUBLE_EQ(L.y_at(L.y_lo), L.bottom);
  EXPECT_DOUBLE_EQ(L.y_at(L.y_hi), L.top);
  EXPECT_NEAR(L.y_at(0.6), (L.top + L.bottom) / 2, 1e-9);
}

TEST(PlotLayout, FixedRangeKeepsItAndTicksInside) {
  LinePlot p = study_plot();
  p.y_min = 0.35;
  p.y_max = 0.85;
  const PlotLayout L = plot_layout(p);
  EXPECT_DOUBLE_EQ(L.y_lo, 0.35);
  EXPECT_DOUBLE_EQ(L.y_hi, 0.85);
  // Covering 0.35..0.85: step 0.1 needs 0.3..0.9 = 7 ticks > 6, step 0.2 needs 0.2..1.0; the
  // ticks inside [0.35, 0.85] are 0.4, 0.6, 0.8.
  ASSERT_EQ(L.y_ticks.size(), 3u);
  EXPECT_DOUBLE_EQ(L.y_ticks[0], 0.4);
  EXPECT_DOUBLE_EQ(L.y_ticks[2], 0.8);
  // Data far outside a fixed range is drawn where it maps (off the canvas), without hanging.
  p.y_min = 0;
  p.y_max = 1e-12;
  const PlotLayout far = plot_layout(p);
  EXPECT_LT(far.y_at(0.4), -1e9);
  const Tensor img = render_png_pixels(p);
  EXPECT_EQ(pixel(img, 0, 0), kWhite);
}

// --- SVG --------------------------------------------------------------------------------------

// Every element opened is closed in order (self-closing tags count as both) and every '<' starts a
// tag; returns "" or what went wrong. (Hand-written: std::regex trips GCC 12's
// -Wmaybe-uninitialized at -O1, the sanitizer preset's level.)
std::string tag_balance_error(const std::string& svg) {
  std::vector<std::string> stack;
  for (size_t open = svg.find('<'); open != std::string::npos; open = svg.find('<', open + 1)) {
    const size_t close = svg.find('>', open);
    if (close == std::string::npos) return "unterminated tag";
    const std::string tag = svg.substr(open + 1, close - open - 1);
    if (tag.find('<') != std::string::npos) return "'<' inside a tag";
    const bool closing = !tag.empty() && tag[0] == '/';
    const bool self_closing = !tag.empty() && tag.back() == '/';
    const size_t start = closing ? 1 : 0;
    const std::string name = tag.substr(start, tag.find_first_of(" /", start) - start);
    if (name.empty()) return "a tag without a name";
    if (closing) {
      if (stack.empty() || stack.back() != name) return "unbalanced </" + name + ">";
      stack.pop_back();
    } else if (!self_closing) {
      stack.push_back(name);
    }
  }
  return stack.empty() ? "" : "unclosed <" + stack.back() + ">";
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

struct Circle {
  double cx, cy;
};
std::vector<Circle> circles(const std::string& svg) {
  std::vector<Circle> out;
  const std::string cx = "<circle cx=\"", cy = "\" cy=\"";
  for (size_t pos = svg.find(cx); pos != std::string::npos; pos = svg.find(cx, pos + 1)) {
    const size_t y_at = svg.find(cy, pos);
    out.push_back(
        {std::stod(svg.substr(pos + cx.size())), std::stod(svg.substr(y_at + cy.size()))});
  }
  return out;
}

TEST(RenderSvg, IsAStandaloneWellFormedDocument) {
  const std::string svg = render_svg(study_plot());
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("viewBox=\"0 0 640 420\""), std::string::npos);
  EXPECT_EQ(tag_balance_error(svg), "");
  EXPECT_EQ(svg.find("<style"), std::string::npos);
  EXPECT_EQ(svg.find("@import"), std::string::npos);
  EXPECT_EQ(svg.find("href"), std::string::npos);
  // The balance checker itself catches a missing close.
  EXPECT_NE(tag_balance_error("<svg><text>a</svg>"), "");
  EXPECT_NE(tag_balance_error("<svg><text>a<b</text></svg>"), "");
}

TEST(RenderSvg, EscapesText) {
  const std::string svg = render_svg(study_plot());
  EXPECT_NE(svg.find("Pneumothorax &lt;F1&gt; &amp; Dice"), std::string::npos);
  EXPECT_EQ(svg.find("<F1>"), std::string::npos);
  EXPECT_EQ(svg.find("& Dice"), std::string::npos);
}

TEST(RenderSvg, OnePathPerSeriesAndOneMarkerPerFinitePoint) {
  const LinePlot p = study_plot();
  const std::string svg = render_svg(p);
  EXPECT_EQ(count(svg, "<path "), 3u);
  // 4 + 5 + 5 finite points, plus one legend marker per series.
  EXPECT_EQ(count(svg, "<circle "), 14u + 3u);
  // The NaN point splits the first series into two subpaths.
  const size_t first_path = svg.find("<path ");
  const std::string d = svg.substr(first_path, svg.find("/>", first_path) - first_path);
  EXPECT_EQ(count(d, "M"), 2u);
  // Series colours are the Okabe-Ito blue, vermillion and bluish green.
  EXPECT_NE(svg.find("stroke=\"#0072B2\""), std::string::npos);
  EXPECT_NE(svg.find("stroke=\"#D55E00\""), std::string::npos);
  EXPECT_NE(svg.find("stroke=\"#009E73\""), std::string::npos);
}

TEST(RenderSvg, MarkersSitWhereTheLayoutMapsThePoints) {
  const LinePlot p = study_plot();
  const PlotLayout L = plot_layout(p);
  const std::vector<Circle> all = circles(render_svg(p));
  std::vector<Circle> data;  // the legend's markers lie right of the plot area
  for (const Circle& c : all)
    if (c.cx <= L.right) data.push_back(c);
  ASSERT_EQ(data.size(), 14u);
  // Series 1 in order, its NaN (category 2) skipped: categories 0, 1, 3, 4.
  const std::vector<size_t> cats = {0, 1, 3, 4};
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_NEAR(data[k].cx, L.x_at(cats[k]), 0.006) << k;
    EXPECT_NEAR(data[k].cy, L.y_at(p.series[0].y[cats[k]]), 0.006) << k;
  }
  // 0.40 < 0.55 = 0.55 < 0.70: pixel rows strictly decrease, equal values share a row.
  EXPECT_GT(data[0].cy, data[1].cy);
  EXPECT_EQ(data[1].cy, data[2].cy);
  EXPECT_GT(data[2].cy, data[3].cy);
  // Evenly spaced categories: 0 -> 1 is one slot, 1 -> 3 two slots.
  EXPECT_NEAR(data[2].cx - data[1].cx, 2 * (data[1].cx - data[0].cx), 0.02);
  // Series 3 (100% real) has 0.77 twice, at categories 2 and 3.
  EXPECT_EQ(data[4 + 5 + 2].cy, data[4 + 5 + 3].cy);
}

// --- PNG --------------------------------------------------------------------------------------

TEST(RenderPng, SizeBackgroundAndMarkersAtTheLayoutsPoints) {
  const LinePlot p = study_plot();
  const PlotLayout L = plot_layout(p);
  const Tensor img = render_png_pixels(p);
  EXPECT_EQ(img.dtype(), kUInt8);
  ASSERT_EQ(img.sizes(), (Shape{3, 420, 640}));
  EXPECT_EQ(pixel(img, 0, 0), kWhite);
  EXPECT_EQ(pixel(img, 639, 419), kWhite);
  for (size_t k = 0; k < p.series.size(); ++k)
    for (size_t i = 0; i < p.categories.size(); ++i) {
      if (std::isnan(p.series[k].y[i])) continue;
      EXPECT_EQ(pixel(img, px(L.x_at(i)), px(L.y_at(p.series[k].y[i]))), series_color(k))
          << "series " << k << " category " << i;
    }
  // The missing point (series 0, category 2) has neither a marker nor a line through it: nothing
  // of series 0's colour in the 9x9 square where its marker would sit.
  bool found = false;
  const int cx = px(L.x_at(2)), cy = px(L.y_at(0.55));
  for (int y = cy - 4; y <= cy + 4; ++y)
    for (int x = cx - 4; x <= cx + 4; ++x) found |= pixel(img, x, y) == series_color(0);
  EXPECT_FALSE(found);
}

TEST(RenderPng, ErrorBarsSpanTheirError) {
  const LinePlot p = single_series_plot();
  const PlotLayout L = plot_layout(p);
  const Tensor img = render_png_pixels(p);
  const Rgb c = series_color(0);
  // Data 0.1..0.9 padded by 5% of 0.8: 0.06..0.94, covered by 0, 0.2, ..., 1.0.
  ASSERT_DOUBLE_EQ(L.y_lo, 0.0);
  ASSERT_DOUBLE_EQ(L.y_hi, 1.0);
  for (size_t i = 0; i < 3; ++i) {
    const double y = p.series[0].y[i], e = p.series[0].err[i];
    const int x = px(L.x_at(i)), top = px(L.y_at(y + e)), bottom = px(L.y_at(y - e));
    // 0.1 of a 0.0..1.0 range is a tenth of the plot area's height.
    EXPECT_NEAR(bottom - top, 0.2 * (L.bottom - L.top), 1.0);
    for (int row = top; row <= bottom; ++row) EXPECT_EQ(pixel(img, x, row), c) << i << " " << row;
    // Bars and caps are 2 pixels thick (rows top-1..top and bottom-1..bottom): beyond, no colour.
    EXPECT_NE(pixel(img, x, top - 2), c) << i;
    EXPECT_NE(pixel(img, x, bottom + 1), c) << i;
    // The caps reach 5 pixels left and right of the bar.
    EXPECT_EQ(pixel(img, x - 5, top), c) << i;
    EXPECT_EQ(pixel(img, x + 5, bottom), c) << i;
    EXPECT_NE(pixel(img, x + 8, bottom), c) << i;
  }
}

TEST(RenderPng, SvgAndPngUseTheSameColours) {
  const LinePlot p = study_plot();
  const std::string svg = render_svg(p);
  for (size_t k = 0; k < 3; ++k) {
    const Rgb c = series_color(k);
    char hex[8];
    std::snprintf(hex, sizeof hex, "#%02X%02X%02X", c.r, c.g, c.b);
    EXPECT_NE(svg.find(std::string("fill=\"") + hex + "\""), std::string::npos) << k;
  }
  // Okabe-Ito blue (0, 114, 178) and vermillion (213, 94, 0).
  EXPECT_EQ(series_color(0), (Rgb{0, 114, 178}));
  EXPECT_EQ(series_color(1), (Rgb{213, 94, 0}));
  EXPECT_EQ(series_color(8), series_color(0));
}

TEST(RenderPng, WritesTheSamePixelsToAFile) {
  const LinePlot p = single_series_plot();
  test::TempDir tmp;
  const std::string path = (tmp.dir / "figure.png").string();
  write_plot_png(path, p);
  const Tensor back = data::read_image_u8(path, data::ColorMode::RGB);
  ASSERT_EQ(back.sizes(), (Shape{3, 420, 640}));
  EXPECT_EQ(back.to_vector<int>(), render_png_pixels(p).to_vector<int>());
}

// --- canvas -----------------------------------------------------------------------------------

// Counts the non-background pixels inside and outside the box [x0, x0+w) x [y0, y0+h).
std::pair<int, int> ink_in_and_out(const Canvas& c, int x0, int y0, int w, int h, Rgb bg) {
  int in = 0, out = 0;
  for (int y = 0; y < c.height(); ++y)
    for (int x = 0; x < c.width(); ++x) {
      if (c.pixel(x, y) == bg) continue;
      (x >= x0 && x < x0 + w && y >= y0 && y < y0 + h ? in : out) += 1;
    }
  return {in, out};
}

TEST(Canvas, TextStaysInsideItsBox) {
  const Rgb bg{10, 20, 30}, ink{200, 100, 0};
  // "Hg": 2 glyphs -> (6 * 2 - 1) * 3 = 33 pixels wide, 7 * 3 = 21 tall.
  EXPECT_EQ(Canvas::text_width("Hg", 3), 33);
  EXPECT_EQ(Canvas::text_height(3), 21);
  for (Align a : {Align::Left, Align::Center, Align::Right}) {
    Canvas c(100, 60, bg);
    c.text(50, 20, "Hg", ink, 3, a);
    const int x0 = a == Align::Left ? 50 : a == Align::Center ? 50 - 33 / 2 : 50 - 33;
    const auto [in, out] = ink_in_and_out(c, x0, 20, 33, 21, bg);
    EXPECT_GT(in, 0);
    EXPECT_EQ(out, 0);
    // 'H' fills its first column (rows 0..6) and 'g' its last one at rows 2..4.
    EXPECT_EQ(c.pixel(x0, 20), ink);
    EXPECT_EQ(c.pixel(x0 + 32, 20 + 3 * 3), ink);
  }
  // Rotated: 21 wide (left edge at x), 33 tall, ending at y for Align::Left (reads upwards).
  Canvas v(100, 60, bg);
  v.text(10, 50, "Hg", ink, 3, Align::Left, true);
  const auto [in, out] = ink_in_and_out(v, 10, 50 - 33, 21, 33, bg);
  EXPECT_GT(in, 0);
  EXPECT_EQ(out, 0);
  // 'H''s left column (the first glyph's) becomes the bottom row of the rotated box.
  EXPECT_EQ(v.pixel(10, 49), ink);
  EXPECT_EQ(v.pixel(10 + 20, 49), ink);
}

TEST(Canvas, UnknownCharactersAreOneBoxPerCodePoint) {
  // "Δ" is two UTF-8 bytes but one glyph; it draws the 5x7 outline.
  EXPECT_EQ(Canvas::text_width("\xCE\x94", 1), 5);
  EXPECT_EQ(Canvas::text_width("a\xC2\xB1"
                               "b",
                               1),
            17);
  Canvas c(10, 10, kWhite);
  c.text(1, 1, "\xCE\x94", Rgb{0, 0, 0});
  EXPECT_EQ(c.pixel(1, 1), (Rgb{0, 0, 0}));
  EXPECT_EQ(c.pixel(5, 7), (Rgb{0, 0, 0}));
  EXPECT_EQ(c.pixel(3, 4), kWhite);  // hollow
}

TEST(Canvas, LinesRectsAndCircles) {
  const Rgb bg{0, 0, 0}, ink{255, 0, 0};
  Canvas c(20, 20, bg);
  c.line(2, 10, 17, 10, ink, 2);  // rows 9 and 10, columns 1..17
  for (int x = 1; x <= 17; ++x) {
    EXPECT_EQ(c.pixel(x, 9), ink) << x;
    EXPECT_EQ(c.pixel(x, 10), ink) << x;
  }
  EXPECT_EQ(c.pixel(5, 8), bg);
  EXPECT_EQ(c.pixel(5, 11), bg);
  EXPECT_EQ(c.pixel(18, 10), bg);
  // A line towards a far-off point is clipped: it still covers the canvas part, at the same slope
  // (y = x / 2 through (0, 0) and (1e12, 5e11): pixel (10, 5)).
  Canvas f(20, 20, bg);
  f.line(0, 0, 1e12, 5e11, ink, 1);
  EXPECT_EQ(f.pixel(10, 5), ink);
  EXPECT_EQ(f.pixel(19, 9), ink);
  EXPECT_EQ(f.pixel(10, 8), bg);
  // A diagonal passes through every pixel (i, i).
  Canvas d(20, 20, bg);
  d.line(0, 0, 19, 19, ink, 1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(d.pixel(i, i), ink) << i;
  EXPECT_EQ(d.pixel(5, 6), bg);
  // Circle of radius 3 at (10, 10): pixel centres within 3 -> (10.5 - 10)^2 + (12.5 - 10)^2 <= 9,
  // (10.5 - 10)^2 + (13.5 - 10)^2 > 9.
  Canvas e(20, 20, bg);
  e.fill_circle(10, 10, 3, ink);
  EXPECT_EQ(e.pixel(10, 12), ink);
  EXPECT_EQ(e.pixel(10, 13), bg);
  EXPECT_EQ(e.pixel(7, 7), bg);    // corner: (2.5^2 + 2.5^2) > 9
  e.fill_rect(-5, -5, 7, 8, ink);  // clipped to [0, 2) x [0, 3)
  EXPECT_EQ(e.pixel(1, 2), ink);
  EXPECT_EQ(e.pixel(2, 2), bg);
  EXPECT_EQ(e.pixel(1, 3), bg);
  const Tensor t = e.to_tensor();
  ASSERT_EQ(t.sizes(), (Shape{3, 20, 20}));
  EXPECT_EQ(pixel(t, 10, 12), ink);
}

// --- errors -----------------------------------------------------------------------------------

TEST(LinePlot, BadInputNamesTheProblem) {
  LinePlot p = study_plot();
  p.categories.clear();
  EXPECT_ERROR_CONTAINS(render_svg(p), "no categories");
  p = study_plot();
  p.series[1].y.pop_back();
  EXPECT_ERROR_CONTAINS(render_svg(p), "series '10% real' has 4 y and 5 err");
  p = study_plot();
  p.series[2].err[1] = -0.1;
  EXPECT_ERROR_CONTAINS(render_png_pixels(p), "series '100% real' has err = -0.1");
  p = study_plot();
  p.series[2].err[1] = NAN;
  EXPECT_ERROR_CONTAINS(render_png_pixels(p), "series '100% real' has err = nan");
  p = study_plot();
  p.series[0].y[0] = INFINITY;
  EXPECT_ERROR_CONTAINS(plot_layout(p), "series '1% real' has y = inf");
  p = study_plot();
  p.y_min = 0.8;
  p.y_max = 0.2;
  EXPECT_ERROR_CONTAINS(plot_layout(p), "y_min < y_max");
  p = study_plot();
  p.y_min = 0.2;  // y_max left NaN
  EXPECT_ERROR_CONTAINS(plot_layout(p), "y range");
  p = study_plot();
  p.width = 120;
  EXPECT_ERROR_CONTAINS(plot_layout(p), "plot area");
}

}  // namespace
}  // namespace cxr::experiments
