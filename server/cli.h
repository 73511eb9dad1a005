// loraserve-cli: a small command-line client for the Generation and
// AdapterAdmin services and grpc.health.v1:
//
//   loraserve-cli [--addr H:P] [--admin-addr H:P] [--admin-token-file F]
//                 [--timeout SECONDS] COMMAND
//     generate [--adapter NAME] [--stream] [--max-tokens N] [--temperature T]
//              [--seed S] PROMPT
//     adapters load NAME PATH | adapters unload NAME | adapters list
//     health
//
// Exit codes: 0 ok, 1 RPC error (printed as "error: CODE_NAME: message"),
// 2 usage error. RunCli is the whole program minus main(), so tests call it
// in-process. Not thread-safe per call (writes to the given streams).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace loraserve {

inline constexpr int kCliOk = 0;
inline constexpr int kCliRpcError = 1;
inline constexpr int kCliUsage = 2;

// `args` excludes the program name.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace loraserve
