#include "core/model_io.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <map>

#include "core/checked.hpp"
#include "core/h5.hpp"
#include "core/op_table.hpp"

// File layout (man/bsp-format.5):
//   /                         attrs format="bsp", format_version=[major, minor],
//                             producer="bsp X.Y.Z", arch
//   /graph/order              string[n]: node names in topological order
//   /graph/nodes/<name>       group; attrs op, inputs (string[]), op attributes;
//                             float32 parameter datasets; optional uint8 "mask"
//                             with attrs pattern, density, block=[R, C]; tile-wise
//                             masks add int32 "mask_column_tile", uint8 "mask_tile_rows"
//   /history                  string[]: command lines, oldest first
// The groups later stages add are written by modelfile/model_file.cpp:
//   /compact                  compact weights (src/compact/compact_io.cpp)
//   /schedule /program        AIE2 schedule and program (src/aie2/store.cpp)

namespace bsp {

namespace {

const char* kReservedNodeAttrs[] = {"op", "inputs"};

void save_node(hid_t nodes, const Node& n, bool with_weight) {
  h5::Handle g = h5::create_group(nodes, n.name);
  h5::write_attr(g, "op", std::string(op_name(n.op)));
  h5::write_attr_strings(g, "inputs", n.inputs);
  for (const auto& [k, v] : n.attrs.all()) h5::write_attr(g, k, v);
  for (const auto& [k, t] : n.params)
    if (with_weight || k != "weight") h5::write_array(g, k, t);
  if (n.mask) {
    const Mask& m = *n.mask;
    h5::write_array(g, "mask", m.bits, /*compress=*/true);
    h5::Handle d(H5Dopen2(g, "mask", H5P_DEFAULT));
    h5::write_attr(d, "pattern", m.pattern);
    h5::write_attr(d, "density", m.density);
    if (m.is_block()) h5::write_attr(d, "block", std::vector<int64_t>{m.block_rows, m.block_cols});
    if (m.is_tiled()) {
      h5::write_array(g, "mask_column_tile", m.column_tile, /*compress=*/true);
      h5::write_array(g, "mask_tile_rows", m.tile_rows, /*compress=*/true);
    }
  }
}

// Whether `key` is one of op's parameters (the op table's lists).
bool is_param(Op op, const std::string& key) {
  const OpEntry& e = op_entry(op);
  for (const auto* list : {&e.required, &e.optional})
    for (const char* p : *list)
      if (p && key == p) return true;
  return false;
}

// A node's group and its datasets, opened once: the size check below reads
// their shapes before any value is read, and load_node then reads the
// parameters through the same handles (opening a dataset costs more than
// reading a small one: it was most of the validation's cost in `bsp info`).
struct OpenNode {
  h5::Handle group;                              // not valid: load_node says why
  std::map<std::string, h5::Handle> datasets;    // by name; groups are not here
};

// Parameters read directly after every node is parsed (h5::DirectRead), in
// parallel: read i of the list belongs to node nodes[i] and parameter
// params[i] (for messages).
struct DeferredParams {
  std::vector<h5::DirectRead> reads;
  std::vector<std::string> nodes, params;
};

Node load_node(hid_t nodes, const std::string& name, const OpenNode& open, DeferredParams& deferred) {
  if (!h5::exists(nodes, name)) fail("node '{}' is listed in /graph/order but missing", name);
  // open_nodes could not open it: opening it by name fails again, with the reason.
  if (!open.group.valid()) h5::open_group(nodes, name);
  const hid_t g = open.group.get();
  Node n;
  n.name = name;
  std::string op = h5::read_attr_string(g, "op");
  auto parsed = op_from_name(op);
  if (!parsed) fail("node '{}': unknown op '{}'", name, op);
  n.op = *parsed;
  n.inputs = h5::read_attr_strings(g, "inputs");
  for (const auto& a : h5::attr_names(g)) {
    bool reserved = false;
    for (const char* r : kReservedNodeAttrs) reserved |= a == r;
    if (!reserved) n.attrs.set(a, h5::read_attr(g, a));
  }
  for (const auto& c : h5::children(g)) {
    if (c == "mask") {
      Mask m;
      try {
        if (h5::exists(g, "mask_column_tile") != h5::exists(g, "mask_tile_rows"))
          fail("a tile-wise mask needs both mask_column_tile and mask_tile_rows");
        m.bits = h5::read_array<uint8_t>(g, "mask");
        if (h5::exists(g, "mask_column_tile")) {
          m.column_tile = h5::read_array<int32_t>(g, "mask_column_tile");
          m.tile_rows = h5::read_array<uint8_t>(g, "mask_tile_rows");
        }
        h5::Handle d(H5Dopen2(g, "mask", H5P_DEFAULT));
        m.pattern = h5::read_attr_string(d, "pattern");
        m.density = h5::read_attr_double(d, "density");
        if (h5::has_attr(d, "block")) {
          auto b = h5::read_attr_ints(d, "block");
          if (b.size() != 2 || b[0] < 1 || b[1] < 1) fail("bad mask block size");
          m.block_rows = b[0];
          m.block_cols = b[1];
        }
      } catch (const Error& e) {
        fail("node '{}': {}", name, e.what());
      }
      n.mask = std::move(m);
    } else if (c == "mask_column_tile" || c == "mask_tile_rows") {
      if (!h5::exists(g, "mask")) fail("node '{}': {} without a mask", name, c);
    } else if (is_param(n.op, c)) {
      // Checked for finite values slab by slab as it is read (validate
      // skips it); the first bad value is reported once the read is done.
      std::optional<size_t> bad;
      Tensor t;
      try {
        auto scan = [&](const float* v, size_t first, size_t count) {
          if (!bad && (bad = find_nonfinite(v + first, count))) *bad += first;
        };
        // Not among the datasets: a group by that name, which the read by
        // name refuses with the reason.
        auto d = open.datasets.find(c);
        if (d != open.datasets.end()) {
          const size_t before = deferred.reads.size();
          t = h5::read_floats_or_defer(d->second, c, scan, deferred.reads);
          if (deferred.reads.size() != before) {
            deferred.nodes.push_back(name);
            deferred.params.push_back(c);
          }
        } else {
          t = h5::read_floats_scanned(g, c, scan);
        }
      } catch (const Error& e) {
        fail("node '{}': {}", name, e.what());
      }
      if (bad) check_finite_values(name, c, t.data(), *bad, 1);
      n.params.emplace(c, std::move(t));
    }
    // Any other dataset or group is not the op's: ignored, as bsp-format(5)
    // says of everything a reader does not know (and not written back).
  }
  return n;
}

// Opens every node and its datasets, and checks the memory bound on a
// graph's datasets (bsp-format(5), LIMITS) from their shapes alone, before
// any is read: a few kilobytes of compressed dataset can claim terabytes.
std::vector<OpenNode> open_nodes(hid_t nodes, const std::vector<std::string>& order, int64_t& total) {
  std::vector<OpenNode> out(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string& name = order[i];
    const hid_t gid = H5Gopen2(nodes, name.c_str(), H5P_DEFAULT);
    if (gid < 0) continue;  // load_node says why
    OpenNode& on = out[i];
    on.group = h5::Handle(gid);
    for (const auto& c : h5::children(on.group)) {
      const hid_t did = H5Dopen2(on.group, c.c_str(), H5P_DEFAULT);
      if (did < 0) continue;  // a group
      h5::Handle d(did);
      const Shape shape = h5::open_dataset_shape(d);
      int64_t n = 1;  // within int64: open_dataset_shape checked the product
      for (int64_t dim : shape) n *= dim;
      if (!add_ok(total, n, total) || total > limits::kMaxParams)
        fail("node '{}': dataset '{}' {} takes the model past {} stored values ({} in float32), bsp's limit "
             "(bsp-format(5), LIMITS)",
             name, c, shape_str(shape), limits::kMaxParams,
             human_bytes(static_cast<double>(limits::kMaxParams) * sizeof(float)));
      on.datasets.emplace(c, std::move(d));
    }
  }
  return out;
}

}  // namespace

h5::Handle open_model_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) fail("{}", errno_message(errno));
  if (S_ISDIR(st.st_mode)) fail("is a directory");
  if (access(path.c_str(), R_OK) != 0) fail("{}", errno_message(errno));
  if (!h5::is_hdf5(path)) fail("not an HDF5 file");
  h5::Handle f = h5::open_file_readonly(path);
  if (!h5::has_attr(f, "format")) fail("not a bsp model file (no 'format' attribute)");
  auto format = h5::read_attr(f, "format");
  if (!std::holds_alternative<std::string>(format) || std::get<std::string>(format) != kFormatName)
    fail("not a bsp model file");
  auto version = h5::read_attr(f, "format_version");
  auto* v = std::get_if<std::vector<int64_t>>(&version);
  if (!v || v->size() != 2) fail("bad 'format_version' attribute");
  if ((*v)[0] > kFormatMajor)
    fail("format version {}.{} is newer than this bsp reads ({}.x); upgrade bsp", (*v)[0], (*v)[1], kFormatMajor);
  if ((*v)[0] < 1) fail("unknown format version {}.{}", (*v)[0], (*v)[1]);
  return f;
}

