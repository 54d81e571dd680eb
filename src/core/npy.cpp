#include "core/npy.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/error.hpp"

namespace bsp {

namespace {

// The value of `key` in the header dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".
std::string field(const std::string& h, const std::string& key) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) fail("the .npy header has no '{}'", key);
  size_t c = h.find(':', k);
  if (c == std::string::npos) fail("bad .npy header");
  size_t b = c + 1;
  while (b < h.size() && h[b] == ' ') ++b;
  size_t e = b;
  if (h[b] == '(') {
    e = h.find(')', b);
    if (e == std::string::npos) fail("bad .npy shape");
    return h.substr(b, e - b + 1);
  }
  if (h[b] == '\'') {
    e = h.find('\'', b + 1);
    return h.substr(b + 1, e - b - 1);
  }
  while (e < h.size() && h[e] != ',' && h[e] != '}') ++e;
  return h.substr(b, e - b);
}

}  // namespace

Tensor read_npy(const std::string& path) {
  try {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("{}", errno_message(errno));
    char magic[8];
    if (!f.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) fail("not a .npy file");
    uint32_t hlen = 0;
    if (magic[6] == 1) {
      unsigned char b[2];
      if (!f.read(reinterpret_cast<char*>(b), 2)) fail("truncated .npy header");
      hlen = b[0] | (b[1] << 8);
    } else if (magic[6] == 2 || magic[6] == 3) {
      unsigned char b[4];
      if (!f.read(reinterpret_cast<char*>(b), 4)) fail("truncated .npy header");
      hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
    } else {
      fail("unknown .npy version {}", static_cast<int>(magic[6]));
    }
    if (hlen > (1u << 20)) fail("bad .npy header length");
    std::string h(hlen, '\0');
    if (!f.read(h.data(), hlen)) fail("truncated .npy header");
    const std::string descr = field(h, "descr");
    if (field(h, "fortran_order").find("True") != std::string::npos) fail("Fortran-order arrays are not supported");
    std::string sh = field(h, "shape");
    Shape shape;
    for (size_t i = 1; i + 1 < sh.size();) {
      while (i < sh.size() && (sh[i] == ' ' || sh[i] == ',')) ++i;
      if (i + 1 >= sh.size()) break;
      size_t j = i;
      while (j < sh.size() && std::isdigit(static_cast<unsigned char>(sh[j]))) ++j;
      if (j == i) fail("bad .npy shape '{}'", sh);
      shape.push_back(std::stoll(sh.substr(i, j - i)));
      i = j;
    }
    Tensor t(shape);
    const size_t n = t.size();
    if (descr == "<f4") {
      if (!f.read(reinterpret_cast<char*>(t.data()), static_cast<std::streamsize>(n * 4))) fail("truncated .npy data");
    } else if (descr == "<f8") {
      std::vector<double> d(n);
      if (!f.read(reinterpret_cast<char*>(d.data()), static_cast<std::streamsize>(n * 8))) fail("truncated .npy data");
      for (size_t i = 0; i < n; ++i) t[i] = static_cast<float>(d[i]);
    } else {
      fail("dtype '{}' is not supported (float32 or float64)", descr);
    }
    return t;
  } catch (const Error& e) {
    throw Error(fmt::format("cannot read '{}': {}", path, e.what()));
  }
}

void write_npy(const Tensor& t, const std::string& path) {
  std::string shape = "(";
  for (size_t k = 0; k < t.shape().size(); ++k) shape += std::to_string(t.shape()[k]) + (t.shape().size() == 1 || k + 1 < t.shape().size() ? "," : "");
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic, version, length, header padded with spaces to a multiple of 64 (with its newline).
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  if (!f) fail("cannot write '{}': {}", path, errno_message(errno));
  const uint16_t hlen = static_cast<uint16_t>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  const char len[2] = {static_cast<char>(hlen & 255), static_cast<char>(hlen >> 8)};
  f.write(len, 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(reinterpret_cast<const char*>(t.data()), static_cast<std::streamsize>(t.size() * sizeof(float)));
  if (!f) fail("cannot write '{}': {}", path, errno_message(errno));
}

}  // namespace bsp
