// A minimal test harness for the native tests: no framework, just
//
//   TEST("free() of a slice returns kForeign") { ... CHECK(...); CHECK_EQ(a, b); }
//   int main(int argc, char** argv) { return check::RunAll(argc, argv); }
//
// Every CHECK counts as passed or failed; a failed one prints file:line, the
// expression and (CHECK_EQ & co.) both values, and the test goes on. The last
// line printed is always "N passed, N failed" (checks, not tests), and the
// exit code is 1 when anything failed. `argv[1]`, if given, runs only the
// tests whose name contains it.
//
// Threads: CHECK may be used from any thread (counters are atomic, output is
// serialised); TEST bodies run one after another on the main thread.
#ifndef MMAP_POOL_TEST_CHECK_H_
#define MMAP_POOL_TEST_CHECK_H_

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace check {

struct Counters {
  std::atomic<long> passed{0};
  std::atomic<long> failed{0};
  std::mutex out;
};

inline Counters& Get() {
  static Counters c;
  return c;
}

template <typename T>
std::string Show(const T& v) {
  std::ostringstream s;
  if constexpr (std::is_enum_v<T>) {
    s << static_cast<long long>(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    s << (v ? "true" : "false");
  } else if constexpr (std::is_pointer_v<T>) {
    s << static_cast<const void*>(v);
  } else {
    s << v;
  }
  return s.str();
}

inline bool Record(bool ok, const char* file, int line, const char* expr,
                   const std::string& detail = std::string()) {
  Counters& c = Get();
  if (ok) {
    c.passed++;
    return true;
  }
  c.failed++;
  std::lock_guard<std::mutex> lock(c.out);
  std::fprintf(stderr, "%s:%d: CHECK failed: %s%s%s\n", file, line, expr,
               detail.empty() ? "" : "\n    ", detail.c_str());
  std::fflush(stderr);
  return false;
}

template <typename A, typename B>
bool RecordOp(bool ok, const char* file, int line, const char* expr, const A& a, const B& b) {
  if (ok) return Record(true, file, line, expr);
  return Record(false, file, line, expr, "left: " + Show(a) + ", right: " + Show(b));
}

struct TestCase {
  const char* name;
  void (*fn)();
};

inline std::vector<TestCase>& Registry() {
  static std::vector<TestCase> tests;
  return tests;
}

struct Registrar {
  Registrar(const char* name, void (*fn)()) { Registry().push_back({name, fn}); }
};

inline int Finish() {
  Counters& c = Get();
  std::printf("%ld passed, %ld failed\n", c.passed.load(), c.failed.load());
  std::fflush(stdout);
  return c.failed.load() == 0 ? 0 : 1;
}

inline int RunAll(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int run = 0;
  for (const TestCase& t : Registry()) {
    if (filter != nullptr && std::strstr(t.name, filter) == nullptr) continue;
    long before = Get().failed.load();
    std::printf("[ run  ] %s\n", t.name);
    std::fflush(stdout);
    t.fn();
    std::printf("[ %s ] %s\n", Get().failed.load() == before ? " ok " : "FAIL", t.name);
    std::fflush(stdout);
    run++;
  }
  std::printf("%d tests\n", run);
  if (run == 0) {
    std::printf("no test matches \"%s\"\n", filter != nullptr ? filter : "");
    Get().failed++;
  }
  return Finish();
}

}  // namespace check

#define CHECK_CAT2(a, b) a##b
#define CHECK_CAT(a, b) CHECK_CAT2(a, b)

// TEST("what it proves") { body }
#define TEST(name)                                                              \
  static void CHECK_CAT(check_test_, __LINE__)();                               \
  static const ::check::Registrar CHECK_CAT(check_reg_, __LINE__)(               \
      name, &CHECK_CAT(check_test_, __LINE__));                                  \
  static void CHECK_CAT(check_test_, __LINE__)()

// Each evaluates to true when the check passed.
#define CHECK(expr) ::check::Record(static_cast<bool>(expr), __FILE__, __LINE__, #expr)
// `msg` is evaluated after `expr`, and only when the check failed.
#define CHECK_MSG(expr, msg)                                                    \
  [&]() -> bool {                                                               \
    if (static_cast<bool>(expr)) return ::check::Record(true, __FILE__, __LINE__, #expr); \
    return ::check::Record(false, __FILE__, __LINE__, #expr, (msg));            \
  }()
#define CHECK_OP(a, op, b)                                                      \
  [&](const auto& check_a, const auto& check_b) {                               \
    return ::check::RecordOp(check_a op check_b, __FILE__, __LINE__,            \
                             #a " " #op " " #b, check_a, check_b);              \
  }((a), (b))
#define CHECK_EQ(a, b) CHECK_OP(a, ==, b)
#define CHECK_NE(a, b) CHECK_OP(a, !=, b)
#define CHECK_LT(a, b) CHECK_OP(a, <, b)
#define CHECK_LE(a, b) CHECK_OP(a, <=, b)
#define CHECK_GE(a, b) CHECK_OP(a, >=, b)
#define CHECK_GT(a, b) CHECK_OP(a, >, b)

#endif  // MMAP_POOL_TEST_CHECK_H_
