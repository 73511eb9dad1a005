// End-to-end under load, real engine (CPU backend, tiny-llama):
//  - 200 concurrent streams while adapters are loaded, unloaded and replaced
//    through AdapterAdmin: each request is refused NOT_FOUND at acceptance or
//    completes with exactly one terminal event, and never with the tokens of
//    an adapter its name did not point to during the request's life;
//  - the real `loraserve` binary under SIGTERM during traffic exits 0 and
//    every stream ends (terminal message or a clean status), none hangs.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "server/health_client.h"
#include "tests/server/e2e_util.h"

extern char** environ;

namespace loraserve::e2e {
namespace {

class ServerE2eStress : public E2eFixture {};

// One registration of the name "x": which fixture adapter, and the span in
// which it may have been the one registered (from the start of its Load RPC
// to the return of its Unload RPC).
struct Registration {
  std::string adapter;
  absl::Time from = absl::InfinitePast();
  absl::Time to = absl::InfiniteFuture();
};

TEST_F(ServerE2eStress, ConcurrentStreamsWhileAdaptersAreReplacedNeverGetTheWrongAdapter) {
  StartAll();
  const std::vector<Golden> goldens = LoadGoldens();
  // "x" alternates between r8_all and r16_rslora_attn; on this prompt their
  // greedy continuations differ from each other and from the base model's.
  const Golden& x_r8 = FindGolden(goldens, "r8_all_1");
  const Golden& x_r16 = FindGolden(goldens, "r16_rslora_attn_1");
  const Golden& base = FindGolden(goldens, "base_1");
  ASSERT_EQ(x_r8.prompt, x_r16.prompt);
  ASSERT_EQ(x_r8.prompt, base.prompt);
  ASSERT_NE(x_r8.greedy, x_r16.greedy);
  ASSERT_NE(x_r8.greedy, base.greedy);
  ASSERT_NE(x_r16.greedy, base.greedy);
  const std::map<std::string, const Golden*> by_adapter = {{"r8_all", &x_r8},
                                                           {"r16_rslora_attn", &x_r16}};

  // What each request asks for: name -> the golden it must equal. "x" is
  // checked against the registrations; "tmp" (r4_patterns) comes and goes.
  struct Kind {
    std::string name;
    const Golden* golden;  // null for "x"
  };
  const std::vector<Kind> kinds = {
      {"", &base},
      {"r8_all", &FindGolden(goldens, "r8_all_0")},
      {"r16_rslora_attn", &FindGolden(goldens, "r16_rslora_attn_2")},
      {"r2_regex", &FindGolden(goldens, "r2_regex_0")},
      {"x", nullptr},
      {"tmp", &FindGolden(goldens, "r4_patterns_2")},
      {"x", nullptr},
  };

  std::vector<Registration> regs;
  regs.push_back({"r8_all", absl::InfinitePast(), absl::InfiniteFuture()});
  ASSERT_TRUE(LoadAdapter("x", "r8_all").ok());
  ASSERT_TRUE(LoadAdapter("tmp", "r4_patterns").ok());

  constexpr int kRequests = 200;
  std::atomic<int> remaining{kRequests};
  std::vector<std::string> admin_errors;
  int replacements = 0;
  std::thread admin([&] {
    bool tmp_loaded = true;
    const absl::Time until = absl::Now() + absl::Seconds(40);
    while (remaining.load() > 0 && absl::Now() < until) {
      const std::string next = regs.back().adapter == "r8_all" ? "r16_rslora_attn" : "r8_all";
      grpc::Status st = UnloadAdapter("x");
      regs.back().to = absl::Now();
      if (!st.ok()) admin_errors.push_back("unload x: " + st.error_message());
      absl::SleepFor(absl::Milliseconds(2));
      regs.push_back({next, absl::Now(), absl::InfiniteFuture()});
      st = LoadAdapter("x", next);
      if (!st.ok()) admin_errors.push_back("load x=" + next + ": " + st.error_message());
      ++replacements;
      st = tmp_loaded ? UnloadAdapter("tmp") : LoadAdapter("tmp", "r4_patterns");
      if (!st.ok()) admin_errors.push_back("toggle tmp: " + st.error_message());
      tmp_loaded = !tmp_loaded;
      absl::SleepFor(absl::Milliseconds(8));
    }
  });

  std::vector<Stream> streams(kRequests);
  std::vector<std::thread> clients;
  clients.reserve(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] {
      // Spread the arrivals over ~1 s so they overlap the replacements.
      absl::SleepFor(absl::Milliseconds(5 * (i % 200)));
      const Kind& k = kinds[static_cast<size_t>(i) % kinds.size()];
      const std::vector<uint32_t>& prompt = k.golden != nullptr ? k.golden->prompt : x_r8.prompt;
      streams[static_cast<size_t>(i)] =
          RunStream(gen_.get(), GreedyRequest(prompt, k.name, 8, "c" + std::to_string(i)),
                    absl::Seconds(40));
      remaining.fetch_sub(1);
    });
  }
  for (auto& t : clients) t.join();
  admin.join();
  EXPECT_TRUE(admin_errors.empty()) << admin_errors.front();
  EXPECT_GE(replacements, 2);

