// LlamaModel's side of sampling on the device: the candidates pass that runs
// after a step's logits (Backend::SampleCandidates, outside any decode graph)
// and the one-row logits fetch for rows whose candidates cannot decide.
// Forward thread only (LlamaModel is not thread-safe).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "engine/model/llama_model.h"
#include "engine/model/llama_model_workspace.h"

namespace loraserve {

absl::Status LlamaModel::ComputeCandidates(const ForwardBatch& batch, int64_t rows,
                                           ForwardOutput* out) {
  Workspace& w = *ws_;
  Backend& b = *backend_;
  const int64_t vocab = config_.vocab_size;
  const auto k = static_cast<int32_t>(std::min<int64_t>(kMaxSampleCandidates, vocab));
  // Rows of other sequences get temperature 1: computed, never read.
  w.temperatures.assign(static_cast<size_t>(rows), 1.0f);
  for (size_t i = 0; i < batch.sequences.size(); ++i) {
    const SequenceStep& s = batch.sequences[i];
    if (s.candidates_on_device && s.compute_logits && !s.all_logits) {
      w.temperatures[static_cast<size_t>(out->first_row[i])] = s.temperature;
    }
  }
  out->num_candidates = k;
  out->candidate_ids.resize(static_cast<size_t>(rows * k));
  out->candidate_values.resize(static_cast<size_t>(rows * k));
  out->candidate_totals.resize(static_cast<size_t>(rows));
  if (rows == 0) return absl::OkStatus();
  RETURN_IF_ERROR(b.CopyToDevice(w.d_temperature.data(), w.temperatures.data(),
                                 w.temperatures.size() * sizeof(float), {}));
  RETURN_IF_ERROR(b.SampleCandidates(
      w.logits.as<const float>(), rows, vocab, w.d_temperature.as<const float>(), k,
      w.d_cand_ids.as<int32_t>(), w.d_cand_values.as<float>(), w.d_cand_totals.as<double>(), {}));
  RETURN_IF_ERROR(b.CopyToHost(out->candidate_ids.data(), w.d_cand_ids.data(),
                               out->candidate_ids.size() * sizeof(int32_t), {}));
  RETURN_IF_ERROR(b.CopyToHost(out->candidate_values.data(), w.d_cand_values.data(),
                               out->candidate_values.size() * sizeof(float), {}));
  return b.CopyToHost(out->candidate_totals.data(), w.d_cand_totals.data(),
                      out->candidate_totals.size() * sizeof(double), {});
}

absl::Status LlamaModel::CopyLogitsRow(int64_t row, float* dst) {
  const Workspace& w = *ws_;
  if (row < 0 || row >= w.logits_rows) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CopyLogitsRow: row ", row, " is outside the last step's ", w.logits_rows, " logits rows"));
  }
  if (dst == nullptr) return absl::InvalidArgumentError("CopyLogitsRow: dst is null");
  const int64_t vocab = config_.vocab_size;
  RETURN_IF_ERROR(backend_->CopyToHost(dst, w.logits.as<const float>() + row * vocab,
                                       static_cast<size_t>(vocab) * sizeof(float), {}));
  return backend_->Synchronize({});
}

}  // namespace loraserve
