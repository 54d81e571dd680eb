#include "core/model.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <unordered_map>

#include "core/act_sparsity.hpp"
#include "core/checked.hpp"
#include "core/finite.hpp"
#include "core/op_table.hpp"
#include "core/shapes.hpp"
#include "sparsity/pattern.hpp"

namespace bsp {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

const char* op_name(Op op) {
  for (const OpEntry& e : op_table())
    if (e.op == op) return e.name;
  return "?";
}

std::optional<Op> op_from_name(std::string_view name) {
  for (const OpEntry& e : op_table())
    if (name == e.name) return e.op;
  return std::nullopt;
}

bool op_has_weight(Op op) { return op_entry(op).weighted; }

// ---- attributes ----

namespace {
template <typename T>
const T* attr_as(const std::map<std::string, AttrValue>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return nullptr;
  const T* v = std::get_if<T>(&it->second);
  if (!v) fail("attribute '{}' has the wrong type", key);
  return v;
}
}  // namespace

int64_t Attrs::get_int(const std::string& key, std::optional<int64_t> def) const {
  if (auto* v = attr_as<int64_t>(m_, key)) return *v;
  if (def) return *def;
  fail("missing attribute '{}'", key);
}
double Attrs::get_double(const std::string& key, std::optional<double> def) const {
  auto it = m_.find(key);
  if (it != m_.end()) {
    if (auto* d = std::get_if<double>(&it->second)) return *d;
    if (auto* i = std::get_if<int64_t>(&it->second)) return static_cast<double>(*i);
    fail("attribute '{}' has the wrong type", key);
  }
  if (def) return *def;
  fail("missing attribute '{}'", key);
}
std::string Attrs::get_string(const std::string& key, std::optional<std::string> def) const {
  if (auto* v = attr_as<std::string>(m_, key)) return *v;
  if (def) return *def;
  fail("missing attribute '{}'", key);
}
std::vector<int64_t> Attrs::get_ints(const std::string& key, std::optional<std::vector<int64_t>> def) const {
  auto it = m_.find(key);
  if (it != m_.end()) {
    if (auto* v = std::get_if<std::vector<int64_t>>(&it->second)) return *v;
    if (auto* i = std::get_if<int64_t>(&it->second)) return {*i};
    fail("attribute '{}' has the wrong type", key);
  }
  if (def) return *def;
  fail("missing attribute '{}'", key);
}

// ---- nodes and models ----

const Tensor& Node::param(const std::string& p) const {
  auto it = params.find(p);
  if (it == params.end()) fail("node '{}': missing parameter '{}'", name, p);
  return it->second;
}
Tensor& Node::param(const std::string& p) {
  auto it = params.find(p);
  if (it == params.end()) fail("node '{}': missing parameter '{}'", name, p);
  return it->second;
}

const Node* Model::find(std::string_view name) const {
  for (const Node& n : nodes)
    if (n.name == name) return &n;
  return nullptr;
}
Node* Model::find(std::string_view name) {
  for (Node& n : nodes)
    if (n.name == name) return &n;
  return nullptr;
}
size_t Model::index_of(std::string_view name) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].name == name) return i;
  fail("no node named '{}'", name);
}
const Node& Model::input() const {
  if (nodes.empty() || nodes[0].op != Op::Input) fail("model has no input node");
  return nodes[0];
}
Shape Model::input_shape() const { return input().attrs.get_ints("shape"); }

