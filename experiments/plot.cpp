// Line plots with error bars as SVG and PNG (experiments/plot.h). One function, draw_plot, lays the
// figure out on an abstract Painter; SvgPainter writes elements and CanvasPainter rasterises onto a
// Canvas, so the two outputs share every coordinate.
#include "experiments/plot.h"

#include <algorithm>  // std::max, std::min
#include <array>      // the palette
#include <cmath>      // std::floor, std::ceil, std::log10, std::pow, std::isfinite
#include <cstdio>     // std::snprintf
#include <limits>     // infinity for the data range
#include <sstream>    // std::ostringstream
#include <tuple>      // std::tie
#include <utility>    // std::pair

#include "data/image_io.h"  // data::write_png (atomic)
#include "tensor/error.h"   // CXR_CHECK

namespace cxr::experiments {
namespace {

// Text metrics come from the bitmap font at this scale (7 * 2 = 14 pixels tall, 12 per glyph). The
// SVG's font size keeps its text within those boxes (a sans-serif glyph averages ~0.55 em wide and
// ~0.7 em tall), so it never outgrows the room the layout measured.
constexpr int kTextScale = 2;
constexpr double kSvgFontSize = 15;
constexpr double kPad = 10;       // outer margin
constexpr double kTick = 5;       // tick mark length
constexpr double kGap = 4;        // between a tick and its label
constexpr double kTitleGap = 10;  // below the title, beside the axis titles
constexpr double kLegendSwatch = 24, kLegendTextGap = 6, kLegendGap = 16, kLegendRowGap = 10;
constexpr double kMarkerRadius = 4;
constexpr double kCapHalfWidth = 5;  // error-bar caps
constexpr int kSeriesWidth = 2, kBarWidth = 2, kAxisWidth = 1;
constexpr double kMinArea = 40;  // smallest plot area side, in pixels

constexpr Rgb kWhite{255, 255, 255}, kInk{34, 34, 34}, kGrid{221, 221, 221};

double text_h() {
  return Canvas::text_height(kTextScale);
}
double text_w(const std::string& s) {
  return Canvas::text_width(s, kTextScale);
}

// A 1-2-5 step: mantissa x 10^exponent.
struct Step {
  int mantissa = 1, exponent = 0;
  // k steps, computed as an exact integer over an exact power of ten, so k * 0.02 prints as the
  // decimal it is (3 * 2 / 100 == 0.06).
  double times(int64_t k) const {
    const double m = double(k) * mantissa;
    return exponent >= 0 ? m * std::pow(10.0, exponent) : m / std::pow(10.0, -exponent);
  }
  int decimals() const { return std::max(0, -exponent); }
};

// First and last step multiples covering [lo, hi]; the tolerance keeps a value that is a multiple
// up to rounding (0.6 / 0.2 = 2.9999999999999996) from adding a tick.
std::pair<int64_t, int64_t> covering(double lo, double hi, double step) {
  const double a = lo / step, b = hi / step;
  const double ta = 1e-9 * std::max(1.0, std::abs(a)), tb = 1e-9 * std::max(1.0, std::abs(b));
  return {int64_t(std::floor(a + ta)), int64_t(std::ceil(b - tb))};
}

// The smallest 1-2-5 step that covers [lo, hi] (lo < hi) with at most max_ticks ticks.
Step nice_step(double lo, double hi, int max_ticks) {
  Step s;
  s.exponent = int(std::floor(std::log10((hi - lo) / max_ticks))) - 1;
  for (;; ++s.exponent)
    for (int m : {1, 2, 5}) {
      s.mantissa = m;
      const auto [first, last] = covering(lo, hi, s.times(1));
      if (last - first + 1 <= max_ticks) return s;
    }
}

// lo == hi widened to lo +/- half a power of ten of its magnitude (see plot.h).
std::pair<double, double> widen_degenerate(double lo, double hi) {
  if (lo < hi) return {lo, hi};
  const double mag = lo == 0 ? 1.0 : std::pow(10.0, std::floor(std::log10(std::abs(lo))));
  return {lo - mag / 2, hi + mag / 2};
}

std::string format_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v == 0 ? 0.0 : v);  // no "-0"
  return buf;
}

