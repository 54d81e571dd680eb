// The training loop on a small synthetic set: the loss goes down, masks are
// held, the same seed gives the same weights, and a run resumed from a
// checkpoint (at an epoch boundary or mid-epoch) ends bit-identical to an
// uninterrupted one.
#include <cmath>
#include <functional>
#include <limits>

#include <catch2/catch.hpp>

#include "data_helpers.hpp"
#include "modelfile/model_file.hpp"
#include "sparsity/mask.hpp"
#include "sparsity/nm.hpp"
#include "sparsity/prune.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "train/memory.hpp"
#include "train/trainer.hpp"
#include "train_helpers.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;
using namespace bsp::train;

namespace {

// batchnorm false: without it a batch's gradient is the sum of its parts'.
Model small_cnn(uint64_t seed, bool batchnorm = true) {
  GraphBuilder b("small", 8, 8, 1);
  auto bn = [&](const char* name, const std::string& x) { return batchnorm ? b.batchnorm(name, x) : x; };
  auto x = b.conv("c1", "input", GraphBuilder::square(16, 3, 1, 1));
  x = b.relu("r1", bn("bn1", x));
  x = b.conv("c2", x, GraphBuilder::square(16, 3, 1, 1));
  x = b.relu("r2", bn("bn2", x));
  x = b.maxpool("p", x, 2, 2);
  x = b.relu("fr", b.dense("fc1", b.flatten("f", x), 16));
  b.dense("fc2", x, 4);
  Model m = b.finish();
  init_weights(m, seed);
  return m;
}

TrainConfig small_config(int64_t epochs) {
  TrainConfig c;
  c.epochs = epochs;
  c.batch = 32;
  c.sgd.lr = 0.1;
  c.seed = 3;
  c.aug.pad = 1;  // no flip: it would swap the left and right quadrant classes
  return c;
}

std::vector<float> all_weights(const Model& m) {
  std::vector<float> v;
  for (const Node& n : m.nodes)
    for (const auto& [k, t] : n.params) v.insert(v.end(), t.begin(), t.end());
  return v;
}

// Block mask on c2 (16 x 16 channels: 2 x 2 blocks of 8), one block pruned.
void mask_c2(Model& m) {
  Node& n = *m.find("c2");
  Mask mk;
  mk.pattern = "block:8x8";
  mk.block_rows = 8;
  mk.block_cols = 8;
  mk.bits = Array<uint8_t>({2, 2}, {1, 0, 1, 1});
  mk.density = 0.75;
  n.mask = std::move(mk);
  apply_mask(n);
}

}  // namespace

TEST_CASE("training on a synthetic set drives the loss down") {
  ImageSet train = test::blob_set(512, 1), test_set = test::blob_set(128, 2);
  Model m = small_cnn(1);
  Normalization nm = channel_stats(train);
  Trainer t(m, train, &test_set, nm, small_config(4));
  std::vector<EpochRecord> recs;
  TrainHooks h;
  h.epoch_done = [&](const EpochRecord& r) { recs.push_back(r); };
  t.run(h);
  REQUIRE(recs.size() == 4);
  INFO("losses " << recs[0].loss << " -> " << recs[3].loss);
  CHECK(recs[3].loss < 0.5 * recs[0].loss);
  CHECK(recs[3].train_acc > 0.9);
  CHECK(recs[3].has_test);
  CHECK(recs[3].test_acc > 0.9);
  CHECK(recs[3].lr < recs[1].lr);  // onecycle anneals at the end

  // bsp eval's path gives the trainer's own test numbers.
  auto p = make_predictor(m, 50);
  EvalResult e = evaluate(*p, test_set, nm);
  CHECK(e.n == 128);
  CHECK(e.accuracy == Approx(recs[3].test_acc).margin(1.0 / 128));
  CHECK(e.loss == Approx(recs[3].test_loss).epsilon(1e-4));
}

TEST_CASE("held masks: pruned weights stay exactly zero through training") {
  ImageSet train = test::blob_set(256, 1);
  Model m = small_cnn(2);
  mask_c2(m);
  Trainer t(m, train, nullptr, channel_stats(train), small_config(2));
  t.run({});
  const Node& n = *m.find("c2");
  Array<uint8_t> e = element_mask(n);
  int64_t kept_nonzero = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    if (!e[i]) REQUIRE(n.param("weight")[i] == 0.0f);
    kept_nonzero += e[i] && n.param("weight")[i] != 0.0f;
  }
  CHECK(kept_nonzero > 0);
  // The momentum of pruned weights is zero too.
  const Param* w = t.net().find_param("c2.weight");
  REQUIRE(w);
  for (size_t i = 0; i < e.size(); ++i)
    if (!e[i]) REQUIRE(w->momentum[i] == 0.0f);
}

