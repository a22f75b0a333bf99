// The score block both directions start from: S = Q·Kᵀ (Q already multiplied by its scale), the softcap and the
// mask. Internal to src/cpu.
#ifndef FLASHPORT_CPU_CPU_SCORES_H
#define FLASHPORT_CPU_CPU_SCORES_H

#include "cpu/cpu_common.h"

namespace flashport::cpu {

// How scores are formed from the raw dot products of one problem.
struct ScoreRule {
  float softcap;  // 0 = off
  float q_mul;    // Q is multiplied by this when loaded: scale, or scale / softcap so that tanh takes Q·K directly

  explicit ScoreRule(const flashport_problem& p)
      : softcap(p.softcap), q_mul(p.softcap > 0 ? p.scale / p.softcap : p.scale) {}
};

// On a block of raw scores s (rows x cols): softcap·tanh(s) when softcap is on (tanh kept in t when t is not null,
// for the backward's derivative), then -inf on masked entries unless the block is fully visible.
inline void score_epilogue(const ScoreRule& rule, const Mask& mask, bool full, int64_t i0, int64_t rows, int64_t j0,
                           int64_t cols, float* s, float* t) {
  MatMap S(s, rows, cols);
  if (rule.softcap > 0) {
    if (t != nullptr) {
      MatMap Tm(t, rows, cols);
      Tm.array() = S.array().tanh();
      S.array() = Tm.array() * rule.softcap;
    } else {
      S.array() = S.array().tanh() * rule.softcap;
    }
  }
  if (!full) mask.apply(i0, rows, j0, cols, kNegInf, s);
}

// s (rows x cols) = q (rows x dqk) · k (cols x dqk)ᵀ, then the epilogue above. s and t are aligned scratch blocks;
// q may start at any row of one (the forward passes the rows that see the key block), so at any float offset when
// dqk is not a multiple of 16: its map claims no alignment (Eigen's GEMM packs its operands with unaligned loads
// either way).
inline void score_block(const ScoreRule& rule, const Mask& mask, bool full, int64_t i0, int64_t rows, int64_t j0,
                        int64_t cols, int64_t dqk, const float* q, const BlockView& k, float* s, float* t) {
  MatMap S(s, rows, cols);
  S.noalias() = Eigen::Map<const RowMat, Eigen::Unaligned>(q, rows, dqk) * k.map(cols, dqk).transpose();
  score_epilogue(rule, mask, full, i0, rows, j0, cols, s, t);
}

}  // namespace flashport::cpu

#endif
