// support/: the atomic writer (links planted at every name it could use, a directory or a
// FIFO in the way, a failing write leaving the previous file byte-identical, permission
// bits kept), the capped reader (a FIFO, /dev/zero, a directory, a link, a file over the
// cap: an error at once, never a hang), the hashes against published values, manifests,
// the shell-free subprocess runner.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "TestUtil.h"
#include "support/AtomicWrite.h"
#include "support/CacheRoot.h"
#include "support/ContentHash.h"
#include "support/FileError.h"
#include "support/Manifest.h"
#include "support/ReadFile.h"
#include "support/Subprocess.h"

namespace fs = std::filesystem;
using namespace attn;
using attn::support::FileError;

namespace {

std::string freshDir(const std::string& name) {
  const std::string dir = test::tempDir() + "/support-" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void writePlain(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string errorOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const FileError& e) {
    return e.what();
  }
  return "(no error)";
}

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

mode_t modeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_SUITE("support") {
  TEST_CASE(
      "atomic write: new file, replacement, pieces, empty file; nothing else left in the "
      "directory") {
    const std::string dir = freshDir("basic");
    const std::string path = dir + "/out.bin";
    support::writeFileAtomically(path, std::string("first"));
    CHECK(test::readFile(path) == "first");
    const std::string a = "abc", b(100000, 'z');
    support::writeFileAtomically(path, {{a.data(), a.size()}, {b.data(), b.size()}});
    CHECK(test::readFile(path) == a + b);
    support::writeFileAtomically(path, std::string());
    CHECK(test::readFile(path).empty());
    CHECK(fs::exists(path));
    CHECK(listing(dir) == std::vector<std::string>{"out.bin"});
  }

  TEST_CASE(
      "atomic write: the replaced file's permission bits are kept; a new file gets 0666 less the "
      "umask") {
    const std::string dir = freshDir("mode");
    const std::string path = dir + "/script.attn";
    writePlain(path, "old");
    ::chmod(path.c_str(), 0751);
    support::writeFileAtomically(path, std::string("new"));
    CHECK(test::readFile(path) == "new");
    CHECK(modeOf(path) == 0751);
    ::chmod(path.c_str(), 0600);
    support::writeFileAtomically(path, std::string("newer"));
    CHECK(modeOf(path) == 0600);

    const mode_t mask = ::umask(022);
    ::umask(mask);
    support::writeFileAtomically(dir + "/fresh", std::string("x"));
    CHECK(modeOf(dir + "/fresh") == (0666 & ~mask));
  }

  TEST_CASE("atomic write: links planted at every temporary name it tries are never followed") {
    const std::string dir = freshDir("planted");
    const std::string victim = dir + "/victim";
    writePlain(victim, "precious");
    const std::string path = dir + "/o.npy";
    // The old fixed names, and the next 40 names of this process's counter: each is a link
    // to the victim. The writer must skip every one (O_EXCL | O_NOFOLLOW) and still succeed.
    std::vector<std::string> planted = {path + ".tmp", path + ".attn-fmt.tmp", path + ".dat"};
    // Where this process's counter is: a write that cannot create its temporary file names it.
    const std::string probe =
        errorOf([&] { support::writeFileAtomically(dir + "/no/such/dir/x", std::string("p")); });
    const size_t at = probe.find(".tmp." + std::to_string(::getpid()) + ".");
    REQUIRE(at != std::string::npos);
    const long next = std::stol(probe.substr(at + 6 + std::to_string(::getpid()).size())) + 1;
    for (long n = next; n < next + 60; ++n)
      planted.push_back(path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(n));
    for (const std::string& link : planted) REQUIRE(::symlink(victim.c_str(), link.c_str()) == 0);
    support::writeFileAtomically(path, std::string("result"));
    CHECK(test::readFile(path) == "result");
    CHECK(test::readFile(victim) == "precious");
    for (const std::string& link : planted) {
      struct stat st {};
      REQUIRE(::lstat(link.c_str(), &st) == 0);
      CHECK(S_ISLNK(st.st_mode));
    }
  }

  TEST_CASE(
      "atomic write: a link at the target is refused, replaced or written through, as asked") {
    const std::string dir = freshDir("links");
    const std::string victim = dir + "/victim";
    writePlain(victim, "precious");
    ::chmod(victim.c_str(), 0640);
    const std::string link = dir + "/out";
    REQUIRE(::symlink("victim", link.c_str()) == 0);

    const std::string refused =
        errorOf([&] { support::writeFileAtomically(link, std::string("x")); });
    CHECK(
        refused ==
        link +
            ": is a symbolic link; attn does not write through links here (remove it, or give the "
            "path of the file it names)");
    CHECK(test::readFile(victim) == "precious");
    CHECK(fs::is_symlink(link));

    support::WriteOptions through;
    through.links = support::LinkPolicy::WriteThrough;
    support::writeFileAtomically(link, std::string("formatted"), through);
    CHECK(fs::is_symlink(link));
    CHECK(test::readFile(victim) == "formatted");
    CHECK(modeOf(victim) == 0640);
    CHECK(listing(dir) == std::vector<std::string>{"out", "victim"});

    support::WriteOptions replace;
    replace.links = support::LinkPolicy::Replace;
    support::writeFileAtomically(link, std::string("entry"), replace);
    CHECK_FALSE(fs::is_symlink(link));
    CHECK(test::readFile(link) == "entry");
    CHECK(test::readFile(victim) == "formatted");

    const std::string dangling = dir + "/dangling";
    REQUIRE(::symlink("nowhere/at/all", dangling.c_str()) == 0);
    CHECK(errorOf([&] {
            support::writeFileAtomically(dangling, std::string("x"), through);
          }).rfind(dangling + ": is a symbolic link that cannot be followed: ", 0) == 0);
  }

  TEST_CASE(
      "atomic write: a directory, a FIFO or a device at the target is refused; a missing directory "
      "named") {
    const std::string dir = freshDir("kinds");
    fs::create_directories(dir + "/sub/inner");
    CHECK(errorOf([&] { support::writeFileAtomically(dir + "/sub", std::string("x")); }) ==
          dir + "/sub: is a directory; expected a file to write");
    REQUIRE(::mkfifo((dir + "/fifo").c_str(), 0600) == 0);
    CHECK(errorOf([&] {
            support::writeFileAtomically(dir + "/fifo", std::string("x"));
          }).find("is not a regular file") != std::string::npos);
    CHECK(errorOf([&] {
            support::writeFileAtomically("/dev/null", std::string("x"));
          }).find("/dev/null: is not a regular file") == 0);
    const std::string missing = dir + "/no/such/out";
    const std::string message =
        errorOf([&] { support::writeFileAtomically(missing, std::string("x")); });
    CHECK(message.rfind(missing + ": cannot create the temporary file " + missing + ".tmp.", 0) ==
          0);
    CHECK(
        message.find("No such file or directory (does the directory exist, and is it writable?)") !=
        std::string::npos);
    CHECK(listing(dir) == std::vector<std::string>{"fifo", "sub"});
  }

  TEST_CASE(
      "atomic write: a write that fails half-way leaves the previous file byte-identical, no "
      "temporary") {
    const std::string dir = freshDir("failing");
    const std::string path = dir + "/big.bin";
    std::string previous(5000, 'p');
    for (size_t i = 0; i < previous.size(); ++i) previous[i] = static_cast<char>(i * 7);
    support::writeFileAtomically(path, previous);
    // RLIMIT_FSIZE with SIGXFSZ ignored: write() returns EFBIG after 8 KiB, as a full disk
    // returns ENOSPC (the faults suite injects ENOSPC itself into the CLI).
    struct rlimit old {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    struct sigaction ignore {
    }, before{};
    ignore.sa_handler = SIG_IGN;
    REQUIRE(::sigaction(SIGXFSZ, &ignore, &before) == 0);
    struct rlimit small = old;
    small.rlim_cur = 8192;
    const bool limited = ::setrlimit(RLIMIT_FSIZE, &small) == 0;
    const std::string message =
        errorOf([&] { support::writeFileAtomically(path, std::string(100000, 'n')); });
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::sigaction(SIGXFSZ, &before, nullptr);
    REQUIRE(limited);
    CHECK(message.rfind(path + ": cannot write " + path + ".tmp.", 0) == 0);
    CHECK(message.find("File too large (the previous file is untouched)") != std::string::npos);
    CHECK(test::readFile(path) == previous);
    CHECK(listing(dir) == std::vector<std::string>{"big.bin"});
  }

  TEST_CASE("makeDirectories: parents made, existing ones fine, a file in the way named") {
    const std::string dir = freshDir("mkdir");
    support::makeDirectories(dir + "/a/b/c");
    CHECK(fs::is_directory(dir + "/a/b/c"));
    support::makeDirectories(dir + "/a/b/c");
    support::makeDirectories(dir + "/a/b/c/");
    writePlain(dir + "/file", "x");
    CHECK(errorOf([&] { support::makeDirectories(dir + "/file/d"); }) ==
          dir + "/file: exists and is not a directory");
  }

  TEST_CASE(
      "readRegularFile: contents; missing, directory, FIFO, /dev/zero, link, over the cap: errors "
      "at once") {
    const std::string dir = freshDir("read");
    const std::string path = dir + "/f";
    std::string bytes(70000, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 31 + 1);
    writePlain(path, bytes);
    CHECK(support::readRegularFile(path, 70000) == bytes);
    CHECK(support::readRegularFile(path, 1 << 20) == bytes);
    CHECK(errorOf([&] { support::readRegularFile(path, 69999); }) ==
          path + ": is 70000 bytes, more than the 69999 bytes a file may have");
    CHECK_FALSE(support::readRegularFileIfPresent(dir + "/missing", 10));
    CHECK_FALSE(support::readRegularFileIfPresent(dir + "/missing/deeper", 10));
    CHECK(errorOf([&] { support::readRegularFile(dir + "/missing", 10); }) ==
          dir + "/missing: cannot open: No such file or directory");

    support::ReadOptions entry;
    entry.what = "a cache entry";
    CHECK(errorOf([&] { support::readRegularFile(dir, 10, entry); }) ==
          dir + ": is a directory (expected a cache entry)");
    REQUIRE(::mkfifo((dir + "/fifo").c_str(), 0600) == 0);
    const auto start = std::chrono::steady_clock::now();
    CHECK(errorOf([&] { support::readRegularFile(dir + "/fifo", 10, entry); }) ==
          dir + "/fifo: is a FIFO (expected a cache entry, a regular file)");
    CHECK(errorOf([&] { support::readRegularFile("/dev/zero", 1 << 20, entry); }) ==
          "/dev/zero: is a character device (expected a cache entry, a regular file)");
    CHECK(std::chrono::steady_clock::now() - start <
          std::chrono::seconds(5));  // no waiting for a writer

    REQUIRE(::symlink(path.c_str(), (dir + "/link").c_str()) == 0);
    CHECK(support::readRegularFile(dir + "/link", 1 << 20) == bytes);
    entry.followLinks = false;
    CHECK(
        errorOf([&] { support::readRegularFile(dir + "/link", 1 << 20, entry); }) ==
        dir +
            "/link: is a symbolic link (expected a cache entry, which attn never makes as a link)");
    REQUIRE(::symlink("/dev/zero", (dir + "/zero").c_str()) == 0);
    CHECK(errorOf([&] { support::readRegularFile(dir + "/zero", 1 << 20); }) ==
          dir + "/zero: is a character device (expected a file, a regular file)");
  }

  TEST_CASE("hashes: FNV-1a 64 and XXH64 against their published values") {
    // FNV-1a 64: the offset basis for "", and the reference values for "a" and "foobar".
    CHECK(support::fnv1a64("") == 0xcbf29ce484222325ULL);
    CHECK(support::fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
    CHECK(support::fnv1a64("foobar") == 0x85944171f73967e8ULL);
    CHECK(support::hashHex("a") == "af63dc4c8601ec8c");
    CHECK(support::fnv1a64("bar", support::fnv1a64("foo")) == support::fnv1a64("foobar"));
    // XXH64 with seed 0: the values in xxHash's own test vectors.
    CHECK(support::checksum64("") == 0xef46db3751d8e999ULL);
    CHECK(support::checksumHex("abc") == "44bc2cf5ad770999");
    CHECK(support::hex16(0xabc) == "0000000000000abc");
  }

  TEST_CASE("manifest: round trip; a flipped byte, a truncation, a damaged line are named") {
    const std::string model(3000, 'm'), state = "{\"step\": 3}\n";
    const std::vector<support::ManifestEntry> entries = {
        support::manifestEntry("model.pt", model), support::manifestEntry("state.json", state)};
    const std::string text = support::formatManifest(entries);
    CHECK(text.rfind("attn-manifest 1\n", 0) == 0);
    const auto parsed = support::parseManifest("DIR/MANIFEST", text);
    REQUIRE(parsed.size() == 2);
    CHECK(parsed[0].name == "model.pt");
    CHECK(parsed[0].bytes == 3000);
    CHECK(parsed[1].checksum == support::checksum64(state));
    REQUIRE(support::findEntry(parsed, "model.pt"));
    CHECK_FALSE(support::findEntry(parsed, "optimizer.pt"));
    CHECK_NOTHROW(support::checkAgainstManifest("DIR/model.pt", parsed[0], model));
    std::string flipped = model;
    flipped[1234] ^= 0x10;
    CHECK(errorOf([&] {
            support::checkAgainstManifest("DIR/model.pt", parsed[0], flipped);
          }).rfind("DIR/model.pt: is damaged: its checksum is ", 0) == 0);
    CHECK(errorOf([&] {
            support::checkAgainstManifest("DIR/model.pt", parsed[0], model.substr(0, 100));
          }) == "DIR/model.pt: is damaged: it has 100 bytes, its manifest records 3000");
    CHECK(errorOf([&] {
            support::parseManifest("DIR/MANIFEST", "hello\n");
          }).rfind("DIR/MANIFEST: is not an attn manifest", 0) == 0);
    std::string bad = text;
    bad[20] = 'Z';
    CHECK(errorOf([&] { support::parseManifest("DIR/MANIFEST", bad); }) ==
          "DIR/MANIFEST: line 2 is not '<checksum> <size> <name>': the manifest is damaged");
  }

  TEST_CASE(
      "subprocess: argv without a shell, stdin in, stdout and exit status out, a deadline, a "
      "missing program") {
    const std::string dir = freshDir("subprocess");
    // An argument full of shell syntax reaches the program as one plain argument.
    const std::string nasty =
        "$(touch " + dir + "/F1) `touch " + dir + "/F2`; touch " + dir + "/F3 'x";
    support::SubprocessResult r = support::runSubprocess({"printf", "%s|", nasty}, "");
    REQUIRE(r.started);
    CHECK(r.exitStatus == 0);
    CHECK(r.out == nasty + "|");
    CHECK(listing(dir).empty());

    std::string big(300000, 'q');
    r = support::runSubprocess({"cat"}, big);  // more than a pipe holds, both ways at once
    CHECK(r.exitStatus == 0);
    CHECK(r.out == big);

    r = support::runSubprocess({"sh", "-c", "echo oops >&2; exit 7"}, "");
    CHECK(r.exitStatus == 7);
    CHECK(r.err == "oops\n");

    support::SubprocessOptions quick;
    quick.timeoutSeconds = 0.3;
    const auto start = std::chrono::steady_clock::now();
    r = support::runSubprocess({"sleep", "30"}, "", quick);
    CHECK(r.timedOut);
    CHECK(r.exitStatus == -1);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));

    // A program that exits without reading its input: EPIPE for us, not SIGPIPE.
    r = support::runSubprocess({"true"}, std::string(1 << 20, 'x'));
    CHECK(r.exitStatus == 0);

    support::SubprocessOptions capped;
    capped.outCap = 1000;
    r = support::runSubprocess({"cat"}, std::string(5000, 'y'), capped);
    CHECK(r.outputTooLarge);
    CHECK(r.out.size() == 1000);

    r = support::runSubprocess({"attn-no-such-program-here"}, "");
    CHECK_FALSE(r.started);
    CHECK(r.startError == "No such file or directory");
  }

  TEST_CASE(
      "the cache root: ATTN_CACHE_DIR, XDG_CACHE_HOME, HOME, then a per-user directory in /tmp") {
    struct Saved {
      std::string name;
      std::optional<std::string> value;
      explicit Saved(std::string n) : name(std::move(n)) {
        if (const char* v = std::getenv(name.c_str())) value = v;
      }
      ~Saved() {
        if (value)
          ::setenv(name.c_str(), value->c_str(), 1);
        else
          ::unsetenv(name.c_str());
      }
    } cache("ATTN_CACHE_DIR"), xdg("XDG_CACHE_HOME"), home("HOME");
    ::setenv("ATTN_CACHE_DIR", "/c", 1);
    CHECK(support::cacheDirectory() == "/c");
    ::unsetenv("ATTN_CACHE_DIR");
    ::setenv("XDG_CACHE_HOME", "/x", 1);
    CHECK(support::cacheDirectory() == "/x/attn");
    ::unsetenv("XDG_CACHE_HOME");
    ::setenv("HOME", "/h", 1);
    CHECK(support::cacheDirectory() == "/h/.cache/attn");
    ::unsetenv("HOME");
    CHECK(support::cacheDirectory() == "/tmp/attn-cache-" + std::to_string(::getuid()));
  }
}
