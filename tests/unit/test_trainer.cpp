// The training loop on a small synthetic set: the loss goes down, masks are
// held, the same seed gives the same weights, and a run resumed from a
// checkpoint (at an epoch boundary or mid-epoch) ends bit-identical to an
// uninterrupted one.
#include <catch2/catch.hpp>

#include "core/model_io.hpp"
#include "data_helpers.hpp"
#include "sparsity/mask.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "train/trainer.hpp"
#include "train_helpers.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;
using namespace bsp::train;

namespace {

Model small_cnn(uint64_t seed) {
  GraphBuilder b("small", 8, 8, 1);
  auto x = b.conv("c1", "input", GraphBuilder::square(16, 3, 1, 1));
  x = b.relu("r1", b.batchnorm("bn1", x));
  x = b.conv("c2", x, GraphBuilder::square(16, 3, 1, 1));
  x = b.relu("r2", b.batchnorm("bn2", x));
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
