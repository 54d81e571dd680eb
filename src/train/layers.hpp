// The trainer's layers, one per model op (net.hpp has the layout). Each
// factory binds a node to its input and output values and appends the
// node's trainable tensors to `params` (whose capacity the caller reserved,
// so Param pointers stay valid).
#pragma once

#include <memory>
#include <vector>

#include "core/act_sparsity.hpp"
#include "train/net.hpp"

namespace bsp::train {

struct LayerArgs {
  Node* node;
  std::vector<Value*> in;
  Value* out;
  std::vector<Param>* params;
  bool training;
  ConvPath conv_path = ConvPath::Auto;
};

// A Layer bound to its node and values.
class BoundLayer : public Layer {
 public:
  explicit BoundLayer(const LayerArgs& a) {
    node = a.node;
    in = a.in;
    out = a.out;
  }
};

std::unique_ptr<Layer> make_conv(const LayerArgs& a);
std::unique_ptr<Layer> make_dense(const LayerArgs& a);
std::unique_ptr<Layer> make_batchnorm(const LayerArgs& a);
// batchnorm followed by relu in one layer: `out` is the relu's value.
std::unique_ptr<Layer> make_batchnorm_relu(const LayerArgs& a);
std::unique_ptr<Layer> make_relu(const LayerArgs& a);
std::unique_ptr<Layer> make_clip(const LayerArgs& a);
std::unique_ptr<Layer> make_sigmoid(const LayerArgs& a);
std::unique_ptr<Layer> make_hardsigmoid(const LayerArgs& a);
std::unique_ptr<Layer> make_hardswish(const LayerArgs& a);
std::unique_ptr<Layer> make_mul(const LayerArgs& a);  // b the same shape as a, or [1, 1, C] broadcast
std::unique_ptr<Layer> make_pool(const LayerArgs& a);  // maxpool, avgpool
std::unique_ptr<Layer> make_global_avgpool(const LayerArgs& a);
std::unique_ptr<Layer> make_add(const LayerArgs& a);
// add followed by relu in one layer: `out` is the relu's value.
std::unique_ptr<Layer> make_add_relu(const LayerArgs& a);
std::unique_ptr<Layer> make_concat(const LayerArgs& a);
std::unique_ptr<Layer> make_flatten(const LayerArgs& a);
// A conv2d or dense node's activation rule (core/act_sparsity.hpp) as a
// layer of its own from the node's input to a copy the node's layer reads.
std::unique_ptr<Layer> make_act_zero(const LayerArgs& a, const ActRule& r);
// The layer of op `op` (train/net.cpp); with_relu: batchnorm or add with the
// relu that alone reads it, `out` being the relu's value.
std::unique_ptr<Layer> make_layer(Op op, const LayerArgs& a, bool with_relu);

// Element mask of a node for the trainer: empty when the node has none.
Array<uint8_t> held_mask(const Node& n);
// Registers node.params[key] as a trainable parameter and returns it.
Param* add_param(const LayerArgs& a, const std::string& key, bool decay);
// dst = src (add: dst += src) over n floats, parallel.
void store(float* dst, const float* src, int64_t n, bool add);

// The gradient through a relu (Relu) or none: dy where y > 0, else 0, as a
// select (dy loaded unconditionally) so that the loops calling it stay
// branch-free and vectorise.
template <bool Relu>
inline float relu_grad(float y, float dy) {
  if constexpr (Relu)
    return y > 0.0f ? dy : 0.0f;
  else
    return dy;
}

}  // namespace bsp::train
