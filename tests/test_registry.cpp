// Backend enumeration: the built-in CPU backend and the GPU modules, loaded or not.
#include <doctest/doctest.h>

#include <string>

#include "flashport/flashport.h"

namespace {

// The info of the backend named `name`; info.name stays NULL when there is none.
flashport_backend_info find(const char* name) {
  flashport_backend_info info;
  flashport_backend_info_init(&info);
  const int32_t count = flashport_backend_count();
  for (int32_t i = 0; i < count; ++i) {
    flashport_backend_info candidate;
    flashport_backend_info_init(&candidate);
    REQUIRE(flashport_backend_info_get(i, &candidate) == FLASHPORT_STATUS_OK);
    if (std::string(candidate.name) == name) return candidate;
  }
  return info;
}

}  // namespace

TEST_CASE("registry: cpu is built in and available") {
  CHECK(flashport_backend_count() >= 3);
  flashport_backend_info first;
  flashport_backend_info_init(&first);
  REQUIRE(flashport_backend_info_get(0, &first) == FLASHPORT_STATUS_OK);
  CHECK(std::string(first.name) == "cpu");  // registered first
  CHECK(first.device_type == FLASHPORT_DEVICE_CPU);
  CHECK(first.available == 1);
  CHECK(first.device_count == 1);
  CHECK(std::string(first.module_path) == "");
  CHECK(first.status_message != nullptr);
}

TEST_CASE("registry: cuda and hip are always listed, with a reason when unavailable") {
  struct Expected {
    const char* name;
    int32_t device_type;
  };
  for (const Expected& e : {Expected{"cuda", FLASHPORT_DEVICE_CUDA}, Expected{"hip", FLASHPORT_DEVICE_ROCM}}) {
    const flashport_backend_info info = find(e.name);
    INFO("backend ", e.name);
    REQUIRE(info.name != nullptr);
    CHECK(info.device_type == e.device_type);
    REQUIRE(info.status_message != nullptr);
    REQUIRE(info.module_path != nullptr);
    if (info.available == 0) {
      CHECK(info.device_count == 0);
      CHECK(std::string(info.status_message) != "");
    } else {
      CHECK(info.device_count >= 1);
      CHECK(std::string(info.module_path) != "");
    }
  }
}

TEST_CASE("registry: strings stay valid and entries are stable") {
  flashport_backend_info a, b;
  flashport_backend_info_init(&a);
  flashport_backend_info_init(&b);
  REQUIRE(flashport_backend_info_get(1, &a) == FLASHPORT_STATUS_OK);
  REQUIRE(flashport_backend_info_get(1, &b) == FLASHPORT_STATUS_OK);
  CHECK(a.name == b.name);  // the same storage, owned by the library for the life of the process
  CHECK(a.status_message == b.status_message);
}

TEST_CASE("registry: bad arguments") {
  flashport_backend_info info;
  flashport_backend_info_init(&info);
  const int32_t count = flashport_backend_count();
  CHECK(flashport_backend_info_get(count, &info) == FLASHPORT_STATUS_INVALID_ARGUMENT);
  CHECK(std::string(flashport_last_error()).find("out of range") != std::string::npos);
  CHECK(info.name == nullptr);  // not written on error
  CHECK(flashport_backend_info_get(-1, &info) == FLASHPORT_STATUS_INVALID_ARGUMENT);
  CHECK(flashport_backend_info_get(0, nullptr) == FLASHPORT_STATUS_INVALID_ARGUMENT);
  CHECK(std::string(flashport_last_error()).find("info is NULL") != std::string::npos);
  info.struct_size = 0;
  CHECK(flashport_backend_info_get(0, &info) == FLASHPORT_STATUS_STRUCT_SIZE);
  info.struct_size = sizeof info + 8;
  CHECK(flashport_backend_info_get(0, &info) == FLASHPORT_STATUS_STRUCT_SIZE);
  CHECK(info.name == nullptr);
  flashport_backend_info_init_sized(nullptr, sizeof(flashport_backend_info));
  flashport_backend_info_init(&info);
  CHECK(flashport_backend_info_get(0, &info) == FLASHPORT_STATUS_OK);
  CHECK(std::string(flashport_last_error()) == "");
}
