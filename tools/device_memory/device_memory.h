// flashport_device_memory: move data to and from a backend's device without linking any GPU runtime.
//
// Host tools (flashport-bench, flashport-check, the conformance suite) need device buffers for the CUDA and HIP
// backends, but must not depend on libcudart or libamdhip64: those modules are optional and loaded at run time.
// This library asks the public API where a backend's module lives (flashport_backend_info.module_path), opens that
// same module, and uses the optional device-memory slots of its backend table (src/dispatch/backend_abi.h). For a
// CPU backend it hands out plain, 256-byte aligned host memory, so callers write one code path for every backend.
//
// Not part of the installed API: the backend table it reads is internal to this repository.
// Thread safety: a DeviceMemory may be used from several threads if the backend's slots allow it (CUDA's and HIP's
// runtimes do); device_memory_for() may be called concurrently.
#ifndef FLASHPORT_TOOLS_DEVICE_MEMORY_H
#define FLASHPORT_TOOLS_DEVICE_MEMORY_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace flashport::tools {

// Memory of one device of one backend. Every operation returns false (or nullptr) with a reason in *why (which may
// be null) instead of throwing or aborting.
class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;

  // The backend's name ("cpu", "cuda", ...), its flashport_device_type and the device ordinal used for tensors.
  const std::string& backend() const { return backend_; }
  int32_t device_type() const { return device_type_; }
  int32_t device_id() const { return device_id_; }
  // True for host memory: device pointers may then be read and written directly.
  bool is_host() const;

  // Allocate `bytes` (at least 256-byte aligned, as the API's workspace rule asks); nullptr on failure.
  virtual void* alloc(size_t bytes, std::string* why) = 0;
  // Free what alloc() returned; nullptr is accepted.
  virtual bool free(void* ptr, std::string* why) = 0;
  // Synchronous copies between host memory and this device's memory.
  virtual bool upload(void* device_dst, const void* host_src, size_t bytes, std::string* why) = 0;
  virtual bool download(void* host_dst, const void* device_src, size_t bytes, std::string* why) = 0;
  // Wait for all work queued on `stream` (nullptr = default stream) and report asynchronous errors. Timing loops
  // call it around batches of launches. A no-op for host memory.
  virtual bool synchronize(void* stream, std::string* why) = 0;

 protected:
  DeviceMemory(std::string backend, int32_t device_type, int32_t device_id)
      : backend_(std::move(backend)), device_type_(device_type), device_id_(device_id) {}

 private:
  std::string backend_;
  int32_t device_type_;
  int32_t device_id_;
};

// Memory for backend `backend` (a name as listed by flashport_backend_info_get) on device `device_id`.
// Returns nullptr with the reason in *why when the backend is unknown or unavailable, its module cannot be opened,
// or it has no device-memory slots.
std::unique_ptr<DeviceMemory> device_memory_for(const char* backend, std::string* why, int32_t device_id = 0);

// An owning buffer: frees itself through its DeviceMemory (which must outlive it). Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // Allocates; check ok() (or get() != nullptr) and *why afterwards.
  DeviceBuffer(DeviceMemory& memory, size_t bytes, std::string* why);
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }

  void* get() const { return ptr_; }
  size_t size() const { return bytes_; }
  bool ok() const { return ptr_ != nullptr || bytes_ == 0; }
  // Copy the whole buffer from / to host memory of size() bytes.
  bool upload(const void* host_src, std::string* why) const;
  bool download(void* host_dst, std::string* why) const;
  void reset();

 private:
  DeviceMemory* memory_ = nullptr;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace flashport::tools

#endif
