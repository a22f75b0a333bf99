// The CUDA backward: block bookkeeping (host only, runs everywhere), conformance of dq/dk/dv against the float64
// reference on every head dim and mask option, bitwise reproducibility of the deterministic mode, and the caller
// workspace contract. GPU cases are skipped (with the reason) where the "cuda" backend is unavailable.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cases.h"
#include "device_memory.h"
#include "flashport/flashport.h"
#include "kernels/bwd_params.cuh"
#include "runner.h"

namespace fc = flashport::conformance;
namespace fk = flashport::kernels;

namespace {

// Block visibility by brute force over every (row, key) pair of the two blocks.
bool brute_visible(const fk::BwdParams& p, int m, int n) {
  for (int64_t i = int64_t(m) * p.block_m; i < std::min<int64_t>((m + 1) * int64_t(p.block_m), p.seqlen_q); ++i)
    for (int64_t j = int64_t(n) * p.block_n; j < std::min<int64_t>((n + 1) * int64_t(p.block_n), p.seqlen_kv); ++j)
      if ((p.window_left < 0 || j >= i + p.mask_offset - p.window_left) &&
          (p.window_right < 0 || j <= i + p.mask_offset + p.window_right))
        return true;
  return false;
}

std::unique_ptr<flashport::tools::DeviceMemory> cuda_memory() {
  std::string why;
  auto memory = flashport::tools::device_memory_for("cuda", &why);
  if (memory == nullptr) MESSAGE("cuda backend unavailable, GPU cases skipped: " << why);
  return memory;
}

uint16_t to_bf16_bits(float x) {  // round to nearest even (inputs are finite)
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

}  // namespace

TEST_CASE("cuda backward: query-block ranges and deterministic order match brute force") {
  // The main kernel visits query blocks m_block_range(n) of key block n, and the deterministic mode expects
  // n - first_n_block(m) earlier key blocks on every query block it visits: both must equal exact visibility.
  const int64_t windows[][2] = {{-1, -1}, {-1, 0}, {0, 0}, {16, 4}, {5, -1}, {100, 3}, {0, -1}, {70, 70}};
  const int64_t seqs[][2] = {{1, 1}, {7, 33}, {33, 7}, {257, 257}, {200, 130}, {129, 300}, {64, 128}, {1000, 999}};
  const int blocks[][2] = {{64, 128}, {64, 64}, {16, 32}};
  int checked = 0;
  for (const auto& w : windows)
    for (const auto& s : seqs)
      for (const auto& bl : blocks)
        for (int top_left = 0; top_left < 2; ++top_left) {
          fk::BwdParams p{};
          p.seqlen_q = int32_t(s[0]);
          p.seqlen_kv = int32_t(s[1]);
          p.window_left = w[0];
          p.window_right = w[1];
          p.mask_offset = top_left ? 0 : s[1] - s[0];
          p.block_m = bl[0];
          p.block_n = bl[1];
          p.m_blocks = int32_t((s[0] + bl[0] - 1) / bl[0]);
          p.n_blocks = int32_t((s[1] + bl[1] - 1) / bl[1]);
          for (int n = 0; n < p.n_blocks; ++n) {
            int32_t begin, end;
            fk::m_block_range(p, n, &begin, &end);
            for (int m = 0; m < p.m_blocks; ++m) {
              const bool vis = brute_visible(p, m, n);
              CAPTURE(p.seqlen_q);
              CAPTURE(p.seqlen_kv);
              CAPTURE(p.window_left);
              CAPTURE(p.window_right);
              CAPTURE(p.mask_offset);
              CAPTURE(m);
              CAPTURE(n);
              REQUIRE((m >= begin && m < end) == vis);
              if (vis) {
                int earlier = 0;
                for (int n2 = 0; n2 < n; ++n2) earlier += brute_visible(p, m, n2);
                REQUIRE(n - fk::first_n_block(p, m) == earlier);
              }
              ++checked;
            }
          }
        }
  CHECK(checked > 1000);
}

TEST_CASE("cuda backward: conformance of dq, dk, dv on every head dim, dtype and mask option") {
  auto memory = cuda_memory();
  if (memory == nullptr) return;
  struct Shape {
    int64_t b, sq, skv, hq, hkv, dqk, dv;
  };
  // Sizes straddle the backward's 64-row query blocks and 64/128-key blocks; GQA group sizes 1, 2, 3, 4.
  const Shape shapes[] = {
      {2, 1, 1, 2, 1, 32, 32},      {1, 77, 77, 4, 2, 32, 32},    {2, 130, 130, 2, 2, 64, 64},
      {1, 65, 200, 3, 1, 64, 64},   {1, 200, 65, 2, 1, 96, 96},   {1, 257, 257, 4, 1, 128, 128},
      {2, 100, 140, 2, 2, 128, 128}, {1, 129, 129, 2, 2, 192, 192}, {1, 150, 90, 2, 1, 192, 128},
      {1, 129, 150, 2, 2, 256, 256}, {1, 70, 70, 2, 1, 80, 48},
      // The Hopper kernel's D 256 shape (64-key blocks, head dim split between warpgroups): GQA over several key
      // blocks, and a padded head dim (224) through its general dQ path.
      {1, 200, 260, 4, 2, 224, 224},
  };
  struct Opt {
    bool causal;
    flashport_mask_alignment align;
    int64_t left, right;
    float softcap;
  };
  const Opt opts[] = {
      {false, FLASHPORT_ALIGN_BOTTOM_RIGHT, -1, -1, 0.f}, {true, FLASHPORT_ALIGN_BOTTOM_RIGHT, -1, -1, 0.f},
      {true, FLASHPORT_ALIGN_TOP_LEFT, -1, -1, 0.f},      {false, FLASHPORT_ALIGN_BOTTOM_RIGHT, 40, 9, 0.f},
      {true, FLASHPORT_ALIGN_TOP_LEFT, 5, -1, 3.f},       {false, FLASHPORT_ALIGN_BOTTOM_RIGHT, 0, 0, 0.f},
  };
  const bool verbose = std::getenv("FLASHPORT_TEST_VERBOSE") != nullptr;
  int n = 0, ran = 0;
  for (const Shape& s : shapes)
    for (const Opt& o : opts) {
      fc::Case c = fc::Case::of_shape(s.b, s.sq, s.skv, s.hq, s.hkv, s.dqk, s.dv);
      c.causal = o.causal;
      c.alignment = o.align;
      c.window_left = o.left;
      c.window_right = o.right;
      c.softcap = o.softcap;
      const flashport_dtype dtypes[] = {FLASHPORT_DTYPE_F16, FLASHPORT_DTYPE_BF16, FLASHPORT_DTYPE_F32};
      c.dtype = dtypes[n % 3];
      c.layout = (n / 3) % 3 == 2 ? fc::Layout::HeadsFirst : fc::Layout::Contiguous;
      c.deterministic = n % 4 == 3;
      c.seed = 1000 + n++;
      const fc::Result r = fc::run_case(c, "cuda", *memory, true);
      if (verbose) {
        std::printf("%s\n", r.message.c_str());
        for (const fc::OutputCheck& oc : r.outputs)
          std::printf("    %-3s err %.3g rel %.3g tol %.3g\n", oc.name.c_str(), oc.max_abs_err, oc.rel_err,
                      oc.tolerance);
      }
      CAPTURE(r.message);
      CHECK_FALSE(r.skipped);
      CHECK_MESSAGE(r.pass, r.message);
      ran += !r.skipped;
    }
  MESSAGE("cuda backward conformance: " << ran << " cases ran");
}

namespace {

// One bf16 backward problem on the device: random inputs, out and lse from the CUDA forward.
struct Problem {
  int64_t b = 1, s = 1000, hq = 8, hkv = 2, d = 128;  // d: set before init
  flashport::tools::DeviceMemory* mem = nullptr;
  flashport::tools::DeviceBuffer q, k, v, o, lse, dout, dq, dk, dv;
  std::string why;

