#include "peers.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace flashport::bench {
namespace {

bool file_exists(const std::string& path) { return !path.empty() && access(path.c_str(), R_OK) == 0; }

std::string executable_dir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  std::string path(buf);
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// Single-quoted for /bin/sh: the only character needing care inside '...' is the quote itself.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Minimal readers for the flat JSON objects the script prints (no nesting, no escapes in values we read).
const char* find_key(const std::string& line, const char* key) {
  const std::string quoted = std::string("\"") + key + "\"";
  const size_t at = line.find(quoted);
  if (at == std::string::npos) return nullptr;
  const char* p = line.c_str() + at + quoted.size();
  while (*p == ' ' || *p == ':') ++p;
  return p;
}

bool json_number(const std::string& line, const char* key, double* value) {
  const char* p = find_key(line, key);
  if (p == nullptr) return false;
  char* end = nullptr;
  *value = std::strtod(p, &end);
  return end != p;
}

bool json_string(const std::string& line, const char* key, std::string* value) {
  const char* p = find_key(line, key);
  if (p == nullptr || *p != '"') return false;
  const char* end = std::strchr(p + 1, '"');
  if (end == nullptr) return false;
  value->assign(p + 1, end);
  return true;
}

}  // namespace

std::string find_peers_script(const std::string& explicit_path) {
  if (!explicit_path.empty()) return file_exists(explicit_path) ? explicit_path : std::string();
  if (const char* env = std::getenv("FLASHPORT_PEERS_SCRIPT"); env != nullptr && file_exists(env)) return env;
  const std::string dir = executable_dir();
  for (const std::string& candidate : {dir + "/peers_torch.py", dir + "/../share/flashport/peers_torch.py"})
    if (file_exists(candidate)) return candidate;
  return {};
}

bool torch_importable(const std::string& python) {
  const std::string cmd = shell_quote(python) + " -c 'import torch' >/dev/null 2>&1";
  const int rc = std::system(cmd.c_str());
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

bool run_peers(const std::string& python, const std::string& script, const std::string& device, int threads,
               int reps, const std::vector<PeerCase>& cases, bool verbose, PeerRun* run, std::string* why) {
  // Cases travel on the command line as dir:dtype:B:Hq:Hkv:Sq:Skv:D:Dv:causal, one argument each.
  std::string cmd = shell_quote(python) + " " + shell_quote(script) + " --device " + device + " --threads " +
                    std::to_string(threads) + " --reps " + std::to_string(reps);
  for (const PeerCase& c : cases) {
    cmd += " " + c.direction + ":" + c.dtype + ":" + std::to_string(c.batch) + ":" + std::to_string(c.heads_q) +
           ":" + std::to_string(c.heads_kv) + ":" + std::to_string(c.seqlen_q) + ":" + std::to_string(c.seqlen_kv) +
           ":" + std::to_string(c.head_dim) + ":" + std::to_string(c.head_dim_v) + ":" + (c.causal ? "1" : "0");
  }
  // The script's progress goes to our stderr unless quiet.
  if (!verbose) cmd += " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    *why = "cannot start " + python + ": " + std::strerror(errno);
    return false;
  }
  std::string line;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) {
    line += buf;
    if (line.empty() || line.back() != '\n') continue;  // a longer line continues in the next chunk
    std::string info, peer;
    double index = -1;
    if (json_string(line, "info", &info)) {
      run->info.push_back(info);
    } else if (json_number(line, "case", &index) && json_string(line, "peer", &peer) && index >= 0 &&
               index < static_cast<double>(cases.size())) {
      PeerResult r{static_cast<size_t>(index), peer, -1.0, {}};
      if (!json_number(line, "ms", &r.ms) || !(r.ms > 0)) {
        r.ms = -1.0;
        if (!json_string(line, "error", &r.error)) r.error = "no time reported";
      }
      run->results.push_back(r);
    }
    line.clear();
  }
  const int rc = pclose(pipe);
  if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
    *why = script + " exited with status " + std::to_string(rc == -1 || !WIFEXITED(rc) ? -1 : WEXITSTATUS(rc));
    return false;
  }
  return true;
}

}  // namespace flashport::bench