void validate(const LinePlot& plot) {
  CXR_CHECK(!plot.categories.empty(), "line plot '", plot.title,
            "': no categories (x tick labels) given; expected at least one");
  for (const Series& s : plot.series) {
    CXR_CHECK(s.y.size() == plot.categories.size() && s.err.size() == plot.categories.size(),
              "line plot '", plot.title, "': series '", s.name, "' has ", s.y.size(), " y and ",
              s.err.size(), " err values; expected one per category (", plot.categories.size(),
              ")");
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (std::isnan(s.y[i])) continue;  // a missing point
      CXR_CHECK(std::isfinite(s.y[i]), "line plot '", plot.title, "': series '", s.name,
                "' has y = ", s.y[i], " at category ", i, "; expected a finite value or NaN");
      CXR_CHECK(std::isfinite(s.err[i]) && s.err[i] >= 0, "line plot '", plot.title, "': series '",
                s.name, "' has err = ", s.err[i], " at category ", i,
                "; expected a finite value >= 0");
    }
  }
  const bool auto_range = std::isnan(plot.y_min) && std::isnan(plot.y_max);
  CXR_CHECK(auto_range ||
                (std::isfinite(plot.y_min) && std::isfinite(plot.y_max) && plot.y_min < plot.y_max),
            "line plot '", plot.title, "': y range [", plot.y_min, ", ", plot.y_max,
            "]; expected both NaN (automatic) or finite with y_min < y_max");
}

// The automatic y range: every finite y +/- err, padded by 5% of its span ([0, 1] without data).
std::pair<double, double> data_range(const LinePlot& plot) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const Series& s : plot.series)
    for (size_t i = 0; i < s.y.size(); ++i)
      if (!std::isnan(s.y[i])) {
        lo = std::min(lo, s.y[i] - s.err[i]);
        hi = std::max(hi, s.y[i] + s.err[i]);
      }
  if (lo > hi) return {0.0, 1.0};
  const double pad = 0.05 * (hi - lo);
  return {lo - pad, hi + pad};
}

struct Point {
  double x, y;
};

// What draw_plot needs from an output format. Text is placed like Canvas::text: (x, y) is the top
// edge and the `align` anchor, or for vertical text the left edge and the anchor along it.
class Painter {
 public:
  virtual ~Painter() = default;
  virtual void rect(double x, double y, double w, double h, Rgb fill) = 0;
  virtual void line(Point a, Point b, Rgb color, int width) = 0;
  // One series' line: each run is drawn connected, runs are separate (the gaps of NaN points).
  virtual void path(const std::vector<std::vector<Point>>& runs, Rgb color, int width) = 0;
  virtual void circle(Point c, double radius, Rgb fill) = 0;
  virtual void text(Point anchor, const std::string& s, Align align, bool vertical) = 0;
};

