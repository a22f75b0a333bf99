// The one validation of every request (forward, backward and both workspace-size queries). It turns the caller's
// argument struct into a flashport_problem that backends trust completely, or throws flashport::Error with a message
// that names the argument and the values. It only reads its input: on error nothing has been written anywhere.
#ifndef FLASHPORT_DISPATCH_VALIDATE_H
#define FLASHPORT_DISPATCH_VALIDATE_H

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dispatch/backend_abi.h"

namespace flashport {

// Workspace-size queries describe a request without its memory, so data pointers may be NULL there.
enum class DataPointers { required, optional };

struct Request {
  flashport_problem problem;
  const char* backend;  // args->backend: NULL or the name of a backend to force
};

Request validate_forward(const flashport_forward_args* args, DataPointers data);
Request validate_backward(const flashport_backward_args* args, DataPointers data);

// A validated flashport_combine() request. problem.parts_out / parts_lse point into the two vectors, so it is
// filled in place and never copied.
struct CombineRequest {
  flashport_combine_problem problem{};
  std::vector<flashport_operand> parts_out, parts_lse;
  const char* backend = nullptr;  // args->backend

  CombineRequest() = default;
  CombineRequest(const CombineRequest&) = delete;
  CombineRequest& operator=(const CombineRequest&) = delete;
};

void validate_combine(const flashport_combine_args* args, CombineRequest* r);

// Checks a versioned struct's struct_size: not 0, at least its first published layout (that of version `since`), at
// most what this library knows. `what` names the argument ("args->struct_size"), `type` the struct, `init` the
// function that sets it.
void check_struct_size(size_t struct_size, size_t v01_size, size_t known_size, const char* what, const char* type,
                       const char* init, const char* since = "v0.1");

// End of the last field of the first published layout of T (v0.1's for the v0.1 structs): the smallest struct_size
// accepted.
#define FLASHPORT_PREFIX_END(T, last_field) (offsetof(T, last_field) + sizeof(((T*)nullptr)->last_field))

// Copies a caller's versioned struct into a local one that starts with every default, so a caller built against an
// older header (smaller struct_size) gets the defaults for the fields it does not know.
template <class T>
T versioned_copy(const T* in, size_t v01_size, const char* type, void (*init_sized)(T*, size_t),
                 const char* init_name, const char* since = "v0.1") {
  check_struct_size(in->struct_size, v01_size, sizeof(T), "args->struct_size", type, init_name, since);
  T local;
  init_sized(&local, sizeof(T));
  std::memcpy(static_cast<void*>(&local), static_cast<const void*>(in), in->struct_size);
  local.struct_size = sizeof(T);
  return local;
}

const char* dtype_name(int32_t dtype);
// "CPU", "CUDA", "ROCm", or "unknown device type 7".
std::string device_type_name(int32_t device_type);

}  // namespace flashport

#endif
