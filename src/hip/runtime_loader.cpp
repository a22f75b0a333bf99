#include "hip/runtime_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace flashport::hip {
namespace {

constexpr const char* kDefaultRuntimes[] = {"libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so.5"};

std::vector<std::string> candidates() {
  std::vector<std::string> out;
  const char* env = std::getenv("FLASHPORT_HIP_RUNTIME");
  if (env != nullptr && env[0] != '\0') {
    // An explicit choice replaces the defaults: a user pinning one ROCm installation wants a wrong path reported,
    // not silently replaced by whichever runtime the loader finds first.
    const std::string list(env);
    size_t start = 0;
    while (start <= list.size()) {
      size_t end = list.find(':', start);
      if (end == std::string::npos) end = list.size();
      if (end > start) out.push_back(list.substr(start, end - start));
      start = end + 1;
    }
    if (!out.empty()) return out;
  }
  for (const char* name : kDefaultRuntimes) out.emplace_back(name);
  return out;
}

template <class Fn>
bool bind(void* handle, const char* symbol, Fn* slot, std::string* missing) {
  *slot = reinterpret_cast<Fn>(::dlsym(handle, symbol));
  if (*slot == nullptr) *missing += (missing->empty() ? "" : ", ") + std::string(symbol);
  return *slot != nullptr;
}

HipRuntime load() {
  HipRuntime rt;
  std::string tried;
  for (const std::string& name : candidates()) {
    // RTLD_LOCAL: the runtime's symbols must not satisfy anyone else's lookups (a process may hold another copy).
    void* handle = ::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* err = ::dlerror();
      tried += (tried.empty() ? "" : "; ") + name + " (" + (err != nullptr ? err : "dlopen failed") + ")";
      continue;
    }
    HipApi& a = rt.api;
    std::string missing;
    bind(handle, "hipGetDeviceCount", &a.GetDeviceCount, &missing);
    bind(handle, "hipGetDevice", &a.GetDevice, &missing);
    bind(handle, "hipSetDevice", &a.SetDevice, &missing);
    // ROCm 6 renamed the entry point that fills its new struct layout; ROCm 5 has only the plain name.
    a.GetDeviceProperties =
        reinterpret_cast<decltype(a.GetDeviceProperties)>(::dlsym(handle, "hipGetDevicePropertiesR0600"));
    if (a.GetDeviceProperties == nullptr) bind(handle, "hipGetDeviceProperties", &a.GetDeviceProperties, &missing);
    bind(handle, "hipGetErrorString", &a.GetErrorString, &missing);
    bind(handle, "hipGetErrorName", &a.GetErrorName, &missing);
    bind(handle, "hipModuleLoadData", &a.ModuleLoadData, &missing);
    bind(handle, "hipModuleGetFunction", &a.ModuleGetFunction, &missing);
    bind(handle, "hipModuleLaunchKernel", &a.ModuleLaunchKernel, &missing);
    bind(handle, "hipMalloc", &a.Malloc, &missing);
    bind(handle, "hipFree", &a.Free, &missing);
    bind(handle, "hipMemcpy", &a.Memcpy, &missing);
    bind(handle, "hipStreamSynchronize", &a.StreamSynchronize, &missing);
    if (!missing.empty()) {
      tried += (tried.empty() ? "" : "; ") + name + " (loaded, but lacks " + missing + ")";
      ::dlclose(handle);
      rt.api = HipApi{};
      continue;
    }
    std::string optional;
    if (!bind(handle, "hipMallocAsync", &a.MallocAsync, &optional) ||
        !bind(handle, "hipFreeAsync", &a.FreeAsync, &optional)) {
      a.MallocAsync = nullptr;
      a.FreeAsync = nullptr;
    }
    // Kept open for the life of the process: kernels, modules and the caller's streams belong to it.
    rt.loaded = true;
    rt.path = name;
    return rt;
  }
  const char* env = std::getenv("FLASHPORT_HIP_RUNTIME");
  rt.failure = "tried " + tried +
               (env != nullptr && env[0] != '\0' ? " (only the paths in FLASHPORT_HIP_RUNTIME are tried when it is set)"
                                                 : " (FLASHPORT_HIP_RUNTIME may name the runtime's path)");
  return rt;
}

}  // namespace

std::string runtime_candidates_description() {
  std::string out;
  for (const std::string& c : candidates()) out += (out.empty() ? "" : ", ") + c;
  return out;
}

const HipRuntime& hip_runtime() {
  static std::once_flag once;
  static HipRuntime* rt = nullptr;
  // Never destroyed: device memory may still be freed through it from atexit handlers.
  std::call_once(once, [] { rt = new HipRuntime(load()); });
  return *rt;
}

std::string error_text(const HipRuntime& rt, hipError_t error) {
  std::string out;
  const char* name = rt.loaded ? rt.api.GetErrorName(error) : nullptr;
  const char* text = rt.loaded ? rt.api.GetErrorString(error) : nullptr;
  out += name != nullptr ? name : "hipError";
  out += " (" + std::to_string(error) + ")";
  if (text != nullptr && text[0] != '\0') out += std::string(": ") + text;
  return out;
}

bool device_arch_name(const HipRuntime& rt, int device, std::string* arch, std::string* why) {
  // hipDeviceProp_t is about 800 bytes in ROCm 5 and 1.5 KB in ROCm 6 (R0600), with gcnArchName at different
  // offsets. Rather than hard-code either layout, pass a zeroed buffer larger than both and take the architecture
  // field by its content: the first NUL-terminated "gfx<hex digits>..." string after the 256-byte device name.
  constexpr size_t kPropsBytes = 16384;
  std::vector<char> props(kPropsBytes, 0);
  const hipError_t e = rt.api.GetDeviceProperties(props.data(), device);
  if (e != kHipSuccess) {
    *why = "hipGetDeviceProperties(" + std::to_string(device) + ") returned " + error_text(rt, e);
    return false;
  }
  constexpr size_t kNameBytes = 256;
  constexpr size_t kArchBytes = 256;
  for (size_t o = kNameBytes; o + kArchBytes <= kPropsBytes; ++o) {
    if (props[o - 1] != '\0' || std::strncmp(&props[o], "gfx", 3) != 0) continue;
    const char c = props[o + 3];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) continue;
    const size_t len = ::strnlen(&props[o], kArchBytes);
    if (len == kArchBytes) continue;
    *arch = std::string(&props[o], len);
    return true;
  }
  *why = "the runtime reported no gfx architecture name for device " + std::to_string(device);
  return false;
}

}  // namespace flashport::hip
