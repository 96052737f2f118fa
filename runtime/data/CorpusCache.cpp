#include "runtime/data/CorpusCache.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "runtime/data/Bpe.h"
#include "runtime/data/Corpus.h"
#include "runtime/data/DataError.h"
#include "support/AtomicWrite.h"
#include "support/CacheRoot.h"
#include "support/FileError.h"
#include "support/Manifest.h"
#include "support/ReadFile.h"

namespace attn::data {

namespace {

constexpr const char* kManifest = "MANIFEST";
// The built-in corpus is about 4 MB of tokens; a shard of llm.c's size is 200 MB.
constexpr uint64_t kMaxFileBytes = uint64_t(1) << 30;
constexpr uint64_t kMaxManifestBytes = uint64_t(1) << 20;

std::vector<std::string> regularFilesIn(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw DataError(dir + ": cannot list the directory: " + support::errnoText(errno));
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    struct stat st {};
    if (name != "." && name != ".." && ::lstat((dir + "/" + name).c_str(), &st) == 0 &&
        S_ISREG(st.st_mode))
      names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

void removeTree(const std::string& dir) {
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

// Removes what a killed preparation left next to `dir` (DIR.tmp.PID.N, DIR.damaged.PID.N)
// when process PID no longer exists; a live one may still be working in it.
void removeLeftovers(const std::string& dir) {
  const size_t slash = dir.rfind('/');
  const std::string parent = dir.substr(0, slash), base = dir.substr(slash + 1);
  DIR* d = ::opendir(parent.c_str());
  if (!d) return;
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    for (const std::string kind : {".tmp.", ".damaged."}) {
      const std::string prefix = base + kind;
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) stale.push_back(parent + "/" + name);
    }
  }
  ::closedir(d);
  for (const std::string& path : stale) removeTree(path);
}

// Tokenizes the built-in corpus into a fresh directory next to `dir` and renames it to `dir`.
void prepareInto(const std::string& dir) {
  static std::atomic<unsigned> counter{0};
  const std::string parent = dir.substr(0, dir.rfind('/'));
  support::makeDirectories(parent);
  removeLeftovers(dir);
  const std::string fresh =
      dir + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  removeTree(fresh);
  if (::mkdir(fresh.c_str(), 0777) != 0) {
    throw DataError(fresh + ": cannot create the directory: " + support::errnoText(errno));
  }
  try {
    const Tokenizer tokenizer = Tokenizer::loadDefault();
    const Split split = splitDocuments(defaultCorpus(), 0.1, 1);
    prepareShards(split, tokenizer, fresh, "sotu", 100000000);
    std::vector<support::ManifestEntry> entries;
    for (const std::string& name : regularFilesIn(fresh)) {
      const std::string bytes = support::readRegularFile(fresh + "/" + name, kMaxFileBytes);
      entries.push_back(support::manifestEntry(name, bytes));
    }
    support::writeFileAtomically(fresh + "/" + kManifest, support::formatManifest(entries));
  } catch (const support::FileError& e) {
    removeTree(fresh);
    throw DataError(e.what());
  } catch (...) {
    removeTree(fresh);
    throw;
  }
  // Swap in: a damaged copy is moved aside first (rename cannot replace a non-empty
  // directory). Another process may have put a whole copy in place meanwhile: then ours
  // is not needed.
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0) {
    const std::string aside =
        dir + ".damaged." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    if (::rename(dir.c_str(), aside.c_str()) == 0) removeTree(aside);
  }
  if (::rename(fresh.c_str(), dir.c_str()) != 0) {
    const int error = errno;
    removeTree(fresh);
    if (verifyPreparedCorpus(dir).empty()) return;
    throw DataError(dir +
                    ": cannot move the prepared corpus into place: " + support::errnoText(error));
  }
}

}  // namespace

std::string verifyPreparedCorpus(const std::string& dir) {
  try {
    const std::string manifestPath = dir + "/" + kManifest;
    const std::optional<std::string> text =
        support::readRegularFileIfPresent(manifestPath, kMaxManifestBytes);
    if (!text) return manifestPath + ": missing (an interrupted preparation, or an older attn's)";
    const std::vector<support::ManifestEntry> entries = support::parseManifest(manifestPath, *text);
    bool hasIndex = false, hasTrain = false;
    for (const support::ManifestEntry& e : entries) {
      const std::string path = dir + "/" + e.name;
      support::checkAgainstManifest(path, e, support::readRegularFile(path, kMaxFileBytes));
      hasIndex = hasIndex || e.name == "sotu_val_documents.json";
      hasTrain = hasTrain || e.name.rfind("sotu_train_", 0) == 0;
    }
    if (!hasIndex || !hasTrain)
      return manifestPath + ": does not list the shards and validation index it should";
    return "";
  } catch (const support::FileError& e) {
    return e.what();
  }
}

std::string preparedDefaultCorpus() {
  const std::string dir = support::cacheDirectory() + "/data/sotu";
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    std::fprintf(stderr,
                 "attn: preparing the built-in corpus (233 State of the Union speeches) into %s\n",
                 dir.c_str());
    prepareInto(dir);
    return dir;
  }
  const std::string problem = verifyPreparedCorpus(dir);
  if (!problem.empty()) {
    std::fprintf(stderr,
                 "attn: note: the prepared built-in corpus is damaged (%s); preparing it again\n",
                 problem.c_str());
    prepareInto(dir);
  }
  return dir;
}

}  // namespace attn::data
