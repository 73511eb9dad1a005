#include "bench/loadgen/trace_file.h"

#include <cmath>
#include <fstream>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"

namespace loraserve::loadgen {
namespace {

using Json = nlohmann::json;

// Reads one line's fields; errors carry "FILE:LINE: " from the caller.
class LineParser {
 public:
  explicit LineParser(const Json& j) : j_(j) {}

  absl::StatusOr<const Json*> Field(const char* key, bool required) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (!required) return nullptr;
      return absl::InvalidArgumentError(absl::StrCat("missing field \"", key, "\""));
    }
    return &*it;
  }

  // An integer in [lo, hi] (JSON numbers without a fraction).
  absl::StatusOr<int64_t> Int(const char* key, int64_t lo, int64_t hi) const {
    ASSIGN_OR_RETURN(const Json* v, Field(key, true));
    if (!v->is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", key, "\" must be an integer"));
    }
    // nlohmann stores nonnegative literals as unsigned, negative as signed.
    const bool too_big = v->is_number_unsigned() ? v->get<uint64_t>() > static_cast<uint64_t>(hi)
                                                 : v->get<int64_t>() > hi;
    if (too_big) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", key, "\" must be <= ", hi));
    }
    const int64_t got = v->get<int64_t>();
    if (got < lo) {
      return absl::InvalidArgumentError(
          absl::StrCat("field \"", key, "\" is ", got, ", must be >= ", lo));
    }
    return got;
  }

 private:
  const Json& j_;
};

absl::StatusOr<TraceRequest> ParseLine(const Json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("line is not a JSON object");
  LineParser p(j);
  TraceRequest r;
  ASSIGN_OR_RETURN(r.id, p.Int("id", 0, std::numeric_limits<int64_t>::max()));
  ASSIGN_OR_RETURN(const Json* t, p.Field("t", true));
  if (!t->is_number()) return absl::InvalidArgumentError("field \"t\" must be a number");
  r.t = t->get<double>();
  if (!(r.t >= 0) || !std::isfinite(r.t)) {
    return absl::InvalidArgumentError(absl::StrCat("field \"t\" is ", r.t, ", must be >= 0"));
  }
  ASSIGN_OR_RETURN(const Json* adapter, p.Field("adapter", true));
  if (!adapter->is_string()) return absl::InvalidArgumentError("field \"adapter\" must be a string");
  r.adapter = adapter->get<std::string>();
  constexpr int64_t kMaxLen = std::numeric_limits<int32_t>::max();
  ASSIGN_OR_RETURN(int64_t input_len, p.Int("input_len", 1, kMaxLen));
  ASSIGN_OR_RETURN(int64_t output_len, p.Int("output_len", 1, kMaxLen));
  r.input_len = static_cast<int32_t>(input_len);
  r.output_len = static_cast<int32_t>(output_len);
  ASSIGN_OR_RETURN(const Json* ids, p.Field("prompt_ids", false));
  if (ids != nullptr) {
    if (!ids->is_array()) return absl::InvalidArgumentError("field \"prompt_ids\" must be an array");
    r.prompt_ids.reserve(ids->size());
    for (size_t k = 0; k < ids->size(); ++k) {
      const Json& id = (*ids)[k];
      if (!id.is_number_unsigned() || id.get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "field \"prompt_ids\"[", k, "] must be a token id in [0, 2^32)"));
      }
      r.prompt_ids.push_back(static_cast<uint32_t>(id.get<uint64_t>()));
    }
    if (r.prompt_ids.size() != static_cast<size_t>(r.input_len)) {
      return absl::InvalidArgumentError(absl::StrCat("field \"input_len\" is ", r.input_len,
                                                     " but \"prompt_ids\" has ",
                                                     r.prompt_ids.size(), " ids"));
    }
  }
  return r;
}

}  // namespace

std::string TraceLine(const TraceRequest& request) {
  // nlohmann::ordered_json keeps the documented key order; doubles are
  // written with the shortest text that reads back to the same value.
  nlohmann::ordered_json j;
  j["id"] = request.id;
  j["t"] = request.t;
  j["adapter"] = request.adapter;
  j["input_len"] = request.input_len;
  j["output_len"] = request.output_len;
  j["prompt_ids"] = request.prompt_ids;
  return j.dump();
}

absl::Status WriteTraceFile(const std::string& path, const std::vector<TraceRequest>& trace) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::NotFoundError(absl::StrCat("cannot write trace file \"", path, "\""));
  for (const TraceRequest& r : trace) out << TraceLine(r) << '\n';
  out.flush();
  if (!out) return absl::DataLossError(absl::StrCat("error writing trace file \"", path, "\""));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TraceRequest>> ParseTrace(std::istream& in, std::string_view name) {
  std::vector<TraceRequest> trace;
  absl::flat_hash_map<int64_t, int64_t> line_of_id;
  std::string line;
  int64_t line_no = 0;
  double last_t = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto where = [&](std::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(Sv(name), ":", line_no, ": ", Sv(what)));
    };
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return where("bad JSON");
    absl::StatusOr<TraceRequest> r = ParseLine(j);
    if (!r.ok()) return where(StdSv(r.status().message()));
    if (!trace.empty() && r->t < last_t) {
      return where(absl::StrCat("field \"t\" is ", r->t, ", before the previous request's ",
                                last_t, " (t must be nondecreasing)"));
    }
    auto [it, inserted] = line_of_id.emplace(r->id, line_no);
    if (!inserted) {
      return where(absl::StrCat("field \"id\" ", r->id, " repeats line ", it->second));
    }
    last_t = r->t;
    trace.push_back(*std::move(r));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(Sv(name), ": read error"));
  if (trace.empty()) return absl::InvalidArgumentError(absl::StrCat(Sv(name), ": no requests"));
  return trace;
}

absl::StatusOr<std::vector<TraceRequest>> ReadTraceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read trace file \"", path, "\""));
  return ParseTrace(in, path);
}

}  // namespace loraserve::loadgen
