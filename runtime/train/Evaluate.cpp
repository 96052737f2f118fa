#include "runtime/train/Evaluate.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "runtime/train/Device.h"
#include "runtime/train/LengthSpec.h"
#include "runtime/train/WindowPlan.h"

namespace attn::train {

EvalProtocol parseEvalProtocol(const std::string& name) {
  if (name == "same-tokens") return EvalProtocol::SameTokens;
  if (name == "stream") return EvalProtocol::Stream;
  if (name == "first-window") return EvalProtocol::FirstWindow;
  throw UserError("--protocol: unknown protocol '" + name + "' (expected same-tokens, stream or first-window)");
}

std::string protocolName(EvalProtocol protocol) {
  switch (protocol) {
    case EvalProtocol::SameTokens: return "same-tokens";
    case EvalProtocol::Stream: return "stream";
    case EvalProtocol::FirstWindow: return "first-window";
  }
  return "?";
}

namespace {

// A unit: a stretch of tokens whose targets are scored (a document, or a chunk of the stream).
struct Unit {
  const std::vector<uint16_t>* tokens;
  int64_t base;  // where the unit starts in *tokens
};

// A window: inputs unit[start, start + L), targets unit[start + 1, start + L]; only targets
// at window positions >= scoreFrom count (a last window overlapping the previous one).
struct Window {
  int64_t unit;
  int64_t start;
  int64_t scoreFrom;
};

struct Plan {
  std::vector<Unit> units;
  std::vector<Window> windows;
};

// Windows of L tokens covering targets 1..span of every unit, each target once
// (WindowPlan.h, the cut `attn data inspect` counts).
void cutIntoWindows(Plan& plan, int64_t L, int64_t span) {
  for (int64_t u = 0; u < static_cast<int64_t>(plan.units.size()); ++u)
    for (const WindowCut& cut : train::cutIntoWindows(L, span)) plan.windows.push_back({u, cut.start, cut.scoreFrom});
}

Plan planWindows(EvalProtocol protocol, const TokenData& data, const std::vector<uint16_t>& stream, int64_t L,
                 int64_t longest, int64_t maxUnits) {
  Plan plan;
  auto full = [&] { return maxUnits > 0 && static_cast<int64_t>(plan.units.size()) >= maxUnits; };
  switch (protocol) {
    case EvalProtocol::SameTokens: {
      std::vector<int64_t> lengths;
      for (const auto& doc : data.validation) lengths.push_back(static_cast<int64_t>(doc.size()));
      for (int64_t d : sameTokensUnits(lengths, longest, maxUnits)) plan.units.push_back({&data.validation[static_cast<size_t>(d)], 0});
      cutIntoWindows(plan, L, longest);
      break;
    }
    case EvalProtocol::Stream:
      for (int64_t base = 0; !full() && base + longest + 1 <= static_cast<int64_t>(stream.size()); base += longest)
        plan.units.push_back({&stream, base});
      cutIntoWindows(plan, L, longest);
      break;
    case EvalProtocol::FirstWindow:
      for (const auto& doc : data.validation)
        if (!full() && static_cast<int64_t>(doc.size()) >= L + 1) plan.units.push_back({&doc, 0});
      for (int64_t u = 0; u < static_cast<int64_t>(plan.units.size()); ++u) plan.windows.push_back({u, 0, 0});
      break;
  }
  return plan;
}

// Windows per forward pass: as many as fit a budget on the logits (B·L·vocab floats, the
// largest tensor) and on tokens, at least one.
int64_t windowsPerBatch(int64_t L, int64_t vocab) {
  const int64_t tokens = std::min<int64_t>(8192, (int64_t{1} << 26) / std::max<int64_t>(1, vocab));
  return std::max<int64_t>(1, tokens / L);
}

std::optional<double> standardError(const std::vector<double>& sums, const std::vector<int64_t>& counts) {
  std::vector<double> means;
  for (size_t u = 0; u < sums.size(); ++u)
    if (counts[u] > 0) means.push_back(sums[u] / static_cast<double>(counts[u]));
  if (means.size() < 2) return std::nullopt;
  double mean = 0;
  for (double m : means) mean += m;
  mean /= static_cast<double>(means.size());
  double squares = 0;
  for (double m : means) squares += (m - mean) * (m - mean);
  const double n = static_cast<double>(means.size());
  return std::sqrt(squares / (n - 1) / n);
}

LengthLoss scoreLength(TrainedModel& m, const EvalOptions& e, const std::string& spec, int64_t L, const Plan& plan) {
  const int64_t bucket = e.positionBucket;
  LengthLoss r;
  r.spec = spec;
  r.window = L;
  r.units = static_cast<int64_t>(plan.units.size());
  std::vector<double> unitSum(plan.units.size(), 0.0);
  std::vector<int64_t> unitCount(plan.units.size(), 0);
  const int64_t buckets = bucket > 0 ? (L + bucket - 1) / bucket : 0;
  std::vector<double> bucketSum(static_cast<size_t>(buckets), 0.0);
  r.positionTokens.assign(static_cast<size_t>(buckets), 0);
  double total = 0;

  const int64_t perBatch = windowsPerBatch(L, m.model.config().vocab);
  for (size_t first = 0; first < plan.windows.size(); first += static_cast<size_t>(perBatch)) {
    const size_t count = std::min(plan.windows.size() - first, static_cast<size_t>(perBatch));
    const int64_t B = static_cast<int64_t>(count);
    at::Tensor x = at::empty({B, L}, at::kLong), y = at::empty({B, L}, at::kLong);
    {
      auto xa = x.accessor<int64_t, 2>(), ya = y.accessor<int64_t, 2>();
      for (int64_t b = 0; b < B; ++b) {
        const Window& w = plan.windows[first + static_cast<size_t>(b)];
        const Unit& unit = plan.units[static_cast<size_t>(w.unit)];
        const uint16_t* t = unit.tokens->data() + unit.base + w.start;
        for (int64_t p = 0; p < L; ++p) {
          xa[b][p] = t[p];
          ya[b][p] = t[p + 1];
        }
      }
    }
    at::Tensor losses;
    {
      Autocast autocast(m.device);
      losses = m.model.tokenLosses(x.to(m.device), y.to(m.device)).to(at::kCPU).to(at::kDouble).contiguous();
    }
    auto la = losses.accessor<double, 2>();
    auto ya = y.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const Window& w = plan.windows[first + static_cast<size_t>(b)];
      ScoredWindow scored;
      if (e.onScored) {
        scored.length = spec;
        scored.unit = w.unit;
        scored.start = w.start;
      }
      for (int64_t p = w.scoreFrom; p < L; ++p) {
        const double loss = la[b][p];
        total += loss;
        unitSum[static_cast<size_t>(w.unit)] += loss;
        ++unitCount[static_cast<size_t>(w.unit)];
        if (bucket > 0) {
          bucketSum[static_cast<size_t>(p / bucket)] += loss;
          ++r.positionTokens[static_cast<size_t>(p / bucket)];
        }
        if (e.onScored) {
          scored.offsets.push_back(w.start + p + 1);
          scored.targets.push_back(ya[b][p]);
          scored.positions.push_back(p);
        }
      }
      r.tokens += L - w.scoreFrom;
      if (e.onScored) e.onScored(scored);
    }
    r.windows += B;
  }
  r.loss = total / static_cast<double>(r.tokens);
  r.standardError = standardError(unitSum, unitCount);
  for (int64_t k = 0; k < buckets; ++k)
    r.positionLoss.push_back(r.positionTokens[static_cast<size_t>(k)] > 0
                                 ? bucketSum[static_cast<size_t>(k)] / static_cast<double>(r.positionTokens[static_cast<size_t>(k)])
                                 : std::nan(""));
  return r;
}

int64_t longestDocument(const TokenData& data) {
  int64_t longest = 0;
  for (const auto& d : data.validation) longest = std::max<int64_t>(longest, static_cast<int64_t>(d.size()));
  return longest;
}

}  // namespace

