// bsp prune: prune a model to a sparsity pattern (man/bsp-prune.1).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "core/act_sparsity.hpp"
#include "core/checked.hpp"
#include "sparsity/prune.hpp"

namespace bsp::cli {

namespace {
struct PruneCliOptions {
  std::string input;
  OutputOptions out;
  std::string pattern = "block:8x8";
  std::optional<double> density;
  std::string criterion = "l2";
  std::string scope;  // "" = the pattern's default
  bool include_first = false;
  bool include_depthwise = false;
  std::optional<std::string> layers, exclude;
  std::string density_file;
  bool force = false;
  bool json = false;
  bool quiet = false;
  bool dry_run = false;
  int threads = 0;
  // Activation rules instead of weight pruning (bsp-format(5), ACTIVATION SPARSITY).
  std::optional<double> act_threshold;
  std::string act_block;
  std::vector<const CLI::Option*> weight_options;  // the options that only weight pruning takes
};


// --act-threshold: sets (or, with 0, removes) the activation rule of the
// selected layers; no weight is pruned.
void run_act(const PruneCliOptions& c) {
  const double t = *c.act_threshold;
  if (!std::isfinite(t) || t < 0) fail_usage("--act-threshold {} is not a finite number >= 0", t);
  for (const CLI::Option* opt : c.weight_options)
    if (opt->count()) fail_usage("{} prunes weights: it does not go with --act-threshold", opt->get_name());
  const std::array<int64_t, 3> block = c.act_block.empty() ? kDefaultActBlock : parse_act_block(c.act_block, "--act-block");
  std::string output;
  if (c.dry_run) {
    if (!c.out.path.empty() || c.out.in_place) fail_usage("--dry-run writes no file: drop -o/--in-place");
  } else {
    output = resolve_output(c.input, c.out);
    if (c.json && output == "-") fail_usage("--json and '-o -' would both write to stdout");
  }
  Model m = read_model(c.input);
  note_rebuilt_weights(m, "prune", /*always=*/false);
  const std::vector<size_t> sel =
      select_layers(m, {c.include_first, c.include_depthwise, c.layers, c.exclude});
  for (size_t i : sel) set_act_rule(m.nodes[i], t, block);
  if (!c.dry_run) write_model(m, output);
  if (c.json) {
    Json j = Json::object();
    j["act_threshold"] = t;
    Json b = Json::array();
    for (int64_t d : block) b.push_back(d);
    j["act_block"] = std::move(b);
    Json layers = Json::array();
    for (size_t i : sel) layers.push_back(m.nodes[i].name);
    j["layers"] = std::move(layers);
    j["output"] = output.empty() ? Json() : Json(output);
    print_json(j);
  } else if (!c.quiet) {
    std::FILE* f = output == "-" ? stderr : stdout;
    for (size_t i : sel) std::fprintf(f, "%s\n", m.nodes[i].name.c_str());
    std::fprintf(f, "\n%s: %zu layer%s, input blocks %lldx%lldx%lld\n",
                 t > 0 ? fmt::format("activation threshold {:g}", t).c_str() : "activation rules removed", sel.size(),
                 sel.size() == 1 ? "" : "s", static_cast<long long>(block[0]), static_cast<long long>(block[1]),
                 static_cast<long long>(block[2]));
  }
}

std::string read_text_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot read density file '{}': {}", path, errno_message(errno));
  std::string text;
  char buf[65536];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, got);
  const bool bad = std::ferror(f);
  const int err = errno;
  std::fclose(f);
  if (bad) fail("cannot read density file '{}': {}", path, errno_message(err));
  return text;
}

std::string fixed4(double v) { return fmt::format("{:.4f}", v); }

Json to_json(const PruneResult& r, const PruneOptions& o, Scope scope, const std::string& output) {
  Json j = Json::object();
  j["pattern"] = o.pattern.str();
  j["scope"] = scope_name(scope);
  j["criterion"] = criterion_name(o.criterion);
  j["target_density"] = o.density ? Json(*o.density) : o.pattern.implied_density() ? Json(*o.pattern.implied_density()) : Json();
  j["density"] = r.density;
  j["l2_kept"] = r.l2_kept;
  j["weights"] = r.weights;
  j["kept"] = r.kept;
  j["output"] = output.empty() ? Json() : Json(output);
  Json layers = Json::array();
  for (const auto& l : r.layers) {
    Json e = Json::object();
    e["name"] = l.name;
    e["op"] = op_name(l.op);
    e["pattern"] = l.pattern.empty() ? Json() : Json(l.pattern);
    e["target_density"] = l.target;
    e["density_before"] = l.density_before;
    e["density"] = l.density;
    e["l2_kept"] = l.l2_kept;
    e["weights"] = l.weights;
    e["kept"] = l.kept;
    e["pruned"] = l.pruned;
    e["note"] = l.note.empty() ? Json() : Json(l.note);
    layers.push_back(std::move(e));
  }
  j["layers"] = std::move(layers);
  Json w = Json::array();
  for (const auto& s : r.warnings) w.push_back(s);
  j["warnings"] = std::move(w);
  return j;
}

