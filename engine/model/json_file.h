// Small, non-throwing helpers for the JSON files loraserve reads (config.json,
// generation_config.json, model.safetensors.index.json, adapter_config.json):
// read a whole (bounded) file, parse a JSON object without exceptions, and typed
// field getters whose errors name the field. Objects keep the file's key order
// (nlohmann::ordered_json), which matters where the order carries meaning
// (PEFT's rank_pattern: first matching key wins).
//
// Called by ModelConfig, SafetensorsBundle and the PEFT adapter loader.
// Stateless functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace loraserve::json {

using Json = nlohmann::ordered_json;

// Reads the whole file. NotFound (or the errno's code) when it cannot be
// opened; InvalidArgument when it is larger than `max_bytes` or not a regular
// file. Messages name the path.
[[nodiscard]] absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                                           size_t max_bytes);

// True when `path` names an existing regular file (symlinks followed).
bool IsRegularFile(const std::string& path);

// Parses `text` into a JSON object without throwing. InvalidArgument naming
// `what` (e.g. the file path) when it is not well-formed JSON or not an object.
[[nodiscard]] absl::StatusOr<Json> ParseObject(std::string_view text, std::string_view what);

// The JSON type name of `v` for messages: "string", "number", "array", ...
std::string_view TypeName(const Json& v);

// Field getters on an object. "Optional" getters return nullopt when the key is
// absent or null; all return InvalidArgument naming the key when the value has
// the wrong type ("\"r\" must be an integer, got string"). Required getters
// also fail with InvalidArgument "missing required field \"key\"".
[[nodiscard]] absl::StatusOr<std::optional<int64_t>> OptionalInt(const Json& obj,
                                                                 std::string_view key);
[[nodiscard]] absl::StatusOr<std::optional<double>> OptionalNumber(const Json& obj,
                                                                   std::string_view key);
[[nodiscard]] absl::StatusOr<std::optional<bool>> OptionalBool(const Json& obj,
                                                               std::string_view key);
[[nodiscard]] absl::StatusOr<std::optional<std::string>> OptionalString(const Json& obj,
                                                                        std::string_view key);
[[nodiscard]] absl::StatusOr<int64_t> RequiredInt(const Json& obj, std::string_view key);
[[nodiscard]] absl::StatusOr<double> RequiredNumber(const Json& obj, std::string_view key);

// `v` as an int64 (InvalidArgument naming `what` if it is not an integral
// number or does not fit).
[[nodiscard]] absl::StatusOr<int64_t> AsInt(const Json& v, std::string_view what);

// The value under `key`, or nullptr when absent (a JSON null is returned).
const Json* Find(const Json& obj, std::string_view key);

}  // namespace loraserve::json
