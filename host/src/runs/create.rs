//! Creating a run, as the API and the cron scheduler do: validate the
//! request, authorize it (`threads.create_run`, then `assistants.read` for
//! a non-system assistant), resolve its assistant and thread, apply its
//! multitask strategy to the runs in flight on the thread, assemble its
//! config and metadata, and submit it to the executor.
//!
//! Every run passes `threads.create_run` first (the value of
//! auth-semantics §8.1; metadata the handler stamps lands in the run and in
//! a thread the run creates). The `langgraph_auth_*` keys and `user_id` of
//! the client's config and context are dropped and set by the server
//! (`user_id` is the caller's identity); private user fields reach the
//! graph but are never stored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{CancelAction, LiveRun, RunSpec, Runs, STREAM_MODES, SubmitError};
use crate::plugin::GraphSlot;
use crate::reserved::{client_metadata, strip_reserved_config, strip_user_id};
use crate::storage::{Object, Run, RunStatus, StorageError, Thread, wait};
use crate::timestamp::now;
use crate::types::{Action, Filter, Resource, User};

/// A run body (`RunCreateStateful` / `RunCreateStateless`). Unknown keys
/// are accepted, as by the reference.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(as = RunCreate)]
pub struct RunCreate {
    /// A registered graph name or an assistant UUID.
    pub assistant_id: String,
    /// The input (null resumes the thread's values).
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    /// A command (`resume`, `update`, `goto`).
    #[schema(value_type = Option<Object>)]
    pub command: Option<Value>,
    /// The run's metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Object>,
    /// The run's config.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// The run's context.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// One stream mode or a list.
    #[schema(value_type = Option<Object>)]
    pub stream_mode: Option<Value>,
    /// Stream subgraphs' chunks too.
    pub stream_subgraphs: Option<bool>,
    /// Keep the events for `Last-Event-ID` replays.
    pub stream_resumable: Option<bool>,
    /// Interrupt before these nodes.
    #[schema(value_type = Option<Object>)]
    pub interrupt_before: Option<Value>,
    /// Interrupt after these nodes.
    #[schema(value_type = Option<Object>)]
    pub interrupt_after: Option<Value>,
    /// `reject`, `interrupt`, `rollback` or `enqueue` (default).
    pub multitask_strategy: Option<String>,
    /// `create` or `reject` (default).
    pub if_not_exists: Option<String>,
    /// Start delay.
    pub after_seconds: Option<f64>,
    /// Webhook URL.
    pub webhook: Option<String>,
    /// Feedback keys.
    #[schema(value_type = Option<Object>)]
    pub feedback_keys: Option<Value>,
    /// `sync`, `async` or `exit`.
    pub durability: Option<String>,
    /// Deprecated.
    pub checkpoint_during: Option<bool>,
    /// `cancel` or `continue` (stream and wait).
    pub on_disconnect: Option<String>,
    /// `delete` (default) or `keep` (stateless runs).
    pub on_completion: Option<String>,
    /// A past checkpoint of the thread to run from (time travel): with no
    /// input, what was left to run there runs again; with an input, the
    /// graph starts over from its values.
    #[schema(value_type = Option<String>)]
    pub checkpoint_id: Option<Value>,
    /// `{"checkpoint_id": ...}`: the same, as LangGraph's clients send it.
    #[schema(value_type = Option<Object>)]
    pub checkpoint: Option<Value>,
}

/// What a run may ask for that a graph built against `warden:graph@0.1.0`
/// cannot do: refused (422) for such a graph, since a run that should have
/// paused for a human would otherwise carry on past the pause.
const PAUSING: [(&str, &str); 5] = [
    (
        "interrupt_before",
        "the run would not pause before those nodes",
    ),
    (
        "interrupt_after",
        "the run would not pause after those nodes",
    ),
    (
        "command",
        "its runs do not pause, so there is nothing to resume, update or redirect",
    ),
    (
        "checkpoint_id",
        "its runs cannot resume from a past checkpoint",
    ),
    (
        "checkpoint",
        "its runs cannot resume from a past checkpoint",
    ),
];

