// JSON access helpers for tokenizer.json loading: typed getters whose errors
// name the JSON path ("model.merges[3]: expected a string, got number"), and a
// bounded whole-file reader. Parsing never throws (nlohmann with
// allow_exceptions=false and type checks before every get<>()).
//
// Used only by the tokenizer loaders (tokenizer*.cc). Pure functions, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace loraserve::tokenizer_internal {

using Json = nlohmann::json;

// "parent.key" (or "key" at the root).
std::string JsonChild(std::string_view parent, std::string_view key);
// "parent[index]".
std::string JsonIndex(std::string_view parent, size_t index);

// InvalidArgument "<path>: <problem>".
absl::Status JsonError(std::string_view path, std::string_view problem);

std::string_view JsonTypeName(const Json& v);

// Reads a whole file (at most `max_bytes`). NotFound / InvalidArgument naming the path.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path, size_t max_bytes);

// Parses `text`; InvalidArgument "malformed JSON (<what>)" when it is not
// well-formed ("malformed JSON" when `what` is empty).
absl::StatusOr<Json> ParseJson(std::string_view text, std::string_view what);

// The member `key` of object `obj` (at `path`), or nullptr when absent or null.
const Json* OptionalField(const Json& obj, std::string_view key);
// As above but absent/null is an error "missing required field".
absl::StatusOr<const Json*> RequiredField(const Json& obj, std::string_view key,
                                          std::string_view path);

// Typed getters for member `key` of `obj` at `path`.
absl::StatusOr<std::string> RequiredString(const Json& obj, std::string_view key,
                                           std::string_view path);
absl::StatusOr<std::optional<std::string>> OptionalString(const Json& obj, std::string_view key,
                                                          std::string_view path);
absl::StatusOr<bool> BoolOr(const Json& obj, std::string_view key, std::string_view path,
                            bool default_value);
absl::StatusOr<int64_t> RequiredInt(const Json& obj, std::string_view key, std::string_view path);
absl::StatusOr<int64_t> IntOr(const Json& obj, std::string_view key, std::string_view path,
                              int64_t default_value);

// `v` must be of the given kind; errors name `path`.
absl::Status ExpectObject(const Json& v, std::string_view path);
absl::Status ExpectArray(const Json& v, std::string_view path);
absl::StatusOr<std::string> AsString(const Json& v, std::string_view path);
absl::StatusOr<int64_t> AsInt(const Json& v, std::string_view path);

// The "type" member of a component object at `path` (required string).
absl::StatusOr<std::string> ComponentType(const Json& v, std::string_view path);

}  // namespace loraserve::tokenizer_internal
