// The HIP module's host-side plans (src/hip/kernel_table.hip), tested without a GPU: kernel_table.o is linked alone
// and the seam to the runtime (launch_kernel, device_alloc, device_free of kernel_table.h) is replaced by recording
// stubs, so the tests see every launch the module would queue: kernel names, grids, block sizes, LDS, the parameter
// block, and the workspace calls. The backward's sequence is the CUDA module's (kernels/bwd_host.cuh); these tests
// check the HIP launcher and selection around it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "hip/kernel_table.h"
#include "kernels/bwd_params.cuh"

namespace {

struct Launch {
  std::vector<flashport::hip::KernelLaunch> candidates;
  flashport::kernels::BwdParams params;
};

struct Recorder {
  std::vector<Launch> launches;
  std::vector<std::string> calls;  // "alloc <bytes>", "launch", "free <stream_ordered>"
  int fail_launch = -1;            // index of the launch that fails (-1: none)
  size_t allocated = 0;
};
Recorder rec;
alignas(256) char fake_workspace[1 << 20];

}  // namespace

namespace flashport::hip {

int32_t launch_kernel(int32_t, const KernelLaunch* candidates, size_t count, void*, void* params, std::string* err) {
  Launch l;
  l.candidates.assign(candidates, candidates + count);
  std::memcpy(&l.params, params, sizeof l.params);  // every backward kernel takes a BwdParams
  rec.launches.push_back(l);
  rec.calls.push_back("launch");
  if (static_cast<int>(rec.launches.size()) - 1 == rec.fail_launch) {
    *err = "stub launch failure";
    return FLASHPORT_STATUS_DEVICE_ERROR;
  }
  return FLASHPORT_STATUS_OK;
}
int32_t device_alloc(int32_t, size_t bytes, void*, void** ptr, bool* stream_ordered, std::string*) {
  rec.calls.push_back("alloc " + std::to_string(bytes));
  rec.allocated = bytes;
  *ptr = fake_workspace;
  *stream_ordered = false;  // as on a runtime without hipMallocAsync
  return FLASHPORT_STATUS_OK;
}
int32_t device_free(int32_t, void* ptr, void*, bool stream_ordered, std::string*) {
  CHECK(ptr == fake_workspace);
  rec.calls.push_back(std::string("free ") + (stream_ordered ? "async" : "sync"));
  return FLASHPORT_STATUS_OK;
}

}  // namespace flashport::hip

namespace {

using flashport::hip::plan_run;
using flashport::hip::plan_supported;
using flashport::hip::plan_workspace_size;

bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

// A contiguous backward problem [B, S, H, D] (pointers are never dereferenced).
flashport_problem backward(int32_t dtype, int64_t b, int64_t sq, int64_t skv, int64_t hq, int64_t hkv, int64_t d) {
  static char buffers[10][64];
  flashport_problem p;
  std::memset(&p, 0, sizeof p);
  p.direction = FLASHPORT_DIRECTION_BACKWARD;
  p.dtype = dtype;
  p.device_type = FLASHPORT_DEVICE_ROCM;
  p.batch = b;
  p.seqlen_q = sq, p.seqlen_kv = skv;
  p.heads_q = hq, p.heads_kv = hkv;
  p.head_dim_qk = p.head_dim_v = d;
  p.scale = 0.125f;
  p.window_left = p.window_right = -1;
  const auto set = [&](flashport_operand& o, int i, int64_t s, int64_t h) {
    o.data = buffers[i];
    o.stride[0] = s * h * d;
    o.stride[1] = h * d;
    o.stride[2] = d;
    o.stride[3] = 1;
  };
  set(p.q, 0, sq, hq);
  set(p.k, 1, skv, hkv);
  set(p.v, 2, skv, hkv);
  set(p.out, 3, sq, hq);
  set(p.dout, 4, sq, hq);
  set(p.dq, 5, sq, hq);
  set(p.dk, 6, skv, hkv);
  set(p.dv, 7, skv, hkv);
  p.lse.data = buffers[8];
  p.lse.stride[0] = hq * sq;
  p.lse.stride[1] = sq;
  p.lse.stride[2] = 1;
  return p;
}

void reset() { rec = Recorder{}; }

}  // namespace

