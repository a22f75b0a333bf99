// flashport-bench: forward and backward attention through the public C API on one backend, over a grid of cases,
// with the same-run baselines that put the figures in context (CPU: Eigen's GEMM rate and a naive materialised
// attention; PyTorch SDPA as a peer where torch is installed).
//
// FLOPs follow the FlashAttention convention of docs/design.md: forward 4 B Hq Sq Skv D (D = (Dqk + Dv) / 2),
// halved for causal when Sq == Skv; backward 2.5x forward. Times are medians of --reps timed calls after warm-up.
#include <omp.h>

#include <algorithm>
#include <cstdarg>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "baselines.h"
#include "bench_data.h"
#include "device_memory.h"
#include "flashport/flashport.h"
#include "memory_probe.h"
#include "peers.h"

namespace fb = flashport::bench;
using flashport::tools::DeviceBuffer;
using flashport::tools::DeviceMemory;

namespace {

// GEMM products timed for the CPU ceiling; the fastest one is the ceiling (see eigen_sgemm_gflops).
constexpr int kGemmCeilingSamples = 7;

const char* kUsage = R"(usage: flashport-bench [options]

Runs attention forward/backward through flashport's public C API on one backend and prints a table (or JSON lines).

  --backend NAME       backend to run (default cpu); --list-backends shows them
  --device N           device ordinal for GPU backends (default 0)
  --dtype LIST         f32,bf16,f16 (default: f32,bf16 on the CPU, bf16 on GPUs)
  --d LIST             head dims (default: 64,128 on the CPU, 64,128,256 on GPUs)
  --s LIST             sequence lengths, Sq = Skv (default: 1024,4096 on the CPU, 1024,4096,16384 on GPUs)
  --causal 0|1|both    (default both)
  --batch N            batch size (default: CPU 1; GPUs 32768/S, so every case holds 32768 tokens)
  --heads N            query heads (default: CPU max(4, threads); GPUs 2048/D, a model width of 2048)
  --heads-kv N         KV heads (default = --heads; fewer gives GQA)
  --direction fwd|bwd|both   (default both)
  --deterministic      backward in deterministic mode
  --reps N             timed repetitions, median reported (default: CPU 5, 3 with --quick; GPUs 20)
  --warmup N           untimed calls before timing (default 1)
  --threads N          CPU threads for flashport, the baselines and torch (default: OpenMP's, i.e. OMP_NUM_THREADS)
  --grid default|full  full: D 64,128 x S 512..8192 on the CPU (issue 3's grid), S 512..16384 on GPUs
  --quick              one small case (f32, D 64, S 1024, 4 heads, not causal, fwd+bwd): the README's first run
  --peers auto|torch|none   PyTorch peers: auto = when `python3 -c "import torch"` works (default auto)
  --python PATH        Python for the peers (default $FLASHPORT_PYTHON or python3)
  --peers-script PATH  bench/peers_torch.py (default: next to this binary or in ../share/flashport)
  --no-naive           skip the naive materialised baseline (CPU)
  --gemm-n N           size of the square Eigen GEMM giving the CPU ceiling (default 2048 up to 4 threads, else
                       4096, so each thread keeps a comparable share of the work; 0 skips it)
  --json               one JSON object per case and direction on stdout instead of the table
  --quiet              no progress on stderr
  --list-backends      list backends and whether they are available, then exit
  --help

Peers are measured on the same shapes, dtype and threads; ratio_<peer> = flashport rate / peer rate. The naive
baseline is fp32 (bf16/f16 cases are compared with the fp32 naive run of the same shape).

Exit status: 0 when at least one case was measured and none failed (cases the backend declines are skipped, and
counted on stderr); 1 when a case failed, nothing was measured, the backend cannot be used, or --peers torch cannot
run; 2 on bad usage. More: docs/tools.md.
)";

struct Options {
  std::string backend = "cpu";
  int device = 0;
  std::vector<std::string> dtypes;
  std::vector<int64_t> dims, seqlens;
  std::vector<int> causal = {0, 1};
  int64_t batch = 0, heads = 0, heads_kv = 0;  // 0 = per-backend default
  bool fwd = true, bwd = true, deterministic = false;
  int reps = 0, warmup = 1, threads = 0;
  bool full = false, quick = false, json = false, quiet = false, naive = true, list = false;
  std::string peers = "auto", python, peers_script;
  int gemm_n = -1;  // -1: chosen by thread count in Bench::run()
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "flashport-bench: %s\n(see flashport-bench --help)\n", message.c_str());
  std::exit(2);
}

int64_t parse_int(const std::string& flag, const std::string& text, int64_t min_value) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < min_value)
    usage_error(flag + " expects an integer >= " + std::to_string(min_value) + ", got '" + text + "'");
  return v;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) parts.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return parts;
}

std::vector<int64_t> parse_int_list(const std::string& flag, const std::string& text) {
  std::vector<int64_t> values;
  for (const std::string& part : split(text)) values.push_back(parse_int(flag, part, 1));
  if (values.empty()) usage_error(flag + " expects a comma-separated list of integers");
  return values;
}