TEST_CASE("--accumulate: a batch in K parts trains as the whole batch (no batchnorm); with batchnorm, close") {
  ImageSet train = test::blob_set(192, 1);
  auto run = [&](Model m, int64_t parts) {
    TrainConfig c = small_config(2);
    c.accumulate = parts;
    Trainer t(m, train, nullptr, channel_stats(train), c);
    std::vector<EpochRecord> recs;
    TrainHooks h;
    h.epoch_done = [&](const EpochRecord& r) { recs.push_back(r); };
    t.run(h);
    return std::make_pair(all_weights(m), recs.back().loss);
  };
  const auto [w1, loss1] = run(small_cnn(4, false), 1);
  for (int64_t parts : {2, 3, 32}) {  // 32: one image a part
    const auto [wk, lossk] = run(small_cnn(4, false), parts);
    REQUIRE(wk.size() == w1.size());
    double worst = 0;
    for (size_t i = 0; i < w1.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(wk[i] - w1[i])));
    INFO(parts << " parts: largest weight difference " << worst);
    CHECK(worst < 1e-4);
    CHECK(lossk == Approx(loss1).epsilon(1e-4));
  }
  // With batchnorm the parts' statistics differ from the batch's: the run
  // differs, but trains as well.
  const auto [b1, bloss1] = run(small_cnn(4), 1);
  const auto [b2, bloss2] = run(small_cnn(4), 2);
  CHECK(b1 != b2);
  CHECK(bloss1 < 0.2);  // from ln 4 = 1.39
  CHECK(bloss2 < 0.2);
  // More parts than images per batch is a usage error.
  Model m = small_cnn(4);
  TrainConfig c = small_config(1);
  c.accumulate = 33;
  CHECK_THROWS_WITH(Trainer(m, train, nullptr, channel_stats(train), c),
                    Catch::Contains("--accumulate 33 needs at least 33 images per rank"));
}

TEST_CASE("memory: the probe's estimate grows by a part per image; a batch over the budget is refused, naming one that fits") {
  Model m = small_cnn(1);
  NetOptions o;
  const TrainMemory t = probe_train_memory(m, o);
  // At least the activations and their gradients of one image.
  o.max_batch = 1;
  Model c = clone_graph(m);
  Net net(c, o);
  CHECK(t.per_image_bytes >= net.value_bytes());
  CHECK(t.per_image_bytes < 20 * net.value_bytes());
  CHECK(t.fixed_bytes >= 0);
  CHECK(t.at(64) == Approx(t.fixed_bytes + 64 * t.per_image_bytes));
  // The model itself is untouched by the probe's training steps.
  CHECK(all_weights(m) == all_weights(small_cnn(1)));

  ImageSet train = test::blob_set(128, 1);
  TrainConfig cfg = small_config(1);
  cfg.memory_budget = t.at(8);  // 32 images need more
  Model m2 = small_cnn(1);
  CHECK_THROWS_WITH(Trainer(m2, train, nullptr, channel_stats(train), cfg),
                    Catch::Matches("a batch of 32 images needs about .* \\(.* an image\\), more than the .* that "
                                   "--max-memory allows: give --batch [1-8], or --accumulate [4-9] \\(the batch of 32 in "
                                   "[4-9] parts\\)"));
  cfg.accumulate = 8;  // 4 images a part
  Model m3 = small_cnn(1);
  Trainer ok(m3, train, nullptr, channel_stats(train), cfg);
  CHECK(ok.memory_needed() > 0);
  CHECK(ok.memory_needed() <= cfg.memory_budget);
  cfg.memory_budget = -1;  // no check
  cfg.accumulate = 1;
  Model m4 = small_cnn(1);
  Trainer unchecked(m4, train, nullptr, channel_stats(train), cfg);
  CHECK(unchecked.memory_needed() == 0);
}

