// Adapter registration before a run: finds the PEFT adapter directories under
// a folder (its immediate subdirectories holding adapter_config.json) and
// loads each through loraserve.v1.AdapterAdmin/LoadAdapter under its
// directory name, with its absolute path, a bounded number of loads in
// flight (gRPC callback API), an optional "authorization: Bearer <token>"
// (as loraserve-cli sends it), progress lines and a summary. ALREADY_EXISTS
// (the name is taken) counts as skipped; any other failure stops issuing new
// loads and is returned naming the adapter.
//
// Free functions; RegisterAdapters blocks the calling thread until every
// load it started has completed. The stub must outlive the call.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "loraserve/v1/admin.grpc.pb.h"

namespace loraserve::loadgen {

struct AdapterDir {
  std::string name;  // the subdirectory's name
  std::string path;  // its absolute path
  bool operator==(const AdapterDir&) const = default;
};

// Sorted by name. NotFound naming `dir` when it is not a directory;
// InvalidArgument when it holds no adapter directory.
absl::StatusOr<std::vector<AdapterDir>> FindAdapterDirs(const std::string& dir);

struct RegisterOptions {
  int32_t max_in_flight = 16;     // concurrent LoadAdapter calls, >= 1
  double rpc_timeout_s = 600;     // deadline of each LoadAdapter
  std::string token;              // "" = no authorization metadata
  std::ostream* progress = nullptr;
};

struct RegisterSummary {
  int64_t loaded = 0;          // newly loaded
  int64_t already_loaded = 0;  // same name and path were loaded (OK, already_loaded)
  int64_t skipped = 0;         // ALREADY_EXISTS: the name holds another path
  double seconds = 0;
};

absl::StatusOr<RegisterSummary> RegisterAdapters(v1::AdapterAdmin::StubInterface* stub,
                                                 const std::vector<AdapterDir>& adapters,
                                                 const RegisterOptions& options);

}  // namespace loraserve::loadgen
