// Sparsity patterns, scores and scopes as `bsp prune` names them
// (man/bsp-prune.1; the methods are shared/DESIGN.md section 2):
//
//   block:RxC     R output x C input channel blocks, each spanning the whole
//                 kernel window (R x kh x kw x C weights of a conv, R x C of a
//                 dense layer); stored as a block mask
//   nm:N:M        at most N nonzeros in every M consecutive input channels at
//                 fixed (cout, kh, kw)
//   tw:G          tile-wise (TW-2D): whole output channels pruned, then rows
//                 of B[K, N] (K = kh*kw*Cin) pruned inside tiles of G columns
//   tvw:G         TW plus 2:4 along K inside the kept rows of each tile
//   block:RxC+nm:N:M, tw:G+nm:N:M
//                 combined: the block or tile pattern first, then N:M along
//                 Cin (as nm:N:M) among the weights it keeps; stored as an
//                 element mask (the structure the AIE2 sparse operand needs)
//   unstructured  element magnitude
//   channel       whole output channels
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bsp {

enum class PatternFamily { Block, NM, TW, TVW, Unstructured, Channel };

struct Pattern {
  PatternFamily family = PatternFamily::Block;
  int64_t block_rows = 8, block_cols = 8;  // block: R x C
  int64_t n = 2, m = 4;                    // nm: N of M (tvw: always 2:4 inside the tiles)
  int64_t tile = 128;                      // tw, tvw: G columns per tile
  bool then_nm = false;                    // block or tw, then N:M (n, m) inside: "block:8x8+nm:2:4"

  // The canonical string ("block:8x8", "nm:2:4", "tw:128", "unstructured"),
  // which is what a layer's Mask::pattern records.
  std::string str() const;
  // The density the pattern itself fixes (nm: N/M), if any.
  std::optional<double> implied_density() const;
  // The largest density the pattern can reach (tvw: 0.5, nm and combined: N/M, else 1).
  double max_density() const;
  // A combined pattern's outer part (then_nm false), which prunes first.
  Pattern outer() const {
    Pattern p = *this;
    p.then_nm = false;
    return p;
  }
  bool operator==(const Pattern&) const = default;
};

// Parses "block:8x8", "block:8" (= 8x8), "block" (= 8x8), "nm:2:4", "tw",
// "tw:64", "tvw:128", "unstructured", "channel", and the combined
// "block:RxC+nm:N:M" and "tw:G+nm:N:M". Throws UsageError with the
// reason (unknown pattern, N > M, zero block size, ...).
Pattern parse_pattern(std::string_view s);

const char* family_name(PatternFamily f);  // "block", "nm", "tw", "tvw", "unstructured", "channel"
// The family of a stored mask pattern string, or nullopt if it names none.
std::optional<PatternFamily> family_of(std::string_view pattern);

// How blocks and channels are scored (DESIGN.md section 2), always per
// element so that blocks of different sizes compare: l2 = sqrt(sum w^2 / n)
// (root mean square), l1 = sum |w| / n, variance = sum (w - mean)^2 / n.
enum class Criterion { L2, L1, Variance };
Criterion parse_criterion(std::string_view s);  // "l2", "l1", "variance"
const char* criterion_name(Criterion c);

// layer: every selected layer reaches the density; global: one threshold over
// all selected layers, the overall density reaches it.
enum class Scope { Layer, Global };
Scope parse_scope(std::string_view s);  // "layer", "global"
const char* scope_name(Scope s);

}  // namespace bsp
