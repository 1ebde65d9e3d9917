#include "engine/msm_config.hpp"  // first: configures MPL before any Boost header

#include "engine/stage_machine.hpp"

#include <boost/mpl/for_each.hpp>
#include <boost/mpl/vector.hpp>
#include <boost/msm/back/state_machine.hpp>
#include <boost/msm/front/functor_row.hpp>
#include <boost/msm/front/state_machine_def.hpp>

#include <algorithm>

namespace cascade::engine {
namespace {

namespace msm = boost::msm;
namespace mpl = boost::mpl;
using msm::front::none;
using msm::front::Row;
using namespace cascade::events;

template <StageState S>
struct Named : msm::front::state<> {
  static constexpr StageState kState = S;
};

struct NotStarted : Named<StageState::kNotStarted> {};
struct Triggered : Named<StageState::kTriggered> {};
struct AwaitingPreApproval : Named<StageState::kAwaitingPreApproval> {};
struct Deferred : Named<StageState::kDeferred> {};
struct Approved : Named<StageState::kApproved> {};
struct Deploying : Named<StageState::kDeploying> {};
struct AwaitingPostApproval : Named<StageState::kAwaitingPostApproval> {};
struct Succeeded : Named<StageState::kSucceeded> {};
struct PartiallySucceeded : Named<StageState::kPartiallySucceeded> {};
struct Failed : Named<StageState::kFailed> {};
struct Rejected : Named<StageState::kRejected> {};
struct Canceled : Named<StageState::kCanceled> {};

// ---- Guards and actions: pure functions of the event and the machine's
// counters; no I/O (replay must have no side effects) and nothing throws.

struct IsPre {
  template <class E, class Fsm, class S, class T>
  bool operator()(const E& e, Fsm&, S&, T&) const { return e.phase == "pre"; }
};
struct IsPost {
  template <class E, class Fsm, class S, class T>
  bool operator()(const E& e, Fsm&, S&, T&) const { return e.phase == "post"; }
};
// Whether a grant completes the approval: it reaches the required count, or
// an administrator overrides the policy.
template <class Fsm>
bool completes(const ApprovalGranted& e, const Fsm& fsm) {
  return e.override || fsm.grants + 1 >= fsm.required;
}
// The grant leaves the approval short of its required count.
struct GrantFallsShort {
  template <class Fsm, class S, class T>
  bool operator()(const ApprovalGranted& e, Fsm& fsm, S&, T&) const { return !completes(e, fsm); }
};
struct GrantCompletes {
  template <class Fsm, class S, class T>
  bool operator()(const ApprovalGranted& e, Fsm& fsm, S&, T&) const { return completes(e, fsm); }
};
struct GrantCompletesDeferred {
  template <class Fsm, class S, class T>
  bool operator()(const ApprovalGranted& e, Fsm& fsm, S&, T&) const {
    return completes(e, fsm) && (fsm.deferred || e.defer_until > 0);
  }
};
struct GrantCompletesAtOnce {
  template <class Fsm, class S, class T>
  bool operator()(const ApprovalGranted& e, Fsm& fsm, S&, T&) const {
    return completes(e, fsm) && !fsm.deferred && e.defer_until == 0;
  }
};
struct GrantCompletesWhole {
  template <class Fsm, class S, class T>
  bool operator()(const ApprovalGranted& e, Fsm& fsm, S&, T&) const { return completes(e, fsm) && !fsm.partial; }
};
struct GrantCompletesPartial {
  template <class Fsm, class S, class T>
  bool operator()(const ApprovalGranted& e, Fsm& fsm, S&, T&) const { return completes(e, fsm) && fsm.partial; }
};
// No rollback has been chosen for the failed attempt yet: one choice per attempt.
struct NoChoiceYet {
  template <class Fsm, class S, class T>
  bool operator()(const RollbackChosen&, Fsm& fsm, S&, T&) const { return !fsm.rollback_chosen; }
};
struct WholeSuccess {
  template <class Fsm, class S, class T>
  bool operator()(const DeploymentSucceeded& e, Fsm&, S&, T&) const { return !e.partial; }
};
struct PartialSuccess {
  template <class Fsm, class S, class T>
  bool operator()(const DeploymentSucceeded& e, Fsm&, S&, T&) const { return e.partial; }
};

struct StartAttempt {
  template <class Fsm, class S, class T>
  void operator()(const StageTriggered&, Fsm& fsm, S&, T&) const {
    fsm.grants = 0;
    fsm.required = 0;
    fsm.deferred = false;
    fsm.partial = false;
    fsm.rollback_chosen = false;
  }
};
struct OpenApproval {
  template <class Fsm, class S, class T>
  void operator()(const ApprovalRequested& e, Fsm& fsm, S&, T&) const {
    fsm.grants = 0;
    fsm.required = e.required;
    fsm.deferred = false;
  }
};
struct CountGrant {
  template <class Fsm, class S, class T>
  void operator()(const ApprovalGranted& e, Fsm& fsm, S&, T&) const {
    ++fsm.grants;
    fsm.deferred = fsm.deferred || e.defer_until > 0;
  }
};
struct RecordOutcome {
  template <class Fsm, class S, class T>
  void operator()(const DeploymentSucceeded& e, Fsm& fsm, S&, T&) const { fsm.partial = e.partial; }
};
struct RecordChoice {
  template <class Fsm, class S, class T>
  void operator()(const RollbackChosen&, Fsm& fsm, S&, T&) const { fsm.rollback_chosen = true; }
};

struct StageMachineDefinition : msm::front::state_machine_def<StageMachineDefinition> {
  using initial_state = NotStarted;
  // An exception must escape rather than be reported as a handled event.
  typedef int no_exception_thrown;

