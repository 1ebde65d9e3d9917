// How events and summaries look to a person at a terminal.
#pragma once

#include "adapters/http/api/event_json.hpp"
#include "engine/reactor.hpp"
#include "events/event.hpp"

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

namespace cascade::tools {

// "14:03:07.250" in UTC.
std::string clock_time(events::Timestamp at);
// "2026-11-28T14:03:07.250Z"; events as JSON, as the API shows them.
using adapters::http::api::event_from_json;
using adapters::http::api::event_json;
using adapters::http::api::iso_time;

// One line of a release timeline: "dev  step deploy succeeded (0.41 s)".
using adapters::http::api::describe;

// "  12  2026-11-28T14:03:07.250Z  alice   ApprovalGranted   prod approved by alice".
void print_event_line(std::ostream& out, const events::RecordedEvent& event);
// "14:03:07.250  SampleApp-1    dev deployed": one line of a live timeline.
void print_timeline_line(std::ostream& out, const events::RecordedEvent& event);
// One step log line ({"step", "at", "stream", "text"}); stderr lines marked "!".
void print_log_line(std::ostream& out, const nlohmann::json& line);

// "850ms", "12.5s", "12m 5s", "3h 12m", "2d 4h".
std::string duration_text(std::int64_t ms);
// Rows under a header, each column as wide as its widest cell.
void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

// The tables of the read-model commands, each from the JSON document that
// the command prints with --json (the same document offline and from the API).
void print_release_list(std::ostream& out, const nlohmann::json& page);           // {"releases", "next_cursor"}
void print_environments(std::ostream& out, const nlohmann::json& document,
                        const std::string& pipeline);                            // {"environments"}
void print_environment_history(std::ostream& out, const nlohmann::json& page);    // {"deployments", "next_cursor"}
void print_approvals(std::ostream& out, const nlohmann::json& inbox);             // {"user"|"group", "approvals"}
void print_pipeline_versions(std::ostream& out, const nlohmann::json& versions);  // {"pipeline", "versions"}
void print_pipelines(std::ostream& out, const nlohmann::json& pipelines);
void print_pipeline_diff(std::ostream& out, const nlohmann::json& diff);          // {"from", "to", "changes"}
void print_delivery_metrics(std::ostream& out, const nlohmann::json& metrics);    // {"pipeline", "from", "to", "stages"}

// One approval of a summary document in words: "approved by alice for
// release-managers", "approved by admin (admin override)", "closed by bob",
// "timed out by cascade/scheduler", "skipped".
std::string approval_text(const nlohmann::json& approval);
// The summary table of a release, from its summary document.
void print_summary(std::ostream& out, const nlohmann::json& summary);

// Prints each new event as a timeline line as it becomes durable. Starts at
// a position chosen by its creator and keeps no checkpoint.
class TimelinePrinter final : public engine::Reactor {
 public:
  TimelinePrinter(std::ostream& out, std::uint64_t after) : out_(out), after_(after) {}
  std::string name() const override { return "timeline"; }
  Result<std::uint64_t> resume_position() override { return after_; }
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

 private:
  std::ostream& out_;
  std::uint64_t after_;
};

}  // namespace cascade::tools