EvalResult evaluate(TrainedModel& m, const EvalOptions& e, const TokenData& data) {
  EvalResult result;
  result.protocol = parseEvalProtocol(e.protocol);
  result.trainLength = m.model.config().seqLen;
  result.program = m.attnFile;
  result.sets = m.sets;
  result.rope = e.rope;
  result.positionBucket = e.positionBucket;
  if (e.positionBucket < 0) throw UserError("--per-position: the bucket width must be at least 1 token");
  if (e.maxDocuments < 0) throw UserError("--max-docs: must be 0 (all) or more");
  if (e.lengths.empty()) throw UserError("--lengths: no length given");
  std::vector<std::pair<std::string, int64_t>> lengths;
  for (const std::string& spec : e.lengths) {
    std::optional<int64_t> multiple = parseLengthMultiple(spec);
    if (!multiple)
      throw UserError("--lengths: '" + spec + "' is not a multiple of the training length like 4x (1x to " +
                      std::to_string(kMaxLengthMultiple) + "x)");
    for (const auto& [other, _] : lengths)
      if (other == spec) throw UserError("--lengths: " + spec + " is given twice");
    lengths.emplace_back(spec, *multiple * result.trainLength);
  }
  if (data.validation.empty())
    throw UserError("the data has no validation documents to evaluate on (a *_val_*.bin shard; attn data prepare "
                    "makes them)");
  const int64_t vocab = m.model.config().vocab;
  for (const auto& doc : data.validation)
    for (uint16_t t : doc)
      if (t >= vocab)
        throw UserError("the validation data has token id " + std::to_string(t) + ", outside the model's vocabulary of " +
                        std::to_string(vocab) + " (evaluate on the data the run was trained on: --data)");
  const model::RopeScaling scaling = model::parseRopeScaling(e.rope);
  int64_t longest = 0;
  for (const auto& [_, L] : lengths) longest = std::max(longest, L);

  std::vector<uint16_t> stream;
  if (result.protocol == EvalProtocol::Stream)
    for (const auto& doc : data.validation) stream.insert(stream.end(), doc.begin(), doc.end());
  if (result.protocol == EvalProtocol::SameTokens && longestDocument(data) < longest + 1)
    throw UserError("same-tokens evaluation at " + std::to_string(longest) + " tokens needs validation documents of " +
                    std::to_string(longest + 1) + " tokens; the longest has " +
                    std::to_string(longestDocument(data)) +
                    " (use shorter --lengths, more data, or --protocol stream)");
  if (result.protocol == EvalProtocol::Stream && static_cast<int64_t>(stream.size()) < longest + 1)
    throw UserError("stream evaluation at " + std::to_string(longest) + " tokens needs " +
                    std::to_string(longest + 1) + " validation tokens; the data has " + std::to_string(stream.size()));

  c10::NoGradGuard noGrad;
  for (const auto& [spec, L] : lengths) {
    Plan plan = planWindows(result.protocol, data, stream, L, longest, e.maxDocuments);
    if (plan.windows.empty()) {  // first-window only: the others were checked above
      std::fprintf(stderr, "attn eval: no validation document has %lld tokens; %s left out\n",
                   static_cast<long long>(L + 1), spec.c_str());
      result.leftOut.push_back(spec);
      continue;
    }
    m.model.setRopeScaling(scaling, L);
    result.lengths.push_back(scoreLength(m, e, spec, L, plan));
  }
  if (result.lengths.empty())
    throw UserError("no validation document is long enough for any of the lengths asked for (the longest has " +
                    std::to_string(longestDocument(data)) + " tokens)");
  return result;
}

