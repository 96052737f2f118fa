#include "runtime/train/Trainer.h"

#include <fcntl.h>
#include <unistd.h>

#include <torch/nn/module.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <chrono>
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
#include "runtime/train/Device.h"
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
// seeded by (seed, s, k) alone.
std::pair<at::Tensor, at::Tensor> batch(const std::vector<uint16_t>& tokens, int64_t B, int64_t T, uint64_t seed,
                                        int64_t step, int64_t micro) {
  if (static_cast<int64_t>(tokens.size()) < T + 2)
    throw UserError("the training data has " + std::to_string(tokens.size()) + " tokens, fewer than one sequence of " +
                    std::to_string(T + 1));
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step) * 1000003ULL +
                      static_cast<uint64_t>(micro));
  std::uniform_int_distribution<int64_t> start(0, static_cast<int64_t>(tokens.size()) - T - 1);
  at::Tensor x = at::empty({B, T}, at::kLong), y = at::empty({B, T}, at::kLong);
  auto xa = x.accessor<int64_t, 2>(), ya = y.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t s = start(rng);
    for (int64_t t = 0; t < T; ++t) {
      xa[b][t] = tokens[static_cast<size_t>(s + t)];
      ya[b][t] = tokens[static_cast<size_t>(s + t + 1)];
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
          {"seed", o.seed}};
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
  else d = {18865, 64, 524288, 700, 6e-4};  // the llm.c GPT-2 (124M) recipe
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

double train(const TrainOptions& given, const TokenData& data) {
  TrainOptions o = resolveDefaults(given);
  if (o.out.empty()) throw UserError("--out is required");
  if (o.attnFile.empty()) throw UserError("--attn is required");
  makeDirectories(o.out);
  model::Gpt2Config config = model::Gpt2Config::named(o.config);
  config.seqLen = o.seqLen;
  if (o.vocab > 0) config.vocab = o.vocab;
  for (uint16_t t : data.train)
    if (t >= config.vocab)
      throw UserError("the training data has token " + std::to_string(t) + ", outside the model's vocabulary of " +
                      std::to_string(config.vocab));
  Program program = compileProgram(o.attnFile, o.attnName, o.sets);
  Backend backend = parseBackend(o.backend);

  const at::Device device = deviceOf(o.device);
  at::manual_seed(o.seed);
  Run run{model::Gpt2(config, program, backend), nullptr};
  run.model.impl().to(device);
  run.optimizer = makeOptimizer(run.model, o);
  int64_t first = 0;
  const std::string logPath = o.out + "/log.jsonl";
  removeCheckpointTemporaries(o.out);
  if (o.resume) {
    std::string path = findCheckpoint(o.out);
    if (path.empty()) throw UserError("--resume: no checkpoint in '" + o.out + "'");
    first = loadCheckpoint(path, run.model.impl(), run.optimizer.get()) + 1;
    truncateLog(logPath, first - 1);
  } else {
    writeTextAtomically(logPath, "");
  }
  writeTextAtomically(o.out + "/config.json", optionsJson(o, config).dump(2) + "\n");
  writeTextAtomically(o.out + "/attention.attn", readText(o.attnFile));

  const int64_t accum = o.batchTokens / (o.microBatch * o.seqLen);
  std::ofstream log(logPath, std::ios::app);
  auto start = std::chrono::steady_clock::now();
  auto lastCheckpoint = start;
  double loss = 0;
  run.model.impl().train();
  for (int64_t step = first; step < o.steps; ++step) {
    auto t0 = std::chrono::steady_clock::now();
    const double lr = learningRate(o, step);
    for (auto& group : run.optimizer->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    run.optimizer->zero_grad();
    double total = 0;
    for (int64_t k = 0; k < accum; ++k) {
      auto [x, y] = batch(data.train, o.microBatch, o.seqLen, o.seed, step, k);
      at::Tensor l;
      {
        Autocast autocast(device);
        l = run.model.loss(x.to(device), y.to(device)) / static_cast<double>(accum);
      }
      l.backward();
      total += l.item<double>();
    }
    double norm = torch::nn::utils::clip_grad_norm_(run.model.impl().parameters(), o.clip);
    run.optimizer->step();
    loss = total;
    if (!std::isfinite(loss)) throw UserError("training diverged at step " + std::to_string(step) + " (loss " + std::to_string(loss) + ")");
    auto t1 = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    const double tokensPerSecond = static_cast<double>(o.batchTokens) / seconds;
    log << json{{"step", step}, {"train_loss", loss}, {"lr", lr}, {"tokens_per_s", tokensPerSecond}, {"grad_norm", norm}}
               .dump()
        << "\n";
    log.flush();
    if (!log) throw UserError(logPath + ": cannot append step " + std::to_string(step) + " (is the disk full?)");
    const bool terminal = ::isatty(2) != 0;
    const int64_t every = std::max<int64_t>(1, o.steps / 20);
    if (!o.quiet && (terminal || (step + 1) % every == 0 || step + 1 == o.steps)) {
      const double elapsed = std::chrono::duration<double>(t1 - start).count();
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
    const bool stopping = o.stopAfter > 0 && step + 1 == o.stopAfter;
    const double sinceCheckpoint = std::chrono::duration<double>(t1 - lastCheckpoint).count();
    if ((o.checkpointEvery > 0 && (step + 1) % o.checkpointEvery == 0) ||
        (o.checkpointMinutes > 0 && sinceCheckpoint >= 60 * o.checkpointMinutes) || step + 1 == o.steps || stopping) {
      saveCheckpoint(o.out, run.model.impl(), *run.optimizer, step, loss);
      lastCheckpoint = std::chrono::steady_clock::now();
    }
    if (stopping) break;
  }
  if (!o.quiet && ::isatty(2)) std::fprintf(stderr, "\n");
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
