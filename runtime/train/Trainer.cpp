#include "runtime/train/Trainer.h"

#include <fcntl.h>
#include <unistd.h>

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <chrono>
#include <future>
#include <optional>
#include <filesystem>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "compiler/Pipeline.h"
#include "runtime/data/Shards.h"
#include "runtime/train/Checkpoint.h"
#include "runtime/model/ModelSizes.h"
#include "runtime/train/Device.h"
#include "runtime/train/Distributed.h"
#include "runtime/train/TrainingWindows.h"
#include "support/AtomicWrite.h"
#include "support/FileError.h"
#include "support/ReadFile.h"

namespace attn::train {

namespace {

using nlohmann::json;

bool exists(const std::string& path) { return std::filesystem::exists(path); }

void makeDirectories(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (!std::filesystem::is_directory(dir)) throw UserError("cannot create directory '" + dir + "'");
}

// The run directory's text files (config.json, log.jsonl, the program) are small; the cap
// keeps a FIFO or a device planted there from hanging or exhausting the process.
std::string readText(const std::string& path) {
  try {
    return support::readRegularFile(path, uint64_t(1) << 30);
  } catch (const support::FileError& e) {
    throw UserError(e.what());
  }
}

// A JSON file of the run, parsed; a damaged one is a UserError naming it.
json readJson(const std::string& path) {
  try {
    return json::parse(readText(path));
  } catch (const json::exception& e) {
    throw UserError(path + ": not valid JSON (" + std::string(e.what()) + "); was it damaged or edited?");
  }
}

// support::writeFileAtomically, with its error as a UserError.
void writeTextAtomically(const std::string& path, const std::string& text) {
  try {
    support::writeFileAtomically(path, text);
  } catch (const support::FileError& e) {
    throw UserError(e.what());
  }
}

Program compileProgram(const std::string& file, const std::string& name, const std::vector<std::string>& sets) {
  CompileOptions options;
  options.name = name;
  DiagnosticEngine diags;
  for (const auto& s : sets)
    if (auto o = parseOverride(s, diags)) options.overrides.push_back(*o);
  if (diags.hasErrors()) throw UserError(diags.renderToString());
  return Program::fromFile(file, options);
}

// The micro-batch k of step s: B windows of T + 1 tokens at positions drawn from a generator
// seeded by (seed, s, k) alone (TrainingWindows.h: random offsets, or document starts when
// `aligned` is given). Each window is copied out of the (mapped) stream; a token
// outside the model's vocabulary is found here, as it is read, not by a scan of every
// training token before the run (10B tokens would take minutes and touch 20 GB).
// With several ranks, the B windows of rank r are windows [r·B, (r+1)·B) of the B·size that
// one rank with micro-batch B·size would draw: each rank copies only its own, and two ranks
// with micro-batch m train on exactly the windows of one rank with 2m.
std::pair<at::Tensor, at::Tensor> batch(const data::TokenStream& tokens, int64_t B, int64_t T, uint64_t seed,
                                        int64_t step, int64_t micro, int64_t vocab, int64_t rank, int64_t world,
                                        const std::vector<int64_t>* aligned) {
  if (tokens.size() < T + 2)
    throw UserError("the training data has " + std::to_string(tokens.size()) + " tokens, fewer than one sequence of " +
                    std::to_string(T + 1));
  const std::vector<int64_t> starts = drawWindowStarts(B * world, seed, step, micro, tokens.size(), T, aligned);
  at::Tensor x = at::empty({B, T}, at::kLong), y = at::empty({B, T}, at::kLong);
  auto xa = x.accessor<int64_t, 2>(), ya = y.accessor<int64_t, 2>();
  std::vector<uint16_t> window(static_cast<size_t>(T + 1));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s = starts[static_cast<size_t>(rank * B + b)];
    tokens.copy(s, T + 1, window.data());
    for (int64_t t = 0; t <= T; ++t)
      if (window[static_cast<size_t>(t)] >= vocab)
        throw UserError("the training data has token " + std::to_string(window[static_cast<size_t>(t)]) +
                        " (at token " + std::to_string(s + t) + " of the training stream), outside the model's "
                        "vocabulary of " + std::to_string(vocab));
    for (int64_t t = 0; t < T; ++t) {
      xa[b][t] = window[static_cast<size_t>(t)];
      ya[b][t] = window[static_cast<size_t>(t + 1)];
    }
  }
  return {x, y};
}

std::string formatDuration(double seconds) {
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  char text[32];
  if (s >= 3600) std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                               static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else std::snprintf(text, sizeof text, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return text;
}

struct Run {
  model::Gpt2 model;
  std::unique_ptr<torch::optim::AdamW> optimizer;
};

std::unique_ptr<torch::optim::AdamW> makeOptimizer(model::Gpt2& m, const TrainOptions& o) {
  std::vector<at::Tensor> decay, noDecay;
  for (auto& p : m.impl().parameters()) (p.dim() >= 2 ? decay : noDecay).push_back(p);
  auto options = torch::optim::AdamWOptions(o.lr).betas({0.9, 0.95}).eps(1e-8);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(o.lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(o.weightDecay)));
  groups.emplace_back(noDecay, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(o.lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(0)));
  return std::make_unique<torch::optim::AdamW>(groups, options);
}

json optionsJson(const TrainOptions& o, const model::Gpt2Config& c) {
  return {{"model", json::parse(c.toJson())},
          {"attn_file", o.attnFile},
          {"attn_name", o.attnName},
          {"sets", o.sets},
          {"backend", o.backend},
          {"device", o.device},
          {"steps", o.steps},
          {"seq_len", o.seqLen},
          {"vocab", o.vocab},
          {"micro_batch", o.microBatch},
          {"batch_tokens", o.batchTokens},
          {"lr", o.lr},
          {"min_lr_ratio", o.minLrRatio},
          {"warmup", o.warmup},
          {"weight_decay", o.weightDecay},
          {"clip", o.clip},
          {"seed", o.seed},
          {"windows", o.windows}};
}

// Keeps the log lines of steps <= `step` (a resumed run rewrites what came after).
void truncateLog(const std::string& path, int64_t step) {
  if (!exists(path)) return;
  std::istringstream in(readText(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      if (json::parse(line).at("step").get<int64_t>() <= step) kept += line + "\n";
    } catch (...) {
    }
  }
  writeTextAtomically(path, kept);
}

}  // namespace