TEST_CASE("the same seed gives the same weights; another seed others") {
  ImageSet train = test::blob_set(128, 1);
  auto run = [&](uint64_t seed) {
    Model m = small_cnn(1);
    TrainConfig c = small_config(1);
    c.seed = seed;
    Trainer t(m, train, nullptr, channel_stats(train), c);
    t.run({});
    return all_weights(m);
  };
  CHECK(run(5) == run(5));
  CHECK(run(5) != run(6));
}

TEST_CASE("resuming from a checkpoint ends bit-identical to an uninterrupted run") {
  ImageSet train = test::blob_set(200, 1), test_set = test::blob_set(40, 2);
  const Normalization nm = channel_stats(train);
  const TrainConfig cfg = small_config(3);  // 6 steps per epoch (the last 8 images dropped)

  Model ref = small_cnn(4);
  mask_c2(ref);
  {
    Trainer t(ref, train, &test_set, nm, cfg);
    t.run({});
  }
  const std::vector<float> want = all_weights(ref);

  // Stop after `stop_after` steps in total, save, reload from the file, go on.
  for (int64_t stop_after : {6, 9}) {
    INFO("interrupted after step " << stop_after);
    test::TempDir d;
    const std::string path = d.file("ck.h5");
    Model m = small_cnn(4);
    mask_c2(m);
    {
      Trainer t(m, train, &test_set, nm, cfg);
      int64_t steps = 0;
      TrainHooks h;
      h.progress = [&](const Progress&) { ++steps; };
      h.stop_requested = [&] { return steps >= stop_after ? 15 : 0; };
      h.checkpoint = [&](const TrainState& s) {
        if (steps < stop_after) return;
        save_model(m, path);
        write_train_group(path, s, "{}", 1, &t.params(), {});
      };
      bool interrupted = false;
      try {
        t.run(h);
      } catch (const Interrupted& i) {
        interrupted = true;
        CHECK(i.signal == 15);
      }
      REQUIRE(interrupted);
    }
    Model r = load_model(path, path);
    std::optional<Checkpoint> ck = read_train_group(path, path);
    REQUIRE(ck);
    CHECK(ck->state.epoch * 6 + ck->state.step == stop_after);
    Trainer t(r, train, &test_set, nm, cfg);
    restore_checkpoint(t, *ck, path);
    t.run({});
    CHECK(all_weights(r) == want);
  }
}

TEST_CASE("gradual pruning follows the cubic schedule and masks only shrink") {
  ImageSet train = test::blob_set(256, 1);
  Model m = small_cnn(3);
  TrainConfig cfg = small_config(4);  // 8 steps per epoch, 32 in all
  GradualConfig g;
  g.pattern = parse_pattern("block:8x8");
  g.to = 0.5;
  g.every = 4;
  g.end = 0.75;  // the target at step 24
  cfg.gradual = g;
  Trainer t(m, train, nullptr, channel_stats(train), cfg);
  std::vector<double> density;
  std::vector<Array<uint8_t>> masks;
  TrainHooks h;
  h.epoch_done = [&](const EpochRecord& r) {
    density.push_back(m.find("fc1")->mask->density);  // 64 blocks: fine steps
    masks.push_back(element_mask(*m.find("fc1")));
    CHECK(r.density > 0);
  };
  t.run(h);
  REQUIRE(density.size() == 4);
  // d(t) = 0.5 + 0.5 * (1 - t / 24)^3, at the last pruning step before each epoch end.
  auto d = [](double t) { return 0.5 + 0.5 * std::pow(1 - std::min(t, 24.0) / 24.0, 3); };
  CHECK(density[0] == Approx(d(8)).margin(1.0 / 64));
  CHECK(density[1] == Approx(d(16)).margin(1.0 / 64));
  CHECK(density[2] == Approx(0.5).margin(1.0 / 64));
  CHECK(density[3] == Approx(0.5).margin(1.0 / 64));
  for (size_t e = 1; e < masks.size(); ++e)
    for (size_t i = 0; i < masks[e].size(); ++i)
      if (masks[e][i]) REQUIRE(masks[e - 1][i]);  // kept now => kept before
  for (const char* name : {"c2", "fc1"}) {
    const Node& n = *m.find(name);
    REQUIRE(n.mask);
    CHECK(n.mask->pattern == "block:8x8");
    Array<uint8_t> e = element_mask(n);
    for (size_t i = 0; i < e.size(); ++i)
      if (!e[i]) REQUIRE(n.param("weight")[i] == 0.0f);
  }
  CHECK(!m.find("c1")->mask);  // the first convolution stays dense

  // A pattern that fixes its density cannot be raised gradually.
  GradualConfig bad = g;
  bad.pattern = parse_pattern("nm:2:4");
  TrainConfig c2 = small_config(1);
  c2.gradual = bad;
  Model m2 = small_cnn(3);
  CHECK_THROWS_AS(Trainer(m2, train, nullptr, channel_stats(train), c2), UsageError);
}

