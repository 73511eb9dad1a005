#include "engine/model/safetensors.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/safetensors_writer.h"

namespace loraserve {
namespace {

using ::loraserve::testutil::MakeSafetensorsBytes;
using ::loraserve::testutil::SafetensorsWriter;
using ::loraserve::testutil::TempDir;
using ::loraserve::testutil::TestValues;
using ::loraserve::testutil::WriteStringToFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

std::vector<float> Read(const TensorView& t) {
  absl::StatusOr<std::vector<float>> v = ToF32(t);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : std::vector<float>();
}

TEST(Safetensors, ReadsBackEveryDtypeExactly) {
  TempDir dir;
  SafetensorsWriter w;
  // Values chosen to exercise rounding: 0.1 is not representable in any 16-bit type.
  const std::vector<float> raw = {1.5f, -2.25f, 0.1f, 65504.0f, -0.0f, 3.0e-6f};
  const std::vector<float> f32 = w.Add("a.f32", "F32", {2, 3}, raw);
  const std::vector<float> f16 = w.Add("b.f16", "F16", {3, 2}, raw);
  const std::vector<float> bf16 = w.Add("c.bf16", "BF16", {6}, raw);
  w.SetMetadata("format", "pt");
  const std::string path = dir.Sub("x.safetensors");
  w.WriteTo(path);

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const SafetensorsFile& f = **file;
  EXPECT_EQ(f.path(), path);
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensors()[0].name, "a.f32");  // sorted by name
  EXPECT_EQ(f.metadata().at("format"), "pt");

  const TensorView* a = f.Find("a.f32");
  const TensorView* b = f.Find("b.f16");
  const TensorView* c = f.Find("c.bf16");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(f.Find("a"), nullptr);
  EXPECT_EQ(f.Find("d"), nullptr);
  EXPECT_EQ(a->dtype, DType::kF32);
  EXPECT_EQ(b->dtype, DType::kF16);
  EXPECT_EQ(c->dtype, DType::kBF16);
  EXPECT_THAT(a->shape, ElementsAre(2, 3));
  EXPECT_THAT(b->shape, ElementsAre(3, 2));
  EXPECT_EQ(a->numel(), 6);
  EXPECT_EQ(a->nbytes, 24u);
  EXPECT_EQ(b->nbytes, 12u);
  EXPECT_EQ(Read(*a), f32);
  EXPECT_EQ(Read(*b), f16);
  EXPECT_EQ(Read(*c), bf16);
  // Spot-check the rounding really happened (so the comparison above is meaningful).
  EXPECT_EQ(Read(*a)[2], 0.1f);
  EXPECT_NE(Read(*b)[2], 0.1f);
  EXPECT_EQ(Read(*c)[0], 1.5f);
  EXPECT_EQ(Read(*c)[1], -2.25f);
  EXPECT_TRUE(std::signbit(Read(*c)[4]));
}

TEST(Safetensors, UnalignedDataIsReadCorrectly) {
  // No header padding and an odd header length: 16-bit data starts at an odd address.
  TempDir dir;
  const std::vector<float> vals = TestValues(7, 3);
  SafetensorsWriter w;
  const std::vector<float> expect = w.Add("t", "BF16", {7}, vals);
  std::string header = w.Header().dump();
  if (header.size() % 2 == 0) header += " ";
  const std::string path = dir.Sub("u.safetensors");
  WriteStringToFile(path, MakeSafetensorsBytes(header, w.Data(), /*pad=*/false));
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorView* t = (*file)->Find("t");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 2, 1u);
  EXPECT_EQ(Read(*t), expect);
}

TEST(Safetensors, ScalarAndEmptyTensors) {
  TempDir dir;
  SafetensorsWriter w;
  w.AddF32("scalar", {}, {4.5f});
  w.AddF32("empty", {0, 4}, {});
  w.AddF32("after", {2}, {1.0f, 2.0f});
  const std::string path = dir.Sub("s.safetensors");
  w.WriteTo(path);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorView* scalar = (*file)->Find("scalar");
  const TensorView* empty = (*file)->Find("empty");
  ASSERT_NE(scalar, nullptr);
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(scalar->numel(), 1);
  EXPECT_EQ(Read(*scalar), std::vector<float>{4.5f});
  EXPECT_EQ(empty->numel(), 0);
  EXPECT_EQ(empty->nbytes, 0u);
  EXPECT_EQ(Read(*(*file)->Find("after")), (std::vector<float>{1.0f, 2.0f}));
}

