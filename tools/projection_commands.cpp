// The read-model commands: release list, environments, approvals, pipeline
// versions and diffs, delivery metrics, and the projections' own status and
// rebuild. Each opens a Session, lets the engine settle (so the read models
// have caught up with the log), queries one projection and prints a table,
// or JSON with --json.
#include "tools/cli_support.hpp"

#include <ctime>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

namespace cascade::tools {
namespace {

using nlohmann::json;

constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;

// "850ms", "12.5s", "12m 5s", "3h 12m", "2d 4h".
std::string duration_text(std::int64_t ms) {
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

std::string optional_duration(const json& value) { return value.is_null() ? "-" : duration_text(value.get<std::int64_t>()); }

// Prints rows under a header, each column as wide as its widest cell.
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

// Opens the data directory, runs the engine until it settles, then answers.
template <class Query>
int settled_query(const Common& common, Query query) {
  auto session = Session::start(common);
  if (!session) return report(session.error(), common.json);
  Runtime& runtime = session.value()->runtime();
  runtime.settle();
  return query(runtime);
}

json cursor_json(const std::optional<std::string>& cursor) { return cursor ? json(*cursor) : json(nullptr); }

void print_next_page(const std::optional<std::string>& cursor) {
  if (cursor) std::cout << "more: --cursor " << *cursor << "\n";
}

// ---- release list -----------------------------------------------------------

struct ListOptions {
  std::string pipeline;
  std::string status;
  std::size_t limit = projections::ReleaseQuery::kDefaultLimit;
  std::string cursor;
};

int list_releases(const Common& common, const ListOptions& options) {
  return settled_query(common, [&](Runtime& runtime) {
    projections::ReleaseQuery query{options.pipeline, options.status, options.limit, options.cursor};
    auto page = runtime.projections().releases().list(query);
    if (!page) return report(page.error(), common.json);
    if (common.json) {
      std::cout << json{{"releases", page.value().releases}, {"next_cursor", cursor_json(page.value().next_cursor)}}.dump(2)
                << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const json& release : page.value().releases) {
      rows.push_back({release["id"], release["name"], release["pipeline"], release["artifact"]["version"],
                      release.contains("status") ? release["status"].get<std::string>() : "-",
                      iso_time(release["created_at"].get<events::Timestamp>())});
    }
    print_table(std::cout, {"RELEASE", "NAME", "PIPELINE", "ARTIFACT", "STATUS", "CREATED"}, rows);
    print_next_page(page.value().next_cursor);
    return 0;
  });
}

// ---- environments -------------------------------------------------------------

int list_environments(const Common& common, const std::string& pipeline) {
  return settled_query(common, [&](Runtime& runtime) {
    auto environments = runtime.projections().environments().environments(pipeline);
    if (!environments) return report(environments.error(), common.json);
    if (common.json) {
      std::cout << json{{"environments", environments.value()}}.dump(2) << "\n";
      return 0;
    }
    if (environments.value().empty()) {
      std::cout << "nothing was deployed" << (pipeline.empty() ? "" : " by pipeline " + pipeline) << " yet\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const json& environment : environments.value()) {
      const json& current = environment["current"];
      const json& last = environment["last"];
      rows.push_back({environment["pipeline"], environment["stage"],
                      current.is_null() ? "-" : current["release"].get<std::string>(),
                      current.is_null() ? "-" : current["artifact_version"].get<std::string>(),
                      current.is_null() ? "-" : iso_time(current["deployed_at"].get<events::Timestamp>()),
                      current.is_null() ? "-" : current["trigger_reason"].get<std::string>(),
                      last["outcome"].get<std::string>() + " (" + last["release"].get<std::string>() + ")"});
    }
    print_table(std::cout, {"PIPELINE", "STAGE", "RELEASE", "ARTIFACT", "DEPLOYED", "TRIGGER", "LAST"}, rows);
    return 0;
  });
}

int environment_history(const Common& common, const std::string& pipeline, const std::string& stage,
                        std::size_t limit, const std::string& cursor) {
  return settled_query(common, [&](Runtime& runtime) {
    auto page = runtime.projections().environments().history(pipeline, stage, limit, cursor);
    if (!page) return report(page.error(), common.json);
    if (common.json) {
      std::cout << json{{"deployments", page.value().deployments},
                        {"next_cursor", cursor_json(page.value().next_cursor)}}
                       .dump(2)
                << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const json& d : page.value().deployments) {
      std::string outcome = d["outcome"];
      if (!d["reason"].get<std::string>().empty()) outcome += ": " + d["reason"].get<std::string>();
      rows.push_back({iso_time(d["finished_at"].get<events::Timestamp>()), d["release"], d["artifact_version"],
                      std::to_string(d["attempt"].get<int>()), d["trigger_reason"], outcome});
    }
    print_table(std::cout, {"FINISHED", "RELEASE", "ARTIFACT", "ATTEMPT", "TRIGGER", "OUTCOME"}, rows);
    print_next_page(page.value().next_cursor);
    return 0;
  });
}

// ---- approvals ------------------------------------------------------------------

int list_approvals(const Common& common, const std::string& group) {
  return settled_query(common, [&](Runtime& runtime) {
    auto& inbox = runtime.projections().approvals();
    auto items = group.empty() ? inbox.inbox(common.actor) : inbox.group_inbox(group);
    if (!items) return report(items.error(), common.json);
    if (common.json) {
      std::cout << json{{group.empty() ? "user" : "group", group.empty() ? common.actor : group},
                        {"approvals", items.value()}}
                       .dump(2)
                << "\n";
      return 0;
    }
    if (items.value().empty()) {
      std::cout << "no approvals wait for " << (group.empty() ? common.actor : "group " + group) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const json& item : items.value()) {
      std::string via;
      for (const auto& entry : item["via"]) via += (via.empty() ? "" : ", ") + entry.get<std::string>();
      rows.push_back({iso_time(item["deadline"].get<events::Timestamp>()), item["release"], item["stage"],
                      item["phase"],
                      std::to_string(item["approved"].get<int>()) + "/" + std::to_string(item["required"].get<int>()),
                      item["order"], via});
    }
    print_table(std::cout, {"DEADLINE", "RELEASE", "STAGE", "PHASE", "APPROVED", "ORDER", "AS"}, rows);
    return 0;
  });
}

// ---- pipelines --------------------------------------------------------------------

int pipeline_versions(const Common& common, const std::string& pipeline) {
  return settled_query(common, [&](Runtime& runtime) {
    auto versions = runtime.projections().pipelines().versions(pipeline);
    if (!versions) return report(versions.error(), common.json);
    if (common.json) {
      json list = json::array();
      for (const auto& version : versions.value()) list.push_back(projections::to_json(version));
      std::cout << json{{"pipeline", pipeline}, {"versions", list}}.dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& version : versions.value()) {
      std::string releases;
      for (const std::string& id : version.releases) releases += (releases.empty() ? "" : ", ") + id;
      rows.push_back({std::to_string(version.version), iso_time(version.defined_at), version.actor,
                      releases.empty() ? "-" : releases});
    }
    print_table(std::cout, {"VERSION", "DEFINED", "BY", "RELEASES"}, rows);
    return 0;
  });
}

int pipeline_diff(const Common& common, const std::string& pipeline, std::int64_t from, std::int64_t to) {
  return settled_query(common, [&](Runtime& runtime) {
    auto changes = runtime.projections().pipelines().diff(pipeline, from, to);
    if (!changes) return report(changes.error(), common.json);
    if (common.json) {
      json list = json::array();
      for (const auto& change : changes.value()) list.push_back(projections::to_json(change));
      std::cout << json{{"pipeline", pipeline}, {"from", from}, {"to", to}, {"changes", list}}.dump(2) << "\n";
      return 0;
    }
    if (changes.value().empty()) std::cout << "versions " << from << " and " << to << " are the same\n";
    for (const auto& change : changes.value()) {
      std::cout << std::left << std::setw(9) << change.op << change.path;
      if (change.op == "remove") std::cout << "  (was " << change.from.dump() << ")";
      if (change.op == "add") std::cout << "  = " << change.to.dump();
      if (change.op == "replace") std::cout << "  " << change.from.dump() << " → " << change.to.dump();
      std::cout << "\n";
    }
    return 0;
  });
}

// ---- delivery metrics -------------------------------------------------------------

struct MetricsOptions {
  std::string pipeline;
  std::string stage;
  std::string from;
  std::string to;
};

int delivery_metrics(const Common& common, const MetricsOptions& options) {
  events::Timestamp to = engine::SystemClock().now();
  if (!options.to.empty()) {
    auto parsed = parse_utc_time(options.to);
    if (!parsed) return report(parsed.error(), common.json);
    to = parsed.value();
  }
  events::Timestamp from = to - 30 * kDayMs;
  if (!options.from.empty()) {
    auto parsed = parse_utc_time(options.from);
    if (!parsed) return report(parsed.error(), common.json);
    from = parsed.value();
  }
  return settled_query(common, [&](Runtime& runtime) {
    auto& metrics = runtime.projections().delivery_metrics();
    auto stages = [&]() -> Result<std::vector<projections::DeliveryMetrics>> {
      if (options.stage.empty()) return metrics.pipeline_metrics(options.pipeline, from, to);
      CASCADE_TRY(one, metrics.stage_metrics(options.pipeline, options.stage, from, to));
      return std::vector<projections::DeliveryMetrics>{one};
    }();
    if (!stages) return report(stages.error(), common.json);
    if (common.json) {
      json list = json::array();
      for (const auto& m : stages.value()) list.push_back(projections::to_json(m));
      std::cout << json{{"pipeline", options.pipeline}, {"from", from}, {"to", to}, {"stages", list}}.dump(2) << "\n";
      return 0;
    }
    std::cout << "pipeline " << options.pipeline << ", " << iso_time(from) << " to " << iso_time(to) << "\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : stages.value()) {
      const json j = projections::to_json(m);
      std::ostringstream per_day, rate;
      per_day << std::fixed << std::setprecision(2) << m.deployments_per_day;
      if (m.change_failure_rate) {
        rate << std::fixed << std::setprecision(1) << *m.change_failure_rate * 100 << "% (" << m.failed << "/"
             << m.failed + m.deployments << ")";
      } else {
        rate << "-";
      }
      rows.push_back({m.stage, std::to_string(m.deployments), per_day.str(),
                      optional_duration(j["lead_time_ms"]["median"]), optional_duration(j["lead_time_ms"]["p90"]),
                      rate.str(), optional_duration(j["time_to_restore_ms"]["median"]), std::to_string(m.unrestored)});
    }
    print_table(std::cout,
                {"STAGE", "DEPLOYS", "PER DAY", "LEAD TIME (MEDIAN)", "LEAD TIME (P90)", "FAILURE RATE",
                 "TIME TO RESTORE (MEDIAN)", "UNRESTORED"},
                rows);
    return 0;
  });
}

// ---- projections --------------------------------------------------------------------

int print_status(Runtime& runtime, const Common& common) {
  const std::uint64_t head = runtime.log().head();
  auto status = runtime.projections().status(head);
  if (!status) return report(status.error(), common.json);
  if (common.json) {
    json list = json::array();
    for (const auto& s : status.value()) list.push_back({{"name", s.name}, {"checkpoint", s.checkpoint}, {"lag", s.lag}});
    std::cout << json{{"head", head}, {"projections", list}}.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : status.value()) rows.push_back({s.name, std::to_string(s.checkpoint), std::to_string(s.lag)});
  std::cout << "log head " << head << "\n";
  print_table(std::cout, {"PROJECTION", "CHECKPOINT", "LAG"}, rows);
  return 0;
}

int projections_status(const Common& common) {
  return settled_query(common, [&](Runtime& runtime) { return print_status(runtime, common); });
}

int projections_rebuild(const Common& common, const std::string& name) {
  return settled_query(common, [&](Runtime& runtime) {
    if (Status requested = runtime.projections().rebuild(name); !requested) return report(requested.error(), common.json);
    // The engine keeps running: each projection clears itself on its own
    // thread and folds the log again; settling waits for it to catch up.
    runtime.settle();
    if (!common.json) std::cout << "rebuilt " << (name.empty() ? "every projection" : name) << "\n";
    return print_status(runtime, common);
  });
}

// The subcommand `name` of `parent`, added unless another group already did.
CLI::App* subcommand(CLI::App& parent, const std::string& name, const std::string& description) {
  const auto named = parent.get_subcommands([&](CLI::App* command) { return command->get_name() == name; });
  if (!named.empty()) return named.front();
  return parent.add_subcommand(name, description)->require_subcommand(1);
}

}  // namespace

void add_projection_commands(CLI::App& app, Common& common, int& exit_code) {
  // The options' values outlive this function: the callbacks that read them
  // run after parsing and keep them alive.
  struct Options {
    ListOptions list;
    MetricsOptions metrics;
    std::string pipeline, stage, cursor, group, name;
    std::size_t limit = projections::EnvironmentProjection::kDefaultLimit;
    std::int64_t from_version = 0, to_version = 0;
  };
  auto o = std::make_shared<Options>();

  auto* list = subcommand(app, "release", "releases")->add_subcommand("list", "releases, newest first");
  list->add_option("--pipeline", o->list.pipeline, "only this pipeline's releases");
  list->add_option("--status", o->list.status, "only releases in this status (Succeeded, Failed, …)");
  list->add_option("--limit", o->list.limit, "at most this many (1-500)")->capture_default_str();
  list->add_option("--cursor", o->list.cursor, "continue after the previous page (its next cursor)");
  add_common_options(list, common);
  list->callback([o, &common, &exit_code] { exit_code = list_releases(common, o->list); });

  auto* environments = app.add_subcommand("environments", "what is deployed now, per pipeline and stage");
  environments->add_option("--pipeline", o->pipeline, "only this pipeline");
  add_common_options(environments, common);
  environments->callback([o, &common, &exit_code] { exit_code = list_environments(common, o->pipeline); });

  auto* environment = subcommand(app, "environment", "one pipeline stage's deployments");
  auto* history = environment->add_subcommand("history", "the deployments of a stage, newest first");
  history->add_option("PIPELINE", o->pipeline)->required();
  history->add_option("STAGE", o->stage)->required();
  history->add_option("--limit", o->limit, "at most this many (1-500)")->capture_default_str();
  history->add_option("--cursor", o->cursor, "continue after the previous page (its next cursor)");
  add_common_options(history, common);
  history->callback([o, &common, &exit_code] {
    exit_code = environment_history(common, o->pipeline, o->stage, o->limit, o->cursor);
  });

  auto* approvals =
      app.add_subcommand("approvals", "pending approvals of a person (--as) or of a group, soonest deadline first");
  approvals->add_option("--group", o->group, "the approvals waiting for this group instead");
  add_common_options(approvals, common);
  approvals->callback([o, &common, &exit_code] { exit_code = list_approvals(common, o->group); });

  auto* pipeline_command = subcommand(app, "pipeline", "pipeline definitions");
  auto* versions = pipeline_command->add_subcommand("versions", "every version of a pipeline and the releases using it");
  versions->add_option("NAME", o->pipeline)->required();
  add_common_options(versions, common);
  versions->callback([o, &common, &exit_code] { exit_code = pipeline_versions(common, o->pipeline); });
  auto* diff = pipeline_command->add_subcommand("diff", "what changed between two versions of a pipeline");
  diff->add_option("NAME", o->pipeline)->required();
  diff->add_option("V1", o->from_version)->required();
  diff->add_option("V2", o->to_version)->required();
  add_common_options(diff, common);
  diff->callback([o, &common, &exit_code] {
    exit_code = pipeline_diff(common, o->pipeline, o->from_version, o->to_version);
  });

  auto* metrics = subcommand(app, "metrics", "metrics from the events");
  auto* delivery = metrics->add_subcommand(
      "delivery", "DORA metrics per stage: deployment frequency, lead time, change failure rate, time to restore");
  delivery->add_option("--pipeline", o->metrics.pipeline)->required();
  delivery->add_option("--stage", o->metrics.stage, "one stage (default: every stage)");
  delivery->add_option("--from", o->metrics.from, "window start, RFC 3339 UTC (default: 30 days before --to)");
  delivery->add_option("--to", o->metrics.to, "window end, exclusive, RFC 3339 UTC (default: now)");
  add_common_options(delivery, common);
  delivery->callback([o, &common, &exit_code] { exit_code = delivery_metrics(common, o->metrics); });

  auto* projections_command = subcommand(app, "projections", "the read models");
  auto* status = projections_command->add_subcommand("status", "each projection's checkpoint and lag behind the log");
  add_common_options(status, common);
  status->callback([&common, &exit_code] { exit_code = projections_status(common); });
  auto* rebuild = projections_command->add_subcommand(
      "rebuild", "rebuild one projection (or all) from the log while the engine runs, and wait until caught up");
  rebuild->add_option("NAME", o->name,
                      "release_summary, releases, environments, approvals, pipelines or delivery_metrics (default: all)");
  add_common_options(rebuild, common);
  rebuild->callback([o, &common, &exit_code] { exit_code = projections_rebuild(common, o->name); });
}

}  // namespace cascade::tools