Model read_graph(hid_t f, const WeightShapeOf& weight_shape, std::vector<std::string>* weightless) {
  Model m;
  if (h5::has_attr(f, "arch")) m.arch = h5::read_attr_string(f, "arch");
  h5::Handle graph = h5::open_group(f, "graph");
  auto order = h5::read_strings(graph, "order");
  h5::Handle nodes = h5::open_group(graph, "nodes");
  int64_t total = 0;  // values stored in the graph's datasets (LIMITS)
  std::vector<OpenNode> open = open_nodes(nodes, order, total);
  m.nodes.reserve(order.size());
  // The parameters' buffers do not move when their tensors and nodes are
  // moved, so their direct reads can wait until every node is parsed.
  DeferredParams deferred;
  for (size_t i = 0; i < order.size(); ++i) {
    m.nodes.push_back(load_node(nodes, order[i], open[i], deferred));
    open[i] = OpenNode{};  // its handles are no longer needed
    Node& n = m.nodes.back();
    if (!op_has_weight(n.op) || n.has_param("weight")) continue;
    if (!weight_shape) fail("node '{}': missing parameter 'weight'", n.name);
    const Shape s = weight_shape(n.name);
    int64_t count = 1;
    bool ok = s.size() == 2 || s.size() == 4;  // [out, in] or OHWI
    for (int64_t d : s) ok = ok && d >= 1 && d <= limits::kMaxDim && mul_ok(count, d, count);
    if (!ok) fail("node '{}': its compact form records the weight shape {}, not a layer's", n.name, shape_str(s));
    if (!add_ok(total, count, total) || total > limits::kMaxParams)
      fail("node '{}': the weight {} its compact form records takes the model past {} values, bsp's limit "
           "(bsp-format(5), LIMITS)",
           n.name, shape_str(s), limits::kMaxParams);
    n.params.emplace("weight", Tensor(s));
    if (weightless) weightless->push_back(n.name);
  }
  const std::vector<h5::DirectResult> results = h5::read_direct_parallel(deferred.reads, &find_nonfinite);
  for (size_t r = 0; r < results.size(); ++r) {
    const std::string& node = deferred.nodes[r];
    const std::string& param = deferred.params[r];
    if (results[r].failed) fail("node '{}': cannot read dataset '{}' (truncated or corrupt file?)", node, param);
    if (results[r].found) check_finite_values(node, param, deferred.reads[r].out, *results[r].found, 1);
  }
  if (h5::exists(f, "history")) m.history = h5::read_strings(f, "history");
  m.validate(/*values_scanned=*/true);  // load_node checked the parameters' values
  return m;
}

