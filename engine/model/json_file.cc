#include "engine/model/json_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace loraserve::json {

absl::StatusOr<std::string> ReadFileToString(const std::string& path, size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat("cannot open ", path, ": ", std::strerror(err)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": file is ", st.st_size, " bytes, more than the limit of ", max_bytes));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return absl::Status(absl::ErrnoToStatusCode(err),
                          absl::StrCat("cannot read ", path, ": ", std::strerror(err)));
    }
    if (n == 0) break;  // shrank while reading
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<Json> ParseObject(std::string_view text, std::string_view what) {
  Json j = Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(Sv(what), ": not valid JSON"));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(what), ": expected a JSON object, got ", Sv(TypeName(j))));
  }
  return j;
}

std::string_view TypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    default:
      return "value";
  }
}

const Json* Find(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(key));
  return it == obj.end() ? nullptr : &*it;
}

absl::StatusOr<int64_t> AsInt(const Json& v, std::string_view what) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat(Sv(what), " is out of range: ", u));
    }
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return absl::InvalidArgumentError(
      absl::StrCat(Sv(what), " must be an integer, got ", Sv(TypeName(v))));
}

absl::StatusOr<std::optional<int64_t>> OptionalInt(const Json& obj, std::string_view key) {
  const Json* v = Find(obj, key);
  if (v == nullptr || v->is_null()) return std::optional<int64_t>();
  absl::StatusOr<int64_t> i = AsInt(*v, absl::StrCat("\"", Sv(key), "\""));
  if (!i.ok()) return i.status();
  return std::optional<int64_t>(*i);
}

absl::StatusOr<std::optional<double>> OptionalNumber(const Json& obj, std::string_view key) {
  const Json* v = Find(obj, key);
  if (v == nullptr || v->is_null()) return std::optional<double>();
  if (!v->is_number()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", Sv(key), "\" must be a number, got ", Sv(TypeName(*v))));
  }
  return std::optional<double>(v->get<double>());
}

absl::StatusOr<std::optional<bool>> OptionalBool(const Json& obj, std::string_view key) {
  const Json* v = Find(obj, key);
  if (v == nullptr || v->is_null()) return std::optional<bool>();
  if (!v->is_boolean()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", Sv(key), "\" must be true or false, got ", Sv(TypeName(*v))));
  }
  return std::optional<bool>(v->get<bool>());
}

absl::StatusOr<std::optional<std::string>> OptionalString(const Json& obj, std::string_view key) {
  const Json* v = Find(obj, key);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", Sv(key), "\" must be a string, got ", Sv(TypeName(*v))));
  }
  return std::optional<std::string>(v->get<std::string>());
}

absl::StatusOr<int64_t> RequiredInt(const Json& obj, std::string_view key) {
  absl::StatusOr<std::optional<int64_t>> v = OptionalInt(obj, key);
  if (!v.ok()) return v.status();
  if (!v->has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("missing required field \"", Sv(key), "\""));
  }
  return **v;
}

absl::StatusOr<double> RequiredNumber(const Json& obj, std::string_view key) {
  absl::StatusOr<std::optional<double>> v = OptionalNumber(obj, key);
  if (!v.ok()) return v.status();
  if (!v->has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("missing required field \"", Sv(key), "\""));
  }
  return **v;
}

}  // namespace loraserve::json
