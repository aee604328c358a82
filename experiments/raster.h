// A tiny RGB raster canvas for the study report's PNG figures (experiments/plot.h): pixels, thick
// lines, filled rectangles and circles, and text in an embedded 5x7 bitmap font authored for this
// project (printable ASCII 32..126). No third-party drawing library.
//
// Coordinates: pixel (x, y) covers [x, x+1) x [y, y+1), x to the right, y down; a point given in
// continuous coordinates belongs to the pixel floor(x), floor(y). Everything outside the canvas is
// clipped silently.
//
// Text: each glyph is 5x7 pixels in a 6-pixel advance, times an integer `scale`; the box of a
// string of n glyphs is text_width = (6n - 1) * scale wide and text_height = 7 * scale tall.
// Characters outside printable ASCII (e.g. UTF-8 '±', 'Δ') render as one hollow box per code point
// (UTF-8 continuation bytes take no room), so callers should write "+/-" instead.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::experiments {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// Where a text's anchor x (or, for vertical text, anchor y) sits on the text: at its start, its
// middle or its end.
enum class Align { Left, Center, Right };

class Canvas {
 public:
  // A width x height canvas (each 1..16384) filled with `background`.
  Canvas(int width, int height, Rgb background);

  int width() const { return width_; }
  int height() const { return height_; }
  // The colour of pixel (x, y); throws outside the canvas.
  Rgb pixel(int x, int y) const;
  // Sets one pixel; ignored outside the canvas.
  void set(int x, int y, Rgb color);

  // A straight line between the pixels of (x0, y0) and (x1, y1) (Bresenham), stamped with a
  // thickness x thickness square whose top-left is offset by -thickness/2 (integer division), so a
  // horizontal line at row y of thickness 2 covers rows y-1 and y.
  void line(double x0, double y0, double x1, double y1, Rgb color, int thickness = 1);
  // Pixels [x, x+w) x [y, y+h).
  void fill_rect(int x, int y, int w, int h, Rgb color);
  // Pixels whose centre lies within `radius` of (cx, cy).
  void fill_circle(double cx, double cy, double radius, Rgb color);
  // Draws `text` with its box's top edge at y and x placed by `align`. With vertical = true the
  // text is rotated 90 degrees counter-clockwise (reads bottom to top, as a y-axis title): its box
  // has its left edge at x and `align` places y (Left: the text starts at y and runs upwards).
  void text(int x, int y, std::string_view text, Rgb color, int scale = 1,
            Align align = Align::Left, bool vertical = false);
  // Size of a string's box (see the file comment); static, so layouts can measure without a canvas.
  static int text_width(std::string_view text, int scale = 1);
  static int text_height(int scale = 1);

  // uint8 [3, H, W] (R, G, B planes), ready for data::write_png.
  Tensor to_tensor() const;

 private:
  int width_, height_;
  std::vector<Rgb> pixels_;  // row-major
};

}  // namespace cxr::experiments
