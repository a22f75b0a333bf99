// Error plumbing shared by the dispatch layer: one exception type that carries a flashport_status, the thread-local
// last-error message, and the wrapper that keeps every exception on this side of the C ABI.
#ifndef FLASHPORT_DISPATCH_ERROR_H
#define FLASHPORT_DISPATCH_ERROR_H

#include <exception>
#include <new>
#include <sstream>
#include <string>
#include <utility>

#include "flashport/flashport.h"

namespace flashport {

// Thrown inside the library only; guarded() turns it into a status plus last_error at the C boundary.
class Error : public std::exception {
 public:
  Error(flashport_status status, std::string message) : status_(status), message_(std::move(message)) {}
  flashport_status status() const noexcept { return status_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  flashport_status status_;
  std::string message_;
};

// Concatenates anything streamable; messages are built only on the error path.
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

template <class... Parts>
[[noreturn]] void fail(flashport_status status, const Parts&... parts) {
  throw Error(status, cat(parts...));
}

// "FLASHPORT_STATUS_SHAPE_MISMATCH", or NULL for a value that is not a flashport_status.
const char* status_name(int32_t status) noexcept;

void clear_last_error() noexcept;
// Sets "<prefix><detail>"; never throws (falls back to a static message when memory is short).
void set_last_error(const char* prefix, const char* detail = "") noexcept;
const char* last_error() noexcept;

// Runs body (which returns a flashport_status) with last_error cleared first; converts every exception into a status
// and a message so that none crosses the C ABI.
template <class Body>
flashport_status guarded(Body&& body) noexcept {
  clear_last_error();
  try {
    return body();
  } catch (const Error& e) {
    set_last_error(e.what());
    return e.status();
  } catch (const std::bad_alloc&) {
    set_last_error("out of memory: a host allocation inside flashport failed");
    return FLASHPORT_STATUS_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error("internal error (please report): ", e.what());
    return FLASHPORT_STATUS_INTERNAL;
  } catch (...) {
    set_last_error("internal error (please report): unknown exception");
    return FLASHPORT_STATUS_INTERNAL;
  }
}

}  // namespace flashport

#endif