TEST(Safetensors, MissingFileIsNotFound) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open("/nonexistent/dir/model.safetensors");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(file.status()), HasSubstr("/nonexistent/dir/model.safetensors"));
}

// A valid two-tensor file: "w" F32 [2, 3] (24 bytes) then "v" F32 [4] (16 bytes).
Json GoodHeader() {
  return Json::parse(R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                         "v": {"dtype": "F32", "shape": [4], "data_offsets": [24, 40]}})");
}
std::string GoodData() { return std::string(40, '\x01'); }

struct MalformedCase {
  std::string name;
  std::string bytes;
  absl::StatusCode code;
  std::string substr;
};

std::string WithHeader(const Json& h, const std::string& data = GoodData()) {
  return MakeSafetensorsBytes(h.dump(), data);
}
std::string Patched(const std::string& tensor, const std::string& field, const Json& value) {
  Json h = GoodHeader();
  if (value.is_null()) {
    h[tensor].erase(field);
  } else {
    h[tensor][field] = value;
  }
  return WithHeader(h);
}

std::vector<MalformedCase> MalformedCases() {
  using C = absl::StatusCode;
  std::vector<MalformedCase> cases;
  cases.push_back({"empty_file", "", C::kDataLoss, "too short for the 8-byte header length"});
  cases.push_back({"truncated_length", std::string("\x10\x00\x00", 3), C::kDataLoss, "too short"});
  {
    std::string b = WithHeader(GoodHeader());
    cases.push_back(
        {"header_longer_than_file", b.substr(0, 20), C::kDataLoss, "exceeds the file size"});
  }
  {
    std::string b(8, '\0');
    b[0] = '\x10';
    b[1] = '\x27';  // 10000 bytes of header announced, none present
    cases.push_back({"header_len_gt_file", b + "{}", C::kDataLoss, "header length 10000"});
  }
  {
    std::string b(8, '\0');
    b[4] = '\x01';  // 2^32 bytes
    cases.push_back({"header_len_over_limit", b + "{}", C::kDataLoss, "exceeds the limit"});
  }
  cases.push_back({"bad_json", MakeSafetensorsBytes("{\"w\": {", ""), C::kDataLoss,
                   "header is not valid JSON"});
  cases.push_back(
      {"json_array", MakeSafetensorsBytes("[1, 2]", ""), C::kDataLoss, "not a JSON object"});
  cases.push_back({"entry_not_object", MakeSafetensorsBytes(R"({"w": [1]})", ""), C::kDataLoss,
                   "tensor \"w\": entry is not an object"});
  cases.push_back({"missing_dtype", Patched("w", "dtype", nullptr), C::kDataLoss,
                   "tensor \"w\": missing \"dtype\""});
  cases.push_back({"missing_shape", Patched("w", "shape", nullptr), C::kDataLoss,
                   "tensor \"w\": missing \"shape\""});
  cases.push_back({"missing_offsets", Patched("v", "data_offsets", nullptr), C::kDataLoss,
                   "tensor \"v\": missing \"data_offsets\""});
  cases.push_back({"dtype_i64", Patched("w", "dtype", "I64"), C::kInvalidArgument,
                   "tensor \"w\": unsupported dtype \"I64\""});
  cases.push_back({"dtype_not_string", Patched("w", "dtype", 4), C::kDataLoss,
                   "tensor \"w\": \"dtype\" is not a string"});
  cases.push_back(
      {"shape_not_array", Patched("w", "shape", 6), C::kDataLoss, "\"shape\" is not an array"});
  cases.push_back({"negative_dim", Patched("w", "shape", Json::array({-2, -3})), C::kDataLoss,
                   "tensor \"w\": negative dimension -2"});
  cases.push_back({"float_dim", Patched("w", "shape", Json::array({2.5, 3})), C::kDataLoss,
                   "non-negative integers"});
  cases.push_back(
      {"shape_bytes_mismatch", Patched("w", "shape", Json::array({2, 2})), C::kDataLoss,
       "tensor \"w\": shape [2, 2] of F32 needs 16 bytes but data_offsets [0, 24] hold 24"});
  cases.push_back({"shape_overflow", Patched("w", "shape", Json::array({1ll << 40, 1ll << 40})),
                   C::kDataLoss, "overflows"});
  cases.push_back(
      {"offsets_out_of_range", WithHeader(GoodHeader(), std::string(30, '\0')), C::kDataLoss,
       "tensor \"v\": data_offsets [24, 40] out of range: the data section is 30 bytes"});
  cases.push_back({"end_before_begin", Patched("v", "data_offsets", Json::array({40, 24})),
                   C::kDataLoss, "tensor \"v\": data_offsets [40, 24]: end < begin"});
  cases.push_back({"negative_offset", Patched("v", "data_offsets", Json::array({-8, 8})),
                   C::kDataLoss, "two non-negative integers"});
  cases.push_back({"three_offsets", Patched("v", "data_offsets", Json::array({24, 32, 40})),
                   C::kDataLoss, "not an array of two integers"});
  cases.push_back({"overlap", Patched("v", "data_offsets", Json::array({16, 32})), C::kDataLoss,
                   "tensors \"w\" and \"v\" overlap"});
  cases.push_back({"duplicate_name",
                   MakeSafetensorsBytes(
                       R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                           "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                       std::string(8, '\0')),
                   C::kDataLoss, "tensor \"w\" appears twice"});
  {
    Json h = GoodHeader();
    h["__metadata__"] = {{"format", 1}};
    cases.push_back({"metadata_not_string", WithHeader(h), C::kDataLoss,
                     "\"__metadata__\" value of \"format\" is not a string"});
  }
  return cases;
}

TEST(Safetensors, MalformedFilesAreRefusedWithReason) {
  TempDir dir;
  // The good file really is good (so each case fails because of its one defect).
  {
    const std::string path = dir.Sub("good.safetensors");
    WriteStringToFile(path, WithHeader(GoodHeader()));
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->tensors().size(), 2u);
  }
  for (const MalformedCase& c : MalformedCases()) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.Sub(c.name + ".safetensors");
    WriteStringToFile(path, c.bytes);
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), c.code) << f.status();
    EXPECT_THAT(Msg(f.status()), HasSubstr(c.substr));
    EXPECT_THAT(Msg(f.status()), HasSubstr(path));  // every message names the file
  }
}

