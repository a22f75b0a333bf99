#include "memory_probe.h"

#include <malloc.h>

#include <cstdio>
#include <cstring>

namespace flashport::bench {
namespace {

// A field of /proc/self/status in kB ("VmRSS", "VmHWM"), or -1.
int64_t status_kb(const char* key) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  int64_t value = -1;
  const size_t key_len = std::strlen(key);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, key, key_len) == 0 && line[key_len] == ':') {
      long long kb = -1;
      if (std::sscanf(line + key_len + 1, "%lld", &kb) == 1) value = kb;
      break;
    }
  }
  std::fclose(f);
  return value;
}

bool reset_high_water_mark() {
  FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

const char* memory_probe_method() {
  return "peak extra memory = VmHWM growth over VmRSS across one untimed call, after malloc_trim and a VmHWM reset "
         "(/proc/self/clear_refs 5); inputs/outputs allocated and touched before; page resolution";
}

int64_t peak_extra_bytes(const std::function<void()>& fn) {
  malloc_trim(0);
  if (!reset_high_water_mark()) {
    fn();
    return -1;
  }
  const int64_t before = status_kb("VmRSS");
  fn();
  const int64_t peak = status_kb("VmHWM");
  if (before < 0 || peak < 0) return -1;
  return peak > before ? (peak - before) * 1024 : 0;
}

}  // namespace flashport::bench
