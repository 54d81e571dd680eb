// From a data set to training batches: per-channel normalisation, the
// training augmentation (random crop with zero padding, horizontal flip) and
// the seeded shuffle. Batches come out channel-major, the trainer's layout.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.hpp"

namespace bsp {

// x -> (x - mean[c]) / std[c], on pixels already scaled to [0, 1] for 8-bit data.
struct Normalization {
  std::vector<double> mean, std;  // [C]
};
// Mean and standard deviation (population) of every channel over all images.
Normalization channel_stats(const ImageSet& s);
// From per-channel sums of pixels and of their squares over `count` pixels
// (population statistics; a constant channel gets std 1).
Normalization normalization_from_sums(const std::vector<double>& sum, const std::vector<double>& sq, double count);

struct Augmentation {
  int64_t pad = 0;    // random crop: shift by -pad..pad pixels in each axis, zeros shifted in
  bool flip = false;  // horizontal flip with probability 1/2
};

// A permutation of 0..n-1 that depends only on (seed, epoch).
std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed, int64_t epoch);

enum class BatchLayout {
  ChannelMajor,  // [C, nb, H, W]: out[((c * nb + j) * H + y) * W + x] (the trainer's)
  NHWC,          // [nb, H, W, C]: out[((j * H + y) * W + x) * C + c] (the model file's)
};

// Writes images idx[0..nb) of `s`, normalised (and augmented when `aug` asks,
// with random draws that depend only on (key, j0 + j)), in `layout`. j0:
// the position of idx[0] in its batch when this is one rank's share of it
// (data-parallel training), so that every image gets the draws it would
// get in one process.
void assemble_batch(const ImageSet& s, const int64_t* idx, int64_t nb, const Normalization& norm,
                    const Augmentation& aug, uint64_t key, float* out,
                    BatchLayout layout = BatchLayout::ChannelMajor, int64_t j0 = 0);

}  // namespace bsp