void print_report(std::FILE* f, const PruneResult& r, const PruneOptions& o, Scope scope) {
  size_t w = 5;
  for (const auto& l : r.layers) w = std::max(w, l.name.size());
  std::fprintf(f, "%-*s  %-7s  %-14s  %7s  %7s  %7s  %7s\n", static_cast<int>(w), "layer", "op", "pattern", "target",
               "before", "density", "l2 kept");
  for (const auto& l : r.layers) {
    std::fprintf(f, "%-*s  %-7s  %-14s  %7s  %7s  %7s  %7s%s%s\n", static_cast<int>(w), l.name.c_str(), op_name(l.op),
                 l.pattern.empty() ? "-" : l.pattern.c_str(), fixed4(l.target).c_str(),
                 fixed4(l.density_before).c_str(), fixed4(l.density).c_str(),
                 l.pruned ? fixed4(l.l2_kept).c_str() : "-", l.note.empty() ? "" : "  ", l.note.c_str());
  }
  std::string target = o.density ? fixed4(*o.density)
                       : o.pattern.implied_density() ? fixed4(*o.pattern.implied_density())
                                                      : std::string("per layer");
  const auto pruned = std::count_if(r.layers.begin(), r.layers.end(), [](const auto& l) { return l.pruned; });
  const auto left = static_cast<long>(r.layers.size()) - pruned;
  std::string layers = fmt::format("{} layers", pruned);
  if (left) layers += fmt::format(" ({} left as {} was)", left, left == 1 ? "it" : "they");
  std::fprintf(f, "\n%s, %s scope: %s of %s weights kept in %s, density %s (target %s), L2 norm kept %s\n",
               o.pattern.str().c_str(), scope_name(scope), with_commas(r.kept).c_str(), with_commas(r.weights).c_str(),
               layers.c_str(), fixed4(r.density).c_str(), target.c_str(), fixed4(r.l2_kept).c_str());
}

void run_prune(const PruneCliOptions& c) {
  apply_threads(c.threads);
  if (c.act_threshold) return run_act(c);
  if (!c.act_block.empty()) fail_usage("--act-block needs --act-threshold");
  // Everything the command line alone decides, before reading the model.
  PruneOptions o;
  o.pattern = parse_pattern(c.pattern);
  o.density = c.density;
  o.criterion = parse_criterion(c.criterion);
  if (!c.scope.empty()) o.scope = parse_scope(c.scope);
  o.include_first = c.include_first;
  o.include_depthwise = c.include_depthwise;
  o.layers = c.layers;
  o.exclude = c.exclude;
  o.force = c.force;
  std::string output;
  if (c.dry_run) {
    if (!c.out.path.empty() || c.out.in_place) fail_usage("--dry-run writes no file: drop -o/--in-place");
  } else {
    output = resolve_output(c.input, c.out);
    if (c.json && output == "-") fail_usage("--json and '-o -' would both write to stdout");
  }
  if (!c.density_file.empty()) {
    o.density_file_name = c.density_file;
    o.density_file = parse_density_file(read_text_file(c.density_file), c.density_file);
  }
  if (o.density && !(*o.density > 0.0 && *o.density <= 1.0)) fail_usage("--density {} is not in (0, 1]", *o.density);
  const Scope scope = effective_scope(o);

  Model m = read_model(c.input);
  note_rebuilt_weights(m, "prune", /*always=*/false);
  PruneResult r = prune_model(m, o);
  for (const auto& w : r.warnings) std::fprintf(stderr, "bsp prune: warning: %s\n", w.c_str());
  if (!c.dry_run) write_model(m, output);
  if (c.json)
    print_json(to_json(r, o, scope, output));
  else if (!c.quiet)
    print_report(output == "-" ? stderr : stdout, r, o, scope);
}
}  // namespace

Runner setup_prune(CLI::App& sub) {
  auto o = std::make_shared<PruneCliOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  add_output_options(sub, o->out);
  o->weight_options.push_back(sub.add_option("-p,--pattern", o->pattern,
                 "block:RxC (default block:8x8), nm:N:M, tw:G, tvw:G (G default 128), unstructured, channel, block:RxC+nm:N:M, tw:G+nm:N:M")
      ->type_name("P"));
  o->weight_options.push_back(
      sub.add_option("-d,--density", o->density, "fraction of weights kept, in (0, 1] (nm: implied, N/M)")->type_name("D"));
  o->weight_options.push_back(
      sub.add_option("--criterion", o->criterion, "block and channel score: l2 (default), l1, variance")->type_name("C"));
  o->weight_options.push_back(sub.add_option("--scope", o->scope, "layer: every layer at D; global: one threshold, overall D (default: global for tw/tvw, layer otherwise)")
      ->type_name("S"));
  sub.add_flag("--include-first", o->include_first, "also prune the first conv (left dense by default)");
  sub.add_flag("--include-depthwise", o->include_depthwise, "also prune depthwise convs (left dense by default)");
  sub.add_option("--layers", o->layers, "prune only the conv2d/dense layers whose name matches REGEX")->type_name("REGEX");
  sub.add_option("--exclude", o->exclude, "leave the layers whose name matches REGEX as they are")->type_name("REGEX");
  o->weight_options.push_back(
      sub.add_option("--density-file", o->density_file, "per-layer densities: 'LAYER DENSITY' lines, '#' comments")
          ->type_name("FILE"));
  o->weight_options.push_back(
      sub.add_flag("--force", o->force, "replace masks of another pattern family (or grid the new one cannot nest in)"));
  sub.add_option("--act-threshold", o->act_threshold,
                 "instead of pruning weights: zero each input block of the selected layers whose values are all "
                 "below T in magnitude (0 removes the rule)")
      ->type_name("T");
  sub.add_option("--act-block", o->act_block, "the activation block of --act-threshold, BHxBWxBC (default 1x8x8)")
      ->type_name("B");
  sub.add_flag("--json", o->json, "print the report as JSON (schema in bsp-prune(1))");
  sub.add_flag("-n,--dry-run", o->dry_run, "prune in memory and report, write no file");
  add_threads_option(sub, o->threads);
  return [o] {
    o->quiet = quiet();
    run_prune(*o);
  };
}

}  // namespace bsp::cli
