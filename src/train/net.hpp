// The trainer's network: one Layer per model node, run forward and backward
// on channel-major activations.
//
// Layout (shared by every layer; the model file itself stays NHWC / OHWI):
//   map    [C, n, H, W]: element (c, j, y, x) at c * plane + (j * H + y) * W + x,
//                        plane = n * H * W
//   vector [F, n]:       element (f, j) at f * n + j (a map with H = W = 1)
// so one channel (or one feature) is one contiguous row: the rows of the
// igemm8 / rowdot8 kernels (kernels.hpp). Buffers hold round8(C) rows for
// the largest batch, so a kernel may write whole 8-row blocks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "train/kernels.hpp"

namespace bsp::train {

enum class Mode { Train, Eval };

inline int64_t round8(int64_t v) { return (v + 7) / 8 * 8; }

struct Value {
  int64_t C = 0, H = 1, W = 1;
  bool is_map = false;  // [H, W, C] in the model (else a vector [C])
  Tensor act;           // [round8(C), max_n * H * W]
  Tensor grad;          // same, allocated only when a gradient flows here
  int64_t plane(int64_t n) const { return n * H * W; }
};

// A trainable tensor of the model and what the optimizer keeps for it.
struct Param {
  std::string name;     // "conv1.weight"
  Node* node = nullptr;
  std::string key;      // "weight", "bias", "gamma", "beta"
  Tensor* value = nullptr;  // the model's tensor, updated in place
  Tensor grad;              // same shape
  Tensor momentum;          // same shape
  bool decay = true;        // weight decay applies
};

// BDWP (bsp-finetune(1) --bdwp): a layer computes its forward pass with
// `fwd` and its data gradient with `bwd` (element masks of the weight's
// shape), while the weight gradient stays dense. The layer's K lists hold,
// per 8-row block, only the K entries some row of the block keeps (the
// union over the block's rows), so the sparse products cost what the masks
// keep when the 8 rows of a block share their N:M choices (bsp-finetune(1)
// --bdwp-shared 8); with per-row choices the union is nearly every entry.
// Whoever changes the masks increments `version`: layers rebuild their K
// lists when it differs from the one they were built for.
// compact false: the masks are per-channel (the union of a block's rows is
// nearly every entry), so the layers keep the full K lists and skip the
// rebuild. dense_wgrad false (bsp-finetune(1) --bdwp-grad-every): convolutions
// compute the weight gradient over the forward K list only.
struct DualMask {
  Array<uint8_t> fwd, bwd;
  uint64_t version = 0;
  bool compact = true;
  bool dense_wgrad = true;
};

// Temporary buffers shared by all layers (one layer runs at a time).
class Scratch {
 public:
  float* get(int slot, size_t floats);  // zeroed on first growth only
 private:
  std::vector<Tensor> bufs_;
};

class Comm;

struct Ctx {
  int64_t n = 0;  // images in this batch
  Mode mode = Mode::Train;
  const KernelSet* k = nullptr;
  Scratch* scratch = nullptr;
  // Data-parallel training: the ranks that share each batch (batchnorm
  // takes its training statistics over all of them); null: one process.
  Comm* comm = nullptr;
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual void forward(const Ctx& c) = 0;
  // Reads out->grad; writes (or, where in_add[i], adds) in[i]->grad for
  // inputs that have a gradient buffer, and the parameters' gradients.
  virtual void backward(const Ctx& c) = 0;
  // The weights changed (optimizer step, pruning): repack them.
  virtual void weights_changed() {}
  // The layer's mask changed: rebuild the block lists, then repack.
  virtual void mask_changed() { weights_changed(); }
  // Batch size of the next calls changed: offsets depend on it.
  virtual void batch_changed(int64_t /*n*/) {}

  const Node* node = nullptr;
  std::vector<Value*> in;
  std::vector<bool> in_add;
  Value* out = nullptr;
};

// How a stride-1 convolution runs (conv_layer.cpp): Auto takes the flat
// shared-padding layout where it applies; Im2col forces the im2col path
// (benchmarks compare them).
enum class ConvPath { Auto, Im2col };

struct NetOptions {
  int64_t max_batch = 128;
  ConvPath conv_path = ConvPath::Auto;
  bool input_grad = false;  // also compute the gradient of the input (tests)
  bool training = true;     // allocate gradients and parameters
  Comm* comm = nullptr;     // data-parallel: batchnorm statistics over the ranks (Ctx::comm)
};

class Net {
 public:
  // Binds to `m` (which must outlive the Net): parameters are the model's
  // tensors, updated in place. A final softmax node is left out: the loss
  // (softmax cross-entropy) takes the logits before it.
  Net(Model& m, const NetOptions& opt);
  ~Net();
  int64_t max_batch() const { return opt_.max_batch; }  // images per forward, at most
  Net(const Net&) = delete;
  Net& operator=(const Net&) = delete;

  // The input rows to fill: [C, n, H, W] channel-major.
  Value& input() { return *values_.front(); }
  // The logits [classes, n] (after forward).
  Value& output() { return *values_.back(); }
  int64_t classes() const { return values_.back()->C; }
  // Bytes of every value's activation and gradient buffers (max_batch images).
  double value_bytes() const;

  // check_finite: scan each layer's output right after the layer ran (while
  // it is still in cache) for NaN and infinity; see first_nonfinite_output.
  void forward(int64_t n, Mode mode, bool check_finite = false);
  // Needs output().grad set; fills every parameter gradient.
  void backward();

  // After forward(n, mode, true): the node of the first layer (in graph
  // order) whose output held a NaN or an infinity, or nullptr.
  const Node* first_nonfinite_output() const { return nonfinite_; }

  std::vector<Param>& params() { return params_; }
  Param* find_param(const std::string& name);
  // After the optimizer changed parameter values.
  void weights_changed();
  // After node masks changed (pruning).
  void masks_changed();
  // BDWP masks for a conv or dense node; nullptr to go back to held masks.
  void set_dual_mask(const Node* n, const DualMask* m);

  const KernelSet& kernels() const { return *k_; }

  // Per-layer wall time of forward and backward, accumulated when profiling
  // is on (the environment variable BSP_PROFILE is set): a table, slowest first.
  bool profiling() const { return profile_; }
  std::string profile_report() const;

 private:
  Model& model_;
  NetOptions opt_;
  const KernelSet* k_;
  std::vector<std::unique_ptr<Value>> values_;  // per kept node, in node order
  std::vector<std::unique_ptr<Layer>> layers_;  // per kept node except the input, plus activation rules
  std::vector<std::unique_ptr<Value>> act_values_;  // the zeroed inputs of layers with an activation rule
  std::vector<Param> params_;
  Scratch scratch_;
  int64_t n_ = -1;
  Mode mode_ = Mode::Train;
  bool profile_ = false;
  const Node* nonfinite_ = nullptr;
  std::vector<double> fwd_s_, bwd_s_;  // per layer
};

}  // namespace bsp::train
