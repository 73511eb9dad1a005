#include "bench/loadgen/request_record.h"

namespace loraserve::loadgen {

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kCancelled:
      return "cancelled";
  }
  return "failed";
}

}  // namespace loraserve::loadgen