TEST_CASE("hip backward f16 D 128: workspace, then preprocess, main, convert on AMD's block shape") {
  reset();
  flashport_problem p = backward(FLASHPORT_DTYPE_F16, 2, 100, 130, 4, 2, 128);
  std::string why;
  REQUIRE(plan_supported(p, &why));
  // BwdShapeAmd at D 128: 32 queries x 64 keys. Rows padded to 128 per (batch, head): 2 * 4 * 128 = 1024 rows;
  // dsum and lse_log2 4 KB each, dq_accum 1024 * 128 floats.
  const size_t ws = plan_workspace_size(p);
  CHECK(ws == 4096 + 4096 + 1024 * 128 * 4);

  std::string err;
  REQUIRE(plan_run(p, &err) == FLASHPORT_STATUS_OK);
  CHECK(rec.calls ==
        std::vector<std::string>{"alloc " + std::to_string(ws), "launch", "launch", "launch", "free sync"});
  REQUIRE(rec.launches.size() == 3);

  const Launch& pre = rec.launches[0];
  REQUIRE(pre.candidates.size() == 1);
  CHECK(has(pre.candidates[0].name, "bwd_preprocess_kernel"));
  CHECK(pre.candidates[0].grid[0] == 1024 / 4);
  CHECK(pre.candidates[0].block == 128);

  const Launch& main = rec.launches[1];
  REQUIRE(main.candidates.size() == 4);  // MFMA, WMMA, FMA x 64, FMA x 32: the code object holds one
  const char* policies[] = {"TileMmaMfma", "TileMmaWmma", "TileMmaFmaIDF16_Li64E", "TileMmaFmaIDF16_Li32E"};
  const unsigned threads[] = {256, 128, 256, 128};
  for (size_t i = 0; i < 4; ++i) {
    INFO(main.candidates[i].name);
    CHECK(has(main.candidates[i].name, "bwd_main_kernelIDF16_Li128ELi128E"));
    CHECK(has(main.candidates[i].name, policies[i]));
    CHECK(main.candidates[i].block == threads[i]);
    CHECK(main.candidates[i].shared_bytes <= 64 * 1024);
    CHECK(main.candidates[i].grid[0] == 3 * 2);  // ceil(130 / 64) key blocks x kv heads (kernels/block_order.cuh)
    CHECK(main.candidates[i].grid[1] == 1);
    CHECK(main.candidates[i].grid[2] == 2);  // batch
  }
  const flashport::kernels::BwdParams& b = main.params;
  CHECK(b.block_m == 32);
  CHECK(b.block_n == 64);
  CHECK(b.m_blocks == 4);
  CHECK(b.n_blocks == 3);
  CHECK(b.seqlen_q_pad == 128);
  CHECK(b.group == 2);
  CHECK(reinterpret_cast<char*>(b.dsum) == fake_workspace);
  CHECK(reinterpret_cast<char*>(b.dq_accum) == fake_workspace + 8192);
  CHECK(b.dq_sem == nullptr);
  CHECK(b.order.blocks.divisor == 3);
  CHECK(b.order.section_log2 == 0);  // no mask: one kv head per section, its key blocks in a row

  CHECK(has(rec.launches[2].candidates[0].name, "bwd_convert_kernel"));
}

TEST_CASE("hip backward under a causal mask: kv heads share a section of the block order, key block 0 first") {
  reset();
  flashport_problem p = backward(FLASHPORT_DTYPE_F16, 2, 100, 130, 4, 2, 128);
  p.window_right = 0;  // causal, top-left
  std::string why;
  REQUIRE(plan_supported(p, &why));
  std::string err;
  REQUIRE(plan_run(p, &err) == FLASHPORT_STATUS_OK);
  REQUIRE(rec.launches.size() == 3);
  const Launch& main = rec.launches[1];
  CHECK(main.candidates[0].grid[0] == 3 * 2);
  CHECK(main.candidates[0].grid[2] == 2);
  // Both kv heads' Q, dO and dQ rows (2 query heads x 100 rows each) fit in 32 MB: one section of 2 heads, so the
  // grid's first blocks are key block 0 of kv head 0, then of kv head 1.
  const flashport::kernels::BlockOrder& order = main.params.order;
  CHECK(order.section_log2 == 1);
  int level = -1, head = -1;
  order.decode(0, &level, &head);
  CHECK((level == 0 && head == 0));
  order.decode(1, &level, &head);
  CHECK((level == 0 && head == 1));
  order.decode(5, &level, &head);
  CHECK((level == 2 && head == 1));
}