flashport_dtype parse_dtype(const std::string& name) {
  if (name == "f32" || name == "fp32" || name == "float32") return FLASHPORT_DTYPE_F32;
  if (name == "bf16" || name == "bfloat16") return FLASHPORT_DTYPE_BF16;
  if (name == "f16" || name == "fp16" || name == "float16") return FLASHPORT_DTYPE_F16;
  usage_error("unknown dtype '" + name + "' (f32, bf16, f16)");
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--backend") {
      o.backend = value();
    } else if (a == "--device") {
      o.device = static_cast<int>(parse_int(a, value(), 0));
    } else if (a == "--dtype") {
      o.dtypes = split(value());
      for (const std::string& d : o.dtypes) parse_dtype(d);
      if (o.dtypes.empty()) usage_error("--dtype expects a list such as f32,bf16");
    } else if (a == "--d") {
      o.dims = parse_int_list(a, value());
    } else if (a == "--s") {
      o.seqlens = parse_int_list(a, value());
    } else if (a == "--causal") {
      const std::string v = value();
      if (v == "0") o.causal = {0};
      else if (v == "1") o.causal = {1};
      else if (v == "both") o.causal = {0, 1};
      else usage_error("--causal expects 0, 1 or both");
    } else if (a == "--batch") {
      o.batch = parse_int(a, value(), 1);
    } else if (a == "--heads") {
      o.heads = parse_int(a, value(), 1);
    } else if (a == "--heads-kv") {
      o.heads_kv = parse_int(a, value(), 1);
    } else if (a == "--direction") {
      const std::string v = value();
      if (v != "fwd" && v != "bwd" && v != "both") usage_error("--direction expects fwd, bwd or both");
      o.fwd = v != "bwd";
      o.bwd = v != "fwd";
    } else if (a == "--deterministic") {
      o.deterministic = true;
    } else if (a == "--reps") {
      o.reps = static_cast<int>(parse_int(a, value(), 1));
    } else if (a == "--warmup") {
      o.warmup = static_cast<int>(parse_int(a, value(), 0));
    } else if (a == "--threads") {
      o.threads = static_cast<int>(parse_int(a, value(), 1));
    } else if (a == "--grid") {
      const std::string v = value();
      if (v != "default" && v != "full") usage_error("--grid expects default or full");
      o.full = v == "full";
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--peers") {
      o.peers = value();
      if (o.peers != "auto" && o.peers != "torch" && o.peers != "none")
        usage_error("--peers expects auto, torch or none");
    } else if (a == "--python") {
      o.python = value();
    } else if (a == "--peers-script") {
      o.peers_script = value();
    } else if (a == "--no-naive") {
      o.naive = false;
    } else if (a == "--gemm-n") {
      o.gemm_n = static_cast<int>(parse_int(a, value(), 0));
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--quiet") {
      o.quiet = true;
    } else if (a == "--list-backends") {
      o.list = true;
    } else {
      usage_error("unknown option '" + a + "'");
    }
  }
  if (o.heads > 0 && o.heads_kv > 0 && o.heads % o.heads_kv != 0)
    usage_error("--heads-kv " + std::to_string(o.heads_kv) + " does not divide --heads " + std::to_string(o.heads) +
                " (each KV head serves heads / heads-kv query heads)");
  return o;
}

// One measured (shape, dtype) of the grid; fwd and bwd run on the same buffers because bwd needs fwd's out and lse.
struct Shape {
  flashport_dtype dtype;
  int64_t batch, heads_q, heads_kv, seqlen_q, seqlen_kv, head_dim, head_dim_v;
  bool causal;
};

double forward_flops(const Shape& s) {
  const double d = 0.5 * static_cast<double>(s.head_dim + s.head_dim_v);
  double flops = 4.0 * s.batch * s.heads_q * static_cast<double>(s.seqlen_q) * s.seqlen_kv * d;
  if (s.causal && s.seqlen_q == s.seqlen_kv) flops *= 0.5;
  return flops;
}

double direction_flops(const Shape& s, bool backward) { return forward_flops(s) * (backward ? 2.5 : 1.0); }

struct Measurement {
  double ms = -1;                  // median
  int64_t peak_extra_bytes = -1;   // -1: not measured
};

struct Row {
  Shape shape;
  bool backward;
  Measurement flashport;
  Measurement naive;  // ms < 0: not measured
  std::map<std::string, double> peer_ms;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1.0 : v[v.size() / 2];
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Times `call` (which returns false on failure). Host memory: one call per timed repetition. Device memory: the
// work is asynchronous, so each repetition is a batch of launches between two synchronize() calls, sized to take
// about 20 ms so that launch latency and the host clock do not dominate short kernels.
bool time_calls(DeviceMemory& mem, int warmup, int reps, const std::function<bool()>& call, double* ms_out,
                std::string* why) {
  for (int w = 0; w < warmup; ++w)
    if (!call()) return false;
  if (!mem.synchronize(nullptr, why)) return false;
  int inner = 1;
  if (!mem.is_host()) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!call() || !mem.synchronize(nullptr, why)) return false;
    inner = static_cast<int>(std::clamp(20.0 / std::max(ms_since(t0), 1e-3), 1.0, 100.0));
  }
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < inner; ++i)
      if (!call()) return false;
    if (!mem.synchronize(nullptr, why)) return false;
    times.push_back(ms_since(t0) / inner);
  }
  *ms_out = median(times);
  return true;
}