namespace {
// A tile-wise mask's structure (model.hpp): column_tile [N] in -1..tiles-1
// with tiles numbered in order of their first column, tile_rows [tiles, K],
// and every kept bit inside a kept row of its column's tile.
void validate_tiles(const Node& n, const Tensor& w, const Mask& m) {
  if (m.is_block()) fail("node '{}': a block mask cannot have tiles", n.name);
  const int64_t cols = w.dim(0), k = static_cast<int64_t>(w.size()) / cols;
  if (m.column_tile.shape() != Shape{cols})
    fail("node '{}': mask_column_tile has shape {}, expected [{}]", n.name, shape_str(m.column_tile.shape()), cols);
  if (m.tile_rows.rank() != 2 || m.tile_rows.dim(1) != k)
    fail("node '{}': mask_tile_rows has shape {}, expected [tiles, {}]", n.name, shape_str(m.tile_rows.shape()), k);
  int64_t next = 0;  // tiles appear in increasing order of their first column
  for (int64_t c = 0; c < cols; ++c) {
    const int32_t t = m.column_tile[static_cast<size_t>(c)];
    if (t < -1 || t >= m.tiles() || t > next)
      fail("node '{}': mask_column_tile[{}] = {} is not a valid tile", n.name, c, t);
    if (t == next) ++next;
    const uint8_t* bits = m.bits.data() + c * k;
    const uint8_t* rows = t >= 0 ? m.tile_rows.data() + t * k : nullptr;
    for (int64_t r = 0; r < k; ++r)
      if (bits[r] && (!rows || !rows[r]))
        fail("node '{}': mask keeps weight ({}, {}) outside the rows of its tile", n.name, c, r);
  }
  if (next != m.tiles()) fail("node '{}': mask_tile_rows has {} tiles but only {} are used", n.name, m.tiles(), next);
  for (int64_t t = 0; t < m.tiles(); ++t) {
    const uint8_t* rows = m.tile_rows.data() + t * k;
    int64_t kept = 0;
    for (int64_t r = 0; r < k; ++r) {
      if (rows[r] > 1) fail("node '{}': mask_tile_rows[{}, {}] = {}: only 0 and 1", n.name, t, r, rows[r]);
      kept += rows[r];
    }
    if (!kept) fail("node '{}': tile {} of the mask keeps no row", n.name, t);
  }
  // tw:G and tvw:G: a tile has at most G columns.
  long g = 0;
  if (std::sscanf(m.pattern.c_str(), "tw:%ld", &g) == 1 || std::sscanf(m.pattern.c_str(), "tvw:%ld", &g) == 1) {
    std::vector<int64_t> width(static_cast<size_t>(m.tiles()), 0);
    for (int64_t c = 0; c < cols; ++c)
      if (const int32_t t = m.column_tile[static_cast<size_t>(c)]; t >= 0 && ++width[static_cast<size_t>(t)] > g)
        fail("node '{}': tile {} of the mask has more than the pattern's {} columns", n.name, t, g);
  }
}

// What a mask says of its weight (man/bsp-format.5, MASKS): its entries are
// 0 or 1, and every weight it prunes is stored as zero (+0 or -0). Anything
// else makes the stages disagree (the trainer and the sparse formats skip a
// pruned weight, the dense kernels use it), so it is an error, not repaired.
// One pass over the bits and one over the weight, counting (no early exit)
// so that both loops vectorise; the first offender is found only on failure.
void check_mask_content(const Node& n, const Tensor& w, const Mask& m) {
  const uint8_t* bits = m.bits.data();
  const auto nb = static_cast<int64_t>(m.bits.size());
  int64_t not01 = 0;
  for (int64_t i = 0; i < nb; ++i) not01 += bits[i] > 1;
  if (not01)
    for (int64_t i = 0; i < nb; ++i)
      if (bits[i] > 1) fail("node '{}': mask holds {} at index {}: only 0 and 1", n.name, bits[i], i);
  const float* v = w.data();
  const auto nw = static_cast<int64_t>(w.size());
  auto nonzero = [](float x) { return (std::bit_cast<uint32_t>(x) & 0x7fffffffu) != 0; };
  auto report = [&](int64_t i) {
    fail("node '{}': weight {} at index {} is pruned by the mask but not zero (pruned weights are stored as zeros)",
         n.name, v[i], i);
  };
  // The scans OR together the bits of every pruned weight (no compare, no
  // count: a few vector operations per 4 weights); any magnitude bit left
  // is a nonzero pruned weight.
  auto pruned_bits = [](const uint32_t* zero_mask, const float* x, int64_t n) {
    uint32_t acc = 0;
    for (int64_t i = 0; i < n; ++i) acc |= std::bit_cast<uint32_t>(x[i]) & zero_mask[i];
    return acc;
  };
  uint32_t bad = 0;
  if (!m.is_block()) {
    // bits[i] - 1 is all ones under a 0, zero under a 1 (only 0 and 1 here).
    constexpr int64_t kRun = int64_t{1} << 16;
#pragma omp parallel for reduction(| : bad) schedule(static) if (nw > (int64_t{1} << 20))
    for (int64_t r = 0; r < nw; r += kRun)
      for (int64_t i = r; i < std::min(r + kRun, nw); ++i)
        bad |= std::bit_cast<uint32_t>(v[i]) & (static_cast<uint32_t>(bits[i]) - 1u);
    if (bad & 0x7fffffffu)
      for (int64_t i = 0; i < nw; ++i)
        if (bits[i] == 0 && nonzero(v[i])) report(i);
    return;
  }
  // A block mask: bit (o / R, i / C) covers weight [o, y, x, i]. Each block
  // row's bits are spread over Cin once (as 32-bit masks: magnitude bits
  // where pruned), then every tap of its output channels compared.
  const int64_t cout = w.dim(0), cin = w.shape().back(), taps = nw / (cout * cin);
  const int64_t brows = m.bits.dim(0), bcols = m.bits.dim(1);
#pragma omp parallel reduction(| : bad) if (nw > (int64_t{1} << 20))
  {
    std::vector<uint32_t> zero_mask(static_cast<size_t>(cin));
#pragma omp for schedule(static)
    for (int64_t br = 0; br < brows; ++br) {
      const uint8_t* row = bits + br * bcols;
      for (int64_t b = 0; b < bcols; ++b) {
        const int64_t i0 = b * m.block_cols;
        std::fill_n(zero_mask.data() + i0, std::min(m.block_cols, cin - i0), row[b] ? 0u : 0x7fffffffu);
      }
      for (int64_t o = br * m.block_rows; o < std::min(cout, (br + 1) * m.block_rows); ++o) {
        const float* x = v + o * taps * cin;
        for (int64_t t = 0; t < taps; ++t, x += cin) bad |= pruned_bits(zero_mask.data(), x, cin);
      }
    }
  }
  if (bad)
    for (int64_t j = 0; j < nw; ++j)
      if (!bits[(j / (taps * cin)) / m.block_rows * bcols + (j % cin) / m.block_cols] && nonzero(v[j])) report(j);
}

// The mask's pattern string (man/bsp-format.5, MASKS): it must name a
// pattern, and agree with the kind of mask: block:RxC a block mask of block
// [R, C], every other pattern an element mask; tile datasets only with tw:G
// and tvw:G. An nm:N:M mask needs Cin (per group) a multiple of M, as prune
// never gives the pattern to another layer. Returns the parsed pattern.
Pattern check_mask_pattern(const Node& n, const Tensor& w, const Mask& m) {
  Pattern p;
  try {
    p = parse_pattern(m.pattern);
  } catch (const Error& e) {  // a usage error of prune's, a runtime one of the file's
    fail("node '{}': mask pattern: {}", n.name, e.what());
  }
  if (p.family == PatternFamily::Block && !p.then_nm) {
    if (!m.is_block())
      fail("node '{}': mask pattern '{}' needs a block mask (attribute block = [{}, {}])", n.name, m.pattern,
           p.block_rows, p.block_cols);
    if (m.block_rows != p.block_rows || m.block_cols != p.block_cols)
      fail("node '{}': mask pattern '{}' but its block is [{}, {}]", n.name, m.pattern, m.block_rows, m.block_cols);
  } else if (m.is_block()) {
    fail("node '{}': mask pattern '{}' on a block mask (block [{}, {}]): only a block:RxC pattern has blocks", n.name,
         m.pattern, m.block_rows, m.block_cols);
  }
  const bool tiled = p.family == PatternFamily::TW || p.family == PatternFamily::TVW;
  if (!tiled && (m.is_tiled() || !m.tile_rows.empty()))
    fail("node '{}': mask pattern '{}' has tiles (mask_column_tile): only tw:G and tvw:G do", n.name, m.pattern);
  if ((p.family == PatternFamily::NM || p.then_nm) && w.shape().back() % p.m != 0)
    fail("node '{}': mask pattern '{}' on a layer of {} input channels, not a multiple of M = {}", n.name, m.pattern,
         w.shape().back(), p.m);
  return p;
}

// The structure an element mask's pattern promises, once its entries are
// known to be 0 or 1: nm:N:M at most N ones in every M consecutive input
// channels (the groups are the flat mask cut every M entries, Cin being a
// multiple of M); channel every output channel's entries all equal. One
// counting pass over the bits, only for these two patterns.
void check_mask_structure(const Node& n, const Tensor& w, const Mask& m, const Pattern& p) {
  const uint8_t* bits = m.bits.data();
  const auto nb = static_cast<int64_t>(m.bits.size());
  if (p.family == PatternFamily::NM || p.then_nm) {  // a combined pattern's N:M part too
    const int64_t groups = nb / p.m;
    int64_t over = 0;
    for (int64_t g = 0; g < groups; ++g) {
      int64_t ones = 0;
      for (int64_t j = 0; j < p.m; ++j) ones += bits[g * p.m + j];
      over += ones > p.n;
    }
    if (over)
      for (int64_t g = 0; g < groups; ++g) {
        int64_t ones = 0;
        for (int64_t j = 0; j < p.m; ++j) ones += bits[g * p.m + j];
        if (ones > p.n)
          fail("node '{}': mask pattern '{}' but the group of {} input channels at index {} keeps {}", n.name,
               m.pattern, p.m, g * p.m, ones);
      }
  } else if (p.family == PatternFamily::Channel) {
    const int64_t cout = w.dim(0), k = nb / cout;
    int64_t mixed = 0;
    for (int64_t o = 0; o < cout; ++o) {
      const uint8_t* row = bits + o * k;
      int64_t ones = 0;
      for (int64_t i = 0; i < k; ++i) ones += row[i];
      mixed += ones != 0 && ones != k;
    }
    if (mixed)
      for (int64_t o = 0; o < cout; ++o) {
        const uint8_t* row = bits + o * k;
        for (int64_t i = 1; i < k; ++i)
          if (row[i] != row[0])
            fail("node '{}': mask pattern 'channel' but output channel {} is only partly kept (index {})", n.name,
                 o, o * k + i);
      }
  }
}

// Parameters each op must have (and may have): the op table's lists.
void check_params(const Node& n) {
  const OpEntry& e = op_entry(n.op);
  auto listed = [](const auto& names, const std::string& k) {
    for (const char* p : names)
      if (p && k == p) return true;
    return false;
  };
  for (const char* r : e.required)
    if (r && !n.has_param(r)) fail("node '{}': {} needs parameter '{}'", n.name, op_name(n.op), r);
  for (const auto& [k, t] : n.params) {
    (void)t;
    if (!listed(e.required, k) && !listed(e.optional, k))
      fail("node '{}': unexpected parameter '{}' for {}", n.name, k, op_name(n.op));
  }
  if (n.mask) {
    if (!op_has_weight(n.op)) fail("node '{}': only conv2d and dense layers can carry a mask", n.name);
    const Tensor& w = n.param("weight");
    const Mask& m = *n.mask;
    const Pattern p = check_mask_pattern(n, w, m);
    if (m.is_block()) {
      int64_t cin = w.shape().back();
      Shape want{(w.dim(0) + m.block_rows - 1) / m.block_rows, (cin + m.block_cols - 1) / m.block_cols};
      if (m.bits.shape() != want)
        fail("node '{}': block mask has shape {}, expected {}", n.name, shape_str(m.bits.shape()), shape_str(want));
    } else if (m.bits.shape() != w.shape()) {
      fail("node '{}': mask has shape {}, weight {}", n.name, shape_str(m.bits.shape()), shape_str(w.shape()));
    }
    if (!(m.density >= 0.0 && m.density <= 1.0)) fail("node '{}': mask density {} is not in [0, 1]", n.name, m.density);
    if (m.is_tiled() || !m.tile_rows.empty()) validate_tiles(n, w, m);
    check_mask_content(n, w, m);
    check_mask_structure(n, w, m, p);
  }
}
}  // namespace

