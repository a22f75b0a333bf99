/*
 * flashport from C: one forward and one backward call on small random tensors, each checked against a property
 * that needs no second implementation, plus how an error is reported.
 *
 * Build against an installed flashport either way:
 *   cmake -S examples/c -B build-example -DCMAKE_PREFIX_PATH=<prefix> && cmake --build build-example
 *   make -C examples/c        (uses pkg-config; set PKG_CONFIG_PATH=<prefix>/lib/pkgconfig)
 */
#include <flashport/flashport.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { B = 2, SQ = 8, SKV = 8, HQ = 4, HKV = 2, D = 16 };

static float random_value(unsigned* state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)(*state >> 8) / (float)(1u << 24) - 0.5f;
}

static float* random_tensor(size_t n, unsigned* state) {
  float* x = malloc(n * sizeof *x);
  for (size_t i = 0; i < n && x; ++i) x[i] = random_value(state);
  return x;
}

/* Reports a failed call with the library's own message; returns 1 so callers can count failures. */
static int failed(flashport_status status, const char* what) {
  if (status == FLASHPORT_STATUS_OK) return 0;
  fprintf(stderr, "%s failed: %s: %s\n", what, flashport_status_string(status), flashport_last_error());
  return 1;
}

int main(void) {
  unsigned seed = 1;
  const size_t nq = (size_t)B * SQ * HQ * D, nkv = (size_t)B * SKV * HKV * D;
  float *q = random_tensor(nq, &seed), *k = random_tensor(nkv, &seed), *v = random_tensor(nkv, &seed);
  float *out = malloc(nq * sizeof *out), *lse = malloc((size_t)B * HQ * SQ * sizeof *lse);
  float *dout = random_tensor(nq, &seed), *dq = malloc(nq * sizeof *dq);
  float *dk = malloc(nkv * sizeof *dk), *dv = malloc(nkv * sizeof *dv);
  if (!q || !k || !v || !out || !lse || !dout || !dq || !dk || !dv) return fprintf(stderr, "out of memory\n"), 1;
  printf("flashport %s (ABI %u)\n", flashport_version_string(), (unsigned)flashport_abi_version());

  /* Forward: contiguous [batch, seqlen, heads, head_dim] tensors on the CPU; GQA with 2 query heads per KV head. */
  flashport_forward_args fwd;
  flashport_forward_args_init(&fwd);
  flashport_tensor_init_contiguous(&fwd.q, q, FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, B, SQ, HQ, D);
  flashport_tensor_init_contiguous(&fwd.k, k, FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, B, SKV, HKV, D);
  flashport_tensor_init_contiguous(&fwd.v, v, FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, B, SKV, HKV, D);
  flashport_tensor_init_contiguous(&fwd.out, out, FLASHPORT_DTYPE_F32, FLASHPORT_DEVICE_CPU, 0, B, SQ, HQ, D);
  flashport_lse_init_contiguous(&fwd.lse, lse, FLASHPORT_DEVICE_CPU, 0, B, HQ, SQ);
  fwd.causal = 1;
  if (failed(flashport_forward(&fwd), "flashport_forward")) return 1;

  /* Check: the first query row sees only the first key (causal), so its output is exactly v[0] of its KV head. */
  int errors = 0;
  for (int h = 0; h < HQ; ++h)
    for (int d = 0; d < D; ++d)
      if (fabsf(out[h * D + d] - v[(h / (HQ / HKV)) * D + d]) > 1e-6f) ++errors;

  /* Backward: dq, dk, dv from dout, q, k, v, out and lse. */
  flashport_backward_args bwd;
  flashport_backward_args_init(&bwd);
  bwd.dout = fwd.out;
  bwd.dout.data = dout;
  bwd.q = fwd.q, bwd.k = fwd.k, bwd.v = fwd.v, bwd.out = fwd.out, bwd.lse = fwd.lse;
  bwd.dq = fwd.q, bwd.dk = fwd.k, bwd.dv = fwd.v;
  bwd.dq.data = dq, bwd.dk.data = dk, bwd.dv.data = dv;
  bwd.causal = 1;
  if (failed(flashport_backward(&bwd), "flashport_backward")) return 1;

  /* Check: every row's probabilities sum to 1, so summed over keys dv equals dout summed over the query rows that
   * share the KV head. */
  for (int b = 0; b < B; ++b)
    for (int hk = 0; hk < HKV; ++hk)
      for (int d = 0; d < D; ++d) {
        double sum_dv = 0, sum_dout = 0;
        for (int j = 0; j < SKV; ++j) sum_dv += dv[((b * SKV + j) * HKV + hk) * D + d];
        for (int i = 0; i < SQ; ++i)
          for (int h = hk * (HQ / HKV); h < (hk + 1) * (HQ / HKV); ++h) sum_dout += dout[((b * SQ + i) * HQ + h) * D + d];
        if (fabs(sum_dv - sum_dout) > 1e-4) ++errors;
      }

  /* Errors come back as a status plus a message naming the argument; nothing is written. */
  fwd.k.shape[3] = D + 1;
  flashport_status status = flashport_forward(&fwd);
  printf("a bad call reports %s: %s\n", flashport_status_string(status), flashport_last_error());
  if (status != FLASHPORT_STATUS_SHAPE_MISMATCH) ++errors;

  printf("out[0,0,0,0..3] = %.5f %.5f %.5f %.5f; lse[0,0,%d] = %.5f\n", out[0], out[1], out[2], out[3], SQ - 1,
         lse[SQ - 1]);
  printf("%s\n", errors ? "FAILED" : "forward and backward OK");
  free(q), free(k), free(v), free(out), free(lse), free(dout), free(dq), free(dk), free(dv);
  return errors ? 1 : 0;
}
