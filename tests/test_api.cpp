// The small parts of the public API: versions, status strings, init defaults, struct_size handling and the
// workspace-size queries.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "dispatch_fixture.h"

TEST_CASE("api: versions") {
  CHECK(flashport_version() == FLASHPORT_VERSION_NUMBER);
  CHECK(flashport_version() == 100);
  CHECK(std::string(flashport_version_string()) == "0.1.0");
  CHECK(flashport_abi_version() == FLASHPORT_ABI_VERSION);
}

TEST_CASE("api: status strings") {
  const flashport_status all[] = {
      FLASHPORT_STATUS_OK,           FLASHPORT_STATUS_INVALID_ARGUMENT,    FLASHPORT_STATUS_STRUCT_SIZE,
      FLASHPORT_STATUS_SHAPE_MISMATCH, FLASHPORT_STATUS_DTYPE_MISMATCH,    FLASHPORT_STATUS_DEVICE_MISMATCH,
      FLASHPORT_STATUS_OVERFLOW,     FLASHPORT_STATUS_ALIASING,            FLASHPORT_STATUS_UNSUPPORTED,
      FLASHPORT_STATUS_NO_BACKEND,   FLASHPORT_STATUS_BACKEND_UNAVAILABLE, FLASHPORT_STATUS_WORKSPACE_TOO_SMALL,
      FLASHPORT_STATUS_OUT_OF_MEMORY, FLASHPORT_STATUS_DEVICE_ERROR,       FLASHPORT_STATUS_INTERNAL};
  std::set<std::string> names;
  for (flashport_status s : all) {
    const std::string name = flashport_status_string(s);
    CHECK(name.rfind("FLASHPORT_STATUS_", 0) == 0);
    names.insert(name);
  }
  CHECK(names.size() == sizeof all / sizeof all[0]);
  CHECK(std::string(flashport_status_string(FLASHPORT_STATUS_SHAPE_MISMATCH)) == "FLASHPORT_STATUS_SHAPE_MISMATCH");
  for (int unknown : {-1, 1, 29, 60, 12345})
    CHECK(std::string(flashport_status_string(static_cast<flashport_status>(unknown))) == "unknown status");
}

TEST_CASE("api: last_error is never NULL and pure helpers leave it alone") {
  CHECK(flashport_last_error() != nullptr);
  CHECK(flashport_forward(nullptr) == FLASHPORT_STATUS_INVALID_ARGUMENT);
  const std::string message = flashport_last_error();
  CHECK(!message.empty());
  // So that printf("%s: %s", flashport_status_string(s), flashport_last_error()) works in any evaluation order.
  flashport_status_string(FLASHPORT_STATUS_OK);
  flashport_version();
  CHECK(std::string(flashport_last_error()) == message);
}

namespace {

// The options forward and backward args share, as *_init() leaves them.
template <class Args>
void check_option_defaults(const Args& a) {
  CHECK(a.softmax_scale == 0.0f);
  CHECK(a.softcap == 0.0f);
  CHECK(a.causal == 0);
  CHECK(a.mask_alignment == FLASHPORT_ALIGN_BOTTOM_RIGHT);
  CHECK(a.window_left == -1);
  CHECK(a.window_right == -1);
  CHECK(a.stream == nullptr);
  CHECK(a.workspace == nullptr);
  CHECK(a.workspace_size == 0);
  CHECK(a.backend == nullptr);
}

}  // namespace

TEST_CASE("api: forward_args_init defaults") {
  flashport_forward_args a;
  std::memset(&a, 0x5A, sizeof a);
  flashport_forward_args_init(&a);
  CHECK(a.struct_size == sizeof a);
  for (const flashport_tensor* t : {&a.q, &a.k, &a.v, &a.out, &a.lse}) {
    CHECK(t->data == nullptr);
    CHECK(t->dtype == 0);
    CHECK(t->reserved_ == 0);
  }
  check_option_defaults(a);
  flashport_forward_args_init_sized(nullptr, sizeof(flashport_forward_args));  // does nothing
}

TEST_CASE("api: backward_args_init defaults") {
  flashport_backward_args a;
  std::memset(&a, 0x5A, sizeof a);
  flashport_backward_args_init(&a);
  CHECK(a.struct_size == sizeof a);
  for (const flashport_tensor* t : {&a.dout, &a.q, &a.k, &a.v, &a.out, &a.lse, &a.dq, &a.dk, &a.dv})
    CHECK(t->data == nullptr);
  check_option_defaults(a);
  CHECK(a.deterministic == 0);
  flashport_backward_args_init_sized(nullptr, sizeof(flashport_backward_args));
}

TEST_CASE("api: tensor and lse init helpers") {
  float data[1];
  flashport_tensor t;
  std::memset(&t, 0x5A, sizeof t);
  flashport_tensor_init_contiguous(&t, data, FLASHPORT_DTYPE_BF16, FLASHPORT_DEVICE_CUDA, 3, 2, 5, 4, 8);
  CHECK(t.data == data);
  CHECK(t.dtype == FLASHPORT_DTYPE_BF16);
  CHECK(t.device_type == FLASHPORT_DEVICE_CUDA);
  CHECK(t.device_id == 3);
  CHECK(t.reserved_ == 0);
  const int64_t shape[] = {2, 5, 4, 8}, strides[] = {160, 32, 8, 1};
  for (int d = 0; d < 4; ++d) {
    CHECK(t.shape[d] == shape[d]);
    CHECK(t.strides[d] == strides[d]);
  }
  flashport_lse_init_contiguous(&t, data, FLASHPORT_DEVICE_CPU, 0, 2, 4, 5);
  CHECK(t.dtype == FLASHPORT_DTYPE_F32);
  const int64_t lse_shape[] = {2, 4, 5, 1}, lse_strides[] = {20, 5, 1, 1};
  for (int d = 0; d < 4; ++d) {
    CHECK(t.shape[d] == lse_shape[d]);
    CHECK(t.strides[d] == lse_strides[d]);
  }
  flashport_tensor_init_contiguous(nullptr, data, FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 1, 1, 1);
  flashport_lse_init_contiguous(nullptr, data, FLASHPORT_DEVICE_CPU, 0, 1, 1, 1);
}

