// Matching a device's architecture name against the targets the module was built for.
#ifndef FLASHPORT_HIP_TARGETS_H
#define FLASHPORT_HIP_TARGETS_H

#include <string>
#include <vector>

namespace flashport::hip {

// "gfx90a:sramecc+:xnack-" -> {"gfx90a", "sramecc+", "xnack-"}
inline std::vector<std::string> split_target(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    if (end == std::string::npos) end = s.size();
    parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// Whether code built for `target` (as in FLASHPORT_HIP_ARCHS) runs on a device reporting `device_arch` (its
// gcnArchName). Code built for "gfx90a" runs on every gfx90a whatever its xnack/sramecc mode; code built with a
// feature ("gfx90a:xnack+") only where the device reports that same setting.
inline bool target_runs_on(const std::string& target, const std::string& device_arch) {
  const std::vector<std::string> want = split_target(target);
  const std::vector<std::string> dev = split_target(device_arch);
  if (want[0] != dev[0]) return false;
  for (size_t i = 1; i < want.size(); ++i) {
    bool found = false;
    for (size_t j = 1; j < dev.size(); ++j) found = found || dev[j] == want[i];
    if (!found) return false;
  }
  return true;
}

}  // namespace flashport::hip

#endif