namespace {
// c2 and fc1 pruned to nm:2:8 by the prune library.
void nm_prune(Model& m) {
  for (const char* name : {"c2", "fc1"}) prune_layer(*m.find(name), parse_pattern("nm:2:8"), 0.25);
}

bool respects_nm(const Tensor& w, int64_t n, int64_t mm) {
  const int64_t cin = w.shape().back(), rows = static_cast<int64_t>(w.size()) / cin;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < cin; g += mm) {
      int64_t nz = 0;
      for (int64_t c = g; c < std::min(cin, g + mm); ++c) nz += w[static_cast<size_t>(r * cin + c)] != 0.0f;
      if (nz > n) return false;
    }
  return true;
}
}  // namespace

TEST_CASE("BDWP: forward with the Cin mask, data gradient with the Cout mask, dense weight gradient") {
  auto build = [] {
    GraphBuilder b("one", 5, 5, 16);
    b.conv("c", "input", GraphBuilder::square(16, 3, 1, 1));
    return b.finish();
  };
  Model m = build();
  test::randomize(m, 5);
  Node& n = *m.find("c");
  const Tensor dense = n.param("weight").clone();
  DualMask dm;
  dm.fwd = nm_mask(dense, 3, 2, 8);
  dm.bwd = nm_mask(dense, 0, 2, 8);
  auto masked = [&](const Array<uint8_t>& mk) {
    Model c = build();
    Tensor& w = c.find("c")->param("weight");
    for (size_t i = 0; i < w.size(); ++i) w[i] = mk[i] ? dense[i] : 0.0f;
    return c;
  };
  Model mf = masked(dm.fwd), mb = masked(dm.bwd);

  NetOptions o;
  o.max_batch = 2;
  o.input_grad = true;
  Net a(m, o), f(mf, o), bw(mb, o);
  a.set_dual_mask(&n, &dm);
  Tensor x = test::random_tensor({2, 5, 5, 16}, 8);
  Tensor dy = test::random_tensor({static_cast<int64_t>(a.output().act.size())}, 9);
  for (Net* net : {&a, &f, &bw}) {
    test::to_channel_major(x, net->input());
    net->forward(2, Mode::Train);
    std::copy(dy.begin(), dy.end(), net->output().grad.data());
    net->backward();
  }
  const size_t used = static_cast<size_t>(16 * 2 * 25);
  auto diff = [&](const float* p, const float* q, size_t count) {
    float d = 0;
    for (size_t i = 0; i < count; ++i) d = std::max(d, std::abs(p[i] - q[i]));
    return d;
  };
  CHECK(diff(a.output().act.data(), f.output().act.data(), used) < 1e-5f);        // forward: W * fwd mask
  CHECK(diff(a.input().grad.data(), bw.input().grad.data(), used) < 1e-5f);       // data gradient: W * bwd mask
  const Param* ga = a.find_param("c.weight");
  const Param* gf = f.find_param("c.weight");
  CHECK(diff(ga->grad.data(), gf->grad.data(), ga->grad.size()) < 1e-4f);        // weight gradient: dense
  int64_t pruned_with_grad = 0;
  for (size_t i = 0; i < dm.fwd.size(); ++i) pruned_with_grad += !dm.fwd[i] && ga->grad[i] != 0.0f;
  CHECK(pruned_with_grad > 0);
}

