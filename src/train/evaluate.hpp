// Inference for bsp eval: the one place that chooses the forward pass used
// to evaluate a model (make_predictor), and the evaluation loop over a data set.
#pragma once

#include <memory>

#include "core/model.hpp"
#include "data/batch.hpp"
#include "data/dataset.hpp"
#include "data/source.hpp"

namespace bsp::train {

// Runs a model on batches of normalised images. Layout-neutral on purpose:
// NHWC in (the model file's convention), [n, classes] logits out.
class Predictor {
 public:
  virtual ~Predictor() = default;
  virtual const char* name() const = 0;  // what runs: "trainer-net (avx512)", ...
  virtual int64_t max_batch() const = 0;
  virtual int64_t classes() const = 0;
  // x [n, H, W, C] -> logits [n, classes], n <= max_batch().
  virtual void run(const float* x, int64_t n, float* logits) = 0;
  // After run(): the first node (graph order) whose output held a NaN or an
  // infinity, nullptr when none did or the engine cannot tell (int8: its
  // tensors are integers; evaluate() checks the logits of every engine).
  virtual const char* nonfinite_node() const { return nullptr; }
};

// The forward pass bsp eval uses: for a compacted model (bsp compact) the
// kernels runner of src/kernels (its compact forms, int8 included); for any
// other model the trainer's network in eval mode (batchnorm with running
// statistics), which skips the zero 8x8 blocks of masked layers; its
// max_batch() is capped so that one batch's layer outputs stay within about
// 1 GB (bsp eval then runs a larger --batch in pieces).
// `m` must outlive the predictor.
std::unique_ptr<Predictor> make_predictor(const Model& m, int64_t max_batch);

struct EvalResult {
  int64_t n = 0;
  double loss = 0;      // mean softmax cross-entropy
  double accuracy = 0;  // in [0, 1]
  double seconds = 0;   // inference time (batches assembled outside it)
  double images_per_s() const { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }
};

// `logits`, when given, receives every image's output: [s.n, classes].
// Throws bsp::Error when a batch's forward pass is not finite (a node's
// output or the logits hold a NaN or an infinity): no number computed from
// one is reported.
EvalResult evaluate(Predictor& p, const ImageSet& s, const Normalization& norm, Tensor* logits = nullptr);
// The same over any source, its batches prefetched when it has workers. An
// image the source cannot read is left out of n, loss and accuracy; its row
// of `logits` is NaN.
EvalResult evaluate(Predictor& p, const BatchSource& s, Tensor* logits = nullptr);

}  // namespace bsp::train
