// Just enough JSON to read Arena::DumpJson() back in the tests: objects,
// arrays, strings without escapes beyond \" and \\, non-negative and negative
// integers, true / false / null. Parse() returns false on anything else, so a
// malformed dump fails a test instead of being half-read.
//
// Threads: none shared; a Value is a plain tree.
#ifndef MMAP_POOL_TEST_JSON_MINI_H_
#define MMAP_POOL_TEST_JSON_MINI_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace json_mini {

struct Value {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  int64_t num = 0;
  std::string str;
  std::vector<Value> items;                          // kArray
  std::vector<std::pair<std::string, Value>> fields; // kObject, in order

  // The field `key` of an object, or nullptr.
  const Value* Get(const char* key) const {
    for (const auto& f : fields) {
      if (f.first == key) return &f.second;
    }
    return nullptr;
  }
  // The numeric field `key`, or `fallback` when absent / not a number.
  int64_t Num(const char* key, int64_t fallback = -1) const {
    const Value* v = Get(key);
    return v != nullptr && v->kind == kNumber ? v->num : fallback;
  }
  bool IsNull(const char* key) const {
    const Value* v = Get(key);
    return v != nullptr && v->kind == kNull;
  }
  std::string Str(const char* key) const {
    const Value* v = Get(key);
    return v != nullptr && v->kind == kString ? v->str : std::string();
  }
};

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}

  bool Parse(Value* out) {
    if (!ParseValue(out, 0)) return false;
    SkipSpace();
    return i_ == s_.size();
  }
  size_t error_at() const { return i_; }

 private:
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) i_++;
  }
  bool Eat(char c) {
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == c) {
      i_++;
      return true;
    }
    return false;
  }
  bool Literal(const char* word) {
    size_t n = strlen(word);
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }
  bool ParseString(std::string* out) {
    if (!Eat('"')) return false;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c == '\\') {
        if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\\')) return false;
        c = s_[i_++];
      }
      out->push_back(c);
    }
    return i_++ < s_.size();
  }
  bool ParseValue(Value* v, int depth) {
    if (depth > 32) return false;
    SkipSpace();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (c == '{') {
      i_++;
      v->kind = Value::kObject;
      if (Eat('}')) return true;
      do {
        std::pair<std::string, Value> f;
        if (!ParseString(&f.first) || !Eat(':') || !ParseValue(&f.second, depth + 1)) return false;
        v->fields.push_back(std::move(f));
      } while (Eat(','));
      return Eat('}');
    }
    if (c == '[') {
      i_++;
      v->kind = Value::kArray;
      if (Eat(']')) return true;
      do {
        v->items.emplace_back();
        if (!ParseValue(&v->items.back(), depth + 1)) return false;
      } while (Eat(','));
      return Eat(']');
    }
    if (c == '"') {
      v->kind = Value::kString;
      return ParseString(&v->str);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      bool neg = c == '-';
      if (neg) i_++;
      size_t start = i_;
      uint64_t n = 0;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        if (n > (UINT64_MAX - 9) / 10) return false;
        n = n * 10 + static_cast<uint64_t>(s_[i_++] - '0');
      }
      if (i_ == start || (s_[start] == '0' && i_ - start > 1)) return false;
      if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) return false;
      if (n > static_cast<uint64_t>(INT64_MAX)) return false;
      v->kind = Value::kNumber;
      v->num = neg ? -static_cast<int64_t>(n) : static_cast<int64_t>(n);
      return true;
    }
    if (Literal("null")) return true;
    if (Literal("true") || Literal("false")) {
      v->kind = Value::kBool;
      v->b = s_[i_ - 1] == 'e' && s_[i_ - 2] == 'u';
      return true;
    }
    return false;
  }

  const std::string& s_;
  size_t i_ = 0;
};

inline bool Parse(const std::string& text, Value* out, size_t* error_at = nullptr) {
  Parser p(text);
  bool ok = p.Parse(out);
  if (!ok && error_at != nullptr) *error_at = p.error_at();
  return ok;
}

}  // namespace json_mini

#endif  // MMAP_POOL_TEST_JSON_MINI_H_
