// Files from elsewhere (issue 24): the defects the sanitizer build and the
// fuzzers (tests/fuzz) found in the readers, one case each, so that each
// stays fixed. A crafted file is refused with a bsp::Error that says what
// is wrong; never another exception, a crash or undefined behaviour (the
// sanitizer build of tests/sanitize.sh checks the last).
#include <catch2/catch.hpp>

#include "aie2/isa.hpp"
#include "aie2/loops.hpp"
#include "core/h5.hpp"
#include "modelfile/model_file.hpp"
#include "test_helpers.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;
using bsp::test::TempDir;

namespace {

// A small model: a conv, a relu, a dense layer.
Model tiny_model() {
  GraphBuilder b("tiny", 6, 6, 3);
  b.dense("fc", b.flatten("flat", b.relu("relu", b.conv("conv", "input", GraphBuilder::square(4, 3, 1, 1)))), 5);
  Model m = b.finish();
  init_weights(m, 3);
  return m;
}

// Runs `edit` on the open file (read-write), then loads it.
template <typename F>
Model edit_and_load(const TempDir& d, F edit) {
  save_model(tiny_model(), d.file("m.h5"));
  {
    h5::Handle f(H5Fopen(d.file("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    REQUIRE(f.valid());
    edit(f.get());
  }
  return load_model(d.file("m.h5"), "m.h5");
}

void replace_attr(hid_t obj, const std::string& name, const AttrValue& v) {
  if (h5::has_attr(obj, name)) H5Adelete(obj, name.c_str());
  h5::write_attr(obj, name, v);
}

}  // namespace

TEST_CASE("an attribute of the wrong type is an error that names it", "[untrusted]") {
  TempDir d;
  // Each was std::bad_variant_access ("internal error") before.
  SECTION("a node's op as a number") {
    CHECK_THROWS_WITH(edit_and_load(d, [](hid_t f) {
                        h5::Handle g(H5Gopen2(f, "graph/nodes/conv", H5P_DEFAULT));
                        replace_attr(g, "op", int64_t{3});
                      }),
                      Catch::Contains("attribute 'op' is not a string"));
  }
  SECTION("the architecture as a number") {
    CHECK_THROWS_WITH(edit_and_load(d, [](hid_t f) { replace_attr(f, "arch", 1.5); }),
                      Catch::Contains("attribute 'arch' is not a string"));
  }
}

TEST_CASE("an attribute without a value (a null dataspace) is an error", "[untrusted]") {
  TempDir d;
  // read_attr indexed the dimensions of a dataspace that has none.
  CHECK_THROWS_WITH(edit_and_load(d, [](hid_t f) {
                      H5Adelete(f, "arch");
                      h5::Handle space(H5Screate(H5S_NULL));
                      h5::Handle a(H5Acreate2(f, "arch", H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT));
                      REQUIRE(a.valid());
                    }),
                    Catch::Contains("attribute 'arch' has no value"));
}

TEST_CASE("a loop stride that takes an operand past 32 bits is an error", "[untrusted][aie2]") {
  using namespace bsp::aie2;
  // int32 + int32 overflowed (undefined behaviour) in LoopCursor before.
  std::vector<Instr> code = {make(Opc::Loop, {3, 1}), make(Opc::Acq, {0, 2000000000}),
                             make(Opc::Stride, {0, 2000000000})};
  LoopCursor c(&code);
  Instr in;
  size_t rec = 0;
  REQUIRE(c.next(in, rec));
  CHECK(in.a[1] == 2000000000);
  CHECK_THROWS_WITH(c.next(in, rec), Catch::Contains("operand 1 is 4000000000 at iteration 1 of its loop, past 32 bits"));
}
