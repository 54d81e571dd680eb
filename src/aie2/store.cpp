#include "aie2/store.hpp"

#include <cinttypes>
#include <cstdio>
#include <string_view>

#include "compact/compact.hpp"
#include "core/h5.hpp"
#include "core/hasher.hpp"
#include "core/model_io.hpp"
#include "core/rng.hpp"

namespace bsp::aie2 {

namespace {

constexpr int64_t kVersion = 1;
// /program: version 2 holds the activation-rule records and transfer forms
// (man/bsp-isa.7, ACTIVATION RULES); a program without them is still
// written as version 1, which older readers take. Both are read.
constexpr int64_t kProgramVersionAct = 2;
// Version 3: kernels with the sparse operand (kKSparse24, man/bsp-isa.7,
// SPARSE OPERAND), with or without activation rules; the others keep the
// version they had.
constexpr int64_t kProgramVersionSparse24 = 3;

std::string hex(uint64_t v) {
  char b[20];
  std::snprintf(b, sizeof b, "%016" PRIx64, v);
  return b;
}
uint64_t unhex(const std::string& s) {
  if (s.size() != 16) fail("bad hash '{}'", s);
  return std::strtoull(s.c_str(), nullptr, 16);
}

const char* place_name(Place p) { return p == Place::DDR ? "ddr" : "memtile"; }

std::vector<std::string> buffer_list(const std::vector<Buffer>& bs) {
  std::vector<std::string> v;
  for (const Buffer& b : bs) v.push_back(fmt::format("{}@{}+{}x{}", b.name, b.addr, b.slots, b.slot_bytes));
  return v;
}

std::vector<Buffer> core_buffers(const StagePlan& p) {
  std::vector<Buffer> v = p.core_in;
  for (const Buffer* b : {&p.core_w, &p.core_out, &p.core_add, &p.core_acc})
    if (b->slot_bytes > 0) v.push_back(*b);
  return v;
}

// The content hashes of /schedule and /program (man/bsp-format.5, GROUP
// HASHES): of what the reader reads, computed by the writer from what it
// writes and by the reader from what it read. The for-readers-only stage
// attributes (re-derived, never read) are not covered.
uint64_t schedule_group_hash(const std::string& hw_json, DType dtype, uint64_t source_hash, uint64_t fingerprint,
                             const std::vector<std::string>& names, const Array<int64_t>& storages,
                             const std::vector<Decision>& ds) {
  Hasher h;
  for (const std::string& n : names) h.add(std::string_view(n));
  h.add(std::string_view(hw_json));
  h.add(std::string_view(dtype_name(dtype)));
  h.add(source_hash);
  h.add(fingerprint);
  h.add_vector(storages.shape());
  h.add_bytes(storages.data(), storages.size() * sizeof(int64_t));
  h.add(static_cast<uint64_t>(ds.size()));
  for (const Decision& d : ds) {
    for (int64_t v : {d.ps, d.pc, d.ny, d.nx, d.th, d.tw, d.ci_t}) h.add(static_cast<uint64_t>(v));
    h.add(static_cast<uint64_t>(d.order));
    h.add(static_cast<uint64_t>(d.w_resident));
    h.add_vector(d.cbounds);
    h.add_vector(d.rows);
  }
  return h.value();
}

uint64_t program_group_hash(const std::string& hw_json, const Program& p, uint64_t source_hash,
                            const std::vector<int32_t>& code, const std::vector<std::string>& names,
                            const std::vector<uint8_t>& image) {
  Hasher h;
  h.add(std::string_view(hw_json));
  h.add(std::string_view(dtype_name(p.dtype)));
  h.add(source_hash);
  h.add(p.fingerprint);
  for (int64_t v : {p.ddr_bytes, p.ddr_const_bytes, p.input_addr, p.output_addr}) h.add(static_cast<uint64_t>(v));
  h.add_vector(p.input_shape);
  h.add_vector(p.output_shape);
  h.add_vector(code);
  h.add(static_cast<uint64_t>(names.size()));
  for (const std::string& n : names) h.add(std::string_view(n));
  h.add_vector(image);
  return h.value();
}

}  // namespace

DType model_dtype(const Model& m) { return m.compact ? m.compact->dtype : DType::FP32; }

uint64_t model_hash(const Model& m, DType dtype) {
  uint64_t h = mix64(content_hash(m) ^ (0xa1e2ULL + static_cast<uint64_t>(dtype)));
  if (dtype == DType::Int8 && m.compact && m.compact->int8) {
    const q8::QModel& q = *m.compact->int8;
    auto add = [&](uint64_t v) { h = mix64(h ^ v) + 0x9e3779b97f4a7c15ULL; };
    for (const q8::QNode& n : q.nodes) {
      add(static_cast<uint64_t>(n.kind));
      uint64_t s;
      std::memcpy(&s, &n.scale, 8);
      add(s);
      add(static_cast<uint64_t>(n.lo) ^ (static_cast<uint64_t>(n.hi) << 32));
      for (size_t i = 0; i < n.weight.size(); ++i) add(static_cast<uint64_t>(static_cast<uint8_t>(n.weight[i])) + i * 257);
      for (size_t i = 0; i < n.bias.size(); ++i) add(static_cast<uint64_t>(static_cast<uint32_t>(n.bias[i])));
      for (auto r : n.rq) add(static_cast<uint64_t>(r.mult) ^ (static_cast<uint64_t>(r.shift) << 40));
      for (auto r : n.in_rq) add(static_cast<uint64_t>(r.mult) ^ (static_cast<uint64_t>(r.shift) << 40));
      for (auto r : n.count_rq) add(static_cast<uint64_t>(r.mult) ^ (static_cast<uint64_t>(r.shift) << 40));
      for (auto v : n.in_mult) add(static_cast<uint64_t>(static_cast<uint32_t>(v)));
      add(static_cast<uint64_t>(n.in_shift));
      for (size_t i = 0; i < n.table.size(); ++i) add(static_cast<uint64_t>(static_cast<uint8_t>(n.table[i])) + i * 257);
      add(static_cast<uint64_t>(n.prod_rq.mult) ^ (static_cast<uint64_t>(n.prod_rq.shift) << 40));
    }
  } else if (dtype == DType::Int8) {
    h = mix64(h ^ 0x1708);  // planned as int8 without int8 weights
  }
  return h;
}

namespace {
// A stage's /schedule/stages/NNNN/weight_chunks table: [chunks, 8] rows of
// (part, co0, co1, ci0, ci1, nnz, bytes, ddr_addr).
Array<int64_t> chunk_table(const StagePlan& p) {
  int64_t n = 0;
  for (const auto& part : p.chunks) n += static_cast<int64_t>(part.size());
  Array<int64_t> t({n, 8});
  size_t r = 0;
  for (size_t q = 0; q < p.chunks.size(); ++q)
    for (const Chunk& c : p.chunks[q]) {
      int64_t row[8] = {static_cast<int64_t>(q), c.co0, c.co1, c.ci0, c.ci1, c.nnz, c.bytes, c.ddr_addr};
      for (int k = 0; k < 8; ++k) t[r * 8 + static_cast<size_t>(k)] = row[k];
      ++r;
    }
  return t;
}

// The derived attributes a reader outside bsp believes (the DDR size and the
// weight chunks' addresses, bsp-format(5) SCHEDULE) are those bsp derives
// again from the decisions it read: an edited one is refused, not repaired.
void check_derived(hid_t g, const Schedule& s) {
  for (const auto& [key, want] : {std::pair<const char*, int64_t>{"ddr_bytes", s.ddr_bytes},
                                  std::pair<const char*, int64_t>{"ddr_const_bytes", s.ddr_const_bytes}}) {
    const int64_t v = h5::read_attr_int(g, key);
    if (v != want) fail("{} is {}, the schedule's is {}: run 'bsp schedule' again", key, v, want);
  }
  h5::Handle stages = h5::open_group(g, "stages");
  for (size_t i = 0; i < s.stages.size(); ++i) {
    h5::Handle sg = h5::open_group(stages, fmt::format("{:04d}", i));
    const StagePlan& p = s.stages[i];
    const bool stored = h5::exists(sg, "weight_chunks");
    if (stored != !p.chunks.empty())
      fail("stage '{:04d}': {} weight_chunks where the schedule has {}", i, stored ? "a" : "no",
           p.chunks.empty() ? "none" : "some");
    if (!stored) continue;
    const Array<int64_t> want = chunk_table(p), got = h5::read_array<int64_t>(sg, "weight_chunks");
    if (got.shape() != want.shape()) fail("stage '{:04d}': weight_chunks has shape {}, the schedule's {}", i,
                                          shape_str(got.shape()), shape_str(want.shape()));
    for (size_t j = 0; j < want.size(); ++j)
      if (got[j] != want[j])
        fail("stage '{:04d}': weight_chunks[{}, {}] is {}, the schedule's is {}: run 'bsp schedule' again", i, j / 8,
             j % 8, got[j], want[j]);
  }
}
}  // namespace

void save_schedule(const Model& m, const Schedule& s, int64_t file_id) {
  h5::Handle g = h5::create_group(file_id, "schedule");
  h5::write_attr(g, "version", kVersion);
  h5::write_attr(g, "target", s.hw.name);
  h5::write_attr(g, "hardware", hardware_to_json(s.hw).dump());
  h5::write_attr(g, "dtype", std::string(dtype_name(s.dtype)));
  h5::write_attr(g, "source_hash", hex(s.source_hash));
  (void)m;
  h5::write_attr(g, "fingerprint", hex(s.fingerprint));
  h5::write_attr(g, "ddr_bytes", s.ddr_bytes);
  h5::write_attr(g, "ddr_const_bytes", s.ddr_const_bytes);
  // Storages.
  {
    const size_t n = s.graph.storages.size();
    std::vector<std::string> names;
    Array<int64_t> t({static_cast<int64_t>(n), 8});
    for (size_t i = 0; i < n; ++i) {
      const Storage& st = s.graph.storages[i];
      const StoragePlan& p = s.storages[i];
      names.push_back(st.name);
      int64_t row[8] = {st.H, st.W, st.C, p.place == Place::DDR ? 0 : 1, p.ddr_addr, p.band_rows, p.memtile_addr, p.band_bytes};
      for (int k = 0; k < 8; ++k) t[i * 8 + static_cast<size_t>(k)] = row[k];
    }
    h5::write_strings(g, "storage_names", names);
    h5::write_array(g, "storages", t);
    std::vector<Decision> ds;
    for (const StagePlan& p : s.stages) ds.push_back(p.d);
    write_group_hash(g, schedule_group_hash(hardware_to_json(s.hw).dump(), s.dtype, s.source_hash, s.fingerprint, names,
                                            t, ds));
  }
  h5::Handle stages = h5::create_group(g, "stages");
  for (size_t i = 0; i < s.stages.size(); ++i) {
    const Stage& st = s.graph.stages[i];
    const StagePlan& p = s.stages[i];
    h5::Handle sg = h5::create_group(stages, fmt::format("{:04d}", i));
    h5::write_attr(sg, "name", st.name);
    h5::write_attr(sg, "kind", std::string(stage_kind_name(st.kind)));
    h5::write_attr_strings(sg, "nodes", st.nodes.empty() ? std::vector<std::string>{st.name} : st.nodes);
    h5::write_attr(sg, "split", std::vector<int64_t>{p.d.ps, p.d.pc, p.d.ny, p.d.nx});
    h5::write_attr(sg, "tile", std::vector<int64_t>{p.d.th, p.d.tw, p.d.ci_t});
    h5::write_attr(sg, "order", std::string(1, p.d.order));
    h5::write_attr(sg, "weights_resident", static_cast<int64_t>(p.d.w_resident));
    h5::write_attr(sg, "channel_bounds", p.d.cbounds);
    if (!p.d.rows.empty()) h5::write_attr(sg, "row_order", p.d.rows);
    // Derived, for readers (bsp schedule --json has the same).
    h5::write_attr(sg, "loops", std::vector<int64_t>{p.T, p.J, p.K});
    h5::write_attr(sg, "imbalance", p.imbalance);
    h5::write_attr(sg, "est_seconds", p.est_seconds);
    h5::write_attr(sg, "core_used", p.core_used);
    h5::write_attr(sg, "memtile_used", p.memtile_used);
    h5::write_attr(sg, "ddr_traffic", std::vector<int64_t>{p.ddr_read, p.ddr_weights, p.ddr_write});
    h5::write_attr_strings(sg, "core_buffers", buffer_list(core_buffers(p)));
    std::vector<std::string> mt;
    for (size_t m2 = 0; m2 < p.memtile.size(); ++m2)
      for (const std::string& b : buffer_list(p.memtile[m2])) mt.push_back(fmt::format("{}:{}", m2, b));
    h5::write_attr_strings(sg, "memtile_buffers", mt);
    if (!p.chunks.empty()) h5::write_array(sg, "weight_chunks", chunk_table(p), /*compress=*/true);
  }
}

std::optional<GroupSource> stored_source(int64_t file_id, const char* group) {
  if (!h5::exists(file_id, group)) return std::nullopt;
  h5::Handle g = h5::open_group(file_id, group);
  GroupSource src;
  // A group of another version (or of another tool) is not ours to read.
  const bool program = std::string_view(group) == "program";
  if (!h5::has_attr(g, "version")) return src;
  const int64_t version = h5::read_attr_int(g, "version");
  if (version != kVersion && !(program && (version == kProgramVersionAct || version == kProgramVersionSparse24)))
    return src;
  try {
    src.readable = true;
    src.dtype = parse_dtype(h5::read_attr_string(g, "dtype"));
    src.source_hash = unhex(h5::read_attr_string(g, "source_hash"));
    return src;
  } catch (const Error& e) {
    throw Error(fmt::format("/{}: {}", group, e.what()));
  }
}

std::shared_ptr<const Schedule> load_schedule(const Model& m, int64_t file_id) {
  h5::Handle g = h5::open_group(file_id, "schedule");
  try {
    const DType dtype = parse_dtype(h5::read_attr_string(g, "dtype"));
    const uint64_t src = unhex(h5::read_attr_string(g, "source_hash"));
    const std::string hw_json = h5::read_attr_string(g, "hardware");
    Hardware hw = hardware_from_json(Json::parse(hw_json), "/schedule");
    const uint64_t fp = unhex(h5::read_attr_string(g, "fingerprint"));
    Array<int64_t> t = h5::read_array<int64_t>(g, "storages");
    if (t.rank() != 2 || t.dim(1) != 8) fail("bad /schedule/storages");
    std::vector<StoragePlan> sp(static_cast<size_t>(t.dim(0)));
    for (size_t i = 0; i < sp.size(); ++i) {
      const int64_t* r = t.data() + i * 8;
      if (r[3] != 0 && r[3] != 1) fail("storages row {}: place {} is neither 0 (DDR) nor 1 (memtile)", i, r[3]);
      sp[i].place = r[3] ? Place::Memtile : Place::DDR;
      sp[i].ddr_addr = r[4];
      sp[i].band_rows = r[5];
      sp[i].memtile_addr = r[6];
      sp[i].band_bytes = r[7];
    }
    h5::Handle stages = h5::open_group(g, "stages");
    std::vector<std::string> names = h5::children(stages);
    std::vector<Decision> ds;
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string& n = names[i];
      if (n != fmt::format("{:04d}", i)) fail("stage group '{}' where '{:04d}' was expected", n, i);
      h5::Handle sg = h5::open_group(stages, n);
      Decision d;
      auto split = h5::read_attr_ints(sg, "split"), tile = h5::read_attr_ints(sg, "tile");
      if (split.size() != 4 || tile.size() != 3) fail("bad stage '{}'", n);
      d.ps = split[0], d.pc = split[1], d.ny = split[2], d.nx = split[3];
      d.th = tile[0], d.tw = tile[1], d.ci_t = tile[2];
      std::string order = h5::read_attr_string(sg, "order");
      if (order != "A" && order != "B") fail("bad loop order '{}'", order);
      d.order = order[0];
      const int64_t resident = h5::read_attr_int(sg, "weights_resident");
      if (resident != 0 && resident != 1) fail("stage '{}': weights_resident {} is neither 0 nor 1", n, resident);
      d.w_resident = resident != 0;
      d.cbounds = h5::read_attr_ints(sg, "channel_bounds");
      if (h5::has_attr(sg, "row_order")) d.rows = h5::read_attr_ints(sg, "row_order");
      ds.push_back(d);
    }
    auto out = std::make_shared<Schedule>(rebuild_schedule(m, hw, dtype, ds, sp, fp));
    const std::vector<std::string> storage_names = h5::read_strings(g, "storage_names");
    if (storage_names.size() != sp.size()) fail("{} storage names for {} storages", storage_names.size(), sp.size());
    for (size_t i = 0; i < sp.size(); ++i) {
      const Storage& st = out->graph.storages[i];
      const int64_t* r = t.data() + i * 8;
      if (storage_names[i] != st.name || r[0] != st.H || r[1] != st.W || r[2] != st.C)
        fail("storages row {} is '{}' [{}, {}, {}], the model's activation '{}' [{}, {}, {}]", i, storage_names[i], r[0], r[1],
             r[2], st.name, st.H, st.W, st.C);
    }
    check_derived(g, *out);
    // Last, as for /compact and /program.
    check_group_hash(file_id, g, schedule_group_hash(hw_json, dtype, src, fp, storage_names, t, ds),
                     "run 'bsp schedule' again");
    out->source_hash = src;
    return out;
  } catch (const Error& e) {
    throw Error(fmt::format("/schedule: {}", e.what()));
  }
}