std::string json_number(double v, bool valid) {
  if (!valid || !std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// A table cell of `width` characters: the value with `precision` decimals, or "-" when it was not measured (negative
// rates and times are markers for that too, so they never print as numbers).
std::string cell(double v, int width, int precision) {
  char buf[64];
  if (!std::isfinite(v) || v < 0) std::snprintf(buf, sizeof buf, "%*s", width, "-");
  else std::snprintf(buf, sizeof buf, "%*.*f", width, precision, v);
  return buf;
}

// Byte counts stay exact integers in JSON; -1 (not measured) becomes null.
std::string json_bytes(int64_t bytes) { return bytes >= 0 ? std::to_string(bytes) : "null"; }

class Bench {
 public:
  Bench(Options o, DeviceMemory& mem) : o_(std::move(o)), mem_(mem) {}

  int run();

 private:
  void progress(const char* fmt, ...) const __attribute__((format(printf, 2, 3)));
  std::vector<Shape> grid() const;
  // Finds the peers' Python and script. False (with a message) when --peers torch cannot run; with --peers auto the
  // peers are switched off instead.
  bool peers_ready();
  // False (with a message) when --peers torch was asked for and the script failed.
  bool run_peers(const std::vector<Shape>& shapes);
  // Returns false when flashport declined or failed the shape (a message has been printed).
  bool measure_shape(const Shape& s, std::vector<Row>* rows);
  void measure_naive(const Shape& s, bool backward, Measurement* m);
  void print_header() const;
  void print_row(const Row& r);
  double rate(double flops, double ms) const { return ms > 0 ? flops / (ms * 1e-3) : -1; }

  Options o_;
  DeviceMemory& mem_;
  int threads_ = 1;
  double gemm_gflops_ = -1;
  std::string python_, peers_script_;    // set by peers_ready()
  std::vector<std::string> peer_names_;  // in column order
  std::vector<std::string> peer_info_;
  // Peer times keyed by (shape index, backward).
  std::map<std::pair<size_t, bool>, std::map<std::string, double>> peer_ms_;
  // Naive results keyed by shape without dtype (the naive baseline is always fp32).
  std::map<std::string, Measurement> naive_cache_;
  size_t shape_index_ = 0;
  bool header_printed_ = false;
  bool above_gemm_ = false;  // some row's rate exceeds the GEMM ceiling (a footnote says why that can be)
  int failures_ = 0, skipped_ = 0;
  std::string first_skip_;  // the first reason the backend gave for declining a case
};

void Bench::progress(const char* fmt, ...) const {
  if (o_.quiet) return;
  va_list args;
  va_start(args, fmt);
  std::fputs("[flashport-bench] ", stderr);
  std::vfprintf(stderr, fmt, args);
  std::fputc('\n', stderr);
  va_end(args);
}

std::vector<Shape> Bench::grid() const {
  const bool host = mem_.is_host();
  std::vector<std::string> dtypes = o_.dtypes;
  std::vector<int64_t> dims = o_.dims, seqlens = o_.seqlens;
  std::vector<int> causal = o_.causal;
  int64_t heads = o_.heads, batch = o_.batch;
  if (o_.quick) {
    if (dtypes.empty()) dtypes = {"f32"};
    if (dims.empty()) dims = {64};
    if (seqlens.empty()) seqlens = {1024};
    if (o_.causal.size() == 2) causal = {0};
    if (heads == 0) heads = 4;
  }
  if (dtypes.empty()) dtypes = host ? std::vector<std::string>{"f32", "bf16"} : std::vector<std::string>{"bf16"};
  if (dims.empty()) dims = host ? std::vector<int64_t>{64, 128} : std::vector<int64_t>{64, 128, 256};
  if (seqlens.empty()) {
    if (o_.full)
      seqlens = host ? std::vector<int64_t>{512, 1024, 2048, 4096, 8192}
                     : std::vector<int64_t>{512, 1024, 2048, 4096, 8192, 16384};
    else
      seqlens = host ? std::vector<int64_t>{1024, 4096} : std::vector<int64_t>{1024, 4096, 16384};
  }
  std::vector<Shape> shapes;
  for (const std::string& dt : dtypes)
    for (int64_t d : dims)
      for (int64_t s : seqlens)
        for (int c : causal) {
          Shape sh{};
          sh.dtype = parse_dtype(dt);
          sh.head_dim = sh.head_dim_v = d;
          sh.seqlen_q = sh.seqlen_kv = s;
          sh.causal = c != 0;
          // CPU: enough heads for every thread; GPUs: 32768 tokens (batch x S) at a model width of 2048 (heads x D).
          sh.batch = batch > 0 ? batch : host ? 1 : std::max<int64_t>(1, 32768 / s);
          sh.heads_q = heads > 0 ? heads : host ? std::max(4, threads_) : std::max<int64_t>(1, 2048 / d);
          sh.heads_kv = o_.heads_kv > 0 ? o_.heads_kv : sh.heads_q;
          shapes.push_back(sh);
        }
  return shapes;
}

bool Bench::peers_ready() {
  if (o_.peers == "none") return true;
  python_ = o_.python;
  if (python_.empty())
    python_ = std::getenv("FLASHPORT_PYTHON") != nullptr ? std::getenv("FLASHPORT_PYTHON") : "python3";
  peers_script_ = fb::find_peers_script(o_.peers_script);
  std::string why;
  if (peers_script_.empty())
    why = o_.peers_script.empty() ? "peers_torch.py not found (pass --peers-script)"
                                  : "--peers-script '" + o_.peers_script + "' cannot be read";
  else if (!fb::torch_importable(python_))
    why = "'" + python_ + " -c \"import torch\"' failed";
  if (why.empty()) return true;
  if (o_.peers == "torch") {
    std::fprintf(stderr,
                 "flashport-bench: --peers torch: %s; no case run (--peers auto runs without them, --python picks the "
                 "interpreter)\n",
                 why.c_str());
    return false;
  }
  progress("PyTorch peers skipped: %s", why.c_str());
  o_.peers = "none";
  return true;
}

bool Bench::run_peers(const std::vector<Shape>& shapes) {
  if (o_.peers == "none") return true;

  std::vector<fb::PeerCase> cases;
  std::vector<std::pair<size_t, bool>> keys;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    for (bool backward : {false, true}) {
      if ((backward && !o_.bwd) || (!backward && !o_.fwd)) continue;
      cases.push_back({backward ? "bwd" : "fwd", fb::dtype_name(s.dtype), s.batch, s.heads_q, s.heads_kv, s.seqlen_q,
                       s.seqlen_kv, s.head_dim, s.head_dim_v, s.causal});
      keys.emplace_back(i, backward);
    }
  }
  const std::string device = mem_.is_host() ? "cpu" : "cuda";
  progress("measuring PyTorch peers on %zu cases (%s) ...", cases.size(), peers_script_.c_str());
  fb::PeerRun run;
  std::string why;
  if (!fb::run_peers(python_, peers_script_, device, threads_, o_.reps, cases, !o_.quiet, &run, &why)) {
    if (o_.peers == "torch") {
      std::fprintf(stderr, "flashport-bench: --peers torch: %s; no case run\n", why.c_str());
      return false;
    }
    progress("PyTorch peers skipped: %s", why.c_str());
  }
  peer_info_ = run.info;
  for (const fb::PeerResult& r : run.results) {
    if (std::find(peer_names_.begin(), peer_names_.end(), r.peer) == peer_names_.end()) peer_names_.push_back(r.peer);
    if (r.ms > 0) peer_ms_[keys[r.case_index]][r.peer] = r.ms;
    else progress("peer %s declined case %zu: %s", r.peer.c_str(), r.case_index + 1, r.error.c_str());
  }
  return true;
}

void Bench::measure_naive(const Shape& s, bool backward, Measurement* m) {
  char key[160];
  std::snprintf(key, sizeof key, "%d/%lld/%lld/%lld/%lld/%lld/%lld/%lld/%d", backward ? 1 : 0,
                static_cast<long long>(s.batch), static_cast<long long>(s.heads_q),
                static_cast<long long>(s.heads_kv), static_cast<long long>(s.seqlen_q),
                static_cast<long long>(s.seqlen_kv), static_cast<long long>(s.head_dim),
                static_cast<long long>(s.head_dim_v), s.causal ? 1 : 0);
  if (auto it = naive_cache_.find(key); it != naive_cache_.end()) {
    *m = it->second;
    return;
  }
  // The materialised matrices: P (and dP for backward), fp32, one (batch, head) at a time.
  const double matrix_bytes = 4.0 * static_cast<double>(s.seqlen_q) * s.seqlen_kv * (backward ? 2 : 1);
  if (matrix_bytes > 4.0 * (1ull << 30)) {
    progress("naive baseline skipped: it would need %.1f GiB of score matrices", matrix_bytes / (1ull << 30));
    naive_cache_[key] = *m;
    return;
  }
  progress("  naive %s (fp32, S x S materialised) ...", backward ? "bwd" : "fwd");
  const fb::AttentionShape shape{s.batch,    s.heads_q,  s.heads_kv, s.seqlen_q,
                                 s.seqlen_kv, s.head_dim, s.head_dim_v, s.causal};
  const std::vector<float> q = fb::random_floats(static_cast<size_t>(s.batch * s.seqlen_q * s.heads_q * s.head_dim), 1);
  const std::vector<float> k =
      fb::random_floats(static_cast<size_t>(s.batch * s.seqlen_kv * s.heads_kv * s.head_dim), 2);
  const std::vector<float> v =
      fb::random_floats(static_cast<size_t>(s.batch * s.seqlen_kv * s.heads_kv * s.head_dim_v), 3);
  const std::vector<float> dout =
      fb::random_floats(static_cast<size_t>(s.batch * s.seqlen_q * s.heads_q * s.head_dim_v), 4);
  fb::NaiveTensors t{q.data(), k.data(), v.data(), dout.data(), {}, {}, {}, {}, {}};
  fb::naive_forward(shape, t);  // sizes and touches every output; backward needs out and lse
  if (backward) fb::naive_backward(shape, t);
  auto call = [&] { backward ? fb::naive_backward(shape, t) : fb::naive_forward(shape, t); };
  m->peak_extra_bytes = fb::peak_extra_bytes(call);
  std::vector<double> times;
  for (int r = 0; r < o_.reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    times.push_back(ms_since(t0));
  }
  m->ms = median(times);
  naive_cache_[key] = *m;
}

bool Bench::measure_shape(const Shape& s, std::vector<Row>* rows) {
  const size_t n_q = static_cast<size_t>(s.batch * s.seqlen_q * s.heads_q * s.head_dim);
  const size_t n_k = static_cast<size_t>(s.batch * s.seqlen_kv * s.heads_kv * s.head_dim);
  const size_t n_v = static_cast<size_t>(s.batch * s.seqlen_kv * s.heads_kv * s.head_dim_v);
  const size_t n_o = static_cast<size_t>(s.batch * s.seqlen_q * s.heads_q * s.head_dim_v);
  const size_t n_lse = static_cast<size_t>(s.batch * s.heads_q * s.seqlen_q);
  const size_t es = fb::dtype_size(s.dtype);
  std::string why;

  // Device buffers, every one written before use so that host pages are resident before the memory probe and
  // device outputs are never uninitialised.
  auto make = [&](size_t bytes, const std::vector<uint8_t>& host) -> DeviceBuffer {
    DeviceBuffer b(mem_, bytes, &why);
    if (b.get() == nullptr) return b;
    if (!b.upload(host.data(), &why)) b.reset();
    return b;
  };
  auto random = [&](size_t n, uint64_t seed) { return fb::convert_from_f32(fb::random_floats(n, seed), s.dtype); };
  DeviceBuffer q = make(n_q * es, random(n_q, 1)), k = make(n_k * es, random(n_k, 2)),
               v = make(n_v * es, random(n_v, 3)), out = make(n_o * es, std::vector<uint8_t>(n_o * es, 0xff)),
               lse = make(n_lse * 4, std::vector<uint8_t>(n_lse * 4, 0xff));
  DeviceBuffer dout, dq, dk, dv;
  if (o_.bwd) {
    dout = make(n_o * es, random(n_o, 4));
    dq = make(n_q * es, std::vector<uint8_t>(n_q * es, 0xff));
    dk = make(n_k * es, std::vector<uint8_t>(n_k * es, 0xff));
    dv = make(n_v * es, std::vector<uint8_t>(n_v * es, 0xff));
  }
  for (const DeviceBuffer* b : {&q, &k, &v, &out, &lse, &dout, &dq, &dk, &dv}) {
    const bool needed = o_.bwd || (b != &dout && b != &dq && b != &dk && b != &dv);
    if (needed && b->get() == nullptr) {
      std::fprintf(stderr, "flashport-bench: %s\n", why.c_str());
      ++failures_;
      return false;
    }
  }

  const auto dev = static_cast<flashport_device_type>(mem_.device_type());
  const int32_t id = mem_.device_id();
  auto tensor = [&](const DeviceBuffer& b, int64_t seqlen, int64_t heads, int64_t dim) {
    flashport_tensor t;
    flashport_tensor_init_contiguous(&t, b.get(), s.dtype, dev, id, s.batch, seqlen, heads, dim);
    return t;
  };
  flashport_forward_args fa;
  flashport_forward_args_init(&fa);
  fa.q = tensor(q, s.seqlen_q, s.heads_q, s.head_dim);
  fa.k = tensor(k, s.seqlen_kv, s.heads_kv, s.head_dim);
  fa.v = tensor(v, s.seqlen_kv, s.heads_kv, s.head_dim_v);
  fa.out = tensor(out, s.seqlen_q, s.heads_q, s.head_dim_v);
  flashport_lse_init_contiguous(&fa.lse, static_cast<float*>(lse.get()), dev, id, s.batch, s.heads_q, s.seqlen_q);
  fa.causal = s.causal ? 1 : 0;
  fa.backend = o_.backend.c_str();

  flashport_backward_args ba;
  flashport_backward_args_init(&ba);
  if (o_.bwd) {
    ba.dout = tensor(dout, s.seqlen_q, s.heads_q, s.head_dim_v);
    ba.q = fa.q;
    ba.k = fa.k;
    ba.v = fa.v;
    ba.out = fa.out;
    ba.lse = fa.lse;
    ba.dq = tensor(dq, s.seqlen_q, s.heads_q, s.head_dim);
    ba.dk = tensor(dk, s.seqlen_kv, s.heads_kv, s.head_dim);
    ba.dv = tensor(dv, s.seqlen_kv, s.heads_kv, s.head_dim_v);
    ba.causal = fa.causal;
    ba.backend = fa.backend;
    ba.deterministic = o_.deterministic ? 1 : 0;
  }

  // A status from the API: declining a valid case (unsupported, no backend) skips it; anything else is a failure.
  flashport_status last = FLASHPORT_STATUS_OK;
  std::string last_message;
  auto fwd_call = [&] {
    last = flashport_forward(&fa);
    if (last != FLASHPORT_STATUS_OK) last_message = flashport_last_error();
    return last == FLASHPORT_STATUS_OK;
  };
  auto bwd_call = [&] {
    last = flashport_backward(&ba);
    if (last != FLASHPORT_STATUS_OK) last_message = flashport_last_error();
    return last == FLASHPORT_STATUS_OK;
  };
  auto report = [&](const char* what) {  // always returns false, for `return report(...)`
    const bool declined = last == FLASHPORT_STATUS_UNSUPPORTED || last == FLASHPORT_STATUS_NO_BACKEND;
    const std::string text = last != FLASHPORT_STATUS_OK
                                 ? std::string(flashport_status_string(last)) + ": " + last_message
                                 : why;
    std::fprintf(stderr, "flashport-bench: %s %s %s D=%lld S=%lld%s: %s\n", declined ? "skipped" : "FAILED", what,
                 fb::dtype_name(s.dtype), static_cast<long long>(s.head_dim), static_cast<long long>(s.seqlen_q),
                 s.causal ? " causal" : "", text.c_str());
    if (declined && first_skip_.empty()) first_skip_ = text;
    declined ? ++skipped_ : ++failures_;
    return false;
  };

  bool fwd_done = false;
  for (bool backward : {false, true}) {
    if ((backward && !o_.bwd) || (!backward && !o_.fwd)) continue;
    const char* what = backward ? "bwd" : "fwd";
    progress("  flashport %s ...", what);
    if (backward && !fwd_done) {  // backward reads the forward's out and lse
      if (!fwd_call() || !mem_.synchronize(nullptr, &why)) return report("fwd");
    }
    const std::function<bool()> call = backward ? std::function<bool()>(bwd_call) : std::function<bool()>(fwd_call);
    Row row{s, backward, {}, {}, peer_ms_[{shape_index_, backward}]};
    if (!time_calls(mem_, o_.warmup, o_.reps, call, &row.flashport.ms, &why)) return report(what);
    fwd_done = true;
    if (mem_.is_host()) {
      row.flashport.peak_extra_bytes = fb::peak_extra_bytes([&] { call(); });
      if (o_.naive) measure_naive(s, backward, &row.naive);
    }
    print_row(row);
    rows->push_back(row);
  }
  return true;
}

void Bench::print_header() const {
  if (o_.json || header_printed_) return;
  const bool host = mem_.is_host();
  std::printf("%-3s %-4s %3s %3s %3s %4s %6s %3s %9s %9s", "dir", "type", "B", "Hq", "Hkv", "D", "S", "cau", "ms",
              host ? "GFLOP/s" : "TFLOP/s");
  if (host) std::printf(" %6s %9s", "%gemm", "extraMiB");
  if (host && o_.naive) std::printf(" | %9s %7s %9s", "naive", "x_naive", "naiveMiB");
  for (const std::string& p : peer_names_) std::printf(" | %9s %7s", p.c_str(), ("x_" + p).c_str());
  std::printf("\n");
}

void Bench::print_row(const Row& r) {
  const Shape& s = r.shape;
  const double flops = direction_flops(s, r.backward);
  const double ours = rate(flops, r.flashport.ms);
  if (o_.json) {
    std::string line = "{";
    auto field = [&](const std::string& key, const std::string& value) {
      line += (line.size() > 1 ? ", \"" : "\"") + key + "\": " + value;
    };
    auto quoted = [](const std::string& text) { return "\"" + text + "\""; };
    field("backend", quoted(o_.backend));
    field("direction", quoted(r.backward ? "bwd" : "fwd"));
    field("dtype", quoted(fb::dtype_name(s.dtype)));
    field("batch", std::to_string(s.batch));
    field("heads_q", std::to_string(s.heads_q));
    field("heads_kv", std::to_string(s.heads_kv));
    field("seqlen_q", std::to_string(s.seqlen_q));
    field("seqlen_kv", std::to_string(s.seqlen_kv));
    field("head_dim", std::to_string(s.head_dim));
    field("head_dim_v", std::to_string(s.head_dim_v));
    field("causal", s.causal ? "true" : "false");
    if (r.backward) field("deterministic", o_.deterministic ? "true" : "false");
    field("threads", std::to_string(threads_));
    field("reps", std::to_string(o_.reps));
    field("ms", json_number(r.flashport.ms, true));
    field("tflops", json_number(ours * 1e-12, true));
    field("gflops", json_number(ours * 1e-9, true));
    field("peak_extra_bytes", json_bytes(r.flashport.peak_extra_bytes));
    if (mem_.is_host() && gemm_gflops_ > 0) {
      field("ceiling_gemm_gflops", json_number(gemm_gflops_, true));
      field("frac_of_gemm", json_number(ours * 1e-9 / gemm_gflops_, true));
      above_gemm_ = above_gemm_ || std::lround(100.0 * ours * 1e-9 / gemm_gflops_) > 100;
    }
    auto peer = [&](const std::string& name, double ms) {
      const double theirs = rate(flops, ms);
      field("peer_" + name + "_ms", json_number(ms, ms > 0));
      field("peer_" + name + "_tflops", json_number(theirs * 1e-12, ms > 0));
      field("ratio_" + name, json_number(ours / theirs, ms > 0));
    };
    if (r.naive.ms > 0) {
      peer("naive", r.naive.ms);
      field("peer_naive_peak_extra_bytes", json_bytes(r.naive.peak_extra_bytes));
    }
    for (const std::string& p : peer_names_)
      if (auto it = r.peer_ms.find(p); it != r.peer_ms.end()) peer(p, it->second);
    std::printf("%s}\n", line.c_str());
    std::fflush(stdout);
    return;
  }
  print_header();
  header_printed_ = true;
  const bool host = mem_.is_host();
  const double unit = host ? 1e-9 : 1e-12;
  auto mib = [](int64_t bytes) { return bytes >= 0 ? bytes / 1048576.0 : std::nan(""); };
  std::printf("%-3s %-4s %3lld %3lld %3lld %4lld %6lld %3s %s %s", r.backward ? "bwd" : "fwd",
              fb::dtype_name(s.dtype), static_cast<long long>(s.batch), static_cast<long long>(s.heads_q),
              static_cast<long long>(s.heads_kv), static_cast<long long>(s.head_dim),
              static_cast<long long>(s.seqlen_q), s.causal ? "yes" : "no", cell(r.flashport.ms, 9, 3).c_str(),
              cell(ours * unit, 9, 1).c_str());
  if (host) {
    // Above the ceiling: "%*", explained by the footnote under the table.
    const double pct_of_gemm = gemm_gflops_ > 0 ? 100.0 * ours * 1e-9 / gemm_gflops_ : -1;
    const bool above = std::isfinite(pct_of_gemm) && std::lround(pct_of_gemm) > 100;
    above_gemm_ = above_gemm_ || above;
    const std::string pct = pct_of_gemm < 0 ? cell(-1, 6, 0)
                            : above         ? cell(pct_of_gemm, 4, 0) + "%*"
                                            : cell(pct_of_gemm, 5, 0) + "%";
    std::printf(" %s %s", pct.c_str(), cell(mib(r.flashport.peak_extra_bytes), 9, 2).c_str());
  }
  if (host && o_.naive) {
    const double naive = rate(flops, r.naive.ms);
    std::printf(" | %s %s %s", cell(naive * unit, 9, 1).c_str(), cell(ours / naive, 7, 2).c_str(),
                cell(mib(r.naive.peak_extra_bytes), 9, 2).c_str());
  }
  for (const std::string& p : peer_names_) {
    const auto it = r.peer_ms.find(p);
    const double theirs = it != r.peer_ms.end() ? rate(flops, it->second) : std::nan("");
    std::printf(" | %s %s", cell(theirs * unit, 9, 1).c_str(), cell(ours / theirs, 7, 2).c_str());
  }
  std::printf("\n");
  std::fflush(stdout);
}

int Bench::run() {
  threads_ = omp_get_max_threads();
  // Default repetitions; --quick on the CPU takes fewer, unless --reps says how many.
  if (o_.reps == 0) o_.reps = mem_.is_host() ? (o_.quick ? 3 : 5) : 20;
  const std::vector<Shape> shapes = grid();
  // Checked before anything is measured: an explicit --heads was checked with the options, this is the default.
  for (const Shape& s : shapes) {
    if (s.heads_q % s.heads_kv == 0) continue;
    std::fprintf(stderr,
                 "flashport-bench: --heads-kv %lld does not divide the default --heads %lld (D %lld, %d threads); "
                 "pass --heads too\n(see flashport-bench --help)\n",
                 static_cast<long long>(s.heads_kv), static_cast<long long>(s.heads_q),
                 static_cast<long long>(s.head_dim), threads_);
    return 2;
  }
  if (!peers_ready()) return 1;

  std::string description;  // the backend's own one-line description, for the table's header
  for (int32_t i = 0; i < flashport_backend_count(); ++i) {
    flashport_backend_info info;
    flashport_backend_info_init(&info);
    if (flashport_backend_info_get(i, &info) == FLASHPORT_STATUS_OK && o_.backend == info.name &&
        info.status_message != nullptr)
      description = info.status_message;
  }

  if (o_.gemm_n < 0) o_.gemm_n = threads_ <= 4 ? 2048 : 4096;
  if (mem_.is_host() && o_.gemm_n > 0) {
    progress("measuring the Eigen fp32 GEMM ceiling (%d^3, %d threads) ...", o_.gemm_n, threads_);
    gemm_gflops_ = fb::eigen_sgemm_gflops(o_.gemm_n, kGemmCeilingSamples);
  }
  if (!run_peers(shapes)) return 1;

  if (!o_.json) {
    std::printf("flashport %s, backend %s (%s), %d threads, %d reps (median), %d warm-up\n",
                flashport_version_string(), o_.backend.c_str(), description.c_str(), threads_, o_.reps, o_.warmup);
    std::printf("FLOPs: FlashAttention convention (fwd 4*B*Hq*Sq*Skv*D, causal halved; bwd 2.5x fwd)\n");
    if (gemm_gflops_ > 0)
      std::printf("ceiling: Eigen fp32 GEMM %d^3 on the same threads, best of %d: %.1f GFLOP/s\n", o_.gemm_n,
                  kGemmCeilingSamples, gemm_gflops_);
    if (mem_.is_host()) std::printf("memory: %s\n", fb::memory_probe_method());
    if (mem_.is_host() && o_.naive)
      std::printf("naive: Eigen fp32, full S x S scores, GEMMs parallel inside Eigen (bf16/f16 rows: fp32 naive)\n");
    for (const std::string& line : peer_info_) std::printf("peers: %s\n", line.c_str());
    std::printf("\n");
  }

  std::vector<Row> rows;
  for (shape_index_ = 0; shape_index_ < shapes.size(); ++shape_index_) {
    const Shape& s = shapes[shape_index_];
    progress("[%zu/%zu] %s B=%lld Hq=%lld Hkv=%lld D=%lld S=%lld%s", shape_index_ + 1, shapes.size(),
             fb::dtype_name(s.dtype), static_cast<long long>(s.batch), static_cast<long long>(s.heads_q),
             static_cast<long long>(s.heads_kv), static_cast<long long>(s.head_dim),
             static_cast<long long>(s.seqlen_q), s.causal ? " causal" : "");
    measure_shape(s, &rows);
  }
  if (above_gemm_) {
    // What the ceiling is and why attention can pass it; print_row marks those cells "%*".
    char note[640];
    std::snprintf(note, sizeof note,
                  "* above 100 %% of the ceiling. The ceiling is the best of %d single Eigen fp32 GEMMs of %d^3,\n"
                  "  threaded inside Eigen on the same %d thread(s); one GEMM scales worse with threads than\n"
                  "  attention, which splits its work over batch, heads and query blocks, so attention can pass it\n"
                  "  at many threads (and a small --gemm-n understates it). A same-run reference, not the peak.",
                  kGemmCeilingSamples, o_.gemm_n, threads_);
    if (o_.json) progress("%s", note);
    else std::printf("\n%s\n", note);
  }
  if (failures_ > 0 || skipped_ > 0)
    std::fprintf(stderr, "flashport-bench: %zu measured, %d skipped (declined by the backend), %d failed\n",
                 rows.size(), skipped_, failures_);
  if (rows.empty()) {
    std::fprintf(stderr, "flashport-bench: nothing measured: %s\n",
                 failures_ == 0 ? ("backend '" + o_.backend + "' declined every case, e.g. " + first_skip_).c_str()
                 : skipped_ == 0 ? "every case failed (messages above)"
                                 : "every case failed or was declined (messages above)");
    return 1;
  }
  return failures_ > 0 ? 1 : 0;
}

int list_backends() {
  const int32_t n = flashport_backend_count();
  std::printf("%-10s %-6s %-9s %-7s %s\n", "name", "device", "available", "devices", "status / module");
  for (int32_t i = 0; i < n; ++i) {
    flashport_backend_info info;
    flashport_backend_info_init(&info);
    if (flashport_backend_info_get(i, &info) != FLASHPORT_STATUS_OK) continue;
    const char* device = info.device_type == FLASHPORT_DEVICE_CPU    ? "cpu"
                         : info.device_type == FLASHPORT_DEVICE_CUDA ? "cuda"
                         : info.device_type == FLASHPORT_DEVICE_ROCM ? "rocm"
                                                                     : "?";
    std::printf("%-10s %-6s %-9s %-7d %s%s%s\n", info.name, device, info.available ? "yes" : "no",
                info.device_count, info.status_message != nullptr ? info.status_message : "",
                info.module_path != nullptr && info.module_path[0] != '\0' ? "  " : "",
                info.module_path != nullptr ? info.module_path : "");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  if (o.list) return list_backends();
  if (o.threads > 0) omp_set_num_threads(o.threads);
  std::string why;
  std::unique_ptr<DeviceMemory> mem = flashport::tools::device_memory_for(o.backend.c_str(), &why, o.device);
  if (!mem) {
    std::fprintf(stderr, "flashport-bench: cannot use backend '%s': %s\n", o.backend.c_str(), why.c_str());
    return 1;
  }
  Bench bench(std::move(o), *mem);
  return bench.run();
}
