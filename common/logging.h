// The one logging choice used everywhere in loraserve (Debian 12's abseil
// predates absl/log, so this is a small stream logger with the same shape):
//
//   LS_LOG(INFO) << "loaded " << n << " tensors";
//   LS_CHECK(ptr != nullptr) << "pool not initialised";   // invariants only
//   LS_CHECK_EQ(a, b);
//
// Lines go to stderr as "I1123 07:26:03.123456 file.cc:42] message", written
// with one fwrite so concurrent threads never interleave within a line.
// LS_CHECK failures and LS_LOG(FATAL) abort. User input must never reach a
// CHECK: it gets an absl::Status instead. Thread-safe.
#pragma once

#include <sstream>
#include <string>

namespace loraserve {

enum class LogSeverity { kInfo = 0, kWarning = 1, kError = 2, kFatal = 3 };

// Messages below this severity are dropped. Default kInfo; LORASERVE_LOG_LEVEL
// (0..3) in the environment overrides it at first use.
void SetMinLogSeverity(LogSeverity severity);
LogSeverity MinLogSeverity();

namespace logging_internal {

class LogMessage {
 public:
  LogMessage(const char* file, int line, LogSeverity severity);
  ~LogMessage();  // writes the line; aborts for kFatal
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  const char* file_;
  int line_;
  LogSeverity severity_;
  std::ostringstream stream_;
};

// Swallows the stream in the disabled branch of LS_LOG.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace logging_internal
}  // namespace loraserve

#define LS_SEVERITY_INFO ::loraserve::LogSeverity::kInfo
#define LS_SEVERITY_WARNING ::loraserve::LogSeverity::kWarning
#define LS_SEVERITY_ERROR ::loraserve::LogSeverity::kError
#define LS_SEVERITY_FATAL ::loraserve::LogSeverity::kFatal

#define LS_LOG(severity)                                                   \
  (LS_SEVERITY_##severity < ::loraserve::MinLogSeverity())                 \
      ? (void)0                                                            \
      : ::loraserve::logging_internal::Voidify() &                         \
            ::loraserve::logging_internal::LogMessage(__FILE__, __LINE__,  \
                                                      LS_SEVERITY_##severity) \
                .stream()

#define LS_CHECK(cond)                                                           \
  (cond) ? (void)0                                                               \
         : ::loraserve::logging_internal::Voidify() &                            \
               ::loraserve::logging_internal::LogMessage(__FILE__, __LINE__,     \
                                                         LS_SEVERITY_FATAL)      \
                       .stream()                                                 \
                   << "Check failed: " #cond " "

#define LS_CHECK_OP(a, op, b) LS_CHECK((a)op(b)) << "(" << (a) << " vs " << (b) << ") "
#define LS_CHECK_EQ(a, b) LS_CHECK_OP(a, ==, b)
#define LS_CHECK_NE(a, b) LS_CHECK_OP(a, !=, b)
#define LS_CHECK_LT(a, b) LS_CHECK_OP(a, <, b)
#define LS_CHECK_LE(a, b) LS_CHECK_OP(a, <=, b)
#define LS_CHECK_GT(a, b) LS_CHECK_OP(a, >, b)
#define LS_CHECK_GE(a, b) LS_CHECK_OP(a, >=, b)
#define LS_CHECK_OK(expr)                                          \
  do {                                                             \
    const auto& _ls_check_status = (expr);                         \
    LS_CHECK(_ls_check_status.ok()) << _ls_check_status.ToString(); \
  } while (false)