// Values no run can use, whoever set them (the CLI rejects them first, naming the flag).
void checkOptions(const TrainOptions& o) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw UserError(what);
  };
  need(o.steps >= 0 && o.seqLen >= 0 && o.microBatch >= 0 && o.batchTokens >= 0 && o.vocab >= 0,
       "steps, seq-len, micro-batch, batch-tokens and vocab cannot be negative");
  need(std::isfinite(o.lr) && o.lr >= 0, "the learning rate must be a positive finite number, not " + std::to_string(o.lr));
  need(std::isfinite(o.minLrRatio) && o.minLrRatio >= 0 && o.minLrRatio <= 1,
       "min-lr-ratio must be between 0 and 1, not " + std::to_string(o.minLrRatio));
  need(o.warmup >= -1, "warmup cannot be negative");
  need(std::isfinite(o.weightDecay) && o.weightDecay >= 0, "weight decay must be a finite number >= 0");
  need(std::isfinite(o.clip) && o.clip > 0, "clip must be a positive finite number");
  parseWindowMode(o.windows);
  need(o.checkpointEvery >= 0 && o.stopAfter >= 0, "checkpoint-every and stop-after cannot be negative");
  need(std::isfinite(o.checkpointMinutes) && o.checkpointMinutes >= 0, "checkpoint-minutes must be a finite number >= 0");
}

