#include "dispatch/registry.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

#include "cpu/cpu_backend.h"
#include "dispatch/error.h"

namespace flashport {
namespace {

// GPU modules the core looks for by file name; when one is missing it is still listed under this name.
struct KnownModule {
  const char* file;
  const char* name;
  int32_t device_type;
};
constexpr KnownModule kKnownModules[] = {
    {"libflashport_cuda.so", "cuda", FLASHPORT_DEVICE_CUDA},
    {"libflashport_hip.so", "hip", FLASHPORT_DEVICE_ROCM},
};

std::vector<std::string> split_paths(const char* list) {
  std::vector<std::string> out;
  if (list == nullptr) return out;
  std::string s(list);
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Directory of libflashport.so itself, found through the address of one of its own functions.
std::string own_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&flashport_version), &info) == 0 || info.dli_fname == nullptr) return "";
  char resolved[PATH_MAX];
  // dli_fname is the name the loader was given, possibly relative to a directory in LD_LIBRARY_PATH.
  std::string path(::realpath(info.dli_fname, resolved) != nullptr ? resolved : info.dli_fname);
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// "libfoo_bar.so" -> "foo_bar": the name an extra module is listed under when it fails before naming itself.
std::string name_from_path(const std::string& path) {
  std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (base.rfind("lib", 0) == 0) base = base.substr(3);
  const size_t dot = base.find('.');
  return dot == std::string::npos ? base : base.substr(0, dot);
}

// A message buffer for a backend or module to write into; always NUL-terminated when read back.
struct MessageBuffer {
  char text[FLASHPORT_MESSAGE_CAPACITY] = {};
  std::string str() {
    text[FLASHPORT_MESSAGE_CAPACITY - 1] = '\0';
    return text;
  }
};

class Builder {
 public:
  std::vector<BackendEntry> entries;

  void add_failure(std::string name, int32_t device_type, std::string module_path, std::string reason) {
    BackendEntry e;
    e.name = std::move(name);
    e.device_type = device_type;
    e.module_path = std::move(module_path);
    e.status_message = std::move(reason);
    entries.push_back(std::move(e));
  }

  // Registers one backend table after checking it is complete and its name is new; probes it once.
  void add_backend(const flashport_backend_iface* b, const std::string& module_path, size_t index) {
    const std::string where = module_path.empty() ? std::string("built-in") : module_path;
    if (b == nullptr || b->name == nullptr || b->name[0] == '\0') {
      add_failure(cat("unnamed backend #", index), b != nullptr ? b->device_type : 0, module_path,
                  cat("backend #", index, " of ", where, " has no name"));
      return;
    }
    const char* missing = b->probe == nullptr            ? "probe"
                          : b->supports == nullptr       ? "supports"
                          : b->workspace_size == nullptr ? "workspace_size"
                          : b->run == nullptr            ? "run"
                                                         : nullptr;
    if (missing != nullptr) {
      add_failure(b->name, b->device_type, module_path, cat("backend table of ", where, " has no ", missing, " slot"));
      return;
    }
    if ((b->combine_supports == nullptr) != (b->combine_run == nullptr)) {
      add_failure(b->name, b->device_type, module_path,
                  cat("backend table of ", where, " has ", b->combine_run ? "combine_run" : "combine_supports",
                      " but no ", b->combine_run ? "combine_supports" : "combine_run",
                      " slot (combine needs both or neither)"));
      return;
    }
    for (const BackendEntry& e : entries) {
      if (e.name == b->name) {
        add_failure(b->name, b->device_type, module_path,
                    cat("another backend named \"", b->name, "\" was registered first (from ",
                        e.module_path.empty() ? "built-in" : e.module_path.c_str(), ")"));
        return;
      }
    }
    MessageBuffer why;
    const int32_t count = b->probe(why.text, sizeof why.text);
    BackendEntry e;
    e.name = b->name;
    e.device_type = b->device_type;
    e.iface = b;
    e.module_path = module_path;
    e.device_count = count > 0 ? count : 0;
    if (count > 0) {
      e.status_message = b->description != nullptr ? b->description : "";
    } else {
      e.status_message = why.str();
      if (e.status_message.empty()) e.status_message = cat("probe() found no usable device (returned ", count, ")");
    }
    entries.push_back(std::move(e));
  }

