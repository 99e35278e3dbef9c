//! The reference policy (`shared/reference/src/security/auth.py`) as a Warden
//! plugin.
//!
//! | token          | identity | permissions                                  |
//! |----------------|----------|----------------------------------------------|
//! | `user1-token`  | user1    | threads:create + read/write                  |
//! | `user2-token`  | user2    | threads:create + read/write                  |
//! | `admin-token`  | admin    | everything + assistants:write, admin         |
//! | `reader-token` | reader   | threads:read, store:read, store:write        |
//!
//! Anything else is 401. `authenticate` reads the `Authorization` header
//! only, and declares it: the host sends no other header.
//!
//! Authorization: the global handler stamps `metadata.owner` on create /
//! create_run / update and filters every event to the caller's resources;
//! `threads.create` also needs `threads:create`; assistants are writable by
//! admins only and readable by everyone; store namespaces must start with
//! the caller's identity.

use warden_sdk::prelude::*;

const BASE: &[&str] = &[
    "threads:read",
    "threads:write",
    "runs:create",
    "store:read",
    "store:write",
];

fn user_for(token: &str) -> Option<User> {
    let (identity, display_name, extra): (&str, &str, &[&str]) = match token {
        "user1-token" => ("user1", "Alice", &["threads:create"]),
        "user2-token" => ("user2", "Bob", &["threads:create"]),
        "admin-token" => ("admin", "Admin", &["threads:create"]),
        "reader-token" => ("reader", "Reader", &[]),
        _ => return None,
    };
    let permissions: Vec<&str> = match identity {
        "reader" => vec!["threads:read", "store:read", "store:write"],
        "admin" => [extra, BASE, &["assistants:write", "admin"]].concat(),
        _ => [extra, BASE].concat(),
    };
    Some(
        User::new(identity)
            .with_display_name(display_name)
            .with_permissions(permissions),
    )
}

