// Small helpers shared by the unit tests.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/h5.hpp"
#include "core/rng.hpp"
#include "core/tensor.hpp"

namespace bsp::test {

// A fresh temporary directory, removed (with its files) at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string t = "/tmp/bsp-test.XXXXXX";
    if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
    path_ = t;
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline Tensor random_tensor(Shape s, uint64_t seed, double scale = 1.0) {
  Tensor t(std::move(s));
  fill_normal(t.data(), t.size(), scale, seed);
  return t;
}

inline float max_abs_diff(const Tensor& a, const Tensor& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// Changes weight value `index` of node `node` inside a model file, as another
// tool would: the file's other groups stay as they were written.
inline void edit_weight_in_file(const std::string& path, const std::string& node, size_t index, float delta) {
  h5::Handle f = h5::open_file_readwrite(path);
  h5::Handle g = h5::open_group(f, "graph/nodes/" + node);
  Tensor w = h5::read_array<float>(g, "weight");
  w[index] += delta;
  H5Ldelete(g, "weight", H5P_DEFAULT);
  h5::write_array(g, "weight", w);
}

}  // namespace bsp::test