  int refused = 0;
  std::map<std::string, int> x_answers;
  for (int i = 0; i < kRequests; ++i) {
    const Stream& s = streams[static_cast<size_t>(i)];
    const Kind& k = kinds[static_cast<size_t>(i) % kinds.size()];
    SCOPED_TRACE("request c" + std::to_string(i) + " adapter \"" + k.name + "\"");
    if (s.status.error_code() == grpc::StatusCode::NOT_FOUND) {
      EXPECT_TRUE(k.name == "x" || k.name == "tmp") << "a never-unloaded adapter was NOT_FOUND";
      EXPECT_TRUE(s.messages.empty());
      ++refused;
      continue;
    }
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_EQ(s.terminals, 1);
    EXPECT_EQ(s.terminals_not_last, 0);
    ASSERT_TRUE(s.FinishedWith(v1::FINISH_REASON_LENGTH));
    EXPECT_EQ(s.messages.back().usage().completion_tokens(), 8u);
    if (k.golden != nullptr) {
      EXPECT_EQ(s.tokens, k.golden->greedy);
      continue;
    }
    // "x": the tokens name the adapter; it must have been registered under
    // "x" at some moment of this request's life.
    std::string answered;
    for (const auto& [adapter, g] : by_adapter) {
      if (s.tokens == g->greedy) answered = adapter;
    }
    ASSERT_FALSE(answered.empty()) << "\"x\" answered with tokens of neither of its adapters";
    bool possible = false;
    for (const Registration& r : regs) {
      possible = possible || (r.adapter == answered && r.from <= s.end && s.start <= r.to);
    }
    EXPECT_TRUE(possible) << "\"x\" answered as " << answered
                          << ", which was not registered under \"x\" during the request";
    ++x_answers[answered];
  }
  LS_LOG(INFO) << "replacements " << replacements << ", refused " << refused << ", x answered r8_all "
               << x_answers["r8_all"] << ", r16_rslora_attn " << x_answers["r16_rslora_attn"];
  EXPECT_TRUE(WaitEngineQuiet()) << "KV pages " << engine_->Stats().pool_pages_kv << ", pins "
                                 << engine_->Stats().adapter_pins;
}

// A free loopback TCP port (bound, read back, released).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  LS_CHECK(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  LS_CHECK(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  LS_CHECK(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// <build>/server/loraserve, next to <build>/tests/<this test>.
std::filesystem::path LoraserveBinary() {
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
  return self.parent_path().parent_path() / "server" / "loraserve";
}

std::string FileTail(const std::string& path, size_t n = 4000) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > n ? text.substr(text.size() - n) : text;
}

// Waits for `pid` to exit; false (child still running) after `timeout`.
bool WaitExit(pid_t pid, absl::Duration timeout, int* wstatus) {
  return PollUntil([&] { return ::waitpid(pid, wstatus, WNOHANG) == pid; }, timeout);
}

