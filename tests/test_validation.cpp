// Every validation error path: the status, that flashport_last_error() names the problem, and that no output was
// written (outputs start as a sentinel byte pattern). Forward errors are also checked through the workspace-size
// query, which must reject the same request the same way without writing *bytes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "dispatch_fixture.h"

using dispatch_test::Backward;
using dispatch_test::Forward;

namespace {

constexpr size_t kUnwritten = 777;
constexpr float kInf = std::numeric_limits<float>::infinity();
// The largest softmax_scale and softcap (include/flashport/flashport.h): FLT_MAX / log2(e) rounded so that their
// product with log2(e) is finite in float.
constexpr float kMaxScoreFactor = 2.3586574e+38f;

// A fresh forward request with these options runs.
bool options_accepted(float softmax_scale, float softcap) {
  Forward f;
  f.args.softmax_scale = softmax_scale;
  f.args.softcap = softcap;
  const flashport_status st = flashport_forward(&f.args);
  if (st != FLASHPORT_STATUS_OK) MESSAGE("refused: ", flashport_last_error());
  return st == FLASHPORT_STATUS_OK;
}

bool last_error_has(const char* needle) { return std::string(flashport_last_error()).find(needle) != std::string::npos; }

void expect_rejected(flashport_status got, flashport_status want, const char* needle) {
  INFO("status: ", flashport_status_string(got), ", last_error: ", flashport_last_error());
  CHECK(got == want);
  CHECK(last_error_has(needle));
}

// A call and its workspace query (unless the problem is a NULL data pointer, which the query accepts) are refused
// with that status and message, without writing the outputs or *bytes.
template <class Request, class Args>
void expect_request_rejected(Request& r, flashport_status (*call)(const Args*),
                             flashport_status (*query)(const Args*, size_t*), flashport_status want,
                             const char* needle, bool query_too) {
  expect_rejected(call(&r.args), want, needle);
  CHECK(r.outputs_untouched());
  if (!query_too) return;
  size_t bytes = kUnwritten;
  expect_rejected(query(&r.args, &bytes), want, needle);
  CHECK(bytes == kUnwritten);
}

void expect_forward_rejected(Forward& f, flashport_status want, const char* needle, bool query_too = true) {
  expect_request_rejected(f, flashport_forward, flashport_forward_workspace_size, want, needle, query_too);
}

void expect_backward_rejected(Backward& b, flashport_status want, const char* needle, bool query_too = true) {
  expect_request_rejected(b, flashport_backward, flashport_backward_workspace_size, want, needle, query_too);
}

// One broken field a row: each row breaks a fresh valid Forward and expects expect_forward_rejected()'s checks.
struct ForwardBreak {
  const char* what;
  void (*apply)(flashport_forward_args&);
  flashport_status want;
  const char* needle;
};

void expect_each_forward_rejected(std::initializer_list<ForwardBreak> rows) {
  for (const ForwardBreak& row : rows) {
    INFO("case: ", row.what);
    Forward f;
    row.apply(f.args);
    expect_forward_rejected(f, row.want, row.needle);
  }
}

}  // namespace

TEST_CASE("validation: args NULL") {
  size_t bytes = kUnwritten;
  expect_rejected(flashport_forward(nullptr), FLASHPORT_STATUS_INVALID_ARGUMENT, "args is NULL");
  expect_rejected(flashport_backward(nullptr), FLASHPORT_STATUS_INVALID_ARGUMENT, "args is NULL");
  expect_rejected(flashport_forward_workspace_size(nullptr, &bytes), FLASHPORT_STATUS_INVALID_ARGUMENT, "args is NULL");
  expect_rejected(flashport_backward_workspace_size(nullptr, &bytes), FLASHPORT_STATUS_INVALID_ARGUMENT,
                  "args is NULL");
  CHECK(bytes == kUnwritten);
  Forward f;
  expect_rejected(flashport_forward_workspace_size(&f.args, nullptr), FLASHPORT_STATUS_INVALID_ARGUMENT,
                  "bytes is NULL");
}

