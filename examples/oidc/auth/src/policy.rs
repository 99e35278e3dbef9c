//! Who a verified token is, and the reference policy's handlers: owners
//! stamped on creation, every event filtered to the caller's resources.

use warden_sdk::jwt::Claims;
use warden_sdk::prelude::*;

const READ_WRITE: &[&str] = &[
    "threads:read",
    "threads:write",
    "runs:create",
    "store:read",
    "store:write",
];

/// The permissions a role grants.
pub(crate) fn permissions(role: &str) -> &'static [&'static str] {
    match role {
        "user" => &[
            "threads:create",
            "threads:read",
            "threads:write",
            "runs:create",
            "store:read",
            "store:write",
        ],
        "admin" => &["threads:create", "assistants:write", "admin"],
        "reader" => &["threads:read", "store:read", "store:write"],
        _ => &[],
    }
}

/// The user of verified `claims`: `sub` as identity, `name` (or
/// `preferred_username`) as display name, permissions from `roles`.
pub(crate) fn user(claims: &Claims) -> User {
    let roles = claims.strings("roles");
    let mut granted: Vec<&str> = Vec::new();
    for role in &roles {
        let extra: &[&str] = if role == "admin" { READ_WRITE } else { &[] };
        for p in permissions(role).iter().chain(extra) {
            if !granted.contains(p) {
                granted.push(p);
            }
        }
    }
    let subject = claims.subject().unwrap_or_default();
    let mut user = User::new(subject)
        .with_permissions(granted)
        .with_field("roles", roles);
    if let Some(name) = claims
        .str("name")
        .or_else(|| claims.str("preferred_username"))
    {
        user = user.with_display_name(name);
    }
    user
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
    owner_only(ctx, value)
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

/// Registers the reference policy's handlers on `auth`.
pub(crate) fn handlers(auth: Auth) -> Auth {
    auth.on_all(owner_only)
        .on(ThreadAction::Create, threads_create)
        .on_resource(Resource::Assistants, assistants)
        .on_resource(Resource::Store, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(value: Value) -> Claims {
        let Value::Object(map) = value else { panic!() };
        Claims(map)
    }

    #[test]
    fn roles_map_to_permissions() {
        let admin = user(&claims(
            json!({"sub": "a", "roles": ["admin"], "name": "Ada"}),
        ));
        assert_eq!(admin.identity, "a");
        assert_eq!(admin.name(), "Ada");
        for p in [
            "admin",
            "assistants:write",
            "threads:create",
            "threads:read",
        ] {
            assert!(admin.permissions.contains(&p.to_owned()), "{p}");
        }
        let reader = user(&claims(json!({"sub": "r", "roles": "reader"})));
        assert!(!reader.permissions.contains(&"threads:create".to_owned()));
        let nobody = user(&claims(json!({"sub": "n", "roles": ["guest"]})));
        assert!(nobody.permissions.is_empty());
    }

    #[test]
    fn creation_stamps_the_owner_and_needs_the_permission() {
        let auth = handlers(Auth::new(|_| unreachable!()));
        let alice = user(&claims(json!({"sub": "alice", "roles": ["user"]})));
        let ctx = AuthContext::new(alice, Resource::Threads, Action::Create);
        let mut value = json!({"metadata": {"owner": "mallory"}});
        assert_eq!(
            auth.authorize(&ctx, &mut value),
            Ok(Outcome::Filter(Filter::eq("owner", "alice")))
        );
        assert_eq!(value["metadata"]["owner"], "alice");
        let reader = user(&claims(json!({"sub": "r", "roles": ["reader"]})));
        let ctx = AuthContext::new(reader, Resource::Threads, Action::Create);
        assert_eq!(
            auth.authorize(&ctx, &mut json!({})).unwrap_err().status,
            403
        );
    }
}