// One layer under BDWP masks from the Bdwp class (per-channel or shared
// choices): the kept-K products equal the dense products of the masked
// weights, forward (forward mask) and data gradient (data-gradient mask);
// the weight gradient stays dense. Then the weights change, the masks are
// recomputed (a new version) and the layer must follow with new K lists.
void check_bdwp_layer(const std::function<Model()>& build, const Shape& in, int64_t shared) {
  Model m = build();
  test::randomize(m, 5);
  Node& n = *m.find("l");
  prune_layer(n, parse_pattern("nm:2:8"), 0.25);
  REQUIRE(n.mask);
  BdwpConfig bc;
  bc.shared = shared;
  Bdwp bd(m, bc);
  NetOptions o;
  o.max_batch = 3;
  o.input_grad = true;
  Net a(m, o);
  std::vector<ParamRule> rules(a.params().size());
  bd.attach(a, rules, a.params());
  Tensor x = test::random_tensor({3, in[0], in[1], in[2]}, 8);
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      // New weights (still dense: BDWP keeps them so) and their masks.
      Tensor& w = n.param("weight");
      const Tensor r = test::random_tensor(w.shape(), 21);
      std::copy(r.begin(), r.end(), w.begin());
      bd.update_masks();
      a.weights_changed();
    }
    const Tensor& dense = n.param("weight");
    const DualMask* dm = bd.masks(&n);
    REQUIRE(dm);
    const Array<uint8_t>& fwd = dm->fwd;
    const Array<uint8_t>& bwd = dm->bwd;
    const int64_t cout = dense.dim(0), cin = dense.shape().back();
    const int64_t taps = static_cast<int64_t>(dense.size()) / (cout * cin);
    // Forward mask: exactly min(2, group length) of every group of 8 along
    // Cin, in every row; with shared choices, rows of a block of 8 alike.
    // Data-gradient mask: the same along Cout (at fixed tap and Cin), with
    // the 8 input channels of a block alike.
    for (int64_t r = 0; r < cout * taps; ++r)
      for (int64_t g = 0; g < cin; g += 8) {
        int64_t kept = 0;
        for (int64_t c = g; c < std::min(cin, g + 8); ++c) kept += fwd[static_cast<size_t>(r * cin + c)];
        REQUIRE(kept == std::min<int64_t>(2, cin - g));
      }
    for (int64_t e = 0; e < taps * cin; ++e)
      for (int64_t g = 0; g < cout; g += 8) {
        int64_t kept = 0;
        for (int64_t co = g; co < std::min(cout, g + 8); ++co) kept += bwd[static_cast<size_t>(co * taps * cin + e)];
        REQUIRE(kept == std::min<int64_t>(2, cout - g));
      }
    if (shared > 1)
      for (int64_t co = 0; co < cout; ++co)
        for (int64_t e = 0; e < taps * cin; ++e) {
          const int64_t ci = e % cin;
          REQUIRE(fwd[static_cast<size_t>(co * taps * cin + e)] ==
                  fwd[static_cast<size_t>((co / shared * shared) * taps * cin + e)]);
          REQUIRE(bwd[static_cast<size_t>(co * taps * cin + e)] ==
                  bwd[static_cast<size_t>(co * taps * cin + e - ci + ci / shared * shared)]);
        }
    auto masked = [&](const Array<uint8_t>& mk) {
      Model c = build();
      Tensor& w = c.find("l")->param("weight");
      for (size_t i = 0; i < w.size(); ++i) w[i] = mk[i] ? dense[i] : 0.0f;
      return c;
    };
    Model mf = masked(fwd), mb = masked(bwd);
    Net f(mf, o), bw(mb, o);
    Tensor dy = test::random_tensor({static_cast<int64_t>(a.output().act.size())}, 9 + round);
    for (Net* net : {&a, &f, &bw}) {
      test::to_channel_major(x, net->input());
      net->forward(3, Mode::Train);
      std::copy(dy.begin(), dy.end(), net->output().grad.data());
      net->backward();
    }
    auto diff = [&](const float* p, const float* q, size_t count) {
      float d = 0;
      for (size_t i = 0; i < count; ++i) d = std::max(d, std::abs(p[i] - q[i]));
      return d;
    };
    const Value& out = a.output();
    const size_t used_out = static_cast<size_t>(out.C * out.plane(3));
    const size_t used_in = static_cast<size_t>(in[2] * 3 * in[0] * in[1]);
    CHECK(diff(a.output().act.data(), f.output().act.data(), used_out) < 1e-4f);  // forward: W * fwd mask
    CHECK(diff(a.input().grad.data(), bw.input().grad.data(), used_in) < 1e-4f);   // data gradient: W * bwd mask
    const Param* ga = a.find_param("l.weight");
    const Param* gf = f.find_param("l.weight");
    CHECK(diff(ga->grad.data(), gf->grad.data(), ga->grad.size()) < 1e-3f);  // weight gradient: dense
    int64_t pruned_with_grad = 0;
    for (size_t i = 0; i < fwd.size(); ++i) pruned_with_grad += !fwd[i] && ga->grad[i] != 0.0f;
    CHECK(pruned_with_grad > 0);
  }
}