  bool init(flashport::tools::DeviceMemory& m) {
    mem = &m;
    const size_t nq = size_t(b * s * hq * d), nk = size_t(b * s * hkv * d);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-2.f, 2.f);
    auto rand_buf = [&](flashport::tools::DeviceBuffer& buf, size_t count) {
      std::vector<uint16_t> h(count);
      for (auto& x : h) x = to_bf16_bits(u(rng));
      buf = flashport::tools::DeviceBuffer(m, count * 2, &why);
      return buf.ok() && buf.upload(h.data(), &why);
    };
    auto poison_buf = [&](flashport::tools::DeviceBuffer& buf, size_t bytes) {
      std::vector<uint8_t> h(bytes, 0xff);  // NaN in bf16
      buf = flashport::tools::DeviceBuffer(m, bytes, &why);
      return buf.ok() && buf.upload(h.data(), &why);
    };
    if (!(rand_buf(q, nq) && rand_buf(k, nk) && rand_buf(v, nk) && rand_buf(dout, nq) && poison_buf(o, nq * 2) &&
          poison_buf(lse, size_t(b * hq * s) * 4) && poison_buf(dq, nq * 2) && poison_buf(dk, nk * 2) &&
          poison_buf(dv, nk * 2)))
      return false;
    flashport_forward_args fa;
    flashport_forward_args_init(&fa);
    tensors(&fa.q, &fa.k, &fa.v, &fa.out);
    flashport_lse_init_contiguous(&fa.lse, static_cast<float*>(lse.get()), FLASHPORT_DEVICE_CUDA, m.device_id(), b,
                                  hq, s);
    fa.causal = 1;
    fa.backend = "cuda";
    if (flashport_forward(&fa) != FLASHPORT_STATUS_OK) {
      why = std::string("forward: ") + flashport_last_error();
      return false;
    }
    return m.synchronize(nullptr, &why);
  }
  void tensors(flashport_tensor* tq, flashport_tensor* tk, flashport_tensor* tv, flashport_tensor* to) {
    const int32_t dev = mem->device_id();
    flashport_tensor_init_contiguous(tq, q.get(), FLASHPORT_DTYPE_BF16, FLASHPORT_DEVICE_CUDA, dev, b, s, hq, d);
    flashport_tensor_init_contiguous(tk, k.get(), FLASHPORT_DTYPE_BF16, FLASHPORT_DEVICE_CUDA, dev, b, s, hkv, d);
    flashport_tensor_init_contiguous(tv, v.get(), FLASHPORT_DTYPE_BF16, FLASHPORT_DEVICE_CUDA, dev, b, s, hkv, d);
    flashport_tensor_init_contiguous(to, o.get(), FLASHPORT_DTYPE_BF16, FLASHPORT_DEVICE_CUDA, dev, b, s, hq, d);
  }
  flashport_backward_args args(bool deterministic) {
    flashport_backward_args a;
    flashport_backward_args_init(&a);
    tensors(&a.q, &a.k, &a.v, &a.out);
    const int32_t dev = mem->device_id();
    flashport_tensor_init_contiguous(&a.dout, dout.get(), FLASHPORT_DTYPE_BF16, FLASHPORT_DEVICE_CUDA, dev, b, s, hq,
                                     d);
    flashport_lse_init_contiguous(&a.lse, static_cast<float*>(lse.get()), FLASHPORT_DEVICE_CUDA, dev, b, hq, s);
    flashport_tensor_init_contiguous(&a.dq, dq.get(), FLASHPORT_DTYPE_BF16, FLASHPORT_DEVICE_CUDA, dev, b, s, hq, d);
    flashport_tensor_init_contiguous(&a.dk, dk.get(), FLASHPORT_DTYPE_BF16, FLASHPORT_DEVICE_CUDA, dev, b, s, hkv, d);
    flashport_tensor_init_contiguous(&a.dv, dv.get(), FLASHPORT_DTYPE_BF16, FLASHPORT_DEVICE_CUDA, dev, b, s, hkv, d);
    a.causal = 1;
    a.deterministic = deterministic ? 1 : 0;
    a.backend = "cuda";
    return a;
  }
  // dq, dk, dv bytes after the last call.
  std::vector<uint8_t> grads() {
    std::vector<uint8_t> h(dq.size() + dk.size() + dv.size());
    if (!(mem->synchronize(nullptr, &why) && dq.download(h.data(), &why) && dk.download(h.data() + dq.size(), &why) &&
          dv.download(h.data() + dq.size() + dk.size(), &why)))
      h.clear();
    return h;
  }
};

}  // namespace

