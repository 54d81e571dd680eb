#include "plot/svg.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <limits>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/safe_file.hpp"

namespace bsp::plot {

namespace {

// Coordinates with two decimals: enough for pixels, and short files.
std::string num(double v) {
  if (!std::isfinite(v)) v = 0;
  std::string s = fmt::format("{:.2f}", v);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

std::string title_of(const std::string& t) { return t.empty() ? "" : "<title>" + xml_escape(t) + "</title>"; }

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t') o += c;
    }
  }
  return o;
}

const char* palette(size_t i) {
  static const char* const kTab10[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kTab10[i % 10];
}

Svg::Svg(double width, double height) : w_(width), h_(height) {}

void Svg::rect(double x, double y, double w, double h, const std::string& fill, const std::string& title) {
  body_ += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"", num(x), num(y), num(w),
                       num(h), fill);
  body_ += title.empty() ? "/>\n" : ">" + title_of(title) + "</rect>\n";
}

void Svg::line(double x1, double y1, double x2, double y2, const std::string& stroke, double width,
               const std::string& dash) {
  body_ += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}/>\n",
                       num(x1), num(y1), num(x2), num(y2), stroke, num(width),
                       dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"");
}

void Svg::polyline(const std::vector<double>& xs, const std::vector<double>& ys, const std::string& stroke,
                   double width, const std::string& dash) {
  std::string pts;
  for (size_t i = 0; i < xs.size() && i < ys.size(); ++i) pts += (i ? " " : "") + num(xs[i]) + "," + num(ys[i]);
  body_ += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{}/>\n", pts, stroke,
                       num(width), dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"");
}

void Svg::circle(double x, double y, double r, const std::string& fill, const std::string& title) {
  body_ += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"", num(x), num(y), num(r), fill);
  body_ += title.empty() ? "/>\n" : ">" + title_of(title) + "</circle>\n";
}

void Svg::text(double x, double y, const std::string& s, double size, const std::string& anchor,
               const std::string& fill, double rotate) {
  body_ += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{}\" fill=\"{}\"{}>{}</text>\n",
                       num(x), num(y), num(size), anchor, fill,
                       rotate != 0 ? fmt::format(" transform=\"rotate({} {} {})\"", num(rotate), num(x), num(y))
                                   : std::string(),
                       xml_escape(s));
}

std::string Svg::str() const {
  return fmt::format(
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" height=\"{1}\" "
             "viewBox=\"0 0 {0} {1}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
             "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"#fff\"/>\n",
             num(w_), num(h_)) +
         body_ + "</svg>\n";
}

void Svg::write(const std::string& path) const {
  OutputFile out(path);
  FILE* f = std::fopen(out.temp_path().c_str(), "wb");
  if (!f) fail("cannot write '{}': {}", path, errno_message(errno));
  const std::string s = str();
  const bool ok = std::fwrite(s.data(), 1, s.size(), f) == s.size();
  if (std::fclose(f) != 0 || !ok) fail("cannot write '{}': {}", path, errno_message(errno));
  out.commit();
}

std::vector<double> nice_ticks(double lo, double hi, int n) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo < 1e-12) {
    const double pad = std::abs(lo) > 0 ? std::abs(lo) * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, n);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::floor(lo / step) * step; v <= hi + step * 1e-9 && t.size() < 100; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  if (!t.empty() && t.back() < hi - step * 1e-9) t.push_back(t.back() + step);
  return t;
}

std::string tick_label(double v) {
  std::string s = fmt::format("{:.6g}", v);
  return s == "-0" ? "0" : s;
}

