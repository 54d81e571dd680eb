// bsp info: describe a model file (man/bsp-info.1).
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "plot/mask_svg.hpp"
#include "compact/compact.hpp"
#include "core/act_sparsity.hpp"
#include "core/model_io.hpp"
#include "core/safe_file.hpp"
#include "core/stats.hpp"
#include "modelfile/file_bytes.hpp"
#include "modelfile/model_file.hpp"

namespace bsp::cli {

namespace {
struct InfoOptions {
  std::string input;
  bool json = false;
  bool weighted_only = false;
  std::string svg;  // --svg: the block-mask picture
};

Json shape_json(const Shape& s) {
  Json a = Json::array();
  for (auto d : s) a.push_back(d);
  return a;
}

// Weight bytes of a conv2d/dense layer: dense fp32 and as compacted (the
// same when the model is not compacted).
struct Bytes {
  int64_t dense = 0, compact = 0;
  double ratio() const { return compact ? static_cast<double>(dense) / static_cast<double>(compact) : 0.0; }
};

Bytes total_bytes(const Model& m) {
  Bytes t;
  for (const Node& n : m.nodes) {
    if (!op_has_weight(n.op)) continue;
    auto b = compact::layer_bytes(m, n.name);
    t.dense += b.dense;
    t.compact += b.compact;
  }
  return t;
}

// A layer's activation rule (bsp-format(5), ACTIVATION SPARSITY) as "T BHxBWxBC", or "-".
std::string act_text(const Model& m, const std::string& name) {
  const Node* n = m.find(name);
  const std::optional<ActRule> r = n ? act_rule(*n) : std::nullopt;
  if (!r) return "-";
  return fmt::format("{:g} {}x{}x{}", r->threshold, r->block[0], r->block[1], r->block[2]);
}

const char* layer_format(const Model& m, const std::string& name) {
  const compact::CompactLayer* l = m.compact ? m.compact->layer(name) : nullptr;
  return l ? compact::format_name(l->format) : nullptr;
}

Json to_json(const Model& m, const ModelStats& s, bool weighted_only, const std::vector<PartBytes>& parts) {
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
    const char* format = layer_format(m, l.name);
    e["format"] = format ? Json(format) : Json();
    const Node* node = m.find(l.name);
    const std::optional<ActRule> act = node ? act_rule(*node) : std::nullopt;
    e["act_threshold"] = act ? Json(act->threshold) : Json();
    e["act_block"] = act ? shape_json(Shape(act->block.begin(), act->block.end())) : Json();
    if (op_has_weight(l.op)) {
      auto b = compact::layer_bytes(m, l.name);
      e["dense_bytes"] = b.dense;
      e["compact_bytes"] = b.compact;
      e["compact_ratio"] = Bytes{b.dense, b.compact}.ratio();
    } else {
      e["dense_bytes"] = Json();
      e["compact_bytes"] = Json();
      e["compact_ratio"] = Json();
    }
    layers.push_back(std::move(e));
  }
  j["layers"] = std::move(layers);
  Json t = Json::object();
  t["params"] = s.params;
  t["macs"] = s.macs;
  t["nonzero_params"] = s.nonzero_params;
  t["bytes"] = s.bytes;
  j["totals"] = std::move(t);
  const Bytes tb = total_bytes(m);
  if (m.compact) {
    Json c = Json::object();
    c["dtype"] = dtype_name(m.compact->dtype);
    c["dense_bytes"] = tb.dense;
    c["compact_bytes"] = tb.compact;
    c["ratio"] = tb.ratio();
    j["compact"] = std::move(c);
  } else {
    j["compact"] = Json();
  }
  j["compact_dropped"] = m.compact_dropped.empty() ? Json() : Json(m.compact_dropped);
  if (m.rebuilt) {
    Json d = Json::object();
    d["dtype"] = dtype_name(m.rebuilt->dtype);
    d["layers"] = static_cast<int64_t>(m.rebuilt->nodes.size());
    j["dense_dropped"] = std::move(d);
  } else {
    j["dense_dropped"] = Json();
  }
  Json fb = Json::object();
  int64_t total = 0;
  for (const PartBytes& p : parts) {
    fb[p.key] = p.bytes;
    total += p.bytes;
  }
  fb["total"] = total;
  j["file_bytes"] = std::move(fb);
  Json h = Json::array();
  for (const auto& line : m.history) h.push_back(line);
  j["history"] = std::move(h);
  return j;
}

void print_table(const Model& m, const ModelStats& s, bool weighted_only, const std::vector<PartBytes>& parts) {
  std::printf("arch: %s   input: %s\n\n", m.arch.c_str(), shape_str(m.input_shape()).c_str());
  size_t w = 4;
  for (const auto& l : s.layers) w = std::max(w, l.name.size());
  size_t pw = 7;
  for (const auto& l : s.layers) pw = std::max(pw, l.pattern ? l.pattern->size() : 1);
  // The byte columns appear for a compacted model.
  const bool c = m.compact != nullptr;
  std::printf("%-*s  %-14s  %-16s  %12s  %15s  %7s  %-*s", static_cast<int>(w), "name", "op", "output", "params",
              "MACs", "density", static_cast<int>(c ? pw : 0), "pattern");
  if (c) std::printf("  %-6s  %12s  %12s  %6s", "format", "dense B", "compact B", "ratio");
  // The activation rules' column appears for a model that has any.
  const bool act = has_act_rules(m);
  if (act) std::printf("  %s", "act rule");
  std::printf("\n");
  for (const auto& l : s.layers) {
    if (weighted_only && !op_has_weight(l.op)) continue;
    std::string density = l.density ? fmt::format("{:.4f}", *l.density) : "-";
    std::string line = fmt::format("{:<{}}  {:<14}  {:<16}  {:>12}  {:>15}  {:>7}  {:<{}}", l.name, w, op_name(l.op),
                                   shape_str(l.output_shape), l.params ? with_commas(l.params) : "-",
                                   l.macs ? with_commas(l.macs) : "-", density, l.pattern ? *l.pattern : "-",
                                   c ? pw : 0);
    if (c && op_has_weight(l.op)) {
      auto b = compact::layer_bytes(m, l.name);
      line += fmt::format("  {:<6}  {:>12}  {:>12}  {:>6.2f}", layer_format(m, l.name), with_commas(b.dense),
                          with_commas(b.compact), Bytes{b.dense, b.compact}.ratio());
    } else if (c && act) {
      line += fmt::format("  {:<6}  {:>12}  {:>12}  {:>6}", "-", "-", "-", "-");
    }
    if (act) line += "  " + act_text(m, l.name);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
  std::printf("\ntotal: %s params (%s nonzero), %s MACs per image, %s parameter bytes\n",
              with_commas(s.params).c_str(), with_commas(s.nonzero_params).c_str(), with_commas(s.macs).c_str(),
              with_commas(s.bytes).c_str());
  if (c) {
    const Bytes tb = total_bytes(m);
    std::printf("compact (%s): weights %s -> %s bytes (%.2fx)\n", dtype_name(m.compact->dtype),
                with_commas(tb.dense).c_str(), with_commas(tb.compact).c_str(), tb.ratio());
  } else if (!m.compact_dropped.empty()) {
    std::printf("compact: ignored: %s\n", m.compact_dropped.c_str());
  }
  if (m.rebuilt)
    std::printf("dense weights: dropped (bsp strip); %zu layers' rebuilt from the %s compact form\n",
                m.rebuilt->nodes.size(), dtype_name(m.rebuilt->dtype));
  // Where the file's bytes go, the parts it has.
  int64_t total = 0;
  for (const PartBytes& p : parts) total += p.bytes;
  std::printf("\nfile: %s bytes\n", with_commas(total).c_str());
  for (const PartBytes& p : parts)
    if (p.bytes)
      std::printf("  %-18s %14s  %5.1f%%\n", p.label.c_str(), with_commas(p.bytes).c_str(),
                  100.0 * static_cast<double>(p.bytes) / static_cast<double>(total));
  std::printf("\nhistory:\n");
  if (m.history.empty()) std::printf("  (none)\n");
  for (const auto& h : m.history) std::printf("  %s\n", h.c_str());
}

void run_info(const InfoOptions& o) {
  InputFile in(o.input);
  Model m = load_model(in.path(), in.display());
  const std::vector<PartBytes> parts = file_bytes(in.path(), in.display());
  ModelStats s = model_stats(m);
  if (!o.svg.empty()) {
    if (o.svg == "-") fail_usage("--svg -: the table goes to stdout; give the SVG a file name");
    plot::write_mask_svg(m, o.svg);
  }
  if (o.json)
    print_json(to_json(m, s, o.weighted_only, parts));
  else
    print_table(m, s, o.weighted_only, parts);
}
}  // namespace

Runner setup_info(CLI::App& sub) {
  auto o = std::make_shared<InfoOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  sub.add_flag("--json", o->json, "print a JSON document instead of the table (schema in bsp-info(1))");
  sub.add_flag("--weighted", o->weighted_only, "list only the conv2d and dense layers");
  sub.add_option("--svg", o->svg, "also draw each layer's block mask as a grid in this SVG file")->type_name("FILE");
  return [o] { run_info(*o); };
}

}  // namespace bsp::cli
