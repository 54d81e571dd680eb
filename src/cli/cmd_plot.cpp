// bsp plot: training curves of finetune logs as SVG (man/bsp-plot.1).
#include <cerrno>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "plot/svg.hpp"

namespace bsp::cli {

namespace {

struct PlotOptions {
  std::vector<std::string> logs;
  std::string svg;
  std::string title;
};

// One epoch of a `bsp finetune --log` file; NaN where the log has no value.
struct EpochRow {
  double loss = NAN, train_acc = NAN, test_loss = NAN, test_acc = NAN;
};

double csv_number(const std::string& s) {
  if (s.empty()) return NAN;
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    return used == s.size() ? v : NAN;
  } catch (const std::exception&) {
    return NAN;
  }
}

double json_number(const Json& j, const char* key) {
  const Json* v = j.find(key);
  return v && v->is_number() ? v->as_double() : NAN;
}

// Epoch -> row; a resumed run's repeated epoch keeps its last record.
std::map<int64_t, EpochRow> read_log(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read '{}': {}", path, errno_message(errno));
  std::map<int64_t, EpochRow> rows;
  std::string line;
  std::vector<std::string> header;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    EpochRow r;
    int64_t epoch = 0;
    if (line[0] == '{') {
      Json j;
      try {
        j = Json::parse(line);
      } catch (const Error& e) {
        fail("'{}' line {}: {}", path, lineno, e.what());
      }
      const Json* e = j.find("epoch");
      if (!e || !e->is_int()) fail("'{}' line {}: no integer 'epoch' (not a bsp finetune --log file?)", path, lineno);
      epoch = e->as_int();
      r = {json_number(j, "loss"), json_number(j, "train_acc"), json_number(j, "test_loss"),
           json_number(j, "test_acc")};
    } else {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
      if (header.empty()) {
        if (f.empty() || f[0] != "epoch") fail("'{}' line {}: not a bsp finetune --log file (CSV or JSON lines)", path, lineno);
        header = f;
        continue;
      }
      auto col = [&](const char* name) {
        for (size_t i = 0; i < header.size() && i < f.size(); ++i)
          if (header[i] == name) return csv_number(f[i]);
        return static_cast<double>(NAN);
      };
      const double e = col("epoch");
      if (!std::isfinite(e)) fail("'{}' line {}: no epoch", path, lineno);
      epoch = static_cast<int64_t>(e);
      r = {col("loss"), col("train_acc"), col("test_loss"), col("test_acc")};
    }
    rows[epoch] = r;
  }
  if (rows.empty()) fail("'{}' holds no epochs", path);
  return rows;
}

std::string stem(const std::string& path) {
  std::string s = path.substr(path.find_last_of('/') + 1);
  const size_t dot = s.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? s : s.substr(0, dot);
}

void run_plot(const PlotOptions& o) {
  if (o.svg.empty()) fail_usage("no output: give --svg FILE");
  std::vector<plot::Series> loss, acc;
  for (const std::string& path : o.logs) {
    const auto rows = read_log(path);
    const std::string name = o.logs.size() > 1 ? stem(path) + " " : "";
    // One colour per log: training solid, test dashed.
    const int colour = static_cast<int>(loss.size() / 2);
    plot::Series tl{name + "train", {}, {}, colour, ""}, vl{name + "test", {}, {}, colour, "5,3"},
        ta{name + "train", {}, {}, colour, ""}, va{name + "test", {}, {}, colour, "5,3"};
    for (const auto& [epoch, r] : rows) {
      const double e = static_cast<double>(epoch);
      tl.x.push_back(e), tl.y.push_back(r.loss);
      vl.x.push_back(e), vl.y.push_back(r.test_loss);
      ta.x.push_back(e), ta.y.push_back(100 * r.train_acc);
      va.x.push_back(e), va.y.push_back(100 * r.test_acc);
    }
    for (auto* s : {&tl, &vl}) loss.push_back(*s);
    for (auto* s : {&ta, &va}) acc.push_back(*s);
  }
  plot::Svg svg(900, 340);
  if (!o.title.empty()) svg.text(450, 18, o.title, 15, "middle");
  const double top = o.title.empty() ? 4 : 26;
  plot::line_chart(svg, {0, top, 450, 310, "loss", "epoch", "loss", true}, loss);
  plot::line_chart(svg, {450, top, 450, 310, "accuracy", "epoch", "accuracy (%)", true}, acc);
  svg.set_height(top + 320);
  svg.write(o.svg);
  verbose_note(fmt::format("wrote '{}'", o.svg));
}

}  // namespace

Runner setup_plot(CLI::App& sub) {
  auto o = std::make_shared<PlotOptions>();
  sub.add_option("log", o->logs, "finetune --log files (CSV or JSON lines), one or more")->required()->type_name("LOG");
  sub.add_option("--svg", o->svg, "the SVG file to write ('-' for stdout)")->type_name("FILE");
  sub.add_option("--title", o->title, "a title above the charts")->type_name("TEXT");
  return [o] { run_plot(*o); };
}

}  // namespace bsp::cli
