// Inception-v3 as in torchvision (inception_v3(aux_logits=False)), with its
// module names. BasicConv2d = conv (no bias) + BN (eps 0.001) + ReLU. The
// branch average pools count padding (torchvision's F.avg_pool2d default).
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

namespace bsp {

namespace {

struct Inception {
  GraphBuilder& b;

  // BasicConv2d with kernel kh x kw, stride s, padding (ph, pw).
  std::string basic(const std::string& p, const std::string& in, int64_t cout, int64_t kh, int64_t kw, int64_t s = 1,
                    int64_t ph = 0, int64_t pw = 0) {
    GraphBuilder::ConvSpec spec{cout, kh, kw, s, {ph, pw, ph, pw}, 1, false};
    std::string x = b.conv(p + ".conv", in, spec);
    x = b.batchnorm(p + ".bn", x, 0.001);
    return b.relu(p + ".relu", x);
  }

  std::string block_a(const std::string& p, const std::string& in, int64_t pool_features) {
    std::string b1 = basic(p + ".branch1x1", in, 64, 1, 1);
    std::string b5 = basic(p + ".branch5x5_1", in, 48, 1, 1);
    b5 = basic(p + ".branch5x5_2", b5, 64, 5, 5, 1, 2, 2);
    std::string b3 = basic(p + ".branch3x3dbl_1", in, 64, 1, 1);
    b3 = basic(p + ".branch3x3dbl_2", b3, 96, 3, 3, 1, 1, 1);
    b3 = basic(p + ".branch3x3dbl_3", b3, 96, 3, 3, 1, 1, 1);
    std::string bp = b.avgpool(p + ".avgpool", in, 3, 1, 1);
    bp = basic(p + ".branch_pool", bp, pool_features, 1, 1);
    return b.concat(p + ".concat", {b1, b5, b3, bp});
  }

  std::string block_b(const std::string& p, const std::string& in) {
    std::string b3 = basic(p + ".branch3x3", in, 384, 3, 3, 2);
    std::string bd = basic(p + ".branch3x3dbl_1", in, 64, 1, 1);
    bd = basic(p + ".branch3x3dbl_2", bd, 96, 3, 3, 1, 1, 1);
    bd = basic(p + ".branch3x3dbl_3", bd, 96, 3, 3, 2);
    std::string bp = b.maxpool(p + ".maxpool", in, 3, 2);
    return b.concat(p + ".concat", {b3, bd, bp});
  }

  std::string block_c(const std::string& p, const std::string& in, int64_t c7) {
    std::string b1 = basic(p + ".branch1x1", in, 192, 1, 1);
    std::string b7 = basic(p + ".branch7x7_1", in, c7, 1, 1);
    b7 = basic(p + ".branch7x7_2", b7, c7, 1, 7, 1, 0, 3);
    b7 = basic(p + ".branch7x7_3", b7, 192, 7, 1, 1, 3, 0);
    std::string bd = basic(p + ".branch7x7dbl_1", in, c7, 1, 1);
    bd = basic(p + ".branch7x7dbl_2", bd, c7, 7, 1, 1, 3, 0);
    bd = basic(p + ".branch7x7dbl_3", bd, c7, 1, 7, 1, 0, 3);
    bd = basic(p + ".branch7x7dbl_4", bd, c7, 7, 1, 1, 3, 0);
    bd = basic(p + ".branch7x7dbl_5", bd, 192, 1, 7, 1, 0, 3);
    std::string bp = b.avgpool(p + ".avgpool", in, 3, 1, 1);
    bp = basic(p + ".branch_pool", bp, 192, 1, 1);
    return b.concat(p + ".concat", {b1, b7, bd, bp});
  }

  std::string block_d(const std::string& p, const std::string& in) {
    std::string b3 = basic(p + ".branch3x3_1", in, 192, 1, 1);
    b3 = basic(p + ".branch3x3_2", b3, 320, 3, 3, 2);
    std::string b7 = basic(p + ".branch7x7x3_1", in, 192, 1, 1);
    b7 = basic(p + ".branch7x7x3_2", b7, 192, 1, 7, 1, 0, 3);
    b7 = basic(p + ".branch7x7x3_3", b7, 192, 7, 1, 1, 3, 0);
    b7 = basic(p + ".branch7x7x3_4", b7, 192, 3, 3, 2);
    std::string bp = b.maxpool(p + ".maxpool", in, 3, 2);
    return b.concat(p + ".concat", {b3, b7, bp});
  }

  std::string block_e(const std::string& p, const std::string& in) {
    std::string b1 = basic(p + ".branch1x1", in, 320, 1, 1);
    std::string b3 = basic(p + ".branch3x3_1", in, 384, 1, 1);
    std::string b3a = basic(p + ".branch3x3_2a", b3, 384, 1, 3, 1, 0, 1);
    std::string b3b = basic(p + ".branch3x3_2b", b3, 384, 3, 1, 1, 1, 0);
    b3 = b.concat(p + ".branch3x3_concat", {b3a, b3b});
    std::string bd = basic(p + ".branch3x3dbl_1", in, 448, 1, 1);
    bd = basic(p + ".branch3x3dbl_2", bd, 384, 3, 3, 1, 1, 1);
    std::string bda = basic(p + ".branch3x3dbl_3a", bd, 384, 1, 3, 1, 0, 1);
    std::string bdb = basic(p + ".branch3x3dbl_3b", bd, 384, 3, 1, 1, 1, 0);
    bd = b.concat(p + ".branch3x3dbl_concat", {bda, bdb});
    std::string bp = b.avgpool(p + ".avgpool", in, 3, 1, 1);
    bp = basic(p + ".branch_pool", bp, 192, 1, 1);
    return b.concat(p + ".concat", {b1, b3, bd, bp});
  }
};

}  // namespace

Model build_inception_v3(int64_t classes) {
  GraphBuilder b("inception_v3", 299, 299, 3);
  Inception I{b};
  std::string x = I.basic("Conv2d_1a_3x3", "input", 32, 3, 3, 2);
  x = I.basic("Conv2d_2a_3x3", x, 32, 3, 3);
  x = I.basic("Conv2d_2b_3x3", x, 64, 3, 3, 1, 1, 1);
  x = b.maxpool("maxpool1", x, 3, 2);
  x = I.basic("Conv2d_3b_1x1", x, 80, 1, 1);
  x = I.basic("Conv2d_4a_3x3", x, 192, 3, 3);
  x = b.maxpool("maxpool2", x, 3, 2);
  x = I.block_a("Mixed_5b", x, 32);
  x = I.block_a("Mixed_5c", x, 64);
  x = I.block_a("Mixed_5d", x, 64);
  x = I.block_b("Mixed_6a", x);
  x = I.block_c("Mixed_6b", x, 128);
  x = I.block_c("Mixed_6c", x, 160);
  x = I.block_c("Mixed_6d", x, 160);
  x = I.block_c("Mixed_6e", x, 192);
  x = I.block_d("Mixed_7a", x);
  x = I.block_e("Mixed_7b", x);
  x = I.block_e("Mixed_7c", x);
  x = b.global_avgpool("avgpool", x);
  b.dense("fc", x, classes);
  return b.finish();
}

}  // namespace bsp
