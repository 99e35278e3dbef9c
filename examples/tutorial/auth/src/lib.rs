//! Part 1 of LangGraph's auth tutorial: two hard-coded tokens, authentication
//! only, no authorization handlers (every authenticated user may do anything).
//! It reads the `Authorization` header only, and says so: the host sends no
//! other header.

use warden_sdk::prelude::*;

/// Token → identity.
const VALID_TOKENS: &[(&str, &str)] = &[("user1-token", "user1"), ("user2-token", "user2")];

fn authenticate(request: &Request) -> Result<User, HttpError> {
    let token = request.bearer_token();
    VALID_TOKENS
        .iter()
        .find(|(t, _)| Some(*t) == token)
        .map(|(_, identity)| User::new(*identity))
        .ok_or_else(|| HttpError::unauthorized("Invalid token"))
}

/// The plugin's `Auth` object.
pub fn auth() -> Auth {
    Auth::new(authenticate).reads_headers(["authorization"])
}

warden_sdk::export_auth!(auth);

#[cfg(test)]
mod tests {
    use super::*;

    fn call(authorization: Option<&str>) -> Result<User, HttpError> {
        let mut request = Request::new("GET", "/threads");
        if let Some(value) = authorization {
            request = request.with_header("Authorization", value);
        }
        auth().authenticate(&request)
    }

    #[test]
    fn known_tokens_authenticate() {
        assert_eq!(call(Some("Bearer user1-token")).unwrap().identity, "user1");
        assert_eq!(call(Some("bearer user2-token")).unwrap().identity, "user2");
    }

    #[test]
    fn anything_else_is_401() {
        for header in [
            None,
            Some("Bearer nope"),
            Some("Basic user1-token"),
            Some("Bearer"),
        ] {
            assert_eq!(call(header).unwrap_err().status, 401, "{header:?}");
        }
    }

    #[test]
    fn registers_no_handlers_and_reads_authorization_only() {
        assert_eq!(auth().registered().count(), 0);
        assert_eq!(auth().headers(), Some(&["authorization".to_owned()][..]));
    }
}
