#include "train/comm.hpp"

#include <algorithm>
#include <cstdlib>

namespace bsp::train {

namespace {
class SoloComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void sum(float*, int64_t) override {}
  void sum_ordered(double*, int64_t) override {}
  void gather(const double* v, int64_t n, double* all) override { std::copy(v, v + n, all); }
  [[noreturn]] void abort(int code) override { std::exit(code); }
};
}  // namespace

Comm& solo_comm() {
  static SoloComm c;
  return c;
}

}  // namespace bsp::train