  // The current attempt's approval and outcome, as far as legality needs them.
  int grants = 0;
  int required = 0;
  bool deferred = false;
  bool partial = false;
  bool rollback_chosen = false;  // on_failure: the failed attempt's rollback is decided

  // clang-format off
  struct transition_table : mpl::vector<
    //   Start                 Event                 Next                  Action          Guard
    Row< NotStarted          , StageTriggered      , Triggered           , StartAttempt  , none                   >,
    // A redeploy starts a new attempt from a finished state.
    Row< Succeeded           , StageTriggered      , Triggered           , StartAttempt  , none                   >,
    Row< PartiallySucceeded  , StageTriggered      , Triggered           , StartAttempt  , none                   >,
    Row< Failed              , StageTriggered      , Triggered           , StartAttempt  , none                   >,
    Row< Rejected            , StageTriggered      , Triggered           , StartAttempt  , none                   >,
    Row< Canceled            , StageTriggered      , Triggered           , StartAttempt  , none                   >,
    //   Before the deployment.
    Row< Triggered           , ApprovalRequested   , AwaitingPreApproval , OpenApproval  , IsPre                  >,
    Row< Triggered           , ApprovalSkipped     , Approved            , none          , IsPre                  >,
    Row< Triggered           , DeploymentStarted   , Deploying           , none          , none                   >,
    Row< AwaitingPreApproval , ApprovalGranted     , none                , CountGrant    , GrantFallsShort        >,
    Row< AwaitingPreApproval , ApprovalGranted     , Approved            , CountGrant    , GrantCompletesAtOnce   >,
    Row< AwaitingPreApproval , ApprovalGranted     , Deferred            , CountGrant    , GrantCompletesDeferred >,
    Row< AwaitingPreApproval , ApprovalRejected    , Rejected            , none          , none                   >,
    Row< AwaitingPreApproval , ApprovalTimedOut    , Rejected            , none          , none                   >,
    Row< Deferred            , DeferralElapsed     , Approved            , none          , none                   >,
    Row< Approved            , DeploymentStarted   , Deploying           , none          , none                   >,
    //   A waiting stage may be canceled, superseded or abandoned.
    Row< Triggered           , StageCanceled       , Canceled            , none          , none                   >,
    Row< AwaitingPreApproval , StageCanceled       , Canceled            , none          , none                   >,
    Row< Deferred            , StageCanceled       , Canceled            , none          , none                   >,
    Row< Approved            , StageCanceled       , Canceled            , none          , none                   >,
    Row< AwaitingPostApproval, StageCanceled       , Canceled            , none          , none                   >,
    //   Steps progress inside Deploying (internal transitions: Next = none).
    Row< Deploying           , StepStarted         , none                , none          , none                   >,
    Row< Deploying           , StepSucceeded       , none                , none          , none                   >,
    Row< Deploying           , StepFailed          , none                , none          , none                   >,
    Row< Deploying           , StepSkipped         , none                , none          , none                   >,
    Row< Deploying           , DeploymentSucceeded , Succeeded           , RecordOutcome , WholeSuccess           >,
    Row< Deploying           , DeploymentSucceeded , PartiallySucceeded  , RecordOutcome , PartialSuccess         >,
    Row< Deploying           , DeploymentFailed    , Failed              , none          , none                   >,
    Row< Deploying           , DeploymentCanceled  , Canceled            , none          , none                   >,
    //   A failed attempt: on_failure redeploy_last_good records its choice once.
    Row< Failed              , RollbackChosen      , none                , RecordChoice  , NoChoiceYet            >,
    //   After the deployment: the post-deployment approval decides the outcome.
    Row< Succeeded           , ApprovalRequested   , AwaitingPostApproval, OpenApproval  , IsPost                 >,
    Row< PartiallySucceeded  , ApprovalRequested   , AwaitingPostApproval, OpenApproval  , IsPost                 >,
    Row< AwaitingPostApproval, ApprovalGranted     , none                , CountGrant    , GrantFallsShort        >,
    Row< AwaitingPostApproval, ApprovalGranted     , Succeeded           , CountGrant    , GrantCompletesWhole    >,
    Row< AwaitingPostApproval, ApprovalGranted     , PartiallySucceeded  , CountGrant    , GrantCompletesPartial  >,
    Row< AwaitingPostApproval, ApprovalRejected    , Rejected            , none          , none                   >,
    Row< AwaitingPostApproval, ApprovalTimedOut    , Rejected            , none          , none                   >
  > {};
  // clang-format on

