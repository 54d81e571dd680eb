// Plain SVG 1.1, written by bsp with no library: the pictures of
// `info --svg` (block masks), `estimate --svg` (per-layer time bars),
// `bench --svg` (per-layer speedup) and `bsp plot` (training curves).
// Coordinates are user units (pixels), origin top left, y down.
#pragma once

#include <string>
#include <vector>

namespace bsp::plot {

class Svg {
 public:
  Svg(double width, double height);
  // Shapes; fill/stroke are SVG colours ("#1f77b4", "none"). A non-empty
  // title becomes a tooltip.
  void rect(double x, double y, double w, double h, const std::string& fill, const std::string& title = "");
  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double width = 1,
            const std::string& dash = "");
  void polyline(const std::vector<double>& xs, const std::vector<double>& ys, const std::string& stroke,
                double width = 1.5, const std::string& dash = "");
  void circle(double x, double y, double r, const std::string& fill, const std::string& title = "");
  // anchor: "start", "middle" or "end"; text is escaped.
  void text(double x, double y, const std::string& s, double size = 12, const std::string& anchor = "start",
            const std::string& fill = "#222", double rotate = 0);
  // The document: a white background and every element in order.
  std::string str() const;
  // Writes it atomically to `path` ("-": stdout).
  void write(const std::string& path) const;

  double width() const { return w_; }
  double height() const { return h_; }
  // Grows the canvas (drawing can run ahead of knowing the height).
  void set_height(double h) { h_ = h; }

 private:
  double w_, h_;
  std::string body_;
};

// XML text: & < > " escaped, control characters dropped.
std::string xml_escape(const std::string& s);
// The i-th colour of a qualitative palette (matplotlib's tab10).
const char* palette(size_t i);
// "Nice" axis ticks covering [lo, hi]: about `n` round values.
std::vector<double> nice_ticks(double lo, double hi, int n = 5);
// A tick label without trailing zeros ("0.5", "12", "1e-05").
std::string tick_label(double v);

// One x-y chart: axes, ticks, grid, series as lines with points, legend.
struct Series {
  std::string name;
  std::vector<double> x, y;
  int color = -1;         // palette index; -1: the series' position
  std::string dash = "";  // SVG stroke-dasharray, "" for solid
};
struct ChartFrame {
  double x = 0, y = 0, w = 400, h = 260;  // the whole chart, labels included
  std::string title, xlabel, ylabel;
  bool integer_x = false;  // x ticks on whole numbers only (epochs)
};
void line_chart(Svg& svg, const ChartFrame& f, const std::vector<Series>& series, bool points = true,
                bool lines = true);

// Horizontal bars, one per label, from 0 (or the smallest value) to each
// value, with a dashed line at `reference` (e.g. 1x for speedups); bars
// below the reference in a second colour. Grows the canvas to fit.
void bar_chart(Svg& svg, double top, const std::string& title, const std::vector<std::string>& labels,
               const std::vector<double>& values, double reference, const std::string& unit);

}  // namespace bsp::plot
