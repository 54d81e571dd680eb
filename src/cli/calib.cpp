#include "cli/calib.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "core/rng.hpp"
#include "data/batch.hpp"
#include "data/dataset.hpp"
#include "train/model_data.hpp"

namespace bsp::cli {

Tensor calibration_images(const Model& m, const std::string& source, int64_t count, const char* sub) {
  const Shape s = m.input_shape();
  if (source.empty()) {
    std::fprintf(stderr,
                 "bsp %s: warning: no --calib data: activation scales come from %ld synthetic N(0, 1) images, "
                 "which can cost accuracy\n",
                 sub, static_cast<long>(count));
    Tensor x({count, s[0], s[1], s[2]});
    fill_normal(x.data(), x.size(), 1.0, 0x63616c6962ULL);
    return x;
  }
  // The first images of the training split (the whole file when it has no
  // split), normalised as bsp eval normalises them.
  DataSet data = load_data(source, DataPart::Training);
  ImageSet& set = data.train ? *data.train : *data.test;
  set.limit(count);
  train::check_data_fits(m, "the model", set, data.name, "calibration");
  const auto stored = train::model_normalization(m);
  const Normalization norm = stored ? *stored : channel_stats(set);
  Tensor x({set.n, s[0], s[1], s[2]});
  std::vector<int64_t> idx(static_cast<size_t>(set.n));
  std::iota(idx.begin(), idx.end(), 0);
  assemble_batch(set, idx.data(), set.n, norm, Augmentation{}, 0, x.data(), BatchLayout::NHWC);
  return x;
}

}  // namespace bsp::cli
