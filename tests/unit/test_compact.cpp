#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>

#include "compact/compact.hpp"
#include "core/fold.hpp"
#include "core/h5.hpp"
#include "modelfile/model_file.hpp"
#include "sparse_helpers.hpp"
#include "sparsity/prune.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;
using namespace bsp::compact;

namespace {

bool bitwise_equal(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

// A conv node with random weights of the given geometry.
Model one_conv(int64_t cout, int64_t k, int64_t cin, uint64_t seed) {
  GraphBuilder b("t", 6, 6, cin);
  b.conv("c", "input", GraphBuilder::square(cout, k, 1, k / 2));
  Model m = b.finish();
  m.nodes[1].param("weight") = test::random_tensor({cout, k, k, cin}, seed);
  return m;
}

void check_roundtrip(const Node& n, Format f) {
  const Tensor& w = n.param("weight");
  Array<uint8_t> keep;
  if (n.mask) keep = element_mask(n);
  CompactLayer l = compress(w.data(), w.shape(), n.mask ? keep.data() : nullptr, spec_for(n, f));
  REQUIRE_NOTHROW(l.check());
  auto back = expand<float>(l);
  REQUIRE(back.size() == w.size());
  CHECK(bitwise_equal(back.data(), w.data(), w.size()));
}

}  // namespace

TEST_CASE("bsr stores only kept blocks, block-row major, and expands bitwise") {
  for (auto [cout, k, cin] : {std::tuple{16, 3, 16}, {10, 3, 12}, {7, 1, 5}, {24, 5, 9}}) {
    for (double d : {0.0, 0.3, 0.5, 1.0}) {
      Model m = one_conv(cout, k, cin, 11);
      Node& n = m.nodes[1];
      test::block_prune(n, 8, 8, d, 3);
      check_roundtrip(n, Format::Bsr);
      const Tensor& w = n.param("weight");
      Array<uint8_t> keep = element_mask(n);
      CompactLayer l = compress(w.data(), w.shape(), keep.data(), spec_for(n, Format::Bsr));
      int64_t kept = 0;
      for (auto b : n.mask->bits) kept += b;
      CHECK(l.nnz_blocks() == kept);
      CHECK(l.row_ptr.size() == static_cast<size_t>((cout + 7) / 8 + 1));
      CHECK(l.stored_weights() == kept * k * k * 64);
      if (d == 0.0) CHECK(l.bytes() == static_cast<int64_t>(l.row_ptr.size() * 4));
    }
  }
}

TEST_CASE("bsr with other block sizes and without a mask") {
  Model m = one_conv(12, 3, 10, 5);
  Node& n = m.nodes[1];
  test::block_prune(n, 4, 2, 0.5, 9);
  CompactLayer l = compress(n.param("weight").data(), n.param("weight").shape(), element_mask(n).data(),
                            spec_for(n, Format::Bsr));
  CHECK(l.R == 4);
  CHECK(l.C == 2);
  check_roundtrip(n, Format::Bsr);
  // No mask: blocks with any nonzero weight are kept.
  n.mask.reset();
  check_roundtrip(n, Format::Bsr);
}

TEST_CASE("nm packs N values and 2-bit positions per group for 2:4") {
  Model m = one_conv(8, 3, 16, 2);
  Node& n = m.nodes[1];
  test::nm_prune(n, 2, 4);
  check_roundtrip(n, Format::NM);
  const Tensor& w = n.param("weight");
  CompactLayer l = compress(w.data(), w.shape(), element_mask(n).data(), spec_for(n, Format::NM));
  CHECK(l.index_bits() == 2);
  CHECK(l.stored_weights() == static_cast<int64_t>(w.size() / 2));
  CHECK(l.nm_index.size() == w.size() / 2 * 2 / 8);
  // Golden: group 0 of the first output channel.
  int kept[2], j = 0;
  for (int i = 0; i < 4; ++i)
    if (w[static_cast<size_t>(i)] != 0.0f) kept[j++] = i;
  REQUIRE(j == 2);
  CHECK((l.nm_index[0] & 3) == kept[0]);
  CHECK(((l.nm_index[0] >> 2) & 3) == kept[1]);
  CHECK(l.vals<float>()[0] == w[static_cast<size_t>(kept[0])]);

  SECTION("2:8 uses 3 bits and fills short groups") {
    Model m2 = one_conv(5, 1, 16, 4);
    Node& n2 = m2.nodes[1];
    test::nm_prune(n2, 2, 8);
    n2.param("weight")[0] = 0.0f;  // a group with fewer than N nonzeros
    check_roundtrip(n2, Format::NM);
    CompactLayer l2 = compress(n2.param("weight").data(), n2.param("weight").shape(), element_mask(n2).data(),
                               spec_for(n2, Format::NM));
    CHECK(l2.index_bits() == 3);
  }
  SECTION("a group with too many kept values is refused") {
    n.mask->bits.fill(1);
    CHECK_THROWS_WITH(compress(w.data(), w.shape(), element_mask(n).data(), spec_for(n, Format::NM)),
                      Catch::Contains("not 2:4"));
  }
  SECTION("nm needs an N:M pattern and I % M == 0") {
    Model m3 = one_conv(8, 3, 6, 2);
    test::nm_prune(m3.nodes[1], 2, 3);
    m3.nodes[1].mask->pattern = "nm:2:4";
    CHECK_THROWS_WITH(spec_for(m3.nodes[1], Format::NM), Catch::Contains("not a multiple of M"));
    CHECK(auto_format(m3.nodes[1]) == Format::Dense);
    Model m4 = one_conv(8, 3, 8, 2);
    test::block_prune(m4.nodes[1], 8, 8, 0.5, 1);
    CHECK_THROWS_WITH(spec_for(m4.nodes[1], Format::NM), Catch::Contains("not N:M-pruned"));
  }
}

TEST_CASE("tw tiles gather rows and scatter columns") {
  Model m = one_conv(40, 3, 8, 6);
  Node& n = m.nodes[1];
  test::tw_prune(n, 16, 0.7, 0.5, 8);
  check_roundtrip(n, Format::TW);
  const Tensor& w = n.param("weight");
  CompactLayer l = compress(w.data(), w.shape(), element_mask(n).data(), spec_for(n, Format::TW));
  CHECK(l.G == 16);
  for (int64_t t = 0; t + 1 < l.tiles(); ++t) CHECK(l.tile_col_ptr[t + 1] - l.tile_col_ptr[t] == 16);
  // Fully pruned and unpruned layers (a mask without tile structure).
  n.mask->column_tile = Array<int32_t>();
  n.mask->tile_rows = Array<uint8_t>();
  n.mask->bits.fill(0);
  apply_mask(n);
  check_roundtrip(n, Format::TW);
  CHECK(compress(w.data(), w.shape(), element_mask(n).data(), spec_for(n, Format::TW)).tiles() == 0);
  n.mask.reset();
  m.nodes[1].param("weight") = test::random_tensor({40, 3, 3, 8}, 1);
  check_roundtrip(m.nodes[1], Format::TW);
}

TEST_CASE("dense layers and dense weights [out, in]") {
  GraphBuilder b("t", 2, 2, 5);
  b.dense("d", b.flatten("f", "input"), 19);
  Model m = b.finish();
  Node& n = m.nodes[2];
  n.param("weight") = test::random_tensor({19, 20}, 3);
  for (Format f : {Format::Dense, Format::Bsr, Format::TW}) check_roundtrip(n, f);
  test::block_prune(n, 8, 8, 0.5, 2);
  check_roundtrip(n, Format::Bsr);
}

TEST_CASE("auto picks the format from the pattern") {
  Model m = one_conv(16, 3, 16, 1);
  Node& n = m.nodes[1];
  CHECK(auto_format(n) == Format::Dense);
  test::block_prune(n, 8, 8, 0.5, 1);
  CHECK(auto_format(n) == Format::Bsr);
  test::nm_prune(n, 2, 4);
  CHECK(auto_format(n) == Format::NM);
  test::tw_prune(n, 8, 0.5, 0.5, 1);
  CHECK(auto_format(n) == Format::TW);
  test::unstructured_prune(n, 0.5, 1);
  CHECK(auto_format(n) == Format::Dense);
  // A forced format applies to pruned layers only.
  CHECK(layer_format(n, Format::Bsr) == Format::Bsr);
  n.mask.reset();
  CHECK(layer_format(n, Format::Bsr) == Format::Dense);
}

TEST_CASE("bf16 rounds to nearest even") {
  CHECK(to_bf16(1.0f) == 0x3f80);
  CHECK(from_bf16(to_bf16(1.0f)) == 1.0f);
  CHECK(to_bf16(1.00390625f) == 0x3f80);  // exactly half way: ties to even
  CHECK(to_bf16(1.01171875f) == 0x3f82);  // 1 + 3/256: half way, rounds up to even
  CHECK(std::isnan(from_bf16(to_bf16(std::nanf("")))));
}

TEST_CASE("a compacted fp32 model saves, loads and expands to bitwise the original weights") {
  test::TempDir dir;
  Model m = build_fmnist_resnet(10);
  init_weights(m, 4);
  int i = 0;
  for (Node& n : m.nodes) {
    if (!op_has_weight(n.op) || n.name == "stem.conv") continue;
    switch (i++ % 4) {
      case 0: test::block_prune(n, 8, 8, 0.5, static_cast<uint64_t>(i)); break;
      case 1: test::nm_prune(n, 2, 4); break;
      case 2: test::tw_prune(n, 16, 0.8, 0.6, static_cast<uint64_t>(i)); break;
      default: break;  // left dense
    }
  }
  m.compact = std::make_shared<CompactModel>(compact_model(m, CompactOptions{}));
  CHECK(m.compact->layer("stem.conv")->format == Format::Dense);
  save_model(m, dir.file("c.h5"));
  Model back = load_model(dir.file("c.h5"), "c.h5");
  REQUIRE(back.compact);
  CHECK(back.compact_dropped.empty());
  int formats[4] = {0, 0, 0, 0};
  for (const Node& n : back.nodes) {
    if (!op_has_weight(n.op)) continue;
    const CompactLayer* l = back.compact->layer(n.name);
    REQUIRE(l);
    formats[static_cast<int>(l->format)]++;
    Tensor w = expand_weight(*back.compact, n.name);
    const Tensor& orig = m.find(n.name)->param("weight");
    CHECK(bitwise_equal(w.data(), orig.data(), orig.size()));
    CHECK(layer_bytes(back, n.name).compact == l->bytes());
  }
  for (int f = 0; f < 4; ++f) CHECK(formats[f] > 0);

  SECTION("changing a weight after compaction leaves the stale compact group out") {
    back.nodes[1].param("weight")[0] += 1.0f;
    save_model(back, dir.file("d.h5"));
    Model stale = load_model(dir.file("d.h5"), "d.h5");
    CHECK(!stale.compact);
    CHECK(stale.compact_dropped.empty());
  }
  SECTION("a file whose weights changed elsewhere: the reader drops the compact group and says why") {
    test::edit_weight_in_file(dir.file("c.h5"), back.nodes[1].name, 0, 1.0f);
    Model stale = load_model(dir.file("c.h5"), "c.h5");
    CHECK(!stale.compact);
    CHECK_THAT(stale.compact_dropped, Catch::Contains("changed after bsp compact"));
  }
}

TEST_CASE("bf16 compaction halves the value bytes") {
  Model m = one_conv(16, 3, 16, 1);
  test::block_prune(m.nodes[1], 8, 8, 0.5, 2);
  CompactOptions o;
  o.dtype = DType::BF16;
  CompactModel c = compact_model(m, o);
  const CompactLayer* l = c.layer("c");
  CHECK(l->dtype == DType::BF16);
  Tensor w = expand_weight(c, "c");
  const Tensor& orig = m.nodes[1].param("weight");
  for (size_t i = 0; i < w.size(); ++i) CHECK(w[i] == Approx(orig[i]).epsilon(1.0 / 128));
}

TEST_CASE("layers pruned by bsp prune's patterns compact and expand bitwise") {
  for (const char* pat : {"block:8x8", "block:4x2", "nm:2:4", "nm:2:8", "tw:16", "tvw:8", "channel", "unstructured"}) {
    Model m = one_conv(40, 3, 24, 17);
    Node& n = m.nodes[1];
    const Pattern p = parse_pattern(pat);
    prune_layer(n, p, p.implied_density().value_or(0.4));
    INFO(pat);
    const Format f = auto_format(n);
    CHECK(f == (p.family == PatternFamily::Block                                  ? Format::Bsr
                : p.family == PatternFamily::NM                                   ? Format::NM
                : p.family == PatternFamily::Unstructured                         ? Format::Dense
                                                                                  : Format::TW));
    check_roundtrip(n, f);
    if (n.mask->is_tiled()) {
      const Tensor& w = n.param("weight");
      CompactLayer l = compress(w.data(), w.shape(), element_mask(n).data(), spec_for(n, Format::TW));
      CHECK(l.tiles() == n.mask->tiles());
      // The tiles are the mask's: a tile keeps exactly the rows the mask says.
      for (int64_t t = 0; t < l.tiles(); ++t) {
        int64_t rows = 0;
        for (int64_t k = 0; k < 3 * 3 * 24; ++k) rows += n.mask->tile_rows[static_cast<size_t>(t * 216 + k)];
        CHECK(l.tile_row_ptr[t + 1] - l.tile_row_ptr[t] == rows);
      }
    }
  }
}

TEST_CASE("check() refuses repeated or unordered N:M positions and tw indices out of order") {
  SECTION("nm 2:4 and 2:8") {
    for (int64_t M : {4, 8}) {
      Model m = one_conv(4, 1, 16, 3);
      Node& n = m.nodes[1];
      test::nm_prune(n, 2, M);
      const Tensor& w = n.param("weight");
      CompactLayer l = compress(w.data(), w.shape(), element_mask(n).data(), spec_for(n, Format::NM));
      REQUIRE_NOTHROW(l.check());
      const int b = l.index_bits();
      auto set = [&](int64_t slot, int64_t pos) {  // slot s's b bits, little-endian
        for (int k = 0; k < b; ++k) {
          const int64_t bit = slot * b + k;
          uint8_t& byte = l.nm_index[static_cast<size_t>(bit / 8)];
          byte = static_cast<uint8_t>((byte & ~(1u << (bit % 8))) | (((pos >> k) & 1) << (bit % 8)));
        }
      };
      CompactLayer same = l;
      set(2, 1), set(3, 1);  // group 1: 1, 1
      CHECK_THROWS_WITH(l.check(), Catch::Contains("nm index: group 1 holds position 1 after 1"));
      l = same;
      set(2, 3), set(3, 0);  // group 1: 3, 0
      CHECK_THROWS_WITH(l.check(), Catch::Contains("nm index: group 1 holds position 0 after 3"));
      l = same;
      set(2, 0), set(3, 1);  // ascending: fine
      CHECK_NOTHROW(l.check());
    }
  }
  SECTION("tw rows and columns ascend within a tile") {
    Model m = one_conv(40, 3, 8, 6);
    Node& n = m.nodes[1];
    test::tw_prune(n, 16, 0.7, 0.5, 8);
    const Tensor& w = n.param("weight");
    CompactLayer l = compress(w.data(), w.shape(), element_mask(n).data(), spec_for(n, Format::TW));
    REQUIRE_NOTHROW(l.check());
    REQUIRE(l.tile_row_ptr[1] >= 2);
    CompactLayer r = l;
    r.tile_rows[1] = r.tile_rows[0];
    CHECK_THROWS_WITH(r.check(), Catch::Contains("tw tile 0: rows"));
    CompactLayer c = l;
    std::swap(c.tile_cols[0], c.tile_cols[1]);
    CHECK_THROWS_WITH(c.check(), Catch::Contains("tw tile 0: columns"));
  }
}

namespace {
// fmnist-resnet with its batchnorms away from the identity (so that the int8
// fold and its undoing matter) and a block-pruned layer of every other one.
Model strip_model() {
  Model m = build_fmnist_resnet(10);
  init_weights(m, 5);
  int i = 0;
  for (Node& n : m.nodes) {
    if (n.op == Op::BatchNorm) {
      n.param("gamma") = test::random_tensor(n.param("gamma").shape(), 40 + static_cast<uint64_t>(i), 0.5);
      n.param("mean") = test::random_tensor(n.param("mean").shape(), 60 + static_cast<uint64_t>(i), 0.1);
    }
    if (op_has_weight(n.op) && n.name != "stem.conv" && i++ % 2 == 0)
      test::block_prune(n, 8, 8, 0.5, static_cast<uint64_t>(i));
  }
  return m;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

bool has_dataset(const std::string& path, const std::string& name) {
  h5::Handle f = h5::open_file_readonly(path);
  return h5::exists(f, name);
}
}  // namespace

TEST_CASE("a stripped fp32 model leaves out the weights /compact holds and reads them back") {
  test::TempDir dir;
  Model m = strip_model();
  m.compact = std::make_shared<CompactModel>(compact_model(m, CompactOptions{}));
  m.drop_dense = true;
  save_model(m, dir.file("s.h5"));
  for (const auto& [name, l] : m.compact->layers)
    CHECK(has_dataset(dir.file("s.h5"), "graph/nodes/" + name + "/weight") == !holds_values(l));
  Model back = load_model(dir.file("s.h5"), "s.h5");
  REQUIRE(back.rebuilt);
  REQUIRE(back.compact);
  CHECK(back.drop_dense);
  CHECK(back.rebuilt->dtype == DType::FP32);
  size_t held = 0;  // the pruned layers (bsr); the others are fp32 dense, their weights the graph's
  for (const auto& [name, l] : m.compact->layers) held += holds_values(l);
  CHECK(held > 0);
  CHECK(back.rebuilt->nodes.size() == held);
  for (const Node& n : back.nodes)
    if (op_has_weight(n.op)) {
      const Tensor& orig = m.find(n.name)->param("weight");
      CHECK(bitwise_equal(n.param("weight").data(), orig.data(), orig.size()));
    }
  // The rebuilt graph stands for the one compacted: its groups stay fresh.
  CHECK(content_hash(back) == m.compact->source_hash);
  save_model(back, dir.file("t.h5"));
  CHECK(read_bytes(dir.file("s.h5")) == read_bytes(dir.file("t.h5")));

  SECTION("a changed weight is a new graph: the weights are written and /compact is dropped") {
    back.nodes[1].param("weight")[0] += 1.0f;
    CHECK(content_hash(back) != m.compact->source_hash);
    save_model(back, dir.file("u.h5"));
    Model changed = load_model(dir.file("u.h5"), "u.h5");
    CHECK(!changed.compact);
    CHECK(!changed.rebuilt);
    CHECK(changed.find(back.nodes[1].name)->param("weight")[0] == back.nodes[1].param("weight")[0]);
  }
}

TEST_CASE("int8 weights are rebuilt dequantised with the folded batchnorm's gain divided out") {
  Model m = strip_model();
  CompactOptions o;
  o.dtype = DType::Int8;
  const Tensor calib = test::random_tensor({4, 28, 28, 1}, 9);
  CompactModel c = compact_model(m, o, &calib);
  int folded = 0;
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const Node& n = m.nodes[i];
    if (!op_has_weight(n.op)) continue;
    const Tensor w = rebuild_weight(m, c, n.name);
    const Tensor& orig = n.param("weight");
    const q8::QNode& q = c.int8->nodes[i];
    // The batchnorm folded into the layer, if any.
    std::vector<double> g;
    for (size_t j = 0; j < m.nodes.size(); ++j)
      if (m.nodes[j].op == Op::BatchNorm && c.int8->nodes[j].fused_into == n.name) g = batchnorm_gain(m.nodes[j]);
    folded += !g.empty();
    const int64_t O = orig.dim(0), K = static_cast<int64_t>(orig.size()) / O;
    for (int64_t oc = 0; oc < O; ++oc) {
      const double gain = g.empty() ? 1.0 : std::abs(g[static_cast<size_t>(oc)]);
      // Half a quantisation step of the folded weight, in the unfolded weight's units.
      const double step = 0.5 * q.w_scale[static_cast<size_t>(oc)] / gain * (1 + 1e-5) + 1e-7;
      for (int64_t k = 0; k < K; ++k) {
        const size_t e = static_cast<size_t>(oc * K + k);
        REQUIRE(std::abs(w[e] - orig[e]) <= step);
      }
    }
  }
  CHECK(folded > 0);
}

TEST_CASE("--compress stores large datasets shuffled and deflated and reads the same model") {
  test::TempDir dir;
  Model m = strip_model();
  save_model(m, dir.file("p.h5"));
  save_model(m, dir.file("z.h5"), SaveOptions{4});
  CHECK(read_bytes(dir.file("z.h5")).size() < read_bytes(dir.file("p.h5")).size());
  {
    h5::Handle f = h5::open_file_readonly(dir.file("z.h5"));
    auto filters = [&](const std::string& name) {
      h5::Handle d(H5Dopen2(f, name.c_str(), H5P_DEFAULT));
      h5::Handle p(H5Dget_create_plist(d));
      return H5Pget_nfilters(p);
    };
    CHECK(filters("graph/nodes/stage3.0.b.conv/weight") == 2);  // shuffle, deflate
    CHECK(filters("graph/nodes/fc/bias") == 0);                 // 40 bytes: left as it was
  }
  Model a = load_model(dir.file("p.h5"), "p.h5"), b = load_model(dir.file("z.h5"), "z.h5");
  CHECK(graph_hash(a) == graph_hash(b));
}
