// Learning rate schedules and the SGD step against PyTorch 1.13's numbers
// (torch.optim.lr_scheduler.OneCycleLR, torch.optim.SGD), and held masks.
#include <catch2/catch.hpp>

#include "train/optimizer.hpp"

using namespace bsp;
using namespace bsp::train;

TEST_CASE("onecycle matches PyTorch's OneCycleLR defaults") {
  SgdConfig c;
  c.lr = 0.1;
  c.momentum = 0.9;
  c.total_steps = 20;
  // (step, lr, momentum) printed by PyTorch 1.13 for max_lr 0.1, total_steps 20.
  struct G {
    int64_t step;
    double lr, m;
  };
  const G golden[] = {{0, 0.0040000000000000036, 0.95},   {2, 0.037167184270002526, 0.9154508497187474},
                      {5, 0.1, 0.85},                     {6, 0.09874640062350874, 0.8512536043909088},
                      {9, 0.0811745653949763, 0.8688255099070633}, {19, 4e-07, 0.95}};
  for (const G& g : golden) {
    StepHyper h = hyper_at(c, g.step);
    INFO("step " << g.step);
    CHECK(h.lr == Approx(g.lr).epsilon(1e-12).margin(1e-15));
    CHECK(h.momentum == Approx(g.m).epsilon(1e-12));
  }
}

TEST_CASE("cosine, step and constant schedules") {
  SgdConfig c;
  c.lr = 0.2;
  c.total_steps = 100;
  c.schedule = Schedule::Cosine;
  CHECK(hyper_at(c, 0).lr == Approx(0.2));
  CHECK(hyper_at(c, 50).lr == Approx(0.1));
  CHECK(hyper_at(c, 100).lr == Approx(0.0).margin(1e-12));
  c.schedule = Schedule::Step;
  CHECK(hyper_at(c, 49).lr == Approx(0.2));
  CHECK(hyper_at(c, 50).lr == Approx(0.02));
  CHECK(hyper_at(c, 75).lr == Approx(0.002));
  CHECK(hyper_at(c, 75).momentum == Approx(0.9));
  c.schedule = Schedule::Constant;
  CHECK(hyper_at(c, 99).lr == Approx(0.2));
  CHECK(schedule_from_name("onecycle") == Schedule::OneCycle);
  CHECK_THROWS_AS(schedule_from_name("linear"), UsageError);
}

TEST_CASE("an SGD step matches torch.optim.SGD (Nesterov, weight decay)") {
  Tensor w({3}, {1.0f, -2.0f, 0.5f});
  std::vector<Param> ps(1);
  ps[0].name = "w";
  ps[0].value = &w;
  ps[0].grad = Tensor({3});
  ps[0].momentum = Tensor({3});
  SgdConfig c;
  c.momentum = 0.9;
  c.weight_decay = 0.01;
  c.nesterov = true;
  const float grads[3][3] = {{0.5f, 0.25f, -1.0f}, {0.1f, -0.3f, 0.2f}, {0.0f, 1.0f, 0.0f}};
  // The weights PyTorch 1.13 prints after each of the three steps (lr 0.1).
  const float want[3][3] = {{0.9031000137329102f, -2.0436999797821045f, 0.689050018787384f},
                            {0.8410741090774536f, -2.0014469623565674f, 0.7303358316421509f},
                            {0.7934655547142029f, -2.1784558296203613f, 0.784725546836853f}};
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < 3; ++i) ps[0].grad[static_cast<size_t>(i)] = grads[s][i];
    sgd_step(ps, {}, c, StepHyper{0.1, 0.9});
    for (int i = 0; i < 3; ++i) CHECK(w[static_cast<size_t>(i)] == Approx(want[s][i]).epsilon(1e-6));
  }
}

TEST_CASE("a held mask keeps pruned weights and their momentum at zero") {
  Tensor w({4}, {1.0f, 0.0f, -1.0f, 0.3f});
  std::vector<Param> ps(1);
  ps[0].value = &w;
  ps[0].grad = Tensor({4}, {0.5f, 0.7f, 0.1f, -0.2f});
  ps[0].momentum = Tensor({4});
  const uint8_t mask[4] = {1, 0, 1, 0};
  ParamRule rule;
  rule.hold = mask;
  SgdConfig c;
  for (int s = 0; s < 3; ++s) sgd_step(ps, {rule}, c, StepHyper{0.1, 0.9});
  CHECK(w[1] == 0.0f);
  CHECK(w[3] == 0.0f);
  CHECK(ps[0].momentum[1] == 0.0f);
  CHECK(ps[0].momentum[3] == 0.0f);
  CHECK(w[0] != 1.0f);
  CHECK(ps[0].momentum[0] != 0.0f);
}

TEST_CASE("the SR-STE term decays only the weights the forward mask prunes") {
  Tensor w({2}, {1.0f, 1.0f});
  std::vector<Param> ps(1);
  ps[0].value = &w;
  ps[0].grad = Tensor({2});
  ps[0].momentum = Tensor({2});
  const uint8_t fwd[2] = {1, 0};
  ParamRule rule;
  rule.srste = fwd;
  SgdConfig c;
  c.weight_decay = 0;
  c.nesterov = false;
  sgd_step(ps, {rule}, c, StepHyper{1.0, 0.0});
  CHECK(w[0] == 1.0f);
  CHECK(w[1] == Approx(1.0 - kSrsteDecay));
}