TEST_CASE("cuda backward: deterministic mode is bitwise reproducible") {
  auto memory = cuda_memory();
  if (memory == nullptr) return;
  // Every kernel shape that has a deterministic mode: on Hopper the wgmma kernel's D 64, 128 and 256 instances
  // (224 runs the D 256 one with padded columns), elsewhere the mma.sync kernel at each of these sizes.
  for (const int64_t d : {64, 128, 256, 224}) {
    CAPTURE(d);
    Problem pb;
    pb.d = d;
    REQUIRE_MESSAGE(pb.init(*memory), pb.why);
    const flashport_backward_args a = pb.args(true);
    REQUIRE_MESSAGE(flashport_backward(&a) == FLASHPORT_STATUS_OK, flashport_last_error());
    const std::vector<uint8_t> first = pb.grads();
    REQUIRE_MESSAGE(!first.empty(), pb.why);
    for (int rep = 0; rep < 4; ++rep) {
      REQUIRE_MESSAGE(flashport_backward(&a) == FLASHPORT_STATUS_OK, flashport_last_error());
      const std::vector<uint8_t> again = pb.grads();
      REQUIRE_MESSAGE(!again.empty(), pb.why);
      CHECK(std::memcmp(first.data(), again.data(), first.size()) == 0);
    }
    // The non-deterministic mode computes the same function (its dq may differ in the last bits).
    const flashport_backward_args fast = pb.args(false);
    REQUIRE_MESSAGE(flashport_backward(&fast) == FLASHPORT_STATUS_OK, flashport_last_error());
    const std::vector<uint8_t> other = pb.grads();
    REQUIRE(other.size() == first.size());
    const size_t dq_bytes = pb.dq.size();
    // dk and dv never use atomics: identical in both modes.
    CHECK(std::memcmp(first.data() + dq_bytes, other.data() + dq_bytes, first.size() - dq_bytes) == 0);
  }
}

