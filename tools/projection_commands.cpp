// The read-model commands: release list, environments, approvals, pipeline
// versions and diffs, delivery metrics, and the projections' own status and
// rebuild. Each asks a running server (GET /api/v1/...), or — offline —
// opens a Session, lets the engine settle (so the read models have caught up
// with the log) and queries one projection; either way it prints the same
// JSON document with --json, or the same table from it. `projections status`
// and `projections rebuild` work on a data directory only.
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

// "?a=1&b=2" from the pairs whose value is not empty.
std::string query_string(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (value.empty()) continue;
    out += (out.empty() ? "?" : "&") + name + "=" + url_encode(value);
  }
  return out;
}

// The read-model commands all work the same way: get one JSON document —
// from the projections of a data directory, or from the server — and print
// it with --json, or as a table. `offline` gets the settled runtime, `remote`
// a client; each returns the document.
template <class Offline, class Remote, class Print>
int read_model(Common& common, Offline offline, Remote remote, Print print) {
  auto mode = choose_mode(common);
  if (!mode) return report(mode.error(), common.json);
  auto show = [&](const Result<json>& document) {
    if (!document) return report(document.error(), common.json);
    if (common.json) {
      std::cout << document.value().dump(2) << "\n";
    } else {
      print(document.value());
    }
    return 0;
  };
  if (mode.value() == Mode::kOffline) {
    return settled_query(common, [&](Runtime& runtime) { return show(offline(runtime)); });
  }
  auto client = api_client(common);
  if (!client) return report(client.error(), common.json);
  return show(remote(client.value()));
}

// ---- release list -----------------------------------------------------------

struct ListOptions {
  std::string pipeline;
  std::string status;
  std::size_t limit = projections::ReleaseQuery::kDefaultLimit;
  std::string cursor;
  std::string cdevent;
};

int list_releases(Common& common, const ListOptions& options) {
  return read_model(
      common,
      [&](Runtime& runtime) -> Result<json> {
        projections::ReleaseQuery query{options.pipeline, options.status, options.limit, options.cursor, options.cdevent};
        CASCADE_TRY(page, runtime.projections().releases().list(query));
        return json{{"releases", page.releases()}, {"next_cursor", cursor_json(page.next_cursor)}};
      },
      [&](ApiClient& client) {
        return client.get("/api/v1/releases" + query_string({{"pipeline", options.pipeline},
                                                            {"status", options.status},
                                                            {"limit", std::to_string(options.limit)},
                                                            {"cursor", options.cursor},
                                                            {"cdevent", options.cdevent}}));
      },
      [](const json& page) { print_release_list(std::cout, page); });
}

// ---- environments -------------------------------------------------------------

int list_environments(Common& common, const std::string& pipeline) {
  return read_model(
      common,
      [&](Runtime& runtime) -> Result<json> {
        CASCADE_TRY(environments, runtime.projections().environments().environments(pipeline));
        return json{{"environments", environments}};
      },
      [&](ApiClient& client) { return client.get("/api/v1/environments" + query_string({{"pipeline", pipeline}})); },
      [&](const json& document) { print_environments(std::cout, document, pipeline); });
}

int environment_history(Common& common, const std::string& pipeline, const std::string& stage, std::size_t limit,
                        const std::string& cursor) {
  return read_model(
      common,
      [&](Runtime& runtime) -> Result<json> {
        CASCADE_TRY(page, runtime.projections().environments().history(pipeline, stage, limit, cursor));
        return json{{"deployments", page.deployments}, {"next_cursor", cursor_json(page.next_cursor)}};
      },
      [&](ApiClient& client) -> Result<json> {
        CASCADE_TRY(answer, client.get("/api/v1/environments/" + url_encode(pipeline) + "/" + url_encode(stage) +
                                       query_string({{"limit", std::to_string(limit)}, {"cursor", cursor}})));
        return json{{"deployments", answer["history"]}, {"next_cursor", answer.value("next_cursor", json(nullptr))}};
      },
      [](const json& page) { print_environment_history(std::cout, page); });
}

// ---- approvals ------------------------------------------------------------------

