// The /compact group of a model file (layout: man/bsp-format.5, COMPACT).
#include <cinttypes>
#include <cstdio>

#include "compact/compact.hpp"
#include "core/h5.hpp"
#include "core/hasher.hpp"
#include "core/model_io.hpp"

namespace bsp::compact {

namespace {

// Requantisations up to this many per array go in attributes (an avgpool
// over a whole 112x112 map has 12544: datasets).
constexpr size_t kMaxAttrRequants = 2048;

template <typename T>
void put(hid_t g, const char* name, const std::vector<T>& v) {
  Array<T> a({static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), a.data());
  h5::write_array(g, name, a);
}

template <typename T>
std::vector<T> get(hid_t g, const char* name) {
  Array<T> a = h5::read_array<T>(g, name);
  if (a.rank() != 1) fail("dataset '{}' is not one-dimensional", name);
  return std::vector<T>(a.begin(), a.end());
}

std::vector<int64_t> mults(const std::vector<q8::Requant>& r) {
  std::vector<int64_t> v;
  for (auto x : r) v.push_back(x.mult);
  return v;
}
std::vector<int64_t> shifts(const std::vector<q8::Requant>& r) {
  std::vector<int64_t> v;
  for (auto x : r) v.push_back(x.shift);
  return v;
}
std::vector<q8::Requant> requants(const std::vector<int64_t>& m, const std::vector<int64_t>& s) {
  if (m.size() != s.size()) fail("requantisation multipliers and shifts differ in length");
  std::vector<q8::Requant> r;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] < 0 || m[i] > INT32_MAX || s[i] < 0 || s[i] > 62) fail("bad requantisation ({}, {})", m[i], s[i]);
    r.push_back({static_cast<int32_t>(m[i]), static_cast<int32_t>(s[i])});
  }
  return r;
}

void save_layer(hid_t parent, const std::string& name, const CompactLayer& l) {
  h5::Handle g = h5::create_group(parent, name);
  h5::write_attr(g, "format", std::string(format_name(l.format)));
  h5::write_attr(g, "weight_shape", std::vector<int64_t>(l.weight_shape));
  // fp32 dense layers keep their weights in the graph only.
  if (!(l.format == Format::Dense && l.dtype == DType::FP32))
    std::visit([&](const auto& v) { put(g, "values", v); }, l.values);
  switch (l.format) {
    case Format::Dense: break;
    case Format::Bsr:
      h5::write_attr(g, "block", std::vector<int64_t>{l.R, l.C});
      put(g, "row_ptr", l.row_ptr);
      put(g, "col_idx", l.col_idx);
      break;
    case Format::NM:
      h5::write_attr(g, "nm", std::vector<int64_t>{l.N, l.M});
      put(g, "index", l.nm_index);
      break;
    case Format::TW:
      h5::write_attr(g, "tile_width", l.G);
      put(g, "tile_row_ptr", l.tile_row_ptr);
      put(g, "tile_rows", l.tile_rows);
      put(g, "tile_col_ptr", l.tile_col_ptr);
      put(g, "tile_cols", l.tile_cols);
      break;
  }
}