  // A refusal is an answer, not a fault: decide turns it into an error that
  // names the stage, its state and what was expected.
  template <class Fsm, class Event>
  void no_transition(const Event&, Fsm&, int) {}
};

using Machine = msm::back::state_machine<StageMachineDefinition>;
using Table = StageMachineDefinition::transition_table;

// State ids follow the order in which MSM meets states in the table; map each
// id to its stable name once.
std::vector<StageState> state_names_by_id() {
  std::vector<StageState> names(mpl::size<Machine::stt>::value + 1, StageState::kNotStarted);
  mpl::for_each<Table>([&names](auto row) {
    using R = decltype(row);
    using Source = typename R::Source;
    names.at(static_cast<std::size_t>(msm::back::get_state_id<Machine::stt, Source>::value)) = Source::kState;
    if constexpr (!std::is_same_v<typename R::Target, none>) {
      using Target = typename R::Target;
      names.at(static_cast<std::size_t>(msm::back::get_state_id<Machine::stt, Target>::value)) = Target::kState;
    }
  });
  return names;
}

}  // namespace

struct StageMachine::Impl {
  Machine machine;
  Impl() { machine.start(); }
};

StageMachine::StageMachine() : impl_(std::make_unique<Impl>()) {}
StageMachine::~StageMachine() = default;
StageMachine::StageMachine(const StageMachine& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
StageMachine& StageMachine::operator=(const StageMachine& other) {
  if (this != &other) impl_ = std::make_unique<Impl>(*other.impl_);
  return *this;
}
StageMachine::StageMachine(StageMachine&&) noexcept = default;
StageMachine& StageMachine::operator=(StageMachine&&) noexcept = default;

bool StageMachine::accept(const Event& event) {
  return std::visit(
      [this](const auto& payload) {
        using Payload = std::decay_t<decltype(payload)>;
        if constexpr (kIsStageEvent<Payload>) {
          return impl_->machine.process_event(payload) == msm::back::HANDLED_TRUE;
        } else {
          return false;
        }
      },
      event);
}

bool StageMachine::would_accept(const Event& event) const {
  StageMachine probe(*this);
  return probe.accept(event);
}

StageState StageMachine::state() const {
  static const std::vector<StageState> kNames = state_names_by_id();
  return kNames.at(static_cast<std::size_t>(impl_->machine.current_state()[0]));
}

std::vector<StageState> StageMachine::states_accepting(std::string_view event_type) {
  std::vector<StageState> states;
  mpl::for_each<Table>([&](auto row) {
    using R = decltype(row);
    if (R::Evt::kType == event_type &&
        std::find(states.begin(), states.end(), R::Source::kState) == states.end()) {
      states.push_back(R::Source::kState);
    }
  });
  return states;
}

bool is_waiting(StageState state) {
  switch (state) {
    case StageState::kTriggered:
    case StageState::kAwaitingPreApproval:
    case StageState::kDeferred:
    case StageState::kApproved: return true;
    default: return false;
  }
}

bool is_finished(StageState state) {
  switch (state) {
    case StageState::kSucceeded:
    case StageState::kPartiallySucceeded:
    case StageState::kFailed:
    case StageState::kRejected:
    case StageState::kCanceled: return true;
    default: return false;
  }
}

bool is_deployment_over(StageState state) { return is_finished(state) || state == StageState::kAwaitingPostApproval; }

std::string_view to_string(StageState state) {
  switch (state) {
    case StageState::kNotStarted: return "NotStarted";
    case StageState::kTriggered: return "Triggered";
    case StageState::kAwaitingPreApproval: return "AwaitingPreApproval";
    case StageState::kDeferred: return "Deferred";
    case StageState::kApproved: return "Approved";
    case StageState::kDeploying: return "Deploying";
    case StageState::kAwaitingPostApproval: return "AwaitingPostApproval";
    case StageState::kSucceeded: return "Succeeded";
    case StageState::kPartiallySucceeded: return "PartiallySucceeded";
    case StageState::kFailed: return "Failed";
    case StageState::kRejected: return "Rejected";
    case StageState::kCanceled: return "Canceled";
  }
  return "Unknown";
}

}  // namespace cascade::engine