// `all`: every pending approval, whoever it waits for (over a server: an
// admin's token; offline, whoever may read the data directory).
int list_approvals(Common& common, const std::string& group, bool all) {
  return read_model(
      common,
      [&](Runtime& runtime) -> Result<json> {
        auto& inbox = runtime.projections().approvals();
        if (all) {
          CASCADE_TRY(items, inbox.all_pending());
          return json{{"all", true}, {"approvals", items}};
        }
        CASCADE_TRY(items, group.empty() ? inbox.inbox(common.actor) : inbox.group_inbox(group));
        return json{{group.empty() ? "user" : "group", group.empty() ? common.actor : group}, {"approvals", items}};
      },
      [&](ApiClient& client) {
        return client.get("/api/v1/approvals" + query_string({{"group", group}, {"all", all ? "true" : ""}}));
      },
      [](const json& inbox) { print_approvals(std::cout, inbox); });
}

// ---- pipelines --------------------------------------------------------------------

int pipeline_versions(Common& common, const std::string& pipeline) {
  return read_model(
      common,
      [&](Runtime& runtime) -> Result<json> {
        CASCADE_TRY(versions, runtime.projections().pipelines().versions(pipeline));
        json list = json::array();
        for (const auto& version : versions) list.push_back(projections::to_json(version));
        return json{{"pipeline", pipeline}, {"versions", list}};
      },
      [&](ApiClient& client) -> Result<json> {
        CASCADE_TRY(answer, client.get("/api/v1/pipelines/" + url_encode(pipeline) + "/versions"));
        return json{{"pipeline", pipeline}, {"versions", answer["versions"]}};
      },
      [](const json& versions) { print_pipeline_versions(std::cout, versions); });
}

int pipeline_diff(Common& common, const std::string& pipeline, std::int64_t from, std::int64_t to) {
  return read_model(
      common,
      [&](Runtime& runtime) -> Result<json> {
        CASCADE_TRY(changes, runtime.projections().pipelines().diff(pipeline, from, to));
        json list = json::array();
        for (const auto& change : changes) list.push_back(projections::to_json(change));
        return json{{"pipeline", pipeline}, {"from", from}, {"to", to}, {"changes", list}};
      },
      [&](ApiClient& client) {
        return client.get("/api/v1/pipelines/" + url_encode(pipeline) + "/diff" +
                          query_string({{"from", std::to_string(from)}, {"to", std::to_string(to)}}));
      },
      [](const json& diff) { print_pipeline_diff(std::cout, diff); });
}

int list_pipelines(Common& common) {
  return read_model(
      common,
      [&](Runtime& runtime) -> Result<json> {
        CASCADE_TRY(latest, runtime.projections().pipelines().latest_versions());
        return projections::pipelines_json(latest);
      },
      [&](ApiClient& client) { return client.get("/api/v1/pipelines"); },
      [](const json& pipelines) { print_pipelines(std::cout, pipelines); });
}

// One version's canonical definition (the latest without --version): the
// same document over a server and offline, printed as JSON either way.
int show_pipeline(Common& common, const std::string& pipeline, std::int64_t version) {
  return read_model(
      common,
      [&](Runtime& runtime) -> Result<json> {
        if (version > 0) {
          CASCADE_TRY(stored, runtime.projections().pipelines().version(pipeline, version));
          return json{{"name", stored.pipeline}, {"version", stored.version}, {"definition", stored.definition}};
        }
        CASCADE_TRY(stored, runtime.service().load_pipeline(pipeline));
        return json{{"name", stored.definition.name},
                    {"version", stored.version},
                    {"definition", engine::to_json(stored.definition)}};
      },
      [&](ApiClient& client) {
        return client.get("/api/v1/pipelines/" + url_encode(pipeline) +
                          (version > 0 ? "?version=" + std::to_string(version) : std::string()));
      },
      [](const json& shown) {
        std::cout << "# pipeline " << shown["name"].get<std::string>() << ", version " << shown["version"] << "\n"
                  << shown["definition"].dump(2) << "\n";
      });
}

// ---- delivery metrics -------------------------------------------------------------

struct MetricsOptions {
  std::string pipeline;
  std::string stage;
  std::string from;
  std::string to;
};

