// Tests of flashport_device_memory: host memory for the CPU backend, clear refusals for unknown and unavailable
// backends, and, on a machine where a GPU backend is available, a round trip through its module's memory slots.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "device_memory.h"
#include "flashport/flashport.h"

using flashport::tools::DeviceBuffer;
using flashport::tools::DeviceMemory;
using flashport::tools::device_memory_for;

namespace {

// Upload a pattern, download it into a poisoned buffer, compare.
void check_round_trip(DeviceMemory& mem) {
  std::vector<float> src(1000), back(1000, -1.0f);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) * 0.5f + 1.0f;
  std::string why;
  DeviceBuffer buf(mem, src.size() * sizeof(float), &why);
  REQUIRE_MESSAGE(buf.ok(), why);
  CHECK(reinterpret_cast<uintptr_t>(buf.get()) % 256 == 0);
  REQUIRE_MESSAGE(buf.upload(src.data(), &why), why);
  REQUIRE_MESSAGE(buf.download(back.data(), &why), why);
  REQUIRE_MESSAGE(mem.synchronize(nullptr, &why), why);
  CHECK(std::memcmp(src.data(), back.data(), src.size() * sizeof(float)) == 0);

  DeviceBuffer moved = std::move(buf);  // ownership moves; the source no longer frees
  CHECK(buf.get() == nullptr);
  CHECK(moved.size() == src.size() * sizeof(float));
}

}  // namespace

TEST_CASE("device_memory: the CPU backend gets host memory") {
  std::string why;
  auto mem = device_memory_for("cpu", &why);
  REQUIRE_MESSAGE(mem != nullptr, why);
  CHECK(mem->is_host());
  CHECK(mem->backend() == "cpu");
  CHECK(mem->device_type() == FLASHPORT_DEVICE_CPU);
  check_round_trip(*mem);
}

TEST_CASE("device_memory: unknown and missing names are refused with a reason") {
  std::string why;
  CHECK(device_memory_for("no-such-backend", &why) == nullptr);
  CHECK(why.find("unknown backend 'no-such-backend'") != std::string::npos);
  CHECK(why.find("cpu") != std::string::npos);  // the message lists the known backends
  why.clear();
  CHECK(device_memory_for(nullptr, &why) == nullptr);
  CHECK(!why.empty());
  CHECK(device_memory_for("", nullptr) == nullptr);  // a null why is allowed
}

TEST_CASE("device_memory: every GPU backend either works or says why not") {
  for (int32_t i = 0; i < flashport_backend_count(); ++i) {
    flashport_backend_info info;
    flashport_backend_info_init(&info);
    REQUIRE(flashport_backend_info_get(i, &info) == FLASHPORT_STATUS_OK);
    if (info.device_type == FLASHPORT_DEVICE_CPU) continue;
    CAPTURE(info.name);
    std::string why;
    auto mem = device_memory_for(info.name, &why);
    if (!info.available) {
      CHECK(mem == nullptr);
      CHECK(why.find("not available") != std::string::npos);
      continue;
    }
    // An available backend without memory slots is allowed, but must say so.
    if (mem == nullptr) {
      CHECK(why.find("device-memory slots") != std::string::npos);
      continue;
    }
    CHECK(!mem->is_host());
    check_round_trip(*mem);
    why.clear();
    CHECK(device_memory_for(info.name, &why, info.device_count) == nullptr);  // one past the last device
    CHECK(why.find("device(s)") != std::string::npos);
  }
}
