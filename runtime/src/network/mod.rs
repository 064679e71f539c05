//! Network isolation beyond "none": the allowlist rules and the egress proxy that enforces them.

pub mod fdpass;
pub mod proxy;
pub mod rules;
pub mod splice;

pub use proxy::{Listener, NetworkEvent, Proxy, ProxyConfig};
pub use rules::{Allowlist, Rule};

/// The port inside the job where the proxy answers (HTTP, CONNECT and SOCKS5 on one port).
pub const PROXY_PORT: u16 = 3128;

/// The variables that point a job's tools at the proxy. Loopback stays direct: inside the job
/// it is the job's own, and the host's loopback is reached (when a rule names it) only by
/// asking the proxy explicitly.
pub fn proxy_env() -> Vec<(String, String)> {
    let http = format!("http://127.0.0.1:{PROXY_PORT}");
    let socks = format!("socks5h://127.0.0.1:{PROXY_PORT}");
    let no_proxy = "localhost,127.0.0.1,::1".to_owned();
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
