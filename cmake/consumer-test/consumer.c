/* Uses the installed flashport through its public header only: version checks, then a tiny forward pass on the
 * CPU backend compared with a hand-computed value. Exit status 0 on success. Plain C on purpose: the API is C. */
#include <flashport/flashport.h>
#include <math.h>
#include <stdio.h>

int main(void) {
  /* One query attending to two keys with equal scores: the output is the mean of the two value rows. */
  float q[2] = {1.0f, 0.0f}, k[4] = {0.5f, 1.0f, 0.5f, -1.0f}, v[4] = {1.0f, 2.0f, 3.0f, 4.0f}, out[2] = {0, 0};
  flashport_forward_args args;
  flashport_status status;

  if (flashport_abi_version() != FLASHPORT_ABI_VERSION) {
    fprintf(stderr, "ABI mismatch: header %d, library %u\n", FLASHPORT_ABI_VERSION, flashport_abi_version());
    return 1;
  }
  flashport_forward_args_init(&args);
  flashport_tensor_init_contiguous(&args.q, q, FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 1, 1, 2);
  flashport_tensor_init_contiguous(&args.k, k, FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 2, 1, 2);
  flashport_tensor_init_contiguous(&args.v, v, FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 2, 1, 2);
  flashport_tensor_init_contiguous(&args.out, out, FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, 1, 1, 1, 2);
  status = flashport_forward(&args);
  if (status != FLASHPORT_STATUS_OK) {
    fprintf(stderr, "flashport_forward: %s: %s\n", flashport_status_string(status), flashport_last_error());
    return 1;
  }
  if (fabsf(out[0] - 2.0f) > 1e-6f || fabsf(out[1] - 3.0f) > 1e-6f) {
    fprintf(stderr, "wrong result: %g %g (expected 2 3)\n", out[0], out[1]);
    return 1;
  }
  printf("flashport %s (ABI %u): consumer OK\n", flashport_version_string(), flashport_abi_version());
  return 0;
}
