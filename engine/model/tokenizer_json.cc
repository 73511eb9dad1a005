#include "engine/model/tokenizer_json.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace loraserve::tokenizer_internal {

std::string JsonChild(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return absl::StrCat(Sv(parent), ".", Sv(key));
}

std::string JsonIndex(std::string_view parent, size_t index) {
  return absl::StrCat(Sv(parent), "[", index, "]");
}

absl::Status JsonError(std::string_view path, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(Sv(path), ": ", Sv(problem)));
}

std::string_view JsonTypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "object";
    case Json::value_t::array: return "array";
    case Json::value_t::string: return "string";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return "number";
    default: return "invalid";
  }
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  if (static_cast<uint64_t>(size) > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is ", size, " bytes, more than the limit of ", max_bytes));
  }
  in.seekg(0, std::ios::beg);
  std::string data(static_cast<size_t>(size), '\0');
  if (!in.read(data.data(), size)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  }
  return data;
}

absl::StatusOr<Json> ParseJson(std::string_view text, std::string_view what) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    if (what.empty()) return absl::InvalidArgumentError("malformed JSON");
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON (", Sv(what), ")"));
  }
  return j;
}

const Json* OptionalField(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<const Json*> RequiredField(const Json& obj, std::string_view key,
                                          std::string_view path) {
  RETURN_IF_ERROR(ExpectObject(obj, path));
  const Json* v = OptionalField(obj, key);
  if (v == nullptr) {
    return JsonError(JsonChild(path, key), "missing required field");
  }
  return v;
}

absl::Status ExpectObject(const Json& v, std::string_view path) {
  if (v.is_object()) return absl::OkStatus();
  return JsonError(path.empty() ? "<root>" : path,
                   absl::StrCat("expected an object, got ", Sv(JsonTypeName(v))));
}

absl::Status ExpectArray(const Json& v, std::string_view path) {
  if (v.is_array()) return absl::OkStatus();
  return JsonError(path, absl::StrCat("expected an array, got ", Sv(JsonTypeName(v))));
}

absl::StatusOr<std::string> AsString(const Json& v, std::string_view path) {
  if (!v.is_string()) {
    return JsonError(path, absl::StrCat("expected a string, got ", Sv(JsonTypeName(v))));
  }
  return v.get<std::string>();
}

absl::StatusOr<int64_t> AsInt(const Json& v, std::string_view path) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(u);
  }
  return JsonError(path, absl::StrCat("expected an integer, got ", Sv(JsonTypeName(v))));
}

absl::StatusOr<std::string> RequiredString(const Json& obj, std::string_view key,
                                           std::string_view path) {
  ASSIGN_OR_RETURN(const Json* v, RequiredField(obj, key, path));
  return AsString(*v, JsonChild(path, key));
}

absl::StatusOr<std::optional<std::string>> OptionalString(const Json& obj, std::string_view key,
                                                          std::string_view path) {
  const Json* v = OptionalField(obj, key);
  if (v == nullptr) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::string s, AsString(*v, JsonChild(path, key)));
  return std::optional<std::string>(std::move(s));
}

absl::StatusOr<bool> BoolOr(const Json& obj, std::string_view key, std::string_view path,
                            bool default_value) {
  const Json* v = OptionalField(obj, key);
  if (v == nullptr) return default_value;
  if (!v->is_boolean()) {
    return JsonError(JsonChild(path, key),
                     absl::StrCat("expected a boolean, got ", Sv(JsonTypeName(*v))));
  }
  return v->get<bool>();
}

absl::StatusOr<int64_t> RequiredInt(const Json& obj, std::string_view key, std::string_view path) {
  ASSIGN_OR_RETURN(const Json* v, RequiredField(obj, key, path));
  return AsInt(*v, JsonChild(path, key));
}

absl::StatusOr<int64_t> IntOr(const Json& obj, std::string_view key, std::string_view path,
                              int64_t default_value) {
  const Json* v = OptionalField(obj, key);
  if (v == nullptr) return default_value;
  return AsInt(*v, JsonChild(path, key));
}

absl::StatusOr<std::string> ComponentType(const Json& v, std::string_view path) {
  RETURN_IF_ERROR(ExpectObject(v, path));
  return RequiredString(v, "type", path);
}

}  // namespace loraserve::tokenizer_internal
