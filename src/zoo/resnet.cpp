// ResNet-50 as in torchvision (v1.5: the stride sits on the 3x3 conv of each
// bottleneck). Layer names follow torchvision's modules; the relu and add
// nodes, which torchvision does not name, get names of the same style.
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

namespace bsp {

namespace {

std::string conv_bn(GraphBuilder& b, const std::string& conv, const std::string& bn, const std::string& in,
                    const GraphBuilder::ConvSpec& spec) {
  return b.batchnorm(bn, b.conv(conv, in, spec));
}

std::string bottleneck(GraphBuilder& b, const std::string& p, const std::string& in, int64_t width, int64_t stride,
                       bool downsample) {
  using G = GraphBuilder;
  std::string x = b.relu(p + ".relu1", conv_bn(b, p + ".conv1", p + ".bn1", in, G::square(width, 1, 1, 0)));
  x = b.relu(p + ".relu2", conv_bn(b, p + ".conv2", p + ".bn2", x, G::square(width, 3, stride, 1)));
  x = conv_bn(b, p + ".conv3", p + ".bn3", x, G::square(width * 4, 1, 1, 0));
  std::string skip = in;
  if (downsample)
    skip = conv_bn(b, p + ".downsample.0", p + ".downsample.1", in, G::square(width * 4, 1, stride, 0));
  return b.relu(p + ".relu3", b.add(p + ".add", {x, skip}));
}

}  // namespace

Model build_resnet50(int64_t classes) {
  using G = GraphBuilder;
  GraphBuilder b("resnet50", 224, 224, 3);
  std::string x = b.relu("relu", conv_bn(b, "conv1", "bn1", "input", G::square(64, 7, 2, 3)));
  x = b.maxpool("maxpool", x, 3, 2, 1);
  const int64_t blocks[4] = {3, 4, 6, 3};
  for (int stage = 0; stage < 4; ++stage) {
    int64_t width = 64 << stage;
    for (int64_t i = 0; i < blocks[stage]; ++i) {
      std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(i);
      int64_t stride = (i == 0 && stage > 0) ? 2 : 1;
      x = bottleneck(b, p, x, width, stride, i == 0);
    }
  }
  x = b.global_avgpool("avgpool", x);
  b.dense("fc", x, classes);
  return b.finish();
}

}  // namespace bsp
