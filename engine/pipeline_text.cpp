// A pipeline definition as text: strict JSON (a key written twice is a
// problem, not silently the last one) and malformed JSON reported by line and
// column.
#include "engine/pipeline_internal.hpp"
#include "events/json_text.hpp"

#include <set>

namespace cascade::engine {

using nlohmann::json;
using namespace pipeline_internal;

namespace {

// Records keys written twice in one object: nlohmann keeps only the last, so
// without this a second "steps" would silently replace the first.
class DuplicateKeyFinder {
 public:
  explicit DuplicateKeyFinder(std::vector<Problem>& problems) : problems_(problems) {}

  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: frames_.push_back(Frame{true, {}, {}, 0}); break;
      case json::parse_event_t::array_start: frames_.push_back(Frame{false, {}, {}, 0}); break;
      case json::parse_event_t::key: {
        Frame& frame = frames_.back();
        frame.key = parsed.get<std::string>();
        if (!frame.keys.insert(frame.key).second) {
          problems_.push_back(Problem{current_path(), "duplicate field " + single_quoted(frame.key) +
                                                          " (only the last one would be kept)"});
        }
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        advance();
        break;
      case json::parse_event_t::value: advance(); break;
    }
    return true;
  }

 private:
  struct Frame {
    bool is_object;
    std::set<std::string> keys;
    std::string key;    // objects: the member being read
    std::size_t index;  // arrays: the element being read
  };

  void advance() {
    if (!frames_.empty() && !frames_.back().is_object) ++frames_.back().index;
  }

  std::string current_path() const {
    std::string path;
    for (const Frame& frame : frames_) {
      path = frame.is_object ? member_path(path, frame.key) : element_path(path, frame.index);
    }
    return path;
  }

  std::vector<Problem>& problems_;
  std::vector<Frame> frames_;
};

}  // namespace

Result<PipelineDefinition> parse_pipeline_text(std::string_view text) {
  std::vector<Problem> duplicate_keys;
  json document;
  try {
    document = json::parse(text.begin(), text.end(), DuplicateKeyFinder(duplicate_keys));
  } catch (const json::parse_error& error) {
    const events::TextPosition position = events::parse_error_position(text, error);
    std::string message = "malformed JSON at line " + std::to_string(position.line) + ", column " +
                          std::to_string(position.column) + ": " + events::parse_error_explanation(error);
    return make_error(ErrorCode::kInvalidArgument, message, {Problem{"", message}});
  }
  Result<PipelineDefinition> parsed = parse_pipeline(document);
  if (duplicate_keys.empty()) return parsed;

  // Duplicate keys come first: they may explain the problems that follow.
  std::vector<Problem> problems = std::move(duplicate_keys);
  if (parsed.has_error()) {
    const std::vector<Problem>& details = parsed.error().details;
    problems.insert(problems.end(), details.begin(), details.end());
  }
  return invalid_pipeline(document, std::move(problems));
}

}  // namespace cascade::engine
