#include "onnx/metadata.hpp"

#include "core/error.hpp"
#include "core/json.hpp"

namespace bsp::onnx_io {

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const std::vector<uint8_t>& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (i + 1 < in.size() ? uint32_t{in[i + 1]} << 8 : 0) |
                       (i + 2 < in.size() ? uint32_t{in[i + 2]} : 0);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kB64[v & 63] : '=';
  }
  return out;
}

std::vector<uint8_t> unbase64(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (s.size() % 4) fail("bad base64 data");
  std::vector<uint8_t> out;
  for (size_t i = 0; i < s.size(); i += 4) {
    int v[4];
    for (int k = 0; k < 4; ++k) {
      v[k] = s[i + static_cast<size_t>(k)] == '=' ? 0 : val(s[i + static_cast<size_t>(k)]);
      if (v[k] < 0) fail("bad base64 data");
    }
    const uint32_t w = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    out.push_back(static_cast<uint8_t>(w >> 16));
    if (s[i + 2] != '=') out.push_back(static_cast<uint8_t>(w >> 8));
    if (s[i + 3] != '=') out.push_back(static_cast<uint8_t>(w));
  }
  return out;
}

// 0/1 bytes packed eight to a byte, least significant bit first.
std::string pack_bits(const Array<uint8_t>& bits) {
  std::vector<uint8_t> packed((bits.size() + 7) / 8, 0);
  for (size_t i = 0; i < bits.size(); ++i)
    if (bits[i]) packed[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  return base64(packed);
}

Array<uint8_t> unpack_bits(const std::string& s, const Shape& shape) {
  const std::vector<uint8_t> packed = unbase64(s);
  Array<uint8_t> bits(shape);
  if (packed.size() != (bits.size() + 7) / 8) fail("mask of {} bits holds {} bytes", bits.size(), packed.size());
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = (packed[i / 8] >> (i % 8)) & 1;
  return bits;
}

Json shape_json(const Shape& s) {
  Json j = Json::array();
  for (int64_t d : s) j.push_back(d);
  return j;
}
Shape json_shape(const Json& j) {
  Shape s;
  for (const Json& d : j.as_array()) s.push_back(d.as_int());
  return s;
}

Json mask_json(const Mask& m) {
  Json j = Json::object();
  j["pattern"] = m.pattern;
  j["density"] = m.density;
  j["block"] = m.is_block() ? Json(Json::Array{Json(m.block_rows), Json(m.block_cols)}) : Json();
  j["shape"] = shape_json(m.bits.shape());
  j["bits"] = pack_bits(m.bits);
  if (m.is_tiled()) {
    Json ct = Json::array();
    for (int32_t t : m.column_tile) ct.push_back(static_cast<int64_t>(t));
    j["column_tile"] = std::move(ct);
    j["tile_rows_shape"] = shape_json(m.tile_rows.shape());
    j["tile_rows"] = pack_bits(m.tile_rows);
  }
  return j;
}

Mask json_mask(const Json& j) {
  Mask m;
  m.pattern = j.find("pattern")->as_string();
  m.density = j.find("density")->as_double();
  if (const Json* b = j.find("block"); b && !b->is_null()) {
    m.block_rows = (*b)[0].as_int();
    m.block_cols = (*b)[1].as_int();
  }
  m.bits = unpack_bits(j.find("bits")->as_string(), json_shape(*j.find("shape")));
  if (const Json* ct = j.find("column_tile")) {
    m.column_tile = Array<int32_t>({static_cast<int64_t>(ct->as_array().size())});
    for (size_t i = 0; i < ct->as_array().size(); ++i) m.column_tile[i] = static_cast<int32_t>((*ct)[i].as_int());
    m.tile_rows = unpack_bits(j.find("tile_rows")->as_string(), json_shape(*j.find("tile_rows_shape")));
  }
  return m;
}

}  // namespace

Metadata bsp_metadata(const Model& m) {
  Metadata md;
  md["bsp.format"] = "1";
  md["bsp.arch"] = m.arch;
  Json h = Json::array();
  for (const auto& line : m.history) h.push_back(line);
  md["bsp.history"] = h.dump();
  for (const Node& n : m.nodes) {
    Json j = Json::object();
    if (n.op == Op::BatchNorm) j["eps"] = n.attrs.get_double("eps", 1e-5);
    for (const char* k : {"norm_mean", "norm_std"})  // the input's normalisation (ONNX takes normalised images)
      if (n.op == Op::Input && n.attrs.has(k)) {
        Json v = Json::array();
        // A file may hold another type here: a clear error, not bad_variant_access.
        const AttrValue& a = n.attrs.all().at(k);
        if (const auto* xs = std::get_if<std::vector<double>>(&a))
          for (double x : *xs) v.push_back(x);
        else if (const auto* x = std::get_if<double>(&a))  // one channel, as model_normalization reads it
          v.push_back(*x);
        else
          fail("node '{}': attribute '{}' is not a float64 list", n.name, k);
        j[k] = std::move(v);
      }
    if (n.mask) j["mask"] = mask_json(*n.mask);
    if (!j.as_object().empty()) md["bsp.node." + n.name] = j.dump();
  }
  return md;
}

bool restore_bsp_metadata(const Metadata& md, Model& m) {
  if (!md.count("bsp.format")) return false;
  if (md.at("bsp.format") != "1") fail("metadata of bsp format {}: this bsp reads 1", md.at("bsp.format"));
  try {
    if (md.count("bsp.arch")) m.arch = md.at("bsp.arch");
    if (md.count("bsp.history")) {
      m.history.clear();
      const Json h = Json::parse(md.at("bsp.history"));
      for (const Json& line : h.as_array()) m.history.push_back(line.as_string());
    }
    const std::string prefix = "bsp.node.";
    for (const auto& [k, v] : md) {
      if (k.rfind(prefix, 0) != 0) continue;
      const std::string name = k.substr(prefix.size());
      Node* n = m.find(name);
      if (!n) fail("it describes node '{}', which the graph does not have", name);
      const Json j = Json::parse(v);
      if (const Json* eps = j.find("eps")) n->attrs.set("eps", eps->as_double());
      for (const char* key : {"norm_mean", "norm_std"})
        if (const Json* v = j.find(key)) {
          std::vector<double> x;
          for (const Json& e : v->as_array()) x.push_back(e.as_double());
          n->attrs.set(key, x);
        }
      if (const Json* mask = j.find("mask")) n->mask = json_mask(*mask);
    }
    m.validate();
  } catch (const Error& e) {
    fail("bsp metadata: {}", e.what());
  }
  return true;
}

}  // namespace bsp::onnx_io
