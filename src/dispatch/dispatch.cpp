#include "dispatch/dispatch.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "dispatch/error.h"

namespace flashport {
namespace {

// Where a request runs and how to ask a backend whether it can: the one selection serves attention and combine.
struct Target {
  int32_t device_type;
  int32_t device_id;
  const char* forced;  // args->backend
  // 1 when the backend's table can run the request, else 0 with the reason in why (supports() or combine_supports()).
  int32_t (*supports)(const BackendEntry& e, const void* problem, char* why, size_t why_len);
  const void* problem;
};

int32_t attention_supports(const BackendEntry& e, const void* problem, char* why, size_t why_len) {
  return e.iface->supports(static_cast<const flashport_problem*>(problem), why, why_len);
}

int32_t combine_supports(const BackendEntry& e, const void* problem, char* why, size_t why_len) {
  if (e.iface->combine_supports == nullptr || e.iface->combine_run == nullptr) {
    std::snprintf(why, why_len, "combine is not implemented by this backend yet");
    return 0;
  }
  return e.iface->combine_supports(static_cast<const flashport_combine_problem*>(problem), why, why_len);
}

// Empty when e can run the request, else why not.
std::string decline_reason(const BackendEntry& e, const Target& t) {
  if (!e.available()) return e.status_message;
  if (e.device_type != t.device_type) return cat("it runs ", device_type_name(e.device_type), " tensors");
  if (t.device_id >= e.device_count)
    return cat("device ", t.device_id, " requested but it has ", e.device_count, " usable device(s)");
  char why[FLASHPORT_MESSAGE_CAPACITY] = {};
  if (t.supports(e, t.problem, why, sizeof why) != 0) return "";
  why[sizeof why - 1] = '\0';
  return why[0] != '\0' ? std::string(why) : std::string("supports() declined without a reason");
}

std::string known_names() {
  std::string names;
  for (const BackendEntry& e : registry()) names += (names.empty() ? "" : ", ") + e.name;
  return names;
}

std::string request_place(const Target& t) {
  return cat("no backend can run this request on ", device_type_name(t.device_type), " device ", t.device_id, ": ");
}

// The forced backend (t.forced, else env FLASHPORT_BACKEND, read on every call) if it can, else the first registered
// backend of the tensors' device type that is available and supports the request. Throws NO_BACKEND /
// BACKEND_UNAVAILABLE with every backend asked and why it declined.
const BackendEntry& select(const Target& t) {
  const char* forced = t.forced;
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
    const std::string why = decline_reason(*e, t);
    if (!why.empty())
      fail(FLASHPORT_STATUS_NO_BACKEND, request_place(t), "\"", e->name, "\" (forced by ", source, "): ", why);
    return *e;
  }
  std::string reasons;
  for (const BackendEntry& e : registry()) {
    if (e.device_type != t.device_type) continue;
    const std::string why = decline_reason(e, t);
    if (why.empty()) return e;
    reasons += cat(reasons.empty() ? "" : "; ", e.name, ": ", why);
  }
  fail(FLASHPORT_STATUS_NO_BACKEND, request_place(t),
       reasons.empty() ? cat("no backend serves ", device_type_name(t.device_type), " tensors") : reasons);
}

// Turns a backend's run status into the call's: OK, or a thrown Error carrying the backend's message.
flashport_status finish_run(const BackendEntry& e, int32_t status, char* err, size_t err_len) {
  if (status == FLASHPORT_STATUS_OK) return FLASHPORT_STATUS_OK;
  err[err_len - 1] = '\0';
  const std::string detail = err[0] != '\0' ? std::string(err) : std::string("failed without a message");
  if (status_name(status) == nullptr)
    fail(FLASHPORT_STATUS_INTERNAL, e.name, ": ", detail, " (the backend returned unknown status ", status, ")");
  fail(static_cast<flashport_status>(status), e.name, ": ", detail);
}

}  // namespace

const BackendEntry& select_backend(const Request& r) {
  const flashport_problem& p = r.problem;
  return select(Target{p.device_type, p.device_id, r.backend, attention_supports, &p});
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
  return finish_run(e, e.iface->run(&p, err, sizeof err), err, sizeof err);
}

flashport_status run_combine(const CombineRequest& r) {
  const flashport_combine_problem& p = r.problem;
  const BackendEntry& e = select(Target{p.device_type, p.device_id, r.backend, combine_supports, &p});
  char err[FLASHPORT_MESSAGE_CAPACITY] = {};
  return finish_run(e, e.iface->combine_run(&p, err, sizeof err), err, sizeof err);
}

}  // namespace flashport