CompactLayer load_layer(hid_t parent, const std::string& name, DType dtype, const Node& n) {
  h5::Handle g = h5::open_group(parent, name);
  CompactLayer l;
  l.dtype = dtype;
  auto f = format_from_name(h5::read_attr_string(g, "format"));
  if (!f) fail("unknown format '{}'", h5::read_attr_string(g, "format"));
  l.format = *f;
  l.weight_shape = h5::read_attr_ints(g, "weight_shape");
  if (l.weight_shape != n.param("weight").shape())
    fail("weight shape {} differs from the graph's {}", shape_str(l.weight_shape), shape_str(n.param("weight").shape()));
  if (l.format == Format::Dense && dtype == DType::FP32) {
    const Tensor& w = n.param("weight");
    l.values = std::vector<float>(w.begin(), w.end());
  } else if (dtype == DType::FP32) {
    l.values = get<float>(g, "values");
  } else if (dtype == DType::BF16) {
    l.values = get<uint16_t>(g, "values");
  } else {
    l.values = get<int8_t>(g, "values");
  }
  switch (l.format) {
    case Format::Dense: break;
    case Format::Bsr: {
      auto b = h5::read_attr_ints(g, "block");
      if (b.size() != 2) fail("bad block attribute");
      l.R = b[0], l.C = b[1];
      l.row_ptr = get<int32_t>(g, "row_ptr");
      l.col_idx = get<int32_t>(g, "col_idx");
      break;
    }
    case Format::NM: {
      auto nm = h5::read_attr_ints(g, "nm");
      if (nm.size() != 2) fail("bad nm attribute");
      l.N = nm[0], l.M = nm[1];
      l.nm_index = get<uint8_t>(g, "index");
      break;
    }
    case Format::TW:
      l.G = h5::read_attr_int(g, "tile_width");
      l.tile_row_ptr = get<int32_t>(g, "tile_row_ptr");
      l.tile_rows = get<int32_t>(g, "tile_rows");
      l.tile_col_ptr = get<int32_t>(g, "tile_col_ptr");
      l.tile_cols = get<int32_t>(g, "tile_cols");
      break;
  }
  l.check();
  return l;
}

void save_qnode(hid_t parent, const std::string& name, const q8::QNode& q) {
  h5::Handle g = h5::create_group(parent, name);
  h5::write_attr(g, "kind", std::string(q8::kind_name(q.kind)));
  h5::write_attr(g, "scale", q.scale);
  h5::write_attr(g, "clamp", std::vector<int64_t>{q.lo, q.hi});
  if (q.kind == q8::Kind::Identity) h5::write_attr(g, "fused_into", q.fused_into);
  if (q.has_weight()) {
    h5::write_array(g, "bias", q.bias);
    put(g, "w_scale", q.w_scale);
    std::vector<int32_t> m, s;
    for (auto r : q.rq) m.push_back(r.mult), s.push_back(r.shift);
    put(g, "rq_mult", m);
    put(g, "rq_shift", s);
    if (q.kind == q8::Kind::Affine) h5::write_array(g, "weight", q.weight);
  }
  if (q.kind == q8::Kind::Add) {
    h5::write_attr(g, "in_mult", std::vector<int64_t>(q.in_mult.begin(), q.in_mult.end()));
    h5::write_attr(g, "in_shift", int64_t{q.in_shift});
  }
  if (q.kind == q8::Kind::Concat) {
    h5::write_attr(g, "in_rq_mult", mults(q.in_rq));
    h5::write_attr(g, "in_rq_shift", shifts(q.in_rq));
  }
  if (!q.count_rq.empty() && q.count_rq.size() <= kMaxAttrRequants) {
    h5::write_attr(g, "count_rq_mult", mults(q.count_rq));
    h5::write_attr(g, "count_rq_shift", shifts(q.count_rq));
  } else if (!q.count_rq.empty()) {  // too many for an HDF5 attribute (64 KiB): datasets
    put(g, "count_rq_mult", mults(q.count_rq));
    put(g, "count_rq_shift", shifts(q.count_rq));
  }
  if (q.kind == q8::Kind::Lut) put(g, "table", q.table);
  if (q.kind == q8::Kind::Mul) h5::write_attr(g, "rq", std::vector<int64_t>{q.prod_rq.mult, q.prod_rq.shift});
}