// The whole figure, in drawing order (later on top).
void draw_plot(const LinePlot& plot, const PlotLayout& L, Painter& p) {
  const double th = text_h();
  p.rect(0, 0, L.width, L.height, kWhite);
  // Grid, axes, ticks and their labels.
  for (size_t i = 0; i < L.y_ticks.size(); ++i) {
    const double y = L.y_at(L.y_ticks[i]);
    p.line({L.left, y}, {L.right, y}, kGrid, kAxisWidth);
    p.line({L.left - kTick, y}, {L.left, y}, kInk, kAxisWidth);
    p.text({L.left - kTick - kGap, y - th / 2}, L.y_tick_labels[i], Align::Right, false);
  }
  p.line({L.left, L.top}, {L.left, L.bottom}, kInk, kAxisWidth);
  p.line({L.left, L.bottom}, {L.right, L.bottom}, kInk, kAxisWidth);
  for (size_t i = 0; i < L.categories; ++i) {
    const double x = L.x_at(i);
    p.line({x, L.bottom}, {x, L.bottom + kTick}, kInk, kAxisWidth);
    p.text({x, L.bottom + kTick + kGap}, plot.categories[i], Align::Center, false);
  }
  const double mid_x = (L.left + L.right) / 2;
  if (!plot.x_label.empty())
    p.text({mid_x, L.bottom + kTick + kGap + th + kTitleGap}, plot.x_label, Align::Center, false);
  if (!plot.y_label.empty())
    p.text({kPad, (L.top + L.bottom) / 2}, plot.y_label, Align::Center, true);
  if (!plot.title.empty()) p.text({mid_x, kPad}, plot.title, Align::Center, false);

  // Error bars and lines of every series first, then the markers on top of all lines.
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const Series& s = plot.series[k];
    const Rgb color = series_color(k);
    std::vector<std::vector<Point>> runs(1);
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (std::isnan(s.y[i])) {
        if (!runs.back().empty()) runs.emplace_back();
        continue;
      }
      const double x = L.x_at(i);
      runs.back().push_back({x, L.y_at(s.y[i])});
      if (s.err[i] > 0) {
        const double y_top = L.y_at(s.y[i] + s.err[i]), y_bottom = L.y_at(s.y[i] - s.err[i]);
        p.line({x, y_top}, {x, y_bottom}, color, kBarWidth);
        p.line({x - kCapHalfWidth, y_top}, {x + kCapHalfWidth, y_top}, color, kBarWidth);
        p.line({x - kCapHalfWidth, y_bottom}, {x + kCapHalfWidth, y_bottom}, color, kBarWidth);
      }
    }
    if (runs.back().empty()) runs.pop_back();
    p.path(runs, color, kSeriesWidth);
  }
  for (size_t k = 0; k < plot.series.size(); ++k)
    for (size_t i = 0; i < plot.series[k].y.size(); ++i)
      if (!std::isnan(plot.series[k].y[i]))
        p.circle({L.x_at(i), L.y_at(plot.series[k].y[i])}, kMarkerRadius, series_color(k));

  // Legend: a line-and-marker swatch and the series name per row.
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const double top = L.legend_row_top(k), y = top + th / 2;
    p.line({L.legend_x, y}, {L.legend_x + kLegendSwatch, y}, series_color(k), kSeriesWidth);
    p.circle({L.legend_x + kLegendSwatch / 2, y}, kMarkerRadius, series_color(k));
    p.text({L.legend_x + kLegendSwatch + kLegendTextGap, top}, plot.series[k].name, Align::Left,
           false);
  }
}

std::string hex(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02X%02X%02X", c.r, c.g, c.b);
  return buf;
}

std::string num(double v) {
  return format_fixed(v, 2);
}

