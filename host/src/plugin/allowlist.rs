//! `auth.allowed_hosts`: which destinations a plugin's outbound HTTP may
//! reach. Patterns follow Spin's `allowed_outbound_hosts`:
//! `scheme://host[:port]` where the scheme is `http`, `https` or `*`, the
//! host is a name or address, `*`, or `*.domain` (any subdomain), and the
//! port is a number or `*`; without a port, the scheme's default port.

use std::fmt;

/// One allowed destination pattern.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct HostPattern {
    text: String,
    scheme: Option<Scheme>,
    host: HostMatch,
    port: Option<u16>,
}

/// A URL scheme outbound HTTP supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`: stored as `.example.com`.
    Subdomain(String),
}

impl TryFrom<String> for HostPattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl HostPattern {
    /// Parses `scheme://host[:port]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("{text:?} is not an allowed host: {why}"));
        let Some((scheme, rest)) = text.split_once("://") else {
            return bad("expected scheme://host[:port], e.g. \"https://idp.example.com\"");
        };
        let scheme = match scheme {
            "*" => None,
            s => match Scheme::parse(s) {
                Some(s) => Some(s),
                None => return bad("the scheme must be http, https or *"),
            },
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return bad("name a host, not a path, a query or credentials");
        }
        let (host, port) = split_host_port(rest);
        let port = match port {
            None => None,
            Some("*") => Some(None),
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => Some(Some(p)),
                _ => return bad("the port must be a number or *"),
            },
        };
        if port.is_none() && scheme.is_none() {
            return bad("with the scheme *, name a port (a number or *)");
        }
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return bad("a wildcard host is * or *.domain");
            }
            HostMatch::Subdomain(format!(".{domain}"))
        } else if host.is_empty() || host.contains('*') {
            return bad("a wildcard host is * or *.domain");
        } else {
            HostMatch::Exact(host)
        };
        // `None` port: the scheme's default; `Some(None)`: any port.
        let port = match port {
            None => Some(scheme.expect("checked above").default_port()),
            Some(p) => p,
        };
        Ok(Self {
            text: text.to_owned(),
            scheme,
            host,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this pattern.
    pub(crate) fn allows(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.scheme.is_none_or(|s| s == scheme)
            && self.port.is_none_or(|p| p == port)
            && match &self.host {
                HostMatch::Any => true,
                HostMatch::Exact(h) => *h == host,
                HostMatch::Subdomain(suffix) => host.ends_with(suffix.as_str()),
            }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `host[:port]`, with bracketed IPv6 addresses (brackets dropped).
pub(crate) fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// Whether any of `patterns` allows `scheme://host:port`.
pub(crate) fn allowed(patterns: &[HostPattern], scheme: Scheme, host: &str, port: u16) -> bool {
    patterns.iter().any(|p| p.allows(scheme, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, cases: &[(Scheme, &str, u16, bool)]) {
        let p = HostPattern::parse(pattern).unwrap();
        for (scheme, host, port, expected) in cases {
            assert_eq!(
                p.allows(*scheme, host, *port),
                *expected,
                "{pattern} vs {scheme:?}://{host}:{port}"
            );
        }
    }

    #[test]
    fn an_exact_host_takes_its_schemes_default_port() {
        use Scheme::*;
        check(
            "https://idp.example.com",
            &[
                (Https, "idp.example.com", 443, true),
                (Https, "IDP.example.com", 443, true),
                (Https, "idp.example.com", 8443, false),
                (Http, "idp.example.com", 443, false),
                (Https, "evil.com", 443, false),
                (Https, "idp.example.com.evil.com", 443, false),
            ],
        );
    }

    #[test]
    fn wildcards_cover_ports_schemes_and_subdomains() {
        use Scheme::*;
        check(
            "http://127.0.0.1:*",
            &[
                (Http, "127.0.0.1", 1, true),
                (Http, "127.0.0.1", 65535, true),
                (Https, "127.0.0.1", 443, false),
                (Http, "127.0.0.2", 80, false),
            ],
        );
        check(
            "https://*.example.com",
            &[
                (Https, "a.example.com", 443, true),
                (Https, "a.b.example.com", 443, true),
                (Https, "example.com", 443, false),
                (Https, "badexample.com", 443, false),
            ],
        );
        check(
            "*://localhost:8080",
            &[
                (Http, "localhost", 8080, true),
                (Https, "localhost", 8080, true),
                (Http, "localhost", 80, false),
            ],
        );
        check("https://[::1]:*", &[(Https, "::1", 9, true)]);
    }

    #[test]
    fn malformed_patterns_are_refused_with_a_reason() {
        for bad in [
            "idp.example.com",
            "ftp://x",
            "https://x/path",
            "https://x:port",
            "https://x:0",
            "*://x",
            "https://a*.b",
            "https://",
            "https://u@x",
        ] {
            let e = HostPattern::parse(bad).unwrap_err();
            assert!(e.contains("not an allowed host"), "{bad}: {e}");
        }
    }
}
