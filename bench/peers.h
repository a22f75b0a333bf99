// PyTorch peers for flashport-bench: bench/peers_torch.py, run once per bench run through popen, measures
// torch.nn.functional.scaled_dot_product_attention (and FlashAttention 4 when importable) on the same cases and
// prints one JSON line per (case, peer). The bench turns the times into FLOP rates by its own convention.
#ifndef FLASHPORT_BENCH_PEERS_H
#define FLASHPORT_BENCH_PEERS_H

#include <cstdint>
#include <string>
#include <vector>

namespace flashport::bench {

struct PeerCase {
  std::string direction;  // "fwd" or "bwd"
  std::string dtype;      // "f32", "bf16", "f16"
  int64_t batch, heads_q, heads_kv, seqlen_q, seqlen_kv, head_dim, head_dim_v;
  bool causal;
};

struct PeerResult {
  size_t case_index;
  std::string peer;   // "torch" (CPU SDPA), "flash", "cudnn", "fa4"
  double ms;          // median; < 0 when the peer could not run the case
  std::string error;  // why not, when ms < 0
};

struct PeerRun {
  std::vector<PeerResult> results;
  std::vector<std::string> info;  // lines the script printed about itself (torch version, device)
};

// The peers script: `explicit_path` if non-empty, else $FLASHPORT_PEERS_SCRIPT, else peers_torch.py next to the
// executable (build tree) or in ../share/flashport (install tree). Empty when none exists.
std::string find_peers_script(const std::string& explicit_path);

// Whether `python` can import torch (a quiet, separate process).
bool torch_importable(const std::string& python);

// Runs the script for `device` ("cpu" or "cuda") with `threads` CPU threads and `reps` timed repetitions.
// Returns false with *why when the script cannot be started or exits with an error; results arrive in *run.
bool run_peers(const std::string& python, const std::string& script, const std::string& device, int threads,
               int reps, const std::vector<PeerCase>& cases, bool verbose, PeerRun* run, std::string* why);

}  // namespace flashport::bench

#endif
