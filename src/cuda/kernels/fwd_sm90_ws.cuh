// The warp-specialised Hopper forward (sm_90a), FlashAttention-3's structure in this project's primitives: a
// producer warp issues TMA copies, two (three at D 64) consumer warpgroups run the wgmma GEMMs and the online
// softmax, and barriers in shared memory (sync.cuh) carry the hand-offs. 16-bit inputs, equal head dims kD in
// {64, 128, 256} (actual dims <= kD are zero-filled by TMA). NVIDIA-only; the mask, softcap, softmax and LSE
// semantics are those of fwd_sm90.cuh (the same helpers from fwd_common.cuh).
//
// One block = 64 query rows per consumer of one (batch, head), 1 + kConsumers warpgroups:
//  - warpgroup 0 is the producer. It gives registers back (setmaxnreg.dec) and one thread issues every copy: Q once
//    (q_full), then key tile i's K into stage i % kStages (k_full) and V one tile behind (K_i, V_{i-1}, ...: the
//    order the consumers need them), each after the stage's previous contents were released (k_empty, v_empty:
//    one arrival per consumer warp). The tile -> memory mapping is one function, kv_tile_coords.
//  - warpgroups 1.. are consumers (setmaxnreg.inc), 64 query rows each, m64 wgmma tiles. Per key tile i:
//      wait K_i; [turn] issue S_i = Q K_i^T; wait V_{i-1}; issue O += P_{i-1} V_{i-1}; [pass the turn]
//      wait for S_i; release K_i; mask + softmax of S_i (P_{i-1} V_{i-1} still runs); wait for it; release V_{i-1};
//      P_i = bf16(S_i); O *= the softmax's rescale factor.
//    Intra-warpgroup overlap: the softmax of tile i runs while P_{i-1} V_{i-1} is on the tensor cores. Pingpong: the
//    consumers take turns issuing their GEMM batches (named barriers), so one's softmax overlaps the others'
//    GEMMs. Registers at D 128: S 64 + P 32 + O 64 per thread.
//  - Epilogue: each consumer writes its normalised 64 output rows into its own (no longer read) rows of the Q
//    buffer, in the swizzled layout, and one thread stores them with TMA (rows past seqlen_q and columns past
//    head_dim_v are clipped by the tensor map); the LSE goes straight from registers.
// Not yet here: a persistent grid with a tile scheduler (the next step), packed variable-length batches and a
// paged K/V cache (kv_tile_coords is where they enter).
#ifndef FLASHPORT_KERNELS_SM90_FWD_SM90_WS_CUH
#define FLASHPORT_KERNELS_SM90_FWD_SM90_WS_CUH

#include <type_traits>

#include "kernels/common.cuh"
#include "kernels/mask.cuh"
#include "kernels/softmax.cuh"
#include "kernels/fwd_common.cuh"
#include "kernels/sm90_sync.cuh"
#include "kernels/sm90_tensor_map.h"
#include "kernels/sm90_tma.cuh"
#include "kernels/wgmma.cuh"
#include "kernels/tile_mma_sm80.cuh"

