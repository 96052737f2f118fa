#include "runtime/train/Checkpoint.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <vector>

#include "runtime/Attention.h"
#include "support/AtomicWrite.h"
#include "support/FileError.h"
#include "support/Manifest.h"
#include "support/ReadFile.h"

namespace attn::train {

namespace {

constexpr const char* kManifest = "MANIFEST";
// The 124M model's archives are ~0.5 GB (model) and ~1 GB (optimizer); 64 GiB leaves room for
// much larger models while still refusing a /dev/zero or a runaway file.
constexpr uint64_t kMaxArchiveBytes = uint64_t(64) << 30;
constexpr uint64_t kMaxSmallFileBytes = uint64_t(1) << 20;

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

void removeTree(const std::string& dir) {
  std::error_code error;
  std::filesystem::remove_all(dir, error);
  if (error) throw UserError("cannot remove '" + dir + "': " + error.message());
}

std::string archiveBytes(torch::serialize::OutputArchive& archive) {
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

// A new, empty directory RUN/checkpoint.tmp.<pid>.<n>; mkdir (not "create if missing") so a
// directory or link already at that name is never written into.
std::string freshDirectory(const std::string& runDir) {
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string dir =
        runDir + "/checkpoint.tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    if (::mkdir(dir.c_str(), 0777) == 0) return dir;
    if (errno != EEXIST)
      throw UserError(dir + ": cannot create the directory: " + support::errnoText(errno));
  }
  throw UserError(runDir + ": cannot find a free name for a new checkpoint directory");
}

// The first line of a LibTorch error, which is what the user needs.
std::string firstLine(const std::string& text) {
  const size_t end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

// The bytes of DIR/NAME, checked against the manifest when there is one.
std::string readChecked(const std::string& dir, const std::string& name,
                        const std::optional<std::vector<support::ManifestEntry>>& manifest,
                        uint64_t cap) {
  const std::string path = dir + "/" + name;
  try {
    support::ReadOptions options;
    options.what = "a checkpoint file";
    std::string bytes = support::readRegularFile(path, cap, options);
    if (manifest) {
      const support::ManifestEntry* entry = support::findEntry(*manifest, name);
      if (!entry)
        throw UserError(path +
                        ": not listed in the checkpoint's MANIFEST (the checkpoint is damaged)");
      support::checkAgainstManifest(path, *entry, bytes);
    }
    return bytes;
  } catch (const support::FileError& e) {
    throw UserError(std::string(e.what()) + " (a damaged checkpoint cannot be used)");
  }
}

}  // namespace

void saveCheckpoint(const std::string& runDir, torch::nn::Module& model,
                    torch::optim::Optimizer& optimizer, int64_t step, double loss) {
  const std::string live = runDir + "/checkpoint", old = runDir + "/checkpoint.old";
  std::vector<std::pair<std::string, std::string>> files;
  {
    torch::serialize::OutputArchive archive;
    model.save(archive);
    files.emplace_back("model.pt", archiveBytes(archive));
  }
  {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    files.emplace_back("optimizer.pt", archiveBytes(archive));
  }
  files.emplace_back("state.json",
                     nlohmann::json{{"step", step}, {"train_loss", loss}}.dump() + "\n");

  const std::string fresh = freshDirectory(runDir);
  try {
    std::vector<support::ManifestEntry> entries;
    for (const auto& [name, bytes] : files) {
      support::writeFileAtomically(fresh + "/" + name, bytes);
      entries.push_back(support::manifestEntry(name, bytes));
    }
    support::writeFileAtomically(fresh + "/" + kManifest, support::formatManifest(entries));
  } catch (const support::FileError& e) {
    std::error_code ignored;
    std::filesystem::remove_all(fresh, ignored);
    throw UserError(std::string(e.what()) + "; the checkpoint was not written (" +
                    (exists(live) ? "the previous one, " + live + ", is untouched)"
                                  : "there is no previous one)"));
  }
  removeTree(old);
  if (exists(live) && std::rename(live.c_str(), old.c_str()) != 0)
    throw UserError(live + ": cannot move it aside: " + support::errnoText(errno));
  if (std::rename(fresh.c_str(), live.c_str()) != 0)
    throw UserError(fresh + ": cannot move it to " + live + ": " + support::errnoText(errno));
  removeTree(old);
}

std::string findCheckpoint(const std::string& runDir) {
  for (const char* name : {"/checkpoint", "/checkpoint.old"}) {
    const std::string dir = runDir + name;
    if (exists(dir + "/" + kManifest) || (exists(dir + "/state.json") && exists(dir + "/model.pt")))
      return dir;
  }
  return "";
}

int64_t loadCheckpoint(const std::string& dir, torch::nn::Module& model,
                       torch::optim::Optimizer* optimizer) {
  std::optional<std::vector<support::ManifestEntry>> manifest;
  const std::string manifestPath = dir + "/" + kManifest;
  try {
    if (auto text = support::readRegularFileIfPresent(manifestPath, kMaxSmallFileBytes)) {
      manifest = support::parseManifest(manifestPath, *text);
    } else {
      std::fprintf(
          stderr,
          "attn: warning: %s has no MANIFEST (written by an older attn): its files cannot be "
          "verified\n",
          dir.c_str());
    }
  } catch (const support::FileError& e) {
    throw UserError(std::string(e.what()) + " (a damaged checkpoint cannot be used)");
  }

  const std::string statePath = dir + "/state.json";
  int64_t step = -1;
  try {
    const nlohmann::json state =
        nlohmann::json::parse(readChecked(dir, "state.json", manifest, kMaxSmallFileBytes));
    if (!state.is_object() || !state.contains("step") || !state.at("step").is_number_integer())
      throw UserError(statePath +
                      ": has no integer \"step\" (a damaged checkpoint cannot be used)");
    step = state.at("step").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw UserError(statePath + ": not valid JSON (" + std::string(e.what()) +
                    "); a damaged checkpoint cannot be used");
  }
  if (step < 0)
    throw UserError(statePath + ": step " + std::to_string(step) +
                    " is negative (a damaged checkpoint)");

  auto load = [&](const std::string& name, auto&& into) {
    const std::string bytes = readChecked(dir, name, manifest, kMaxArchiveBytes);
    try {
      std::istringstream in(bytes);
      torch::serialize::InputArchive archive;
      archive.load_from(in);
      into(archive);
    } catch (const c10::Error& e) {
      throw UserError(dir + "/" + name +
                      ": cannot be loaded: " + firstLine(e.what_without_backtrace()) +
                      " (a damaged checkpoint, or one of another model configuration)");
    } catch (const std::exception& e) {  // LibTorch's archive reader also throws std::runtime_error
      throw UserError(dir + "/" + name + ": cannot be loaded: " + firstLine(e.what()) +
                      " (a damaged checkpoint, or one of another model configuration)");
    }
  };
  load("model.pt", [&](torch::serialize::InputArchive& a) { model.load(a); });
  if (optimizer)
    load("optimizer.pt", [&](torch::serialize::InputArchive& a) { optimizer->load(a); });
  return step;
}

void removeCheckpointTemporaries(const std::string& runDir) {
  DIR* d = ::opendir(runDir.c_str());
  if (!d) return;
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind("checkpoint.tmp", 0) == 0) stale.push_back(runDir + "/" + name);
  }
  ::closedir(d);
  for (const std::string& path : stale) removeTree(path);
}

}  // namespace attn::train
