// The small tokenizers (bytes, bpe:N) and tokenizer.json, the passkey instance, `attn data
// synth` (the mix at the fraction asked for, every text document kept, validation data
// untouched, the same output for the same seed), and every bad flag of the commands added
// for the reproduction (exit 2 naming the flag, before any work).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "TestUtil.h"
#include "runtime/data/Corpus.h"
#include "runtime/data/DataError.h"
#include "runtime/data/PasskeyTask.h"
#include "runtime/data/Shards.h"
#include "runtime/data/Synth.h"
#include "runtime/data/TextTokenizer.h"

using namespace attn;
namespace fs = std::filesystem;

namespace {

std::vector<data::Document> someDocuments() {
  std::vector<data::Document> docs;
  for (int d = 0; d < 6; ++d) {
    std::string text;
    for (int i = 0; i < 40; ++i)
      text += "In the year 17" + std::to_string(90 + d) + " the congress of the states met again, and again. ";
    text += "Caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 d" + std::to_string(d) + "\n\n  end.";
    docs.push_back({"doc" + std::to_string(d), text});
  }
  return docs;
}

std::vector<uint16_t> narrow(const std::vector<uint32_t>& ids) { return {ids.begin(), ids.end()}; }

// A data directory prepared with `tokenizer` from someDocuments(), once per tokenizer.
std::string preparedDirectory(const std::string& tokenizer) {
  static std::map<std::string, std::string> dirs;
  if (dirs.count(tokenizer)) return dirs[tokenizer];
  std::string dir = test::tempDir() + "/prepared_" + tokenizer.substr(0, tokenizer.find(':'));
  data::Split split = data::splitDocuments(someDocuments(), 0.34, 1);
  auto t = data::makeTokenizer(tokenizer, split.train);
  data::prepareShards(split, *t, dir, "p", 1000000);
  return dirs[tokenizer] = dir;
}

}  // namespace

