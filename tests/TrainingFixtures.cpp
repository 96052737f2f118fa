// The training tests' shared fixtures (TrainingFixtures.h).
#include "TrainingFixtures.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <mutex>

#include "TestUtil.h"

namespace attn::test {

const std::string& preparedShards(const ShardRecipe& recipe) {
  static std::mutex mutex;
  static std::map<std::string, std::string> prepared;  // name -> directory
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = prepared.find(recipe.name); it != prepared.end()) return it->second;
  std::vector<std::string> args{"data", "prepare"};
  for (size_t d = 0; d < recipe.documents.size(); ++d)
    args.push_back(writeTempFile(recipe.docPrefix + std::to_string(d) + ".txt", recipe.documents[d]));
  const std::string dir = tempDir() + "/" + recipe.name;
  args.insert(args.end(), {"--out", dir, "--val-fraction", recipe.valFraction, "--prefix", recipe.prefix,
                           "--tokenizer", recipe.tokenizer});
  const CommandResult r = runAttn(args);
  REQUIRE_MESSAGE(r.status == 0, r.err);
  return prepared.emplace(recipe.name, dir).first->second;
}

std::vector<nlohmann::json> logLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

bool pathExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace attn::test
