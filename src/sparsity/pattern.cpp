#include "sparsity/pattern.hpp"

#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "core/error.hpp"

namespace bsp {

namespace {

constexpr const char* kPatternHelp =
    "block:RxC, nm:N:M, tw:G, tvw:G, unstructured, channel, block:RxC+nm:N:M or tw:G+nm:N:M";

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    parts.push_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) return parts;
    start = p + 1;
  }
}

// A positive decimal integer field of pattern `whole`; `what` names it in errors.
int64_t positive(std::string_view field, std::string_view whole, const char* what) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (field.empty() || ec != std::errc() || end != field.data() + field.size() || v < 0)
    fail_usage("bad pattern '{}': {} '{}' is not a whole number", whole, what, field);
  if (v == 0) fail_usage("bad pattern '{}': {} must be at least 1", whole, what);
  if (v > (int64_t{1} << 24)) fail_usage("bad pattern '{}': {} {} is too large", whole, what, v);
  return v;
}

}  // namespace

std::string Pattern::str() const {
  if (then_nm) return fmt::format("{}+nm:{}:{}", outer().str(), n, m);
  switch (family) {
    case PatternFamily::Block:
      return fmt::format("block:{}x{}", block_rows, block_cols);
    case PatternFamily::NM:
      return fmt::format("nm:{}:{}", n, m);
    case PatternFamily::TW:
      return fmt::format("tw:{}", tile);
    case PatternFamily::TVW:
      return fmt::format("tvw:{}", tile);
    case PatternFamily::Unstructured:
      return "unstructured";
    case PatternFamily::Channel:
      return "channel";
  }
  return "?";
}

std::optional<double> Pattern::implied_density() const {
  if (family == PatternFamily::NM) return static_cast<double>(n) / static_cast<double>(m);
  return std::nullopt;
}

double Pattern::max_density() const {
  if (family == PatternFamily::NM || then_nm) return static_cast<double>(n) / static_cast<double>(m);
  if (family == PatternFamily::TVW) return 0.5;
  return 1.0;
}

Pattern parse_pattern(std::string_view s) {
  if (const size_t plus = s.find('+'); plus != std::string_view::npos) {
    // Combined: a block or tile pattern, then N:M inside what it keeps.
    Pattern p = parse_pattern(s.substr(0, plus));
    if (p.family != PatternFamily::Block && p.family != PatternFamily::TW)
      fail_usage("bad pattern '{}': only block:RxC and tw:G combine with nm:N:M (as block:8x8+nm:2:4)", s);
    const Pattern inner = parse_pattern(s.substr(plus + 1));
    if (inner.family != PatternFamily::NM)
      fail_usage("bad pattern '{}': what follows '+' must be nm:N:M (as block:8x8+nm:2:4)", s);
    p.then_nm = true;
    p.n = inner.n;
    p.m = inner.m;
    return p;
  }
  auto parts = split(s, ':');
  std::string_view name = parts[0];
  Pattern p;
  if (name == "block") {
    p.family = PatternFamily::Block;
    if (parts.size() > 2) fail_usage("bad pattern '{}': expected block:RxC, e.g. block:8x8", s);
    if (parts.size() == 2) {
      auto rc = split(parts[1], 'x');
      if (rc.size() > 2) fail_usage("bad pattern '{}': expected block:RxC, e.g. block:8x8", s);
      p.block_rows = positive(rc[0], s, "block rows");
      p.block_cols = rc.size() == 2 ? positive(rc[1], s, "block columns") : p.block_rows;
    }
  } else if (name == "nm") {
    p.family = PatternFamily::NM;
    if (parts.size() != 3) fail_usage("bad pattern '{}': expected nm:N:M, e.g. nm:2:4", s);
    p.n = positive(parts[1], s, "N");
    p.m = positive(parts[2], s, "M");
    if (p.n > p.m) fail_usage("bad pattern '{}': N ({}) is larger than M ({})", s, p.n, p.m);
    if (p.m > 256) fail_usage("bad pattern '{}': M is at most 256", s);
  } else if (name == "tw" || name == "tvw") {
    p.family = name == "tw" ? PatternFamily::TW : PatternFamily::TVW;
    if (parts.size() > 2) fail_usage("bad pattern '{}': expected {}:G, e.g. {}:128", s, name, name);
    if (parts.size() == 2) p.tile = positive(parts[1], s, "tile size G");
    if (p.family == PatternFamily::TVW) p.n = 2, p.m = 4;
  } else if (name == "unstructured" || name == "channel") {
    p.family = name == "channel" ? PatternFamily::Channel : PatternFamily::Unstructured;
    if (parts.size() != 1) fail_usage("bad pattern '{}': {} takes no parameters", s, name);
  } else {
    fail_usage("unknown pattern '{}' (expected {})", s, kPatternHelp);
  }
  return p;
}

const char* family_name(PatternFamily f) {
  switch (f) {
    case PatternFamily::Block:
      return "block";
    case PatternFamily::NM:
      return "nm";
    case PatternFamily::TW:
      return "tw";
    case PatternFamily::TVW:
      return "tvw";
    case PatternFamily::Unstructured:
      return "unstructured";
    case PatternFamily::Channel:
      return "channel";
  }
  return "?";
}

std::optional<PatternFamily> family_of(std::string_view pattern) {
  std::string_view name = pattern.substr(0, pattern.find(':'));
  for (auto f : {PatternFamily::Block, PatternFamily::NM, PatternFamily::TW, PatternFamily::TVW,
                 PatternFamily::Unstructured, PatternFamily::Channel})
    if (name == family_name(f)) return f;
  return std::nullopt;
}

Criterion parse_criterion(std::string_view s) {
  if (s == "l2") return Criterion::L2;
  if (s == "l1") return Criterion::L1;
  if (s == "variance") return Criterion::Variance;
  fail_usage("unknown criterion '{}' (expected l2, l1 or variance)", s);
}

const char* criterion_name(Criterion c) {
  switch (c) {
    case Criterion::L2:
      return "l2";
    case Criterion::L1:
      return "l1";
    case Criterion::Variance:
      return "variance";
  }
  return "?";
}

Scope parse_scope(std::string_view s) {
  if (s == "layer") return Scope::Layer;
  if (s == "global") return Scope::Global;
  fail_usage("unknown scope '{}' (expected layer or global)", s);
}

const char* scope_name(Scope s) { return s == Scope::Layer ? "layer" : "global"; }

}  // namespace bsp
