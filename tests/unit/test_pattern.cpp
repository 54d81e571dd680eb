#include <catch2/catch.hpp>

#include "core/error.hpp"
#include "sparsity/pattern.hpp"
#include "sparsity/prune.hpp"

using namespace bsp;

TEST_CASE("patterns parse and print back canonically") {
  struct Case {
    const char* in;
    const char* out;
  };
  for (auto [in, out] : {Case{"block:8x8", "block:8x8"}, Case{"block", "block:8x8"}, Case{"block:4", "block:4x4"},
                         Case{"block:16x4", "block:16x4"}, Case{"nm:2:4", "nm:2:4"}, Case{"nm:1:8", "nm:1:8"},
                         Case{"nm:4:4", "nm:4:4"}, Case{"tw", "tw:128"}, Case{"tw:64", "tw:64"},
                         Case{"tvw:32", "tvw:32"}, Case{"unstructured", "unstructured"}, Case{"channel", "channel"}}) {
    Pattern p = parse_pattern(in);
    CHECK(p.str() == out);
    CHECK(parse_pattern(p.str()) == p);
    CHECK(family_of(p.str()) == p.family);
  }
  Pattern b = parse_pattern("block:16x4");
  CHECK(b.family == PatternFamily::Block);
  CHECK(b.block_rows == 16);
  CHECK(b.block_cols == 4);
  Pattern nm = parse_pattern("nm:2:8");
  CHECK(nm.n == 2);
  CHECK(nm.m == 8);
  CHECK(*nm.implied_density() == Approx(0.25));
  CHECK(!parse_pattern("tw:64").implied_density());
  CHECK(parse_pattern("tvw").max_density() == 0.5);
  CHECK(parse_pattern("tw").tile == 128);
}

TEST_CASE("bad patterns are usage errors that say why") {
  auto msg = [](const char* s) {
    try {
      parse_pattern(s);
    } catch (const UsageError& e) {
      CHECK(e.exit_code() == kExitUsage);
      return std::string(e.what());
    }
    FAIL("no error for " << s);
    return std::string();
  };
  CHECK_THAT(msg("blocks:8x8"), Catch::Contains("unknown pattern 'blocks:8x8'"));
  CHECK_THAT(msg(""), Catch::Contains("unknown pattern"));
  CHECK_THAT(msg("nm:4:2"), Catch::Contains("N (4) is larger than M (2)"));
  CHECK_THAT(msg("nm:2"), Catch::Contains("expected nm:N:M"));
  CHECK_THAT(msg("nm:0:4"), Catch::Contains("N must be at least 1"));
  CHECK_THAT(msg("block:0x8"), Catch::Contains("block rows must be at least 1"));
  CHECK_THAT(msg("block:8x0"), Catch::Contains("block columns must be at least 1"));
  CHECK_THAT(msg("block:8x"), Catch::Contains("is not a whole number"));
  CHECK_THAT(msg("block:8x8x8"), Catch::Contains("expected block:RxC"));
  CHECK_THAT(msg("block:-1x8"), Catch::Contains("is not a whole number"));
  CHECK_THAT(msg("tw:0"), Catch::Contains("tile size G must be at least 1"));
  CHECK_THAT(msg("tw:1.5"), Catch::Contains("is not a whole number"));
  CHECK_THAT(msg("unstructured:3"), Catch::Contains("takes no parameters"));
  CHECK_THAT(msg("nm:2:999"), Catch::Contains("M is at most 256"));
}

TEST_CASE("criteria and scopes parse") {
  CHECK(parse_criterion("l2") == Criterion::L2);
  CHECK(parse_criterion("l1") == Criterion::L1);
  CHECK(parse_criterion("variance") == Criterion::Variance);
  CHECK_THROWS_AS(parse_criterion("L2"), UsageError);
  CHECK(parse_scope("global") == Scope::Global);
  CHECK(parse_scope("layer") == Scope::Layer);
  CHECK_THROWS_AS(parse_scope("model"), UsageError);
}

TEST_CASE("density files: comments, blank lines, errors with the line") {
  auto d = parse_density_file("# sensitivity budget\nconv1 1.0\n\n  layer1.0.conv1\t0.25  # low\nfc 5e-1\n", "f.txt");
  REQUIRE(d.size() == 3);
  CHECK(d[0] == std::pair<std::string, double>{"conv1", 1.0});
  CHECK(d[1] == std::pair<std::string, double>{"layer1.0.conv1", 0.25});
  CHECK(d[2].second == 0.5);
  auto msg = [](const char* text) {
    try {
      parse_density_file(text, "f.txt");
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    FAIL("no error for " << text);
    return std::string();
  };
  CHECK_THAT(msg("a 0.5\nb zero\n"), Catch::Contains("density file 'f.txt' line 2: 'zero' is not a number"));
  CHECK_THAT(msg("a 0.5x"), Catch::Contains("'0.5x' is not a number"));
  CHECK_THAT(msg("a nan"), Catch::Contains("'nan' is not a number"));
  CHECK_THAT(msg("a 0"), Catch::Contains("line 1: density 0 is not in (0, 1]"));
  CHECK_THAT(msg("a 1.5"), Catch::Contains("density 1.5 is not in (0, 1]"));
  CHECK_THAT(msg("a"), Catch::Contains("expected 'LAYER DENSITY', got 1 fields"));
  CHECK_THAT(msg("a 0.5 0.6"), Catch::Contains("got 3 fields"));
  CHECK_THAT(msg("a 0.5\na 0.6"), Catch::Contains("line 2: layer 'a' is listed twice"));
  CHECK_THAT(msg("# nothing\n"), Catch::Contains("lists no layer"));
}