int delivery_metrics(Common& common, const MetricsOptions& options) {
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
  return read_model(
      common,
      [&](Runtime& runtime) -> Result<json> {
        auto& metrics = runtime.projections().delivery_metrics();
        auto stages = [&]() -> Result<std::vector<projections::DeliveryMetrics>> {
          if (options.stage.empty()) return metrics.pipeline_metrics(options.pipeline, from, to);
          CASCADE_TRY(one, metrics.stage_metrics(options.pipeline, options.stage, from, to));
          return std::vector<projections::DeliveryMetrics>{one};
        }();
        if (!stages) return stages.error();
        json list = json::array();
        for (const auto& m : stages.value()) list.push_back(projections::to_json(m));
        return json{{"pipeline", options.pipeline}, {"from", from}, {"to", to}, {"stages", list}};
      },
      [&](ApiClient& client) -> Result<json> {
        CASCADE_TRY(answer, client.get("/api/v1/metrics/delivery" +
                                       query_string({{"pipeline", options.pipeline},
                                                     {"from", std::to_string(from)},
                                                     {"to", std::to_string(to)}})));
        if (options.stage.empty()) return std::move(answer);
        json stages = json::array();
        for (const json& stage : answer["stages"]) {
          if (stage.value("stage", "") == options.stage) stages.push_back(stage);
        }
        if (stages.empty()) {
          return make_error(ErrorCode::kNotFound, "pipeline " + options.pipeline + " has no stage '" + options.stage + "'");
        }
        answer["stages"] = std::move(stages);
        return std::move(answer);
      },
      [](const json& metrics) { print_delivery_metrics(std::cout, metrics); });
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
    bool all_approvals = false;
  };
  auto o = std::make_shared<Options>();

  auto* list = subcommand(app, "release", "releases")->add_subcommand("list", "releases, newest first");
  list->add_option("--pipeline", o->list.pipeline, "only this pipeline's releases");
  list->add_option("--status", o->list.status, "only releases in this status (Succeeded, Failed, …)");
  list->add_option("--limit", o->list.limit, "at most this many (1-500)")->capture_default_str();
  list->add_option("--cursor", o->list.cursor, "continue after the previous page (its next cursor)");
  list->add_option("--cdevent", o->list.cdevent, "only the releases this CI event (its CDEvent id) created");
  add_client_options(list, common);
  list->callback([o, &common, &exit_code] { exit_code = list_releases(common, o->list); });

  auto* environments = app.add_subcommand("environments", "what is deployed now, per pipeline and stage");
  environments->add_option("--pipeline", o->pipeline, "only this pipeline");
  add_client_options(environments, common);
  environments->callback([o, &common, &exit_code] { exit_code = list_environments(common, o->pipeline); });

  auto* environment = subcommand(app, "environment", "one pipeline stage's deployments");
  auto* history = environment->add_subcommand("history", "the deployments of a stage, newest first");
  history->add_option("PIPELINE", o->pipeline)->required();
  history->add_option("STAGE", o->stage)->required();
  history->add_option("--limit", o->limit, "at most this many (1-500)")->capture_default_str();
  history->add_option("--cursor", o->cursor, "continue after the previous page (its next cursor)");
  add_client_options(history, common);
  history->callback([o, &common, &exit_code] {
    exit_code = environment_history(common, o->pipeline, o->stage, o->limit, o->cursor);
  });

  auto* approvals =
      app.add_subcommand("approvals", "pending approvals of the token's user (offline: --as) or of a group, soonest deadline first");
  auto* group_option = approvals->add_option("--group", o->group, "the approvals waiting for this group instead");
  approvals->add_flag("--all", o->all_approvals, "every pending approval, whoever it waits for (over a server: admin only)")
      ->excludes(group_option);
  add_client_options(approvals, common);
  approvals->callback([o, &common, &exit_code] { exit_code = list_approvals(common, o->group, o->all_approvals); });

  auto* pipeline_command = subcommand(app, "pipeline", "pipeline definitions");
  auto* pipelines = pipeline_command->add_subcommand("list", "every pipeline at its latest version");
  add_client_options(pipelines, common);
  pipelines->callback([&common, &exit_code] { exit_code = list_pipelines(common); });
  auto* show = pipeline_command->add_subcommand("show", "a pipeline's definition as stored (canonical JSON)");
  show->add_option("NAME", o->pipeline)->required();
  show->add_option("--version", o->from_version, "this version (default: the latest)");
  add_client_options(show, common);
  show->callback([o, &common, &exit_code] { exit_code = show_pipeline(common, o->pipeline, o->from_version); });
  auto* versions = pipeline_command->add_subcommand("versions", "every version of a pipeline and the releases using it");
  versions->add_option("NAME", o->pipeline)->required();
  add_client_options(versions, common);
  versions->callback([o, &common, &exit_code] { exit_code = pipeline_versions(common, o->pipeline); });
  auto* diff = pipeline_command->add_subcommand("diff", "what changed between two versions of a pipeline");
  diff->add_option("NAME", o->pipeline)->required();
  diff->add_option("V1", o->from_version)->required();
  diff->add_option("V2", o->to_version)->required();
  add_client_options(diff, common);
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
  add_client_options(delivery, common);
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