TEST_CASE("validation: struct_size") {
  Forward f;
  Backward b;
  SUBCASE("zero") {
    f.args.struct_size = 0;
    expect_forward_rejected(f, FLASHPORT_STATUS_STRUCT_SIZE, "struct_size is 0");
    b.args.struct_size = 0;
    expect_backward_rejected(b, FLASHPORT_STATUS_STRUCT_SIZE, "flashport_backward_args_init");
  }
  SUBCASE("smaller than the v0.1 layout") {
    f.args.struct_size = sizeof(size_t) + sizeof(flashport_tensor);
    expect_forward_rejected(f, FLASHPORT_STATUS_STRUCT_SIZE, "is smaller than the smallest flashport_forward_args");
    b.args.struct_size = offsetof(flashport_backward_args, deterministic);
    expect_backward_rejected(b, FLASHPORT_STATUS_STRUCT_SIZE, "v0.1");
  }
  SUBCASE("larger than this library knows (a newer caller)") {
    f.args.struct_size = sizeof(flashport_forward_args) + 8;
    expect_forward_rejected(f, FLASHPORT_STATUS_STRUCT_SIZE, "newer flashport header");
    b.args.struct_size = sizeof(flashport_backward_args) + 1;
    expect_backward_rejected(b, FLASHPORT_STATUS_STRUCT_SIZE, "newer flashport header");
  }
}

TEST_CASE("validation: NULL data pointers") {
  for (const char* name : {"q", "k", "v", "out"}) {
    Forward g;
    flashport_tensor* t = name[0] == 'q' ? &g.args.q : name[0] == 'k' ? &g.args.k : name[0] == 'v' ? &g.args.v
                                                                                                   : &g.args.out;
    t->data = nullptr;
    INFO("tensor ", name);
    expect_forward_rejected(g, FLASHPORT_STATUS_INVALID_ARGUMENT, (std::string(name) + ".data is NULL").c_str(), false);
  }
  Backward b;
  SUBCASE("backward lse is required") {
    b.args.lse.data = nullptr;
    expect_backward_rejected(b, FLASHPORT_STATUS_INVALID_ARGUMENT, "backward requires the log-sum-exp", false);
  }
  SUBCASE("backward dout, dq") {
    b.args.dout.data = nullptr;
    expect_backward_rejected(b, FLASHPORT_STATUS_INVALID_ARGUMENT, "dout.data is NULL", false);
    b.args.dout = b.dout.t;
    b.args.dq.data = nullptr;
    expect_backward_rejected(b, FLASHPORT_STATUS_INVALID_ARGUMENT, "dq.data is NULL", false);
  }
}

TEST_CASE("validation: reserved_ must be 0") {
  Forward f;
  f.args.k.reserved_ = 3;
  expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "k.reserved_ = 3");
}

TEST_CASE("validation: dtypes") {
  expect_each_forward_rejected({
      {"unknown dtype", [](flashport_forward_args& a) { a.q.dtype = 0; }, FLASHPORT_STATUS_DTYPE_MISMATCH,
       "q.dtype = 0 is not a flashport_dtype"},
      {"disagreeing dtype", [](flashport_forward_args& a) { a.v.dtype = FLASHPORT_DTYPE_BF16; },
       FLASHPORT_STATUS_DTYPE_MISMATCH, "v.dtype = BF16 differs from q.dtype = F32"},
      {"lse not F32", [](flashport_forward_args& a) { a.lse.dtype = FLASHPORT_DTYPE_F16; },
       FLASHPORT_STATUS_DTYPE_MISMATCH, "lse must be F32"},
  });
  Backward b;  // backward gradient dtype
  b.args.dk.dtype = FLASHPORT_DTYPE_F16;
  expect_backward_rejected(b, FLASHPORT_STATUS_DTYPE_MISMATCH, "dk.dtype = F16 differs from q.dtype = F32");
}

TEST_CASE("validation: devices") {
  expect_each_forward_rejected({
      {"unknown device type", [](flashport_forward_args& a) { a.out.device_type = 7; },
       FLASHPORT_STATUS_DEVICE_MISMATCH, "out.device_type = 7"},
      {"different device type", [](flashport_forward_args& a) { a.k.device_type = FLASHPORT_DEVICE_CUDA; },
       FLASHPORT_STATUS_DEVICE_MISMATCH, "k is on CUDA device 0 but q is on CPU device 0"},
      {"different device id", [](flashport_forward_args& a) { a.lse.device_id = 1; },
       FLASHPORT_STATUS_DEVICE_MISMATCH, "lse is on CPU device 1"},
      {"negative device id", [](flashport_forward_args& a) { a.q.device_id = -1; },
       FLASHPORT_STATUS_INVALID_ARGUMENT, "q.device_id = -1"},
  });
}