TEST_CASE("cuda backward: caller workspace of the queried size, and one byte less") {
  auto memory = cuda_memory();
  if (memory == nullptr) return;
  Problem pb;
  pb.s = 300;
  REQUIRE_MESSAGE(pb.init(*memory), pb.why);
  flashport_backward_args fast = pb.args(false), det = pb.args(true);
  size_t fast_bytes = 0, bytes = 0;
  REQUIRE(flashport_backward_workspace_size(&fast, &fast_bytes) == FLASHPORT_STATUS_OK);
  REQUIRE(flashport_backward_workspace_size(&det, &bytes) == FLASHPORT_STATUS_OK);
  CHECK(fast_bytes >= size_t(pb.b * pb.s * pb.hq * pb.d) * 4);  // at least the fp32 dQ accumulator
  CHECK(bytes > fast_bytes);                                     // plus the semaphores
  REQUIRE_MESSAGE(flashport_backward(&det) == FLASHPORT_STATUS_OK, flashport_last_error());
  const std::vector<uint8_t> expect = pb.grads();
  REQUIRE(!expect.empty());

  std::string why;
  flashport::tools::DeviceBuffer ws(*memory, bytes, &why);
  REQUIRE_MESSAGE(ws.ok(), why);
  // One byte short: refused, and no output touched (dq poisoned first).
  const std::vector<uint8_t> poison(pb.dq.size(), 0xff);
  REQUIRE(pb.dq.upload(poison.data(), &why));
  det.workspace = ws.get();
  det.workspace_size = bytes - 1;
  CHECK(flashport_backward(&det) == FLASHPORT_STATUS_WORKSPACE_TOO_SMALL);
  std::vector<uint8_t> dq_after(pb.dq.size());
  REQUIRE(memory->synchronize(nullptr, &why));
  REQUIRE(pb.dq.download(dq_after.data(), &why));
  CHECK(dq_after == poison);
  // Exactly the queried size: the same bits as with the backend's own allocation.
  det.workspace_size = bytes;
  REQUIRE_MESSAGE(flashport_backward(&det) == FLASHPORT_STATUS_OK, flashport_last_error());
  CHECK(pb.grads() == expect);
}