/// Whether a payload value asks for something: absent, `null` and empty
/// values do not.
fn asks(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        Value::String(text) => !text.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Refuses a cron payload that asks for its runs to pause, to resume or to
/// start from a past checkpoint, which crons do not do yet: a 422 naming
/// the field, never a run that ignores it.
pub fn refuse_in_crons<'a>(field: impl Fn(&str) -> Option<&'a Value>) -> Result<(), String> {
    for (name, _) in PAUSING {
        if field(name).is_some_and(asks) {
            return Err(format!(
                "{name} is not supported on crons yet: their runs start from the thread's \
                 latest state and do not pause. Leave it out (see the README's differences \
                 from LangGraph)."
            ));
        }
    }
    Ok(())
}

/// The past checkpoint a run starts from: `checkpoint.checkpoint_id`,
/// else `checkpoint_id`, else `config.configurable.checkpoint_id` (as
/// LangGraph reads them); a checkpoint id is a UUID.
fn checkpoint_to_run_from(body: &RunCreate) -> Result<Option<String>, String> {
    let named = match (&body.checkpoint, &body.checkpoint_id) {
        (Some(Value::Object(checkpoint)), _) if checkpoint.contains_key("checkpoint_id") => {
            checkpoint.get("checkpoint_id")
        }
        (Some(Value::Object(_) | Value::Null) | None, Some(id)) => Some(id),
        (Some(Value::Object(_) | Value::Null) | None, None) => body
            .config
            .as_ref()
            .and_then(|c| c.get("configurable"))
            .and_then(|c| c.get("checkpoint_id")),
        (Some(_), _) => return Err("checkpoint must be an object with a checkpoint_id".into()),
    };
    match named {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if Uuid::parse_str(id).is_ok() => Ok(Some(id.clone())),
        Some(_) => Err("Invalid checkpoint ID".into()),
    }
}

/// Refuses a run payload that asks a graph whose runs cannot pause
/// (`warden:graph@0.1.0`) to pause or resume.
pub fn refuse_pausing<'a>(
    field: impl Fn(&str) -> Option<&'a Value>,
    graph_id: &str,
) -> Result<(), String> {
    for (name, why) in PAUSING {
        if field(name).is_some_and(asks) {
            return Err(format!(
                "{name} is not supported by graph '{graph_id}', built against \
                 warden:graph@0.1.0: {why}. Rebuild it with a newer warden-graph, or leave \
                 {name} out."
            ));
        }
    }
    Ok(())
}

/// The nodes a run's `interrupt_before` / `interrupt_after` names: `"*"`
/// or a list of node names.
fn breakpoints(value: &Option<Value>, name: &str) -> Result<Vec<String>, String> {
    let wrong = || format!("{name} must be \"*\" or a list of node names");
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(all)) if all == "*" => Ok(vec![all.clone()]),
        Some(Value::Array(nodes)) => nodes
            .iter()
            .map(|n| n.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect(),
        Some(_) => Err(wrong()),
    }
}

/// Checks a run's `command`: an object with `resume` (any value),
/// `update` (an object of channel writes) and `goto` (a node name, a
/// `Send` — `{"node": name, "input": object or null}` — or a list of
/// them).
fn check_command(command: &Option<Value>) -> Result<(), String> {
    let Some(command) = command.as_ref().filter(|c| !c.is_null()) else {
        return Ok(());
    };
    let Some(fields) = command.as_object() else {
        return Err("command must be an object with resume, update or goto".into());
    };
    for (key, value) in fields {
        let fits = match key.as_str() {
            "resume" => true,
            "update" => value.is_null() || value.is_object(),
            "goto" => match value {
                Value::Null => true,
                Value::Array(targets) => targets.iter().all(is_goto_target),
                target => is_goto_target(target),
            },
            _ => {
                return Err(format!(
                    "command has an unknown field '{key}': it takes resume, update and goto"
                ));
            }
        };
        if !fits {
            return Err(match key.as_str() {
                "update" => "command.update must be an object of channel writes".into(),
                _ => "command.goto must be a node name, a Send ({\"node\": name, \"input\": \
                      object}) or a list of them"
                    .into(),
            });
        }
    }
    Ok(())
}

