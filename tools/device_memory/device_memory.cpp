#include "device_memory.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "dispatch/backend_abi.h"
#include "flashport/flashport.h"

namespace flashport::tools {
namespace {

void set_why(std::string* why, std::string text) {
  if (why != nullptr) *why = std::move(text);
}

// Host memory for CPU backends: the API's workspace alignment (256 bytes) so that any tensor or workspace fits.
class HostMemory final : public DeviceMemory {
 public:
  HostMemory(std::string backend, int32_t device_type) : DeviceMemory(std::move(backend), device_type, 0) {}

  void* alloc(size_t bytes, std::string* why) override {
    constexpr size_t kAlign = 256;
    // aligned_alloc needs a size that is a multiple of the alignment; 0 bytes still gets a valid, freeable pointer.
    const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
    if (p == nullptr) set_why(why, "host allocation of " + std::to_string(bytes) + " bytes failed");
    return p;
  }
  bool free(void* ptr, std::string*) override {
    std::free(ptr);
    return true;
  }
  bool upload(void* dst, const void* src, size_t bytes, std::string*) override {
    if (bytes != 0) std::memcpy(dst, src, bytes);
    return true;
  }
  bool download(void* dst, const void* src, size_t bytes, std::string*) override {
    if (bytes != 0) std::memcpy(dst, src, bytes);
    return true;
  }
  bool synchronize(void*, std::string*) override { return true; }
};

// Memory through a module's backend table. Keeps its own dlopen reference so the table stays mapped even if the
// core were to unload the module.
class ModuleMemory final : public DeviceMemory {
 public:
  ModuleMemory(std::string backend, int32_t device_type, int32_t device_id, void* handle,
               const flashport_backend_iface* iface)
      : DeviceMemory(std::move(backend), device_type, device_id), handle_(handle), iface_(iface) {}
  ~ModuleMemory() override { dlclose(handle_); }

  void* alloc(size_t bytes, std::string* why) override {
    void* p = nullptr;
    if (!check(iface_->mem_alloc(device_id(), bytes, &p, err_, sizeof err_), "mem_alloc", why)) return nullptr;
    return p;
  }
  bool free(void* ptr, std::string* why) override {
    return check(iface_->mem_free(device_id(), ptr, err_, sizeof err_), "mem_free", why);
  }
  bool upload(void* dst, const void* src, size_t bytes, std::string* why) override {
    return check(iface_->mem_copy(device_id(), dst, src, bytes, 1, err_, sizeof err_), "mem_copy to device", why);
  }
  bool download(void* dst, const void* src, size_t bytes, std::string* why) override {
    return check(iface_->mem_copy(device_id(), dst, src, bytes, 0, err_, sizeof err_), "mem_copy to host", why);
  }
  bool synchronize(void* stream, std::string* why) override {
    return check(iface_->synchronize(device_id(), stream, err_, sizeof err_), "synchronize", why);
  }

 private:
  bool check(int32_t status, const char* what, std::string* why) {
    if (status == FLASHPORT_STATUS_OK) return true;
    err_[sizeof err_ - 1] = '\0';
    set_why(why, backend() + " " + what + ": " + flashport_status_string(static_cast<flashport_status>(status)) +
                     (err_[0] != '\0' ? std::string(": ") + err_ : std::string()));
    err_[0] = '\0';
    return false;
  }