TEST_CASE("validation: shapes") {
  Forward f;
  SUBCASE("size 0") {
    f.args.k.shape[1] = 0;
    expect_forward_rejected(f, FLASHPORT_STATUS_SHAPE_MISMATCH, "k.shape[1] (seqlen_kv) = 0");
  }
  SUBCASE("seqlen_kv disagrees") {
    f.args.v.shape[1] = 6;
    expect_forward_rejected(f, FLASHPORT_STATUS_SHAPE_MISMATCH,
                            "v.shape[1] (seqlen_kv = 6) differs from k.shape[1] (seqlen_kv = 7)");
  }
  SUBCASE("batch disagrees") {
    f.args.out.shape[0] = 1;
    expect_forward_rejected(f, FLASHPORT_STATUS_SHAPE_MISMATCH, "out.shape[0] (batch = 1) differs from q.shape[0]");
  }
  SUBCASE("out head_dim is not v's") {
    f.args.out.shape[3] = 8;
    expect_forward_rejected(f, FLASHPORT_STATUS_SHAPE_MISMATCH, "out.shape[3] (head_dim_v = 8) differs from v.shape[3]");
  }
  SUBCASE("heads_kv does not divide heads_q") {
    dispatch_test::Shape s;
    s.heads_q = 8;
    s.heads_kv = 3;
    Forward g(s);
    expect_forward_rejected(g, FLASHPORT_STATUS_SHAPE_MISMATCH,
                            "k.shape[2] (heads_kv = 3) does not divide q.shape[2] (heads_q = 8)");
  }
  SUBCASE("lse shape") {
    f.args.lse.shape[1] = 5;  // seqlen where heads belong
    expect_forward_rejected(f, FLASHPORT_STATUS_SHAPE_MISMATCH, "lse.shape[1] (heads_q = 5)");
    f.args.lse.shape[1] = 4;
    f.args.lse.shape[3] = 2;
    expect_forward_rejected(f, FLASHPORT_STATUS_SHAPE_MISMATCH, "lse.shape[3] = 2; must be 1");
  }
  SUBCASE("backward dv shape") {
    Backward b;
    b.args.dv.shape[2] = 4;
    expect_backward_rejected(b, FLASHPORT_STATUS_SHAPE_MISMATCH, "dv.shape[2] (heads_kv = 4) differs from k.shape[2]");
  }
}

TEST_CASE("validation: head dims over 256 are unsupported") {
  dispatch_test::Shape s;
  s.head_dim_qk = 264;
  Forward f(s);
  expect_forward_rejected(f, FLASHPORT_STATUS_UNSUPPORTED, "head_dim_qk = 264) exceeds the supported maximum 256");
  dispatch_test::Shape t;
  t.head_dim_v = 257;
  Backward b(t);
  expect_backward_rejected(b, FLASHPORT_STATUS_UNSUPPORTED, "head_dim_v = 257");
}

TEST_CASE("validation: data must be aligned to the element size") {
  SUBCASE("F32 q at +1 byte") {
    Forward f;
    f.args.q.data = f.q.bytes.data() + 1;
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT,
                            "is not aligned to its element size (4 bytes for F32)");
    CHECK(last_error_has("q.data = "));
  }
  SUBCASE("F32 out at +2 bytes") {
    Forward f;
    f.args.out.data = f.out.bytes.data() + 2;
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "out.data = ");
    CHECK(last_error_has("not aligned"));
  }
  SUBCASE("lse at +1 byte") {
    Forward f;
    f.args.lse.data = f.lse.bytes.data() + 1;
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "lse.data = ");
  }
  SUBCASE("BF16 dv at +1 byte") {
    Backward b(dispatch_test::Shape{}, FLASHPORT_DTYPE_BF16);
    b.args.dv.data = b.dv.bytes.data() + 1;
    expect_backward_rejected(b, FLASHPORT_STATUS_INVALID_ARGUMENT, "dv.data = ");
    CHECK(last_error_has("(2 bytes for BF16)"));
  }
  SUBCASE("BF16 data on a 2-byte boundary is aligned") {
    // The size query reads no memory, so a view moved by one element can be validated without a larger buffer.
    Backward b(dispatch_test::Shape{}, FLASHPORT_DTYPE_BF16);
    b.args.k.data = b.k.bytes.data() + 2;
    size_t bytes = kUnwritten;
    CHECK(flashport_backward_workspace_size(&b.args, &bytes) == FLASHPORT_STATUS_OK);
  }
}

