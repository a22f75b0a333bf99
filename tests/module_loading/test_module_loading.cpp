// Loads the test modules through FLASHPORT_EXTRA_MODULES: the good one is listed, available and runs when forced;
// the broken ones and a path that does not exist are listed as unavailable with their reasons; CPU
// tensors still go to the built-in "cpu" backend by default.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "dispatch/backend_abi.h"
#include "test_module.h"

namespace {

// ctest sets FLASHPORT_EXTRA_MODULES; this lets the binary also run by hand. Runs before main, so before the
// registry is built.
constexpr const char* kSearchDir = "/nonexistent/flashport-module-dir";
const bool g_env_set = [] {
  setenv("FLASHPORT_EXTRA_MODULES", FLASHPORT_TEST_EXTRA_MODULES, 0);
  setenv("FLASHPORT_MODULE_PATH", kSearchDir, 1);
  return true;
}();

std::vector<flashport_backend_info> all_backends() {
  std::vector<flashport_backend_info> out;
  for (int32_t i = 0; i < flashport_backend_count(); ++i) {
    flashport_backend_info info;
    flashport_backend_info_init(&info);
    REQUIRE(flashport_backend_info_get(i, &info) == FLASHPORT_STATUS_OK);
    out.push_back(info);
  }
  return out;
}

// The entry whose module_path contains `file`; name NULL when none.
flashport_backend_info by_module(const char* file) {
  for (const flashport_backend_info& info : all_backends())
    if (std::string(info.module_path).find(file) != std::string::npos) return info;
  return flashport_backend_info{};
}

bool has(const char* text, const char* needle) { return std::string(text).find(needle) != std::string::npos; }

// A small F32 forward request on CPU tensors; out starts as zeros.
struct Request {
  std::vector<float> q, k, v, out;
  flashport_forward_args args;
  explicit Request(int64_t head_dim = 4) : q(2 * 3 * head_dim, 0.25f), k(2 * 5 * head_dim, 0.5f), v(2 * 5 * 4, 1.0f),
                                           out(2 * 3 * 4, 0.0f) {
    flashport_forward_args_init(&args);
    flashport_tensor_init_contiguous(&args.q, q.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 3, 2, head_dim);
    flashport_tensor_init_contiguous(&args.k, k.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 5, 2, head_dim);
    flashport_tensor_init_contiguous(&args.v, v.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 5, 2, 4);
    flashport_tensor_init_contiguous(&args.out, out.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 3, 2, 4);
  }
  bool out_is(float x) const {
    for (float o : out)
      if (o != x) return false;
    return true;
  }
};

}  // namespace

TEST_CASE("module loading: testmod is listed and available") {
  REQUIRE(g_env_set);
  const flashport_backend_info info = by_module("flashport_testmod.");
  REQUIRE(info.name != nullptr);
  CHECK(std::string(info.name) == testmod::kName);
  CHECK(info.device_type == FLASHPORT_DEVICE_CPU);
  CHECK(info.available == 1);
  CHECK(info.device_count == 1);
  CHECK(std::string(info.status_message) == "test module: writes a constant");
  // Registered after the built-in backends and the known GPU modules.
  const std::vector<flashport_backend_info> all = all_backends();
  CHECK(std::string(all.front().name) == "cpu");
}

TEST_CASE("module loading: a module with another ABI version is listed with the reason") {
  const flashport_backend_info info = by_module("flashport_testmod_broken");
  REQUIRE(info.name != nullptr);
  CHECK(std::string(info.name) == "flashport_testmod_broken");
  CHECK(info.available == 0);
  CHECK(info.device_count == 0);
  INFO(info.status_message);
  const std::string expected = "module abi " + std::to_string(FLASHPORT_MODULE_ABI_VERSION + 1) +
                               ", core abi " + std::to_string(FLASHPORT_MODULE_ABI_VERSION);
  CHECK(has(info.status_message, expected.c_str()));
}

TEST_CASE("module loading: a module file that does not exist is listed with dlopen's reason") {
  const flashport_backend_info info = by_module("libflashport_missing.so");
  REQUIRE(info.name != nullptr);
  CHECK(std::string(info.name) == "flashport_missing");
  CHECK(info.available == 0);
  INFO(info.status_message);
  CHECK(has(info.status_message, "dlopen failed"));
}

TEST_CASE("module loading: a module without the entry point, or whose entry point fails") {
  const flashport_backend_info noinit = by_module("flashport_testmod_noinit");
  REQUIRE(noinit.name != nullptr);
  CHECK(noinit.available == 0);
  CHECK(has(noinit.status_message, "does not export flashport_module_init"));
  const flashport_backend_info initfail = by_module("flashport_testmod_initfail");
  REQUIRE(initfail.name != nullptr);
  CHECK(initfail.available == 0);
  CHECK(has(initfail.status_message, "flashport_module_init failed (returned 3): testmod was told to fail"));
}

TEST_CASE("module loading: a missing GPU module names the directories searched") {
  for (const flashport_backend_info& info : all_backends()) {
    const std::string name = info.name;
    if ((name != "cuda" && name != "hip") || std::string(info.module_path) != "") continue;  // found and loaded
    INFO(info.status_message);
    CHECK(has(info.status_message, "not found"));
    CHECK(has(info.status_message, kSearchDir));  // FLASHPORT_MODULE_PATH first
  }
}