  void* handle_;
  const flashport_backend_iface* iface_;
  // Per-object scratch for messages; a DeviceMemory used from several threads may interleave messages, never
  // memory errors, since each slot writes at most sizeof err_ bytes.
  char err_[FLASHPORT_MESSAGE_CAPACITY] = {};
};

}  // namespace

bool DeviceMemory::is_host() const { return device_type_ == FLASHPORT_DEVICE_CPU; }

std::unique_ptr<DeviceMemory> device_memory_for(const char* backend, std::string* why, int32_t device_id) {
  if (backend == nullptr || backend[0] == '\0') {
    set_why(why, "no backend name given");
    return nullptr;
  }
  const int32_t count = flashport_backend_count();
  std::string known;
  for (int32_t i = 0; i < count; ++i) {
    flashport_backend_info info;
    flashport_backend_info_init(&info);
    if (flashport_backend_info_get(i, &info) != FLASHPORT_STATUS_OK) continue;
    const std::string name = info.name != nullptr ? info.name : "";
    known += (known.empty() ? "" : ", ") + name;
    if (name != backend) continue;

    if (info.device_type == FLASHPORT_DEVICE_CPU) return std::make_unique<HostMemory>(name, info.device_type);

    const std::string status = info.status_message != nullptr ? info.status_message : "";
    if (!info.available) {
      set_why(why, "backend '" + name + "' is not available: " + status);
      return nullptr;
    }
    if (device_id < 0 || device_id >= info.device_count) {
      set_why(why, "backend '" + name + "' has " + std::to_string(info.device_count) + " device(s); device " +
                       std::to_string(device_id) + " requested");
      return nullptr;
    }
    if (info.module_path == nullptr || info.module_path[0] == '\0') {
      set_why(why, "backend '" + name + "' is built in but not a CPU backend; no module to take device memory from");
      return nullptr;
    }
    // RTLD_NOLOAD first: the core has already loaded the module, and reusing that copy keeps one runtime state.
    void* handle = dlopen(info.module_path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (handle == nullptr) handle = dlopen(info.module_path, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* e = dlerror();
      set_why(why, "cannot open module " + std::string(info.module_path) + ": " + (e != nullptr ? e : "?"));
      return nullptr;
    }
    auto init = reinterpret_cast<flashport_module_init_fn>(dlsym(handle, FLASHPORT_MODULE_INIT_SYMBOL));
    if (init == nullptr) {
      set_why(why, std::string("module ") + info.module_path + " does not export " + FLASHPORT_MODULE_INIT_SYMBOL);
      dlclose(handle);
      return nullptr;
    }
    flashport_module module{};
    char init_why[FLASHPORT_MESSAGE_CAPACITY] = {};
    if (init(FLASHPORT_MODULE_ABI_VERSION, &module, init_why, sizeof init_why) != 0 ||
        module.abi_version != FLASHPORT_MODULE_ABI_VERSION) {
      init_why[sizeof init_why - 1] = '\0';
      set_why(why, std::string("module ") + info.module_path + " refused initialisation: " +
                       (init_why[0] != '\0' ? init_why : "ABI version mismatch"));
      dlclose(handle);
      return nullptr;
    }
    for (uint32_t b = 0; b < module.backend_count; ++b) {
      const flashport_backend_iface* iface = &module.backends[b];
      if (iface->name == nullptr || name != iface->name) continue;
      if (iface->mem_alloc == nullptr || iface->mem_free == nullptr || iface->mem_copy == nullptr ||
          iface->synchronize == nullptr) {
        set_why(why, "backend '" + name + "' does not provide the device-memory slots (mem_alloc, mem_free, "
                                          "mem_copy, synchronize)");
        dlclose(handle);
        return nullptr;
      }
      return std::make_unique<ModuleMemory>(name, info.device_type, device_id, handle, iface);
    }
    set_why(why, std::string("module ") + info.module_path + " does not contain backend '" + name + "'");
    dlclose(handle);
    return nullptr;
  }
  set_why(why, std::string("unknown backend '") + backend + "' (known: " + (known.empty() ? "none" : known) + ")");
  return nullptr;
}

DeviceBuffer::DeviceBuffer(DeviceMemory& memory, size_t bytes, std::string* why)
    : memory_(&memory), ptr_(memory.alloc(bytes, why)), bytes_(bytes) {
  if (ptr_ == nullptr) bytes_ = 0, memory_ = nullptr;
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : memory_(std::exchange(other.memory_, nullptr)),
      ptr_(std::exchange(other.ptr_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    memory_ = std::exchange(other.memory_, nullptr);
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

bool DeviceBuffer::upload(const void* host_src, std::string* why) const {
  if (memory_ == nullptr) return true;  // an empty buffer has nothing to copy
  return memory_->upload(ptr_, host_src, bytes_, why);
}

bool DeviceBuffer::download(void* host_dst, std::string* why) const {
  if (memory_ == nullptr) return true;  // an empty buffer has nothing to copy
  return memory_->download(host_dst, ptr_, bytes_, why);
}

void DeviceBuffer::reset() {
  if (memory_ != nullptr && ptr_ != nullptr) memory_->free(ptr_, nullptr);
  memory_ = nullptr;
  ptr_ = nullptr;
  bytes_ = 0;
}

}  // namespace flashport::tools