TrainOptions resolveDefaults(TrainOptions o) {
  checkOptions(o);
  model::Gpt2Config c = model::Gpt2Config::named(o.config);
  struct Defaults {
    int64_t steps, microBatch, batchTokens, warmup;
    double lr;
  } d{};
  if (o.config == "tiny") d = {200, 8, 0, 20, 1e-3};
  else if (o.config == "small") d = {2000, 16, 0, 100, 6e-4};
  else if (o.config == "355m") d = {18865, 16, 524288, 700, 3e-4};  // llm.c's GPT-2 (350M) learning rate
  else d = {18865, 64, 524288, 700, 6e-4};  // the llm.c GPT-2 (124M) recipe (45m too)
  if (o.seqLen <= 0) o.seqLen = c.seqLen;
  if (o.steps <= 0) o.steps = d.steps;
  if (o.microBatch <= 0) o.microBatch = d.microBatch;
  if (o.batchTokens <= 0) o.batchTokens = d.batchTokens > 0 ? d.batchTokens : o.microBatch * o.seqLen;
  if (o.lr <= 0) o.lr = d.lr;
  if (o.warmup < 0) o.warmup = std::min(d.warmup, o.steps / 10 + 1);
  if (o.batchTokens % (o.microBatch * o.seqLen) != 0)
    throw UserError("--batch-tokens " + std::to_string(o.batchTokens) + " is not a multiple of micro-batch × seq-len (" +
                    std::to_string(o.microBatch * o.seqLen) + ")");
  return o;
}

double learningRate(const TrainOptions& o, int64_t step) {
  if (step < o.warmup) return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup);
  const double span = std::max<int64_t>(1, o.steps - 1 - o.warmup);
  const double progress = std::min(1.0, static_cast<double>(step - o.warmup) / span);
  const double minLr = o.lr * o.minLrRatio;
  return minLr + 0.5 * (o.lr - minLr) * (1 + std::cos(M_PI * progress));
}

model::Gpt2Config trainedModelConfig(const TrainOptions& o) {
  model::Gpt2Config c = model::Gpt2Config::named(o.config);
  const model::Gpt2Config named = c;
  if (o.layers > 0) c.layers = o.layers;
  if (o.heads > 0) c.heads = o.heads;
  if (o.width > 0) c.width = o.width;
  if (std::string problem = model::modelSizeProblem(c.layers, c.heads, c.width); !problem.empty())
    throw UserError(problem);
  if (c.layers != named.layers || c.heads != named.heads || c.width != named.width) c.name = "custom";
  if (o.seqLen > 0) c.seqLen = o.seqLen;
  if (o.vocab > 0) c.vocab = o.vocab;
  return c;
}