class SvgPainter : public Painter {
 public:
  explicit SvgPainter(std::ostringstream& os) : os_(os) {}
  void rect(double x, double y, double w, double h, Rgb fill) override {
    os_ << "<rect x=\"" << num(x) << "\" y=\"" << num(y) << "\" width=\"" << num(w)
        << "\" height=\"" << num(h) << "\" fill=\"" << hex(fill) << "\"/>\n";
  }
  void line(Point a, Point b, Rgb color, int width) override {
    os_ << "<line x1=\"" << num(a.x) << "\" y1=\"" << num(a.y) << "\" x2=\"" << num(b.x)
        << "\" y2=\"" << num(b.y) << "\" stroke=\"" << hex(color) << "\" stroke-width=\"" << width
        << "\"/>\n";
  }
  void path(const std::vector<std::vector<Point>>& runs, Rgb color, int width) override {
    std::string d;
    for (const auto& run : runs)
      for (size_t i = 0; i < run.size(); ++i)
        d += (d.empty() ? "" : " ") + std::string(i == 0 ? "M" : "L") + num(run[i].x) + " " +
             num(run[i].y);
    os_ << "<path d=\"" << d << "\" fill=\"none\" stroke=\"" << hex(color) << "\" stroke-width=\""
        << width << "\" stroke-linejoin=\"round\"/>\n";
  }
  void circle(Point c, double radius, Rgb fill) override {
    os_ << "<circle cx=\"" << num(c.x) << "\" cy=\"" << num(c.y) << "\" r=\"" << num(radius)
        << "\" fill=\"" << hex(fill) << "\"/>\n";
  }
  void text(Point anchor, const std::string& s, Align align, bool vertical) override {
    const char* anchor_name = align == Align::Left     ? "start"
                              : align == Align::Center ? "middle"
                                                       : "end";
    // The baseline lies at the bottom of the text box: below its top edge, or (rotated by -90
    // degrees, glyph tops facing left) right of its left edge.
    const double th = text_h();
    const Point base = vertical ? Point{anchor.x + th, anchor.y} : Point{anchor.x, anchor.y + th};
    os_ << "<text x=\"" << num(base.x) << "\" y=\"" << num(base.y) << "\" text-anchor=\""
        << anchor_name << "\" fill=\"" << hex(kInk) << "\"";
    if (vertical) os_ << " transform=\"rotate(-90 " << num(base.x) << " " << num(base.y) << ")\"";
    os_ << ">" << xml_escape(s) << "</text>\n";
  }

 private:
  std::ostringstream& os_;
};

class CanvasPainter : public Painter {
 public:
  explicit CanvasPainter(Canvas& canvas) : c_(canvas) {}
  void rect(double x, double y, double w, double h, Rgb fill) override {
    c_.fill_rect(int(std::floor(x)), int(std::floor(y)), int(std::lround(w)), int(std::lround(h)),
                 fill);
  }
  void line(Point a, Point b, Rgb color, int width) override {
    c_.line(a.x, a.y, b.x, b.y, color, width);
  }
  void path(const std::vector<std::vector<Point>>& runs, Rgb color, int width) override {
    for (const auto& run : runs)
      for (size_t i = 1; i < run.size(); ++i) line(run[i - 1], run[i], color, width);
  }
  void circle(Point c, double radius, Rgb fill) override { c_.fill_circle(c.x, c.y, radius, fill); }
  void text(Point anchor, const std::string& s, Align align, bool vertical) override {
    c_.text(int(std::floor(anchor.x)), int(std::floor(anchor.y)), s, kInk, kTextScale, align,
            vertical);
  }

 private:
  Canvas& c_;
};

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
  CXR_CHECK(std::isfinite(lo) && std::isfinite(hi) && std::isfinite(hi - lo) && lo <= hi &&
                max_ticks >= 2,
            "nice_ticks: got lo = ", lo, ", hi = ", hi, ", max_ticks = ", max_ticks,
            "; expected finite lo <= hi and max_ticks >= 2");
  std::tie(lo, hi) = widen_degenerate(lo, hi);
  const Step step = nice_step(lo, hi, max_ticks);
  const auto [first, last] = covering(lo, hi, step.times(1));
  std::vector<double> ticks;
  for (int64_t k = first; k <= last; ++k) ticks.push_back(step.times(k));
  return ticks;
}

double PlotLayout::x_at(size_t category) const {
  return left + (double(category) + 0.5) * (right - left) / double(categories);
}

double PlotLayout::y_at(double value) const {
  return bottom - (value - y_lo) / (y_hi - y_lo) * (bottom - top);
}

double PlotLayout::legend_row_top(size_t row) const {
  return top + double(row) * (text_h() + kLegendRowGap);
}

