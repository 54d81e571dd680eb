// The torchvision transforms of image-folder data sets, on decoded 8-bit
// images: RandomResizedCrop + RandomHorizontalFlip for training, Resize +
// CenterCrop for evaluation; resampling as PIL's bilinear filter does it
// (a triangle filter widened by the downscale factor, so downscaling
// averages instead of aliasing; plain bilinear when upscaling).
#pragma once

#include <cstdint>

#include "core/rng.hpp"
#include "data/image_decode.hpp"

namespace bsp {

// A source region resampled to out_h x out_w pixels. The filter reads only
// source pixels in [clip_y0, clip_y1) x [clip_x0, clip_x1): a crop's own
// pixels for RandomResizedCrop (torchvision crops, then resizes), the whole
// image for Resize + CenterCrop (it resizes, then crops).
struct Region {
  double y0 = 0, x0 = 0, h = 0, w = 0;  // the source box: output pixel (y, x) samples y0 + (y + 0.5) * h / out_h
  int64_t clip_y0 = 0, clip_x0 = 0, clip_y1 = 0, clip_x1 = 0;
  bool flip = false;  // mirror the output horizontally
};

// torchvision's RandomResizedCrop.get_params (scale 0.08-1, ratio 3/4-4/3):
// ten tries at a box of random area and log-uniform aspect ratio that fits,
// else the central crop of the nearest allowed ratio.
Region random_resized_crop(int64_t h, int64_t w, Rng& rng, double scale_lo = 0.08, double scale_hi = 1.0);

// Resize (shorter side to floor(size / fraction), the longer in proportion,
// truncated as torchvision does) then CenterCrop(out_h x out_w) with
// torchvision's rounding of the offsets.
Region resize_center_crop(int64_t h, int64_t w, int64_t out_h, int64_t out_w, double fraction);

// Samples `r` of `img` into out[(y * out_w + x) * img.c + ch] as floats in
// the pixel scale 0..255 (not rounded: the normalisation follows).
void resample(const Image8& img, const Region& r, int64_t out_h, int64_t out_w, float* out);

}  // namespace bsp
