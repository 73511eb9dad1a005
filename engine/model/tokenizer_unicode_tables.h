// Declarations of the generated Unicode tables (tokenizer_unicode_data.cc, made by
// scripts/make_tokenizer_unicode_tables.py). Only tokenizer_unicode.cc reads them.
// Immutable constant data: any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace loraserve::tokenizer_internal {

// A run [lo, hi] of code points sharing `value` (class bits, or a combining class).
struct ClassRange {
  char32_t lo;
  char32_t hi;
  uint8_t value;
};

// Full canonical decomposition of `cp`: kDecompositionData[offset, offset + length).
struct Decomposition {
  char32_t cp;
  uint16_t offset;
  uint8_t length;
};

// A primary composite: first + second -> composite (sorted by first, then second).
struct Composition {
  char32_t first;
  char32_t second;
  char32_t composite;
};

extern const ClassRange kClassRanges[];  // sorted, disjoint; bits: 1 L, 2 N, 4 White_Space
extern const size_t kClassRangesSize;
extern const ClassRange kCccRanges[];    // sorted, disjoint; nonzero Canonical_Combining_Class
extern const size_t kCccRangesSize;
extern const Decomposition kDecompositions[];  // sorted by cp; Hangul excluded (algorithmic)
extern const size_t kDecompositionsSize;
extern const char32_t kDecompositionData[];
extern const size_t kDecompositionDataSize;
extern const Composition kCompositions[];
extern const size_t kCompositionsSize;
extern const char kUnicodeVersion[];

}  // namespace loraserve::tokenizer_internal