namespace {
std::string hex16(uint64_t v) { return fmt::format("{:016x}", v); }
}  // namespace

void write_group_hash(hid_t group, uint64_t hash) { h5::write_attr(group, "content_hash", hex16(hash)); }

void check_group_hash(hid_t file, hid_t group, uint64_t computed, const char* redo) {
  if (!h5::has_attr(group, "content_hash")) {
    const std::vector<int64_t> v = h5::read_attr_ints(file, "format_version");
    if (v.size() == 2 && v[0] == 1 && v[1] == 0) return;  // written before groups had one
    fail("no content_hash attribute (format 1.1 and later have one): {}", redo);
  }
  const std::string stored = h5::read_attr_string(group, "content_hash");
  if (stored != hex16(computed))
    fail("edited after bsp wrote it (its content hash is {}, the stored content_hash {}): {}", hex16(computed), stored,
         redo);
}

h5::Handle create_model_file(const std::string& path, const Model& m) {
  h5::Handle f = h5::create_file(path);
  h5::write_attr(f, "format", std::string(kFormatName));
  h5::write_attr(f, "format_version", std::vector<int64_t>{kFormatMajor, kFormatMinor});
  h5::write_attr(f, "producer", std::string("bsp ") + BSP_VERSION);
  h5::write_attr(f, "arch", m.arch);
  return f;
}

void write_graph(const Model& m, hid_t f, const std::vector<std::string>& no_weight) {
  h5::Handle graph = h5::create_group(f, "graph");
  std::vector<std::string> order;
  for (const Node& n : m.nodes) order.push_back(n.name);
  h5::write_strings(graph, "order", order);
  h5::Handle nodes = h5::create_group(graph, "nodes");
  for (const Node& n : m.nodes)
    save_node(nodes, n, std::find(no_weight.begin(), no_weight.end(), n.name) == no_weight.end());
  h5::write_strings(f, "history", m.history);
}

}  // namespace bsp