TEST_CASE("validation: negative strides") {
  SUBCASE("a reversed view is accepted and computes what the forward view does") {
    // q and out read backwards along seqlen and heads: data points at the last row's last head.
    Forward f, g;  // the same inputs (same seed)
    for (flashport_tensor* t : {&f.args.q, &f.args.out}) {
      auto* base = static_cast<unsigned char*>(t->data);
      t->data = base + 4 * ((t->shape[1] - 1) * t->strides[1] + (t->shape[2] - 1) * t->strides[2]);
      t->strides[1] = -t->strides[1];
      t->strides[2] = -t->strides[2];
    }
    REQUIRE(flashport_forward(&f.args) == FLASHPORT_STATUS_OK);
    // g's q is f's q with the same reversal undone by hand: a copy in reversed row and head order.
    const dispatch_test::Shape s;
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t i = 0; i < s.seqlen_q; ++i)
        for (int64_t h = 0; h < s.heads_q; ++h)
          std::memcpy(&g.q.bytes[4 * (((b * s.seqlen_q + i) * s.heads_q + h) * s.head_dim_qk)],
                      &f.q.bytes[4 * (((b * s.seqlen_q + (s.seqlen_q - 1 - i)) * s.heads_q + (s.heads_q - 1 - h)) *
                                      s.head_dim_qk)],
                      4 * s.head_dim_qk);
    REQUIRE(flashport_forward(&g.args) == FLASHPORT_STATUS_OK);
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t i = 0; i < s.seqlen_q; ++i)
        for (int64_t h = 0; h < s.heads_q; ++h) {
          INFO("b ", b, " i ", i, " h ", h);
          CHECK(std::memcmp(&g.out.bytes[4 * (((b * s.seqlen_q + i) * s.heads_q + h) * s.head_dim_v)],
                            &f.out.bytes[4 * (((b * s.seqlen_q + (s.seqlen_q - 1 - i)) * s.heads_q +
                                               (s.heads_q - 1 - h)) * s.head_dim_v)],
                            4 * s.head_dim_v) == 0);
        }
  }
  SUBCASE("the overlap check uses the range from the lowest to the highest element") {
    // q and a reversed out in one buffer, out right after q: disjoint. One element lower, out's lowest element is
    // q's last one although out.data itself is far above q.
    Forward f;
    const size_t q_bytes = f.q.bytes.size(), out_bytes = f.out.bytes.size();
    std::vector<unsigned char> shared(q_bytes + out_bytes, dispatch_test::kSentinel);
    std::memcpy(shared.data(), f.q.bytes.data(), q_bytes);
    f.args.q.data = shared.data();
    for (int d = 0; d < 4; ++d) f.args.out.strides[d] = -f.args.out.strides[d];
    f.args.out.data = shared.data() + q_bytes + out_bytes - 4;  // element [0, 0, 0, 0] is the highest
    CHECK(flashport_forward(&f.args) == FLASHPORT_STATUS_OK);
    f.args.out.data = shared.data() + q_bytes + out_bytes - 8;
    const std::vector<unsigned char> before = shared;
    expect_rejected(flashport_forward(&f.args), FLASHPORT_STATUS_ALIASING, "overlaps q");
    CHECK(shared == before);
  }
  SUBCASE("an output's elements must not collide whatever the strides' signs") {
    Forward f;
    f.args.out.strides[3] = -1;
    f.args.out.strides[2] = -2;  // head_dim 6 spans 6 elements: heads would interleave
    expect_forward_rejected(f, FLASHPORT_STATUS_ALIASING, "out.strides[2] = -2 is not larger in magnitude");
  }
  SUBCASE("an extent reaching below address 0") {
    Forward f;
    f.args.k.data = reinterpret_cast<void*>(uintptr_t{64});
    f.args.k.strides[1] = -1024;
    expect_rejected(flashport_forward(&f.args), FLASHPORT_STATUS_OVERFLOW, "reaches below address 0");
    CHECK(f.outputs_untouched());
  }
  SUBCASE("INT64_MIN on a dim of size 1 is never used") {
    Forward f;
    f.args.lse.strides[3] = std::numeric_limits<int64_t>::min();  // lse's trailing dim of size 1
    CHECK(flashport_forward(&f.args) == FLASHPORT_STATUS_OK);
  }
  SUBCASE("INT64_MIN on a longer dim makes the extent overflow") {
    Forward f;
    f.args.v.strides[0] = std::numeric_limits<int64_t>::min();
    expect_forward_rejected(f, FLASHPORT_STATUS_OVERFLOW, "the extent overflows int64");
  }
}