TEST_CASE("module loading: forcing testmod reaches its run()") {
  Request r;
  SUBCASE("through args->backend") { r.args.backend = testmod::kName; }
  SUBCASE("through FLASHPORT_BACKEND") { setenv("FLASHPORT_BACKEND", testmod::kName, 1); }
  CHECK(flashport_forward(&r.args) == FLASHPORT_STATUS_OK);
  unsetenv("FLASHPORT_BACKEND");
  CHECK(std::string(flashport_last_error()) == "");
  CHECK(r.out_is(testmod::kPattern));
}

TEST_CASE("module loading: CPU tensors go to cpu by default") {
  Request r;
  CHECK(flashport_forward(&r.args) == FLASHPORT_STATUS_OK);
  CHECK_FALSE(r.out_is(testmod::kPattern));
  CHECK(r.out_is(1.0f));  // every value row is 1, so attention gives 1 whatever the weights
}

TEST_CASE("module loading: testmod's workspace, refusals and failures") {
  Request r;
  r.args.backend = testmod::kName;
  SUBCASE("workspace query asks the backend") {
    size_t bytes = 0;
    CHECK(flashport_forward_workspace_size(&r.args, &bytes) == FLASHPORT_STATUS_OK);
    CHECK(bytes == testmod::kWorkspaceBytes);
  }
  SUBCASE("a workspace smaller than the backend needs") {
    alignas(256) static unsigned char scratch[testmod::kWorkspaceBytes];
    r.args.workspace = scratch;
    r.args.workspace_size = testmod::kWorkspaceBytes - 256;
    CHECK(flashport_forward(&r.args) == FLASHPORT_STATUS_WORKSPACE_TOO_SMALL);
    INFO(flashport_last_error());
    CHECK(has(flashport_last_error(), "workspace_size = 3840 bytes but backend testmod needs 4096 bytes"));
    CHECK(r.out_is(0.0f));
    r.args.workspace_size = testmod::kWorkspaceBytes;
    CHECK(flashport_forward(&r.args) == FLASHPORT_STATUS_OK);
  }
  SUBCASE("supports() declines: the reason is reported") {
    Request d(testmod::kDeclinedHeadDim);
    d.args.backend = testmod::kName;
    CHECK(flashport_forward(&d.args) == FLASHPORT_STATUS_NO_BACKEND);
    INFO(flashport_last_error());
    CHECK(has(flashport_last_error(), "\"testmod\" (forced by args->backend): testmod declines head_dim_qk 3"));
    CHECK(d.out_is(0.0f));
  }
  SUBCASE("run() errors carry the backend's name") {
    r.args.softcap = testmod::kFailingSoftcap;
    CHECK(flashport_forward(&r.args) == FLASHPORT_STATUS_DEVICE_ERROR);
    INFO(flashport_last_error());
    CHECK(has(flashport_last_error(), "testmod: asked to fail by softcap 7"));
  }
}

// A combine request over Request's out as its one part (out and lse of the combine in their own buffers).
struct CombineRequest {
  Request attention;
  std::vector<float> part_lse, out, lse;
  flashport_tensor parts_out[1], parts_lse[1];
  flashport_combine_args args;
  CombineRequest() : part_lse(2 * 3, 0.0f), out(2 * 3 * 4, -1.0f), lse(2 * 3, -1.0f) {
    for (size_t i = 0; i < attention.out.size(); ++i) attention.out[i] = 0.5f * static_cast<float>(i);
    parts_out[0] = attention.args.out;
    flashport_lse_init_contiguous(&parts_lse[0], part_lse.data(), FLASHPORT_DEVICE_CPU, 0, 1, 2, 3);
    flashport_combine_args_init(&args);
    args.num_parts = 1;
    args.parts_out = parts_out;
    args.parts_lse = parts_lse;
    flashport_tensor_init_contiguous(&args.out, out.data(), FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 3, 2, 4);
    flashport_lse_init_contiguous(&args.lse, lse.data(), FLASHPORT_DEVICE_CPU, 0, 1, 2, 3);
  }
  bool untouched() const {
    for (float x : out)
      if (x != -1.0f) return false;
    for (float x : lse)
      if (x != -1.0f) return false;
    return true;
  }
};

TEST_CASE("module loading: a backend without the combine slots declines combine with the reason") {
  CombineRequest c;
  c.args.backend = testmod::kName;
  CHECK(flashport_combine(&c.args) == FLASHPORT_STATUS_NO_BACKEND);
  INFO(flashport_last_error());
  CHECK(has(flashport_last_error(),
            "\"testmod\" (forced by args->backend): combine is not implemented by this backend yet"));
  CHECK(c.untouched());
  // Not forced: the built-in cpu backend, registered first, runs it (one part with lse 0 is copied through).
  c.args.backend = nullptr;
  CHECK(flashport_combine(&c.args) == FLASHPORT_STATUS_OK);
  CHECK(c.out == c.attention.out);
  CHECK(c.lse == c.part_lse);
}

TEST_CASE("module loading: a table with combine_run but no combine_supports is refused at registration") {
  const flashport_backend_info info = by_module("flashport_testmod_halfcombine");
  REQUIRE(info.name != nullptr);
  CHECK(std::string(info.name) == testmod::kHalfCombineName);
  CHECK(info.available == 0);
  INFO(info.status_message);
  CHECK(has(info.status_message, "has combine_run but no combine_supports slot (combine needs both or neither)"));
}