namespace {

at::ScalarType trainingDtype(const std::string& name, const at::Device& device) {
  if (name == "float32") return at::kFloat;
  if (name == "float64") {
    if (device.is_cuda()) throw UserError("--dtype float64 is for the CPU; on a GPU the model trains in bf16 autocast");
    return at::kDouble;
  }
  throw UserError("--dtype: unknown dtype '" + name + "' (expected float32 or float64)");
}

// torch::nn::utils::clip_grad_norm_ without its .item(): the total norm stays a tensor
// (read with the losses, every --log-every steps), and every gradient is scaled by
// min(1, clip / (norm + 1e-6)) as LibTorch does, so the result is the same to the bit.
at::Tensor clipGradNorm(const std::vector<at::Tensor>& parameters, double maxNorm) {
  std::vector<at::Tensor> norms;
  for (const at::Tensor& p : parameters)
    if (p.grad().defined()) norms.push_back(p.grad().norm(2));
  if (norms.empty()) return at::zeros({}, at::kFloat);
  at::Tensor total = norms.size() == 1 ? norms[0] : at::stack(norms).norm(2);
  at::Tensor coefficient = at::clamp(maxNorm / (total + 1e-6), c10::nullopt, 1.0);
  for (const at::Tensor& p : parameters)
    if (p.grad().defined()) p.grad().mul_(coefficient);
  return total;
}

// The windows --eval-every scores: the validation documents concatenated, cut into up to
// `count` windows of T + 1 tokens (inputs and targets), the first ones.
std::vector<std::vector<uint16_t>> validationWindows(const TokenData& data, int64_t T, int64_t count) {
  std::vector<std::vector<uint16_t>> windows;
  std::vector<uint16_t> current;
  for (const auto& doc : data.validation) {
    for (uint16_t t : doc) {
      if (static_cast<int64_t>(windows.size()) >= count) return windows;
      current.push_back(t);
      if (static_cast<int64_t>(current.size()) == T + 1) {
        windows.push_back(current);
        current.assign(1, t);  // the next window's first input is this one's last target
      }
    }
  }
  return windows;
}

// Mean validation loss over `windows`; with several ranks each scores every size-th window
// and the sums are added up.
double validationLoss(model::Gpt2& m, const std::vector<std::vector<uint16_t>>& windows, const at::Device& device,
                      Communicator& comm) {
  c10::NoGradGuard noGrad;
  m.impl().eval();
  double sum = 0, count = 0;
  std::vector<int64_t> mine;
  for (int64_t w = comm.rank(); w < static_cast<int64_t>(windows.size()); w += comm.size()) mine.push_back(w);
  const int64_t perForward = 4;  // bounds the logits tensor (4 x T x vocab)
  for (size_t first = 0; first < mine.size(); first += perForward) {
    const int64_t B = static_cast<int64_t>(std::min<size_t>(perForward, mine.size() - first));
    const int64_t T = static_cast<int64_t>(windows[0].size()) - 1;
    at::Tensor x = at::empty({B, T}, at::kLong), y = at::empty({B, T}, at::kLong);
    auto xa = x.accessor<int64_t, 2>(), ya = y.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const auto& w = windows[static_cast<size_t>(mine[first + static_cast<size_t>(b)])];
      for (int64_t t = 0; t < T; ++t) {
        xa[b][t] = w[static_cast<size_t>(t)];
        ya[b][t] = w[static_cast<size_t>(t + 1)];
      }
    }
    Autocast autocast(device);
    sum += m.tokenLosses(x.to(device), y.to(device)).sum().item<double>();
    count += static_cast<double>(B * T);
  }
  m.impl().train();
  const std::vector<double> total = comm.sum({sum, count});
  return total[0] / total[1];
}

// One micro-batch, made on a helper thread while the previous one trains.
struct Batch {
  at::Tensor x, y;
};

}  // namespace

