//! Network isolation beyond "none": the allowlist rules and the egress proxy that enforces them.

pub mod fdpass;
pub mod forwarder;
pub mod proxy;
pub mod rules;
pub mod splice;

pub use proxy::{Listener, NetworkEvent, Proxy, ProxyConfig};
pub use rules::{Allowlist, Rule};

/// The port inside the job where the proxy answers (HTTP, CONNECT and SOCKS5 on one port).
pub const PROXY_PORT: u16 = 3128;

/// The variables that point a job's tools at the proxy. Inside the job loopback is its own, so
/// `NO_PROXY` keeps it direct (a job reaches the servers it starts itself), unless a rule allows
/// a loopback destination: that rule means the host's loopback, which only the proxy reaches,
/// and curl, pip or urllib honouring `NO_PROXY` would otherwise miss it (DESIGN §4: never
/// route an allowed host around the proxy).
pub fn proxy_env(allowlist: &Allowlist) -> Vec<(String, String)> {
    let http = format!("http://127.0.0.1:{PROXY_PORT}");
    let socks = format!("socks5h://127.0.0.1:{PROXY_PORT}");
    let no_proxy = if allowlist.allows_loopback() {
        String::new()
    } else {
        "localhost,127.0.0.1,::1".to_owned()
    };
    let mut env = Vec::new();
    for (name, value) in [
        ("HTTP_PROXY", &http),
        ("HTTPS_PROXY", &http),
        ("ALL_PROXY", &socks),
        ("NO_PROXY", &no_proxy),
    ] {
        env.push((name.to_owned(), value.clone()));
        env.push((name.to_ascii_lowercase(), value.clone()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_proxy(rules: &[&str]) -> String {
        let allowlist = Allowlist::parse(rules).unwrap();
        let env = proxy_env(&allowlist);
        let value = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(value("NO_PROXY"), value("no_proxy"));
        value("NO_PROXY").unwrap()
    }

    #[test]
    fn loopback_stays_direct_unless_a_rule_allows_it() {
        assert_eq!(
            no_proxy(&["pypi.org:443", "0.0.0.0/0:443"]),
            "localhost,127.0.0.1,::1"
        );
        assert_eq!(no_proxy(&["127.0.0.1:8080"]), "");
        assert_eq!(no_proxy(&["localhost:8080"]), "");
    }
}
