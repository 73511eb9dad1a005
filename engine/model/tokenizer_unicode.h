// Unicode helpers for the tokenizer: UTF-8 decoding/encoding with the same
// replacement policy as Rust's String::from_utf8_lossy (one U+FFFD per maximal
// invalid subpart), character classes for the pre-tokenizer scanners (letter,
// number, White_Space), the GPT-2 byte<->unicode map, and NFC normalization.
//
// Tables come from tokenizer_unicode_data.cc (generated; Unicode 14.0). Used by
// the normalizer, pre-tokenizer, BPE model and decoders. Pure functions and
// immutable tables: any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace loraserve::tokenizer_internal {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Character class bits.
inline constexpr uint8_t kClassLetter = 1;  // General_Category L*
inline constexpr uint8_t kClassNumber = 2;  // General_Category N*
inline constexpr uint8_t kClassSpace = 4;   // White_Space (= regex \s in Oniguruma)

uint8_t CharClass(char32_t cp);
inline bool IsLetter(char32_t cp) { return CharClass(cp) & kClassLetter; }
inline bool IsNumber(char32_t cp) { return CharClass(cp) & kClassNumber; }
inline bool IsWhitespace(char32_t cp) { return CharClass(cp) & kClassSpace; }

// Decodes the well-formed UTF-8 character starting at s[pos] into *cp and
// returns its length (1..4); returns 0 when the bytes there are not a complete,
// well-formed character (then *cp is left unchanged).
int DecodeUtf8(std::string_view s, size_t pos, char32_t* cp);

// Length of the maximal subpart of an ill-formed sequence at s[pos] (>= 1):
// the bytes that one U+FFFD replaces under the Unicode "maximal subpart" rule.
int InvalidUtf8Length(std::string_view s, size_t pos);

void AppendUtf8(char32_t cp, std::string* out);
bool IsValidUtf8(std::string_view s);
// `s` with every maximal invalid subpart replaced by U+FFFD (from_utf8_lossy).
std::string Utf8Lossy(std::string_view s);

// Incremental from_utf8_lossy: bytes in, complete characters out. Holds back
// the bytes of a sequence that may still become valid; replaces a sequence
// with U+FFFD as soon as it is provably invalid. Concatenating every Push and
// the final Flush equals Utf8Lossy of all bytes. Not thread-safe (one stream).
class Utf8Assembler {
 public:
  void Push(uint8_t byte, std::string* out);
  void Flush(std::string* out);  // an unfinished sequence becomes one U+FFFD
  bool empty() const { return held_len_ == 0; }

 private:
  uint8_t held_[4] = {};
  int held_len_ = 0;
  int need_ = 0;  // total length of the held sequence
};

// GPT-2's bytes_to_unicode(): printable bytes map to themselves, the others to
// U+0100 + n. ByteToChar()[b] is the character for byte b; CharToByte(cp)
// returns the byte or -1 when cp is not in the map.
const std::array<char32_t, 256>& ByteToChar();
int CharToByte(char32_t cp);

// Unicode Normalization Form C (canonical decomposition, canonical ordering,
// canonical composition). Input must be valid UTF-8.
std::string NfcNormalize(std::string_view s);

// The Unicode version of the generated tables.
const char* UnicodeTablesVersion();

}  // namespace loraserve::tokenizer_internal