PlotLayout plot_layout(const LinePlot& plot) {
  validate(plot);
  PlotLayout L;
  L.width = plot.width;
  L.height = plot.height;
  L.categories = plot.categories.size();

  // The y range and its ticks; tick labels all carry the step's decimals.
  const bool fixed = !std::isnan(plot.y_min);
  auto [lo, hi] = fixed ? std::pair{plot.y_min, plot.y_max} : data_range(plot);
  std::tie(lo, hi) = widen_degenerate(lo, hi);
  L.y_ticks = nice_ticks(lo, hi, 6);  // validates the range first
  const Step step = nice_step(lo, hi, 6);
  if (fixed) {
    const double eps = 1e-9 * (hi - lo);
    std::erase_if(L.y_ticks, [&](double t) { return t < lo - eps || t > hi + eps; });
    L.y_lo = lo;
    L.y_hi = hi;
  } else {
    L.y_lo = L.y_ticks.front();
    L.y_hi = L.y_ticks.back();
  }
  double label_w = 0;
  for (double t : L.y_ticks) {
    L.y_tick_labels.push_back(format_fixed(t, step.decimals()));
    label_w = std::max(label_w, text_w(L.y_tick_labels.back()));
  }

  // Margins: title above; tick labels and axis titles left of and below the plot area; the
  // legend column on the right. Half a text line above the area keeps the top tick label inside.
  const double th = text_h();
  L.top = kPad + th / 2 + (plot.title.empty() ? 0 : th + kTitleGap);
  L.bottom = plot.height - kPad - (plot.x_label.empty() ? 0 : th + kTitleGap) - th - kGap - kTick;
  L.left = kPad + (plot.y_label.empty() ? 0 : th + kTitleGap) + label_w + kGap + kTick;
  double legend_w = 0;
  for (const Series& s : plot.series)
    legend_w = std::max(legend_w, kLegendSwatch + kLegendTextGap + text_w(s.name));
  L.right = plot.width - kPad - (plot.series.empty() ? 0 : legend_w + kLegendGap);
  L.legend_x = L.right + kLegendGap;
  CXR_CHECK(L.right - L.left >= kMinArea && L.bottom - L.top >= kMinArea, "line plot '", plot.title,
            "': a ", plot.width, "x", plot.height, " figure leaves a ", L.right - L.left, "x",
            L.bottom - L.top, " plot area; expected at least ", kMinArea, "x", kMinArea,
            " (enlarge width/height or shorten the labels)");
  return L;
}

Rgb series_color(size_t index) {
  // Okabe & Ito (2008), "Color Universal Design"; yellow last, as it is faint on white.
  static constexpr std::array<Rgb, 8> kPalette = {{{0, 114, 178},
                                                   {213, 94, 0},
                                                   {0, 158, 115},
                                                   {230, 159, 0},
                                                   {204, 121, 167},
                                                   {86, 180, 233},
                                                   {240, 228, 66},
                                                   {0, 0, 0}}};
  return kPalette[index % kPalette.size()];
}

std::string render_svg(const LinePlot& plot) {
  const PlotLayout L = plot_layout(plot);
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << L.width << "\" height=\""
     << L.height << "\" viewBox=\"0 0 " << L.width << " " << L.height
     << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"" << kSvgFontSize
     << "\">\n";
  if (!plot.title.empty()) os << "<title>" << xml_escape(plot.title) << "</title>\n";
  SvgPainter painter(os);
  draw_plot(plot, L, painter);
  os << "</svg>\n";
  return os.str();
}

Tensor render_png_pixels(const LinePlot& plot) {
  const PlotLayout L = plot_layout(plot);
  Canvas canvas(L.width, L.height, kWhite);
  CanvasPainter painter(canvas);
  draw_plot(plot, L, painter);
  return canvas.to_tensor();
}

void write_plot_png(const std::string& path, const LinePlot& plot) {
  data::write_png(path, render_png_pixels(plot));
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  return out;
}

}  // namespace cxr::experiments
