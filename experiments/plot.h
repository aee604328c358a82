// The study report's figures (Prakash et al., Figure 2 style): a metric (F1 or Dice, y) against the
// synthetic multiplier (evenly spaced categories "0", "2x", "5x", ...), one line per real-data
// fraction with markers and +/- sd error bars, a legend, axis titles and a title. Rendered as a
// self-contained SVG (inline in the report HTML) and as a PNG through experiments/raster.h; no
// third-party plotting.
//
// Both renderings draw the same figure from ONE PlotLayout (margins, data -> pixel mapping, ticks,
// legend place), so an SVG and a PNG of the same plot agree to the pixel that holds each point.
// Colours: the Okabe-Ito colour-blind-safe palette, series i taking colour i mod 8 (in both).
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "experiments/raster.h"
#include "tensor/tensor.h"

namespace cxr::experiments {

// One line: y[i] at category i with error bar +/- err[i]. A NaN y is a missing point (a gap in the
// line, no marker); a finite y needs a finite err >= 0 (0: no bar).
struct Series {
  std::string name;
  std::vector<double> y, err;
};

struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<std::string> categories;  // x tick labels, evenly spaced
  std::vector<Series> series;
  // The y range: automatic (data +/- err, padded by 5%, widened to "nice" ticks of a 1-2-5 step)
  // unless both are finite with y_min < y_max, which fixes it (ticks: the nice ones inside; points
  // outside a fixed range are drawn where they map, beyond the plot area, not clipped).
  double y_min = NAN, y_max = NAN;
  int width = 640, height = 420;
};

// Tick values covering [lo, hi]: multiples of the smallest step from {1, 2, 5} x 10^k that needs at
// most max_ticks ticks, from the multiple at or below lo to the one at or above hi. lo == hi is
// widened to lo +/- half a power of ten of lo's magnitude (+/- 0.5 around 0).
std::vector<double> nice_ticks(double lo, double hi, int max_ticks = 6);

// The geometry both renderings share. Pixel coordinates are continuous: x to the right, y down,
// (0, 0) the top-left corner of the image.
struct PlotLayout {
  int width = 0, height = 0;
  double left = 0, right = 0, top = 0, bottom = 0;  // the plot area's edges
  double y_lo = 0, y_hi = 1;                        // the data range the plot area spans
  std::vector<double> y_ticks;                      // within [y_lo, y_hi]
  std::vector<std::string> y_tick_labels;           // same decimals for all, from the tick step
  size_t categories = 0;
  double legend_x = 0;  // left edge of the legend column (right of the plot area)

  // Centre of category i: the plot area split into equal slots.
  double x_at(size_t category) const;
  // Pixel row of value v: y_lo at the bottom edge, y_hi at the top (higher value, smaller row).
  double y_at(double value) const;
  // Top edge of legend row i (rows are one text line plus spacing apart).
  double legend_row_top(size_t row) const;
};

// Validates the plot (categories non-empty, each series' y and err sized like the categories, y
// NaN or finite, err finite and >= 0 where y is finite, a valid y range and a plot area of at least
// 40x40 pixels) and computes its layout; throws cxr::Error naming what is wrong.
PlotLayout plot_layout(const LinePlot& plot);

// A standalone SVG document: xmlns and viewBox set, no external fonts/CSS, text escaped for XML.
// Each series is one <path> (gaps as separate subpaths) and one <circle> per finite point, and the
// legend adds one line and one <circle> per series.
std::string render_svg(const LinePlot& plot);
// Text for XML and HTML: & < > " ' as entities (the SVG here, the study's report.html).
std::string xml_escape(const std::string& s);
// The PNG rendering as uint8 [3, H, W] (R, G, B; 0..255). Text is the 5x7 bitmap font at scale 2;
// the y-axis title is drawn rotated (bottom to top). Characters outside printable ASCII show as
// boxes (see raster.h): prefer "+/-" to "±" in labels.
Tensor render_png_pixels(const LinePlot& plot);
// Writes render_png_pixels(plot) as a PNG at `path`, atomically (data::write_png).
void write_plot_png(const std::string& path, const LinePlot& plot);

// The palette colour of series i (Okabe-Ito: blue, vermillion, bluish green, orange, reddish
// purple, sky blue, yellow, black; cycled).
Rgb series_color(size_t index);

}  // namespace cxr::experiments
