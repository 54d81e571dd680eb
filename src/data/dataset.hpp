// Image classification data for bsp finetune and bsp eval: Fashion-MNIST's
// IDX files (or any directory of MNIST-style IDX files) and the generic HDF5
// data file of man/bsp-format.5 (section DATA FILES).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/tensor.hpp"

namespace bsp {

// A set of labelled images, NHWC. Exactly one of u8 / f32 holds the pixels:
// 8-bit sources stay 8-bit in memory (pixel value v / 255), float32 sources
// are used as they are.
struct ImageSet {
  int64_t n = 0, h = 0, w = 0, c = 0;
  Array<uint8_t> u8;      // [n, h, w, c] or empty
  Tensor f32;             // [n, h, w, c] or empty
  Array<int64_t> labels;  // [n]

  bool is_u8() const { return !u8.empty() || f32.empty(); }
  int64_t image_size() const { return h * w * c; }
  // Keeps the first `count` images (no-op when count >= n).
  void limit(int64_t count);
};

// Which parts a command needs: finetune reads the training images and the
// test images if there are any; eval reads only the evaluation images.
enum class DataPart { Training, Evaluation };

struct DataSet {
  std::string name;              // for messages: "fashion-mnist", "cifar.h5"
  std::optional<ImageSet> train;  // DataPart::Training
  // Training: the test split, absent when the source has none.
  // Evaluation: the test split, or the whole file when it has no split.
  std::optional<ImageSet> test;
};

// The directory `--data fashion-mnist` names (Debian's dataset-fashion-mnist).
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// spec: "fashion-mnist", a directory holding {train,t10k}-{images-idx3,
// labels-idx1}-ubyte[.gz], or an HDF5 data file. Throws bsp::Error naming
// the file on any problem (missing, truncated, inconsistent counts, bad
// types, non-finite pixels).
DataSet load_data(const std::string& spec, DataPart part);

// The plausibility bounds of a data file (man/bsp-format.5, DATA FILES).
// Float32 pixels: finite, |x| <= kMaxPixel, so that the sums and squares of
// training stay far from float32's range (1e30 pixels otherwise train into
// an infinite batchnorm variance).
constexpr double kMaxPixel = 1e6;
constexpr int64_t kMaxImageSide = 65536;  // H, W and C each
// Before any allocation: the image dimensions are in range and the pixels
// (n * h * w * c * bytes_per_pixel, computed without overflow) fit in the
// machine's physical memory. `what` names the dataset for the message.
void check_image_set_size(const std::string& what, int64_t n, int64_t h, int64_t w, int64_t c,
                          int64_t bytes_per_pixel);

// One IDX image file and its label file (gzip-compressed or not).
ImageSet read_idx(const std::string& images_path, const std::string& labels_path);

// The generic HDF5 data file; `part` as for load_data.
DataSet read_h5_data(const std::string& path, DataPart part);

}  // namespace bsp
