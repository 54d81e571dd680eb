#include "zoo/zoo.hpp"

namespace bsp {

const std::vector<ArchInfo>& architectures() {
  static const std::vector<ArchInfo> archs = {
      {"resnet50", "ResNet-50 (torchvision v1.5), 224x224x3", 1000, build_resnet50},
      {"inception_v3", "Inception-v3 without the aux head, 299x299x3", 1000, build_inception_v3},
      {"vgg16", "VGG-16 (no batch norm), 224x224x3", 1000, build_vgg16},
      {"fmnist-cnn", "4 conv + 2 dense layers for 28x28x1 (shared/DESIGN.md section 6)", 10, build_fmnist_cnn},
      {"fmnist-resnet", "small residual network for 28x28x1", 10, build_fmnist_resnet},
  };
  return archs;
}

const ArchInfo& find_arch(const std::string& name) {
  std::string known;
  for (const auto& a : architectures()) {
    if (name == a.name) return a;
    known += known.empty() ? "" : ", ";
    known += a.name;
  }
  fail_usage("unknown architecture '{}' (known: {})", name, known);
}

}  // namespace bsp
