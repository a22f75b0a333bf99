// A tiny backend module for the module-loading test: one backend, "testmod", on CPU tensors, whose run() writes a
// recognisable pattern. Also built as broken variants: a wrong ABI number (TESTMOD_ABI_VERSION), no entry point
// (TESTMOD_NO_INIT) and an entry point that fails (TESTMOD_INIT_FAILS); and as a backend that declines every problem
// (TESTMOD_DECLINES_ALL), for the tools' runs in which nothing can be measured.
#include <cstdio>

#include "dispatch/backend_abi.h"
#include "test_module.h"

#ifndef TESTMOD_ABI_VERSION
#define TESTMOD_ABI_VERSION FLASHPORT_MODULE_ABI_VERSION
#endif

namespace {

int32_t probe(char*, size_t) { return 1; }

int32_t supports(const flashport_problem* p, char* why, size_t why_len) {
#ifdef TESTMOD_DECLINES_ALL
  (void)p;
  std::snprintf(why, why_len, "testmod declines every problem");
  return 0;
#endif
  if (p->head_dim_qk == testmod::kDeclinedHeadDim) {
    std::snprintf(why, why_len, "testmod declines head_dim_qk %lld", static_cast<long long>(p->head_dim_qk));
    return 0;
  }
  if (p->dtype != FLASHPORT_DTYPE_F32 || p->direction != FLASHPORT_DIRECTION_FORWARD) {
    std::snprintf(why, why_len, "testmod only runs F32 forward");
    return 0;
  }
  return 1;
}

size_t workspace_size(const flashport_problem*) { return testmod::kWorkspaceBytes; }

int32_t run(const flashport_problem* p, char* err, size_t err_len) {
  if (p->softcap == testmod::kFailingSoftcap) {
    std::snprintf(err, err_len, "asked to fail by softcap %g", static_cast<double>(p->softcap));
    return FLASHPORT_STATUS_DEVICE_ERROR;
  }
  float* out = static_cast<float*>(p->out.data);
  const int64_t* s = p->out.stride;
  for (int64_t b = 0; b < p->batch; ++b)
    for (int64_t i = 0; i < p->seqlen_q; ++i)
      for (int64_t h = 0; h < p->heads_q; ++h)
        for (int64_t d = 0; d < p->head_dim_v; ++d) out[b * s[0] + i * s[1] + h * s[2] + d * s[3]] = testmod::kPattern;
  return FLASHPORT_STATUS_OK;
}

const flashport_backend_iface kBackends[] = {{
    /* .name = */ testmod::kName,
    /* .device_type = */ FLASHPORT_DEVICE_CPU,
    /* .description = */ "test module: writes a constant",
    /* .probe = */ probe,
    /* .supports = */ supports,
    /* .workspace_size = */ workspace_size,
    /* .run = */ run,
    /* .mem_alloc = */ nullptr,
    /* .mem_free = */ nullptr,
    /* .mem_copy = */ nullptr,
    /* .synchronize = */ nullptr,
}};

}  // namespace

#ifndef TESTMOD_NO_INIT  // the variant without an entry point
extern "C" FLASHPORT_MODULE_EXPORT int32_t flashport_module_init(uint32_t, flashport_module* out, char* why,
                                                                 size_t why_len) {
#ifdef TESTMOD_INIT_FAILS
  std::snprintf(why, why_len, "testmod was told to fail");
  (void)out;
  return 3;
#else
  (void)why;
  (void)why_len;
  out->abi_version = TESTMOD_ABI_VERSION;
  out->backend_count = 1;
  out->backends = kBackends;
  return 0;
#endif
}
#endif
