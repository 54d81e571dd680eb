// VGG-16 (configuration D, no batch norm) as in torchvision, with its module
// names (features.N, classifier.N). At 224x224 the adaptive average pool to
// 7x7 is the identity and is left out; dropout is the identity at inference
// and is not a node.
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

namespace bsp {

Model build_vgg16(int64_t classes) {
  GraphBuilder b("vgg16", 224, 224, 3);
  const int64_t cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
  std::string x = "input";
  int idx = 0;  // torchvision's index into `features`
  for (int64_t c : cfg) {
    if (c == 0) {
      x = b.maxpool("features." + std::to_string(idx), x, 2, 2, 0);
      idx += 1;
    } else {
      x = b.conv("features." + std::to_string(idx), x, GraphBuilder::square(c, 3, 1, 1, /*bias=*/true));
      x = b.relu("features." + std::to_string(idx + 1), x);
      idx += 2;
    }
  }
  x = b.flatten("flatten", x);
  x = b.relu("classifier.1", b.dense("classifier.0", x, 4096));
  x = b.relu("classifier.4", b.dense("classifier.3", x, 4096));
  b.dense("classifier.6", x, classes);
  return b.finish();
}

}  // namespace bsp
