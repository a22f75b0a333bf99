// The backend registry: the built-in CPU backend first, then the GPU modules (libflashport_cuda.so,
// libflashport_hip.so) and any FLASHPORT_EXTRA_MODULES. Built once, under std::call_once, on first use; read-only
// (and so safe to share between threads) afterwards. Entries and their strings live until the process exits.
#ifndef FLASHPORT_DISPATCH_REGISTRY_H
#define FLASHPORT_DISPATCH_REGISTRY_H

#include <cstdint>
#include <string>
#include <vector>

#include "dispatch/backend_abi.h"

namespace flashport {

struct BackendEntry {
  std::string name;
  int32_t device_type = 0;                         // 0 when a module failed before saying what it serves
  const flashport_backend_iface* iface = nullptr;  // NULL: the backend could not be loaded
  int32_t device_count = 0;                        // from probe(), called once at registration
  std::string status_message;                      // why it is unavailable, or its description
  std::string module_path;                         // "" for built-in backends

  bool available() const { return iface != nullptr && device_count > 0; }
};

// Every known backend in registration order, loaded or not.
const std::vector<BackendEntry>& registry();

// The entry named `name`, or NULL.
const BackendEntry* find_backend(const char* name);

}  // namespace flashport

#endif
