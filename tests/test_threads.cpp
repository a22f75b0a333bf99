// Many threads calling at once: the same bits as serial calls, and each thread's last_error is its own.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dispatch_fixture.h"

namespace {

constexpr int kThreads = 8;

// Problem i: its own sizes, options, dtype and data, so the threads really run different work.
std::unique_ptr<dispatch_test::Backward> make_problem(int i) {
  dispatch_test::Shape s;
  s.batch = 1 + i % 2;
  s.seqlen_q = 9 + 7 * i;
  s.seqlen_kv = 33 - 2 * i;
  s.heads_q = 4;
  s.heads_kv = 1 + i % 2;
  s.head_dim_qk = 16 + 8 * (i % 3);
  s.head_dim_v = 16;
  const flashport_dtype dtype = i % 2 == 0 ? FLASHPORT_DTYPE_F32 : FLASHPORT_DTYPE_BF16;
  auto b = std::make_unique<dispatch_test::Backward>(s, dtype, 100u + static_cast<uint32_t>(i));
  b->args.causal = i % 3 == 0;
  b->args.deterministic = 1;  // the comparison below is bitwise
  return b;
}

using Bytes = std::vector<unsigned char>;

struct Result {
  Bytes out, lse, dq, dk, dv;
  flashport_status forward = FLASHPORT_STATUS_INTERNAL, backward = FLASHPORT_STATUS_INTERNAL;
};

// Forward (fills out and lse) then backward on a fresh copy of problem i.
Result run(int i) {
  std::unique_ptr<dispatch_test::Backward> b = make_problem(i);
  Result r;
  r.forward = b->run_forward();
  r.backward = flashport_backward(&b->args);
  r.out = b->out.bytes;
  r.lse = b->lse.bytes;
  r.dq = b->dq.bytes;
  r.dk = b->dk.bytes;
  r.dv = b->dv.bytes;
  return r;
}

}  // namespace

TEST_CASE("threads: concurrent forward and backward match serial calls bitwise") {
  std::vector<Result> serial;
  for (int i = 0; i < kThreads; ++i) serial.push_back(run(i));

  std::vector<Result> parallel(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();  // start together
      parallel[static_cast<size_t>(i)] = run(i);
    });
  }
  for (std::thread& t : threads) t.join();

  for (int i = 0; i < kThreads; ++i) {
    INFO("problem ", i);
    const Result& s = serial[static_cast<size_t>(i)];
    const Result& p = parallel[static_cast<size_t>(i)];
    CHECK(s.forward == FLASHPORT_STATUS_OK);
    CHECK(s.backward == FLASHPORT_STATUS_OK);
    CHECK(p.forward == FLASHPORT_STATUS_OK);
    CHECK(p.backward == FLASHPORT_STATUS_OK);
    CHECK(p.out == s.out);
    CHECK(p.lse == s.lse);
    CHECK(p.dq == s.dq);
    CHECK(p.dk == s.dk);
    CHECK(p.dv == s.dv);
  }
}

TEST_CASE("threads: last_error is per thread") {
  std::atomic<int> ready{0};
  std::vector<std::string> errors(kThreads);
  std::vector<flashport_status> statuses(kThreads, FLASHPORT_STATUS_INTERNAL);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      dispatch_test::Forward f({}, FLASHPORT_DTYPE_F32, static_cast<uint32_t>(i));
      if (i % 2 == 1) f.args.causal = 10 + i;  // odd threads fail, each with its own value
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      statuses[static_cast<size_t>(i)] = flashport_forward(&f.args);
      // Read after every thread has made its call, so a shared message would show up here.
      ++ready;
      while (ready.load() < 2 * kThreads) std::this_thread::yield();
      errors[static_cast<size_t>(i)] = flashport_last_error();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    INFO("thread ", i);
    if (i % 2 == 1) {
      CHECK(statuses[static_cast<size_t>(i)] == FLASHPORT_STATUS_INVALID_ARGUMENT);
      CHECK(errors[static_cast<size_t>(i)] == "causal = " + std::to_string(10 + i) + "; must be 0 or 1");
    } else {
      CHECK(statuses[static_cast<size_t>(i)] == FLASHPORT_STATUS_OK);
      CHECK(errors[static_cast<size_t>(i)] == "");
    }
  }
}
