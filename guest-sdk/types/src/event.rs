//! Authorization events as typed values: a resource and one of *its*
//! actions, so that an event that does not exist (`store.create`) cannot be
//! written. `warden:auth@0.2.0` sends events in this shape.

use std::fmt;

use crate::{Action, Resource};

macro_rules! actions {
    ($(#[$doc:meta])* $name:ident => $resource:ident { $($variant:ident,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $(#[doc = concat!("`", stringify!($variant), "`.")] $variant,)* }

        impl $name {
            /// Every action of the resource, in contract order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The action, among every resource's.
            pub fn action(self) -> Action {
                match self { $($name::$variant => Action::$variant,)* }
            }

            /// The resource's action named `action`, if it has one.
            pub fn from_action(action: Action) -> Option<Self> {
                match action {
                    $(Action::$variant => Some($name::$variant),)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }

        impl From<$name> for Event {
            fn from(action: $name) -> Self {
                Event::$resource(action)
            }
        }
    };
}

actions! {
    /// The actions on threads (runs are authorized as threads).
    ThreadAction => Threads { Create, Read, Update, Delete, Search, CreateRun, }
}
actions! {
    /// The actions on assistants.
    AssistantAction => Assistants { Create, Read, Update, Delete, Search, }
}
actions! {
    /// The actions on crons.
    CronAction => Crons { Create, Read, Update, Delete, Search, }
}
actions! {
    /// The actions on the store.
    StoreAction => Store { Put, Get, Search, Delete, ListNamespaces, }
}

/// An authorization event: `threads.create`, `store.put`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    /// An action on threads.
    Threads(ThreadAction),
    /// An action on assistants.
    Assistants(AssistantAction),
    /// An action on crons.
    Crons(CronAction),
    /// An action on the store.
    Store(StoreAction),
}

impl Event {
    /// The event `(resource, action)`, if that resource has that action.
    pub fn new(resource: Resource, action: Action) -> Option<Self> {
        Some(match resource {
            Resource::Threads => ThreadAction::from_action(action)?.into(),
            Resource::Assistants => AssistantAction::from_action(action)?.into(),
            Resource::Crons => CronAction::from_action(action)?.into(),
            Resource::Store => StoreAction::from_action(action)?.into(),
        })
    }

    /// The event's resource.
    pub fn resource(self) -> Resource {
        match self {
            Event::Threads(_) => Resource::Threads,
            Event::Assistants(_) => Resource::Assistants,
            Event::Crons(_) => Resource::Crons,
            Event::Store(_) => Resource::Store,
        }
    }

    /// The event's action.
    pub fn action(self) -> Action {
        match self {
            Event::Threads(a) => a.action(),
            Event::Assistants(a) => a.action(),
            Event::Crons(a) => a.action(),
            Event::Store(a) => a.action(),
        }
    }

    /// Every event, resource by resource in contract order.
    pub fn all() -> impl Iterator<Item = Event> {
        Resource::ALL
            .iter()
            .flat_map(|r| r.actions().iter().filter_map(move |a| Event::new(*r, *a)))
    }
}

/// `threads.create`, as LangGraph names events.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.resource(), self.action())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_exactly_the_resources_actions() {
        for resource in Resource::ALL {
            for action in Action::ALL {
                let event = Event::new(*resource, *action);
                assert_eq!(
                    event.is_some(),
                    resource.actions().contains(action),
                    "{resource}.{action}"
                );
                if let Some(event) = event {
                    assert_eq!((event.resource(), event.action()), (*resource, *action));
                    assert_eq!(event.to_string(), format!("{resource}.{action}"));
                }
            }
        }
        assert_eq!(Event::all().count(), 21);
    }

    #[test]
    fn typed_actions_convert_to_events() {
        assert_eq!(
            Event::from(StoreAction::ListNamespaces).to_string(),
            "store.list_namespaces"
        );
        assert_eq!(
            Event::from(ThreadAction::CreateRun).resource(),
            Resource::Threads
        );
    }
}
