// What a finetune needs in memory, found before it starts: the trainer's
// network is built on a private copy of the model at batches of 1 and 2
// images and one training step is run on each, and the heap bytes each
// holds give a fixed part and a part per image. That counts every buffer
// the layers allocate (activations and their gradients, im2col scratch,
// packed weights, the optimizer's momentum) without a model of each.
#pragma once

#include <cstdint>
#include <string>

#include "core/model.hpp"
#include "train/net.hpp"

namespace bsp::train {

struct TrainMemory {
  double fixed_bytes = 0;      // independent of the batch
  double per_image_bytes = 0;  // per image of the network's batch
  double at(int64_t images) const { return fixed_bytes + per_image_bytes * static_cast<double>(images); }
};

// The probe described above for a Net made with `o` (its max_batch and comm
// are ignored). Where the heap cannot be read (a sanitizer's allocator),
// the per-image part is the network's activations and their gradients.
TrainMemory probe_train_memory(const Model& m, const NetOptions& o);

// Bytes this process may still allocate: the kernel's MemAvailable, capped
// by the cgroup (v2) limit when one is set. 0 when unknown.
double available_memory_bytes();

// "1.5 GB", "310 MB", "12 KB" (powers of 1024).
std::string memory_str(double bytes);

// Parses "512M", "2G", "1.5G", "100000" (K, M, G, T: powers of 1024).
// Throws a usage error naming `option` on anything else.
double parse_memory(const std::string& s, const char* option);

}  // namespace bsp::train
