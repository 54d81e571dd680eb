// The fusion pass (the rules are in fusion.hpp).
#include "core/fusion.hpp"

#include <limits>
#include <unordered_map>

#include "core/op_table.hpp"

namespace bsp {

namespace {
constexpr size_t kNone = std::numeric_limits<size_t>::max();
}

Fusion fuse(const Model& m, const FusionOptions& opt) {
  const size_t count = m.nodes.size();
  std::unordered_map<std::string_view, size_t> index;
  // consumers[i]: the nodes reading node i, once per input (an add of x and x reads x twice).
  std::vector<std::vector<size_t>> consumers(count);
  for (size_t i = 0; i < count; ++i) {
    index.emplace(m.nodes[i].name, i);
    for (const auto& s : m.nodes[i].inputs) consumers[index.at(s)].push_back(i);
  }
  auto role = [&](size_t i) { return op_entry(m.nodes[i].op).role; };
  // The only consumer of node i when it has exactly one, else kNone.
  auto sole = [&](size_t i) { return consumers[i].size() == 1 ? consumers[i][0] : kNone; };

  Fusion f;
  f.group_of.assign(count, kNone);
  for (size_t i = 0; i < count; ++i) {
    if (f.group_of[i] != kNone) continue;
    FusedGroup g;
    g.head = g.out = i;
    g.nodes.push_back(i);
    const size_t id = f.groups.size();
    f.group_of[i] = id;
    auto join = [&](size_t j) {
      g.out = j;
      g.nodes.push_back(j);
      f.group_of[j] = id;
    };
    const Role r = role(i);
    const bool layer = r == Role::Layer && opt.fold_layers;
    if (layer) {
      if (size_t c = sole(g.out); c != kNone && role(c) == Role::Norm) {
        g.norm = static_cast<int64_t>(c);
        join(c);
      }
      if (size_t c = sole(g.out); opt.fuse_add && c != kNone && role(c) == Role::Residual && m.nodes[c].inputs.size() == 2) {
        const size_t a = index.at(m.nodes[c].inputs[0]), b = index.at(m.nodes[c].inputs[1]);
        const size_t other = a == g.out ? b : a;
        if (f.group_of[other] < id) {  // computed by an earlier group (kNone: not yet)
          g.add = static_cast<int64_t>(c);
          g.addend = other;
          g.add_self = a == g.out ? 0 : 1;
          join(c);
        }
      }
    }
    if (layer || r == Role::Norm || r == Role::Residual)
      if (size_t c = sole(g.out);
          c != kNone && role(c) == Role::Activation && (opt.join_clip || m.nodes[c].op != Op::Clip)) {
        g.act = static_cast<int64_t>(c);
        join(c);
      }
    f.groups.push_back(std::move(g));
  }
  return f;
}

Clamp group_clamp(const Model& m, const FusedGroup& g) {
  Clamp c;
  if (g.act < 0) return c;
  const Node& a = m.nodes[static_cast<size_t>(g.act)];
  c.on = true;
  if (a.op == Op::Clip) {
    c.lo = static_cast<float>(a.attrs.get_double("min"));
    c.hi = static_cast<float>(a.attrs.get_double("max"));
  } else {
    c.lo = 0.0f;
  }
  return c;
}

}  // namespace bsp