EvalResult evaluate(const EvalOptions& e, const TokenData& data) {
  parseEvalProtocol(e.protocol);  // a bad flag fails before the model is loaded
  TrainedModel m = loadTrainedModel(e.checkpoint, e.attnFile, e.attnName, e.sets, e.backend, e.device);
  return evaluate(m, e, data);
}

std::string evalResultJson(const EvalResult& r) {
  using nlohmann::ordered_json;
  ordered_json lengths = ordered_json::array();
  for (const LengthLoss& l : r.lengths) {
    ordered_json j = {{"length", l.spec},   {"window", l.window},   {"loss", l.loss},
                      {"tokens", l.tokens}, {"windows", l.windows}, {"units", l.units}};
    j["stderr"] = l.standardError ? ordered_json(*l.standardError) : ordered_json(nullptr);
    if (r.positionBucket > 0) {
      ordered_json losses = ordered_json::array();
      for (double v : l.positionLoss) losses.push_back(std::isfinite(v) ? ordered_json(v) : ordered_json(nullptr));
      j["per_position"] = {{"bucket", r.positionBucket}, {"loss", losses}, {"tokens", l.positionTokens}};
    }
    lengths.push_back(j);
  }
  ordered_json out = {{"format", "attn-eval"},
                      {"version", 2},
                      {"protocol", protocolName(r.protocol)},
                      {"train_length", r.trainLength},
                      {"program", r.program},
                      {"sets", r.sets},
                      {"rope", r.rope},
                      {"lengths", lengths}};
  if (!r.leftOut.empty()) out["left_out"] = r.leftOut;
  return out.dump(2) + "\n";
}

}  // namespace attn::train
