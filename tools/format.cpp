#include "tools/format.hpp"

#include "events/codec.hpp"
#include "events/overloaded.hpp"
#include "events/time.hpp"

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace cascade::tools {

using namespace cascade::events;

std::string clock_time(Timestamp at) { return format_time_of_day(at); }

void print_event_line(std::ostream& out, const RecordedEvent& event) {
  out << std::right << std::setw(4) << event.version << "  " << iso_time(event.recorded_at) << "  " << std::left
      << std::setw(22) << event.actor << std::setw(20) << type_name(event.data) << describe(event) << "\n";
}

void print_timeline_line(std::ostream& out, const RecordedEvent& event) {
  out << clock_time(event.recorded_at) << "  " << std::left << std::setw(14) << event.correlation_id << " "
      << describe(event) << "\n";
}

void print_log_line(std::ostream& out, const nlohmann::json& line) {
  out << clock_time(line.value("at", Timestamp{0})) << "  " << std::left << std::setw(20) << line.value("step", "")
      << (line.value("stream", "") == "stderr" ? "! " : "  ") << line.value("text", "") << "\n";
}

std::string duration_text(std::int64_t ms) {
  constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;
  std::ostringstream out;
  if (ms < 0) return "-" + duration_text(-ms);
  if (ms < 1000) {
    out << ms << "ms";
  } else if (ms < 60'000) {
    out << std::fixed << std::setprecision(1) << static_cast<double>(ms) / 1000 << "s";
  } else if (ms < 3'600'000) {
    out << ms / 60'000 << "m " << (ms / 1000) % 60 << "s";
  } else if (ms < kDayMs) {
    out << ms / 3'600'000 << "h " << (ms / 60'000) % 60 << "m";
  } else {
    out << ms / kDayMs << "d " << (ms / 3'600'000) % 24 << "h";
  }
  return out.str();
}

void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i + 1 == cells.size()) {
        out << cells[i];
      } else {
        out << std::left << std::setw(static_cast<int>(widths[i] + 2)) << cells[i];
      }
    }
    out << "\n";
  };
  line(header);
  for (const auto& row : rows) line(row);
}

namespace {

using nlohmann::json;

std::string optional_duration(const json& value) { return value.is_null() ? "-" : duration_text(value.get<std::int64_t>()); }

void print_next_page(std::ostream& out, const json& cursor) {
  if (cursor.is_string()) out << "more: --cursor " << cursor.get<std::string>() << "\n";
}

}  // namespace

void print_release_list(std::ostream& out, const json& page) {
  std::vector<std::vector<std::string>> rows;
  for (const json& release : page["releases"]) {
    rows.push_back({release["id"], release["name"], release["pipeline"], release["artifact"]["version"],
                    release.contains("status") ? release["status"].get<std::string>() : "-",
                    iso_time(release["created_at"].get<Timestamp>())});
  }
  print_table(out, {"RELEASE", "NAME", "PIPELINE", "ARTIFACT", "STATUS", "CREATED"}, rows);
  print_next_page(out, page.value("next_cursor", json(nullptr)));
}

void print_environments(std::ostream& out, const json& document, const std::string& pipeline) {
  const json& environments = document["environments"];
  if (environments.empty()) {
    out << "nothing was deployed" << (pipeline.empty() ? "" : " by pipeline " + pipeline) << " yet\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& environment : environments) {
    const json& current = environment["current"];
    const json& last = environment["last"];
    rows.push_back({environment["pipeline"], environment["stage"],
                    current.is_null() ? "-" : current["release"].get<std::string>(),
                    current.is_null() ? "-" : current["artifact_version"].get<std::string>(),
                    current.is_null() ? "-" : iso_time(current["deployed_at"].get<Timestamp>()),
                    current.is_null() ? "-" : current["trigger_reason"].get<std::string>(),
                    last["outcome"].get<std::string>() + " (" + last["release"].get<std::string>() + ")"});
  }
  print_table(out, {"PIPELINE", "STAGE", "RELEASE", "ARTIFACT", "DEPLOYED", "TRIGGER", "LAST"}, rows);
}

