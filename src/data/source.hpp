// Where the trainer and the evaluator take their batches from: images held
// in memory (IDX, HDF5) or decoded from files (image folders). A source fills
// one batch at a time and may be called from several threads at once; the
// BatchQueue (prefetch.hpp) runs it ahead of the consumer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/batch.hpp"
#include "data/dataset.hpp"

namespace bsp {

// Images idx[0..n) of a source, as one batch.
struct BatchRequest {
  const int64_t* idx = nullptr;
  int64_t n = 0;
  // Training: augmented (as the source's settings ask) with draws that depend
  // only on (key, j0 + j) (j0: the share's offset in a data-parallel batch),
  // and an unreadable image replaced by a readable one, so that the batch
  // keeps its size. Otherwise: evaluation transforms, unreadable images left out.
  bool train = false;
  uint64_t key = 0;
  int64_t j0 = 0;
};

// A filled batch: x [n, H, W, C] normalised (NHWC), n <= the request's.
struct Batch {
  std::vector<float> x;
  std::vector<int64_t> labels;  // [n]
  std::vector<int64_t> index;   // [n]: the data-set index of each image
  int64_t n = 0;
};

// The images a source could not read (image folders only).
struct Unreadable {
  int64_t count = 0;
  std::string first_path, first_why;
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t size() const = 0;
  // The shape of the images it produces.
  virtual int64_t h() const = 0;
  virtual int64_t w() const = 0;
  virtual int64_t c() const = 0;
  virtual int64_t label(int64_t i) const = 0;
  // Thread-safe. Throws bsp::Error when nothing readable is left.
  virtual void fill(const BatchRequest& r, Batch& out) const = 0;
  // Threads that should fill batches ahead of the consumer (0: fill in the
  // consumer's thread; in-memory sets are filled by OpenMP threads).
  virtual int workers() const { return 0; }
  virtual Unreadable unreadable() const { return {}; }
};

// Images held in memory, with the normalisation and the training
// augmentation of data/batch.hpp (assemble_batch). `s` must outlive it.
class ImageSetSource : public BatchSource {
 public:
  ImageSetSource(const ImageSet& s, Normalization norm, Augmentation train_aug)
      : s_(s), norm_(std::move(norm)), aug_(train_aug) {}
  int64_t size() const override { return s_.n; }
  int64_t h() const override { return s_.h; }
  int64_t w() const override { return s_.w; }
  int64_t c() const override { return s_.c; }
  int64_t label(int64_t i) const override { return s_.labels[static_cast<size_t>(i)]; }
  void fill(const BatchRequest& r, Batch& out) const override;

 private:
  const ImageSet& s_;
  Normalization norm_;
  Augmentation aug_;
};

// Sizes `b` for n images of `src` (the buffers only grow).
void reserve_batch(const BatchSource& src, int64_t n, Batch& b);

// NHWC batch -> the trainer's channel-major [C, n, H, W].
void to_channel_major(const Batch& b, int64_t h, int64_t w, int64_t c, float* out);
// The same for n images [n, h, w, c] at x.
void to_channel_major(const float* x, int64_t n, int64_t h, int64_t w, int64_t c, float* out);

}  // namespace bsp