TEST_CASE("BDWP kept-K products, per-channel and shared choices: fast conv, strided conv, dense") {
  // Cout 20: a partial 8-row block and a short last N:M group along Cout
  // (bsp prune wants Cin a multiple of M).
  auto fast = [] {
    GraphBuilder b("one", 5, 5, 24);
    b.conv("l", "input", GraphBuilder::square(20, 3, 1, 1));
    return b.finish();
  };
  auto strided = [] {
    GraphBuilder b("one", 6, 6, 16);
    b.conv("l", "input", GraphBuilder::square(24, 3, 2, 1));
    return b.finish();
  };
  auto dense = [] {
    GraphBuilder b("one", 1, 1, 40);
    b.dense("l", b.flatten("f", "input"), 20, false);
    return b.finish();
  };
  for (int64_t shared : {1, 8}) {
    INFO("shared " << shared);
    {
      INFO("fast conv");
      check_bdwp_layer(fast, Shape{5, 5, 24}, shared);
    }
    {
      INFO("strided conv");
      check_bdwp_layer(strided, Shape{6, 6, 16}, shared);
    }
    {
      INFO("dense");
      check_bdwp_layer(dense, Shape{1, 1, 40}, shared);
    }
  }
}

TEST_CASE("BDWP --bdwp-grad-every: the pruned weights' gradient every G steps, scaled by G") {
  GraphBuilder b("one", 5, 5, 16);
  b.conv("l", "input", GraphBuilder::square(16, 3, 1, 1));
  Model m = b.finish();
  test::randomize(m, 5);
  Node& n = *m.find("l");
  prune_layer(n, parse_pattern("nm:2:8"), 0.25);
  BdwpConfig bc;
  bc.shared = 8;
  bc.grad_every = 3;
  Bdwp bd(m, bc);
  NetOptions o;
  o.max_batch = 2;
  Net a(m, o);
  std::vector<ParamRule> rules(a.params().size());
  bd.attach(a, rules, a.params());
  Tensor x = test::random_tensor({2, 5, 5, 16}, 8);
  Tensor dy = test::random_tensor({static_cast<int64_t>(a.output().act.size())}, 9);
  auto grad_at = [&](int64_t step) {
    bd.before_step(step);
    test::to_channel_major(x, a.input());
    a.forward(2, Mode::Train);
    std::copy(dy.begin(), dy.end(), a.output().grad.data());
    a.backward();
    bd.after_backward(a.params());
    return a.find_param("l.weight")->grad.clone();
  };
  const Tensor dense = grad_at(0), sparse = grad_at(1), dense3 = grad_at(3);
  const Array<uint8_t>& fwd = bd.masks(&n)->fwd;
  int64_t pruned_nonzero = 0;
  for (size_t i = 0; i < fwd.size(); ++i) {
    if (fwd[i]) {
      REQUIRE(sparse[i] == Approx(dense[i]).margin(1e-4));  // kept: the same every step
    } else {
      REQUIRE(sparse[i] == 0.0f);  // pruned, off step: none
      pruned_nonzero += dense[i] != 0.0f;
    }
    REQUIRE(dense3[i] == dense[i]);
  }
  CHECK(pruned_nonzero > 0);
  // Scaled by G: the dense step's pruned gradient is 3x what plain BDWP computes.
  BdwpConfig plain;
  plain.shared = 8;
  Bdwp bp(m, plain);
  Net a2(m, o);
  std::vector<ParamRule> rules2(a2.params().size());
  bp.attach(a2, rules2, a2.params());
  test::to_channel_major(x, a2.input());
  a2.forward(2, Mode::Train);
  std::copy(dy.begin(), dy.end(), a2.output().grad.data());
  a2.backward();
  const Tensor& g1 = a2.find_param("l.weight")->grad;
  for (size_t i = 0; i < fwd.size(); ++i)
    REQUIRE(dense[i] == Approx(fwd[i] ? g1[i] : 3.0f * g1[i]).margin(1e-4));
}