void print_environment_history(std::ostream& out, const json& page) {
  std::vector<std::vector<std::string>> rows;
  for (const json& d : page["deployments"]) {
    std::string outcome = d["outcome"];
    if (!d["reason"].get<std::string>().empty()) outcome += ": " + d["reason"].get<std::string>();
    rows.push_back({iso_time(d["finished_at"].get<Timestamp>()), d["release"], d["artifact_version"],
                    std::to_string(d["attempt"].get<int>()), d["trigger_reason"], outcome});
  }
  print_table(out, {"FINISHED", "RELEASE", "ARTIFACT", "ATTEMPT", "TRIGGER", "OUTCOME"}, rows);
  print_next_page(out, page.value("next_cursor", json(nullptr)));
}

void print_approvals(std::ostream& out, const json& inbox) {
  const bool all = inbox.value("all", false);
  if (inbox["approvals"].empty()) {
    if (all) {
      out << "no approvals are pending\n";
      return;
    }
    out << "no approvals wait for "
        << (inbox.contains("group") ? "group " + inbox["group"].get<std::string>() : inbox.value("user", std::string()))
        << "\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& item : inbox["approvals"]) {
    // An inbox says as whom the reader is listed; every pending approval, whom it waits for.
    std::string entries;
    for (const auto& entry : item[all ? "approvers" : "via"]) entries += (entries.empty() ? "" : ", ") + entry.get<std::string>();
    rows.push_back({iso_time(item["deadline"].get<Timestamp>()), item["release"], item["stage"], item["phase"],
                    std::to_string(item["approved"].get<int>()) + "/" + std::to_string(item["required"].get<int>()),
                    item["order"], entries});
  }
  print_table(out, {"DEADLINE", "RELEASE", "STAGE", "PHASE", "APPROVED", "ORDER", all ? "APPROVERS" : "AS"}, rows);
}

void print_pipeline_versions(std::ostream& out, const json& versions) {
  std::vector<std::vector<std::string>> rows;
  for (const json& version : versions["versions"]) {
    std::string releases;
    for (const json& id : version["releases"]) releases += (releases.empty() ? "" : ", ") + id.get<std::string>();
    rows.push_back({std::to_string(version["version"].get<std::int64_t>()),
                    iso_time(version["defined_at"].get<Timestamp>()), version["actor"],
                    releases.empty() ? "-" : releases});
  }
  print_table(out, {"VERSION", "DEFINED", "BY", "RELEASES"}, rows);
}

void print_pipelines(std::ostream& out, const json& pipelines) {
  std::vector<std::vector<std::string>> rows;
  for (const json& p : pipelines["pipelines"]) {
    rows.push_back({p["name"], std::to_string(p["version"].get<std::int64_t>()),
                    iso_time(p["defined_at"].get<Timestamp>()), p["actor"]});
  }
  print_table(out, {"PIPELINE", "VERSION", "DEFINED (UTC)", "BY"}, rows);
}

void print_pipeline_diff(std::ostream& out, const json& diff) {
  if (diff["changes"].empty()) out << "versions " << diff["from"] << " and " << diff["to"] << " are the same\n";
  for (const json& change : diff["changes"]) {
    const std::string op = change["op"];
    // Stages and steps by name (stages[prod].steps[deploy].run), not index.
    const std::string where = change.value("where", "");
    out << std::left << std::setw(9) << op << (where.empty() ? change["path"].get<std::string>() : where);
    if (op == "remove") out << "  (was " << change["from"].dump() << ")";
    if (op == "add") out << "  = " << change["to"].dump();
    if (op == "replace") out << "  " << change["from"].dump() << " → " << change["to"].dump();
    out << "\n";
  }
}