void save_program(const ProgramFile& pf, int64_t file_id) {
  const Program& p = pf.program;
  h5::Handle g = h5::create_group(file_id, "program");
  h5::write_attr(g, "version", p.uses_sparse24() ? kProgramVersionSparse24
                               : p.uses_act()    ? kProgramVersionAct
                                                 : kVersion);
  h5::write_attr(g, "target", p.hw.name);
  h5::write_attr(g, "hardware", hardware_to_json(p.hw).dump());
  h5::write_attr(g, "dtype", std::string(dtype_name(p.dtype)));
  h5::write_attr(g, "source_hash", hex(pf.source_hash));
  h5::write_attr(g, "fingerprint", hex(p.fingerprint));
  h5::write_attr(g, "ddr_bytes", p.ddr_bytes);
  h5::write_attr(g, "ddr_const_bytes", p.ddr_const_bytes);
  h5::write_attr(g, "input_addr", p.input_addr);
  h5::write_attr(g, "output_addr", p.output_addr);
  h5::write_attr(g, "input_shape", p.input_shape);
  h5::write_attr(g, "output_shape", p.output_shape);
  std::vector<std::string> names;
  std::vector<int32_t> words = encode_program(p, names);
  Array<int32_t> code({static_cast<int64_t>(words.size())});
  std::copy(words.begin(), words.end(), code.data());
  h5::write_array(g, "code", code, /*compress=*/true);
  h5::write_strings(g, "names", names);
  if (!pf.const_image.empty()) {
    Array<uint8_t> img({static_cast<int64_t>(pf.const_image.size())});
    std::copy(pf.const_image.begin(), pf.const_image.end(), img.data());
    h5::write_array(g, "ddr_image", img, /*compress=*/true);
  }
  write_group_hash(g, program_group_hash(hardware_to_json(p.hw).dump(), p, pf.source_hash, words, names, pf.const_image));
}

