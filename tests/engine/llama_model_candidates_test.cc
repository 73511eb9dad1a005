// LlamaModel's sampling-on-the-device outputs on every backend, op by op and
// from decode graphs: a step whose rows ask for candidates returns, per row,
// exactly the k best logits of the same step run with host logits (and on
// the CPU exactly the sampler's weight sum; on CUDA within the summation
// order's bound), copies no full logits, and CopyLogitsRow fetches each row
// bit for bit until the next Forward. A bad temperature is refused.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/model/llama_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/logits_ops.h"
#include "tests/engine/backend_param.h"
#include "tests/engine/llama_model_test_fixture.h"

namespace loraserve {
namespace {

using ::loraserve::testing::AllBackendKinds;
using ::loraserve::testing::GoldenCase;
using ::loraserve::testing::LlamaModelTest;
using ::loraserve::testing::ModelParamName;
using ::loraserve::testing::Seq;

class LlamaModelCandidatesTest : public LlamaModelTest {
 protected:
  // One forward of every sequence's pending tokens (last-token logits only);
  // `device` puts the rows' logits on the device: even sequences through
  // candidates (temperature 0.5 + 0.25 i), odd ones greedy.
  ForwardOutput Forward(std::vector<Seq>& seqs, bool device) {
    ForwardBatch batch;
    for (size_t i = 0; i < seqs.size(); ++i) {
      Seq& s = seqs[i];
      const auto n = static_cast<int32_t>(s.tokens.size()) - s.cached;
      EXPECT_TRUE(kv_->Reserve(&s.table, s.cached + n).ok());
      SequenceStep st;
      st.tokens = std::span<const int32_t>(s.tokens).subspan(s.cached, n);
      st.num_cached = s.cached;
      st.block_table = s.table;
      st.adapter = s.adapter;
      if (device) {
        st.candidates_on_device = i % 2 == 0;
        st.greedy_on_device = i % 2 == 1;
        st.temperature = 0.5f + 0.25f * static_cast<float>(i);
      }
      batch.sequences.push_back(st);
    }
    ForwardOutput out;
    const absl::Status status = model_->Forward(batch, kv_->view(), &out);
    EXPECT_TRUE(status.ok()) << status;
    return out;
  }

  // Runs the prompts, then 4 decode steps; each step runs twice over the
  // same K/V slots (host logits, then device outputs) and compares.
  void RunAndCompare() {
    std::vector<Seq> seqs;
    for (const GoldenCase& g : goldens_) seqs.push_back(NewSeq(g));
    const int64_t vocab = model_->config().vocab_size;
    const auto k = static_cast<int32_t>(std::min<int64_t>(kMaxSampleCandidates, vocab));
    for (int step = 0; step < 5; ++step) {
      const ForwardOutput host = Forward(seqs, false);
      const ForwardOutput dev = Forward(seqs, true);
      ASSERT_FALSE(HasFatalFailure());
      ASSERT_EQ(dev.num_candidates, k);
      EXPECT_TRUE(dev.logits.empty()) << "every row stayed on the device";
      std::vector<float> fetched(static_cast<size_t>(vocab));
      for (size_t i = 0; i < seqs.size(); ++i) {
        const int64_t row = dev.first_row[i];
        ASSERT_EQ(row, host.first_row[i]);
        const std::span<const float> x = host.row(row);
        const std::string where =
            label() + " step " + std::to_string(step) + " seq " + std::to_string(i);
        ASSERT_TRUE(model_->CopyLogitsRow(row, fetched.data()).ok()) << where;
        ASSERT_EQ(std::memcmp(fetched.data(), x.data(), x.size_bytes()), 0) << where;
        if (i % 2 == 1) {
          EXPECT_EQ(dev.argmax[static_cast<size_t>(row)],
                    logits_ops::ArgMax(x.data(), static_cast<int32_t>(vocab)))
              << where;
          continue;
        }
        std::vector<logits_ops::Scored> best;
        logits_ops::TopK(x.data(), static_cast<int32_t>(vocab), k, &best);
        const auto ids = dev.candidate_ids_of(row);
        const auto values = dev.candidate_values_of(row);
        for (int32_t j = 0; j < k; ++j) {
          ASSERT_EQ(ids[j], best[j].id) << where << " rank " << j;
          ASSERT_EQ(values[j], best[j].value) << where << " rank " << j;
        }
        const float t = 0.5f + 0.25f * static_cast<float>(i);
        const double want =
            logits_ops::ExpSum(x.data(), static_cast<int32_t>(vocab),
                               logits_ops::MaxOf(x.data(), static_cast<int32_t>(vocab)), 1.0f / t);
        const double got = dev.candidate_totals[static_cast<size_t>(row)];
        if (kind() == BackendKind::kCpu) {
          EXPECT_EQ(got, want) << where;
        } else {
          // Same weights, another summation order: |error| <= 2 n 2^-53 of the sum.
          EXPECT_NEAR(got, want, 2.0 * static_cast<double>(vocab) * 0x1.0p-53 * want) << where;
        }
      }
      // Greedy continuation; the next step decodes it.
      for (size_t i = 0; i < seqs.size(); ++i) {
        Seq& s = seqs[i];
        s.cached = static_cast<int32_t>(s.tokens.size());
        s.tokens.push_back(
            logits_ops::ArgMax(host.row(host.first_row[i]).data(), static_cast<int32_t>(vocab)));
      }
    }
    const auto bad = model_->CopyLogitsRow(static_cast<int64_t>(seqs.size()), nullptr);
    EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(bad.message()), ::testing::HasSubstr("CopyLogitsRow: row"));
    Release(seqs);
  }
};

TEST_P(LlamaModelCandidatesTest, EagerStepsMatchHostLogits) {
  RunAndCompare();
  EXPECT_EQ(model_->graph_stats().launches, 0);
}

TEST_P(LlamaModelCandidatesTest, GraphStepsMatchHostLogits) {
  graph_mode_ = LlamaModel::GraphMode::kOn;
  Build(kind());
  ASSERT_FALSE(HasFatalFailure());
  RunAndCompare();
  EXPECT_GT(model_->graph_stats().launches, 0);
}

TEST_P(LlamaModelCandidatesTest, RefusesABadTemperature) {
  Seq s = NewSeq(goldens_[0]);
  ASSERT_TRUE(kv_->Reserve(&s.table, static_cast<int32_t>(s.tokens.size())).ok());
  ForwardBatch batch;
  SequenceStep st;
  st.tokens = s.tokens;
  st.block_table = s.table;
  st.adapter = s.adapter;
  st.candidates_on_device = true;
  st.temperature = 0.0f;
  batch.sequences.push_back(st);
  ForwardOutput out;
  const absl::Status status = model_->Forward(batch, kv_->view(), &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("sequence 0: temperature=0"));
  // A failed step leaves no rows to fetch.
  std::vector<float> row(static_cast<size_t>(model_->config().vocab_size));
  EXPECT_FALSE(model_->CopyLogitsRow(0, row.data()).ok());
  kv_->Release(&s.table);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, LlamaModelCandidatesTest,
                         ::testing::Combine(::testing::Values("tiny-llama", "tiny-qwen2"),
                                            ::testing::ValuesIn(AllBackendKinds())),
                         ModelParamName);

}  // namespace
}  // namespace loraserve