TEST_SUITE("passkey") {
  TEST_CASE("bytes: one id per byte, 256 ends a text, decode inverts encode") {
    auto t = data::makeTokenizer("bytes", {});
    CHECK(t->vocabSize() == 257);
    CHECK(t->endOfText() == 256);
    const std::string text = "A b\xc3\xa9\n\x01";
    CHECK(t->encode(text) == std::vector<uint32_t>{'A', ' ', 'b', 0xc3, 0xa9, '\n', 1});
    CHECK(t->decode(t->encode(text)) == text);
    CHECK_THROWS_AS(t->decode({256}), data::DataError);
  }

  TEST_CASE("bpe:N learns N merges from the text, deterministically; digits never merge; round trips") {
    const auto docs = someDocuments();
    auto a = data::makeTokenizer("bpe:40", docs), b = data::makeTokenizer("bpe:40", docs);
    CHECK(a->vocabSize() == 257 + 40);
    CHECK(a->name() == "bpe:40");
    CHECK(a->describe() == b->describe());
    for (const auto& d : docs) {
      const auto ids = a->encode(d.text);
      CHECK(a->decode(ids) == d.text);
      CHECK(ids.size() < d.text.size() / 2);  // the repeated sentence merges well
    }
    // Digits: one token each, whatever surrounds them.
    for (const std::string s : {"1795", " 1795", "x1795y", "12345. Remember"}) {
      const auto ids = a->encode(s);
      int digits = 0;
      for (uint32_t id : ids) {
        const std::string piece = a->decode({id});
        const bool hasDigit = piece.find_first_of("0123456789") != std::string::npos;
        if (hasDigit) {
          CHECK(piece.size() == 1);
          ++digits;
        }
      }
      CHECK(digits == static_cast<int>(std::count_if(s.begin(), s.end(), ::isdigit)));
    }
    // A frequent word became one token.
    CHECK(a->encode(" congress").size() <= 2);
    CHECK_THROWS_WITH_AS(data::makeTokenizer("bpe:60000", {{"x", "ab"}}), doctest::Contains("pairs to merge"),
                         data::DataError);
    CHECK_THROWS_AS(data::makeTokenizer("bpe:0", docs), data::DataError);
    CHECK_THROWS_AS(data::makeTokenizer("words", docs), data::DataError);
    CHECK(data::isTokenizerSpec("bpe:7"));
    CHECK_FALSE(data::isTokenizerSpec("bpe:-7"));
    CHECK_FALSE(data::isTokenizerSpec("bpe:1e3"));
  }

  TEST_CASE("tokenizer.json: written by prepare, read back to the same tokenizer, malformed ones refused") {
    const std::string dir = preparedDirectory("bpe:30");
    REQUIRE(fs::exists(dir + "/tokenizer.json"));
    auto loaded = data::loadTokenizer(dir);
    auto learned = data::makeTokenizer("bpe:30", data::splitDocuments(someDocuments(), 0.34, 1).train);
    CHECK(loaded->describe() == learned->describe());
    const std::string probe = someDocuments()[2].text;
    CHECK(loaded->encode(probe) == learned->encode(probe));
    data::TokenizerInfo info = data::readTokenizerInfo(dir);
    CHECK(info.kind == "bpe");
    CHECK(info.vocab == 287);
    CHECK(info.endOfText == 256);
    // Documents start with the tokenizer's end of text, not GPT-2's.
    CHECK(data::readShard(dir + "/p_val_000000.bin").front() == 256);

    const std::string bad = test::tempDir() + "/badtok";
    fs::create_directories(bad);
    auto refused = [&](const std::string& text) {
      std::ofstream(bad + "/tokenizer.json") << text;
      try {
        data::loadTokenizer(bad);
      } catch (const data::DataError& e) {
        return std::string(e.what());
      }
      return std::string("accepted");
    };
    CHECK(refused("{").find("tokenizer.json: not valid JSON") != std::string::npos);
    CHECK(refused(R"({"format": "attn-tokenizer", "kind": "words", "vocab": 9, "end_of_text": 3})")
              .find("unknown tokenizer kind 'words'") != std::string::npos);
    CHECK(refused(R"({"format": "attn-tokenizer", "kind": "bytes", "vocab": 9, "end_of_text": 30})")
              .find("impossible") != std::string::npos);
    CHECK(refused(R"({"format": "attn-tokenizer", "kind": "bpe", "vocab": 258, "end_of_text": 256, "merges": [[1, 900]]})")
              .find("merge 0 refers to a token it cannot") != std::string::npos);
    CHECK(refused(R"({"format": "attn-tokenizer", "kind": "bpe", "vocab": 300, "end_of_text": 256, "merges": [[1, 2]]})")
              .find("do not make the vocabulary of 300") != std::string::npos);
    // No file: GPT-2's, as for llm.c's shards.
    CHECK(data::readTokenizerInfo(test::tempDir()).kind == "gpt2");
  }

  TEST_CASE("a passkey instance: exact length, the key in the needle and at the end, the needle at its depth") {
    auto t = data::makeTokenizer("bytes", {});
    std::vector<std::vector<uint16_t>> docs;
    for (const auto& d : someDocuments()) {
      docs.push_back({256});
      for (uint32_t id : t->encode(d.text)) docs.back().push_back(static_cast<uint16_t>(id));
    }
    data::PasskeyTask task(*t, data::FillerKind::Text, &docs);
    for (double depth : {0.0, 0.3, 1.0}) {
      data::PasskeyInstance inst = task.make(500, depth, 42);
      INFO("depth ", depth);
      REQUIRE(inst.tokens.size() == 500);
      CHECK(inst.tokens.front() == 256);
      CHECK(inst.key.size() == 5);
      CHECK(inst.key[0] != '0');
      CHECK(inst.answerTokens == 5);
      const std::string text = t->decode({inst.tokens.begin() + 1, inst.tokens.end()});
      const std::string needle = " The pass key is " + inst.key + ". Remember it. " + inst.key + " is the pass key. ";
      CHECK(text.find(needle) == static_cast<size_t>(inst.needleOffset - 1));
      CHECK(text.size() >= 44);
      CHECK(text.substr(text.size() - 44) == " What is the pass key? The pass key is " + inst.key);
      // The needle sits at depth × filler tokens into the filler.
      const int64_t filler = 500 - 1 - static_cast<int64_t>(needle.size()) - 44;
      CHECK(inst.needleOffset - 1 == std::llround(depth * static_cast<double>(filler)));
    }
    // The same seed, the same instance; another seed, another key.
    CHECK(task.make(300, 0.5, 7).tokens == task.make(300, 0.5, 7).tokens);
    CHECK(task.make(300, 0.5, 7).key != task.make(300, 0.5, 8).key);
    CHECK_THROWS_WITH_AS(task.make(40, 0.5, 1), doctest::Contains("cannot hold the needle"), data::DataError);
    CHECK(task.minimumLength() == 1 + 17 + 5 + 15 + 5 + 18 + 39 + 5 + 1);
    CHECK_NOTHROW(task.make(task.minimumLength(), 1.0, 3));
    CHECK_THROWS_AS(task.make(task.minimumLength() - 1, 1.0, 3), data::DataError);
    // The repeated filler: the usual sentences.
    data::PasskeyTask repeat(*t, data::FillerKind::Repeat, nullptr);
    const data::PasskeyInstance repeated = repeat.make(400, 1.0, 5);
    const std::string text = t->decode({repeated.tokens.begin() + 1, repeated.tokens.end()});
    CHECK(text.find("The sky is blue.") != std::string::npos);
    CHECK_THROWS_AS(data::PasskeyTask(*t, data::FillerKind::Text, nullptr), data::DataError);
  }

  TEST_CASE("copy filler: no digits, words that recur within an instance and differ between instances") {
    const std::string dir = preparedDirectory("bpe:30");
    auto t = data::loadTokenizer(dir);
    data::PasskeyTask task(*t, data::FillerKind::Copy, nullptr);
    CHECK(data::parseFillerKind("copy") == data::FillerKind::Copy);
    CHECK(data::fillerName(data::FillerKind::Copy) == "copy");
    CHECK_THROWS_WITH_AS(data::parseFillerKind("lorem"), doctest::Contains("text, repeat or copy"), data::DataError);
    // The filler of an instance: every id but <eot>, the needle, the question and the key.
    auto fillerOf = [&](const data::PasskeyInstance& inst) {
      const std::string key = inst.key;
      const size_t needle = t->encode(" The pass key is ").size() + 2 * t->encode(key).size() +
                            t->encode(". Remember it. ").size() + t->encode(" is the pass key. ").size();
      const size_t tail = t->encode(" What is the pass key? The pass key is ").size() + t->encode(key).size();
      std::vector<uint32_t> f(inst.tokens.begin() + 1, inst.tokens.begin() + inst.needleOffset);
      f.insert(f.end(), inst.tokens.begin() + inst.needleOffset + static_cast<int64_t>(needle),
               inst.tokens.end() - static_cast<int64_t>(tail));
      return f;
    };
    // How many filler positions repeat an earlier (previous token, token) pair of the same
    // filler: what a copying model can predict.
    auto copyable = [](const std::vector<uint32_t>& f, const std::vector<uint32_t>& earlier) {
      std::set<std::pair<uint32_t, uint32_t>> seen;
      for (size_t i = 1; i < earlier.size(); ++i) seen.insert({earlier[i - 1], earlier[i]});
      int64_t n = 0;
      for (size_t i = 1; i < f.size(); ++i) {
        const std::pair<uint32_t, uint32_t> pair{f[i - 1], f[i]};
        if (&f == &earlier) {
          // Pairs before i only.
          bool before = false;
          for (size_t j = 1; j < i && !before; ++j) before = f[j - 1] == f[i - 1] && f[j] == f[i];
          n += before;
        } else {
          n += seen.count(pair) > 0;
        }
      }
      return static_cast<double>(n) / static_cast<double>(f.size() - 1);
    };
    for (int64_t length : {int64_t{200}, int64_t{501}}) {
      const data::PasskeyInstance a = task.make(length, 0.5, 11), b = task.make(length, 0.5, 12);
      INFO("length ", length);
      REQUIRE(static_cast<int64_t>(a.tokens.size()) == length);
      const std::string text = t->decode({a.tokens.begin() + 1, a.tokens.end()});
      CHECK(text.find(" The pass key is " + a.key + ". Remember it. " + a.key + " is the pass key. ") ==
            t->decode({a.tokens.begin() + 1, a.tokens.begin() + a.needleOffset}).size());
      CHECK(text.substr(text.size() - 44) == " What is the pass key? The pass key is " + a.key);
      const std::vector<uint32_t> fa = fillerOf(a), fb = fillerOf(b);
      REQUIRE(static_cast<int64_t>(fa.size()) == length - (task.minimumLength() - 1));
      // No digits anywhere in the filler: the key's tokens occur only where they are put.
      const std::string fillerText = t->decode(fa);
      CHECK(fillerText.find_first_of("0123456789") == std::string::npos);
      for (unsigned char c : fillerText) CHECK((c >= 0x20 && c <= 0x7e));
      // Within an instance most positions continue a pair seen before (the words recur) ...
      CHECK(copyable(fa, fa) > 0.35);
      // ... and another instance's words are others: its pairs predict few of these.
      CHECK(copyable(fa, fb) < 0.15);
    }
    // The repeated sentences, for contrast, are one text: another instance predicts them all.
    data::PasskeyTask repeat(*t, data::FillerKind::Repeat, nullptr);
    CHECK(copyable(fillerOf(repeat.make(501, 0.5, 11)), fillerOf(repeat.make(501, 0.5, 12))) > 0.9);
    // The same seed, the same filler.
    CHECK(task.make(300, 0.2, 5).tokens == task.make(300, 0.2, 5).tokens);
  }

  TEST_CASE("attn data synth: instances at the fraction asked for, every text document kept, validation untouched") {
    const std::string in = preparedDirectory("bytes");
    const std::string out = test::tempDir() + "/synth_a", again = test::tempDir() + "/synth_b",
                      other = test::tempDir() + "/synth_c";
    auto run = [&](const std::string& dir, const std::string& seed) {
      return test::runAttn({"data", "synth", "--task", "passkey", "--data", in, "--out", dir, "--mix", "0.25",
                            "--max-length", "200", "--seed", seed});
    };
    test::CommandResult r = run(out, "3");
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("passkey instances") != std::string::npos);
    auto manifest = nlohmann::json::parse(test::readFile(out + "/synth.json"));
    const int64_t textTokens = manifest["text_tokens"], instanceTokens = manifest["instance_tokens"];
    const double fraction = static_cast<double>(instanceTokens) / static_cast<double>(textTokens + instanceTokens);
    CHECK(fraction >= 0.25);
    // At most one instance (200 tokens) beyond the fraction asked for.
    CHECK(static_cast<double>(instanceTokens - 200) / static_cast<double>(textTokens + instanceTokens - 200) < 0.25);
    CHECK(manifest["fraction"].get<double>() == doctest::Approx(fraction));
    CHECK(manifest["min_length"] == 106);  // max(200 / 4, the shortest instance)

    // The shard: the input's documents, whole, and the instances, each a document.
    const std::vector<uint16_t> mixed = data::readShard(out + "/p_train_000000.bin");
    CHECK(static_cast<int64_t>(mixed.size()) == textTokens + instanceTokens);
    std::vector<std::vector<uint16_t>> docs;
    for (uint16_t t : mixed) {
      if (t == 256) docs.emplace_back();
      docs.back().push_back(t);
    }
    std::vector<std::vector<uint16_t>> original;
    for (uint16_t t : data::readShard(in + "/p_train_000000.bin")) {
      if (t == 256) original.emplace_back();
      original.back().push_back(t);
    }
    int64_t instances = 0, kept = 0;
    auto bytes = data::makeTokenizer("bytes", {});
    for (const auto& d : docs) {
      const std::string text = bytes->decode({d.begin() + 1, d.end()});
      if (text.find("What is the pass key?") != std::string::npos) {
        ++instances;
        CHECK(static_cast<int64_t>(d.size()) >= 106);
        CHECK(static_cast<int64_t>(d.size()) <= 200);
      } else {
        kept += std::count(original.begin(), original.end(), d) == 1;
      }
    }
    CHECK(instances == manifest["instances"].get<int64_t>());
    CHECK(kept == static_cast<int64_t>(original.size()));
    CHECK(test::readFile(out + "/p_val_000000.bin") == test::readFile(in + "/p_val_000000.bin"));
    CHECK(test::readFile(out + "/p_val_documents.json") == test::readFile(in + "/p_val_documents.json"));
    CHECK(test::readFile(out + "/tokenizer.json") == test::readFile(in + "/tokenizer.json"));

    // Determinism by seed.
    REQUIRE(run(again, "3").status == 0);
    CHECK(test::readFile(again + "/p_train_000000.bin") == test::readFile(out + "/p_train_000000.bin"));
    REQUIRE(run(other, "4").status == 0);
    CHECK(test::readFile(other + "/p_train_000000.bin") != test::readFile(out + "/p_train_000000.bin"));

    // Errors: into its own input; an instance length no instance fits; no training shards.
    test::CommandResult self = run(in, "1");
    CHECK(self.status == 1);
    CHECK(self.err.find("another directory than the input") != std::string::npos);
    test::CommandResult tiny = test::runAttn({"data", "synth", "--task", "passkey", "--data", in, "--out", other,
                                              "--max-length", "50"});
    CHECK(tiny.status == 1);
    CHECK(tiny.err.find("--max-length 50: a passkey instance needs at least 106 tokens") != std::string::npos);
    test::CommandResult empty = test::runAttn({"data", "synth", "--task", "passkey", "--data", test::tempDir() + "/nothing_here",
                                               "--out", other});
    CHECK(empty.status == 1);
    CHECK(empty.err.find("not a data directory") != std::string::npos);
  }

  TEST_CASE("attn data synth --filler copy: the manifest says so, digits only in the keys") {
    const std::string in = preparedDirectory("bytes");
    const std::string out = test::tempDir() + "/synth_copy";
    test::CommandResult r = test::runAttn({"data", "synth", "--task", "passkey", "--data", in, "--out", out, "--mix",
                                           "0.3", "--max-length", "160", "--filler", "copy", "--digits", "7"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto manifest = nlohmann::json::parse(test::readFile(out + "/synth.json"));
    CHECK(manifest["filler"] == "copy");
    auto bytes = data::makeTokenizer("bytes", {});
    std::vector<std::vector<uint16_t>> docs;
    for (uint16_t t : data::readShard(out + "/p_train_000000.bin")) {
      if (t == 256) docs.emplace_back();
      docs.back().push_back(t);
    }
    int64_t instances = 0;
    for (const auto& d : docs) {
      const std::string text = bytes->decode({d.begin() + 1, d.end()});
      if (text.find("What is the pass key?") == std::string::npos) continue;
      ++instances;
      // The key, three times, is all the digits: 3 x 7.
      CHECK(std::count_if(text.begin(), text.end(), ::isdigit) == 21);
    }
    CHECK(instances == manifest["instances"].get<int64_t>());
    CHECK(instances > 0);
  }

  TEST_CASE("attn data prepare --tokenizer: bytes and bpe:N write tokenizer.json; gpt2 removes a stale one") {
    const std::string in = test::tempDir() + "/texts";
    fs::create_directories(in);
    for (const auto& d : someDocuments()) std::ofstream(in + "/" + d.name + ".txt") << d.text;
    const std::string out = test::tempDir() + "/prep_tok";
    test::CommandResult r = test::runAttn({"data", "prepare", in, "--out", out, "--tokenizer", "bytes", "--val-fraction",
                                           "0.34"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("tokenizer: bytes (257 tokens)") != std::string::npos);
    CHECK(data::readTokenizerInfo(out).kind == "bytes");
    test::CommandResult g = test::runAttn({"data", "prepare", in, "--out", out, "--val-fraction", "0.34"});
    REQUIRE(g.status == 0);
    CHECK(g.out.find("removed stale file " + out + "/tokenizer.json") != std::string::npos);
    CHECK_FALSE(fs::exists(out + "/tokenizer.json"));
  }

  TEST_CASE("bad flags of eval, passkey, synth, prepare and train: exit 2 naming the flag, nothing done") {
    const std::string run = test::tempDir() + "/no_run";
    struct Case {
      std::vector<std::string> args;
      std::string flag;
    };
    const std::vector<Case> cases = {
        {{"eval", "--ckpt", run, "--lengths=-1x"}, "--lengths"},
        {{"eval", "--ckpt", run, "--lengths", "0x"}, "--lengths"},
        {{"eval", "--ckpt", run, "--lengths", "1x,2.5x"}, "--lengths"},
        {{"eval", "--ckpt", run, "--lengths", "99999x"}, "--lengths"},
        {{"eval", "--ckpt", run, "--lengths", "x"}, "--lengths"},
        {{"eval", "--ckpt", run, "--protocol", "sliding"}, "--protocol"},
        {{"eval", "--ckpt", run, "--per-position", "0"}, "--per-position"},
        {{"eval", "--ckpt", run, "--per-position", "-4"}, "--per-position"},
        {{"eval", "--ckpt", run, "--per-position", "junk"}, "--per-position"},
        {{"eval", "--ckpt", run, "--max-docs", "-1"}, "--max-docs"},
        {{"eval", "--ckpt", run, "--rope", "yarn"}, "--rope"},
        {{"eval", "--ckpt", run, "--threads", "-2"}, "--threads"},
        {{"passkey", "--ckpt", run, "--depths", "0,nan"}, "--depths"},
        {{"passkey", "--ckpt", run, "--depths", "1.5"}, "--depths"},
        {{"passkey", "--ckpt", run, "--depths", "-0.1"}, "--depths"},
        {{"passkey", "--ckpt", run, "--trials", "0"}, "--trials"},
        {{"passkey", "--ckpt", run, "--trials", "1e29"}, "--trials"},
        {{"passkey", "--ckpt", run, "--lengths", "-1x"}, "--lengths"},
        {{"passkey", "--ckpt", run, "--digits", "0"}, "--digits"},
        {{"passkey", "--ckpt", run, "--digits", "40"}, "--digits"},
        {{"passkey", "--ckpt", run, "--filler", "lorem"}, "--filler"},
        {{"passkey", "--ckpt", run, "--seed", "junk"}, "--seed"},
        {{"data", "synth", "--task", "passkey", "--data", run, "--out", run, "--mix", "nan"}, "--mix"},
        {{"data", "synth", "--task", "passkey", "--data", run, "--out", run, "--mix", "1"}, "--mix"},
        {{"data", "synth", "--task", "passkey", "--data", run, "--out", run, "--mix", "-0.1"}, "--mix"},
        {{"data", "synth", "--task", "passkey", "--data", run, "--out", run, "--mix", "inf"}, "--mix"},
        {{"data", "synth", "--task", "summaries", "--data", run, "--out", run}, "--task"},
        {{"data", "synth", "--task", "passkey", "--data", run, "--out", run, "--filler", "lorem"}, "--filler"},
        {{"data", "synth", "--task", "passkey", "--data", run, "--out", run, "--max-length", "0"}, "--max-length"},
        {{"data", "synth", "--task", "passkey", "--data", run, "--out", run, "--min-length", "-5"}, "--min-length"},
        {{"data", "synth", "--task", "passkey", "--data", run, "--out", run, "--max-length", "1e12"}, "--max-length"},
        {{"data", "prepare", "--out", run, "--tokenizer", "bpe:0"}, "--tokenizer"},
        {{"data", "prepare", "--out", run, "--tokenizer", "words"}, "--tokenizer"},
        {{"train", "--attn", std::string(ATTN_STDLIB) + "/lssa.attn", "--out", run, "--windows", "documents"},
         "--windows"},
        {{"train", "--attn", std::string(ATTN_STDLIB) + "/lssa.attn", "--out", run, "--windows", ""}, "--windows"},
    };
    for (const Case& c : cases) {
      test::CommandResult r = test::runAttn(c.args);
      std::string line;
      for (const auto& a : c.args) line += a + " ";
      INFO(line, "\n", r.err);
      CHECK(r.status == 2);
      CHECK(r.err.find(c.flag) != std::string::npos);
    }
    CHECK_FALSE(fs::exists(run));
  }
}