std::shared_ptr<const ProgramFile> load_program(int64_t file_id) {
  h5::Handle g = h5::open_group(file_id, "program");
  try {
    auto pf = std::make_shared<ProgramFile>();
    Program& p = pf->program;
    p.dtype = parse_dtype(h5::read_attr_string(g, "dtype"));
    pf->source_hash = unhex(h5::read_attr_string(g, "source_hash"));
    const std::string hw_json = h5::read_attr_string(g, "hardware");
    p.hw = hardware_from_json(Json::parse(hw_json), "/program");
    p.fingerprint = unhex(h5::read_attr_string(g, "fingerprint"));
    p.ddr_bytes = h5::read_attr_int(g, "ddr_bytes");
    p.ddr_const_bytes = h5::read_attr_int(g, "ddr_const_bytes");
    p.input_addr = h5::read_attr_int(g, "input_addr");
    p.output_addr = h5::read_attr_int(g, "output_addr");
    p.input_shape = h5::read_attr_ints(g, "input_shape");
    p.output_shape = h5::read_attr_ints(g, "output_shape");
    if (p.input_shape.size() != 3 || p.output_shape.size() != 3) fail("bad input or output shape");
    // The DDR: the weights image at 0, then the activations; the network's
    // input and output lie past the image and inside the DDR.
    if (p.ddr_const_bytes < 0 || p.ddr_bytes < p.ddr_const_bytes)
      fail("ddr_bytes {} and ddr_const_bytes {} are not a DDR holding its weights image", p.ddr_bytes, p.ddr_const_bytes);
    auto region = [&](const char* what, int64_t addr, const std::vector<int64_t>& shape) {
      int64_t bytes = dtype_bytes(p.dtype);
      for (int64_t d : shape) {
        if (d < 1 || d > p.ddr_bytes) fail("{} shape {} is not a map of the DDR", what, shape_str(shape));
        bytes *= d;
        if (bytes > p.ddr_bytes) fail("{} shape {} does not fit the {} bytes of DDR", what, shape_str(shape), p.ddr_bytes);
      }
      if (addr < p.ddr_const_bytes || addr > p.ddr_bytes - bytes)
        fail("the {} at address {} ({} bytes) is not inside the activations [{}, {}) of DDR", what, addr, bytes,
             p.ddr_const_bytes, p.ddr_bytes);
    };
    region("input", p.input_addr, p.input_shape);
    region("output", p.output_addr, p.output_shape);
    Array<int32_t> code = h5::read_array<int32_t>(g, "code");
    if (code.rank() != 1) fail("dataset 'code' is not one-dimensional");
    std::vector<int32_t> words(code.begin(), code.end());
    const std::vector<std::string> names = h5::read_strings(g, "names");
    if (h5::exists(g, "ddr_image")) {
      Array<uint8_t> img = h5::read_array<uint8_t>(g, "ddr_image");
      if (img.rank() != 1) fail("dataset 'ddr_image' is not one-dimensional");
      pf->const_image.assign(img.begin(), img.end());
    }
    decode_program(words, names, p);
    if (!pf->const_image.empty() && static_cast<int64_t>(pf->const_image.size()) != p.ddr_const_bytes)
      fail("ddr_image has {} bytes, ddr_const_bytes says {}", pf->const_image.size(), p.ddr_const_bytes);
    // Last: a malformed group has its own error above; a well-formed one
    // whose content is not what bsp wrote is refused here.
    check_group_hash(file_id, g, program_group_hash(hw_json, p, pf->source_hash, words, names, pf->const_image),
                     "run 'bsp codegen' again");
    return pf;
  } catch (const Error& e) {
    throw Error(fmt::format("/program: {}", e.what()));
  }
}