TEST_CASE("api: a caller's struct is read no further than its struct_size") {
  // An exactly sized heap copy of the v0.1 layout: any read past struct_size is a heap overflow (caught by the
  // sanitizer build), and the library fills in defaults for everything after it.
  dispatch_test::Backward b;
  const size_t v01 = offsetof(flashport_backward_args, deterministic) + sizeof(int32_t);
  void* exact = std::malloc(v01);
  REQUIRE(exact != nullptr);
  b.args.struct_size = v01;
  std::memcpy(exact, &b.args, v01);
  CHECK(flashport_backward(static_cast<const flashport_backward_args*>(exact)) == FLASHPORT_STATUS_OK);
  CHECK(std::string(flashport_last_error()) == "");
  CHECK_FALSE(b.outputs_untouched());
  std::free(exact);

  dispatch_test::Forward f;
  exact = std::malloc(sizeof f.args);  // v0.1 of the forward args is the whole struct
  REQUIRE(exact != nullptr);
  std::memcpy(exact, &f.args, sizeof f.args);
  CHECK(flashport_forward(static_cast<const flashport_forward_args*>(exact)) == FLASHPORT_STATUS_OK);
  std::free(exact);
}

TEST_CASE("api: workspace-size queries") {
  dispatch_test::Forward f;
  size_t bytes = 12345;
  CHECK(flashport_forward_workspace_size(&f.args, &bytes) == FLASHPORT_STATUS_OK);
  CHECK(bytes != 12345);
  CHECK(std::string(flashport_last_error()) == "");
  // The query needs no memory: the same request without data pointers gives the same answer.
  size_t without_data = 12345;
  for (flashport_tensor* t : {&f.args.q, &f.args.k, &f.args.v, &f.args.out}) t->data = nullptr;
  f.args.lse.data = nullptr;  // lse not requested
  CHECK(flashport_forward_workspace_size(&f.args, &without_data) == FLASHPORT_STATUS_OK);

  dispatch_test::Backward b;
  size_t bwd = 12345;
  CHECK(flashport_backward_workspace_size(&b.args, &bwd) == FLASHPORT_STATUS_OK);
  CHECK(bwd != 12345);
  // A workspace of exactly the queried size is accepted.
  if (bwd > 0) {
    void* ws = std::aligned_alloc(256, (bwd + 255) / 256 * 256);
    REQUIRE(ws != nullptr);
    b.args.workspace = ws;
    b.args.workspace_size = bwd;
    CHECK(flashport_backward(&b.args) == FLASHPORT_STATUS_OK);
    std::free(ws);
  }
}

TEST_CASE("api: *_init_sized never writes past the caller's struct (an older, smaller caller)") {
  // A caller built against an older header: its struct ends before our last field. The bytes after it belong to
  // someone else and must keep their sentinel.
  const size_t older = offsetof(flashport_backward_args, deterministic);
  std::vector<unsigned char> buffer(sizeof(flashport_backward_args) + 16, 0xAB);
  auto* args = reinterpret_cast<flashport_backward_args*>(buffer.data());
  flashport_backward_args_init_sized(args, older);
  CHECK(args->struct_size == older);
  CHECK(args->window_left == -1);
  CHECK(args->mask_alignment == FLASHPORT_ALIGN_BOTTOM_RIGHT);
  for (size_t i = older; i < buffer.size(); ++i) CHECK(buffer[i] == 0xAB);

  std::vector<unsigned char> info_buffer(sizeof(flashport_backend_info) + 16, 0xCD);
  const size_t info_older = offsetof(flashport_backend_info, module_path);
  flashport_backend_info_init_sized(reinterpret_cast<flashport_backend_info*>(info_buffer.data()), info_older);
  CHECK(reinterpret_cast<flashport_backend_info*>(info_buffer.data())->struct_size == info_older);
  for (size_t i = info_older; i < info_buffer.size(); ++i) CHECK(info_buffer[i] == 0xCD);
}

TEST_CASE("api: *_init_sized zeroes the tail of a newer, larger caller's struct") {
  const size_t newer = sizeof(flashport_forward_args) + 24;
  std::vector<unsigned char> buffer(newer, 0xEF);
  auto* args = reinterpret_cast<flashport_forward_args*>(buffer.data());
  flashport_forward_args_init_sized(args, newer);
  CHECK(args->struct_size == newer);
  for (size_t i = sizeof(flashport_forward_args); i < newer; ++i) CHECK(buffer[i] == 0);
  // ...and such a struct is then refused by the call, saying the library is older than the caller's header.
  CHECK(flashport_forward(args) == FLASHPORT_STATUS_STRUCT_SIZE);
  CHECK(std::string(flashport_last_error()).find("newer flashport header") != std::string::npos);
}
