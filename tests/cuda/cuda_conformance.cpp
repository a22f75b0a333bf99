// The conformance cases on the CUDA backend, forced through the public API and compared with the float64 reference
// (tests/conformance runs the case: NaN-poisoned outputs, every element must be written, nothing outside the views).
//
//   flashport_cuda_tests            every conformance case (forward, then forward + backward), plus the multi-tile
//                                   cases below (forward), plus the non-finite policy (tests/conformance/nonfinite.h,
//                                   both directions) on every kernel family of "cuda" and, where built, "cuda-fma"
//   flashport_cuda_tests --quick    the conformance cases only, forward: small enough for compute-sanitizer
//
// Exit code: 0 all passed, 1 a failure, 77 no usable CUDA backend (ctest: skipped).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cases.h"
#include "device_memory.h"
#include "flashport/flashport.h"
#include "nonfinite.h"
#include "runner.h"

namespace fc = flashport::conformance;

namespace {

// Shapes that span many K/V tiles and several query blocks of every tensor-core instantiation (BlockM 128,
// BlockN 32..128), with tails, so the copy pipeline, tile skipping and boundary masking all run.
std::vector<fc::Case> multi_tile_cases() {
  std::vector<fc::Case> cases;
  const int64_t dims[][2] = {{32, 32}, {64, 64}, {96, 96}, {128, 128}, {192, 192}, {256, 256}, {192, 128},
                             {80, 80}, {40, 24}, {17, 17}};
  const flashport_dtype dtypes[] = {FLASHPORT_DTYPE_BF16, FLASHPORT_DTYPE_F16};
  uint64_t seed = 1000;
  for (const auto& d : dims) {
    for (flashport_dtype dt : dtypes) {
      fc::Case c;
      c.batch = 2;
      c.heads_q = 4;
      c.heads_kv = 2;
      c.head_dim_qk = d[0];
      c.head_dim_v = d[1];
      c.dtype = dt;
      c.seed = ++seed;
      c.seqlen_q = 300;
      c.seqlen_kv = 517;
      cases.push_back(c);  // plain, Sq < Skv
      c.causal = true;
      c.seed = ++seed;
      cases.push_back(c);  // bottom-right causal
      c.alignment = FLASHPORT_ALIGN_TOP_LEFT;
      c.seed = ++seed;
      cases.push_back(c);
      c.causal = false;
      c.alignment = FLASHPORT_ALIGN_BOTTOM_RIGHT;
      c.window_left = 100;
      c.window_right = 37;
      c.softcap = 20.f;
      c.seqlen_q = 517;
      c.seqlen_kv = 300;  // Sq > Skv: the first rows see nothing under causal, few under the window
      c.seed = ++seed;
      cases.push_back(c);
      c.window_left = -1;
      c.window_right = -1;
      c.softcap = 0.f;
      c.causal = true;
      c.layout = fc::Layout::HeadsFirst;
      c.seed = ++seed;
      cases.push_back(c);
    }
  }
  // Lengths that leave a partial 192-row query block (the Hopper forward's D 64 blocks) of 64 and of 128 rows, under
  // causal masks of both alignments, Sq < Skv.
  for (int64_t sq : {448, 320})
    for (flashport_mask_alignment align : {FLASHPORT_ALIGN_BOTTOM_RIGHT, FLASHPORT_ALIGN_TOP_LEFT}) {
      fc::Case c;
      c.batch = 1;
      c.heads_q = 2;
      c.heads_kv = 1;
      c.head_dim_qk = c.head_dim_v = 64;
      c.dtype = FLASHPORT_DTYPE_BF16;
      c.seqlen_q = sq;
      c.seqlen_kv = sq + 37;
      c.causal = true;
      c.alignment = align;
      c.seed = ++seed;
      cases.push_back(c);
    }
  // fp32 path, a few shapes.
  for (int64_t d : {64, 128, 256}) {
    fc::Case c;
    c.batch = 1;
    c.heads_q = 2;
    c.heads_kv = 1;
    c.head_dim_qk = c.head_dim_v = d;
    c.seqlen_q = 200;
    c.seqlen_kv = 333;
    c.causal = true;
    c.dtype = FLASHPORT_DTYPE_F32;
    c.seed = ++seed;
    cases.push_back(c);
  }
  return cases;
}

struct Tally {
  int pass = 0, skip = 0, fail = 0;
};

// Whether a backend of that name is registered and usable here.
bool backend_available(const char* name) {
  for (int32_t i = 0; i < flashport_backend_count(); ++i) {
    flashport_backend_info info;
    flashport_backend_info_init(&info);
    if (flashport_backend_info_get(i, &info) == FLASHPORT_STATUS_OK && std::strcmp(info.name, name) == 0)
      return info.available != 0;
  }
  return false;
}

// The non-finite scenarios, both directions, on every kernel family the backend selects among: on Hopper the wgmma
// kernels (16-bit, head dims 64 / 128 / 256, also in deterministic mode), elsewhere and for other head dims the
// tile-MMA kernels (96, 192 x 128, padded 40 x 24), and the fp32 kernels. Lengths span several blocks of each.
// A skip is a failure: every configuration here is one the backend runs.
void run_nonfinite_all(const char* backend, flashport::tools::DeviceMemory& memory, Tally& t) {
  struct Config {
    flashport_dtype dtype;
    int64_t dqk, dv, seqlen;
    bool deterministic;
  };
  const Config configs[] = {
      {FLASHPORT_DTYPE_BF16, 64, 64, 200, false},    // Hopper: wgmma, 192-row forward blocks
      {FLASHPORT_DTYPE_F16, 64, 64, 200, true},      //   deterministic backward
      {FLASHPORT_DTYPE_F16, 128, 128, 150, false},   //   D 128
      {FLASHPORT_DTYPE_BF16, 128, 128, 150, true},
      {FLASHPORT_DTYPE_BF16, 256, 256, 150, false},  //   D 256: the split-head-dim backward
      {FLASHPORT_DTYPE_F16, 256, 256, 150, true},
      {FLASHPORT_DTYPE_F16, 96, 96, 150, false},     // tile-MMA kernels on every GPU
      {FLASHPORT_DTYPE_BF16, 192, 128, 150, false},  //   head dims differ
      {FLASHPORT_DTYPE_BF16, 40, 24, 150, true},     //   padded head dims, deterministic
      {FLASHPORT_DTYPE_F32, 64, 64, 150, false},     // fp32 kernels
      {FLASHPORT_DTYPE_F32, 256, 256, 70, false},
  };
  std::printf("== non-finite policy on %s, forward + backward\n", backend);
  const Tally before = t;
  for (const Config& cfg : configs)
    for (fc::NonFiniteScenario s : fc::nonfinite_scenarios(cfg.dtype, cfg.dqk, cfg.dv, cfg.seqlen)) {
      s.c.deterministic = cfg.deterministic;
      const fc::Result r = fc::run_nonfinite(s, backend, memory);
      if (r.pass) {
        ++t.pass;
      } else {
        ++t.fail;
        std::printf("FAIL %s\n", r.message.c_str());
      }
    }
  std::printf("   %d passed, %d failed\n", t.pass - before.pass, t.fail - before.fail);
}

// A forward skip is a failure unless the layout is one the GPU kernels refuse by design (head_dim stride != 1,
// negative strides).
void run_all(const char* title, const std::vector<fc::Case>& cases, flashport::tools::DeviceMemory& memory,
             bool with_backward, Tally& t) {
  std::printf("== %s: %zu cases\n", title, cases.size());
  for (const fc::Case& c : cases) {
    const fc::Result r = fc::run_case(c, "cuda", memory, with_backward);
    if (r.skipped) {
      const bool expected = c.layout == fc::Layout::Strided || c.layout == fc::Layout::Reversed ||
                            c.layout == fc::Layout::ReversedAll || with_backward;
      ++(expected ? t.skip : t.fail);
      if (!expected) std::printf("FAIL (unexpected skip) %s\n", r.message.c_str());
      continue;
    }
    if (r.pass) {
      ++t.pass;
    } else {
      ++t.fail;
      std::printf("FAIL %s\n", r.message.c_str());
    }
  }
  std::printf("   %d passed, %d skipped, %d failed\n", t.pass, t.skip, t.fail);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  int32_t found = -1;
  for (int32_t i = 0; i < flashport_backend_count(); ++i) {
    flashport_backend_info info;
    flashport_backend_info_init(&info);
    if (flashport_backend_info_get(i, &info) != FLASHPORT_STATUS_OK) continue;
    if (std::strcmp(info.name, "cuda") != 0) continue;
    found = i;
    if (!info.available) {
      std::printf("SKIP: cuda backend unavailable: %s\n", info.status_message);
      return 77;
    }
    std::printf("cuda backend: %s (%s)\n", info.status_message, info.module_path);
  }
  if (found < 0) {
    std::printf("SKIP: no cuda backend registered\n");
    return 77;
  }
  std::string why;
  auto memory = flashport::tools::device_memory_for("cuda", &why);
  if (memory == nullptr) {
    std::printf("FAIL: device memory for cuda: %s\n", why.c_str());
    return 1;
  }
  const std::vector<fc::Case> cases = fc::conformance_cases();
  Tally fwd, bwd, tiles, nonfinite;
  run_all("conformance, forward", cases, *memory, false, fwd);
  if (!quick) {
    run_all("multi-tile, forward", multi_tile_cases(), *memory, false, tiles);
    run_all("conformance, forward + backward", cases, *memory, true, bwd);
    run_nonfinite_all("cuda", *memory, nonfinite);
    if (backend_available("cuda-fma")) {
      run_nonfinite_all("cuda-fma", *memory, nonfinite);
    } else {
      std::printf("   cuda-fma not built or unavailable: its non-finite checks skipped\n");
    }
  }
  const int failed = fwd.fail + tiles.fail + bwd.fail + nonfinite.fail;
  std::printf("%s: forward %d/%d passed (%d skipped: head_dim stride != 1 or negative), multi-tile %d passed, "
              "backward %d passed, %d skipped, non-finite %d/%d passed\n",
              failed == 0 ? "PASS" : "FAIL", fwd.pass, fwd.pass + fwd.fail, fwd.skip, tiles.pass, bwd.pass,
              bwd.skip, nonfinite.pass, nonfinite.pass + nonfinite.fail);
  return failed == 0 ? 0 : 1;
}
