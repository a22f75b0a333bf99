// What the test module does, shared by the module (test_module.cpp) and the test that loads it.
#ifndef FLASHPORT_TESTS_MODULE_LOADING_TEST_MODULE_H
#define FLASHPORT_TESTS_MODULE_LOADING_TEST_MODULE_H

#include <cstddef>
#include <cstdint>

namespace testmod {

constexpr const char* kName = "testmod";
// The name of the variant whose table has combine_run but not combine_supports.
constexpr const char* kHalfCombineName = "testmod_halfcombine";
// run() writes this value into every element of an F32 out.
constexpr float kPattern = 1234.5f;
// workspace_size() asks for this much, so a smaller caller workspace is refused.
constexpr size_t kWorkspaceBytes = 4096;
// supports() declines problems with this head_dim_qk.
constexpr int64_t kDeclinedHeadDim = 3;
// run() fails (DEVICE_ERROR) when softcap has this value.
constexpr float kFailingSoftcap = 7.0f;

}  // namespace testmod

#endif