double train(const TrainOptions& given, const TokenData& data) {
  TrainOptions o = resolveDefaults(given);
  const DistributedOptions& dist = o.distributed;
  const bool lead = dist.rank == 0;  // writes log.jsonl, config.json and checkpoints
  if (o.out.empty()) throw UserError("--out is required");
  if (o.attnFile.empty()) throw UserError("--attn is required");
  if (dist.worldSize < 1 || dist.rank < 0 || dist.rank >= dist.worldSize)
    throw UserError("RANK " + std::to_string(dist.rank) + " is not below WORLD_SIZE " + std::to_string(dist.worldSize));
  const int64_t world = dist.worldSize;
  if (o.batchTokens % (o.microBatch * o.seqLen * world) != 0)
    throw UserError("--batch-tokens " + std::to_string(o.batchTokens) + " is not a multiple of micro-batch × seq-len × "
                    "WORLD_SIZE (" + std::to_string(o.microBatch * o.seqLen * world) + ")");
  const model::Gpt2Config config = trainedModelConfig(o);
  Program program = compileProgram(o.attnFile, o.attnName, o.sets);
  Backend backend = parseBackend(o.backend);
  const at::Device device = deviceOf(o.device);
  const at::ScalarType dtype = trainingDtype(o.dtype, device);
  if (o.evalEvery < 0 || o.evalWindows < 1 || o.logEvery < 0)
    throw UserError("eval-every and log-every cannot be negative, eval-windows must be at least 1");
  std::vector<std::vector<uint16_t>> valWindows;
  if (o.evalEvery > 0) {
    valWindows = validationWindows(data, o.seqLen, o.evalWindows);
    if (valWindows.empty())
      throw UserError("--eval-every: the validation data has fewer than " + std::to_string(o.seqLen + 1) +
                      " tokens, not one window of the training length (a *_val_*.bin shard; attn data prepare makes it)");
    for (const auto& w : valWindows)
      for (uint16_t t : w)
        if (t >= config.vocab)
          throw UserError("the validation data has token " + std::to_string(t) + ", outside the model's vocabulary of " +
                          std::to_string(config.vocab));
  }
  // --windows aligned: the document starts, found once, before anything is written (TrainingWindows.h).
  std::vector<int64_t> alignedStarts;
  if (parseWindowMode(o.windows) == WindowMode::Aligned)
    alignedStarts = alignedWindowStarts(data.train, data.endOfText, o.seqLen);
  const std::vector<int64_t>* aligned = alignedStarts.empty() ? nullptr : &alignedStarts;

  if (lead) makeDirectories(o.out);

  at::manual_seed(o.seed);
  Run run{model::Gpt2(config, program, backend), nullptr};
  run.model.impl().to(device);
  if (dtype != at::kFloat) run.model.impl().to(dtype);
  run.optimizer = makeOptimizer(run.model, o);
  // The rendezvous with the other ranks (none when alone) before anything is read or written.
  Communicator comm(dist, device);
  int64_t first = 0;
  const std::string logPath = o.out + "/log.jsonl";
  if (lead) removeCheckpointTemporaries(o.out);
  if (o.resume) {
    const std::string configPath = o.out + "/config.json";
    if (exists(configPath)) {
      const json previous = readJson(configPath);
      const int64_t trainedOn = previous.is_object() && previous.contains("world_size") ? previous["world_size"].get<int64_t>() : 1;
      if (trainedOn != world)
        throw UserError("--resume: the run in '" + o.out + "' was trained on " + std::to_string(trainedOn) +
                        " rank(s); resume it on the same number (WORLD_SIZE " + std::to_string(world) +
                        ") to continue with the same batches");
      // Runs from before --windows drew random offsets.
      const std::string drawn = previous.is_object() && previous.contains("windows") && previous["windows"].is_string()
                                    ? previous["windows"].get<std::string>() : "random";
      if (drawn != o.windows)
        throw UserError("--resume: the run in '" + o.out + "' was trained with --windows " + drawn +
                        "; resume it with the same to continue with the same batches");
    }
    std::string path = findCheckpoint(o.out);
    if (path.empty()) throw UserError("--resume: no checkpoint in '" + o.out + "'");
    first = loadCheckpoint(path, run.model.impl(), run.optimizer.get()) + 1;
    if (lead) truncateLog(logPath, first - 1);
  } else if (lead) {
    writeTextAtomically(logPath, "");
  }
  if (lead) {
    json options = optionsJson(o, config);
    options["world_size"] = world;
    options["dtype"] = o.dtype;
    writeTextAtomically(o.out + "/config.json", options.dump(2) + "\n");
    writeTextAtomically(o.out + "/attention.attn", readText(o.attnFile));
  }
  const std::vector<at::Tensor> parameters = run.model.impl().parameters();
  // Every rank starts from rank 0's weights (the same seed gives the same ones; this makes
  // sure of it).
  {
    c10::NoGradGuard noGrad;
    comm.broadcast(parameters);
  }

  const int64_t accum = o.batchTokens / (o.microBatch * o.seqLen * world);
  const int64_t logEvery = o.logEvery > 0 ? o.logEvery : (device.is_cuda() ? 10 : 1);
  const bool pin = device.is_cuda();
  auto makeBatch = [&, pin](int64_t step, int64_t k) {
    auto [x, y] = batch(data.train, o.microBatch, o.seqLen, o.seed, step, k, config.vocab, dist.rank, world, aligned);
    if (pin) {
      x = x.pin_memory();
      y = y.pin_memory();
    }
    return Batch{x, y};
  };
  std::future<Batch> next;
  if (first < o.steps) next = std::async(std::launch::async, makeBatch, first, int64_t{0});

  std::ofstream log;
  if (lead) log.open(logPath, std::ios::app);
  auto start = std::chrono::steady_clock::now();
  auto lastCheckpoint = start, lastFlush = start;
  double loss = 0;
  struct Pending {
    int64_t step;
    double lr;
    at::Tensor loss, norm;
    std::optional<double> valLoss;
  };
  std::vector<Pending> pending;
  // Reads the pending steps' losses and norms (one synchronisation), checks them, and writes
  // their log lines and the progress line.
  auto flush = [&] {
    if (pending.empty()) return;
    std::vector<at::Tensor> losses, norms;
    for (const Pending& p : pending) {
      losses.push_back(p.loss.to(at::kDouble));
      norms.push_back(p.norm.to(at::kDouble));
    }
    const at::Tensor lossValues = at::stack(losses).to(at::kCPU), normValues = at::stack(norms).to(at::kCPU);
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - lastFlush).count();
    lastFlush = now;
    const double tokensPerSecond = static_cast<double>(o.batchTokens) * static_cast<double>(pending.size()) / seconds;
    const bool terminal = ::isatty(2) != 0;
    const int64_t every = std::max<int64_t>(1, o.steps / 20);
    bool progress = terminal;
    for (size_t i = 0; i < pending.size(); ++i) {
      const Pending& p = pending[i];
      loss = lossValues[static_cast<int64_t>(i)].item<double>();
      if (!std::isfinite(loss))
        throw UserError("training diverged at step " + std::to_string(p.step) + " (loss " + std::to_string(loss) + ")");
      if (!lead) continue;
      json line = {{"step", p.step}, {"train_loss", loss}, {"lr", p.lr}, {"tokens_per_s", tokensPerSecond},
                   {"grad_norm", normValues[static_cast<int64_t>(i)].item<double>()}};
      if (p.valLoss) line["val_loss"] = *p.valLoss;
      log << line.dump() << "\n";
      progress = progress || (p.step + 1) % every == 0 || p.step + 1 == o.steps;
    }
    const int64_t step = pending.back().step;
    const double lr = pending.back().lr;
    pending.clear();
    if (!lead) return;
    log.flush();
    if (!log) throw UserError(logPath + ": cannot append step " + std::to_string(step) + " (is the disk full?)");
    if (!o.quiet && progress) {
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const double eta = elapsed / static_cast<double>(step - first + 1) * static_cast<double>(o.steps - step - 1);
      const int width = 24;
      int filled = static_cast<int>(width * (step + 1) / o.steps);
      std::fprintf(stderr, "%s[%s%s] step %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s   %s", terminal ? "\r" : "",
                   std::string(static_cast<size_t>(filled), '#').c_str(),
                   std::string(static_cast<size_t>(width - filled), '.').c_str(), static_cast<long long>(step + 1),
                   static_cast<long long>(o.steps), loss, lr, tokensPerSecond, formatDuration(eta).c_str(),
                   terminal ? "" : "\n");
      std::fflush(stderr);
    }
  };

  run.model.impl().train();
  const at::ScalarType lossType = dtype == at::kDouble ? at::kDouble : at::kFloat;
  for (int64_t step = first; step < o.steps; ++step) {
    const double lr = learningRate(o, step);
    for (auto& group : run.optimizer->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    run.optimizer->zero_grad();
    at::Tensor stepLoss = at::zeros({}, at::TensorOptions().dtype(lossType).device(device));
    for (int64_t k = 0; k < accum; ++k) {
      Batch b = next.get();
      // The next micro-batch is made while this one trains.
      const bool more = k + 1 < accum || step + 1 < o.steps;
      if (more) next = std::async(std::launch::async, makeBatch, k + 1 < accum ? step : step + 1, k + 1 < accum ? k + 1 : 0);
      at::Tensor l;
      {
        Autocast autocast(device);
        l = run.model.loss(b.x.to(device, /*non_blocking=*/pin), b.y.to(device, /*non_blocking=*/pin)) /
            static_cast<double>(accum);
      }
      l.backward();
      stepLoss.add_(l.detach().to(lossType));
    }
    if (comm.active()) {
      // The gradients and the step's loss, averaged over the ranks in one set of buckets.
      std::vector<at::Tensor> reduced;
      for (const at::Tensor& p : parameters)
        if (p.grad().defined()) reduced.push_back(p.grad());
      at::Tensor lossCopy = stepLoss.to(parameters.front().scalar_type()).reshape({1});
      reduced.push_back(lossCopy);
      comm.averageInPlace(reduced);
      stepLoss = lossCopy.reshape({}).to(lossType);
    }
    at::Tensor norm = clipGradNorm(parameters, o.clip);
    run.optimizer->step();
    std::optional<double> valLoss;
    if (o.evalEvery > 0 && ((step + 1) % o.evalEvery == 0 || step + 1 == o.steps))
      valLoss = validationLoss(run.model, valWindows, device, comm);
    pending.push_back({step, lr, stepLoss, norm, valLoss});

    const auto now = std::chrono::steady_clock::now();
    const bool stopping = o.stopAfter > 0 && step + 1 == o.stopAfter;
    const double sinceCheckpoint = std::chrono::duration<double>(now - lastCheckpoint).count();
    const bool checkpoint = (o.checkpointEvery > 0 && (step + 1) % o.checkpointEvery == 0) ||
                            (o.checkpointMinutes > 0 && sinceCheckpoint >= 60 * o.checkpointMinutes) ||
                            step + 1 == o.steps || stopping;
    if (static_cast<int64_t>(pending.size()) >= logEvery || checkpoint) flush();
    if (checkpoint) {
      if (lead) saveCheckpoint(o.out, run.model.impl(), *run.optimizer, step, loss);
      lastCheckpoint = std::chrono::steady_clock::now();
    }
    if (stopping) break;
  }
  flush();
  if (next.valid()) next.wait();
  if (lead && !o.quiet && ::isatty(2)) std::fprintf(stderr, "\n");
  return loss;
}

