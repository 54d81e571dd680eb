#include "cli/calib.hpp"

#include <cstdio>

#include "core/rng.hpp"

namespace bsp::cli {

Tensor calibration_images(const Model& m, const std::string& source, int64_t count, const char* sub) {
  if (!source.empty()) fail_usage("no calibration data source is supported yet: '{}'", source);
  const Shape s = m.input_shape();
  std::fprintf(stderr,
               "bsp %s: warning: no calibration data: activation scales come from %ld synthetic N(0, 1) images, "
               "which can cost accuracy\n",
               sub, static_cast<long>(count));
  Tensor x({count, s[0], s[1], s[2]});
  fill_normal(x.data(), x.size(), 1.0, 0x63616c6962ULL);
  return x;
}

}  // namespace bsp::cli
