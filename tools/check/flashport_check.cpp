// flashport-check: runs the conformance suite (tests/conformance: float64 reference, fixed case list, runner) on
// every backend this machine can run, and prints one table: backend, device, cases, worst error, pass/fail.
// It is how a user confirms a build on their hardware (an AMD GPU with the hip backend, say). Options, table and
// exit codes: kUsage below and docs/tools.md.
//
// A case a backend declines (UNSUPPORTED or NO_BACKEND, with its reason) counts as skipped, not failed; the table
// shows how many, with the first reason. When only the backward is declined, the case's forward is still checked.
// A backend that runs none of the cases has shown nothing and fails.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cases.h"
#include "device_memory.h"
#include "flashport/flashport.h"
#include "runner.h"

namespace fc = flashport::conformance;

namespace {

struct Options {
  bool quick = false;
  bool forward_only = false;
  bool verbose = false;
  std::vector<std::string> backends;
};

struct Row {
  std::string backend, device;
  int run = 0, skipped = 0, failed = 0;
  int backward_skipped = 0;  // cases whose forward ran but whose backward the backend declined
  double worst_rel = 0.0;
  std::string note;  // why the backend could not run at all, or the first skip reason
  std::string backward_note;
};

const char* kUsage = R"(usage: flashport-check [options]

Checks every backend this machine can run against a float64 reference on the same inputs: a fixed list of
conformance cases (odd sizes, Sq != Skv, GQA and MQA, Dv != Dqk, causal, windows, softcap, strided layouts, f32,
bf16 and f16, head dims 32..256), forward and backward, then prints one table row per backend and device.

  --backend NAME   check only this backend (repeatable); a backend named here must be available, or the check
                   fails. Default: every available backend, on every device it sees
  --quick          every fourth case (what CI runs); the full list otherwise
  --forward-only   the forward pass only
  --verbose        one line per case before the table: its errors per output, and the reason of every skip
  --help           this text

A case passes when every output (out, lse; dq, dk, dv with the backward) is written everywhere in its view, nowhere
outside it, and its max |backend - reference| is within the tolerance: 2e-5 + 2e-5 * max|reference| for f32 (and lse
of every dtype); for bf16/f16 outputs twice the error of the same naive algorithm run in that dtype, plus the f32
bound. A case the backend declines (UNSUPPORTED, NO_BACKEND) is skipped, not failed.

Exit status: 0 when every backend checked ran at least one case and every case run passed; 1 when a case failed, a
backend named by --backend is unknown or unavailable, or a backend ran no case (or none was checked); 2 on bad usage.
More: docs/tools.md.
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "flashport-check: %s\n(see flashport-check --help)\n", message.c_str());
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--forward-only") {
      o.forward_only = true;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--backend") {
      if (i + 1 >= argc || argv[i + 1][0] == '\0') usage_error("--backend needs a backend name");
      o.backends.emplace_back(argv[++i]);
    } else {
      usage_error("unknown option '" + a + "'");
    }
  }
  return o;
}

// --verbose: one line per case with each output's relative error and its max abs error as a share of the tolerance.
void print_case(const char* verdict, const fc::Case& c, const Row& row, const fc::Result& r) {
  std::printf("  %-4s %s/%s %s:", verdict, row.backend.c_str(), row.device.c_str(), c.describe().c_str());
  for (const fc::OutputCheck& o : r.outputs)
    std::printf(" %s %.2e (%.0f%%)", o.name.c_str(), o.rel_err,
                o.tolerance > 0 ? 100.0 * o.max_abs_err / o.tolerance : 0.0);
  std::printf("\n");
}

