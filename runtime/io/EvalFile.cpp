#include "runtime/io/EvalFile.h"

#include "support/FileError.h"
#include "support/ReadFile.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace attn::io {

namespace {

using nlohmann::json;

// "16x" -> 16, or a negative number.
double multipleOf(const std::string& spec) {
  if (spec.size() < 2 || spec.back() != 'x') return -1;
  for (size_t i = 0; i + 1 < spec.size(); ++i)
    if (spec[i] < '0' || spec[i] > '9') return -1;
  const double m = std::atof(spec.c_str());
  return m > 0 ? m : -1;
}

}  // namespace

EvalFile readEvalFile(const std::string& path) {
  // An eval JSON is at most a few MB (per-position losses); a directory, FIFO or device is
  // refused, a huge file capped.
  std::string text;
  try {
    support::ReadOptions read;
    read.what = "an attn eval JSON file";
    text = support::readRegularFile(path, uint64_t(64) << 20, read);
  } catch (const support::FileError& e) {
    throw EvalFileError(e.what());
  }
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw EvalFileError(path + ": not an attn eval JSON file: " + e.what());
  }
  if (!j.is_object()) throw EvalFileError(path + ": not an attn eval JSON file: not a JSON object");
  EvalFile file;
  if (!j.contains("format")) {  // version 1
    for (auto it = j.begin(); it != j.end(); ++it) {
      const double m = multipleOf(it.key());
      if (m <= 0 || !it.value().is_number())
        throw EvalFileError(path + ": entry '" + it.key() + "' is not like \"4x\": loss");
      file.points.push_back({it.key(), m, it.value().get<double>(), 0, {}});
    }
    return file;
  }
  if (j["format"] != "attn-eval" || !j.contains("version") || !j["version"].is_number_integer() ||
      j["version"].get<int>() != 2 || !j.contains("lengths") || !j["lengths"].is_array())
    throw EvalFileError(path + ": not an attn-eval file of version 2 (format, version, lengths)");
  file.version = 2;
  if (j.contains("protocol") && j["protocol"].is_string()) file.protocol = j["protocol"].get<std::string>();
  for (const json& l : j["lengths"]) {
    const std::string where = path + ": a \"lengths\" entry";
    if (!l.is_object() || !l.contains("length") || !l["length"].is_string() || !l.contains("loss") ||
        !l["loss"].is_number())
      throw EvalFileError(where + " lacks \"length\" (like \"4x\") or a numeric \"loss\"");
    EvalPoint p;
    p.spec = l["length"].get<std::string>();
    p.multiple = multipleOf(p.spec);
    if (p.multiple <= 0) throw EvalFileError(where + " has length '" + p.spec + "', not like \"4x\"");
    p.loss = l["loss"].get<double>();
    if (l.contains("per_position")) {
      const json& pp = l["per_position"];
      if (!pp.is_object() || !pp.contains("bucket") || !pp["bucket"].is_number_integer() ||
          pp["bucket"].get<int64_t>() < 1 || !pp.contains("loss") || !pp["loss"].is_array())
        throw EvalFileError(where + " (" + p.spec + ") has a malformed \"per_position\"");
      p.bucket = pp["bucket"].get<int64_t>();
      for (const json& v : pp["loss"]) {
        if (v.is_null()) p.positionLoss.push_back(std::nan(""));
        else if (v.is_number()) p.positionLoss.push_back(v.get<double>());
        else throw EvalFileError(where + " (" + p.spec + "): per_position losses must be numbers");
      }
    }
    file.points.push_back(std::move(p));
  }
  return file;
}

LossCurve lengthCurve(const EvalFile& file, const std::string& label) {
  LossCurve c{label, {}};
  for (const EvalPoint& p : file.points) c.points[p.multiple] = p.loss;
  return c;
}

std::vector<LossCurve> positionCurves(const EvalFile& file, const std::string& label) {
  std::vector<LossCurve> out;
  for (const EvalPoint& p : file.points) {
    if (p.positionLoss.empty()) continue;
    LossCurve c{label + " " + p.spec, {}};
    for (size_t b = 0; b < p.positionLoss.size(); ++b)
      if (std::isfinite(p.positionLoss[b]))
        c.points[(static_cast<double>(b) + 0.5) * static_cast<double>(p.bucket)] = p.positionLoss[b];
    out.push_back(std::move(c));
  }
  if (out.empty())
    throw EvalFileError(label + ": no loss by position in this file (make it with attn eval --per-position B)");
  return out;
}

}  // namespace attn::io