TEST_CASE("validation: overflow") {
  Forward f;
  SUBCASE("(size - 1) * stride") {
    f.args.k.strides[1] = std::numeric_limits<int64_t>::max() / 6 + 1;  // times seqlen_kv - 1 = 6
    expect_forward_rejected(f, FLASHPORT_STATUS_OVERFLOW, "k.shape[1] = 7 with k.strides[1]");
  }
  SUBCASE("(size - 1) * negative stride") {
    f.args.k.strides[1] = std::numeric_limits<int64_t>::min() / 6 - 1;
    expect_forward_rejected(f, FLASHPORT_STATUS_OVERFLOW, "k.shape[1] = 7 with k.strides[1]");
  }
  SUBCASE("element extent sum") {
    f.args.q.strides[0] = std::numeric_limits<int64_t>::max() / 2 - 1;
    f.args.q.strides[1] = std::numeric_limits<int64_t>::max() / 5;
    expect_forward_rejected(f, FLASHPORT_STATUS_OVERFLOW, "q.shape[1] = 5");
  }
  SUBCASE("byte extent") {
    f.args.v.strides[0] = std::numeric_limits<int64_t>::max() / 2 - 8;  // fits in elements, not in bytes
    expect_forward_rejected(f, FLASHPORT_STATUS_OVERFLOW, "the byte extent overflows");
  }
  SUBCASE("element count") {
    // Strides 0 keep every extent tiny; only batch * seqlen_q * heads_q * head_dim of q overflows.
    const int64_t big = int64_t{1} << 21;
    for (flashport_tensor* t : {&f.args.q, &f.args.k, &f.args.v, &f.args.out, &f.args.lse}) {
      t->shape[0] = big;
      t->strides[0] = 0;
    }
    f.args.q.shape[1] = f.args.out.shape[1] = f.args.lse.shape[2] = big;
    f.args.q.shape[2] = f.args.out.shape[2] = f.args.lse.shape[1] = big;
    f.args.q.strides[1] = f.args.q.strides[2] = 0;
    expect_forward_rejected(f, FLASHPORT_STATUS_OVERFLOW, "q.shape[2] = 2097152");
  }
  SUBCASE("byte extent beyond the address space, whatever the heap layout") {
    // Fits in int64 but not in 2^48 bytes: refused as OVERFLOW for an input and an output alike, before the overlap
    // check could answer ALIASING or not depending on where the heap put the buffers.
    f.args.out.strides[0] = int64_t{1} << 46;  // x 4 bytes, batch 2: 2^48 bytes plus the rest of the tensor
    expect_forward_rejected(f, FLASHPORT_STATUS_OVERFLOW, "more than 2^48 = 281474976710656 bytes");
    CHECK(last_error_has("out spans"));
    Forward g;
    g.args.k.strides[1] = -(int64_t{1} << 45);  // 6 x 2^45 elements of 4 bytes, below k.data
    expect_forward_rejected(g, FLASHPORT_STATUS_OVERFLOW, "k spans");
  }
  SUBCASE("a byte extent up to 2^48 passes validation (the size query reads no memory)") {
    f.args.k.data = f.args.v.data = nullptr;
    f.args.k.strides[0] = int64_t{1} << 44;  // 2^46 bytes
    f.args.v.strides[1] = -(int64_t{1} << 43);
    size_t bytes = kUnwritten;
    CHECK(flashport_forward_workspace_size(&f.args, &bytes) == FLASHPORT_STATUS_OK);
    CHECK(bytes == 0);
  }
}

