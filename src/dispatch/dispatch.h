// Routing a validated request to a backend.
#ifndef FLASHPORT_DISPATCH_DISPATCH_H
#define FLASHPORT_DISPATCH_DISPATCH_H

#include <cstddef>

#include "dispatch/registry.h"
#include "dispatch/validate.h"

namespace flashport {

// The backend that runs r: the forced one (args->backend, else env FLASHPORT_BACKEND, read on every call) if it can,
// else the first registered backend of the tensors' device type that is available and supports the problem.
// Throws NO_BACKEND / BACKEND_UNAVAILABLE with every backend asked and why it declined.
const BackendEntry& select_backend(const Request& r);

// Selects a backend, checks the caller's workspace against its need and runs the problem.
flashport_status run_request(const Request& r);

// Selects a backend and returns the workspace bytes it needs for r.
size_t request_workspace_size(const Request& r);

// As run_request, for a combine: the backend is chosen the same way among those that implement combine.
flashport_status run_combine(const CombineRequest& r);

}  // namespace flashport

#endif
