//! The states a run and a thread go through, as the API names them.

use std::fmt;
use std::str::FromStr;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Created, not started (queued behind another run, or delayed).
    Pending,
    /// Executing.
    Running,
    /// Ended with its output.
    Success,
    /// Ended by a fault of its graph, or of the server.
    Error,
    /// Ended at its deadline.
    Timeout,
    /// Cancelled (`interrupt`), or paused before or after a node.
    Interrupted,
}

/// Where a thread is: between runs, or with one in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreadStatus {
    /// Nothing in flight.
    Idle,
    /// A run in flight.
    Busy,
    /// Its last run paused for a human.
    Interrupted,
    /// Its last run failed.
    Error,
}

/// A status name the API does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

macro_rules! named {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every status, in the API's order.
            pub const ALL: &[Self] = &[$(Self::$variant),*];

            /// The status as the API writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),*
                }
            }
        }

        impl FromStr for $ty {
            type Err = UnknownStatus;

            fn from_str(text: &str) -> Result<Self, UnknownStatus> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|status| status.as_str() == text)
                    .ok_or_else(|| UnknownStatus(text.to_owned()))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named!(RunStatus {
    Pending => "pending",
    Running => "running",
    Success => "success",
    Error => "error",
    Timeout => "timeout",
    Interrupted => "interrupted",
});

named!(ThreadStatus {
    Idle => "idle",
    Busy => "busy",
    Interrupted => "interrupted",
    Error => "error",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_as_written() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>(), Ok(*status));
        }
        for status in ThreadStatus::ALL {
            assert_eq!(status.to_string().parse::<ThreadStatus>(), Ok(*status));
        }
        assert_eq!(
            "done".parse::<RunStatus>(),
            Err(UnknownStatus("done".into()))
        );
    }
}