TEST_CASE("validation: the contiguous helpers never overflow; what they fill is refused as OVERFLOW") {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  float x[4] = {};
  flashport_forward_args a;
  flashport_forward_args_init(&a);
  SUBCASE("seqlen 2^60: lse's batch stride 8 x 2^60, q's 2^60 x 8 x 8") {
    const int64_t s = int64_t{1} << 60;
    flashport_lse_init_contiguous(&a.lse, x, FLASHPORT_DEVICE_CPU, 0, 1, 8, s);
    CHECK(a.lse.strides[0] == kMax);  // saturated, not wrapped to INT64_MIN
    CHECK(a.lse.strides[1] == s);
    CHECK(a.lse.strides[2] == 1);
    for (flashport_tensor* t : {&a.q, &a.k, &a.v, &a.out})
      flashport_tensor_init_contiguous(t, x, FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, s, 8, 8);
    CHECK(a.q.strides[0] == kMax);
    CHECK(a.q.strides[1] == 64);
    expect_rejected(
        flashport_forward(&a), FLASHPORT_STATUS_OVERFLOW,
        "q.shape[2] = 8 makes the element count of q (shape [1, 1152921504606846976, 8, 8]) overflow int64");
    CHECK_FALSE(last_error_has(">= 0"));
  }
  SUBCASE("heads x head_dim beyond int64") {
    const int64_t h = int64_t{1} << 56;
    for (flashport_tensor* t : {&a.q, &a.k, &a.v, &a.out})
      flashport_tensor_init_contiguous(t, x, FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 1, h, 256);
    CHECK(a.q.strides[3] == 1);
    CHECK(a.q.strides[2] == 256);
    CHECK(a.q.strides[1] == kMax);
    CHECK(a.q.strides[0] == kMax);
    expect_rejected(flashport_forward(&a), FLASHPORT_STATUS_OVERFLOW, "makes the element count of q");
  }
  SUBCASE("sizes that fit give the exact strides") {
    flashport_tensor_init_contiguous(&a.q, nullptr, FLASHPORT_DTYPE_F16, FLASHPORT_DEVICE_CPU, 0, 2, 3, 5, 7);
    CHECK(a.q.strides[0] == 105);
    CHECK(a.q.strides[1] == 35);
    CHECK(a.q.strides[2] == 7);
    CHECK(a.q.strides[3] == 1);
  }
}

TEST_CASE("validation: aliasing") {
  Forward f;
  SUBCASE("out overlaps q") {
    f.args.out.data = f.q.bytes.data() + 4;
    expect_forward_rejected(f, FLASHPORT_STATUS_ALIASING, "output out");
  }
  SUBCASE("lse overlaps out") {
    f.args.lse.data = f.out.bytes.data() + f.out.bytes.size() - 4;
    expect_forward_rejected(f, FLASHPORT_STATUS_ALIASING, "overlaps lse");
  }
  SUBCASE("zero stride on an output dim of size > 1") {
    f.args.out.strides[1] = 0;
    expect_forward_rejected(f, FLASHPORT_STATUS_ALIASING, "out.strides[1] = 0 while out.shape[1] = 5");
  }
  SUBCASE("output strides that make elements collide") {
    f.args.out.strides[3] = 1;
    f.args.out.strides[2] = 2;  // head_dim 6 spans 6 elements: heads would interleave
    expect_forward_rejected(f, FLASHPORT_STATUS_ALIASING, "out.strides[2] = 2");
  }
  SUBCASE("backward outputs overlap each other") {
    Backward b;
    b.args.dv.data = b.dk.bytes.data();
    expect_backward_rejected(b, FLASHPORT_STATUS_ALIASING, "overlaps dv");
  }
  SUBCASE("backward output overlaps an input") {
    Backward b;
    b.args.dq.data = b.dout.bytes.data();
    expect_backward_rejected(b, FLASHPORT_STATUS_ALIASING, "output dq");
  }
  SUBCASE("inputs may share memory") {
    f.args.k.data = f.args.q.data;
    f.args.k.shape[1] = f.args.v.shape[1] = 5;
    CHECK(flashport_forward(&f.args) == FLASHPORT_STATUS_OK);
  }
}

