// Small networks for 28x28x1 inputs (Fashion-MNIST).
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

namespace bsp {

namespace {
std::string conv_bn_relu(GraphBuilder& b, const std::string& p, const std::string& in, int64_t cout, int64_t stride) {
  std::string x = b.conv(p + ".conv", in, GraphBuilder::square(cout, 3, stride, 1));
  x = b.batchnorm(p + ".bn", x);
  return b.relu(p + ".relu", x);
}
}  // namespace

// The network of shared/DESIGN.md section 6 and shared/bench/torch_fmnist.py:
// conv3x3 1->32, BN, ReLU; conv3x3 32->32, BN, ReLU; maxpool 2;
// conv3x3 32->64, BN, ReLU; conv3x3 64->64, BN, ReLU; maxpool 2;
// dense 3136->256, ReLU; dense 256->10. Convs have no bias.
Model build_fmnist_cnn(int64_t classes) {
  GraphBuilder b("fmnist-cnn", 28, 28, 1);
  std::string x = conv_bn_relu(b, "conv1", "input", 32, 1);
  x = conv_bn_relu(b, "conv2", x, 32, 1);
  x = b.maxpool("pool1", x, 2, 2);
  x = conv_bn_relu(b, "conv3", x, 64, 1);
  x = conv_bn_relu(b, "conv4", x, 64, 1);
  x = b.maxpool("pool2", x, 2, 2);
  x = b.flatten("flatten", x);
  x = b.relu("fc1.relu", b.dense("fc1", x, 256));
  b.dense("fc2", x, classes);
  return b.finish();
}

// A small ResNet: a 3x3 stem with 32 channels, then basic blocks (two 3x3
// convs with BN, identity or 1x1-conv shortcut): one block of 32 channels at
// 28x28, two of 64 at 14x14, two of 128 at 7x7; global average pool; dense.
// About 0.7 M parameters and 60 M MACs per image.
Model build_fmnist_resnet(int64_t classes) {
  using G = GraphBuilder;
  GraphBuilder b("fmnist-resnet", 28, 28, 1);
  std::string x = conv_bn_relu(b, "stem", "input", 32, 1);
  struct Stage {
    int64_t width, blocks, stride;
  };
  const Stage stages[] = {{32, 1, 1}, {64, 2, 2}, {128, 2, 2}};
  int64_t cin = 32;
  for (int s = 0; s < 3; ++s) {
    for (int64_t i = 0; i < stages[s].blocks; ++i) {
      std::string p = "stage" + std::to_string(s + 1) + "." + std::to_string(i);
      int64_t stride = i == 0 ? stages[s].stride : 1;
      int64_t w = stages[s].width;
      std::string y = conv_bn_relu(b, p + ".a", x, w, stride);
      y = b.batchnorm(p + ".b.bn", b.conv(p + ".b.conv", y, G::square(w, 3, 1, 1)));
      std::string skip = x;
      if (stride != 1 || cin != w)
        skip = b.batchnorm(p + ".shortcut.bn", b.conv(p + ".shortcut.conv", x, G::square(w, 1, stride, 0)));
      x = b.relu(p + ".relu", b.add(p + ".add", {y, skip}));
      cin = w;
    }
  }
  x = b.global_avgpool("pool", x);
  b.dense("fc", x, classes);
  return b.finish();
}

}  // namespace bsp