  // dlopens one module and registers its backends; any failure becomes one unavailable entry named fallback_name.
  void load_module(const std::string& path, const std::string& fallback_name, int32_t fallback_type) {
    char resolved[PATH_MAX];
    const std::string key = ::realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path;
    if (!loaded_.insert(key).second) return;  // the same file named twice: its backends are already listed

    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* err = ::dlerror();
      add_failure(fallback_name, fallback_type, path, cat("dlopen failed: ", err != nullptr ? err : "unknown error"));
      return;
    }
    auto init = reinterpret_cast<flashport_module_init_fn>(::dlsym(handle, FLASHPORT_MODULE_INIT_SYMBOL));
    if (init == nullptr) {
      add_failure(fallback_name, fallback_type, path, cat(path, " does not export ", FLASHPORT_MODULE_INIT_SYMBOL));
      ::dlclose(handle);
      return;
    }
    flashport_module module{};
    MessageBuffer why;
    const int32_t rc = init(FLASHPORT_MODULE_ABI_VERSION, &module, why.text, sizeof why.text);
    std::string reason;
    if (module.abi_version != FLASHPORT_MODULE_ABI_VERSION && (rc == 0 || module.abi_version != 0)) {
      reason = cat("module abi ", module.abi_version, ", core abi ", FLASHPORT_MODULE_ABI_VERSION,
                   ": rebuild the module against this flashport");
    } else if (rc != 0) {
      reason = cat(FLASHPORT_MODULE_INIT_SYMBOL, " failed (returned ", rc, "): ", why.str());
    } else if (module.backend_count == 0 || module.backends == nullptr) {
      reason = "the module provides no backend";
    }
    if (!reason.empty()) {
      add_failure(fallback_name, fallback_type, path, reason);
      ::dlclose(handle);
      return;
    }
    // The module stays loaded for the life of the process: entries point into its static tables.
    for (uint32_t i = 0; i < module.backend_count; ++i) add_backend(&module.backends[i], path, i);
  }

 private:
  std::set<std::string> loaded_;
};

std::vector<BackendEntry> build_registry() {
  Builder b;
  b.add_backend(flashport_cpu_backend_iface(), "", 0);

  std::vector<std::string> dirs = split_paths(std::getenv("FLASHPORT_MODULE_PATH"));
  const std::string own = own_directory();
  if (!own.empty()) dirs.push_back(own);
  for (const KnownModule& m : kKnownModules) {
    std::string found;
    for (const std::string& d : dirs) {
      if (is_file(d + "/" + m.file)) {
        found = d + "/" + m.file;
        break;
      }
    }
    if (!found.empty()) {
      b.load_module(found, m.name, m.device_type);
      continue;
    }
    std::string searched;
    for (const std::string& d : dirs) searched += (searched.empty() ? "" : ", ") + d;
    b.add_failure(m.name, m.device_type, "",
                  cat("module ", m.file, " not found (searched FLASHPORT_MODULE_PATH and the directory of ",
                      "libflashport.so: ", searched.empty() ? "nothing" : searched, ")"));
  }
  for (const std::string& path : split_paths(std::getenv("FLASHPORT_EXTRA_MODULES")))
    b.load_module(path, name_from_path(path), 0);
  return std::move(b.entries);
}

}  // namespace

const std::vector<BackendEntry>& registry() {
  static std::once_flag once;
  static std::vector<BackendEntry>* entries = nullptr;
  // Never destroyed: backends may still be asked about from other threads or atexit handlers during shutdown.
  std::call_once(once, [] { entries = new std::vector<BackendEntry>(build_registry()); });
  return *entries;
}

const BackendEntry* find_backend(const char* name) {
  for (const BackendEntry& e : registry())
    if (e.name == name) return &e;
  return nullptr;
}

}  // namespace flashport
