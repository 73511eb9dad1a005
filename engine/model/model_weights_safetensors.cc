// ModelWeights::Create: fills the layout of ModelWeights::Build from a
// SafetensorsBundle, checking each tensor's presence and shape against the
// config and converting it to the backend's storage dtype on upload.
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/strings.h"
#include "engine/model/model_weights.h"
#include "engine/model/model_weights_source.h"

namespace loraserve {

namespace {

// Models above this many bytes log progress per layer.
constexpr size_t kLogPerLayerBytes = size_t{1} << 30;

class Loader final : public WeightSource {
 public:
  Loader(Backend* backend, const SafetensorsBundle* tensors)
      : backend_(backend), tensors_(tensors) {}

  absl::Status Fill(WeightRole /*role*/, const std::vector<WeightPart>& parts,
                    void* dst) override {
    std::vector<const TensorView*> views;
    for (const WeightPart& p : parts) {
      ASSIGN_OR_RETURN(const TensorView* view, Find(p));
      views.push_back(view);
    }
    auto* out = static_cast<char*>(dst);
    for (const TensorView* view : views) {
      RETURN_IF_ERROR(AnnotateStatus(Upload(*view, out),
                                     absl::StrCat("tensor \"", view->name, "\"")));
      out += static_cast<size_t>(view->numel()) * backend_->elt_size();
    }
    return absl::OkStatus();
  }

  void LayerDone(int done, int total, size_t bytes) override {
    if (tensors_->tensor_bytes() <= kLogPerLayerBytes) return;
    LS_LOG(INFO) << "loaded layer " << done << "/" << total << " (" << (bytes >> 20)
                 << " MiB so far)";
  }

  const std::set<std::string>& used() const { return used_; }

 private:
  absl::StatusOr<const TensorView*> Find(const WeightPart& p) {
    const TensorView* view = tensors_->Find(p.name);
    if (view == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", p.name, "\" is missing from the model"));
    }
    if (view->shape != p.shape) {
      return absl::InvalidArgumentError(absl::StrCat("tensor \"", p.name, "\" has shape ",
                                                     ShapeString(view->shape), ", config.json implies ",
                                                     ShapeString(p.shape)));
    }
    used_.insert(p.name);
    return view;
  }

  // The mapping may leave `data` unaligned for its dtype: stage through an
  // aligned host copy then.
  absl::Status Upload(const TensorView& view, void* dst) {
    const size_t elt = DTypeSize(view.dtype);
    if (reinterpret_cast<uintptr_t>(view.data) % elt == 0) {
      return backend_->UploadConverted(view.data, view.dtype, view.numel(), dst);
    }
    staging_.resize((view.nbytes + 7) / 8);
    std::memcpy(staging_.data(), view.data, view.nbytes);
    return backend_->UploadConverted(staging_.data(), view.dtype, view.numel(), dst);
  }

  Backend* backend_;
  const SafetensorsBundle* tensors_;
  std::set<std::string> used_;
  std::vector<uint64_t> staging_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ModelWeights>> ModelWeights::Create(const Options& options) {
  if (options.backend == nullptr || options.config == nullptr || options.tensors == nullptr) {
    return absl::InvalidArgumentError("ModelWeights: backend, config and tensors are required");
  }
  const ModelConfig& c = *options.config;
  Loader loader(options.backend, options.tensors);
  ASSIGN_OR_RETURN(std::unique_ptr<ModelWeights> weights, Build(options.backend, c, loader));

  // Tensors the forward pass does not read (e.g. lm_head.weight of a tied
  // model, rotary_emb.inv_freq of old checkpoints): Hugging Face ignores them
  // too, so they are reported, not refused.
  std::vector<std::string> unused;
  for (const std::string& name : options.tensors->names()) {
    if (loader.used().count(name) == 0) unused.push_back(name);
  }
  if (!unused.empty()) {
    if (unused.size() > 5) unused.resize(5);
    LS_LOG(WARNING) << "model weights: " << (options.tensors->names().size() - loader.used().size())
                    << " tensor(s) not used by the forward pass, e.g. "
                    << absl::StrJoin(unused, ", ");
  }
  LS_LOG(INFO) << "model weights: " << c.num_hidden_layers << " layers, "
               << (weights->bytes_ >> 20) << " MiB in " << DTypeName(options.backend->dtype());
  return weights;
}

}  // namespace loraserve