TEST(Safetensors, EveryTruncationIsRefusedAndBitFlipsNeverCrash) {
  TempDir dir;
  SafetensorsWriter w;
  w.Add("x", "BF16", {3, 5}, TestValues(15, 1));
  w.Add("y", "F32", {4}, TestValues(4, 2));
  const std::string good = w.Serialize();
  const std::string path = dir.Sub("t.safetensors");
  for (size_t len = 0; len < good.size(); ++len) {
    WriteStringToFile(path, good.substr(0, len));
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
    EXPECT_FALSE(f.ok()) << "prefix of " << len << " bytes accepted";
  }
  // Flip bytes of the header one at a time: any result is fine as long as an
  // accepted file's tensors all lie inside the file (checked by reading them).
  const size_t header_end = 8 + (static_cast<size_t>(static_cast<uint8_t>(good[0])) |
                                 static_cast<size_t>(static_cast<uint8_t>(good[1])) << 8);
  int accepted = 0;
  for (size_t i = 0; i < header_end; ++i) {
    for (uint8_t flip : {0x01, 0x20, 0x80}) {
      std::string bad = good;
      bad[i] = static_cast<char>(static_cast<uint8_t>(bad[i]) ^ flip);
      WriteStringToFile(path, bad);
      absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
      if (!f.ok()) continue;
      ++accepted;
      for (const TensorView& t : (*f)->tensors()) {
        EXPECT_LE(t.nbytes, bad.size());
        std::vector<float> out(static_cast<size_t>(t.numel()));
        EXPECT_TRUE(ToF32(t, out.data()).ok());
      }
    }
  }
  EXPECT_GT(accepted, 0);  // e.g. flips inside tensor names or header padding
}

