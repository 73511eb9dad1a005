#include "engine/model/tokenizer_unicode.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "engine/model/tokenizer_unicode_tables.h"

namespace loraserve::tokenizer_internal {
namespace {

// Classes of the Basic Multilingual Plane, expanded once from the range table.
const std::vector<uint8_t>& BmpClasses() {
  static const std::vector<uint8_t>* table = [] {
    auto* t = new std::vector<uint8_t>(0x10000, 0);
    for (size_t i = 0; i < kClassRangesSize; ++i) {
      const ClassRange& r = kClassRanges[i];
      if (r.lo > 0xFFFF) break;
      for (char32_t c = r.lo; c <= std::min<char32_t>(r.hi, 0xFFFF); ++c) (*t)[c] = r.value;
    }
    return t;
  }();
  return *table;
}

uint8_t LookupRange(const ClassRange* table, size_t size, char32_t cp) {
  const ClassRange* end = table + size;
  const ClassRange* it =
      std::upper_bound(table, end, cp, [](char32_t c, const ClassRange& r) { return c < r.lo; });
  if (it == table) return 0;
  --it;
  return cp <= it->hi ? it->value : 0;
}

// Allowed range of the second byte of a sequence led by `lead` (Unicode Table 3-7).
bool SecondByteOk(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default: return b >= 0x80 && b <= 0xBF;
  }
}

// Total length of a sequence led by `lead`, or 0 if `lead` cannot start one.
int SequenceLength(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

bool ContinuationOk(uint8_t lead, int index, uint8_t b) {
  return index == 1 ? SecondByteOk(lead, b) : (b >= 0x80 && b <= 0xBF);
}

char32_t Assemble(const uint8_t* b, int len) {
  switch (len) {
    case 1: return b[0];
    case 2: return ((b[0] & 0x1F) << 6) | (b[1] & 0x3F);
    case 3: return ((b[0] & 0x0F) << 12) | ((b[1] & 0x3F) << 6) | (b[2] & 0x3F);
    default:
      return ((b[0] & 0x07) << 18) | ((b[1] & 0x3F) << 12) | ((b[2] & 0x3F) << 6) | (b[3] & 0x3F);
  }
}

// ---- NFC ----
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr int kSCount = kLCount * kNCount;

uint8_t Ccc(char32_t cp) {
  if (cp < 0x300) return 0;
  return LookupRange(kCccRanges, kCccRangesSize, cp);
}

void Decompose(char32_t cp, std::vector<char32_t>* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const int s = static_cast<int>(cp - kSBase);
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* end = kDecompositions + kDecompositionsSize;
  const Decomposition* it = std::lower_bound(
      kDecompositions, end, cp, [](const Decomposition& d, char32_t c) { return d.cp < c; });
  if (it != end && it->cp == cp) {
    out->insert(out->end(), kDecompositionData + it->offset,
                kDecompositionData + it->offset + it->length);
  } else {
    out->push_back(cp);
  }
}

// The primary composite of (a, b), or 0.
char32_t Compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const Composition* end = kCompositions + kCompositionsSize;
  const Composition* it = std::lower_bound(
      kCompositions, end, std::make_pair(a, b), [](const Composition& c, std::pair<char32_t, char32_t> k) {
        return c.first != k.first ? c.first < k.first : c.second < k.second;
      });
  if (it != end && it->first == a && it->second == b) return it->composite;
  return 0;
}

}  // namespace

uint8_t CharClass(char32_t cp) {
  if (cp < 0x10000) return BmpClasses()[cp];
  return LookupRange(kClassRanges, kClassRangesSize, cp);
}

int DecodeUtf8(std::string_view s, size_t pos, char32_t* cp) {
  const auto* b = reinterpret_cast<const uint8_t*>(s.data()) + pos;
  const size_t avail = s.size() - pos;
  const int len = SequenceLength(b[0]);
  if (len == 0 || static_cast<size_t>(len) > avail) return 0;
  for (int i = 1; i < len; ++i) {
    if (!ContinuationOk(b[0], i, b[i])) return 0;
  }
  *cp = Assemble(b, len);
  return len;
}