TrainedModel loadTrainedModel(const std::string& runDir, const std::string& attnFile, const std::string& attnName,
                              const std::vector<std::string>& sets, const std::string& backend,
                              const std::string& device) {
  if (runDir.empty()) throw UserError("--ckpt is required");
  const std::string configPath = runDir + "/config.json";
  if (!exists(configPath)) throw UserError("'" + runDir + "' is not a training run (no config.json)");
  json trained = readJson(configPath);
  if (!trained.is_object() || !trained.contains("model"))
    throw UserError("'" + configPath + "' is not a training run's config (no \"model\")");
  model::Gpt2Config config = model::Gpt2Config::fromJson(trained.at("model").dump());
  std::string file = attnFile.empty() ? runDir + "/attention.attn" : attnFile;
  std::vector<std::string> programSets = sets;
  std::string name = attnName;
  if (attnFile.empty()) {
    try {
      programSets = trained.at("sets").get<std::vector<std::string>>();
      name = trained.at("attn_name").get<std::string>();
    } catch (const json::exception&) {
      throw UserError("'" + configPath + "' lacks the trained program's \"sets\" or \"attn_name\"");
    }
  }
  Program program = compileProgram(file, name, programSets);
  const at::Device where = deviceOf(device);
  Run run{model::Gpt2(config, program, parseBackend(backend)), nullptr};
  std::string path = findCheckpoint(runDir);
  if (path.empty()) throw UserError("no checkpoint in '" + runDir + "'");
  loadCheckpoint(path, run.model.impl(), nullptr);
  run.model.impl().to(where);
  run.model.impl().eval();
  TrainedModel out{std::move(run.model), where, file, programSets};
  return out;
}

}  // namespace attn::train