// ---------------------------------------------------------------------------
// Bundles

std::vector<float> WriteShard(const std::string& path, const std::vector<std::string>& names,
                              uint64_t seed) {
  SafetensorsWriter w;
  std::vector<float> all;
  for (const std::string& n : names) {
    std::vector<float> v = w.Add(n, "BF16", {2, 3}, TestValues(6, seed++));
    all.insert(all.end(), v.begin(), v.end());
  }
  w.WriteTo(path);
  return all;
}

std::string IndexJson(const std::vector<std::pair<std::string, std::string>>& map) {
  Json wm = Json::object();
  for (const auto& [t, s] : map) wm[t] = s;
  return Json{{"metadata", {{"total_size", 0}}}, {"weight_map", wm}}.dump();
}

TEST(SafetensorsBundle, ShardedIndex) {
  TempDir dir;
  const std::vector<float> s1 =
      WriteShard(dir.Sub("model-00001-of-00002.safetensors"), {"embed", "layer0.w"}, 10);
  const std::vector<float> s2 =
      WriteShard(dir.Sub("model-00002-of-00002.safetensors"), {"layer1.w"}, 20);
  WriteStringToFile(dir.Sub("model.safetensors.index.json"),
                    IndexJson({{"embed", "model-00001-of-00002.safetensors"},
                               {"layer0.w", "model-00001-of-00002.safetensors"},
                               {"layer1.w", "model-00002-of-00002.safetensors"}}));
  absl::StatusOr<std::unique_ptr<SafetensorsBundle>> b = SafetensorsBundle::OpenDir(dir.path());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT((*b)->names(), ElementsAre("embed", "layer0.w", "layer1.w"));
  EXPECT_EQ((*b)->files().size(), 2u);
  EXPECT_EQ((*b)->tensor_bytes(), 3u * 12u);
  ASSERT_NE((*b)->Find("layer1.w"), nullptr);
  EXPECT_EQ((*b)->Find("nope"), nullptr);
  EXPECT_EQ(Read(*(*b)->Find("layer1.w")), s2);
  EXPECT_EQ(Read(*(*b)->Find("layer0.w")), std::vector<float>(s1.begin() + 6, s1.end()));
}

TEST(SafetensorsBundle, SingleFileWinsOverIndex) {
  TempDir dir;
  WriteShard(dir.Sub("model.safetensors"), {"only"}, 1);
  WriteStringToFile(dir.Sub("model.safetensors.index.json"), "not even json");
  absl::StatusOr<std::unique_ptr<SafetensorsBundle>> b = SafetensorsBundle::OpenDir(dir.path());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT((*b)->names(), ElementsAre("only"));
}

TEST(SafetensorsBundle, OpenFilesRefusesDuplicateNames) {
  TempDir dir;
  WriteShard(dir.Sub("a.safetensors"), {"x", "y"}, 1);
  WriteShard(dir.Sub("b.safetensors"), {"y"}, 2);
  absl::StatusOr<std::unique_ptr<SafetensorsBundle>> b =
      SafetensorsBundle::Open({dir.Sub("a.safetensors"), dir.Sub("b.safetensors")});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(b.status()), HasSubstr("tensor \"y\" appears in both"));
  EXPECT_THAT(Msg(b.status()), HasSubstr("a.safetensors"));
}