namespace {

// The plan of stage i: split, tile, loops, placement, work and traffic.
Json stage_plan_json(const Schedule& s, size_t i) {
  const Stage& st = s.graph.stages[i];
  const StagePlan& p = s.stages[i];
  Json e = Json::object();
  e["name"] = st.name;
  e["kind"] = stage_kind_name(st.kind);
  Json nodes = Json::array();
  for (const auto& n : st.nodes) nodes.push_back(n);
  e["nodes"] = std::move(nodes);
  e["output_shape"] = Json(Json::Array{Json(st.Ho), Json(st.Wo), Json(st.Cout)});
  Json split = Json::object();
  split["spatial_parts"] = p.d.ps;
  split["channel_parts"] = p.d.pc;
  split["grid"] = Json(Json::Array{Json(p.d.ny), Json(p.d.nx)});
  split["cores"] = p.d.ps * p.d.pc;
  e["split"] = std::move(split);
  Json tile = Json::object();
  tile["rows"] = p.d.th;
  tile["cols"] = p.d.tw;
  int64_t co = 0;
  for (size_t g = 1; g < p.d.cbounds.size(); ++g) co = std::max(co, p.d.cbounds[g] - p.d.cbounds[g - 1]);
  tile["out_channels"] = co;
  tile["in_channels"] = st.kind == StageKind::Conv ? std::min(p.d.ci_t, st.Cin) : co;
  tile["input_rows"] = p.ih;
  tile["input_cols"] = p.iw;
  e["tile"] = std::move(tile);
  Json loops = Json::object();
  loops["order"] = p.d.order == 'A' ? "tiles-outer" : "chunks-outer";
  loops["tiles"] = p.T;
  loops["chunks"] = p.J;
  loops["input_passes"] = p.K;
  e["loops"] = std::move(loops);
  e["weights_resident"] = p.d.w_resident;
  e["input_split"] = p.fm_split;   // 0: every input channel on the first core channel
  e["weights_direct"] = p.w_direct;  // DDR -> core, no memtile staging
  if (!p.d.rows.empty()) {
    Json rows = Json::array();
    for (int64_t r : p.d.rows) rows.push_back(r);
    e["row_order"] = std::move(rows);
  }
  auto place = [&](int storage) { return place_name(s.storages[static_cast<size_t>(storage)].place); };
  Json in = Json::array();
  for (const View& v : st.in) in.push_back(place(v.storage));
  e["inputs"] = std::move(in);
  e["residual"] = st.add ? Json(place(st.add->storage)) : Json();
  e["output"] = place(st.out.storage);
  e["imbalance"] = p.imbalance;
  if (st.kind == StageKind::Conv) {
    const Occupancy& o = s.occupancy[i];
    e["blocks"] = o.rows * o.cols;
    e["stored_blocks"] = o.nnz;
    int64_t wb = 0, nch = 0;
    for (const auto& part : p.chunks)
      for (const Chunk& c : part) wb += c.bytes, ++nch;
    e["weight_bytes"] = wb;
    e["weight_chunks"] = nch;
    e["sparse_operand"] = o.sparse24;  // the AIE-ML sparse B operand (man/bsp-isa.7, SPARSE OPERAND)
    if (st.act) {
      Json a = Json::object();
      a["threshold"] = st.act->threshold;
      a["block"] = Json(Json::Array{Json(st.act->block[0]), Json(st.act->block[1]), Json(st.act->block[2])});
      e["act_rule"] = std::move(a);
    }
  }
  return e;
}

// Stage i's buffers: core memory (with the banks each buffer spans) and
// memtile staging.
void stage_memory_json(const Schedule& s, size_t i, Json& e) {
  const StagePlan& p = s.stages[i];
  Json core = Json::object();
  core["used"] = p.core_used;
  Json bufs = Json::array();
  for (const Buffer& b : core_buffers(p)) {
    Json x = Json::object();
    x["name"] = b.name;
    x["addr"] = b.addr;
    x["slots"] = b.slots;
    x["slot_bytes"] = b.slot_bytes;
    x["banks"] = Json(Json::Array{Json(b.addr / (s.hw.core_memory / s.hw.core_banks)),
                                  Json((b.addr + b.bytes() - 1) / (s.hw.core_memory / s.hw.core_banks))});
    bufs.push_back(std::move(x));
  }
  core["buffers"] = std::move(bufs);
  e["core_memory"] = std::move(core);
  Json mts = Json::array();
  for (size_t m = 0; m < p.memtile.size(); ++m) {
    if (p.memtile[m].empty() && p.memtile_used[m] == 0) continue;
    Json x = Json::object();
    x["memtile"] = static_cast<int64_t>(m);
    x["used"] = p.memtile_used[m];
    Json bufs2 = Json::array();
    for (const Buffer& b : p.memtile[m]) {
      Json y = Json::object();
      y["name"] = b.name;
      y["addr"] = b.addr;
      y["slots"] = b.slots;
      y["slot_bytes"] = b.slot_bytes;
      bufs2.push_back(std::move(y));
    }
    x["buffers"] = std::move(bufs2);
    mts.push_back(std::move(x));
  }
  e["memtiles"] = std::move(mts);
}

}  // namespace

