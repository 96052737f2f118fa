// Strict checks of numeric command-line values, run on the text before CLI11 converts it:
// CLI11 alone accepts " 7", "0x10", a uint64 "-1" (wrapped to 2^64 - 1), an int64
// "99999999999999999999" and a double "nan" or "inf". Here a value is plain decimal (an
// optional '-', digits, and for real numbers a fraction and an exponent), nothing before or
// after it, finite, and inside the flag's range; anything else is a bad command line (exit 2)
// whose message names the flag and the range.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace attn::cli {

namespace detail {

inline bool plainInteger(const std::string& s) {
  size_t i = s.size() > 1 && s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

inline bool plainReal(const std::string& s) {
  // [-]digits[.digits][e[+-]digits] or [-].digits[...]: what strtod reads, less hex, inf, nan
  // and leading space.
  size_t i = 0, digits = 0;
  if (i < s.size() && s[i] == '-') ++i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exponent = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exponent;
    if (exponent == 0) return false;
  }
  return i == s.size();
}

inline std::string show(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

}  // namespace detail

/// A whole number in [lo, hi].
inline CLI::Validator integerIn(int64_t lo, int64_t hi) {
  const std::string range =
      "a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& value) -> std::string {
        if (!detail::plainInteger(value)) return "'" + value + "' is not " + range;
        errno = 0;
        const long long v = std::strtoll(value.c_str(), nullptr, 10);
        if (errno == ERANGE || v < lo || v > hi)
          return value + " is out of range: expected " + range;
        return "";
      },
      "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

/// Comma-separated whole numbers, each in [lo, hi] (empty items are errors).
inline CLI::Validator integerListIn(int64_t lo, int64_t hi) {
  const CLI::Validator one = integerIn(lo, hi);
  return CLI::Validator(
      [one, lo, hi](std::string& value) -> std::string {
        std::string item;
        size_t start = 0;
        for (;;) {
          const size_t comma = value.find(',', start);
          item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          if (item.empty()) return "'" + value + "' has an empty item: expected numbers from " + std::to_string(lo) +
                                   " to " + std::to_string(hi) + " separated by commas";
          if (std::string error = one(item); !error.empty()) return error;
          if (comma == std::string::npos) return "";
          start = comma + 1;
        }
      },
      "INT,INT,... in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

/// A finite real number x with lo <= x <= hi, or lo < x when loOpen (and x < hi when hiOpen).
inline CLI::Validator numberIn(double lo, double hi, bool loOpen = false, bool hiOpen = false) {
  const std::string range = std::string("a finite number ") + (loOpen ? "> " : ">= ") +
                            detail::show(lo) + (hiOpen ? " and < " : " and <= ") + detail::show(hi);
  return CLI::Validator(
      [=](std::string& value) -> std::string {
        if (!detail::plainReal(value)) return "'" + value + "' is not " + range;
        const double v = std::strtod(value.c_str(), nullptr);
        const bool ok =
            std::isfinite(v) && (loOpen ? v > lo : v >= lo) && (hiOpen ? v < hi : v <= hi);
        if (!ok) return value + " is out of range: expected " + range;
        return "";
      },
      std::string("NUMBER in ") + (loOpen ? "(" : "[") + detail::show(lo) + ", " +
          detail::show(hi) + (hiOpen ? ")" : "]"));
}

}  // namespace attn::cli