std::optional<size_t> find_nonfinite(const float* v, size_t count) {
  const auto n = static_cast<int64_t>(count);
  const int64_t i = first_nonfinite(v, n);  // core/finite.hpp: vectorised, both cores for big arrays
  if (i == n) return std::nullopt;
  return static_cast<size_t>(i);
}

void check_finite_values(const std::string& node, const std::string& param, const float* v, size_t first,
                         size_t count) {
  if (auto i = find_nonfinite(v + first, count))
    fail("node '{}': parameter '{}' holds {} at index {}", node, param, v[first + *i], first + *i);
}

namespace {

// The finiteness policy for a model's values (man/bsp-format.5, VALUES):
// every parameter is finite; a batchnorm's variance is >= 0 and its eps
// finite and > 0, so that var + eps > 0 in every channel.
void check_values(const Node& n, bool scan_params) {
  if (scan_params)
    for (const auto& [name, t] : n.params) check_finite_values(n.name, name, t.data(), 0, t.size());
  if (n.op == Op::BatchNorm) {
    const double eps = n.attrs.get_double("eps", 1e-5);
    if (!std::isfinite(eps) || eps <= 0) fail("node '{}': batchnorm eps {} is not a positive number", n.name, eps);
    if (n.has_param("var")) {
      const Tensor& var = n.param("var");
      for (size_t c = 0; c < var.size(); ++c)
        if (var[c] < 0) fail("node '{}': batchnorm variance {} of channel {} is negative", n.name, var[c], c);
    }
  }
}

}  // namespace