TEST_CASE("validation: scalar options") {
  Forward f;
  SUBCASE("softmax_scale NaN") {
    f.args.softmax_scale = std::nanf("");
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "softmax_scale = nan");
  }
  SUBCASE("softmax_scale infinite") {
    f.args.softmax_scale = std::numeric_limits<float>::infinity();
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "softmax_scale = inf");
  }
  SUBCASE("softmax_scale negative") {
    f.args.softmax_scale = -0.5f;
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "softmax_scale = -0.5");
  }
  SUBCASE("softcap negative") {
    f.args.softcap = -1.0f;
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "softcap = -1");
  }
  SUBCASE("softmax_scale at its bound, and just past it") {
    CHECK(options_accepted(kMaxScoreFactor, 0.0f));  // the scores overflow: accepted, the rows come out NaN
    f.args.softmax_scale = std::nextafter(kMaxScoreFactor, kInf);
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT,
                            "softmax_scale = 2.3586576e+38; must be finite, >= 0 and <= 2.3586574e+38");
    f.args.softmax_scale = std::numeric_limits<float>::max();
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "<= 2.3586574e+38 (FLT_MAX / log2(e)");
    Backward b;
    b.args.softmax_scale = std::nextafter(kMaxScoreFactor, kInf);
    expect_backward_rejected(b, FLASHPORT_STATUS_INVALID_ARGUMENT, "softmax_scale = 2.3586576e+38");
  }
  SUBCASE("softcap at its bounds, and just past them") {
    CHECK(options_accepted(0.0f, std::numeric_limits<float>::min()));
    for (float bad : {std::nextafter(std::numeric_limits<float>::min(), 0.0f),
                      std::numeric_limits<float>::denorm_min(), std::nextafter(kMaxScoreFactor, kInf),
                      std::numeric_limits<float>::max()}) {
      f.args.softcap = bad;
      expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT,
                              "; must be 0 (off) or in [1.1754944e-38, 2.3586574e+38]");
    }
    f.args.softcap = 1e-45f;
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "softcap = 1e-45; must be 0 (off)");
    // The upper bound is reachable only with a scale large enough for scale / softcap to stay normal.
    CHECK(options_accepted(1e10f, kMaxScoreFactor));
    Backward b;
    b.args.softcap = std::numeric_limits<float>::max();
    expect_backward_rejected(b, FLASHPORT_STATUS_INVALID_ARGUMENT, "softcap = 3.4028235e+38; must be 0 (off)");
  }
  SUBCASE("softmax_scale / softcap must be a finite normal float") {
    // The interval the message gives is exact: accepted at both ends, refused one float outside.
    auto check_interval = [&](float scale, float softcap, float expect_lo, float expect_hi) {
      CAPTURE(scale);
      CAPTURE(softcap);
      f.args.softmax_scale = scale;
      f.args.softcap = softcap;
      expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "must be a finite normal float");
      const std::string msg = flashport_last_error();
      const size_t at = msg.find("softcap must be in [");
      REQUIRE(at != std::string::npos);
      const float lo = std::strtof(msg.c_str() + at + 20, nullptr);
      const float hi = std::strtof(msg.c_str() + msg.find(", ", at) + 2, nullptr);
      if (expect_lo != 0.0f) CHECK(lo == expect_lo);
      if (expect_hi != 0.0f) CHECK(hi == expect_hi);
      const float resolved = scale != 0.0f ? scale : 1.0f / std::sqrt(8.0f);  // the fixture's head_dim_qk is 8
      for (float c : {lo, hi}) {
        CHECK(options_accepted(scale, c));
        CHECK(resolved / c >= std::numeric_limits<float>::min());
        CHECK(resolved / c <= std::numeric_limits<float>::max());
      }
      f.args.softcap = std::nextafter(lo, 0.0f);
      if (f.args.softcap >= std::numeric_limits<float>::min())
        expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "must be a finite normal float");
      f.args.softcap = std::nextafter(hi, kInf);
      if (f.args.softcap <= kMaxScoreFactor)
        expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "must be a finite normal float");
    };
    check_interval(kMaxScoreFactor, 0.5f, 0.0f, kMaxScoreFactor);       // scale / softcap overflows
    check_interval(0.0f, 1e38f, std::numeric_limits<float>::min(), 0.0f);  // default scale: ratio subnormal
    check_interval(1e-40f, 1.0f, std::numeric_limits<float>::min(), 0.0f);  // a subnormal scale
    // The resolved default scale is named in the message.
    f.args.softmax_scale = 0.0f;
    f.args.softcap = 1e38f;
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT,
                            "softcap = 1e+38 with the resolved softmax_scale 0.35355338: softmax_scale / softcap = ");
    Backward b;
    b.args.softmax_scale = kMaxScoreFactor;
    b.args.softcap = 0.5f;
    expect_backward_rejected(b, FLASHPORT_STATUS_INVALID_ARGUMENT, "must be a finite normal float");
  }
  SUBCASE("causal") {
    f.args.causal = 2;
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "causal = 2; must be 0 or 1");
  }
  SUBCASE("mask_alignment") {
    f.args.mask_alignment = 5;
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "mask_alignment = 5");
  }
  SUBCASE("deterministic") {
    Backward b;
    b.args.deterministic = -1;
    expect_backward_rejected(b, FLASHPORT_STATUS_INVALID_ARGUMENT, "deterministic = -1");
  }
  SUBCASE("any window value is valid") {
    f.args.window_left = std::numeric_limits<int64_t>::max();
    f.args.window_right = std::numeric_limits<int64_t>::min();
    f.args.causal = 1;
    CHECK(flashport_forward(&f.args) == FLASHPORT_STATUS_OK);
  }
}

