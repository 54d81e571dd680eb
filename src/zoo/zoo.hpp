// The model zoo of `bsp init`: the source papers' ImageNet networks (with
// torchvision's layer names and parameter counts) and two small networks for
// 28x28x1 Fashion-MNIST.
#pragma once

#include <string>
#include <vector>

#include "core/model.hpp"

namespace bsp {

struct ArchInfo {
  const char* name;
  const char* summary;
  int64_t default_classes;
  Model (*build)(int64_t classes);  // parameters zeroed (see init_weights)
};

const std::vector<ArchInfo>& architectures();
// Throws UsageError naming the known architectures when `name` is unknown.
const ArchInfo& find_arch(const std::string& name);

Model build_resnet50(int64_t classes);
Model build_inception_v3(int64_t classes);
Model build_vgg16(int64_t classes);
Model build_fmnist_cnn(int64_t classes);
Model build_fmnist_resnet(int64_t classes);

// He (Kaiming) normal initialisation, std = sqrt(2 / fan_in), of every conv
// and dense weight; biases and BN beta/mean zero, gamma/var one. Each layer's
// stream is derived from the seed and its name, so the result does not
// depend on the thread count.
void init_weights(Model& m, uint64_t seed);

}  // namespace bsp
