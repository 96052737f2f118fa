#include "runtime/train/Passkey.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "runtime/data/DataError.h"
#include "runtime/data/PasskeyTask.h"
#include "runtime/train/Device.h"
#include "runtime/train/LengthSpec.h"

namespace attn::train {

std::vector<bool> exactMatches(const at::Tensor& logits, const at::Tensor& answer) {
  if (logits.dim() != 3 || answer.dim() != 2 || logits.size(0) != answer.size(0) || logits.size(1) != answer.size(1))
    throw UserError("exactMatches: logits [B, K, V] and answer [B, K] expected");
  at::Tensor predicted = logits.argmax(-1).to(at::kCPU).to(at::kLong);
  at::Tensor right = predicted.eq(answer.to(at::kCPU).to(at::kLong)).all(1);
  std::vector<bool> out;
  auto a = right.accessor<bool, 1>();
  for (int64_t b = 0; b < right.size(0); ++b) out.push_back(a[b]);
  return out;
}

namespace {

// The instance seed of (length multiple, depth index, trial): independent of the program.
uint64_t instanceSeed(uint64_t seed, int64_t multiple, size_t depth, int64_t trial) {
  uint64_t h = seed * 0x9E3779B97F4A7C15ULL;
  for (uint64_t v : {static_cast<uint64_t>(multiple), static_cast<uint64_t>(depth), static_cast<uint64_t>(trial)})
    h = (h ^ v) * 0xBF58476D1CE4E5B9ULL + 0x94D049BB133111EBULL;
  return h;
}

}  // namespace

PasskeyResult passkey(TrainedModel& m, const PasskeyOptions& o, const TokenData& data,
                      const data::TextTokenizer& tokenizer) {
  PasskeyResult r;
  r.trainLength = m.model.config().seqLen;
  r.program = m.attnFile;
  r.sets = m.sets;
  r.rope = o.rope;
  r.filler = o.filler;
  r.tokenizer = tokenizer.name();
  r.seed = o.seed;
  if (o.trials < 1) throw UserError("--trials: at least 1");
  if (o.depths.empty()) throw UserError("--depths: no depth given");
  for (double d : o.depths)
    if (!(d >= 0 && d <= 1)) throw UserError("--depths: " + std::to_string(d) + " is not in [0, 1]");
  if (o.lengths.empty()) throw UserError("--lengths: no length given");
  if (tokenizer.vocabSize() > static_cast<uint32_t>(m.model.config().vocab))
    throw UserError("the data's tokenizer (" + tokenizer.name() + ", " + std::to_string(tokenizer.vocabSize()) +
                    " tokens) does not fit the model's vocabulary of " + std::to_string(m.model.config().vocab) +
                    ": give the --data the run was trained on");
  const data::FillerKind fillerKind = data::parseFillerKind(o.filler);
  if (fillerKind == data::FillerKind::Text && data.validation.empty())
    throw UserError("text filler: the data has no validation documents (use --filler repeat)");
  data::PasskeyTask task(tokenizer, fillerKind, &data.validation, o.digits);
  const model::RopeScaling scaling = model::parseRopeScaling(o.rope);

  c10::NoGradGuard noGrad;
  for (const std::string& spec : o.lengths) {
    std::optional<int64_t> multiple = parseLengthMultiple(spec);
    if (!multiple)
      throw UserError("--lengths: '" + spec + "' is not a multiple of the training length like 4x (1x to " +
                      std::to_string(kMaxLengthMultiple) + "x)");
    PasskeyLength row;
    row.spec = spec;
    row.window = *multiple * r.trainLength;
    const int64_t L = row.window;
    if (L + 1 < task.minimumLength())
      throw UserError("--lengths " + spec + ": " + std::to_string(L) + " tokens cannot hold a passkey instance (" +
                      std::to_string(task.minimumLength()) + " at least)");
    m.model.setRopeScaling(scaling, L);
    const int64_t perBatch = std::max<int64_t>(1, 8192 / L);
    for (size_t d = 0; d < o.depths.size(); ++d) {
      PasskeyCell cell;
      cell.depth = o.depths[d];
      int64_t digitsRight = 0, digitsAll = 0;
      double lossSum = 0;
      for (int64_t first = 0; first < o.trials; first += perBatch) {
        const int64_t B = std::min(perBatch, o.trials - first);
        std::vector<data::PasskeyInstance> batch;
        for (int64_t t = 0; t < B; ++t)
          batch.push_back(task.make(L + 1, cell.depth, instanceSeed(o.seed, *multiple, d, first + t)));
        // Keys can take different token counts (GPT-2 merges digits): the batch's logits
        // cover the longest, each instance is scored on its own last K_b positions.
        int64_t K = 0;
        for (const auto& inst : batch) K = std::max(K, inst.answerTokens);
        at::Tensor x = at::empty({B, L}, at::kLong);
        auto xa = x.accessor<int64_t, 2>();
        for (int64_t b = 0; b < B; ++b)
          for (int64_t p = 0; p < L; ++p) xa[b][p] = batch[static_cast<size_t>(b)].tokens[static_cast<size_t>(p)];
        at::Tensor logits;
        {
          Autocast autocast(m.device);
          logits = m.model.lastLogits(x.to(m.device), K).to(at::kCPU).to(at::kFloat);
        }
        for (int64_t b = 0; b < B; ++b) {
          const auto& inst = batch[static_cast<size_t>(b)];
          const int64_t k = inst.answerTokens;
          at::Tensor answer = at::empty({1, k}, at::kLong);
          for (int64_t j = 0; j < k; ++j) answer[0][j] = static_cast<int64_t>(inst.tokens[static_cast<size_t>(L + 1 - k + j)]);
          at::Tensor mine = logits.narrow(0, b, 1).narrow(1, K - k, k);
          cell.correct += exactMatches(mine, answer)[0];
          digitsRight += mine.argmax(-1).eq(answer).sum().item<int64_t>();
          digitsAll += k;
          lossSum += (-at::log_softmax(mine, -1).gather(-1, answer.unsqueeze(-1))).sum().item<double>();
        }
        cell.trials += B;
      }
      cell.digitAccuracy = static_cast<double>(digitsRight) / static_cast<double>(digitsAll);
      cell.answerLoss = lossSum / static_cast<double>(digitsAll);
      row.trials += cell.trials;
      row.correct += cell.correct;
      row.depths.push_back(cell);
    }
    r.lengths.push_back(row);
  }
  return r;
}

std::string passkeyResultJson(const PasskeyResult& r) {
  using nlohmann::ordered_json;
  ordered_json lengths = ordered_json::array();
  for (const PasskeyLength& l : r.lengths) {
    ordered_json depths = ordered_json::array();
    for (const PasskeyCell& c : l.depths)
      depths.push_back({{"depth", c.depth},
                        {"accuracy", static_cast<double>(c.correct) / static_cast<double>(c.trials)},
                        {"trials", c.trials},
                        {"correct", c.correct},
                        {"digit_accuracy", c.digitAccuracy},
                        {"answer_loss", c.answerLoss}});
    lengths.push_back({{"length", l.spec},
                       {"window", l.window},
                       {"accuracy", static_cast<double>(l.correct) / static_cast<double>(l.trials)},
                       {"trials", l.trials},
                       {"correct", l.correct},
                       {"depths", depths}});
  }
  ordered_json out = {{"format", "attn-passkey"}, {"version", 1},   {"train_length", r.trainLength},
                      {"program", r.program},     {"sets", r.sets}, {"rope", r.rope},
                      {"filler", r.filler},       {"tokenizer", r.tokenizer}, {"seed", r.seed},
                      {"lengths", lengths}};
  return out.dump(2) + "\n";
}

}  // namespace attn::train