TEST_CASE("BDWP training keeps N:M in the written model and resumes bit-identically") {
  ImageSet train = test::blob_set(200, 1);
  const Normalization nm = channel_stats(train);
  TrainConfig cfg = small_config(2);
  cfg.bdwp = true;

  Model ref = small_cnn(6);
  nm_prune(ref);
  std::map<std::string, Tensor> dense_end;
  {
    Trainer t(ref, train, nullptr, nm, cfg);
    t.run({});
    dense_end = t.begin_export();  // the final model: masked weights, updated masks
  }
  for (const char* name : {"c2", "fc1"}) {
    const Node& n = *ref.find(name);
    REQUIRE(n.mask);
    CHECK(n.mask->pattern == "nm:2:8");
    CHECK(n.mask->density == Approx(0.25));
    CHECK(respects_nm(n.param("weight"), 2, 8));
    // The dense weights behind it kept learning where the forward mask prunes.
    CHECK(!respects_nm(dense_end.at(name), 2, 8));
  }
  const std::vector<float> want = all_weights(ref);

  test::TempDir d;
  const std::string path = d.file("ck.h5");
  Model m = small_cnn(6);
  nm_prune(m);
  {
    Trainer t(m, train, nullptr, nm, cfg);
    int64_t steps = 0;
    TrainHooks h;
    h.progress = [&](const Progress&) { ++steps; };
    h.stop_requested = [&] { return steps >= 9 ? 2 : 0; };
    h.checkpoint = [&](const TrainState& s) {
      if (steps < 9) return;
      std::map<std::string, Tensor> dense = t.begin_export();
      std::map<std::string, const Tensor*> ptrs;
      for (const auto& [k, v] : dense) ptrs[k] = &v;
      save_model(m, path);
      write_train_group(path, s, "{}", 1, &t.params(), ptrs);
      t.end_export(dense);
    };
    CHECK_THROWS_AS(t.run(h), Interrupted);
  }
  Model r = load_model(path, path);
  for (const char* name : {"c2", "fc1"}) CHECK(respects_nm(r.find(name)->param("weight"), 2, 8));
  std::optional<Checkpoint> ck = read_train_group(path, path);
  REQUIRE(ck);
  CHECK(ck->dense.size() == 2);
  Trainer t(r, train, nullptr, nm, cfg);
  restore_checkpoint(t, *ck, path);
  t.run({});
  t.begin_export();
  CHECK(all_weights(r) == want);
}

TEST_CASE("a diverging loss stops training after the last good checkpoint") {
  ImageSet train = test::blob_set(128, 1);
  Model m = small_cnn(1);
  Trainer t(m, train, nullptr, channel_stats(train), small_config(3));
  std::vector<int64_t> saved;
  TrainHooks h;
  h.checkpoint = [&](const TrainState& s) { saved.push_back(s.epoch); };
  h.epoch_done = [&](const EpochRecord& r) {
    if (r.epoch == 1) m.find("fc2")->param("weight")[0] = std::nanf("");  // poison epoch 2
  };
  // The forward pass runs on the packed weights of epoch 1 (finite loss);
  // the step's update carries the NaN into the weights, which are checked.
  CHECK_THROWS_WITH(t.run(h), Catch::Contains("training diverged: parameter 'weight' of node 'fc2' is nan at epoch 2 "
                                              "step 1 (try a lower --lr)"));
  CHECK(saved == std::vector<int64_t>{1});
}