namespace {

// The memory and work bounds of bsp-format(5), LIMITS, over the whole model
// (each activation's is checked as its shape is inferred).
void check_param_total(const Model& m) {
  int64_t total = 0;
  for (const Node& n : m.nodes)
    for (const auto& [k, t] : n.params) total = checked_add(total, static_cast<int64_t>(t.size()), "the parameter count");
  if (total > limits::kMaxParams)
    fail("model has {} parameters, {}, above bsp's limit of {} (bsp-format(5), LIMITS)", total,
         human_bytes(static_cast<double>(total) * sizeof(float)),
         human_bytes(static_cast<double>(limits::kMaxParams) * sizeof(float)));
}

void check_mac_total(const Model& m, const std::vector<Shape>& shapes) {
  int64_t total = 0;
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const int64_t macs = node_macs(m.nodes[i], shapes[i]);
    if (!add_ok(total, macs, total) || total > limits::kMaxMacs)
      fail("node '{}': the model needs more than {} multiply-accumulates per image, above bsp's limit (bsp-format(5), LIMITS)",
           m.nodes[i].name, limits::kMaxMacs);
  }
}

}  // namespace

namespace {

// The input's norm_mean / norm_std (bsp-format(5), OPS and VALUES): both or
// neither, float64[C] (a float64 scalar when C = 1), finite, std > 0, so
// that (x - mean) / std of a finite pixel is finite. In is the input node,
// its shape already checked.
void check_input_norm(const Node& in) {
  const bool mean = in.attrs.has("norm_mean"), std_ = in.attrs.has("norm_std");
  if (!mean && !std_) return;
  if (!mean || !std_)
    fail("node '{}': attribute '{}' without '{}'", in.name, mean ? "norm_mean" : "norm_std",
         mean ? "norm_std" : "norm_mean");
  const int64_t c = in.attrs.get_ints("shape")[2];
  for (const char* key : {"norm_mean", "norm_std"}) {
    const AttrValue& v = in.attrs.all().at(key);
    std::vector<double> one;
    const std::vector<double>* values = std::get_if<std::vector<double>>(&v);
    if (const double* d = std::get_if<double>(&v)) one = {*d}, values = &one;
    if (!values) fail("node '{}': attribute '{}' must be a float64 list", in.name, key);
    if (static_cast<int64_t>(values->size()) != c)
      fail("node '{}': attribute '{}' has {} entries for {} channels", in.name, key, values->size(), c);
    const bool is_std = key[5] == 's';
    for (size_t i = 0; i < values->size(); ++i) {
      const double x = (*values)[i];
      if (!std::isfinite(x) || (is_std && !(x > 0)))
        fail("node '{}': attribute '{}' holds {} for channel {} (must be finite{})", in.name, key, x, i,
             is_std ? " and positive" : "");
    }
  }
}

}  // namespace