q8::QNode load_qnode(hid_t parent, const std::string& name, const Node& n, const CompactLayer* layer) {
  h5::Handle g = h5::open_group(parent, name);
  q8::QNode q;
  const std::string kind = h5::read_attr_string(g, "kind");
  bool found = false;
  for (int k = 0; k < static_cast<int>(q8::Kind::kCount) && !found; ++k)
    if (kind == q8::kind_name(static_cast<q8::Kind>(k))) q.kind = static_cast<q8::Kind>(k), found = true;
  if (!found) fail("unknown int8 kind '{}'", kind);
  q.scale = h5::read_attr_double(g, "scale");
  if (!(q.scale > 0)) fail("scale {} is not positive", q.scale);
  auto c = h5::read_attr_ints(g, "clamp");
  if (c.size() != 2 || c[0] < -128 || c[1] > 127 || c[0] > c[1]) fail("bad clamp range");
  q.lo = static_cast<int32_t>(c[0]), q.hi = static_cast<int32_t>(c[1]);
  if (q.kind == q8::Kind::Identity) q.fused_into = h5::read_attr_string(g, "fused_into");
  if (q.has_weight()) {
    q.bias = h5::read_array<int32_t>(g, "bias");
    q.w_scale = get<double>(g, "w_scale");
    auto m = get<int32_t>(g, "rq_mult"), s = get<int32_t>(g, "rq_shift");
    q.rq = requants(std::vector<int64_t>(m.begin(), m.end()), std::vector<int64_t>(s.begin(), s.end()));
    if (q.kind == q8::Kind::Affine) {
      q.weight = h5::read_array<int8_t>(g, "weight");
    } else {
      if (!layer || layer->dtype != DType::Int8) fail("no int8 weights for the layer");
      auto w = expand<int8_t>(*layer);
      q.weight = Array<int8_t>(layer->weight_shape);
      std::copy(w.begin(), w.end(), q.weight.data());
    }
    const size_t O = static_cast<size_t>(q.weight.dim(0));
    if (q.bias.size() != O || q.w_scale.size() != O || q.rq.size() != O)
      fail("per-channel arrays do not match {} output channels", O);
  }
  if (q.kind == q8::Kind::Add) {
    for (auto v : h5::read_attr_ints(g, "in_mult")) {
      if (v < 0 || v > INT32_MAX) fail("bad add multiplier {}", v);
      q.in_mult.push_back(static_cast<int32_t>(v));
    }
    const int64_t s = h5::read_attr_int(g, "in_shift");
    if (s < 0 || s > 62) fail("bad add shift {}", s);
    q.in_shift = static_cast<int32_t>(s);
    if (q.in_mult.size() != n.inputs.size()) fail("add multipliers do not match the inputs");
  }
  if (q.kind == q8::Kind::Concat) {
    q.in_rq = requants(h5::read_attr_ints(g, "in_rq_mult"), h5::read_attr_ints(g, "in_rq_shift"));
    if (q.in_rq.size() != n.inputs.size()) fail("concat requantisations do not match the inputs");
  }
  if (h5::has_attr(g, "count_rq_mult"))
    q.count_rq = requants(h5::read_attr_ints(g, "count_rq_mult"), h5::read_attr_ints(g, "count_rq_shift"));
  else if (h5::exists(g, "count_rq_mult"))
    q.count_rq = requants(get<int64_t>(g, "count_rq_mult"), get<int64_t>(g, "count_rq_shift"));
  if (q.kind == q8::Kind::Lut) {
    if (!h5::exists(g, "table")) fail("lookup table missing");
    q.table = get<int8_t>(g, "table");
    if (q.table.size() != 256) fail("lookup table has {} entries, not 256", q.table.size());
  }
  if (q.kind == q8::Kind::Mul) {
    const auto r = h5::read_attr_ints(g, "rq");
    if (r.size() != 2 || r[0] < 0 || r[0] > INT32_MAX || r[1] < 0 || r[1] > 62) fail("bad mul requantisation");
    q.prod_rq = {static_cast<int32_t>(r[0]), static_cast<int32_t>(r[1])};
    if (n.inputs.size() != 2) fail("mul takes two inputs");
  }
  if ((q.kind == q8::Kind::AvgPool || q.kind == q8::Kind::GlobalAvgPool) && q.count_rq.empty())
    fail("pool without divisor requantisations");
  return q;
}

void add_requants(Hasher& h, const std::vector<q8::Requant>& r) {
  h.add(static_cast<uint64_t>(r.size()));
  for (auto x : r) h.add(static_cast<uint64_t>(static_cast<uint32_t>(x.mult)) | static_cast<uint64_t>(x.shift) << 32);
}

