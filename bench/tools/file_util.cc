#include "bench/tools/file_util.h"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace loraserve::bench {

absl::Status EnsureDirectory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot create directory ", dir, ": ", ec.message()));
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::InternalError(absl::StrCat(dir, " exists and is not a directory"));
  }
  return absl::OkStatus();
}

absl::Status WriteTextFile(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status HardLink(const std::string& target, const std::string& link) {
  std::error_code ec;
  std::filesystem::remove(link, ec);
  ec.clear();
  std::filesystem::create_hard_link(target, link, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot hard-link ", link, " to ", target, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace loraserve::bench