TEST_CASE("training stops when a batchnorm statistic, the loss or the test loss stops being finite") {
  ImageSet train = test::blob_set(128, 1);
  const Normalization nm = channel_stats(train);
  {
    // A running variance that overflows (as 1e30 pixels made it do) stops
    // the step that produced it; the epoch before is kept.
    Model m = small_cnn(1);
    Trainer t(m, train, nullptr, nm, small_config(3));
    std::vector<int64_t> saved;
    TrainHooks h;
    h.checkpoint = [&](const TrainState& s) { saved.push_back(s.epoch); };
    h.epoch_done = [&](const EpochRecord& r) {
      if (r.epoch == 1) m.find("bn2")->param("var")[3] = std::numeric_limits<float>::infinity();
    };
    CHECK_THROWS_WITH(t.run(h), Catch::Contains("training diverged: the running variance of batchnorm 'bn2' is "
                                                "infinite in channel 3 at epoch 2 step 1"));
    CHECK(saved == std::vector<int64_t>{1});
  }
  {
    // NaN pixels: a relu turns them into zeros (the loss stays finite),
    // but the first step's update of c1 takes them in.
    ImageSet bad = test::blob_set(128, 1);
    bad.f32 = Tensor({bad.n, 8, 8, 1});
    for (size_t i = 0; i < bad.f32.size(); ++i) bad.f32[i] = bad.u8[i] / 255.0f;
    bad.u8 = Array<uint8_t>();
    for (int64_t i = 0; i < bad.n; ++i) bad.f32[static_cast<size_t>(i * 64 + 27)] = std::nanf("");
    Model m = small_cnn(1);
    Trainer t(m, bad, nullptr, nm, small_config(1));
    CHECK_THROWS_WITH(t.run({}), Catch::Contains("training diverged: parameter 'weight' of node 'c1' is nan at epoch 1 "
                                                 "step 1"));
  }
  {
    // Test images that overflow float32 in eval mode: the epoch's test loss
    // is not reported and its checkpoint not written.
    ImageSet test = test::blob_set(64, 2);
    test.f32 = Tensor({test.n, 8, 8, 1});
    for (float& v : test.f32) v = std::numeric_limits<float>::max();
    test.u8 = Array<uint8_t>();
    Model m = small_cnn(1);
    Trainer t(m, train, &test, nm, small_config(2));
    std::vector<int64_t> saved, reported;
    TrainHooks h;
    h.checkpoint = [&](const TrainState& s) { saved.push_back(s.epoch); };
    h.epoch_done = [&](const EpochRecord& r) { reported.push_back(r.epoch); };
    CHECK_THROWS_WITH(t.run(h), Catch::Contains("training diverged: after epoch 1, node 'c1' outputs nan or infinite values on "
                                                "test images 0 to 31 (try a lower --lr)"));
    CHECK(saved.empty());
    CHECK(reported.empty());
  }
  {
    // Weights that make the logits NaN (repacked, so the forward sees them):
    // the loss of the next step.
    Model m = small_cnn(1);
    Trainer t(m, train, nullptr, nm, small_config(2));
    TrainHooks h;
    h.epoch_done = [&](const EpochRecord&) {
      m.find("fc2")->param("weight")[0] = std::nanf("");
      t.net().weights_changed();
    };
    CHECK_THROWS_WITH(t.run(h), Catch::Contains("training diverged: the loss is nan at epoch 2 step 1"));
  }
}

TEST_CASE("evaluate never reports a number computed from a non-finite forward pass") {
  // Any engine (int8 included): the logits are checked.
  struct Fake : Predictor {
    float value = 0;
    const char* node = nullptr;
    const char* name() const override { return "fake"; }
    int64_t max_batch() const override { return 16; }
    int64_t classes() const override { return 4; }
    void run(const float*, int64_t n, float* logits) override {
      for (int64_t i = 0; i < n * 4; ++i) logits[i] = 0;
      if (n > 5) logits[5 * 4 + 2] = value;
    }
    const char* nonfinite_node() const override { return node; }
  };
  ImageSet s = test::blob_set(40, 1);
  const Normalization nm = channel_stats(s);
  Fake p;
  CHECK(evaluate(p, s, nm).loss == Approx(std::log(4.0)));
  p.value = std::nanf("");
  CHECK_THROWS_WITH(evaluate(p, s, nm), Catch::Contains("the forward pass is not finite: the logits of image 5 are nan"));
  p.value = -std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(evaluate(p, s, nm), Catch::Contains("the logits of image 5 are infinite"));
  // An engine that saw a node's output go non-finite names it, even when
  // the logits look fine (a relu turns NaN into 0).
  p.value = 0;
  p.node = "conv7";
  CHECK_THROWS_WITH(evaluate(p, s, nm), Catch::Contains("node 'conv7' outputs nan or infinite values on images 0 to 15"));

  // The trainer's network names the first node whose output overflows.
  Model m = small_cnn(1);
  // Finite weights (1e30 in c1 and c2): c1's outputs are near 1e30, c2's
  // products near 1e60, past float32.
  for (const char* c : {"c1", "c2"})
    for (float& w : m.find(c)->param("weight")) w *= 1e30f;
  auto net = make_predictor(m, 16);
  CHECK_THROWS_WITH(evaluate(*net, s, nm), Catch::Contains("node 'c2' outputs nan or infinite values on images 0 to 15"));
}