namespace flashport::kernels {

template <int kD, int kStages_, int kConsumers_> struct Sm90WsConfig {
  static constexpr int kConsumers = kConsumers_;  // consumer warpgroups, 64 query rows each
  static constexpr int kThreads = 128 * (1 + kConsumers);
  static constexpr int kBlockM = 64 * kConsumers;
  // S takes kBlockN / 2 registers per thread and O kD / 2: 64 + 64 at D 128, 32 + 128 at D 256.
  static constexpr int kBlockN = kD <= 128 ? 128 : 64;
  static constexpr int kStages = kStages_;
  static constexpr int kPvN = kD < 128 ? kD : 128;  // N of one P V instruction (the wrappers go up to 128)
  // The producer keeps about the minimum; the consumers take the rest of the 64K registers (FA3's splits with TMA).
  static constexpr int kProducerRegs = kConsumers == 2 ? 24 : 32;
  static constexpr int kConsumerRegs = kConsumers == 2 ? 240 : 160;
  static_assert(kConsumers == 2 || kConsumers == 3, "2 or 3 consumer warpgroups");
  static_assert(128 * kProducerRegs + 128 * kConsumers * kConsumerRegs <= 65536, "register file: 64K per SM");
  using QTile = SmemTileSw128<kBlockM, kD>;
  using KTile = SmemTileSw128<kBlockN, kD>;
  using VTile = SmemTileSw128<kBlockN, kD>;
  static constexpr int kTileBytes = QTile::kBytes + kStages * (KTile::kBytes + VTile::kBytes);
  static constexpr int kBarriers = 1 + 4 * kStages;  // q_full, k_full, v_full, k_empty, v_empty
  // + 1 KB: the dynamic shared-memory base is rounded up to the 1024-byte alignment of the swizzle atoms.
  static constexpr int kSmemBytes = kTileBytes + kBarriers * 8 + 1024;
  static_assert(kSmemBytes <= 227 * 1024, "shared memory: 227 KB per block");
};

// K/V stages per head dim: FA3's 2 at D 128 and 256 (the producer runs ahead of both consumers); D 64 tiles are
// half the size, so 3 fit easily.
template <int kD> constexpr int kSm90WsStages = kD <= 64 ? 3 : 2;
// Consumer warpgroups per head dim. D 64 has half the MMA work per score of D 128 for the same softmax work: a third
// consumer (160 registers each: S 64 + P 32 + O 32) gives the tensor cores another one's GEMMs while two are in
// their softmax, as in fwd_sm90.cuh and FA3.
template <int kD> constexpr int kSm90WsConsumers = kD <= 64 ? 3 : 2;

// What the kernel receives: the tensor maps of Q, K, V (loads) and O (store), and the forward's parameter block.
struct FwdSm90WsParams {
  CUtensorMap q_map, k_map, v_map, o_map;
  FwdParams fwd;
};

// Named barriers: 0 is __syncthreads; the consumers' turns take 1..kConsumers, their epilogues the next kConsumers
// (kEpilogueBarrier<kConsumers> + c).
constexpr int kTurnBarrier = 1;
template <int kConsumers> constexpr int kEpilogueBarrier = kTurnBarrier + kConsumers;

// Shared-memory addresses of one block's buffers and barriers.
template <class Cfg> struct Sm90WsSmem {
  uint32_t q, k, v, bars;
  FLASHPORT_DEVICE uint32_t q_full() const { return bars; }
  FLASHPORT_DEVICE uint32_t k_full(int stage) const { return bars + 8 * (1 + stage); }
  FLASHPORT_DEVICE uint32_t v_full(int stage) const { return bars + 8 * (1 + Cfg::kStages + stage); }
  FLASHPORT_DEVICE uint32_t k_empty(int stage) const { return bars + 8 * (1 + 2 * Cfg::kStages + stage); }
  FLASHPORT_DEVICE uint32_t v_empty(int stage) const { return bars + 8 * (1 + 3 * Cfg::kStages + stage); }
};

// Where key tile n of (batch b, kv head hk) lies in the K and V tensor maps: the coordinates of its first row
// (dimension 1), head (2) and batch (3). The load stage's one mapping from tiles to memory: packed
// variable-length batches add the sequence's first row and use batch 0 of a map over all tokens; a paged cache
// looks up the page holding row n * kBlockN in the block table and returns the row within it and the page as the
// batch coordinate of a map over pages (pages a multiple of kBlockN rows).
struct KvTileCoords {
  int row, head, batch;
};
template <int kBlockN> FLASHPORT_DEVICE KvTileCoords kv_tile_coords(int b, int hk, int n) {
  return {n * kBlockN, hk, b};
}

// The consumers take turns issuing their GEMM batches, in a ring (0, 1, .., 0, ..): a consumer issues only after
// the previous one in the ring issued its own, then passes the turn. Barrier kTurnBarrier + c is completed by the
// 128 threads of consumer c that wait on it and the 128 of its predecessor that arrive.
template <int kConsumers> struct ConsumerTurns {
  int self;
  FLASHPORT_DEVICE void wait() const { named_barrier_sync(kTurnBarrier + self, 256); }
  FLASHPORT_DEVICE void pass() const { named_barrier_arrive(kTurnBarrier + (self + 1) % kConsumers, 256); }
  // The last consumer hands consumer 0 its first turn; consumer 0 takes the last hand-over back at the end so
  // that no barrier is left half-arrived.
  FLASHPORT_DEVICE void start() const {
    if (self == kConsumers - 1) pass();
  }
  FLASHPORT_DEVICE void finish() const {
    if (self == 0) wait();
  }
};

#if defined(FLASHPORT_HAS_WGMMA)
// The producer thread: Q, then the key tiles [n_begin, n_end) through the stages, K_i before V_{i-1}.
template <class Cfg>
FLASHPORT_DEVICE void fwd_ws_produce(const FwdSm90WsParams& params, const Sm90WsSmem<Cfg>& s, int b, int h, int hk,
                                     int m0, int n_begin, int n_end) {
  using QTile = typename Cfg::QTile;
  using KTile = typename Cfg::KTile;
  using VTile = typename Cfg::VTile;
  constexpr int kColBlocks = QTile::kChunks / 8;  // 64-column blocks of the head dim, one TMA box each
  const int tiles = n_end - n_begin;
  if (tiles <= 0) return;  // the consumers wait for nothing and only write zeros
  tma_prefetch_map(&params.k_map);
  tma_prefetch_map(&params.v_map);
  mbarrier_arrive_expect_tx(s.q_full(), QTile::kBytes);
#pragma unroll
  for (int cb = 0; cb < kColBlocks; ++cb)
    tma_load<4>(s.q + cb * QTile::kColBlockBytes, &params.q_map, s.q_full(), {cb * 64, m0, h, b});

  // Tile i of the block into stage i % kStages, once the consumers released what the stage held kStages tiles ago
  // (parity of the previous round; the first round passes at once).
  auto load = [&](const CUtensorMap* map, uint32_t buffers, int tile_bytes, int col_block_bytes, uint32_t full,
                  uint32_t empty, int i) {
    const int stage = i % Cfg::kStages;
    mbarrier_wait(empty + 8 * stage, ((i / Cfg::kStages) & 1) ^ 1);
    mbarrier_arrive_expect_tx(full + 8 * stage, tile_bytes);
    const KvTileCoords c = kv_tile_coords<Cfg::kBlockN>(b, hk, n_begin + i);
#pragma unroll
    for (int cb = 0; cb < kColBlocks; ++cb)
      tma_load<4>(buffers + stage * tile_bytes + cb * col_block_bytes, map, full + 8 * stage,
                  {cb * 64, c.row, c.head, c.batch});
  };
  auto load_k = [&](int i) {
    load(&params.k_map, s.k, KTile::kBytes, KTile::kColBlockBytes, s.k_full(0), s.k_empty(0), i);
  };
  auto load_v = [&](int i) {
    load(&params.v_map, s.v, VTile::kBytes, VTile::kColBlockBytes, s.v_full(0), s.v_empty(0), i);
  };
  load_k(0);
  for (int i = 1; i < tiles; ++i) {
    load_k(i);
    load_v(i - 1);
  }
  load_v(tiles - 1);
}

// One consumer warpgroup (c = 0 .. kConsumers - 1): query rows m0 + 64 c .. + 63 against key tiles
// [n_begin, n_end), then the epilogue.
template <class T, class Cfg>
FLASHPORT_DEVICE void fwd_ws_consume(const FwdSm90WsParams& params, const Sm90WsSmem<Cfg>& s, T* sQ, int c, int b,
                                     int h, int m0, int n_begin, int n_end) {
  const FwdParams& p = params.fwd;
  using P = TileMmaSm80<T>;  // the accumulator fragment layout only (each warp's 16 rows of a wgmma result)
  using QTile = typename Cfg::QTile;
  using KTile = typename Cfg::KTile;
  using VTile = typename Cfg::VTile;
  constexpr int kD = QTile::kChunks * 8, kBlockN = Cfg::kBlockN, kStages = Cfg::kStages;
  constexpr int kNT = kBlockN / 16;  // 16-column score tiles per warp
  constexpr int kOT = kD / 16;       // 16-column output tiles per warp
  constexpr int kQK = kD / 16;       // k16 steps of Q K^T
  constexpr int kPV = kBlockN / 16;  // k16 steps of P V

  const int warp = vendor::warp_id() % 4;
  const int c_row0 = m0 + c * 64;      // this consumer's first query row
  const int row0 = c_row0 + warp * 16;  // this warp's first query row
  const MaskRule mask{p.seqlen_kv, p.mask_offset, p.window_left, p.window_right};
  const uint64_t q_desc = wgmma_desc(s.q + c * 64 * 128, 16, 1024);  // this consumer's rows in each column block
  const uint64_t k_desc0 = wgmma_desc(s.k, 16, 1024);
  const uint64_t v_desc0 = wgmma_desc(s.v, VTile::kColBlockBytes, 1024);

  const ConsumerTurns<Cfg::kConsumers> turns{c};
  turns.start();

  typename P::Acc o[kOT];
#pragma unroll
  for (int t = 0; t < kOT; ++t) P::zero(o[t]);
  OnlineSoftmax<P> softmax;
  softmax.init();

  auto wait_full = [&](uint32_t full0, int i) { mbarrier_wait(full0 + 8 * (i % kStages), (i / kStages) & 1); };
  // One arrival per warp, after the warp's wgmma_wait: the stage's reads by this warp's part are complete.
  auto release = [&](uint32_t empty0, int i) {
    if (vendor::lane_id() == 0) mbarrier_arrive(empty0 + 8 * (i % kStages));
  };
  auto issue_s = [&](typename P::Acc(&sc)[kNT], int i) {
    const uint64_t k_desc = wgmma_desc_step(k_desc0, (i % kStages) * KTile::kBytes);
#pragma unroll
    for (int kk = 0; kk < kQK; ++kk) {
      const uint32_t step = (kk % 4) * 32;  // k16 slice inside the 128-byte rows of column block kk / 4
      const uint64_t qd = wgmma_desc_step(q_desc, (kk / 4) * QTile::kColBlockBytes + step);
      const uint64_t kd = wgmma_desc_step(k_desc, (kk / 4) * KTile::kColBlockBytes + step);
      WgmmaSS<T, kBlockN>::template run<0, 0>(&sc[0].v[0], qd, kd, kk > 0);
    }
    wgmma_commit();
  };
  auto issue_pv = [&](const typename P::FragA(&pa)[kPV], int i) {
    const uint64_t v_desc = wgmma_desc_step(v_desc0, (i % kStages) * VTile::kBytes);
#pragma unroll
    for (int kk = 0; kk < kPV; ++kk)
#pragma unroll
      for (int part = 0; part < kD / Cfg::kPvN; ++part) {
        // Keys 16 kk .. +15 (16 rows of V, 2048 bytes), head-dim columns part * kPvN .. + kPvN.
        const uint64_t vd = wgmma_desc_step(v_desc, kk * 2048 + part * (Cfg::kPvN / 64) * VTile::kColBlockBytes);
        WgmmaRS<T, Cfg::kPvN>::template run<1>(&o[part * (Cfg::kPvN / 16)].v[0], pa[kk].r, vd, 1);
      }
    wgmma_commit();
  };
  // Mask + softcap + online-softmax step of tile i (fwd_common.cuh). The step rescales the accumulators it is given;
  // it gets `rescale`, all ones, in place of O (which the P V in flight still writes), and leaves in it the factor
  // O is multiplied by once that GEMM has completed, element for element.
  auto probabilities = [&](typename P::Acc(&sc)[kNT], typename P::Acc(&rescale)[1], int i) {
    const int key0 = (n_begin + i) * kBlockN;
    const bool partial = mask.partial(c_row0, c_row0 + 63, key0, key0 + kBlockN - 1);
#pragma unroll
    for (int e = 0; e < P::kAccElems; ++e) rescale[0].v[e] = 1.f;
    scores_to_probabilities<P>(p, mask, partial, row0, key0, sc, rescale, softmax);
  };

  const int tiles = n_end - n_begin;
  if (tiles > 0) {
    typename P::Acc sc[kNT];
    typename P::FragA pa[kPV];
    typename P::Acc rescale[1];
    mbarrier_wait(s.q_full(), 0);
    wait_full(s.k_full(0), 0);
    wgmma_fence();
    issue_s(sc, 0);
    wgmma_wait<0>();
    fence_registers(&sc[0].v[0], kNT * P::kAccElems);
    release(s.k_empty(0), 0);
    probabilities(sc, rescale, 0);  // O is still zero: its rescale changes nothing
#pragma unroll
    for (int kk = 0; kk < kPV; ++kk) P::acc_to_a(pa[kk], sc[kk]);

    for (int i = 1; i < tiles; ++i) {
      wait_full(s.k_full(0), i);
      turns.wait();
      wgmma_fence();
      issue_s(sc, i);
      wait_full(s.v_full(0), i - 1);
      wgmma_fence();  // the wait's branch lies between the first fence and P V's register operands
      issue_pv(pa, i - 1);
      turns.pass();
      wgmma_wait<1>();  // S_i has landed; P_{i-1} V_{i-1} may still run
      fence_registers(&sc[0].v[0], kNT * P::kAccElems);
      release(s.k_empty(0), i);
      probabilities(sc, rescale, i);
      wgmma_wait<0>();
      fence_registers(&o[0].v[0], kOT * P::kAccElems);
      fence_registers(&pa[0].r[0], kPV * 4);
      release(s.v_empty(0), i - 1);
#pragma unroll
      for (int kk = 0; kk < kPV; ++kk) P::acc_to_a(pa[kk], sc[kk]);
#pragma unroll
      for (int t = 0; t < kOT; ++t)
#pragma unroll
        for (int e = 0; e < P::kAccElems; ++e) o[t].v[e] *= rescale[0].v[e];
    }
    wait_full(s.v_full(0), tiles - 1);
    wgmma_fence();
    issue_pv(pa, tiles - 1);
    wgmma_wait<0>();
    fence_registers(&o[0].v[0], kOT * P::kAccElems);
    fence_registers(&pa[0].r[0], kPV * 4);
    release(s.v_empty(0), tiles - 1);
  }
  turns.finish();

  // Epilogue. Every warp of this consumer is past its last wgmma, so its rows of the Q buffer are free: the
  // normalised output goes there in the swizzled layout the O tensor map stores from.
  // A row that sees no key by the mask is written as exactly 0 (its accumulators may hold 0 * NaN from a masked
  // key's v) with lse -inf; every other row as the arithmetic gives it (the shared non-finite rules).
  bool sees[P::kRowSlots];
#pragma unroll
  for (int slot = 0; slot < P::kRowSlots; ++slot) sees[slot] = mask.sees_keys(row0 + P::slot_row(slot));
  float inv[P::kRowSlots], lse[P::kRowSlots];
  softmax.finish(sees, inv, lse);
  named_barrier_sync(kEpilogueBarrier<Cfg::kConsumers> + c, 128);
#pragma unroll
  for (int t = 0; t < kOT; ++t)
#pragma unroll
    for (int e = 0; e < P::kAccElems; e += 2) {
      // Elements e, e + 1 are adjacent columns of one row (the 2-wide conversions).
      const int row = c * 64 + warp * 16 + P::acc_row(e);
      const int col = t * P::kN + P::acc_col(e);
      const float inv_row = inv[P::acc_slot(e)];
      const bool seen = sees[P::acc_slot(e)];
      *reinterpret_cast<uint32_t*>(sQ + QTile::chunk_offset(row, col >> 3) + (col & 7)) =
          vendor::pack2<T>(seen ? o[t].v[e] * inv_row : 0.f, seen ? o[t].v[e + 1] * inv_row : 0.f);
    }
  fence_proxy_async();
  named_barrier_sync(kEpilogueBarrier<Cfg::kConsumers> + c, 128);
  if (vendor::thread_id() % 128 == 0) {
#pragma unroll
    for (int cb = 0; cb < kD / 64; ++cb)
      tma_store<4>(&params.o_map, s.q + cb * QTile::kColBlockBytes + c * 64 * 128, {cb * 64, c_row0, h, b});
    tma_store_commit();
    tma_store_wait<0>();  // the block's shared memory must outlive the copy
  }
  if (p.lse != nullptr && (vendor::lane_id() & 3) == 0) {
    // The four lanes of a quad hold the same rows; one of them writes.
    float* lse_bh = p.lse + b * p.lse_stride[0] + h * p.lse_stride[1];
#pragma unroll
    for (int slot = 0; slot < P::kRowSlots; ++slot) {
      const int row = row0 + P::slot_row(slot);
      if (row < p.seqlen_q) lse_bh[int64_t(row) * p.lse_stride[2]] = lse[slot];
    }
  }
}

#endif  // FLASHPORT_HAS_WGMMA

template <class T, int kD, int kStages, int kConsumers>
__global__ void __launch_bounds__(Sm90WsConfig<kD, kStages, kConsumers>::kThreads, 1)
    fwd_sm90_ws_kernel(const __grid_constant__ FwdSm90WsParams params) {
#if defined(FLASHPORT_HAS_WGMMA)
  using Cfg = Sm90WsConfig<kD, kStages, kConsumers>;
  const FwdParams& p = params.fwd;
  extern __shared__ uint4 smem_raw[];
  const uint32_t raw_addr = vendor::smem_addr(smem_raw);
  const uint32_t pad = ((raw_addr + 1023u) & ~1023u) - raw_addr;
  T* sQ = reinterpret_cast<T*>(reinterpret_cast<char*>(smem_raw) + pad);
  Sm90WsSmem<Cfg> s;
  s.q = raw_addr + pad;
  s.k = s.q + Cfg::QTile::kBytes;
  s.v = s.k + kStages * Cfg::KTile::kBytes;
  s.bars = s.v + kStages * Cfg::VTile::kBytes;

  const FwdBlock block = fwd_block_of(p, vendor::block_id_x());
  const int m_block = block.m_block, h = block.h;
  const int b = vendor::block_id_z();
  const int hk = h / p.heads_ratio;
  const int m0 = m_block * Cfg::kBlockM;
  const int rows_q = min(Cfg::kBlockM, p.seqlen_q - m0);
  const MaskRule mask{p.seqlen_kv, p.mask_offset, p.window_left, p.window_right};
  int64_t key_lo, key_hi;
  mask.key_range(m0, m0 + rows_q - 1, &key_lo, &key_hi);
  const int n_begin = static_cast<int>(key_lo / Cfg::kBlockN);
  const int n_end = key_hi > key_lo ? static_cast<int>(ceil_div<int64_t>(key_hi, Cfg::kBlockN)) : n_begin;

  if (vendor::thread_id() == 0) {
    mbarrier_init(s.q_full(), 1);
    for (int st = 0; st < kStages; ++st) {
      mbarrier_init(s.k_full(st), 1);
      mbarrier_init(s.v_full(st), 1);
      mbarrier_init(s.k_empty(st), 4 * Cfg::kConsumers);
      mbarrier_init(s.v_empty(st), 4 * Cfg::kConsumers);
    }
    mbarrier_init_fence();
  }
  vendor::block_sync();  // the last block-wide barrier: the producer's idle warps leave after it

  // Read through a shuffle so that ptxas knows it is warp-uniform (a wgmma under a branch it cannot prove uniform
  // is serialised, ptxas C7518).
  const int warpgroup = __shfl_sync(0xffffffffu, vendor::thread_id() / 128, 0);
  if (warpgroup == 0) {
    setmaxnreg_dec<Cfg::kProducerRegs>();
    if (vendor::thread_id() == 0) fwd_ws_produce<Cfg>(params, s, b, h, hk, m0, n_begin, n_end);
    return;
  }
  setmaxnreg_inc<Cfg::kConsumerRegs>();
  fwd_ws_consume<T, Cfg>(params, s, sQ, warpgroup - 1, b, h, m0, n_begin, n_end);
#else
  // Compiled for a target without wgmma and TMA; the module selects this kernel only on compute 9.0 in a build
  // with sm_90a.
  __trap();
#endif
}

// Host: Q, K, V or O of a forward as a rank-4 TMA tensor [head_dim, seqlen, heads, batch] (innermost first). A
// dimension of extent 1 is never stepped, so its stride is replaced by one TMA accepts.
inline TmaTensor16 fwd_tma_tensor(const void* base, int head_dim, int seqlen, int heads, int batch,
                                  const int64_t (&stride)[3]) {
  const int64_t extent[3] = {seqlen, heads, batch};
  const int64_t step[3] = {stride[1], stride[2], stride[0]};  // FwdParams order: batch, seq, head
  TmaTensor16 t{base, 4, {head_dim, seqlen, heads, batch}, {}};
  for (int i = 0; i < 3; ++i) t.strides[i] = extent[i] == 1 ? 8 : step[i];
  return t;
}

// Host: whether the warp-specialised forward with head dim kD runs p: 16-bit elements (the caller's), equal head
// dims up to kD, and Q, K, V and O addressable by TMA (16-byte aligned base pointers, strides multiples of 8
// elements). The selector asks this; everything else falls back to fwd_sm90.cuh.
template <int kD> bool fwd_sm90_ws_supports(const FwdParams& p) {
  return p.head_dim_qk == p.head_dim_v && p.head_dim_qk <= kD &&
         tma_addressable(fwd_tma_tensor(p.q, p.head_dim_qk, p.seqlen_q, p.heads_q, p.batch, p.q_stride)) &&
         tma_addressable(fwd_tma_tensor(p.k, p.head_dim_qk, p.seqlen_kv, p.heads_kv, p.batch, p.k_stride)) &&
         tma_addressable(fwd_tma_tensor(p.v, p.head_dim_v, p.seqlen_kv, p.heads_kv, p.batch, p.v_stride)) &&
         tma_addressable(fwd_tma_tensor(p.out, p.head_dim_v, p.seqlen_q, p.heads_q, p.batch, p.out_stride));
}

// Host: queue the forward on `stream` (16-bit T, head dim kD, kStages K/V stages, kConsumers consumer warpgroups).
// Returns cudaErrorInvalidValue when TMA cannot address a tensor (check fwd_sm90_ws_supports first),
// cudaErrorNotSupported without the driver's tensor-map encoder, else the launch's error.
template <class T, int kD, int kStages = kSm90WsStages<kD>, int kConsumers = kSm90WsConsumers<kD>>
cudaError_t launch_fwd_sm90_ws(const FwdParams& p, cudaStream_t stream) {
  using Cfg = Sm90WsConfig<kD, kStages, kConsumers>;
  constexpr bool kBf16 = std::is_same_v<T, vendor::bf16_t>;
  FwdSm90WsParams w{};
  w.fwd = p;
  unsigned grid[3];
  if (!fwd_grid_order(&w.fwd, Cfg::kBlockM, 2, grid)) return cudaErrorInvalidConfiguration;
  cudaError_t e = make_tensor_map_sw128(
      &w.q_map, fwd_tma_tensor(p.q, p.head_dim_qk, p.seqlen_q, p.heads_q, p.batch, p.q_stride), kBf16, Cfg::kBlockM);
  if (e == cudaSuccess)
    e = make_tensor_map_sw128(
        &w.k_map, fwd_tma_tensor(p.k, p.head_dim_qk, p.seqlen_kv, p.heads_kv, p.batch, p.k_stride), kBf16,
        Cfg::kBlockN);
  if (e == cudaSuccess)
    e = make_tensor_map_sw128(
        &w.v_map, fwd_tma_tensor(p.v, p.head_dim_v, p.seqlen_kv, p.heads_kv, p.batch, p.v_stride), kBf16,
        Cfg::kBlockN);
  if (e == cudaSuccess)
    e = make_tensor_map_sw128(
        &w.o_map, fwd_tma_tensor(p.out, p.head_dim_v, p.seqlen_q, p.heads_q, p.batch, p.out_stride), kBf16, 64);
  if (e != cudaSuccess) return e;
  auto* kernel = fwd_sm90_ws_kernel<T, kD, kStages, kConsumers>;
  e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kSmemBytes);
  if (e != cudaSuccess) return e;
  kernel<<<dim3(grid[0], grid[1], grid[2]), Cfg::kThreads, Cfg::kSmemBytes, stream>>>(w);
  return cudaGetLastError();
}

}  // namespace flashport::kernels

#endif