TEST_CASE("hip backward deterministic: counters in the workspace, (batch x kv head, key block) grid") {
  reset();
  flashport_problem p = backward(FLASHPORT_DTYPE_BF16, 2, 100, 130, 4, 2, 64);
  p.deterministic = 1;
  std::string why;
  REQUIRE(plan_supported(p, &why));
  // D 64: 64 x 64 blocks; rows 2 * 4 * 128; counters 2 * 4 * 2 query blocks after the 256-aligned accumulator.
  const size_t accum_end = 4096 + 4096 + 1024 * 64 * 4;
  CHECK(plan_workspace_size(p) == accum_end + 2 * 4 * 2 * 4);
  std::string err;
  REQUIRE(plan_run(p, &err) == FLASHPORT_STATUS_OK);
  REQUIRE(rec.launches.size() == 3);
  const Launch& main = rec.launches[1];
  CHECK(main.candidates[0].grid[0] == 4);  // batch * heads_kv
  CHECK(main.candidates[0].grid[1] == 3);  // key blocks
  CHECK(main.candidates[0].grid[2] == 1);
  CHECK(main.params.deterministic == 1);
  CHECK(reinterpret_cast<char*>(main.params.dq_sem) == fake_workspace + accum_end);
}

TEST_CASE("hip backward fp32 D 256: preprocess and the two fp32 kernels, no conversion") {
  reset();
  flashport_problem p = backward(FLASHPORT_DTYPE_F32, 1, 10, 20, 2, 1, 256);
  std::string why;
  REQUIRE(plan_supported(p, &why));
  std::string err;
  REQUIRE(plan_run(p, &err) == FLASHPORT_STATUS_OK);
  REQUIRE(rec.launches.size() == 3);
  CHECK(has(rec.launches[0].candidates[0].name, "bwd_preprocess_kernelIfE"));
  REQUIRE(rec.launches[1].candidates.size() == 2);  // 64- and 32-lane variants
  CHECK(has(rec.launches[1].candidates[0].name, "bwd_f32_dkdv_kernelILi64E"));
  CHECK(rec.launches[1].candidates[0].block == 256);
  CHECK(rec.launches[1].candidates[0].grid[0] == 5);  // 20 keys, 4 per block
  CHECK(has(rec.launches[2].candidates[1].name, "bwd_f32_dq_kernelILi32E"));
  CHECK(rec.launches[2].candidates[1].grid[0] == 3);  // 10 rows, 4 per block
  CHECK(rec.launches[2].candidates[1].grid[1] == 2);
  CHECK(rec.launches[1].params.dq_accum == nullptr);
}

