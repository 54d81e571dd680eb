// bsp info: describe a model file (man/bsp-info.1).
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "core/model_io.hpp"
#include "core/stats.hpp"

namespace bsp::cli {

namespace {
struct InfoOptions {
  std::string input;
  bool json = false;
  bool weighted_only = false;
};

Json shape_json(const Shape& s) {
  Json a = Json::array();
  for (auto d : s) a.push_back(d);
  return a;
}

Json to_json(const Model& m, const ModelStats& s, bool weighted_only) {
  Json j = Json::object();
  j["arch"] = m.arch;
  j["format_version"] = fmt::format("{}.{}", kFormatMajor, kFormatMinor);
  j["input_shape"] = shape_json(m.input_shape());
  Json layers = Json::array();
  for (const auto& l : s.layers) {
    if (weighted_only && !op_has_weight(l.op)) continue;
    Json e = Json::object();
    e["name"] = l.name;
    e["op"] = op_name(l.op);
    e["output_shape"] = shape_json(l.output_shape);
    e["params"] = l.params;
    e["macs"] = l.macs;
    e["density"] = l.density ? Json(*l.density) : Json();
    e["pattern"] = l.pattern ? Json(*l.pattern) : Json();
    layers.push_back(std::move(e));
  }
  j["layers"] = std::move(layers);
  Json t = Json::object();
  t["params"] = s.params;
  t["macs"] = s.macs;
  t["nonzero_params"] = s.nonzero_params;
  t["bytes"] = s.bytes;
  j["totals"] = std::move(t);
  Json h = Json::array();
  for (const auto& line : m.history) h.push_back(line);
  j["history"] = std::move(h);
  return j;
}

void print_table(const Model& m, const ModelStats& s, bool weighted_only) {
  std::printf("arch: %s   input: %s\n\n", m.arch.c_str(), shape_str(m.input_shape()).c_str());
  size_t w = 4;
  for (const auto& l : s.layers) w = std::max(w, l.name.size());
  std::printf("%-*s  %-14s  %-16s  %12s  %15s  %7s  %s\n", static_cast<int>(w), "name", "op", "output", "params",
              "MACs", "density", "pattern");
  for (const auto& l : s.layers) {
    if (weighted_only && !op_has_weight(l.op)) continue;
    std::string density = l.density ? fmt::format("{:.4f}", *l.density) : "-";
    std::printf("%-*s  %-14s  %-16s  %12s  %15s  %7s  %s\n", static_cast<int>(w), l.name.c_str(), op_name(l.op),
                shape_str(l.output_shape).c_str(), l.params ? with_commas(l.params).c_str() : "-",
                l.macs ? with_commas(l.macs).c_str() : "-", density.c_str(), l.pattern ? l.pattern->c_str() : "-");
  }
  std::printf("\ntotal: %s params (%s nonzero), %s MACs per image, %s parameter bytes\n",
              with_commas(s.params).c_str(), with_commas(s.nonzero_params).c_str(), with_commas(s.macs).c_str(),
              with_commas(s.bytes).c_str());
  std::printf("\nhistory:\n");
  if (m.history.empty()) std::printf("  (none)\n");
  for (const auto& h : m.history) std::printf("  %s\n", h.c_str());
}

void run_info(const InfoOptions& o) {
  Model m = read_model(o.input);
  ModelStats s = model_stats(m);
  if (o.json)
    print_json(to_json(m, s, o.weighted_only));
  else
    print_table(m, s, o.weighted_only);
}
}  // namespace

Runner setup_info(CLI::App& sub) {
  auto o = std::make_shared<InfoOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  sub.add_flag("--json", o->json, "print a JSON document instead of the table (schema in bsp-info(1))");
  sub.add_flag("--weighted", o->weighted_only, "list only the conv2d and dense layers");
  return [o] { run_info(*o); };
}

}  // namespace bsp::cli