int InvalidUtf8Length(std::string_view s, size_t pos) {
  const auto* b = reinterpret_cast<const uint8_t*>(s.data()) + pos;
  const size_t avail = s.size() - pos;
  const int len = SequenceLength(b[0]);
  if (len <= 1) return 1;
  int i = 1;
  while (i < len && static_cast<size_t>(i) < avail && ContinuationOk(b[0], i, b[i])) ++i;
  return i;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValidUtf8(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<uint8_t>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    char32_t cp;
    const int len = DecodeUtf8(s, pos, &cp);
    if (len == 0) return false;
    pos += len;
  }
  return true;
}

std::string Utf8Lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    char32_t cp;
    const int len = DecodeUtf8(s, pos, &cp);
    if (len > 0) {
      out.append(s.substr(pos, len));
      pos += len;
    } else {
      AppendUtf8(kReplacementChar, &out);
      pos += InvalidUtf8Length(s, pos);
    }
  }
  return out;
}

void Utf8Assembler::Push(uint8_t byte, std::string* out) {
  if (held_len_ > 0) {
    if (ContinuationOk(held_[0], held_len_, byte)) {
      held_[held_len_++] = byte;
      if (held_len_ == need_) {
        AppendUtf8(Assemble(held_, need_), out);
        held_len_ = 0;
      }
      return;
    }
    AppendUtf8(kReplacementChar, out);
    held_len_ = 0;
  }
  const int len = SequenceLength(byte);
  if (len == 1) {
    out->push_back(static_cast<char>(byte));
  } else if (len == 0) {
    AppendUtf8(kReplacementChar, out);
  } else {
    held_[0] = byte;
    held_len_ = 1;
    need_ = len;
  }
}

void Utf8Assembler::Flush(std::string* out) {
  if (held_len_ > 0) AppendUtf8(kReplacementChar, out);
  held_len_ = 0;
}

const std::array<char32_t, 256>& ByteToChar() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
    }
    return t;
  }();
  return table;
}

int CharToByte(char32_t cp) {
  static const std::array<int16_t, 324> table = [] {
    std::array<int16_t, 324> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[ByteToChar()[b]] = static_cast<int16_t>(b);
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

std::string NfcNormalize(std::string_view s) {
  // Code points below U+0300 are NFC-stable and never compose with each other;
  // their UTF-8 bytes are all below 0xCC.
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0xCC; })) {
    return std::string(s);
  }
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    char32_t cp = kReplacementChar;
    const int len = DecodeUtf8(s, pos, &cp);
    pos += len > 0 ? len : InvalidUtf8Length(s, pos);
    Decompose(cp, &cps);
  }
  // Canonical ordering: stable sort each run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (Ccc(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && Ccc(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j,
                     [](char32_t a, char32_t b) { return Ccc(a) < Ccc(b); });
    i = j;
  }
  // Canonical composition.
  std::vector<char32_t> out;
  out.reserve(cps.size());
  std::ptrdiff_t starter = -1;
  for (char32_t c : cps) {
    const uint8_t cc = Ccc(c);
    if (starter >= 0) {
      const bool adjacent = static_cast<std::ptrdiff_t>(out.size()) - 1 == starter;
      const uint8_t prev_cc = adjacent ? 0 : Ccc(out.back());
      const bool blocked = !adjacent && (prev_cc == 0 || prev_cc >= cc);
      if (!blocked) {
        if (char32_t composite = Compose(out[starter], c); composite != 0) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (cc == 0) starter = static_cast<std::ptrdiff_t>(out.size());
    out.push_back(c);
  }
  std::string result;
  result.reserve(s.size());
  for (char32_t c : out) AppendUtf8(c, &result);
  return result;
}

const char* UnicodeTablesVersion() { return kUnicodeVersion; }

}  // namespace loraserve::tokenizer_internal
