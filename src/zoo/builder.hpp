// Builds model graphs layer by layer, tracking shapes as it goes. Parameters
// are allocated zeroed (BN: gamma 1, var 1); init_weights() fills them.
#pragma once

#include <array>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/model.hpp"

namespace bsp {

class GraphBuilder {
 public:
  // Creates the input node "input" of shape [H, W, C].
  GraphBuilder(std::string arch, int64_t H, int64_t W, int64_t C);

  struct ConvSpec {
    int64_t cout;
    int64_t kh, kw;
    int64_t stride = 1;
    std::array<int64_t, 4> pad{0, 0, 0, 0};  // top, left, bottom, right
    int64_t groups = 1;
    bool bias = false;
  };
  // A square kernel with symmetric "same"-style padding p.
  static ConvSpec square(int64_t cout, int64_t k, int64_t stride, int64_t p, bool bias = false) {
    return ConvSpec{cout, k, k, stride, {p, p, p, p}, 1, bias};
  }

  std::string conv(const std::string& name, const std::string& in, const ConvSpec& spec);
  std::string batchnorm(const std::string& name, const std::string& in, double eps = 1e-5);
  std::string relu(const std::string& name, const std::string& in);
  std::string clip(const std::string& name, const std::string& in, double lo, double hi);
  std::string maxpool(const std::string& name, const std::string& in, int64_t k, int64_t stride, int64_t pad = 0);
  std::string avgpool(const std::string& name, const std::string& in, int64_t k, int64_t stride, int64_t pad = 0,
                      bool count_include_pad = true);
  std::string global_avgpool(const std::string& name, const std::string& in);
  std::string add(const std::string& name, const std::vector<std::string>& ins);
  std::string concat(const std::string& name, const std::vector<std::string>& ins);
  std::string flatten(const std::string& name, const std::string& in);
  std::string dense(const std::string& name, const std::string& in, int64_t out, bool bias = true);
  std::string softmax(const std::string& name, const std::string& in);
  // Any op without parameters, given its inputs and attributes.
  std::string node(const std::string& name, Op op, const std::vector<std::string>& ins, Attrs attrs = {});

  const Shape& shape(const std::string& name) const { return shapes_.at(name); }
  Model finish();  // validates and hands over the model

 private:
  std::string push(Node n);
  Model m_;
  std::unordered_map<std::string, Shape> shapes_;
};

}  // namespace bsp