// The content hash of a /compact group (GROUP HASHES): what save_compact
// writes and load_compact reads, field for field; the same function on both
// sides, so an edit to any dataset or attribute the reader uses shows.
uint64_t group_hash(const Model& m, const CompactModel& c, std::optional<uint64_t> rebuilt_hash) {
  Hasher h;
  h.add(std::string_view(dtype_name(c.dtype)));
  h.add(c.source_hash);
  // Only when present, so that the hashes of groups written before format 1.3 stay what they were.
  if (rebuilt_hash) h.add(*rebuilt_hash ^ 0x5772697070656400ULL);
  h.add(static_cast<uint64_t>(c.layers.size()));
  for (const auto& [name, l] : c.layers) {
    h.add(std::string_view(name));
    h.add(static_cast<uint64_t>(l.format));
    h.add_vector(l.weight_shape);
    if (!(l.format == Format::Dense && l.dtype == DType::FP32)) std::visit([&](const auto& v) { h.add_vector(v); }, l.values);
    switch (l.format) {
      case Format::Dense: break;
      case Format::Bsr:
        h.add(static_cast<uint64_t>(l.R)), h.add(static_cast<uint64_t>(l.C));
        h.add_vector(l.row_ptr), h.add_vector(l.col_idx);
        break;
      case Format::NM:
        h.add(static_cast<uint64_t>(l.N)), h.add(static_cast<uint64_t>(l.M));
        h.add_vector(l.nm_index);
        break;
      case Format::TW:
        h.add(static_cast<uint64_t>(l.G));
        h.add_vector(l.tile_row_ptr), h.add_vector(l.tile_rows), h.add_vector(l.tile_col_ptr), h.add_vector(l.tile_cols);
        break;
    }
  }
  if (c.int8) {
    h.add(static_cast<uint64_t>(c.int8->pow2));
    for (size_t i = 0; i < c.int8->nodes.size() && i < m.nodes.size(); ++i) {
      const q8::QNode& q = c.int8->nodes[i];
      h.add(std::string_view(m.nodes[i].name));
      h.add(std::string_view(q8::kind_name(q.kind)));
      h.add_bytes(&q.scale, sizeof q.scale);
      h.add(static_cast<uint64_t>(static_cast<uint32_t>(q.lo)) | static_cast<uint64_t>(static_cast<uint32_t>(q.hi)) << 32);
      if (q.kind == q8::Kind::Identity) h.add(std::string_view(q.fused_into));
      if (q.has_weight()) {
        h.add_bytes(q.bias.data(), q.bias.size() * sizeof(int32_t));
        h.add_vector(q.w_scale);
        add_requants(h, q.rq);
        if (q.kind == q8::Kind::Affine) h.add_bytes(q.weight.data(), q.weight.size());
      }
      if (q.kind == q8::Kind::Add) h.add_vector(q.in_mult), h.add(static_cast<uint64_t>(q.in_shift));
      if (q.kind == q8::Kind::Concat) add_requants(h, q.in_rq);
      add_requants(h, q.count_rq);
      if (q.kind == q8::Kind::Lut) h.add_vector(q.table);
      if (q.kind == q8::Kind::Mul) add_requants(h, {q.prod_rq});
    }
  }
  return h.value();
}

std::string hex(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016" PRIx64, v);
  return b;
}

}  // namespace

void save_compact(const Model& m, const CompactModel& c, int64_t file, std::optional<uint64_t> rebuilt_hash) {
  h5::Handle root = h5::create_group(file, "compact");
  h5::write_attr(root, "dtype", std::string(dtype_name(c.dtype)));
  h5::write_attr(root, "source_hash", hex(c.source_hash));
  if (rebuilt_hash) h5::write_attr(root, "rebuilt_hash", hex(*rebuilt_hash));
  h5::Handle layers = h5::create_group(root, "layers");
  for (const auto& [name, l] : c.layers) save_layer(layers, name, l);
  if (c.int8) {
    h5::write_attr(root, "pow2", int64_t{c.int8->pow2});
    h5::Handle q = h5::create_group(root, "int8");
    if (c.int8->nodes.size() != m.nodes.size()) fail("internal: the int8 program does not match the graph");
    for (size_t i = 0; i < m.nodes.size(); ++i) save_qnode(q, m.nodes[i].name, c.int8->nodes[i]);
  }
  write_group_hash(root, group_hash(m, c, rebuilt_hash));
}

