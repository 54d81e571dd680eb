#include "sparsity/prune.hpp"

#include <cerrno>
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>

#include "sparsity/mask.hpp"
#include "sparsity/nm.hpp"
#include "sparsity/prune_impl.hpp"

namespace bsp {

using prune_detail::LayerWork;

namespace {

bool has_blocks(PatternFamily f) { return f == PatternFamily::Block || f == PatternFamily::Channel; }

// Can a new mask of pattern p be chosen inside `old` and still have p's
// structure? Same family, and a grid the old one nests in.
bool nests_in(const Mask& old, const Pattern& p) {
  if (family_of(old.pattern) != p.family) return false;
  switch (p.family) {
    case PatternFamily::Block:
      return old.is_block() && old.block_rows % p.block_rows == 0 && old.block_cols % p.block_cols == 0;
    case PatternFamily::TW:
    case PatternFamily::TVW:
      try {
        return old.is_tiled() && parse_pattern(old.pattern).tile == p.tile;
      } catch (const Error&) {
        return false;
      }
    default:
      return !old.is_block() && !old.is_tiled();
  }
}

struct Norms {
  double sq = 0;
  int64_t nonzero = 0;
  bool finite = true;
};

// Sums over fixed chunks added in order, so the result does not depend on
// the thread count.
Norms norms(const Tensor& w) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t n = static_cast<int64_t>(w.size()), chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> sq(static_cast<size_t>(chunks));
  int64_t nz = 0, bad = 0;
  const float* p = w.data();
#pragma omp parallel for if (chunks > 1) reduction(+ : nz, bad) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    // Eight independent lanes so that the loop vectorises without reordering
    // one sum; the lanes are added in a fixed order.
    double s[8] = {};
    int64_t z = 0, b = 0;
    const int64_t i0 = c * kChunk, i1 = std::min(n, i0 + kChunk);
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8)
      for (int j = 0; j < 8; ++j) {
        const float v = p[i + j];
        s[j] += static_cast<double>(v) * v;
        z += v != 0.0f;
        b += (std::bit_cast<uint32_t>(v) & 0x7f800000u) == 0x7f800000u;  // inf or NaN
      }
    for (; i < i1; ++i) {
      s[0] += static_cast<double>(p[i]) * p[i];
      z += p[i] != 0.0f;
      b += !std::isfinite(p[i]);
    }
    sq[static_cast<size_t>(c)] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    nz += z;
    bad += b;
  }
  Norms r;
  for (double v : sq) r.sq += v;
  r.nonzero = nz;
  r.finite = bad == 0;
  return r;
}

void check_density(double d, const Pattern& p, const std::string& where) {
  if (!(d > 0.0 && d <= 1.0)) fail_usage("{} {} is not in (0, 1]", where, d);
  if (p.family == PatternFamily::TVW && d > 0.5)
    fail_usage("{} {} is above 0.5, the most {} keeps (2 of every 4 weights in its tiles)", where, d, p.str());
  if (p.then_nm && d > p.max_density() + 1e-12)
    fail_usage("{} {} is above {}, the most {} keeps ({} of every {} weights)", where, d, p.max_density(), p.str(), p.n,
               p.m);
}

}  // namespace

PruneResult prune_layers(Model& m, const std::vector<std::pair<size_t, double>>& layer_densities,
                         const PruneSettings& s) {
  std::vector<std::pair<Node*, double>> nodes;
  for (const auto& [idx, d] : layer_densities) {
    if (idx >= m.nodes.size()) fail("internal: layer index {} out of range", idx);
    nodes.emplace_back(&m.nodes[idx], d);
  }
  return prune_nodes(nodes, s);
}

