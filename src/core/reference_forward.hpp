// The reference forward pass over a whole model graph: the oracle for the
// fast kernels and the AIE2 simulator.
#pragma once

#include <functional>
#include <vector>

#include "core/model.hpp"

namespace bsp {

// Applies one node to its input tensors (each [N, ...]) with the reference ops.
Tensor reference_node(const Node& n, const std::vector<const Tensor*>& inputs);

// Runs the graph on input [N, H, W, C] (the model's input shape) and returns
// the last node's output. Intermediate tensors are freed after their last
// use; `observe`, when given, sees every node's output as it is produced.
Tensor reference_forward(const Model& m, const Tensor& input,
                         const std::function<void(size_t node, const Tensor& out)>& observe = {});

}  // namespace bsp
