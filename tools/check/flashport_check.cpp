// flashport-check: runs the conformance suite (tests/conformance: float64 reference, fixed case list, runner) on
// every backend this machine can run, and prints one table: backend, device, cases, worst error, pass/fail.
// It is how a user confirms a build on their hardware (an AMD GPU with the hip backend, say).
//
//   flashport-check [--quick] [--forward-only] [--backend NAME]...
//     --quick         every fourth case (CI); the full list otherwise
//     --forward-only  skip the backward pass
//     --backend NAME  only these backends (repeatable); default: every available one
//
// A case a backend declines (UNSUPPORTED or NO_BACKEND, with its reason) counts as skipped, not failed; the table
// shows how many, with the first reason. When only the backward is declined, the case's forward is still checked. Exit code: 0 when every case that ran passed, 1 otherwise, 2 on bad usage.
#include <algorithm>
#include <cstdio>
#include <cstring>
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

void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--quick] [--forward-only] [--verbose] [--backend NAME]...\n", argv0);
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
      if (opt.verbose) std::printf("  skip %s: %s\n", info.name, r.message.c_str());
      continue;
    }
    ++row.run;
    for (const fc::OutputCheck& o : r.outputs) row.worst_rel = std::max(row.worst_rel, o.rel_err);
    if (!r.pass) {
      ++row.failed;
      std::printf("  FAIL %s device %s: %s\n", info.name, row.device.c_str(), r.message.c_str());
    }
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      opt.quick = true;
    } else if (std::strcmp(argv[i], "--forward-only") == 0) {
      opt.forward_only = true;
    } else if (std::strcmp(argv[i], "--verbose") == 0) {
      opt.verbose = true;
    } else if (std::strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
      opt.backends.emplace_back(argv[++i]);
    } else {
      usage(argv[0]);
      return 2;
    }
  }

  std::vector<fc::Case> cases = fc::conformance_cases();
  if (opt.quick) {
    std::vector<fc::Case> some;
    for (size_t i = 0; i < cases.size(); i += 4) some.push_back(cases[i]);
    cases.swap(some);
  }
  std::printf("flashport %s: %zu conformance cases%s against the float64 reference\n", flashport_version_string(),
              cases.size(), opt.forward_only ? " (forward)" : " (forward + backward)");

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
  for (const Row& r : rows) {
    const bool pass = r.failed == 0;
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