TEST_CASE("cuda: a backward with dlse and a combine are declined with the reason, nothing written") {
  auto memory = cuda_memory();
  if (memory == nullptr) return;
  Problem pb;
  pb.s = 64;
  REQUIRE_MESSAGE(pb.init(*memory), pb.why);
  std::string why;
  flashport::tools::DeviceBuffer dlse(*memory, size_t(pb.b * pb.hq * pb.s) * 4, &why);
  REQUIRE_MESSAGE(dlse.ok(), why);
  const std::vector<uint8_t> poison(pb.dq.size(), 0xff);
  REQUIRE(pb.dq.upload(poison.data(), &why));
  for (const char* backend : {"cuda", "cuda-fma"}) {
    flashport_backward_args a = pb.args(false);
    a.backend = backend;
    flashport_lse_init_contiguous(&a.dlse, static_cast<float*>(dlse.get()), FLASHPORT_DEVICE_CUDA,
                                  memory->device_id(), pb.b, pb.hq, pb.s);
    CHECK(flashport_backward(&a) == FLASHPORT_STATUS_NO_BACKEND);
    INFO(flashport_last_error());
    // cuda-fma may be absent from the build, which is its own reason
    if (std::string(backend) == "cuda")
      CHECK(std::string(flashport_last_error()).find("dlse not supported by this backend yet") != std::string::npos);
  }
  std::vector<uint8_t> dq_after(pb.dq.size());
  REQUIRE(memory->synchronize(nullptr, &why));
  REQUIRE(pb.dq.download(dq_after.data(), &why));
  CHECK(dq_after == poison);

  // Combine: one part (the forward's out and lse) into dq's buffer viewed as out.
  flashport_tensor q, k, v, part_out, part_lse;
  flashport_combine_args c;
  flashport_combine_args_init(&c);
  pb.tensors(&q, &k, &v, &part_out);
  flashport_lse_init_contiguous(&part_lse, static_cast<float*>(pb.lse.get()), FLASHPORT_DEVICE_CUDA,
                                memory->device_id(), pb.b, pb.hq, pb.s);
  c.num_parts = 1;
  c.parts_out = &part_out;
  c.parts_lse = &part_lse;
  flashport_tensor_init_contiguous(&c.out, pb.dq.get(), FLASHPORT_DTYPE_BF16, FLASHPORT_DEVICE_CUDA,
                                   memory->device_id(), pb.b, pb.s, pb.hq, pb.d);
  CHECK(flashport_combine(&c) == FLASHPORT_STATUS_NO_BACKEND);
  INFO(flashport_last_error());
  CHECK(std::string(flashport_last_error()).find("cuda: combine is not implemented by this backend yet") !=
        std::string::npos);
  REQUIRE(pb.dq.download(dq_after.data(), &why));
  CHECK(dq_after == poison);
}