void print_delivery_metrics(std::ostream& out, const json& metrics) {
  out << "pipeline " << metrics["pipeline"].get<std::string>() << ", " << iso_time(metrics["from"].get<Timestamp>())
      << " to " << iso_time(metrics["to"].get<Timestamp>()) << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const json& m : metrics["stages"]) {
    std::ostringstream per_day, rate;
    per_day << std::fixed << std::setprecision(2) << m["deployment_frequency"]["per_day"].get<double>();
    const json& failures = m["change_failure_rate"];
    if (!failures["rate"].is_null()) {
      rate << std::fixed << std::setprecision(1) << failures["rate"].get<double>() * 100 << "% ("
           << failures["failed"].get<std::int64_t>() << "/"
           << failures["failed"].get<std::int64_t>() + failures["succeeded"].get<std::int64_t>() << ")";
    } else {
      rate << "-";
    }
    rows.push_back({m["stage"], std::to_string(m["deployment_frequency"]["deployments"].get<std::int64_t>()),
                    per_day.str(), optional_duration(m["lead_time_ms"]["median"]),
                    optional_duration(m["lead_time_ms"]["p90"]), rate.str(),
                    optional_duration(m["time_to_restore_ms"]["median"]),
                    std::to_string(m["time_to_restore_ms"]["unrestored"].get<std::int64_t>())});
  }
  print_table(out,
              {"STAGE", "DEPLOYS", "PER DAY", "LEAD TIME (MEDIAN)", "LEAD TIME (P90)", "FAILURE RATE",
               "TIME TO RESTORE (MEDIAN)", "UNRESTORED"},
              rows);
}

std::string approval_text(const nlohmann::json& approval) {
  std::string text = approval.value("decision", std::string());
  const std::string approver = approval.value("approver", std::string());
  if (!approver.empty()) text += " by " + approver;  // skipped approvals have none
  if (approval.value("override", false)) text += " (admin override)";
  const std::string on_behalf_of = approval.value("on_behalf_of", std::string());
  if (!on_behalf_of.empty() && on_behalf_of != approver) text += " for " + on_behalf_of;
  return text;
}

void print_summary(std::ostream& out, const nlohmann::json& summary) {
  out << "Release " << summary["id"].get<std::string>() << "  (" << summary["pipeline"].get<std::string>() << " v"
      << summary["pipeline_version"].get<std::int64_t>() << ", artifact "
      << summary["artifact"]["version"].get<std::string>() << ")  status: " << summary["status"].get<std::string>()
      << "\n";
  if (summary.value("abandoned", false)) {
    const std::string by = summary.value("abandoned_by", std::string());
    out << "abandoned" << (by.empty() ? "" : " by " + by) << ": " << summary.value("abandon_reason", std::string())
        << "\n";
  }
  out << std::left << std::setw(8) << "STAGE" << std::setw(21) << "STATUS" << std::setw(8) << "ATTEMPT"
      << std::setw(26) << "STARTED (UTC)" << std::setw(26) << "FINISHED (UTC)" << std::setw(10) << "STEPS"
      << "DETAILS\n";
  for (const auto& stage : summary["stages"]) {
    std::size_t done = 0;
    for (const auto& step : stage["steps"]) done += step["status"] == "Succeeded" ? 1 : 0;
    std::string details = stage["trigger_reason"].get<std::string>();
    for (const auto& approval : stage["approvals"]) details += "; " + approval_text(approval);
    const std::string reason = stage["failure_reason"].get<std::string>();
    if (!reason.empty()) details += "; " + reason;
    // Who canceled, unless the reason already says it ("canceled by alice").
    const std::string canceled_by = stage.value("canceled_by", std::string());
    if (!canceled_by.empty() && reason.find(" by " + canceled_by) == std::string::npos) {
      details += " (by " + canceled_by + ")";
    }
    auto when = [](const nlohmann::json& at) {
      // With the date: a release may wait days for its approval.
      return at.get<Timestamp>() == 0 ? std::string("-") : iso_time(at.get<Timestamp>());
    };
    out << std::left << std::setw(8) << stage["name"].get<std::string>() << std::setw(21)
        << stage["status"].get<std::string>() << std::setw(8) << stage["attempt"].get<int>() << std::setw(26)
        << when(stage["started_at"]) << std::setw(26) << when(stage["finished_at"]) << std::setw(10)
        << (std::to_string(done) + "/" + std::to_string(stage["steps"].size())) << details << "\n";
  }
}

Status TimelinePrinter::handle(const std::vector<RecordedEvent>& batch) {
  for (const RecordedEvent& event : batch) print_timeline_line(out_, event);
  out_.flush();
  return success();
}

}  // namespace cascade::tools
