// FakeEngine: a scriptable EngineApi for the server tests. Each accepted
// request runs on its own thread: it pushes `num_deltas` deltas (token ids
// 100, 101, ..., text "t0 ", "t1 ", ...) `delay` apart, then the scripted
// terminal event (finished with `finish`, or an error). Abort() records the
// call and makes the request end with a cancelled event after
// `deltas_after_abort` more deltas (to test sinks that outlive their RPC).
// `reject` makes Submit fail with that status. Adapters are a name -> path
// map with the EngineApi's load semantics.
//
// Thread-safe; the destructor joins the request threads.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/engine_api.h"
#include "engine/model/tokenizer.h"

namespace loraserve {

struct FakeScript {
  int num_deltas = 3;
  absl::Duration delay = absl::Milliseconds(1);
  GenerationFinish finish = GenerationFinish::kLength;
  absl::Status error;        // not OK: the terminal event is this error
  bool until_abort = false;  // keep producing deltas until aborted (bounded: 20 s)
  int deltas_after_abort = 0;
  absl::Status reject;  // not OK: Submit returns it
};

class FakeEngine : public EngineApi {
 public:
  explicit FakeEngine(std::unique_ptr<Tokenizer> tokenizer) : tokenizer_(std::move(tokenizer)) {}
  ~FakeEngine() override { JoinAll(); }

  void set_script(const FakeScript& script) {
    absl::MutexLock lock(&mu_);
    script_ = script;
  }

  absl::Status Submit(GenerationRequest request, std::shared_ptr<GenerationSink> sink) override {
    absl::MutexLock lock(&mu_);
    if (!script_.reject.ok()) return script_.reject;
    if (!request.adapter.empty() && !adapters_.contains(request.adapter)) {
      return absl::NotFoundError("adapter_id \"" + request.adapter + "\" is not loaded");
    }
    if (in_flight_.contains(request.request_id)) {
      return absl::AlreadyExistsError("request_id " + request.request_id + " is in flight");
    }
    auto aborted = std::make_shared<std::atomic<bool>>(false);
    in_flight_[request.request_id] = aborted;
    submitted_.push_back(request);
    threads_.emplace_back([this, script = script_, id = request.request_id,
                           prompt = static_cast<int32_t>(request.prompt_ids.size()),
                           sink = std::move(sink), aborted] {
      Run(script, id, prompt, sink, *aborted);
    });
    return absl::OkStatus();
  }

  bool Abort(const std::string& request_id) override {
    absl::MutexLock lock(&mu_);
    ++aborts_[request_id];
    auto it = in_flight_.find(request_id);
    if (it == in_flight_.end()) return false;
    it->second->store(true);
    return true;
  }

  absl::StatusOr<LoadAdapterResult> LoadAdapter(const std::string& name,
                                                const std::string& path) override {
    absl::MutexLock lock(&mu_);
    if (!load_error_.ok()) return load_error_;
    auto it = adapters_.find(name);
    if (it != adapters_.end()) {
      if (it->second.path != path) {
        return absl::AlreadyExistsError("adapter " + name + " is loaded from " + it->second.path);
      }
      return LoadAdapterResult{it->second, true};
    }
    AdapterDescription d{.name = name, .path = path, .ranks = {8}, .target_modules = {"q_proj", "v_proj"},
                         .bytes = 4096, .tier = AdapterTier::kHost, .in_use = 0,
                         .last_used = absl::InfinitePast()};
    adapters_[name] = d;
    return LoadAdapterResult{d, false};
  }
  absl::Status UnloadAdapter(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    if (adapters_.erase(name) == 0) return absl::NotFoundError("adapter " + name + " is not loaded");
    return absl::OkStatus();
  }
  std::vector<AdapterDescription> ListAdapters() const override {
    absl::MutexLock lock(&mu_);
    std::vector<AdapterDescription> out;
    for (const auto& [name, d] : adapters_) out.push_back(d);
    return out;
  }
  EngineStats Stats() const override {
    absl::MutexLock lock(&mu_);
    EngineStats s;
    s.running = static_cast<int64_t>(in_flight_.size());
    s.max_loras = 4;
    return s;
  }
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  int32_t vocab_size() const override { return tokenizer_->vocab_size(); }
  int32_t max_context() const override { return 256; }

  // Test inspection.
  void set_load_error(absl::Status s) {
    absl::MutexLock lock(&mu_);
    load_error_ = std::move(s);
  }
  int aborts(const std::string& id) const {
    absl::MutexLock lock(&mu_);
    auto it = aborts_.find(id);
    return it == aborts_.end() ? 0 : it->second;
  }
  int total_aborts() const {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const auto& [id, c] : aborts_) n += c;
    return n;
  }
  std::vector<GenerationRequest> submitted() const {
    absl::MutexLock lock(&mu_);
    return submitted_;
  }
  int in_flight() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(in_flight_.size());
  }
  // Waits (bounded) until no request is in flight.
  bool WaitDrained(absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_.empty(); };
    return mu_.AwaitWithTimeout(absl::Condition(&empty), timeout);
  }
  void JoinAll() {
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

 private:
  void Run(const FakeScript& script, const std::string& id, int32_t prompt,
           const std::shared_ptr<GenerationSink>& sink, const std::atomic<bool>& aborted) {
    int produced = 0;
    auto delta = [&] {
      GenerationEvent e;
      e.kind = GenerationEvent::Kind::kDelta;
      e.token_ids = {100 + produced};
      e.text = "t" + std::to_string(produced) + " ";
      ++produced;
      e.prompt_tokens = prompt;
      e.completion_tokens = produced;
      sink->Push(std::move(e));
    };
    const absl::Time give_up = absl::Now() + absl::Seconds(20);
    while ((script.until_abort ? absl::Now() < give_up : produced < script.num_deltas) &&
           !aborted.load()) {
      absl::SleepFor(script.delay);
      delta();
    }
    GenerationEvent end;
    end.prompt_tokens = prompt;
    if (aborted.load()) {
      for (int i = 0; i < script.deltas_after_abort; ++i) delta();
      end.kind = GenerationEvent::Kind::kFinished;
      end.finish = GenerationFinish::kCancelled;
    } else if (!script.error.ok()) {
      end.kind = GenerationEvent::Kind::kError;
      end.error = script.error;
    } else {
      end.kind = GenerationEvent::Kind::kFinished;
      end.finish = script.finish;
    }
    end.completion_tokens = produced;
    // Leave in-flight before the terminal push: a caller that saw the
    // terminal event may resubmit the same id at once.
    {
      absl::MutexLock lock(&mu_);
      in_flight_.erase(id);
    }
    sink->Push(std::move(end));
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  mutable absl::Mutex mu_;
  FakeScript script_ ABSL_GUARDED_BY(mu_);
  absl::Status load_error_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> in_flight_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> aborts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, AdapterDescription> adapters_ ABSL_GUARDED_BY(mu_);
  std::vector<GenerationRequest> submitted_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loraserve
