#include "common/dtype.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace loraserve {
namespace {

TEST(DType, SizesAndNames) {
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF16), 2u);
  EXPECT_EQ(*ParseDType("BF16"), DType::kBF16);
  EXPECT_EQ(*ParseDType("F16"), DType::kF16);
  EXPECT_EQ(*ParseDType("F32"), DType::kF32);
  EXPECT_EQ(DTypeName(DType::kBF16), "BF16");
  absl::StatusOr<DType> bad = ParseDType("I64");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("I64"), std::string_view::npos);
}

// Known bf16 encodings (bit patterns computed by hand from IEEE-754).
TEST(Bf16, KnownValuesRoundTrip) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBf16(-2.0f), 0xc000);
  EXPECT_EQ(FloatToBf16(0.5f), 0x3f00);
  EXPECT_EQ(FloatToBf16(0.0f), 0x0000);
  EXPECT_EQ(FloatToBf16(-0.0f), 0x8000);
  EXPECT_EQ(Bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(Bf16ToFloat(0x4049), 3.140625f);
  EXPECT_EQ(FloatToBf16(3.14159265f), 0x4049);  // 3.1416 -> 3.140625
}

TEST(Bf16, RoundsToNearestEven) {
  // 1 + 2^-8 is exactly half-way between bf16 1.0 (0x3f80) and 1.0078125 (0x3f81):
  // ties go to the even mantissa, 0x3f80.
  EXPECT_EQ(FloatToBf16(1.0f + 1.0f / 256), 0x3f80);
  // 1 + 3*2^-8 is half-way between 0x3f81 and 0x3f82: even is 0x3f82.
  EXPECT_EQ(FloatToBf16(1.0f + 3.0f / 256), 0x3f82);
  // Just above half-way rounds up.
  EXPECT_EQ(FloatToBf16(1.0f + 1.0f / 256 + 1.0f / 65536), 0x3f81);
  // Just below half-way rounds down.
  EXPECT_EQ(FloatToBf16(1.0f + 1.0f / 256 - 1.0f / 65536), 0x3f80);
}

TEST(Bf16, InfNanAndOverflow) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(FloatToBf16(inf), 0x7f80);
  EXPECT_EQ(FloatToBf16(-inf), 0xff80);
  EXPECT_TRUE(std::isinf(Bf16ToFloat(0x7f80)));
  // The largest float rounds up past the largest bf16 into Inf.
  EXPECT_EQ(FloatToBf16(std::numeric_limits<float>::max()), 0x7f80);
  // NaN stays NaN, including a NaN whose payload sits only in the low 16 bits
  // (naive truncation would turn it into Inf).
  const float low_payload_nan = BitsToFloat(0x7f800001u);
  ASSERT_TRUE(std::isnan(low_payload_nan));
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(low_payload_nan))));
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("")))));
  const uint16_t neg_nan = FloatToBf16(-std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(neg_nan & 0x8000, 0x8000);
}

TEST(Fp16, KnownValues) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);  // largest finite half
  EXPECT_EQ(FloatToHalf(0.333251953125f), 0x3555);
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
}

TEST(Fp16, OverflowAndRounding) {
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);  // below the half-way point: stays finite
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);  // half-way: ties to even = Inf
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);
  EXPECT_EQ(FloatToHalf(-1e6f), 0xfc00);
  // 1 + 2^-11 is half-way between 1.0 and 1 + 2^-10: ties to even -> 1.0.
  EXPECT_EQ(FloatToHalf(1.0f + 1.0f / 2048), 0x3c00);
  EXPECT_EQ(FloatToHalf(1.0f + 3.0f / 2048), 0x3c02);
}

TEST(Fp16, Subnormals) {
  const float tiny = std::ldexp(1.0f, -24);  // smallest positive subnormal half
  EXPECT_EQ(FloatToHalf(tiny), 0x0001);
  EXPECT_EQ(HalfToFloat(0x0001), tiny);
  EXPECT_EQ(HalfToFloat(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1023.0f, -24)), 0x03ff);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);            // tie -> even 0
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -26)), 0x0001);            // 0.75 unit -> 1
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);            // smallest normal
  EXPECT_EQ(FloatToHalf(std::ldexp(2047.0f, -25)), 0x0400);         // rounds up into normal
}

TEST(Fp16, InfNan) {
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7c00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(BitsToFloat(0x7f800001u)))));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
}

// Every one of the 65536 half bit patterns survives half -> float -> half
// (NaNs compare as NaN). Same for bf16.
TEST(Fp16, ExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(f)))) << h;
    } else {
      ASSERT_EQ(FloatToHalf(f), h) << "half bits " << h;
    }
  }
}

TEST(Bf16, ExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = Bf16ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(f)))) << h;
    } else {
      ASSERT_EQ(FloatToBf16(f), h) << "bf16 bits " << h;
    }
  }
}

TEST(DType, BulkConversions) {
  const std::vector<float> src = {1.0f, -2.5f, 0.0f, 1e-3f, 1000.25f};
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
    std::vector<uint8_t> packed(src.size() * DTypeSize(t));
    ConvertFromF32(src.data(), packed.data(), t, src.size());
    std::vector<float> back(src.size());
    ConvertToF32(packed.data(), t, back.data(), src.size());
    const float rel = t == DType::kF32 ? 0.0f : (t == DType::kF16 ? 1.0f / 2048 : 1.0f / 256);
    for (size_t i = 0; i < src.size(); ++i) {
      EXPECT_NEAR(back[i], src[i], std::fabs(src[i]) * rel) << DTypeName(t) << " i=" << i;
    }
  }
  // Spot-check bulk bf16 against the scalar helper.
  uint16_t b[1];
  const float x = 3.14159265f;
  ConvertFromF32(&x, b, DType::kBF16, 1);
  EXPECT_EQ(b[0], 0x4049);
}

}  // namespace
}  // namespace loraserve