/// A node name, or a `Send`: `{"node": name, "input": object or null}`.
fn is_goto_target(target: &Value) -> bool {
    match target {
        Value::String(_) => true,
        Value::Object(send) => {
            send.get("node").is_some_and(Value::is_string)
                && send
                    .get("input")
                    .is_none_or(|i| i.is_null() || i.is_object())
                && send.keys().all(|k| k == "node" || k == "input")
        }
        _ => false,
    }
}

impl RunCreate {
    /// A field of the body by its API name, for [`refuse_unsupported`].
    fn field(&self, name: &str) -> Option<&Value> {
        match name {
            "interrupt_before" => self.interrupt_before.as_ref(),
            "interrupt_after" => self.interrupt_after.as_ref(),
            "command" => self.command.as_ref(),
            "checkpoint_id" => self.checkpoint_id.as_ref(),
            "checkpoint" => self.checkpoint.as_ref(),
            _ => None,
        }
    }
}

/// Where a run goes.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// An existing thread (or one to create with `if_not_exists: create`).
    Thread(Uuid),
    /// A temporary thread of its own.
    Stateless,
}

/// A run just created.
pub struct Created {
    /// The record.
    pub run: Run,
    /// Its live state.
    pub live: Arc<LiveRun>,
    /// Whether the body asked to cancel it when the client leaves.
    pub cancel_on_disconnect: bool,
    /// Whether it runs on a temporary thread.
    pub stateless: bool,
}

/// The longest `after_seconds` accepted: a week.
const MAX_AFTER_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