namespace {

// Checks layer n against the pattern and records it in res.layers; returns
// its work item, or nullopt when it is left as it was (N:M on a layer whose
// input channels are not a multiple of M).
std::optional<LayerWork> plan_layer(Node& n, double density, const PruneSettings& s, PruneResult& res) {
  const Pattern& p = s.pattern;
  if (!op_has_weight(n.op)) fail_usage("layer '{}' is a {}, not a conv2d or dense layer", n.name, op_name(n.op));
  if (p.family != PatternFamily::NM) check_density(density, p, fmt::format("layer '{}': density", n.name));
  const Tensor& w = n.param("weight");
  Norms before = norms(w);
  if (!before.finite) fail("layer '{}' has non-finite weights (NaN or infinity)", n.name);
  LayerPruneResult r;
  r.name = n.name;
  r.op = n.op;
  r.target = p.implied_density().value_or(density);
  r.weights = static_cast<int64_t>(w.size());
  r.density_before = n.mask ? n.mask->density : static_cast<double>(before.nonzero) / static_cast<double>(r.weights);
  r.l2_kept = before.sq;  // the squared norm before, until the end
  LayerWork l;
  l.node = &n;
  l.w = &w;
  l.density = r.target;
  l.cout = w.dim(0);
  l.cin = w.shape().back();
  l.window = r.weights / (l.cout * l.cin);
  if (n.mask) {
    if (nests_in(*n.mask, p))
      l.old = &*n.mask;
    else if (!s.force)
      fail_usage("layer '{}' has a {} mask: {} cannot nest in it (use --force to replace it)", n.name, n.mask->pattern,
                 p.str());
  }
  std::optional<LayerWork> out;
  if ((p.family == PatternFamily::NM || p.then_nm) && l.cin % p.m != 0) {
    r.pruned = false;
    r.pattern = n.mask ? n.mask->pattern : "";
    r.density = r.density_before;
    r.kept = n.mask ? static_cast<int64_t>(std::llround(n.mask->density * static_cast<double>(r.weights)))
                    : before.nonzero;
    r.note = fmt::format("input channels ({}) not a multiple of {}: left as it was", l.cin, p.m);
    res.warnings.push_back(fmt::format("layer '{}' left as it was: {} input channels are not a multiple of M = {}",
                                       n.name, l.cin, p.m));
  } else {
    out = std::move(l);
  }
  res.layers.push_back(std::move(r));
  return out;
}

// A combined pattern's second step: N:M along Cin among the weights the
// outer pattern kept. The mask becomes an element mask (a tile mask keeps
// its tiles: every weight kept still lies in its tile's rows).
void then_nm(LayerWork& l, const Pattern& p) {
  const Array<uint8_t> outer = element_mask(&l.result, l.w->shape());
  Mask r = std::move(l.result);
  r.block_rows = r.block_cols = 0;
  r.bits = Array<uint8_t>(l.w->shape());
  nm_mask(l.w->data(), l.cout * l.window, l.cin, 1, p.n, p.m, outer.data(), r.bits.data());
  r.density = static_cast<double>(prune_detail::count_kept(r.bits)) / static_cast<double>(l.numel());
  l.result = std::move(r);
}

// Chooses every work item's new mask (LayerWork::result) by the pattern; a
// combined one by its outer pattern at density D * M / N, then N:M inside.
void choose_masks(std::vector<LayerWork>& work, const PruneSettings& s) {
  if (s.pattern.then_nm) {
    PruneSettings outer = s;
    outer.pattern = s.pattern.outer();
    const size_t n = work.size();
    std::vector<double> target(n), at(n);
    for (size_t i = 0; i < n; ++i) {
      target[i] = work[i].density;
      at[i] = std::min(1.0, target[i] * static_cast<double>(s.pattern.m) / static_cast<double>(s.pattern.n));
    }
    // Blocks are whole N:M groups, so D * M / N lands on D. Tile rows leave
    // some groups with fewer than N, where the N:M step removes nothing: a
    // few passes scale the outer density by target / reached (per layer, or
    // overall under one global threshold) until within 1%.
    for (int pass = 0;; ++pass) {
      for (size_t i = 0; i < n; ++i) work[i].density = at[i];
      choose_masks(work, outer);
      for (auto& l : work) then_nm(l, s.pattern);
      if (s.pattern.family != PatternFamily::TW || pass == 5) return;
      double kept = 0, want = 0, total = 0;
      for (size_t i = 0; i < n; ++i) {
        const double numel = static_cast<double>(work[i].numel());
        kept += work[i].result.density * numel;
        want += target[i] * numel;
        total += numel;
      }
      bool close = true;
      for (size_t i = 0; i < n; ++i) {
        const double reached = s.scope == Scope::Global ? kept / total : work[i].result.density;
        const double goal = s.scope == Scope::Global ? want / total : target[i];
        if (reached <= 0 || std::fabs(reached - goal) <= 0.01 * goal) continue;
        const double next = std::min(1.0, at[i] * goal / reached);
        close &= next == at[i];
        at[i] = next;
      }
      if (close) return;
    }
  }
  const Pattern& p = s.pattern;
  switch (p.family) {
    case PatternFamily::Block: prune_detail::choose_blocks(work, p, s.criterion, s.scope); break;
    case PatternFamily::Channel: prune_detail::choose_channels(work, s.criterion, s.scope); break;
    case PatternFamily::Unstructured: prune_detail::choose_unstructured(work, s.scope); break;
    case PatternFamily::NM: prune_detail::choose_nm(work, p); break;
    case PatternFamily::TW:
    case PatternFamily::TVW: prune_detail::choose_tiles(work, p, s.scope); break;
  }
}

}  // namespace

