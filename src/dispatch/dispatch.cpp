#include "dispatch/dispatch.h"

#include <cstdlib>
#include <string>

#include "dispatch/error.h"

namespace flashport {
namespace {

// Empty when e can run p, else why not.
std::string decline_reason(const BackendEntry& e, const flashport_problem& p) {
  if (!e.available()) return e.status_message;
  if (e.device_type != p.device_type) return cat("it runs ", device_type_name(e.device_type), " tensors");
  if (p.device_id >= e.device_count)
    return cat("device ", p.device_id, " requested but it has ", e.device_count, " usable device(s)");
  char why[FLASHPORT_MESSAGE_CAPACITY] = {};
  if (e.iface->supports(&p, why, sizeof why) != 0) return "";
  why[sizeof why - 1] = '\0';
  return why[0] != '\0' ? std::string(why) : std::string("supports() declined without a reason");
}

std::string known_names() {
  std::string names;
  for (const BackendEntry& e : registry()) names += (names.empty() ? "" : ", ") + e.name;
  return names;
}

std::string request_place(const flashport_problem& p) {
  return cat("no backend can run this request on ", device_type_name(p.device_type), " device ", p.device_id, ": ");
}

}  // namespace

const BackendEntry& select_backend(const Request& r) {
  const flashport_problem& p = r.problem;
  const char* forced = r.backend;
  const char* source = "args->backend";
  if (forced == nullptr) {
    forced = std::getenv("FLASHPORT_BACKEND");
    source = "env FLASHPORT_BACKEND";
    if (forced != nullptr && forced[0] == '\0') forced = nullptr;  // set but empty: not forcing
  }
  if (forced != nullptr) {
    const BackendEntry* e = find_backend(forced);
    if (e == nullptr)
      fail(FLASHPORT_STATUS_BACKEND_UNAVAILABLE, "backend \"", forced, "\" (forced by ", source,
           ") is not known; known backends: ", known_names());
    if (!e->available())
      fail(FLASHPORT_STATUS_BACKEND_UNAVAILABLE, "backend \"", forced, "\" (forced by ", source,
           ") is unavailable: ", e->status_message);
    const std::string why = decline_reason(*e, p);
    if (!why.empty())
      fail(FLASHPORT_STATUS_NO_BACKEND, request_place(p), "\"", e->name, "\" (forced by ", source, "): ", why);
    return *e;
  }
  std::string reasons;
  for (const BackendEntry& e : registry()) {
    if (e.device_type != p.device_type) continue;
    const std::string why = decline_reason(e, p);
    if (why.empty()) return e;
    reasons += cat(reasons.empty() ? "" : "; ", e.name, ": ", why);
  }
  fail(FLASHPORT_STATUS_NO_BACKEND, request_place(p),
       reasons.empty() ? cat("no backend serves ", device_type_name(p.device_type), " tensors") : reasons);
}

size_t request_workspace_size(const Request& r) {
  const BackendEntry& e = select_backend(r);
  return e.iface->workspace_size(&r.problem);
}

flashport_status run_request(const Request& r) {
  const BackendEntry& e = select_backend(r);
  const flashport_problem& p = r.problem;
  if (p.workspace != nullptr) {
    const size_t need = e.iface->workspace_size(&p);
    if (p.workspace_size < need)
      fail(FLASHPORT_STATUS_WORKSPACE_TOO_SMALL, "workspace_size = ", p.workspace_size, " bytes but backend ", e.name,
           " needs ", need, " bytes for this request (see the *_workspace_size() query)");
  }
  char err[FLASHPORT_MESSAGE_CAPACITY] = {};
  const int32_t status = e.iface->run(&p, err, sizeof err);
  if (status == FLASHPORT_STATUS_OK) return FLASHPORT_STATUS_OK;
  err[sizeof err - 1] = '\0';
  const std::string detail = err[0] != '\0' ? std::string(err) : std::string("failed without a message");
  if (status_name(status) == nullptr)
    fail(FLASHPORT_STATUS_INTERNAL, e.name, ": ", detail, " (the backend returned unknown status ", status, ")");
  fail(static_cast<flashport_status>(status), e.name, ": ", detail);
}

}  // namespace flashport
