// Small helpers shared by the unit tests.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

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

}  // namespace bsp::test
