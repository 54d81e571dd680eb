#include "aie2/hardware.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <variant>
#include <vector>
#include <sstream>
#include <string_view>

#include "core/error.hpp"
#include "core/install_paths.hpp"


namespace bsp::aie2 {

int64_t Hardware::macs_per_cycle(DType t) const {
  return t == DType::Int8 ? macs_int8 : t == DType::BF16 ? macs_bf16 : macs_fp32;
}

namespace {

bool is_file(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
std::string read_text(const std::string& path) {
  std::ifstream f(path);
  if (!f) fail("cannot read '{}': {}", path, errno_message(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Reads the keys of one JSON object, refusing unknown ones (a misspelt key
// would otherwise be silently ignored).
class Fields {
 public:
  Fields(const Json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j.is_object()) fail("{}: expected an object", where_);
  }
  const Json* get(const std::string& key) {
    seen_.insert(key);
    return j_.find(key);
  }
  void done() const {
    for (const auto& [k, v] : j_.as_object()) {
      (void)v;
      if (!seen_.count(k)) fail("{}: unknown key '{}' (see bsp-aie2(5))", where_, k);
    }
  }
  const std::string& where() const { return where_; }

 private:
  const Json& j_;
  std::string where_;
  std::set<std::string> seen_;
};

// Every field of a hardware description (bsp-aie2(5)), in file order: the
// object it sits in ("" = the top level), its key, the member it fills and,
// for numbers, its valid range. Reading (apply_json) and writing
// (hardware_to_json) both walk this one list.
struct FieldSpec {
  const char* group;
  const char* key;
  std::variant<std::string Hardware::*, int64_t Hardware::*, double Hardware::*, bool Hardware::*> member;
  double lo = 0, hi = 0;
};

const std::vector<FieldSpec>& field_specs() {
  static const std::vector<FieldSpec> specs = {
      {"", "name", &Hardware::name},
      {"", "description", &Hardware::description},
      {"", "rows", &Hardware::rows, 1, 64},
      {"", "cols", &Hardware::cols, 1, 64},
      {"", "clock_ghz", &Hardware::clock_ghz, 0.01, 100},
      {"core", "data_memory_bytes", &Hardware::core_memory, 1024, 1 << 24},
      {"core", "banks", &Hardware::core_banks, 1, 64},
      {"core", "program_memory_bytes", &Hardware::core_program_memory, 0, 1 << 24},
      {"core", "locks", &Hardware::core_locks, 2, 1024},
      {"core", "reserved_bytes", &Hardware::core_reserved, 0, 1 << 24},
      {"core", "mm2s_channels", &Hardware::core_mm2s, 1, 64},
      {"core", "s2mm_channels", &Hardware::core_s2mm, 1, 64},
      {"memtile", "memory_bytes", &Hardware::memtile_memory, 4096, 1 << 30},
      {"memtile", "banks", &Hardware::memtile_banks, 1, 256},
      {"memtile", "locks", &Hardware::memtile_locks, 2, 4096},
      {"memtile", "mm2s_channels", &Hardware::memtile_mm2s, 1, 64},
      {"memtile", "s2mm_channels", &Hardware::memtile_s2mm, 1, 64},
      {"shim", "mm2s_channels", &Hardware::shim_mm2s, 1, 64},
      {"shim", "s2mm_channels", &Hardware::shim_s2mm, 1, 64},
      {"shim", "channel_gbps", &Hardware::ddr_channel_gbps, 1e-3, 1e4},
      {"", "stream_gbps", &Hardware::stream_gbps, 1e-3, 1e4},
      {"macs_per_cycle", "int8", &Hardware::macs_int8, 1, 1 << 20},
      {"macs_per_cycle", "bf16", &Hardware::macs_bf16, 1, 1 << 20},
      {"macs_per_cycle", "fp32", &Hardware::macs_fp32, 1, 1 << 20},
      {"macs_per_cycle", "int8_sparse", &Hardware::macs_int8_sparse, 0, 1 << 20},
      {"", "compute_efficiency", &Hardware::compute_efficiency, 1e-3, 1.0},
      {"", "kernel_overhead_cycles", &Hardware::kernel_overhead_cycles, 0, 1 << 30},
      {"", "dma_overhead_cycles", &Hardware::dma_overhead_cycles, 0, 1 << 30},
      {"", "ddr_overlap", &Hardware::ddr_overlap},
      {"", "act_block_skip", &Hardware::act_block_skip},
      {"vector", "positions", &Hardware::vec_positions, 1, 1024},
      {"vector", "cout", &Hardware::vec_cout, 1, 1024},
      {"vector", "cin", &Hardware::vec_cin, 1, 1024},
      {"vector", "bytes_per_cycle", &Hardware::vec_bytes_per_cycle, 1, 1 << 16},
  };
  return specs;
}

// Reads one field from f into h when present; a wrong type or a value out
// of range is an error naming the file, the object and the key.
void read_field(Fields& f, const FieldSpec& s, Hardware& h) {
  const Json* v = f.get(s.key);
  if (!v) return;
  const auto bad = [&](const std::string& why) { fail("{}: '{}': {}", f.where(), s.key, why); };
  if (auto m = std::get_if<std::string Hardware::*>(&s.member)) {
    if (!v->is_string()) fail("{}: '{}' must be a string", f.where(), s.key);
    h.*(*m) = v->as_string();
  } else if (auto m = std::get_if<bool Hardware::*>(&s.member)) {
    if (!v->is_bool()) fail("{}: '{}' must be true or false", f.where(), s.key);
    h.*(*m) = v->as_bool();
  } else if (auto m = std::get_if<int64_t Hardware::*>(&s.member)) {
    int64_t x = 0;
    try {
      x = v->as_int();
    } catch (const Error& e) {
      bad(e.what());
    }
    const auto lo = static_cast<int64_t>(s.lo), hi = static_cast<int64_t>(s.hi);
    if (x < lo || x > hi) fail("{}: '{}' = {} is out of range [{}, {}]", f.where(), s.key, x, lo, hi);
    h.*(*m) = x;
  } else {
    double x = 0;
    try {
      x = v->as_double();
    } catch (const Error& e) {
      bad(e.what());
    }
    if (!(x >= s.lo && x <= s.hi)) fail("{}: '{}' = {} is out of range [{}, {}]", f.where(), s.key, x, s.lo, s.hi);
    h.*std::get<double Hardware::*>(s.member) = x;
  }
}

// Fills `h` from `j`; keys not present keep their current value (a "base"
// description, or the defaults).
void apply_json(Hardware& h, const Json& j, const std::string& source) {
  Fields top(j, source);
  top.get("base");  // handled by the caller
  std::vector<std::pair<std::string, Fields>> groups;  // the nested objects present, in file order
  for (const FieldSpec& s : field_specs()) {
    Fields* f = &top;
    if (*s.group) {
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == s.group; });
      if (it == groups.end()) {
        const Json* v = top.get(s.group);
        if (!v) continue;
        groups.emplace_back(s.group, Fields(*v, source + ": '" + s.group + "'"));
        it = groups.end() - 1;
      }
      f = &it->second;
    }
    read_field(*f, s, h);
  }
  for (const auto& g : groups) g.second.done();
  top.done();
}

void check(const Hardware& h, const std::string& source) {
  auto need = [&](bool ok, const char* what) {
    if (!ok) fail("{}: missing or invalid '{}'", source, what);
  };
  need(!h.name.empty(), "name");
  need(h.rows > 0, "rows");
  need(h.cols > 0, "cols");
  need(h.core_memory > 0, "core.data_memory_bytes");
  need(h.core_banks > 0, "core.banks");
  need(h.core_locks > 0, "core.locks");
  need(h.core_mm2s > 0, "core.mm2s_channels");
  need(h.core_s2mm > 0, "core.s2mm_channels");
  need(h.memtile_memory > 0, "memtile.memory_bytes");
  need(h.memtile_banks > 0, "memtile.banks");
  need(h.memtile_locks > 0, "memtile.locks");
  need(h.memtile_mm2s > 0, "memtile.mm2s_channels");
  need(h.memtile_s2mm > 0, "memtile.s2mm_channels");
  need(h.shim_mm2s > 0, "shim.mm2s_channels");
  need(h.shim_s2mm > 0, "shim.s2mm_channels");
  if (h.core_memory % h.core_banks) fail("{}: core data memory is not a multiple of its bank count", source);
  if (h.memtile_memory % h.memtile_banks) fail("{}: memtile memory is not a multiple of its bank count", source);
  if (h.core_reserved >= h.core_memory / 2) fail("{}: core.reserved_bytes leaves too little data memory", source);
}

Hardware resolve(const std::string& target, int depth);

Hardware from_json_at_depth(const Json& j, const std::string& source, int depth) {
  Hardware h;
  if (const Json* base = j.find("base")) {
    if (!base->is_string()) fail("{}: 'base' must be a target name or path", source);
    if (depth > 8) fail("{}: 'base' descriptions nest too deeply", source);
    h = resolve(base->as_string(), depth + 1);
  }
  h.source = source;
  apply_json(h, j, source);
  check(h, source);
  return h;
}

Hardware load_json_file(const std::string& path, int depth) {
  Json j;
  try {
    j = Json::parse(read_text(path));
  } catch (const Error& e) {
    fail("cannot read hardware description '{}': {}", path, e.what());
  }
  return from_json_at_depth(j, path, depth);
}

bool looks_like_path(const std::string& t) {
  return t.find('/') != std::string::npos || (t.size() > 5 && t.compare(t.size() - 5, 5, ".json") == 0);
}

// "aie2:RxC" -> (R, C); false when `t` has another form.
bool parse_mesh(const std::string& t, int64_t& r, int64_t& c) {
  if (t.rfind("aie2:", 0) != 0) return false;
  std::string s = t.substr(5);
  size_t x = s.find('x');
  if (x == std::string::npos || x == 0 || x + 1 == s.size()) fail_usage("bad target '{}': expected aie2:RxC, e.g. aie2:4x4", t);
  for (size_t i = 0; i < s.size(); ++i)
    if (i != x && !std::isdigit(static_cast<unsigned char>(s[i])))
      fail_usage("bad target '{}': expected aie2:RxC, e.g. aie2:4x4", t);
  r = std::atoll(s.substr(0, x).c_str());
  c = std::atoll(s.substr(x + 1).c_str());
  if (r < 1 || c < 1 || r > 64 || c > 64) fail_usage("bad target '{}': rows and columns must be 1 to 64", t);
  return true;
}

Hardware resolve(const std::string& target, int depth) {
  if (target.empty()) fail_usage("empty target");
  if (looks_like_path(target)) {
    if (!is_file(target)) fail("cannot read hardware description '{}': no such file", target);
    return load_json_file(target, depth);
  }
  const std::string dir = data_dir() + "/aie2/";
  int64_t r = 0, c = 0;
  if (parse_mesh(target, r, c)) {
    std::string shipped = dir + "aie2-" + std::to_string(r) + "x" + std::to_string(c) + ".json";
    if (is_file(shipped)) return load_json_file(shipped, depth);
    Hardware h = load_json_file(dir + "aie2.json", depth);
    h.rows = r;
    h.cols = c;
    h.name = "aie2-" + std::to_string(r) + "x" + std::to_string(c);
    h.description = "AIE2 array of " + std::to_string(r) + " rows x " + std::to_string(c) + " columns (the aie2 template)";
    return h;
  }
  for (char ch : target)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.'))
      fail_usage("unknown target '{}' (a name such as npu1, aie2:RxC, or a .json path)", target);
  std::string f = dir + target + ".json";
  if (!is_file(f)) fail_usage("unknown target '{}': no {} (see bsp-aie2(5))", target, f);
  return load_json_file(f, depth);
}

}  // namespace

Hardware hardware_from_json(const Json& j, const std::string& source) {
  // A stored description is whole (hardware_to_json writes every key): a
  // "base" would make reading a model file open another file, named by the
  // model file.
  if (j.is_object() && j.find("base")) fail("{}: a stored hardware description has no 'base'", source);
  return from_json_at_depth(j, source, 0);
}

Hardware load_target(const std::string& target) { return resolve(target, 0); }

Json hardware_to_json(const Hardware& h) {
  Json j = Json::object();
  for (const FieldSpec& s : field_specs()) {
    // Written only when set: a description without the extension stays
    // what an older bsp reads (and hashes) as before.
    if (std::string_view(s.key) == "act_block_skip" && !h.act_block_skip) continue;
    Json& dst = *s.group ? (j.find(s.group) ? j[s.group] : (j[s.group] = Json::object())) : j;
    dst[s.key] = std::visit([&](auto m) { return Json(h.*m); }, s.member);
  }
  return j;
}

void apply_paper_model(Hardware& h) {
  h.clock_ghz = 1.0;
  h.compute_efficiency = 1.0;
  h.ddr_channel_gbps = 4.0;
  h.stream_gbps = 4.0;
  h.macs_int8 = 256;
  h.kernel_overhead_cycles = 0;
  h.dma_overhead_cycles = 0;
  h.ddr_overlap = false;
  h.name += "+paper";
}

std::string data_dir() {
  const std::string d = find_data_dir();
  if (d.empty()) fail("cannot find the bsp data directory (aie2/*.json): looked in {}; set BSP_DATA_DIR", data_dir_candidates());
  return d;
}

}  // namespace bsp::aie2