fn one_of(value: &Option<String>, allowed: &[&str], what: &str) -> Result<(), Invalid> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(Invalid(format!(
            "Invalid {what}: '{v}'. Expected one of: {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// `stream_mode` as a list: one string or a list of them, each a mode this
/// server produces.
fn stream_modes(value: &Option<Value>, default: &[&str]) -> Result<Vec<String>, Invalid> {
    let modes: Vec<String> = match value {
        None | Some(Value::Null) => default.iter().map(|m| (*m).to_owned()).collect(),
        Some(Value::String(mode)) => vec![mode.clone()],
        Some(Value::Array(modes)) => modes
            .iter()
            .map(|m| {
                m.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Invalid("stream_mode: expected strings".into()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(Invalid("stream_mode: expected a string or a list".into()));
        }
    };
    for mode in &modes {
        if !STREAM_MODES.contains(&mode.as_str()) {
            return Err(Invalid(format!(
                "Invalid stream_mode: '{mode}'. Expected one of: {}",
                STREAM_MODES.join(", ")
            )));
        }
    }
    Ok(modes)
}

/// The user as runs record it (`langgraph_auth_user`): its mapping view,
/// with or without the private fields.
fn user_mapping(user: &User, private: bool) -> Value {
    let mut map = Map::new();
    map.insert("identity".into(), json!(user.identity));
    map.insert("is_authenticated".into(), json!(user.is_authenticated));
    map.insert(
        "display_name".into(),
        json!(
            user.display_name
                .clone()
                .unwrap_or_else(|| user.identity.clone())
        ),
    );
    map.insert("permissions".into(), json!(user.permissions));
    for (key, value) in &user.extra {
        if private || !user.private_fields.contains(key) {
            map.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Value::Object(map)
}

fn object(value: &Value) -> Object {
    value.as_object().cloned().unwrap_or_default()
}

/// How runs on a busy thread are handled (`multitask_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultitaskStrategy {
    /// The new run is refused (409).
    Reject,
    /// The runs in flight are interrupted; what they wrote stays.
    Interrupt,
    /// The runs in flight are cancelled and what they wrote is deleted.
    Rollback,
    /// The new run waits for the others (the default).
    #[default]
    Enqueue,
}

impl MultitaskStrategy {
    /// The strategy's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reject => "reject",
            Self::Interrupt => "interrupt",
            Self::Rollback => "rollback",
            Self::Enqueue => "enqueue",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Reject, Self::Interrupt, Self::Rollback, Self::Enqueue]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// How the runs in flight end, for the strategies that end them.
    fn cancels(self) -> Option<CancelAction> {
        match self {
            Self::Interrupt => Some(CancelAction::Interrupt),
            Self::Rollback => Some(CancelAction::Rollback),
            Self::Reject | Self::Enqueue => None,
        }
    }
}

/// What the run's creation is checked against: the caller's auth plugin.
pub trait Authorizer {
    /// Why the plugin refused (or failed): the caller's own error, passed
    /// through [`CreateError::Denied`].
    type Error;

    /// The caller.
    fn user(&self) -> &User;

    /// Runs the event's handler on `value`: the filter it returned and the
    /// value as the handler left it.
    fn authorize(
        &mut self,
        resource: Resource,
        action: Action,
        value: Value,
    ) -> Result<(Option<Filter>, Value), Self::Error>;
}

/// The deployment's graphs, as run creation needs them.
pub struct Graphs<'a> {
    /// Each served graph's system assistant, by graph id.
    pub assistants: &'a BTreeMap<String, Uuid>,
    /// The loaded graph components, by graph id.
    pub components: &'a BTreeMap<String, Arc<GraphSlot>>,
}

/// A request the creation refused, a thread or assistant it did not find,
/// or a failure on the way.
#[derive(Debug, thiserror::Error)]
pub enum CreateError<D> {
    /// A field has a value the API does not take (422).
    #[error("{0}")]
    Invalid(String),
    /// The request contradicts itself (400).
    #[error("{0}")]
    BadRequest(String),
    /// The thread or the assistant is missing or outside the caller's
    /// scope (404).
    #[error("Thread or assistant not found.")]
    NotFound,
    /// The checkpoint to start from is not one of the thread's (404).
    #[error("Checkpoint {0} not found on the thread")]
    CheckpointNotFound(String),
    /// `multitask_strategy: reject` on a thread with a run in flight (409).
    #[error(
        "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."
    )]
    ThreadBusy,
    /// The caller may run on the thread but not update it, as `interrupt`
    /// and `rollback` need (403).
    #[error("Forbidden")]
    Forbidden,
    /// The assistant's graph is not loaded (503).
    #[error("Graph '{0}' is not loaded")]
    GraphNotLoaded(String),
    /// The auth plugin refused, or failed.
    #[error("the auth plugin refused the run")]
    Denied(D),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The executor did not take the run.
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

/// A value the request carries that the API does not take.
struct Invalid(String);

impl<D> From<Invalid> for CreateError<D> {
    fn from(Invalid(detail): Invalid) -> Self {
        Self::Invalid(detail)
    }
}

/// The assistant a request names: a served graph's name (its system
/// assistant) or an assistant UUID; anything else is invalid, listing the
/// graphs.
pub fn resolve_assistant(assistants: &BTreeMap<String, Uuid>, text: &str) -> Result<Uuid, String> {
    if let Some(id) = assistants.get(text) {
        return Ok(*id);
    }
    Uuid::parse_str(text).map_err(|_| {
        let graphs: Vec<&str> = assistants.keys().map(String::as_str).collect();
        format!(
            "Invalid assistant: '{text}'. Must be either:\n- A valid assistant UUID, or\n- One of the registered graphs: {}",
            graphs.join(", ")
        )
    })
}

fn object_of<D>(value: &Option<Value>, what: &str) -> Result<Value, CreateError<D>> {
    match value {
        None | Some(Value::Null) => Ok(json!({})),
        Some(c @ Value::Object(_)) => Ok(c.clone()),
        Some(_) => Err(CreateError::Invalid(format!("{what}: must be an object"))),
    }
}

impl Runs {
    /// Creates and submits a run as the caller `authz` speaks for.
    pub fn create<A: Authorizer>(
        self: &Arc<Self>,
        graphs: &Graphs<'_>,
        authz: &mut A,
        target: Target,
        body: RunCreate,
        default_modes: &[&str],
    ) -> Result<Created, CreateError<A::Error>> {
        let storage = &*self.storage;
        // Validate.
        one_of(
            &body.multitask_strategy,
            &["reject", "interrupt", "rollback", "enqueue"],
            "multitask_strategy",
        )?;
        one_of(&body.if_not_exists, &["create", "reject"], "if_not_exists")?;
        one_of(
            &body.on_disconnect,
            &["cancel", "continue"],
            "on_disconnect",
        )?;
        one_of(&body.on_completion, &["delete", "keep"], "on_completion")?;
        if let Some(d) = &body.durability {
            one_of(&Some(d.clone()), &["sync", "async", "exit"], "durability")?;
        }
        let modes = stream_modes(&body.stream_mode, default_modes)?;
        if let Some(after) = body.after_seconds
            && !(after.is_finite() && (0.0..=MAX_AFTER_SECONDS).contains(&after))
        {
            return Err(CreateError::Invalid(format!(
                "Invalid after_seconds: {after}. Expected 0 to {MAX_AFTER_SECONDS}"
            )));
        }
        let mut config = object_of(&body.config, "config")?;
        let mut context = object_of(&body.context, "context")?;
        strip_reserved_config(&mut context);
        strip_user_id(&mut context);
        if let Some(configurable) = config.get_mut("configurable") {
            strip_reserved_config(configurable);
            strip_user_id(configurable);
        }
        let has_configurable = config["configurable"]
            .as_object()
            .is_some_and(|c| !c.is_empty());
        if has_configurable && context.as_object().is_some_and(|c| !c.is_empty()) {
            return Err(CreateError::BadRequest(
                "Cannot specify both configurable and context. Prefer setting context alone. \
                 Context was introduced in LangGraph 0.6.0 and is the long term planned replacement for configurable."
                    .into(),
            ));
        }
        let stateless = matches!(target, Target::Stateless);
        if stateless
            && body
                .command
                .as_ref()
                .is_some_and(|c| c.get("resume").is_some_and(|r| !r.is_null()))
        {
            return Err(CreateError::BadRequest(
                "You must provide a thread_id when resuming.".into(),
            ));
        }
        let from = checkpoint_to_run_from(&body).map_err(CreateError::Invalid)?;
        breakpoints(&body.interrupt_before, "interrupt_before").map_err(CreateError::Invalid)?;
        breakpoints(&body.interrupt_after, "interrupt_after").map_err(CreateError::Invalid)?;
        check_command(&body.command).map_err(CreateError::Invalid)?;
        let assistant_id = resolve_assistant(graphs.assistants, &body.assistant_id)
            .map_err(CreateError::Invalid)?;
        let strategy = body
            .multitask_strategy
            .as_deref()
            .and_then(MultitaskStrategy::parse)
            .unwrap_or_default();
        let create_thread = body.if_not_exists.as_deref() == Some("create");

        // Authorize: `threads.create_run` on the run as LangGraph shows it.
        let run_id = Uuid::now_v7();
        let metadata = client_metadata(body.metadata.clone());
        let kwargs_seen = json!({
            "input": body.input, "command": body.command, "config": config, "context": context,
            "stream_mode": modes, "interrupt_before": body.interrupt_before,
            "interrupt_after": body.interrupt_after, "webhook": body.webhook,
            "feedback_keys": body.feedback_keys, "temporary": stateless,
            "subgraphs": body.stream_subgraphs.unwrap_or(false),
            "resumable": body.stream_resumable.unwrap_or(false),
        });
        let thread_id = match target {
            Target::Thread(id) => Some(id),
            Target::Stateless => None,
        };
        let value = json!({
            "thread_id": thread_id, "assistant_id": assistant_id, "run_id": run_id,
            "status": "pending", "metadata": metadata, "prevent_insert_if_inflight": true,
            "multitask_strategy": strategy.as_str(),
            "if_not_exists": if create_thread { "create" } else { "reject" },
            "after_seconds": body.after_seconds, "kwargs": kwargs_seen,
        });
        let (filter, value) = authz
            .authorize(Resource::Threads, Action::CreateRun, value)
            .map_err(CreateError::Denied)?;
        let stamped = match value.get("metadata") {
            Some(Value::Object(m)) => m.clone(),
            _ => metadata,
        };

        // Resolve the assistant; a non-system one must be readable by the
        // caller. A system assistant is the server's (marked in storage,
        // not the client-writable `metadata.created_by`) at a served
        // graph's id.
        let assistant =
            wait(storage.assistant(assistant_id, None))?.ok_or(CreateError::NotFound)?;
        let system = graphs.assistants.values().any(|id| *id == assistant_id)
            && wait(storage.is_system_assistant(assistant_id))?;
        if !system {
            let (scope, _) = authz
                .authorize(
                    Resource::Assistants,
                    Action::Read,
                    json!({"assistant_id": assistant_id}),
                )
                .map_err(CreateError::Denied)?;
            if scope.is_some() && wait(storage.assistant(assistant_id, scope.as_ref()))?.is_none() {
                return Err(CreateError::NotFound);
            }
        }
        let graph = graphs
            .components
            .get(&assistant.graph_id)
            .map(|slot| slot.current())
            .ok_or_else(|| CreateError::GraphNotLoaded(assistant.graph_id.clone()))?;
        if !graph.pauses() {
            let from = from.clone().map(Value::String);
            let field = |name: &str| match name {
                "checkpoint_id" => from.as_ref(),
                "checkpoint" => None,
                name => body.field(name),
            };
            refuse_pausing(field, &assistant.graph_id).map_err(CreateError::Invalid)?;
        }

        // Resolve the thread: existing (within the create_run scope), or
        // made now.
        let graph_keys =
            object(&json!({"graph_id": assistant.graph_id, "assistant_id": assistant_id}));
        let (thread, created) = match target {
            Target::Thread(id) => match wait(storage.thread(id, filter.as_ref()))? {
                Some(thread) => (thread, false),
                None if create_thread && wait(storage.thread(id, None))?.is_none() => {
                    let mut metadata = stamped.clone();
                    metadata.extend(graph_keys.clone());
                    let thread = Thread::new(id, metadata);
                    if !wait(storage.insert_thread(&thread))? {
                        return Err(CreateError::NotFound);
                    }
                    (thread, true)
                }
                None => return Err(CreateError::NotFound),
            },
            Target::Stateless => {
                let mut metadata = stamped.clone();
                metadata.extend(graph_keys.clone());
                let thread = Thread::new(Uuid::now_v7(), metadata);
                wait(storage.insert_thread(&thread))?;
                (thread, true)
            }
        };

        // A past checkpoint to start from is one of this thread's.
        if let Some(id) = &from
            && wait(storage.checkpoint(thread.thread_id, id))?.is_none()
        {
            return Err(CreateError::CheckpointNotFound(id.clone()));
        }

        // Multitask: the runs already in flight on the thread.
        self.apply_strategy(authz, &thread, strategy)?;
        // The thread's metadata names its graph and assistant, as in
        // LangGraph; a thread that names them already is not written again.
        if !created
            && graph_keys
                .iter()
                .any(|(k, v)| thread.metadata.get(k) != Some(v))
        {
            wait(storage.update_thread(thread.thread_id, None, &graph_keys))?;
        }

        // Assemble the config: the assistant's, the client's, then the
        // server's keys.
        let user = authz.user();
        let mut configurable = object(&assistant.config["configurable"]);
        configurable.extend(object(&config["configurable"]));
        configurable.extend(object(&context));
        let server_keys = json!({
            "run_id": run_id, "thread_id": thread.thread_id, "graph_id": assistant.graph_id,
            "assistant_id": assistant_id, "user_id": user.identity,
            "langgraph_auth_user_id": user.identity,
            "langgraph_auth_permissions": user.permissions,
        });
        configurable.extend(object(&server_keys));
        match &from {
            Some(id) => configurable.insert("checkpoint_id".into(), json!(id)),
            None => configurable.remove("checkpoint_id"),
        };
        let mut full_config = config.clone();
        let mut stored_config = config.clone();
        let mut stored_configurable = configurable.clone();
        configurable.insert("langgraph_auth_user".into(), user_mapping(user, true));
        stored_configurable.insert("langgraph_auth_user".into(), user_mapping(user, false));
        full_config["configurable"] = Value::Object(configurable);
        stored_config["configurable"] = Value::Object(stored_configurable);
        let mut full_context = object(&assistant.context);
        full_context.extend(object(&context));
        if full_context.contains_key("user_id") {
            full_context.insert("user_id".into(), json!(user.identity));
        }

        // Metadata: the assistant's, the thread's, the config's, the run's.
        let mut run_metadata = assistant.metadata.clone();
        run_metadata.extend(thread.metadata.clone());
        run_metadata.extend(object(&config["metadata"]));
        run_metadata.extend(stamped);
        run_metadata.insert("assistant_id".into(), json!(assistant_id));
        run_metadata.insert("graph_id".into(), json!(assistant.graph_id));

        let mut kwargs = kwargs_seen;
        kwargs["config"] = stored_config;
        kwargs["context"] = Value::Object(full_context.clone());
        kwargs["checkpoint_during"] = json!(body.checkpoint_during.unwrap_or(true));
        if let Some(id) = &from {
            kwargs["checkpoint_id"] = json!(id);
        }
        kwargs["durability"] = json!(body.durability.clone().unwrap_or_else(|| "async".into()));
        let now = now();
        let run = Run {
            run_id,
            thread_id: thread.thread_id,
            assistant_id,
            created_at: now.clone(),
            updated_at: now,
            status: RunStatus::Pending,
            metadata: run_metadata,
            kwargs,
            multitask_strategy: strategy.as_str().into(),
        };
        let spec = RunSpec {
            run: run.clone(),
            thread_created_at: thread.created_at.clone(),
            graph,
            input: body.input.clone().unwrap_or(Value::Null),
            config: full_config,
            context: Value::Object(full_context),
            stream_modes: modes,
            resumable: body.stream_resumable.unwrap_or(false),
            delete_thread: stateless && body.on_completion.as_deref() != Some("keep"),
            start_after: body
                .after_seconds
                .filter(|s| *s > 0.0)
                .map(Duration::from_secs_f64),
        };
        let live = self.submit(spec)?;
        Ok(Created {
            run,
            live,
            cancel_on_disconnect: body.on_disconnect.as_deref() == Some("cancel"),
            stateless,
        })
    }

    /// Applies `strategy` to the runs in flight on `thread`: refuses the
    /// new run, or cancels them once the caller may update the thread (as
    /// `POST /threads/{id}/state`: a thread the caller may run on but not
    /// update is a 403, and nothing is cancelled).
    fn apply_strategy<A: Authorizer>(
        self: &Arc<Self>,
        authz: &mut A,
        thread: &Thread,
        strategy: MultitaskStrategy,
    ) -> Result<(), CreateError<A::Error>> {
        let in_flight = self.unfinished(thread.thread_id);
        if in_flight.is_empty() {
            return Ok(());
        }
        if strategy == MultitaskStrategy::Reject {
            return Err(CreateError::ThreadBusy);
        }
        let Some(action) = strategy.cancels() else {
            return Ok(());
        };
        let run_ids: Vec<Uuid> = in_flight.iter().map(|r| r.run_id).collect();
        let (scope, _) = authz
            .authorize(
                Resource::Threads,
                Action::Update,
                json!({"thread_id": thread.thread_id, "action": strategy.as_str(),
                       "metadata": {"run_ids": run_ids, "status": null}}),
            )
            .map_err(CreateError::Denied)?;
        if scope.is_some() && wait(self.storage.thread(thread.thread_id, scope.as_ref()))?.is_none()
        {
            return Err(CreateError::Forbidden);
        }
        for run in &in_flight {
            self.cancel(run.run_id, action);
        }
        Ok(())
    }
}