Json schedule_json(const Schedule& s) {
  Json j = Json::object();
  j["target"] = s.hw.name;
  j["hardware"] = hardware_to_json(s.hw);
  j["dtype"] = dtype_name(s.dtype);
  j["ddr_bytes"] = s.ddr_bytes;
  j["ddr_weight_bytes"] = s.ddr_const_bytes;
  Json stages = Json::array();
  double total = 0;
  for (size_t i = 0; i < s.stages.size(); ++i) {
    const StagePlan& p = s.stages[i];
    total += p.est_seconds;
    Json e = stage_plan_json(s, i);
    stage_memory_json(s, i, e);
    Json ddr = Json::object();
    ddr["read"] = p.ddr_read;
    ddr["weights"] = p.ddr_weights;
    ddr["write"] = p.ddr_write;
    e["ddr_traffic"] = std::move(ddr);
    e["est_s"] = p.est_seconds;
    stages.push_back(std::move(e));
  }
  j["stages"] = std::move(stages);
  j["est_total_s"] = total;
  Json sto = Json::array();
  for (size_t i = 0; i < s.graph.storages.size(); ++i) {
    const Storage& st = s.graph.storages[i];
    const StoragePlan& p = s.storages[i];
    Json x = Json::object();
    x["name"] = st.name;
    x["shape"] = Json(Json::Array{Json(st.H), Json(st.W), Json(st.C)});
    x["place"] = place_name(p.place);
    if (p.place == Place::DDR) {
      x["ddr_addr"] = p.ddr_addr;
    } else {
      x["memtile_addr"] = p.memtile_addr;
      x["band_rows"] = p.band_rows;
      x["band_bytes"] = p.band_bytes;
    }
    sto.push_back(std::move(x));
  }
  j["activations"] = std::move(sto);
  return j;
}

}  // namespace bsp::aie2