void Model::validate(bool values_scanned) const {
  if (nodes.empty()) fail("model has no nodes");
  if (nodes[0].op != Op::Input) fail("the first node must be the input");
  std::set<std::string_view> seen;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    if (n.name.empty()) fail("node {} has an empty name", i);
    if (n.name.find('/') != std::string::npos) fail("node name '{}' contains '/'", n.name);
    if (!seen.insert(n.name).second) fail("two nodes are named '{}'", n.name);
    if (i > 0 && n.op == Op::Input) fail("node '{}': only the first node can be an input", n.name);
    check_params(n);
    check_act_rule(n);  // core/act_sparsity.hpp
    check_values(n, !values_scanned);
  }
  check_param_total(*this);
  const std::vector<Shape> shapes = infer_shapes(*this);  // checks inputs, attributes and parameter shapes
  check_input_norm(nodes[0]);
  check_mac_total(*this, shapes);
}

Wiring wiring(const Model& m) {
  const size_t count = m.nodes.size();
  std::unordered_map<std::string_view, size_t> index;
  Wiring w;
  w.inputs.resize(count);
  w.last_use.assign(count, 0);
  for (size_t i = 0; i < count; ++i) {
    index.emplace(m.nodes[i].name, i);
    for (const auto& src : m.nodes[i].inputs) {
      const size_t j = index.at(src);
      w.inputs[i].push_back(j);
      w.last_use[j] = i;
    }
  }
  if (count) w.last_use[count - 1] = count;
  return w;
}

void check_batch_input(const Model& m, const Shape& x) {
  const Shape want = m.input_shape();
  if (x.size() != 4 || Shape(x.begin() + 1, x.end()) != want)
    fail("input has shape {}, the model takes [N, {}, {}, {}]", shape_str(x), want[0], want[1], want[2]);
}

Model clone_graph(const Model& m) {
  Model c;
  c.arch = m.arch;
  c.history = m.history;
  for (const Node& n : m.nodes) {
    Node d;
    d.name = n.name;
    d.op = n.op;
    d.inputs = n.inputs;
    d.attrs = n.attrs;
    for (const auto& [k, t] : n.params) d.params.emplace(k, t.clone());
    if (n.mask) d.mask = n.mask->clone();
    c.nodes.push_back(std::move(d));
  }
  return c;
}

int64_t trainable_params(const Node& n) {
  int64_t total = 0;
  for (const auto& [k, t] : n.params)
    if (k != "mean" && k != "var") total += static_cast<int64_t>(t.size());
  return total;
}

}  // namespace bsp
