#include "aie2/hardware.hpp"

#include <sys/stat.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "core/error.hpp"

#ifndef BSP_DATADIR
#define BSP_DATADIR ""
#endif
#ifndef BSP_SOURCE_DATADIR
#define BSP_SOURCE_DATADIR ""
#endif

namespace bsp::aie2 {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Int8: return "int8";
    case DType::BF16: return "bf16";
    case DType::FP32: return "fp32";
  }
  return "?";
}

DType dtype_from_name(const std::string& s) {
  if (s == "int8") return DType::Int8;
  if (s == "bf16") return DType::BF16;
  if (s == "fp32") return DType::FP32;
  fail_usage("unknown data type '{}' (int8, bf16, fp32)", s);
}

int64_t dtype_bytes(DType t) { return t == DType::Int8 ? 1 : t == DType::BF16 ? 2 : 4; }

int64_t Hardware::macs_per_cycle(DType t) const {
  return t == DType::Int8 ? macs_int8 : t == DType::BF16 ? macs_bf16 : macs_fp32;
}

namespace {

bool is_file(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool is_dir(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
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

void read_int(Fields& f, const std::string& key, int64_t& out, int64_t lo, int64_t hi) {
  const Json* v = f.get(key);
  if (!v) return;
  int64_t x;
  try {
    x = v->as_int();
  } catch (const Error& e) {
    fail("{}: '{}': {}", f.where(), key, e.what());
  }
  if (x < lo || x > hi) fail("{}: '{}' = {} is out of range [{}, {}]", f.where(), key, x, lo, hi);
  out = x;
}

void read_double(Fields& f, const std::string& key, double& out, double lo, double hi) {
  const Json* v = f.get(key);
  if (!v) return;
  double x;
  try {
    x = v->as_double();
  } catch (const Error& e) {
    fail("{}: '{}': {}", f.where(), key, e.what());
  }
  if (!(x >= lo && x <= hi)) fail("{}: '{}' = {} is out of range [{}, {}]", f.where(), key, x, lo, hi);
  out = x;
}

void read_string(Fields& f, const std::string& key, std::string& out) {
  const Json* v = f.get(key);
  if (!v) return;
  if (!v->is_string()) fail("{}: '{}' must be a string", f.where(), key);
  out = v->as_string();
}

void read_bool(Fields& f, const std::string& key, bool& out) {
  const Json* v = f.get(key);
  if (!v) return;
  if (!v->is_bool()) fail("{}: '{}' must be true or false", f.where(), key);
  out = v->as_bool();
}

template <typename Fn>
void read_object(Fields& f, const std::string& key, Fn&& fn) {
  const Json* v = f.get(key);
  if (!v) return;
  Fields sub(*v, f.where() + ": '" + key + "'");
  fn(sub);
  sub.done();
}

// Fills `h` from `j`; keys not present keep their current value (a "base"
// description, or the defaults).
void apply_json(Hardware& h, const Json& j, const std::string& source) {
  Fields f(j, source);
  f.get("base");  // handled by the caller
  read_string(f, "name", h.name);
  read_string(f, "description", h.description);
  read_int(f, "rows", h.rows, 1, 64);
  read_int(f, "cols", h.cols, 1, 64);
  read_double(f, "clock_ghz", h.clock_ghz, 0.01, 100);
  read_object(f, "core", [&](Fields& c) {
    read_int(c, "data_memory_bytes", h.core_memory, 1024, int64_t(1) << 24);
    read_int(c, "banks", h.core_banks, 1, 64);
    read_int(c, "program_memory_bytes", h.core_program_memory, 0, int64_t(1) << 24);
    read_int(c, "locks", h.core_locks, 2, 1024);
    read_int(c, "reserved_bytes", h.core_reserved, 0, int64_t(1) << 24);
    read_int(c, "mm2s_channels", h.core_mm2s, 1, 64);
  });
  read_object(f, "memtile", [&](Fields& m) {
    read_int(m, "memory_bytes", h.memtile_memory, 4096, int64_t(1) << 30);
    read_int(m, "banks", h.memtile_banks, 1, 256);
    read_int(m, "locks", h.memtile_locks, 2, 4096);
    read_int(m, "mm2s_channels", h.memtile_mm2s, 1, 64);
    read_int(m, "s2mm_channels", h.memtile_s2mm, 1, 64);
  });
  read_object(f, "shim", [&](Fields& s) {
    read_int(s, "mm2s_channels", h.shim_mm2s, 1, 64);
    read_int(s, "s2mm_channels", h.shim_s2mm, 1, 64);
    read_double(s, "channel_gbps", h.ddr_channel_gbps, 1e-3, 1e4);
  });
  read_double(f, "stream_gbps", h.stream_gbps, 1e-3, 1e4);
  read_object(f, "macs_per_cycle", [&](Fields& m) {
    read_int(m, "int8", h.macs_int8, 1, 1 << 20);
    read_int(m, "bf16", h.macs_bf16, 1, 1 << 20);
    read_int(m, "fp32", h.macs_fp32, 1, 1 << 20);
  });
  read_double(f, "compute_efficiency", h.compute_efficiency, 1e-3, 1.0);
  read_int(f, "kernel_overhead_cycles", h.kernel_overhead_cycles, 0, 1 << 30);
  read_int(f, "dma_overhead_cycles", h.dma_overhead_cycles, 0, 1 << 30);
  read_bool(f, "ddr_overlap", h.ddr_overlap);
  read_object(f, "vector", [&](Fields& v) {
    read_int(v, "positions", h.vec_positions, 1, 1024);
    read_int(v, "cout", h.vec_cout, 1, 1024);
    read_int(v, "cin", h.vec_cin, 1, 1024);
    read_int(v, "bytes_per_cycle", h.vec_bytes_per_cycle, 1, 1 << 16);
  });
  f.done();
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

Hardware hardware_from_json(const Json& j, const std::string& source) { return from_json_at_depth(j, source, 0); }

Hardware load_target(const std::string& target) { return resolve(target, 0); }

Json hardware_to_json(const Hardware& h) {
  Json j = Json::object();
  j["name"] = h.name;
  j["description"] = h.description;
  j["rows"] = h.rows;
  j["cols"] = h.cols;
  j["clock_ghz"] = h.clock_ghz;
  Json core = Json::object();
  core["data_memory_bytes"] = h.core_memory;
  core["banks"] = h.core_banks;
  core["program_memory_bytes"] = h.core_program_memory;
  core["locks"] = h.core_locks;
  core["reserved_bytes"] = h.core_reserved;
  core["mm2s_channels"] = h.core_mm2s;
  j["core"] = std::move(core);
  Json mt = Json::object();
  mt["memory_bytes"] = h.memtile_memory;
  mt["banks"] = h.memtile_banks;
  mt["locks"] = h.memtile_locks;
  mt["mm2s_channels"] = h.memtile_mm2s;
  mt["s2mm_channels"] = h.memtile_s2mm;
  j["memtile"] = std::move(mt);
  Json shim = Json::object();
  shim["mm2s_channels"] = h.shim_mm2s;
  shim["s2mm_channels"] = h.shim_s2mm;
  shim["channel_gbps"] = h.ddr_channel_gbps;
  j["shim"] = std::move(shim);
  j["stream_gbps"] = h.stream_gbps;
  Json macs = Json::object();
  macs["int8"] = h.macs_int8;
  macs["bf16"] = h.macs_bf16;
  macs["fp32"] = h.macs_fp32;
  j["macs_per_cycle"] = std::move(macs);
  j["compute_efficiency"] = h.compute_efficiency;
  j["kernel_overhead_cycles"] = h.kernel_overhead_cycles;
  j["dma_overhead_cycles"] = h.dma_overhead_cycles;
  j["ddr_overlap"] = h.ddr_overlap;
  Json v = Json::object();
  v["positions"] = h.vec_positions;
  v["cout"] = h.vec_cout;
  v["cin"] = h.vec_cin;
  v["bytes_per_cycle"] = h.vec_bytes_per_cycle;
  j["vector"] = std::move(v);
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
  if (const char* env = std::getenv("BSP_DATA_DIR"); env && *env) return env;
  const std::string installed = BSP_DATADIR;
  if (!installed.empty() && is_dir(installed + "/aie2")) return installed;
  const std::string source = BSP_SOURCE_DATADIR;
  if (!source.empty() && is_dir(source + "/aie2")) return source;
  fail("cannot find the bsp data directory (aie2/*.json): looked in '{}' and '{}'; set BSP_DATA_DIR", installed,
       source);
}

}  // namespace bsp::aie2