TEST_CASE("hip backward D 256: 32 x 32 blocks in exactly 64 KB of LDS for every policy, f16 and padded bf16") {
  // BwdShapeAmd at D 256 reloads V (kernels/bwd_launch.cuh): K, V, Q, dO of 32 rows x 256 = 4 x 16 KB, P^T, dS^T
  // and dS in V's tile, lse and D not staged.
  const struct {
    int32_t dtype;
    int64_t d;
    const char* kernel;
  } cases[] = {{FLASHPORT_DTYPE_F16, 256, "bwd_main_kernelIDF16_Li256ELi256E"},
               {FLASHPORT_DTYPE_BF16, 200, "bwd_main_kernelIDF16bLi256ELi256E"}};
  for (const auto& c : cases) {
    INFO(std::string(c.kernel));
    reset();
    flashport_problem p = backward(c.dtype, 1, 100, 130, 2, 1, c.d);
    std::string why;
    REQUIRE(plan_supported(p, &why));
    // Rows padded to 4 query blocks of 32 = 128 per head: 2 * 128 rows; dsum and lse_log2 1 KB each, then
    // dq_accum of 256 rows x D floats.
    const size_t ws = plan_workspace_size(p);
    CHECK(ws == 1024 + 1024 + 256 * size_t(c.d) * 4);
    std::string err;
    REQUIRE(plan_run(p, &err) == FLASHPORT_STATUS_OK);
    CHECK(rec.calls ==
          std::vector<std::string>{"alloc " + std::to_string(ws), "launch", "launch", "launch", "free sync"});
    REQUIRE(rec.launches.size() == 3);
    CHECK(has(rec.launches[0].candidates[0].name, "bwd_preprocess_kernel"));
    const Launch& main = rec.launches[1];
    REQUIRE(main.candidates.size() == 4);  // MFMA, WMMA, FMA x 64, FMA x 32
    const char* policies[] = {"TileMmaMfma", "TileMmaWmma", "TileMmaFma", "TileMmaFma"};
    const char* lanes[] = {"", "", "Li64E", "Li32E"};
    const unsigned threads[] = {256, 128, 256, 128};
    for (size_t i = 0; i < 4; ++i) {
      INFO(std::string(main.candidates[i].name));
      CHECK(has(main.candidates[i].name, c.kernel));
      CHECK(has(main.candidates[i].name, policies[i]));
      CHECK(has(main.candidates[i].name, lanes[i]));
      CHECK(main.candidates[i].block == threads[i]);
      CHECK(main.candidates[i].shared_bytes == 64 * 1024);
      CHECK(main.candidates[i].grid[0] == 5);  // ceil(130 / 32) key blocks
      CHECK(main.candidates[i].grid[1] == 1);
      CHECK(main.candidates[i].grid[2] == 1);
    }
    CHECK(main.params.block_m == 32);
    CHECK(main.params.block_n == 32);
    CHECK(main.params.seqlen_q_pad == 128);
    CHECK(main.params.head_dim_qk == c.d);
    CHECK(has(rec.launches[2].candidates[0].name, "bwd_convert_kernel"));
  }
}

TEST_CASE("hip backward declines what AMD cannot run, with the reason") {
  reset();
  std::string why;
  flashport_problem p = backward(FLASHPORT_DTYPE_F16, 1, 64, 64, 1, 1, 320);
  CHECK_FALSE(plan_supported(p, &why));
  CHECK(has(why, "supports up to 256"));
  CHECK(plan_workspace_size(p) == 0);
  std::string err;
  CHECK(plan_run(p, &err) == FLASHPORT_STATUS_UNSUPPORTED);
  CHECK(has(err, "supports up to 256"));
  CHECK(rec.calls.empty());

  p = backward(FLASHPORT_DTYPE_F16, 1, 64, 64, 1, 1, 64);
  p.dq.stride[3] = 2;
  CHECK_FALSE(plan_supported(p, &why));
  CHECK(has(why, "dq.strides[3]"));
  CHECK(has(why, "HIP"));
}

TEST_CASE("hip backward declines a request with dlse until its kernels take it, and launches nothing") {
  reset();
  flashport_problem p = backward(FLASHPORT_DTYPE_F16, 1, 64, 64, 1, 1, 64);
  std::string why;
  REQUIRE(plan_supported(p, &why));
  static float dlse[64];
  p.dlse.data = dlse;
  p.dlse.stride[1] = p.dlse.stride[0] = 64;
  p.dlse.stride[2] = 1;
  CHECK_FALSE(plan_supported(p, &why));
  CHECK(why == "dlse not supported by this backend yet");
  CHECK(plan_workspace_size(p) == 0);
  std::string err;
  CHECK(plan_run(p, &err) == FLASHPORT_STATUS_UNSUPPORTED);
  CHECK(err == "dlse not supported by this backend yet");
  CHECK(rec.calls.empty());
}

