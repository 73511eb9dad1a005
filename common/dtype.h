// Element types of weights and activations, and exact CPU conversions between
// them. bf16 and fp16 values are stored as raw uint16_t bit patterns; fp32 is
// the CPU compute type. Conversions to 16 bits round to nearest, ties to even,
// keep NaN a (quiet) NaN and the sign of zero; fp16 overflows to +-Inf and
// produces subnormals exactly. Pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "absl/status/statusor.h"

namespace loraserve {

enum class DType : uint8_t { kF32 = 0, kF16 = 1, kBF16 = 2 };

// Bytes per element: 4 for kF32, 2 for kF16 and kBF16.
constexpr size_t DTypeSize(DType t) { return t == DType::kF32 ? 4 : 2; }

// "F32", "F16", "BF16": the safetensors spelling.
std::string_view DTypeName(DType t);

// Parses the safetensors dtype string; any other type is InvalidArgument
// naming it (e.g. "unsupported dtype \"I64\"").
absl::StatusOr<DType> ParseDType(std::string_view name);

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// bf16 is the upper half of an fp32: widening is a shift.
inline float Bf16ToFloat(uint16_t h) { return BitsToFloat(static_cast<uint32_t>(h) << 16); }

inline uint16_t FloatToBf16(float f) {
  uint32_t u = FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep sign, force quiet bit
    return static_cast<uint16_t>((u >> 16) | 0x0040u);
  }
  const uint32_t lsb = (u >> 16) & 1u;
  u += 0x7fffu + lsb;  // round to nearest even; overflow carries into Inf
  return static_cast<uint16_t>(u >> 16);
}

float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);

// Bulk conversions: n elements from `src` (of dtype `src_type`) to fp32 `dst`,
// and from fp32 `src` to `dst` (of dtype `dst_type`). Buffers must not overlap.
void ConvertToF32(const void* src /* [n] src_type */, DType src_type, float* dst /* [n] */,
                  size_t n);
void ConvertFromF32(const float* src /* [n] */, void* dst /* [n] dst_type */, DType dst_type,
                    size_t n);

}  // namespace loraserve