fn authenticate(request: &Request) -> Result<User, HttpError> {
    let Some(authorization) = request.authorization().filter(|a| !a.is_empty()) else {
        return Err(HttpError::unauthorized("Missing Authorization header"));
    };
    let (scheme, token) = authorization
        .trim()
        .split_once(' ')
        .unwrap_or((authorization.trim(), ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(HttpError::unauthorized(
            "Invalid Authorization scheme; expected Bearer",
        ));
    }
    user_for(token).ok_or_else(|| HttpError::unauthorized("Invalid token"))
}

fn owner_only(ctx: &AuthContext, value: &mut Value) -> HandlerResult {
    if matches!(
        ctx.action,
        Action::Create | Action::CreateRun | Action::Update
    ) {
        value.stamp_metadata("owner", &ctx.user.identity);
    }
    Ok(Filter::eq("owner", &ctx.user.identity).into())
}

fn threads_create(ctx: &AuthContext, value: &mut Value) -> HandlerResult {
    if !ctx.has_permission("threads:create") {
        return Err(HttpError::forbidden("Missing permission: threads:create"));
    }
    value.stamp_metadata("owner", &ctx.user.identity);
    Ok(Filter::eq("owner", &ctx.user.identity).into())
}

fn assistants(ctx: &AuthContext, value: &mut Value) -> HandlerResult {
    if matches!(ctx.action, Action::Create | Action::Update | Action::Delete) {
        if !ctx.has_permission("admin") {
            return Err(HttpError::forbidden("Only admin may modify assistants"));
        }
        if ctx.action == Action::Create {
            value.stamp_metadata("owner", &ctx.user.identity);
        }
    }
    Ok(Outcome::Allow)
}

fn store(ctx: &AuthContext, value: &mut Value) -> HandlerResult {
    match value.namespace().first() {
        Some(first) if *first == ctx.user.identity => Ok(Outcome::Allow),
        _ => Err(HttpError::forbidden(
            "Store namespace must start with the caller's identity",
        )),
    }
}

/// The plugin's `Auth` object.
pub fn auth() -> Auth {
    Auth::new(authenticate)
        .reads_headers(["authorization"])
        .on_all(owner_only)
        .on(ThreadAction::Create, threads_create)
        .on_resource(Resource::Assistants, assistants)
        .on_resource(Resource::Store, store)
}

warden_sdk::export_auth!(auth);

#[cfg(test)]
mod tests {
    use super::*;

    fn login(token: &str) -> User {
        let request =
            Request::new("GET", "/threads").with_header("authorization", format!("Bearer {token}"));
        auth().authenticate(&request).expect("a known token")
    }

    fn authorize(
        token: &str,
        resource: Resource,
        action: Action,
        value: &mut Value,
    ) -> HandlerResult {
        auth().authorize(&AuthContext::new(login(token), resource, action), value)
    }

    #[test]
    fn tokens_map_to_the_reference_users() {
        let admin = login("admin-token");
        assert_eq!(admin.name(), "Admin");
        assert!(admin.permissions.contains(&"admin".to_owned()));
        assert!(
            !login("reader-token")
                .permissions
                .contains(&"threads:create".to_owned())
        );
        assert_eq!(login("user2-token").permissions.len(), 6);
    }

    #[test]
    fn only_the_authorization_header_is_read() {
        assert_eq!(auth().headers(), Some(&["authorization".to_owned()][..]));
        let request = Request::new("GET", "/threads")
            .with_header("x-forwarded-for", "10.0.0.1")
            .with_header("Authorization", "Bearer user1-token");
        assert_eq!(auth().authenticate(&request).unwrap().identity, "user1");
    }

    #[test]
    fn bad_credentials_are_401_with_the_reference_details() {
        let cases = [
            (None, "Missing Authorization header"),
            (
                Some("Basic abc"),
                "Invalid Authorization scheme; expected Bearer",
            ),
            (
                Some("Bearer"),
                "Invalid Authorization scheme; expected Bearer",
            ),
            (Some("Bearer nope"), "Invalid token"),
        ];
        for (header, detail) in cases {
            let mut request = Request::new("GET", "/threads");
            if let Some(h) = header {
                request = request.with_header("authorization", h);
            }
            let err = auth().authenticate(&request).unwrap_err();
            assert_eq!((err.status, err.detail.as_deref()), (401, Some(detail)));
        }
    }

    #[test]
    fn thread_creation_stamps_the_owner_over_a_spoof() {
        let mut value = json!({"thread_id": "t", "metadata": {"owner": "user2"}});
        let outcome = authorize("user1-token", Resource::Threads, Action::Create, &mut value);
        assert_eq!(outcome, Ok(Outcome::Filter(Filter::eq("owner", "user1"))));
        assert_eq!(value["metadata"]["owner"], "user1");
    }

    #[test]
    fn reader_cannot_create_threads() {
        let err = authorize(
            "reader-token",
            Resource::Threads,
            Action::Create,
            &mut json!({}),
        )
        .unwrap_err();
        assert_eq!(err.status, 403);
    }

    #[test]
    fn reads_are_filtered_by_owner_without_stamping() {
        let mut value = json!({"thread_id": "t"});
        let outcome = authorize("user2-token", Resource::Threads, Action::Read, &mut value);
        assert_eq!(outcome, Ok(Outcome::Filter(Filter::eq("owner", "user2"))));
        assert_eq!(value, json!({"thread_id": "t"}));
    }

    #[test]
    fn only_admins_write_assistants() {
        let mut value = json!({"metadata": {}});
        assert_eq!(
            authorize(
                "user1-token",
                Resource::Assistants,
                Action::Create,
                &mut value
            )
            .unwrap_err()
            .status,
            403
        );
        assert_eq!(
            authorize(
                "admin-token",
                Resource::Assistants,
                Action::Create,
                &mut value
            ),
            Ok(Outcome::Allow)
        );
        assert_eq!(value["metadata"]["owner"], "admin");
        assert_eq!(
            authorize(
                "user1-token",
                Resource::Assistants,
                Action::Search,
                &mut json!({})
            ),
            Ok(Outcome::Allow)
        );
    }

    #[test]
    fn store_namespaces_start_with_the_caller() {
        let mut own = json!({"namespace": ["user1", "docs"], "key": "k"});
        assert_eq!(
            authorize("user1-token", Resource::Store, Action::Put, &mut own),
            Ok(Outcome::Allow)
        );
        for ns in [json!(["user2", "docs"]), json!([]), Value::Null] {
            let mut value = json!({"namespace": ns});
            let err = authorize("user1-token", Resource::Store, Action::Get, &mut value);
            assert_eq!(err.unwrap_err().status, 403);
        }
    }

    #[test]
    fn crons_fall_to_the_global_owner_handler() {
        let mut value = json!({"metadata": {}});
        let outcome = authorize("user1-token", Resource::Crons, Action::Create, &mut value);
        assert_eq!(outcome, Ok(Outcome::Filter(Filter::eq("owner", "user1"))));
        assert_eq!(value["metadata"]["owner"], "user1");
    }
}