TEST(ServerE2eProcess, SigtermDuringTrafficExitsZeroAndEndsEveryStream) {
  const std::filesystem::path binary = LoraserveBinary();
  ASSERT_TRUE(std::filesystem::exists(binary))
      << binary << " is missing: build the loraserve target (it lives in <build>/server/)";
  const int port = FreePort();
  const int http_port = FreePort();
  const int admin_port = FreePort();
  const std::string log = ::testing::TempDir() + "/e2e_loraserve_" + std::to_string(::getpid()) + ".log";

  std::vector<std::string> args = {
      binary.string(),
      "--model=" + ModelDir(),
      "--device=cpu",
      "--host=127.0.0.1",
      "--port=" + std::to_string(port),
      "--http-port=" + std::to_string(http_port),
      "--admin-host=127.0.0.1",
      "--admin-port=" + std::to_string(admin_port),
      "--adapter-root=" + AdapterRoot(),
      "--lora-modules=r8_all=r8_all",
      "--max-num-seqs=2",
      "--drain-grace-seconds=0.05",
  };
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ASSERT_EQ(spawned, 0) << "posix_spawn " << binary;
  // Whatever happens below, the child does not outlive the test.
  struct Reaper {
    pid_t pid;
    bool done = false;
    ~Reaper() {
      if (!done) {
        ::kill(pid, SIGKILL);
        int st = 0;
        ::waitpid(pid, &st, 0);
      }
    }
  } reaper{pid};

  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
  int wstatus = 0;
  bool exited_early = false;
  const bool serving = PollUntil(
      [&] {
        if (::waitpid(pid, &wstatus, WNOHANG) == pid) {
          exited_early = true;
          return true;
        }
        auto h = CheckHealth(channel, "", absl::Milliseconds(500));
        return h.ok() && *h == HealthStatus::kServing;
      },
      absl::Seconds(30));
  if (exited_early) reaper.done = true;
  ASSERT_TRUE(serving && !exited_early) << "loraserve never reported SERVING; log:\n" << FileTail(log);

  const std::vector<Golden> goldens = LoadGoldens();
  const Golden& base = FindGolden(goldens, "base_0");
  const Golden& r8 = FindGolden(goldens, "r8_all_0");
  auto stub = v1::Generation::NewStub(channel);
  constexpr int kStreams = 16;
  std::vector<Stream> streams(kStreams);
  std::atomic<int> started{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&, i] {
      const Golden& g = i % 2 == 0 ? base : r8;
      Stream& s = streams[static_cast<size_t>(i)];
      s.start = absl::Now();
      grpc::ClientContext ctx;
      SetDeadline(&ctx, absl::Seconds(30));
      auto reader = stub->Generate(&ctx, GreedyRequest(g.prompt, g.adapter, 200));
      v1::GenerateResponse msg;
      bool first = true;
      while (reader->Read(&msg)) {
        Accumulate(&s, msg);
        if (first) started.fetch_add(1);
        first = false;
      }
      s.status = reader->Finish();
      s.end = absl::Now();
      if (first) started.fetch_add(1);  // ended without a message: counts as started
    });
  }
  // Traffic is flowing (max-num-seqs 2: the others wait in the queue, and the
  // 50 ms grace ends most of them cancelled).
  EXPECT_TRUE(PollUntil([&] { return started.load() >= 2; }, absl::Seconds(10)));

  const absl::Time term_at = absl::Now();
  // No ASSERT until the clients are joined (their deadlines bound the join).
  const int killed = ::kill(pid, SIGTERM);
  const bool exited = killed == 0 && WaitExit(pid, absl::Seconds(20), &wstatus);
  if (exited) reaper.done = true;
  for (auto& t : clients) t.join();
  ASSERT_EQ(killed, 0) << "kill(SIGTERM)";
  ASSERT_TRUE(exited) << "loraserve still running 20 s after SIGTERM; log:\n" << FileTail(log);
  LS_LOG(INFO) << "loraserve exited " << absl::ToDoubleSeconds(absl::Now() - term_at)
               << " s after SIGTERM";
  ASSERT_TRUE(WIFEXITED(wstatus)) << "killed by signal " << WTERMSIG(wstatus) << "; log:\n"
                                  << FileTail(log);
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << FileTail(log);

  int length = 0, cancelled = 0, refused = 0;
  for (int i = 0; i < kStreams; ++i) {
    const Stream& s = streams[static_cast<size_t>(i)];
    SCOPED_TRACE("stream " + std::to_string(i));
    EXPECT_NE(s.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << "the stream hung";
    if (s.status.ok()) {
      EXPECT_EQ(s.terminals, 1);
      EXPECT_EQ(s.terminals_not_last, 0);
      ASSERT_FALSE(s.messages.empty());
      ASSERT_TRUE(s.messages.back().has_finished());
      const v1::FinishReason r = s.messages.back().finished().reason();
      EXPECT_TRUE(r == v1::FINISH_REASON_LENGTH || r == v1::FINISH_REASON_CANCELLED) << r;
      if (r == v1::FINISH_REASON_LENGTH) {
        EXPECT_EQ(s.tokens.size(), 200u);
        ++length;
      } else {
        ++cancelled;
      }
    } else {
      // A clean refusal: arrived after draining began.
      EXPECT_EQ(s.status.error_code(), grpc::StatusCode::UNAVAILABLE) << s.status.error_message();
      EXPECT_TRUE(s.messages.empty());
      ++refused;
    }
  }
  LS_LOG(INFO) << "after SIGTERM: " << length << " finished, " << cancelled << " cancelled, "
               << refused << " refused";
  std::filesystem::remove(log);
}

}  // namespace
}  // namespace loraserve::e2e