Row check_backend(const flashport_backend_info& info, int32_t device, const std::vector<fc::Case>& cases,
                  const Options& opt) {
  Row row;
  row.backend = info.name;
  row.device = info.device_type == FLASHPORT_DEVICE_CPU ? "cpu" : std::to_string(device);
  std::string why;
  auto memory = flashport::tools::device_memory_for(info.name, &why, device);
  if (memory == nullptr) {
    row.failed = 1;
    row.note = "no device memory: " + why;
    return row;
  }
  for (const fc::Case& c : cases) {
    fc::Result r = fc::run_case(c, info.name, *memory, !opt.forward_only);
    if (r.skipped && !opt.forward_only) {
      // A backend may run the forward of a case but not its backward (the hip backend, for one): check the forward.
      fc::Result forward = fc::run_case(c, info.name, *memory, false);
      if (!forward.skipped) {
        ++row.backward_skipped;
        if (row.backward_note.empty()) row.backward_note = r.message;
        r = std::move(forward);
      }
    }
    if (r.skipped) {
      ++row.skipped;
      if (row.note.empty()) row.note = "skipped e.g. " + r.message;
      if (opt.verbose) std::printf("  skip %s/%s %s\n", info.name, row.device.c_str(), r.message.c_str());
      continue;
    }
    ++row.run;
    for (const fc::OutputCheck& o : r.outputs) row.worst_rel = std::max(row.worst_rel, o.rel_err);
    if (!r.pass) {
      ++row.failed;
      if (opt.verbose) print_case("FAIL", c, row, r);
      std::printf("  FAIL %s device %s: %s\n", info.name, row.device.c_str(), r.message.c_str());
    } else if (opt.verbose) {
      print_case("ok", c, row, r);
    }
  }
  if (row.run == 0 && row.note.empty()) row.note = "no case ran";
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_options(argc, argv);

  std::vector<fc::Case> cases = fc::conformance_cases();
  if (opt.quick) {
    std::vector<fc::Case> some;
    for (size_t i = 0; i < cases.size(); i += 4) some.push_back(cases[i]);
    cases.swap(some);
  }
  std::printf("flashport %s: %zu conformance cases%s against the float64 reference\n", flashport_version_string(),
              cases.size(), opt.forward_only ? " (forward)" : " (forward + backward)");
  if (opt.verbose)
    std::printf("(per case and output: relative error, then max abs error as %% of the tolerance; ok at <= 100%%)\n");

  std::vector<Row> rows;
  std::vector<std::string> unavailable;
  for (int32_t i = 0; i < flashport_backend_count(); ++i) {
    flashport_backend_info info;
    flashport_backend_info_init(&info);
    if (flashport_backend_info_get(i, &info) != FLASHPORT_STATUS_OK) continue;
    const bool wanted = opt.backends.empty() ||
                        std::find(opt.backends.begin(), opt.backends.end(), info.name) != opt.backends.end();
    if (!wanted) continue;
    if (!info.available) {
      unavailable.push_back(std::string(info.name) + ": " + info.status_message);
      // A backend asked for by name must run.
      if (!opt.backends.empty()) {
        Row r;
        r.backend = info.name;
        r.device = "-";
        r.failed = 1;
        r.note = std::string("unavailable: ") + info.status_message;
        rows.push_back(r);
      }
      continue;
    }
    const int32_t devices = info.device_type == FLASHPORT_DEVICE_CPU ? 1 : info.device_count;
    for (int32_t d = 0; d < devices; ++d) rows.push_back(check_backend(info, d, cases, opt));
  }
  for (const std::string& name : opt.backends) {
    const bool listed = std::any_of(rows.begin(), rows.end(), [&](const Row& r) { return r.backend == name; });
    if (!listed) {
      std::printf("unknown backend '%s'\n", name.c_str());
      Row r;
      r.backend = name;
      r.device = "-";
      r.failed = 1;
      r.note = "not registered";
      rows.push_back(r);
    }
  }

  std::printf("\n%-10s %-7s %6s %8s %12s  %s\n", "backend", "device", "cases", "skipped", "worst error", "result");
  bool ok = !rows.empty();
  if (rows.empty()) std::printf("(no backend checked)\n");
  for (const Row& r : rows) {
    const bool pass = r.failed == 0 && r.run > 0;
    ok = ok && pass;
    std::printf("%-10s %-7s %6d %8d %12.3e  %s\n", r.backend.c_str(), r.device.c_str(), r.run, r.skipped,
                r.worst_rel, pass ? "pass" : "FAIL");
    if (!r.note.empty() && (!pass || opt.verbose || r.run == 0 || r.skipped > 0))
      std::printf("    %s\n", r.note.c_str());
    if (r.backward_skipped > 0)
      std::printf("    backward declined in %d of these cases (forward checked), e.g. %s\n", r.backward_skipped,
                  r.backward_note.c_str());
  }
  std::printf("(worst error: max |backend - reference| / max |reference| over every output of every case run)\n");
  for (const std::string& u : unavailable) std::printf("not available: %s\n", u.c_str());
  return ok ? 0 : 1;
}