TEST_CASE("validation: workspace arguments") {
  Forward f;
  SUBCASE("size without memory") {
    f.args.workspace_size = 1024;
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "workspace_size = 1024 but workspace is NULL",
                            false);
  }
  SUBCASE("misaligned") {
    alignas(256) static unsigned char scratch[512];
    f.args.workspace = scratch + 8;
    f.args.workspace_size = 256;
    expect_forward_rejected(f, FLASHPORT_STATUS_INVALID_ARGUMENT, "is not 256-byte aligned", false);
  }
}

TEST_CASE("dispatch: no backend, or an unknown forced backend") {
  Forward f;
  SUBCASE("unknown backend named in args") {
    f.args.backend = "nosuch";
    expect_forward_rejected(f, FLASHPORT_STATUS_BACKEND_UNAVAILABLE, "\"nosuch\" (forced by args->backend) is not known");
    CHECK(last_error_has("cpu"));  // the message lists the known ones
  }
  SUBCASE("unknown backend named in FLASHPORT_BACKEND") {
    setenv("FLASHPORT_BACKEND", "nosuch", 1);
    expect_forward_rejected(f, FLASHPORT_STATUS_BACKEND_UNAVAILABLE, "(forced by env FLASHPORT_BACKEND)");
    unsetenv("FLASHPORT_BACKEND");
  }
  SUBCASE("args->backend wins over FLASHPORT_BACKEND") {
    setenv("FLASHPORT_BACKEND", "nosuch", 1);
    f.args.backend = "cpu";
    CHECK(flashport_forward(&f.args) == FLASHPORT_STATUS_OK);
    unsetenv("FLASHPORT_BACKEND");
  }
  SUBCASE("forcing a backend of another device type") {
    f.args.backend = "cuda";  // unavailable here, or (with a GPU) unable to run CPU tensors
    const flashport_status st = flashport_forward(&f.args);
    CHECK((st == FLASHPORT_STATUS_BACKEND_UNAVAILABLE || st == FLASHPORT_STATUS_NO_BACKEND));
    CHECK(last_error_has("\"cuda\""));
    CHECK(f.outputs_untouched());
  }
  SUBCASE("CPU device 1 does not exist") {
    for (flashport_tensor* t : {&f.args.q, &f.args.k, &f.args.v, &f.args.out, &f.args.lse}) t->device_id = 1;
    expect_forward_rejected(f, FLASHPORT_STATUS_NO_BACKEND, "cpu: device 1 requested but it has 1 usable device");
  }
  SUBCASE("ROCm tensors with no usable hip backend") {
    for (flashport_tensor* t : {&f.args.q, &f.args.k, &f.args.v, &f.args.out, &f.args.lse})
      t->device_type = FLASHPORT_DEVICE_ROCM;
    expect_forward_rejected(f, FLASHPORT_STATUS_NO_BACKEND, "no backend can run this request on ROCm device 0: hip: ");
  }
}

TEST_CASE("validation: a successful call clears last_error") {
  Forward f;
  f.args.causal = 3;
  CHECK(flashport_forward(&f.args) == FLASHPORT_STATUS_INVALID_ARGUMENT);
  CHECK(std::string(flashport_last_error()) != "");
  f.args.causal = 1;
  CHECK(flashport_forward(&f.args) == FLASHPORT_STATUS_OK);
  CHECK(std::string(flashport_last_error()) == "");
  CHECK_FALSE(f.out.untouched());
  CHECK_FALSE(f.lse.untouched());
}

TEST_CASE("validation: lse is optional in forward, and data may be NULL in workspace queries") {
  Forward f;
  f.args.lse = flashport_tensor{};  // absent
  CHECK(flashport_forward(&f.args) == FLASHPORT_STATUS_OK);
  CHECK(f.lse.untouched());
  Backward b;
  for (flashport_tensor* t : {&b.args.dout, &b.args.q, &b.args.k, &b.args.v, &b.args.out, &b.args.lse, &b.args.dq,
                              &b.args.dk, &b.args.dv})
    t->data = nullptr;
  size_t bytes = kUnwritten;
  CHECK(flashport_backward_workspace_size(&b.args, &bytes) == FLASHPORT_STATUS_OK);
  CHECK(bytes != kUnwritten);
}