TEST_CASE("hip declines negative strides in either direction, naming the tensor and stride") {
  reset();
  std::string why;
  flashport_problem p = backward(FLASHPORT_DTYPE_BF16, 2, 64, 64, 2, 1, 64);
  REQUIRE(plan_supported(p, &why));
  p.dk.stride[1] = -p.dk.stride[1];
  CHECK_FALSE(plan_supported(p, &why));
  CHECK(has(why, "dk.strides[1] is -64; the HIP backend needs non-negative strides"));
  CHECK(plan_workspace_size(p) == 0);
  std::string err;
  CHECK(plan_run(p, &err) == FLASHPORT_STATUS_UNSUPPORTED);
  CHECK(err == why);
  CHECK(rec.calls.empty());

  p = backward(FLASHPORT_DTYPE_BF16, 2, 64, 64, 2, 1, 64);
  p.lse.stride[2] = -1;
  CHECK_FALSE(plan_supported(p, &why));
  CHECK(has(why, "lse.strides[2] is -1"));

  p = backward(FLASHPORT_DTYPE_BF16, 2, 64, 64, 2, 1, 64);
  p.direction = FLASHPORT_DIRECTION_FORWARD;
  p.q.stride[0] = -p.q.stride[0];
  CHECK_FALSE(plan_supported(p, &why));
  CHECK(has(why, "q.strides[0]"));
  // A dim of size 1 only has index 0: its stride is never used, whatever its sign.
  p = backward(FLASHPORT_DTYPE_BF16, 2, 64, 64, 2, 1, 64);
  p.direction = FLASHPORT_DIRECTION_FORWARD;
  p.k.stride[2] = -7;  // heads_kv 1
  why.clear();
  CHECK(plan_supported(p, &why));
  CHECK(why.empty());
}

TEST_CASE("hip backward: the caller's workspace is checked before anything runs; failures keep their message") {
  reset();
  flashport_problem p = backward(FLASHPORT_DTYPE_F16, 1, 64, 64, 1, 1, 64);
  p.workspace = fake_workspace;
  p.workspace_size = plan_workspace_size(p) - 1;
  std::string err;
  CHECK(plan_run(p, &err) == FLASHPORT_STATUS_WORKSPACE_TOO_SMALL);
  CHECK(rec.calls.empty());

  p.workspace_size += 1;  // the caller's workspace: no allocation, no free
  CHECK(plan_run(p, &err) == FLASHPORT_STATUS_OK);
  CHECK(rec.calls == std::vector<std::string>{"launch", "launch", "launch"});

  reset();
  rec.fail_launch = 1;  // the main kernel
  p.workspace = nullptr;
  p.workspace_size = 0;
  CHECK(plan_run(p, &err) == FLASHPORT_STATUS_DEVICE_ERROR);
  CHECK(has(err, "backward: main kernel launch: stub launch failure"));
  // No conversion after the failure; the workspace is still freed.
  CHECK(rec.calls == std::vector<std::string>{"alloc " + std::to_string(plan_workspace_size(p)), "launch", "launch",
                                              "free sync"});
}

TEST_CASE("hip forward: a grid past HIP's launch limits is refused by plan_supported, and plan_run launches nothing") {
  flashport_problem p = backward(FLASHPORT_DTYPE_BF16, 1, 100, 100, 8, 8, 128);
  p.direction = FLASHPORT_DIRECTION_FORWARD;
  std::string why;
  CHECK(plan_supported(p, &why));
  // 2^29 queries in 64-row blocks (AMD at D 128) x 8 heads = 2^26 blocks: fits grid x, not 2^32 work-items.
  p.seqlen_q = int64_t(1) << 29;
  why.clear();
  CHECK_FALSE(plan_supported(p, &why));
  INFO(why);
  CHECK(has(why, "forward: the grid (67108864, 1, 1) of 256-thread blocks"));
  CHECK(has(why, "exceeds the HIP launch limits"));
  // x 1024 heads = 2^33 blocks: more than grid x holds.
  p.heads_q = p.heads_kv = 1024;
  why.clear();
  CHECK_FALSE(plan_supported(p, &why));
  CHECK(has(why, "need more than 2^31 - 1 blocks"));
  reset();
  std::string err;
  CHECK(plan_run(p, &err) == FLASHPORT_STATUS_UNSUPPORTED);
  CHECK(err == why);
  CHECK(rec.launches.empty());
}