PruneResult prune_nodes(const std::vector<std::pair<Node*, double>>& layer_densities, const PruneSettings& s) {
  const Pattern& p = s.pattern;
  if (s.criterion != Criterion::L2 && !has_blocks(p.family))
    fail_usage("criterion '{}' applies to block and channel patterns only ({} has its own score)",
               criterion_name(s.criterion), p.str());
  if (p.family == PatternFamily::NM && s.scope == Scope::Global)
    fail_usage("{} keeps {} of every {} weights in every layer: it has no global scope", p.str(), p.n, p.m);

  PruneResult res;
  std::vector<LayerWork> work;
  std::vector<size_t> work_result;  // index into res.layers of each work item
  std::set<const Node*> seen;
  // Check everything before touching any layer.
  for (const auto& [node, density] : layer_densities) {
    if (!seen.insert(node).second) fail("internal: layer '{}' listed twice", node->name);
    const size_t at = res.layers.size();
    if (std::optional<LayerWork> l = plan_layer(*node, density, s, res)) {
      work.push_back(std::move(*l));
      work_result.push_back(at);
    }
  }
  if (layer_densities.empty()) fail_usage("no layer to prune");

  // Weights a mask already prunes are zero from here on (also for masks that
  // --force replaces: their zeros stay and score lowest).
  for (auto& l : work) {
    Node& n = *l.node;
    if (n.mask) apply_mask(n);
  }
  if (!work.empty()) choose_masks(work, s);

  double sq_before = 0, sq_after = 0;
  for (size_t i = 0; i < work.size(); ++i) {
    LayerWork& l = work[i];
    Node& n = *l.node;
    l.result.pattern = p.str();
    n.mask = std::move(l.result);
    double after = 0;
    apply_mask(n, &after);
    LayerPruneResult& r = res.layers[work_result[i]];
    const double before = r.l2_kept;
    r.l2_kept = before > 0 ? std::sqrt(after / before) : 1.0;
    r.pattern = n.mask->pattern;
    r.density = n.mask->density;
    r.kept = static_cast<int64_t>(std::llround(r.density * static_cast<double>(r.weights)));
    if (r.kept == 0)
      res.warnings.push_back(fmt::format("layer '{}' is pruned entirely: its output is constant", n.name));
    res.weights += r.weights;
    res.kept += r.kept;
    sq_before += before;
    sq_after += after;
  }
  res.density = res.weights ? static_cast<double>(res.kept) / static_cast<double>(res.weights) : 1.0;
  res.l2_kept = sq_before > 0 ? std::sqrt(sq_after / sq_before) : 1.0;
  return res;
}

LayerPruneResult prune_layer(Node& n, const Pattern& p, double density, Criterion c, bool force) {
  PruneResult r = prune_nodes({{&n, density}}, PruneSettings{p, c, Scope::Layer, force});
  return std::move(r.layers[0]);
}

bool is_depthwise(const Node& n) {
  return n.op == Op::Conv2d && n.attrs.get_int("groups", 1) > 1 && n.param("weight").dim(3) == 1;
}

std::vector<size_t> select_layers(const Model& m, const LayerSelection& s) {
  auto compile = [](const std::string& re, const char* opt) {
    try {
      return std::regex(re, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      fail_usage("bad {} regex '{}': {}", opt, re, e.what());
    }
  };
  std::optional<std::regex> want, drop;
  if (s.layers) want = compile(*s.layers, "--layers");
  if (s.exclude) drop = compile(*s.exclude, "--exclude");

  std::vector<size_t> all;
  std::optional<size_t> first_conv;
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    if (!op_has_weight(m.nodes[i].op)) continue;
    if (!first_conv && m.nodes[i].op == Op::Conv2d) first_conv = i;
    all.push_back(i);
  }
  if (all.empty()) fail("the model has no conv2d or dense layer to prune");

  std::vector<size_t> sel;
  bool first_matched = false;
  size_t depthwise_matched = 0;
  for (size_t i : all) {
    const Node& n = m.nodes[i];
    if (want && !std::regex_search(n.name, *want)) continue;
    if (i == first_conv && !s.include_first) {
      first_matched = true;
      continue;
    }
    if (!s.include_depthwise && is_depthwise(n)) {
      ++depthwise_matched;
      continue;
    }
    sel.push_back(i);
  }
  if (sel.empty()) {
    const std::string what = s.layers ? fmt::format("--layers '{}' selects", *s.layers) : std::string("the model has");
    if (depthwise_matched)
      fail_usage("{} only depthwise convs{}, which stay dense without --include-depthwise", what,
                 first_matched ? " and the first conv" : "");
    if (first_matched)
      fail_usage("{} only the first conv '{}', which stays dense without --include-first", what,
                 m.nodes[*first_conv].name);
    fail_usage("--layers '{}' selects no conv2d or dense layer", *s.layers);
  }
  if (drop) {
    std::vector<size_t> kept;
    for (size_t i : sel)
      if (!std::regex_search(m.nodes[i].name, *drop)) kept.push_back(i);
    if (kept.empty()) fail_usage("--exclude '{}' leaves no layer to prune", *s.exclude);
    sel = std::move(kept);
  }
  return sel;
}