TEST(SafetensorsBundle, RealShardedFixture) {
  // tests/data/tiny-qwen2 is a 5-shard checkpoint written by transformers.
  absl::StatusOr<std::unique_ptr<SafetensorsBundle>> b =
      SafetensorsBundle::OpenDir(std::string(LORASERVE_TEST_DATA_DIR) + "/tiny-qwen2");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->files().size(), 5u);
  const TensorView* emb = (*b)->Find("model.embed_tokens.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_THAT(emb->shape, ElementsAre(512, 64));
  const TensorView* qb = (*b)->Find("model.layers.1.self_attn.q_proj.bias");
  ASSERT_NE(qb, nullptr);
  EXPECT_THAT(qb->shape, ElementsAre(64));
  EXPECT_EQ((*b)->tensor_bytes(), 238720u);  // the index's metadata.total_size
}

struct IndexCase {
  std::string name;
  std::vector<std::pair<std::string, std::string>> weight_map;  // empty: raw_index used
  std::string raw_index;
  absl::StatusCode code;
  std::string substr;
};

TEST(SafetensorsBundle, BadIndexesAreRefusedWithReason) {
  using C = absl::StatusCode;
  const std::string s1 = "model-00001-of-00002.safetensors";
  const std::string s2 = "model-00002-of-00002.safetensors";
  // Shard 1 holds "a" and "z", shard 2 holds "b".
  const std::vector<IndexCase> cases = {
      {"missing_shard",
       {{"a", s1}, {"z", s1}, {"b", "model-00009.safetensors"}},
       "",
       C::kNotFound,
       "shard \"model-00009.safetensors\""},
      {"missing_tensor",
       {{"a", s1}, {"z", s1}, {"b", s2}, {"c", s2}},
       "",
       C::kDataLoss,
       "tensor \"c\" is listed in shard \"" + s2 + "\" but that shard does not contain it"},
      {"unlisted_tensor",
       {{"a", s1}, {"b", s2}},
       "",
       C::kDataLoss,
       "tensor \"z\" in shard \"" + s1 + "\" is not listed"},
      {"wrong_shard",
       {{"a", s2}, {"z", s1}, {"b", s2}},
       "",
       C::kDataLoss,
       "tensor \"a\" is in shard \"" + s1 + "\" but \"weight_map\" lists it in \"" + s2 + "\""},
      {"dotdot_escape",
       {{"a", s1}, {"z", s1}, {"b", "../" + s2}},
       "",
       C::kInvalidArgument,
       "shard path \"../" + s2 + "\" escapes"},
      {"nested_dotdot",
       {{"a", s1}, {"z", s1}, {"b", "sub/../../x.safetensors"}},
       "",
       C::kInvalidArgument,
       "escapes"},
      {"absolute",
       {{"a", s1}, {"z", s1}, {"b", "/etc/passwd"}},
       "",
       C::kInvalidArgument,
       "shard path \"/etc/passwd\" escapes"},
      {"no_weight_map", {}, R"({"metadata": {}})", C::kDataLoss, "missing \"weight_map\""},
      {"bad_json", {}, "{\"weight_map\": ", C::kDataLoss, "not valid JSON"},
      {"shard_not_string",
       {},
       R"({"weight_map": {"a": 3}})",
       C::kDataLoss,
       "entry for tensor \"a\" is not a string"},
  };
  for (const IndexCase& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    WriteShard(dir.Sub(s1), {"a", "z"}, 1);
    WriteShard(dir.Sub(s2), {"b"}, 2);
    WriteStringToFile(dir.Sub("x.safetensors"), "");  // a target for the escape attempts
    const std::string index = dir.Sub("model.safetensors.index.json");
    WriteStringToFile(index, c.weight_map.empty() ? c.raw_index : IndexJson(c.weight_map));
    absl::StatusOr<std::unique_ptr<SafetensorsBundle>> b = SafetensorsBundle::OpenDir(dir.path());
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), c.code) << b.status();
    EXPECT_THAT(Msg(b.status()), HasSubstr(c.substr));
    EXPECT_THAT(Msg(b.status()), HasSubstr(index));
  }
}

TEST(SafetensorsBundle, EmptyDirectoryIsNotFound) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<SafetensorsBundle>> b = SafetensorsBundle::OpenDir(dir.path());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(b.status()), HasSubstr("no model.safetensors or model.safetensors.index.json"));
}

}  // namespace
}  // namespace loraserve
