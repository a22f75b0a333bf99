// The GPU kernels' block order (src/cuda/kernels/block_order.cuh, host and device code): a grid decoded into
// (level, head) must visit every pair exactly once, in the order the header promises, and the multiply-shift
// division it decodes with must equal the integer division. Plain C++: runs without a GPU, in CI.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda/kernels/block_order.cuh"

using flashport::kernels::BlockOrder;
using flashport::kernels::FastDivmod;
using flashport::kernels::kL2SectionBytes;

TEST_CASE("FastDivmod divides every numerator the grids use like the integer division") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> any(0, INT32_MAX);
  std::vector<int> divisors;
  for (int d = 1; d <= 3000; ++d) divisors.push_back(d);
  for (int i = 0; i < 2000; ++i) divisors.push_back(any(rng) | 1);
  for (int d : {1 << 30, (1 << 30) + 1, INT32_MAX - 1, INT32_MAX}) divisors.push_back(d);
  for (int d : divisors) {
    const FastDivmod f = FastDivmod::make(d);
    std::vector<int> numerators = {0, 1, d - 1, d, INT32_MAX - 1, INT32_MAX};
    if (d < INT32_MAX) numerators.push_back(d + 1);
    for (int i = 0; i < 64; ++i) numerators.push_back(any(rng));
    for (int n : numerators) REQUIRE_MESSAGE(f.div(n) == n / d, n << " / " << d);
  }
  CHECK(FastDivmod::make(0).div(12345) == 12345);  // an empty grid divides by 1
}

namespace {

// Decodes every block of a blocks x heads grid; checks that each (level, head) pair comes once and returns the
// sequence of pairs in block order.
std::vector<std::pair<int, int>> visit(const BlockOrder& order, int blocks, int heads) {
  std::vector<int> seen(size_t(blocks) * heads, 0);
  std::vector<std::pair<int, int>> sequence;
  for (int x = 0; x < blocks * heads; ++x) {
    int level = -1, head = -1;
    order.decode(x, &level, &head);
    REQUIRE(level >= 0);
    REQUIRE(level < blocks);
    REQUIRE(head >= 0);
    REQUIRE(head < heads);
    ++seen[size_t(head) * blocks + level];
    sequence.emplace_back(level, head);
  }
  for (int count : seen) REQUIRE(count == 1);
  return sequence;
}

}  // namespace

TEST_CASE("Without a mask the block order is head-major: one head's blocks in a row, level 0 first") {
  for (int blocks = 1; blocks <= 33; blocks += 4)
    for (int heads = 1; heads <= 24; ++heads) {
      const BlockOrder order = BlockOrder::make(blocks, heads, 1 << 20, false);
      CHECK(order.section_log2 == 0);
      const auto sequence = visit(order, blocks, heads);
      for (int x = 0; x < blocks * heads; ++x) {
        REQUIRE(sequence[x].first == x % blocks);
        REQUIRE(sequence[x].second == x / blocks);
      }
    }
}

TEST_CASE("Under a mask, heads go in L2-sized sections, and each level of a section before the next") {
  const int64_t head_sizes[] = {1, kL2SectionBytes / 48, kL2SectionBytes / 16, kL2SectionBytes / 3,
                                kL2SectionBytes, 4 * kL2SectionBytes};
  for (int blocks = 1; blocks <= 23; blocks += 2)
    for (int heads = 1; heads <= 40; ++heads)
      for (int64_t head_bytes : head_sizes) {
        const BlockOrder order = BlockOrder::make(blocks, heads, head_bytes, true);
        const int section = 1 << order.section_log2;
        CAPTURE(blocks);
        CAPTURE(heads);
        CAPTURE(head_bytes);
        // A power of two that divides the heads, the widest whose operands fit in kL2SectionBytes (at least one).
        REQUIRE(heads % section == 0);
        REQUIRE((section == 1 || section * head_bytes <= kL2SectionBytes));
        const bool wider_fits = heads % (2 * section) == 0 && 2 * section * head_bytes <= kL2SectionBytes;
        REQUIRE_FALSE(wider_fits);
        const auto sequence = visit(order, blocks, heads);
        for (int x = 1; x < blocks * heads; ++x) {
          const auto& [level, head] = sequence[x];
          const auto& [prev_level, prev_head] = sequence[x - 1];
          if (head / section == prev_head / section) {
            REQUIRE(level >= prev_level);  // inside a section: levels never go back
          } else {
            REQUIRE(head / section == prev_head / section + 1);  // sections one after another
            REQUIRE(level == 0);
          }
        }
      }
}
