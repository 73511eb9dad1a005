// SafetensorsWriter (engine/model/safetensors_writer.h): files it writes read
// back through SafetensorsFile with exact values in all three dtypes, the
// metadata, 8-aligned data, and refusals of inconsistent tensors.
#include "engine/model/safetensors_writer.h"

#include <cmath>
#include <limits>
#include <vector>

#include "engine/model/safetensors.h"
#include "gtest/gtest.h"
#include "tests/engine/safetensors_writer.h"

namespace loraserve {
namespace {

using ::loraserve::testutil::TempDir;

TEST(SafetensorsWriterTest, RoundTripsAllDtypesExactly) {
  TempDir dir;
  const std::vector<float> v = {0.0f,      -0.0f,  1.0f,   -2.5f, 3.14159265f, 1e-3f,
                                65504.0f,  1e-8f,  -7e4f,  0.1f,  1.0f / 3.0f, 1234.567f};
  ::loraserve::SafetensorsWriter w;
  std::vector<float> r32, r16, rbf;
  ASSERT_TRUE(w.Add("x.f32", DType::kF32, {3, 4}, v, &r32).ok());
  ASSERT_TRUE(w.Add("x.f16", DType::kF16, {12}, v, &r16).ok());
  ASSERT_TRUE(w.Add("x.bf16", DType::kBF16, {2, 2, 3}, v, &rbf).ok());
  w.SetMetadata("format", "pt");
  const std::string path = dir.Sub("t.safetensors");
  ASSERT_TRUE(w.Write(path).ok());

  // The rounded values are the dtype's own rounding of each input.
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(FloatBits(r32[i]), FloatBits(v[i]));
    EXPECT_EQ(FloatBits(r16[i]), FloatBits(HalfToFloat(FloatToHalf(v[i])))) << i;
    EXPECT_EQ(FloatBits(rbf[i]), FloatBits(Bf16ToFloat(FloatToBf16(v[i])))) << i;
  }

  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  ASSERT_EQ((*f)->tensors().size(), 3u);
  struct Want {
    const char* name;
    DType dtype;
    std::vector<int64_t> shape;
    const std::vector<float>* values;
  };
  for (const Want& want : {Want{"x.f32", DType::kF32, {3, 4}, &r32},
                           Want{"x.f16", DType::kF16, {12}, &r16},
                           Want{"x.bf16", DType::kBF16, {2, 2, 3}, &rbf}}) {
    const TensorView* t = (*f)->Find(want.name);
    ASSERT_NE(t, nullptr) << want.name;
    EXPECT_EQ(t->dtype, want.dtype);
    EXPECT_EQ(t->shape, want.shape);
    auto got = ToF32(*t);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      EXPECT_EQ(FloatBits((*got)[i]), FloatBits((*want.values)[i])) << want.name << " " << i;
    }
  }
  // Serialize() is the same bytes Write() put on disk; the data section starts 8-aligned.
  const std::string bytes = w.Serialize();
  EXPECT_EQ((*f)->file_bytes(), bytes.size());
  EXPECT_EQ((bytes.size() - w.data_bytes()) % 8, 0u);
}

TEST(SafetensorsWriterTest, RefusesInconsistentTensors) {
  ::loraserve::SafetensorsWriter w;
  const std::vector<float> six(6, 1.0f);
  EXPECT_EQ(w.Add("a", DType::kF32, {2, 2}, six).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Add("a", DType::kF32, {-2, -3}, six).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Add("", DType::kF32, {6}, six).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Add("__metadata__", DType::kF32, {6}, six).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(w.Add("a", DType::kBF16, {2, 3}, six).ok());
  EXPECT_EQ(w.Add("a", DType::kF16, {6}, six).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.num_tensors(), 1u);
  EXPECT_EQ(w.data_bytes(), 12u);
  EXPECT_EQ(w.Write("/nonexistent-dir/x.safetensors").code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace loraserve