Scope effective_scope(const PruneOptions& o) {
  if (o.scope) return *o.scope;
  const bool tiles = o.pattern.family == PatternFamily::TW || o.pattern.family == PatternFamily::TVW;
  return tiles && o.density_file.empty() ? Scope::Global : Scope::Layer;
}

std::vector<std::pair<size_t, double>> plan_layers(const Model& m, const PruneOptions& o, Scope scope,
                                                   std::vector<std::string>& warnings) {
  const Pattern& p = o.pattern;
  const bool nm = p.family == PatternFamily::NM;
  if (nm) {
    const double implied = *p.implied_density();
    if (o.density && std::fabs(*o.density - implied) > 1e-9)
      fail_usage("--density {} contradicts {}, which keeps {} of every {} weights (density {})", *o.density, p.str(),
                 p.n, p.m, implied);
    if (!o.density_file.empty())
      fail_usage("--density-file does not apply to {}: its density is fixed ({} of every {})", p.str(), p.n, p.m);
  } else {
    if (o.density) check_density(*o.density, p, "--density");
    if (!o.density && o.density_file.empty()) fail_usage("--density is required with {} (or give --density-file)", p.str());
  }
  if (!o.density_file.empty() && scope == Scope::Global)
    fail_usage("--density-file gives per-layer densities: it needs --scope layer");

  std::vector<size_t> sel = select_layers(m, LayerSelection{o.include_first, o.include_depthwise, o.layers, o.exclude});
  if (o.density_file.empty()) {
    std::vector<std::pair<size_t, double>> plan;
    const double d = nm ? *p.implied_density() : *o.density;
    for (size_t i : sel) plan.emplace_back(i, d);
    return plan;
  }
  std::map<size_t, double> from_file;
  const std::set<size_t> selected(sel.begin(), sel.end());
  for (const auto& [name, d] : o.density_file) {
    const Node* n = m.find(name);
    if (!n || !op_has_weight(n->op))
      fail_usage("density file '{}' names '{}', which is not a conv2d or dense layer of the model", o.density_file_name,
                 name);
    const size_t idx = m.index_of(name);
    if (!selected.count(idx)) {
      warnings.push_back(fmt::format("density file '{}' names '{}', which is not selected: left as it was",
                                     o.density_file_name, name));
      continue;
    }
    check_density(d, p, fmt::format("density file '{}': layer '{}' density", o.density_file_name, name));
    from_file[idx] = d;
  }
  std::vector<std::pair<size_t, double>> plan;
  for (size_t i : sel) {
    auto it = from_file.find(i);
    if (it != from_file.end())
      plan.emplace_back(i, it->second);
    else if (o.density)
      plan.emplace_back(i, *o.density);
  }
  if (plan.empty()) fail_usage("density file '{}' names none of the selected layers", o.density_file_name);
  return plan;
}

PruneResult prune_model(Model& m, const PruneOptions& o) {
  const Scope scope = effective_scope(o);
  std::vector<std::string> warnings;
  auto plan = plan_layers(m, o, scope, warnings);
  PruneResult r = prune_layers(m, plan, PruneSettings{o.pattern, o.criterion, scope, o.force});
  r.warnings.insert(r.warnings.begin(), warnings.begin(), warnings.end());
  return r;
}

std::vector<std::pair<std::string, double>> parse_density_file(std::string_view text, const std::string& display) {
  std::vector<std::pair<std::string, double>> out;
  std::set<std::string> names;
  size_t pos = 0;
  for (int line_no = 1; pos <= text.size(); ++line_no) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(pos, end - pos));
    pos = end + 1;
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::vector<std::string> fields;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      size_t j = i;
      while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      if (j > i) fields.push_back(line.substr(i, j - i));
      i = j;
    }
    if (fields.empty()) continue;
    if (fields.size() != 2)
      fail_usage("density file '{}' line {}: expected 'LAYER DENSITY', got {} fields", display, line_no,
                 fields.size());
    const std::string& num = fields[1];
    char* stop = nullptr;
    errno = 0;
    const double d = std::strtod(num.c_str(), &stop);
    if (stop != num.c_str() + num.size() || errno == ERANGE || !std::isfinite(d))
      fail_usage("density file '{}' line {}: '{}' is not a number", display, line_no, num);
    if (!(d > 0.0 && d <= 1.0))
      fail_usage("density file '{}' line {}: density {} is not in (0, 1]", display, line_no, num);
    if (!names.insert(fields[0]).second)
      fail_usage("density file '{}' line {}: layer '{}' is listed twice", display, line_no, fields[0]);
    out.emplace_back(fields[0], d);
  }
  if (out.empty()) fail_usage("density file '{}' lists no layer", display);
  return out;
}

}  // namespace bsp