void line_chart(Svg& svg, const ChartFrame& f, const std::vector<Series>& series, bool points, bool lines) {
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xlo = std::min(xlo, s.x[i]);
      xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, s.y[i]);
      yhi = std::max(yhi, s.y[i]);
    }
  if (!std::isfinite(xlo)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  std::vector<double> xt = nice_ticks(xlo, xhi), yt = nice_ticks(ylo, yhi);
  if (f.integer_x && xt.size() > 1 && xt[1] - xt[0] < 1) {
    xt.clear();
    for (double v = std::floor(xlo); v <= std::ceil(xhi); v += 1) xt.push_back(v);
    if (xt.size() < 2) xt.push_back(xt.back() + 1);
  }
  const double x0 = xt.front(), x1 = xt.back(), y0 = yt.front(), y1 = yt.back();
  // The plot area inside the frame: room for the title, labels and legend.
  const double left = f.x + 56, right = f.x + f.w - 12, top = f.y + 28, bottom = f.y + f.h - 40;
  auto px = [&](double v) { return left + (v - x0) / (x1 - x0) * (right - left); };
  auto py = [&](double v) { return bottom - (v - y0) / (y1 - y0) * (bottom - top); };
  svg.text(f.x + f.w / 2, f.y + 16, f.title, 13, "middle");
  for (double t : yt) {
    svg.line(left, py(t), right, py(t), "#e5e5e5");
    svg.text(left - 6, py(t) + 4, tick_label(t), 10, "end", "#444");
  }
  for (double t : xt) {
    svg.line(px(t), top, px(t), bottom, "#f0f0f0");
    svg.text(px(t), bottom + 14, tick_label(t), 10, "middle", "#444");
  }
  svg.line(left, bottom, right, bottom, "#444");
  svg.line(left, top, left, bottom, "#444");
  svg.text((left + right) / 2, bottom + 30, f.xlabel, 11, "middle");
  svg.text(f.x + 14, (top + bottom) / 2, f.ylabel, 11, "middle", "#222", -90);
  auto colour_of = [&](size_t k) { return palette(series[k].color >= 0 ? static_cast<size_t>(series[k].color) : k); };
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const char* colour = colour_of(k);
    std::vector<double> xs, ys;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xs.push_back(px(s.x[i]));
        ys.push_back(py(s.y[i]));
      }
    if (lines && xs.size() > 1) svg.polyline(xs, ys, colour, 1.5, s.dash);
    if (points)
      for (size_t i = 0; i < xs.size(); ++i) svg.circle(xs[i], ys[i], 2.5, colour, s.name);
  }
  // The legend, over the lines, top right inside the plot area.
  if (!series.empty())
    svg.rect(right - 156, top + 1, 154, 14 * static_cast<double>(series.size()) + 4, "#ffffff");
  for (size_t k = 0; k < series.size(); ++k) {
    const double ly = top + 8 + 14 * static_cast<double>(k);
    svg.line(right - 150, ly, right - 134, ly, colour_of(k), 2, series[k].dash);
    svg.text(right - 130, ly + 4, series[k].name, 10);
  }
}

void bar_chart(Svg& svg, double top, const std::string& title, const std::vector<std::string>& labels,
               const std::vector<double>& values, double reference, const std::string& unit) {
  constexpr double kLabelW = 260, kRow = 14, kRight = 70;
  double hi = reference;
  for (double v : values)
    if (std::isfinite(v)) hi = std::max(hi, v);
  const std::vector<double> ticks = nice_ticks(0, hi, 6);
  const double x0 = kLabelW, x1 = svg.width() - kRight, top_axis = top + 24;
  auto px = [&](double v) { return x0 + v / ticks.back() * (x1 - x0); };
  svg.text(svg.width() / 2, top + 14, title, 13, "middle");
  const double bottom = top_axis + kRow * static_cast<double>(labels.size());
  for (double t : ticks) {
    svg.line(px(t), top_axis, px(t), bottom, "#e5e5e5");
    svg.text(px(t), bottom + 12, tick_label(t) + unit, 10, "middle", "#444");
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    const double y = top_axis + kRow * static_cast<double>(i);
    svg.text(x0 - 6, y + kRow - 4, labels[i], 10, "end");
    const double v = i < values.size() ? values[i] : NAN;
    if (!std::isfinite(v)) continue;
    svg.rect(x0, y + 2, std::max(0.0, px(v) - x0), kRow - 4, v < reference ? palette(1) : palette(0),
             labels[i] + ": " + fmt::format("{:.2f}", v) + unit);
    svg.text(px(v) + 4, y + kRow - 4, fmt::format("{:.2f}{}", v, unit), 9, "start", "#444");
  }
  svg.line(x0, top_axis, x0, bottom, "#444");
  svg.line(px(reference), top_axis - 4, px(reference), bottom, "#222", 1, "4,3");
  svg.set_height(std::max(svg.height(), bottom + 24));
}

}  // namespace bsp::plot