std::optional<uint64_t> stored_source_hash(int64_t file) {
  if (!h5::exists(file, "compact")) return std::nullopt;
  try {
    h5::Handle root = h5::open_group(file, "compact");
    if (!dtype_from_name(h5::read_attr_string(root, "dtype")))
      fail("unknown dtype '{}'", h5::read_attr_string(root, "dtype"));
    // Not 16 hex digits: made from nothing this bsp can match (0).
    const std::string hash = h5::read_attr_string(root, "source_hash");
    return hash.size() == 16 ? std::strtoull(hash.c_str(), nullptr, 16) : 0;
  } catch (const Error& e) {
    throw Error(fmt::format("/compact: {}", e.what()), e.exit_code());
  }
}

Shape stored_weight_shape(int64_t file, const std::string& name) {
  try {
    h5::Handle layers = h5::open_group(h5::open_group(file, "compact"), "layers");
    if (!h5::exists(layers, name)) fail("layer '{}' is missing", name);
    return h5::read_attr_ints(h5::open_group(layers, name), "weight_shape");
  } catch (const Error& e) {
    throw Error(fmt::format("/compact: {}", e.what()), e.exit_code());
  }
}

std::shared_ptr<const CompactModel> load_compact(const Model& m, int64_t file, std::optional<uint64_t>* rebuilt_hash) {
  try {
    h5::Handle root = h5::open_group(file, "compact");
    auto c = std::make_shared<CompactModel>();
    c->dtype = *dtype_from_name(h5::read_attr_string(root, "dtype"));
    c->source_hash = std::strtoull(h5::read_attr_string(root, "source_hash").c_str(), nullptr, 16);
    std::optional<uint64_t> rebuilt;
    if (h5::has_attr(root, "rebuilt_hash")) {
      const std::string r = h5::read_attr_string(root, "rebuilt_hash");
      if (r.size() != 16 || r.find_first_not_of("0123456789abcdef") != std::string::npos)
        fail("rebuilt_hash '{}' is not 16 hex digits", r);
      rebuilt = std::strtoull(r.c_str(), nullptr, 16);
    }
    if (rebuilt_hash) *rebuilt_hash = rebuilt;
    h5::Handle layers = h5::open_group(root, "layers");
    for (const Node& n : m.nodes) {
      if (!op_has_weight(n.op)) continue;
      if (!h5::exists(layers, n.name)) fail("layer '{}' is missing", n.name);
      try {
        c->layers.emplace(n.name, load_layer(layers, n.name, c->dtype, n));
      } catch (const Error& e) {
        fail("layer '{}': {}", n.name, e.what());
      }
    }
    if (c->dtype == DType::Int8) {
      h5::Handle q = h5::open_group(root, "int8");
      q8::QModel qm;
      qm.pow2 = h5::read_attr_int(root, "pow2") != 0;
      for (const Node& n : m.nodes) {
        if (!h5::exists(q, n.name)) fail("int8 node '{}' is missing", n.name);
        try {
          qm.nodes.push_back(load_qnode(q, n.name, n, c->layer(n.name)));
        } catch (const Error& e) {
          fail("int8 node '{}': {}", n.name, e.what());
        }
      }
      q8::check_folding(m, qm);
      q8::set_act_thresholds(m, qm);  // derived from the graph's rules and the stored scales
      c->int8 = std::move(qm);
    }
    // Last: a malformed group has its own error above; a well-formed one
    // whose content is not what bsp wrote is refused here.
    check_group_hash(file, root, group_hash(m, *c, rebuilt), "run 'bsp compact' again");
    return c;
  } catch (const Error& e) {
    throw Error(fmt::format("/compact: {}", e.what()), e.exit_code());
  }
}

}  // namespace bsp::compact
