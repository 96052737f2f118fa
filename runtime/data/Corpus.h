// Text corpora as attn trains on them: documents read from plain-text files (the built-in
// corpus of 233 State of the Union speeches in dataDirectory()/sotu, or the user's .txt
// files), a deterministic train/validation split by whole documents, and the preparation
// of llm.c token shards from the two halves (what `attn data prepare` does).
//
// Whole documents are held out, never slices of one, so that validation text is text the
// model has not seen, and evaluation at a context length L can pick held-out documents of
// at least L tokens: PREFIX_val_documents.json lists each one's place in the validation
// tokens.
//
// What it is not: a streaming pipeline for corpora larger than memory (documents are read
// whole; tokens go to disk shard by shard), nor a text cleaner (the text is tokenized as
// it is, except that a UTF-8 byte-order mark at the start of a file is dropped).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attn::data {

class Tokenizer;
class TextTokenizer;

/// One document: a file's whole text.
struct Document {
  /// How messages and the validation index call it: the path as given for a file named
  /// on the command line, DIR/FILE for a file found in a directory given as DIR, and the
  /// file's stem ("1790_george_washington_n") in the built-in corpus.
  std::string name;
  /// The file's bytes, valid UTF-8, without a leading byte-order mark.
  std::string text;
};

/// Reads `paths` in the order given: each is a text file (any name), or a directory whose
/// *.txt files (not its subdirectories) are read sorted by file name. Throws DataError
/// naming the path for: no paths, a missing or unreadable path, a directory without .txt
/// files, an empty file, text that is not UTF-8, and the same file reached twice (it would
/// count twice, and could land on both sides of the split).
std::vector<Document> loadTextDocuments(const std::vector<std::string>& paths);

/// Where the built-in corpus lives: dataDirectory() + "/sotu".
std::string defaultCorpusDirectory();

/// The built-in corpus: the speeches in defaultCorpusDirectory(), in file-name (= date)
/// order, named by file stem. Throws DataError saying to run ./scripts/setup.sh when the
/// directory is missing.
std::vector<Document> defaultCorpus();

/// Documents divided into a training and a validation part; each keeps the input order.
struct Split {
  std::vector<Document> train;
  std::vector<Document> validation;
};

/// Holds out round(validationFraction * n) whole documents for validation, but at least one
/// and at most n - 1 when there are n >= 2 documents (with n < 2, all are for training).
/// Which ones depends only on `seed` and the documents' names (not on their order): each
/// name is hashed with the seed and the lowest hashes are held out. The same inputs give
/// the same split on every machine. Throws DataError unless 0 < validationFraction < 1.
Split splitDocuments(std::vector<Document> documents, double validationFraction, uint64_t seed);

/// The file name of shard `index` of `split` ("train" or "val"): PREFIX_SPLIT_000000.bin,
/// as llm.c names them.
std::string shardFileName(const std::string& prefix, const std::string& split, int64_t index);

/// What prepareShards wrote for one side of the split.
struct PreparedSplit {
  int64_t documents = 0;
  /// All tokens, one <|endoftext|> per document included.
  int64_t tokens = 0;
  /// The shards written, in order (paths under the output directory).
  std::vector<std::string> shards;
};

/// What prepareShards did.
struct PrepareResult {
  PreparedSplit train;
  PreparedSplit validation;
  /// The path of PREFIX_val_documents.json.
  std::string validationIndex;
  /// Shards of this prefix left from an earlier preparation that this one did not
  /// overwrite, deleted so that a glob over the directory finds only this preparation's.
  std::vector<std::string> removedStaleShards;
  /// Seconds spent tokenizing (the rest is reading text and writing files).
  double tokenizeSeconds = 0;
};

/// Tokenizes each document of `split`, prepends <|endoftext|> (50256) to it, concatenates
/// the documents of each side in order, and writes the tokens to llm.c shards of
/// `tokensPerShard` tokens (the last one of each side shorter) in `outDir` (created if
/// missing): PREFIX_train_000000.bin, ... and PREFIX_val_000000.bin, ... A document may
/// continue from one shard into the next, as in llm.c. A side without documents gets no
/// shard. Also writes PREFIX_val_documents.json:
///   {"format": "attn-val-documents", "version": 1, "prefix": ..., "tokens": ...,
///    "tokens_per_shard": ..., "shards": ["PREFIX_val_000000.bin", ...],
///    "documents": [{"name": ..., "offset": ..., "length": ...}, ...]}
/// where offset is the index of the document's <|endoftext|> in the validation tokens (its
/// shards concatenated in order) and length counts its tokens with that one. Every file is
/// written atomically. Throws DataError for a prefix that is not a plain file name part
/// (letters, digits, '.', '_', '-'), tokensPerShard outside [1, kMaxShardTokens], text the
/// tokenizer rejects, and files that cannot be written.
PrepareResult prepareShards(const Split& split, const Tokenizer& tokenizer, const std::string& outDir,
                            const std::string& prefix, int64_t tokensPerShard);

/// The same with any tokenizer of TextTokenizer.h: documents start with its end-of-text id,
/// and a tokenizer other than GPT-2's is described in outDir/tokenizer.json (with GPT-2's,
/// a tokenizer.json left there by an earlier preparation is removed and listed in
/// removedStaleShards: a directory holds one data set, in one tokenizer).
PrepareResult prepareShards(const Split& split, const TextTokenizer& tokenizer, const std::string& outDir,
                            const std::string& prefix, int64_t tokensPerShard);

}  // namespace attn::data
