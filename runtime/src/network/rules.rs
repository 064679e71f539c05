//! Allowlist rules and the decision for one connection attempt.
//!
//! A rule is `host:port`, `*.domain:port`, `host:*`, an IP (`10.1.2.3:5432`, `[::1]:443`) or a
//! CIDR (`10.0.0.0/8:5432`, `[fd00::/8]:*`); a leading `!` makes it a deny rule, and deny wins
//! over allow. Names are resolved by the proxy, never by the job, and a name that resolves to a
//! loopback, private, link-local, metadata or otherwise non-public address is refused unless an
//! IP or CIDR rule names that address: that is the defence against DNS rebinding
//! (`evil.example` answering 127.0.0.1) and against reaching the host's own services.

use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// An exact name, lower-case, without a trailing dot.
    Name(String),
    /// `*.example.com`: any name strictly below `example.com`.
    Suffix(String),
    /// An address range; a single address is a /32 or /128.
    Net { addr: IpAddr, prefix: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub deny: bool,
    pub host: HostPattern,
    /// `None` is `*`.
    pub port: Option<u16>,
    /// As written, for events and messages.
    pub text: String,
}

impl std::str::FromStr for Rule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            format!(
                "`{text}` is not a network rule ({why}): write host:port, *.domain:port, host:*, \
                 10.0.0.0/8:5432 or [::1]:443"
            )
        };
        let trimmed = text.trim();
        let (deny, rest) = match trimmed.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (inside, after) = bracketed.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("missing :port"))?;
            (inside, port)
        } else {
            rest.rsplit_once(':').ok_or_else(|| bad("missing :port"))?
        };
        let port = match port {
            "*" => None,
            number => Some(
                number
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad("the port must be 1-65535 or *"))?,
            ),
        };
        let host = parse_host(host).ok_or_else(|| bad("bad host"))?;
        Ok(Rule {
            deny,
            host,
            port,
            text: trimmed.to_owned(),
        })
    }
}

fn parse_host(host: &str) -> Option<HostPattern> {
    if let Some((addr, prefix)) = host.split_once('/') {
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        return (prefix <= max).then_some(HostPattern::Net { addr, prefix });
    }
    if let Ok(addr) = host.parse::<IpAddr>() {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        return Some(HostPattern::Net { addr, prefix });
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = |label: &str| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if let Some(domain) = name.strip_prefix("*.") {
        return domain
            .split('.')
            .all(valid)
            .then(|| HostPattern::Suffix(domain.to_owned()));
    }
    name.split('.')
        .all(valid)
        .then_some(HostPattern::Name(name))
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What the job asked to reach: a name (CONNECT, SOCKS5 domain, HTTP URL) or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Name(String),
    Addr(IpAddr),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Name(name) => f.write_str(name),
            Target::Addr(IpAddr::V6(addr)) => write!(f, "[{addr}]"),
            Target::Addr(addr) => write!(f, "{addr}"),
        }
    }
}

impl Target {
    pub fn parse(host: &str) -> Target {
        let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
        match unbracketed.parse::<IpAddr>() {
            Ok(addr) => Target::Addr(addr),
            Err(_) => Target::Name(host.trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    /// The rule that decided, when one did.
    pub rule: Option<String>,
    /// Why, in words a job's user can act on.
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    pub rules: Vec<Rule>,
}

impl Allowlist {
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<Allowlist, String> {
        rules
            .iter()
            .map(|rule| rule.as_ref().parse())
            .collect::<Result<_, _>>()
            .map(|rules| Allowlist { rules })
    }

    /// The decision that needs no name resolution: a denial when no allow rule can match
    /// `target:port`, or a deny rule names it. The proxy asks this first, so that a name nobody
    /// allowed is never even looked up (no DNS traffic on behalf of a job for it).
    pub fn refuse_early(&self, target: &Target, port: u16) -> Option<Decision> {
        let decision = self.decide(target, port, &[]);
        let allowed_by_name = self.rules.iter().any(|r| {
            !r.deny
                && r.port_matches(port)
                && (r.matches_target(target) || matches!(r.host, HostPattern::Net { .. }))
        });
        (!allowed_by_name
            || decision
                .rule
                .as_deref()
                .is_some_and(|rule| rule.starts_with('!')))
        .then_some(decision)
    }

    /// Decides on `target:port`, whose name resolved to `resolved` (the addresses the proxy
    /// would connect to). Every resolved address must be allowed, or the name is refused.
    pub fn decide(&self, target: &Target, port: u16, resolved: &[IpAddr]) -> Decision {
        let suggestion = format!("{target}:{port}");
        let deny = |rule: &Rule, why: String| Decision {
            allow: false,
            rule: Some(rule.text.clone()),
            reason: why,
        };
        for rule in self.rules.iter().filter(|r| r.deny && r.port_matches(port)) {
            if rule.matches_target(target) || resolved.iter().any(|addr| rule.matches_addr(*addr)) {
                return deny(rule, format!("denied by rule `{rule}`"));
            }
        }
        let by_name = self
            .rules
            .iter()
            .find(|r| !r.deny && r.port_matches(port) && r.matches_target(target));
        // A name may also be allowed by where it leads: every address it resolved to inside an
        // allowed range (`10.0.0.0/8:5432` lets `db.internal:5432` through).
        let by_address = || {
            let first = resolved.first()?;
            let rule = self.address_rule(*first, port)?;
            resolved
                .iter()
                .all(|addr| self.address_rule(*addr, port).is_some())
                .then_some(rule)
        };
        if by_name.is_none() {
            if let Some(rule) = by_address() {
                return Decision {
                    allow: true,
                    rule: Some(rule.text.clone()),
                    reason: format!(
                        "allowed by rule `{rule}` (every address {target} resolves to)"
                    ),
                };
            }
        }
        let Some(rule) = by_name else {
            return Decision {
                allow: false,
                rule: None,
                reason: format!("{suggestion} is not on the allowlist: add `{suggestion}` to network.allow (or --allow {suggestion})"),
            };
        };
        if resolved.is_empty() {
            return deny(rule, format!("{target} did not resolve to any address"));
        }
        // A name must not lead where only an address rule may: private, loopback, metadata.
        for addr in resolved {
            if !is_public(*addr) {
                let named = self.rules.iter().any(|r| {
                    !r.deny
                        && r.port_matches(port)
                        && matches!(r.host, HostPattern::Net { .. })
                        && r.matches_addr(*addr)
                });
                if !named {
                    return deny(
                        rule,
                        format!(
                            "{target} resolves to {addr}, a {} address; name it explicitly (`{}:{port}`) to allow it",
                            address_kind(*addr),
                            Target::Addr(*addr)
                        ),
                    );
                }
            }
        }
        Decision {
            allow: true,
            rule: Some(rule.text.clone()),
            reason: format!("allowed by rule `{rule}`"),
        }
    }
}

impl Allowlist {
    fn address_rule(&self, addr: IpAddr, port: u16) -> Option<&Rule> {
        self.rules.iter().find(|r| {
            !r.deny
                && r.port_matches(port)
                && matches!(r.host, HostPattern::Net { .. })
                && r.matches_addr(addr)
        })
    }
}

impl Rule {
    fn port_matches(&self, port: u16) -> bool {
        self.port.is_none_or(|p| p == port)
    }

    fn matches_target(&self, target: &Target) -> bool {
        match (&self.host, target) {
            (HostPattern::Name(name), Target::Name(asked)) => name == asked,
            (HostPattern::Suffix(domain), Target::Name(asked)) => asked
                .strip_suffix(domain.as_str())
                .is_some_and(|head| head.ends_with('.') && head.len() > 1),
            (HostPattern::Net { .. }, Target::Addr(addr)) => self.matches_addr(*addr),
            _ => false,
        }
    }

    fn matches_addr(&self, addr: IpAddr) -> bool {
        let HostPattern::Net { addr: net, prefix } = self.host else {
            return false;
        };
        match (net, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(addr) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(addr) & mask
            }
            _ => false,
        }
    }
}

/// `::ffff:127.0.0.1` is 127.0.0.1: an IPv4-mapped address must not slip past v4 rules.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        v4 => v4,
    }
}

/// Whether an address is on the public internet (what a name may lead to without a rule
/// naming the address).
pub fn is_public(addr: IpAddr) -> bool {
    address_kind(addr) == "public"
}

fn address_kind(addr: IpAddr) -> &'static str {
    match canonical(addr) {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                "loopback"
            } else if v4.octets() == [169, 254, 169, 254] {
                "cloud metadata"
            } else if v4.is_link_local() {
                "link-local"
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                "private"
            } else if v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || a >= 240
            {
                "non-routable"
            } else {
                "public"
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                "loopback"
            } else if first & 0xffc0 == 0xfe80 {
                "link-local"
            } else if first & 0xfe00 == 0xfc00 {
                "private"
            } else if v6.is_unspecified() || v6.is_multicast() {
                "non-routable"
            } else {
                "public"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(rules: &[&str]) -> Allowlist {
        Allowlist::parse(rules).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_every_form() {
        let parsed = list(&[
            "api.example.com:443",
            "*.github.com:443",
            "host:*",
            "10.0.0.0/8:5432",
            "[::1]:8080",
            "[fd00::/8]:*",
            "!evil.example.com:*",
        ]);
        assert_eq!(
            parsed.rules[0].host,
            HostPattern::Name("api.example.com".into())
        );
        assert_eq!(
            parsed.rules[1].host,
            HostPattern::Suffix("github.com".into())
        );
        assert_eq!(parsed.rules[2].port, None);
        assert_eq!(
            parsed.rules[3].host,
            HostPattern::Net {
                addr: ip("10.0.0.0"),
                prefix: 8
            }
        );
        assert_eq!(
            parsed.rules[4].host,
            HostPattern::Net {
                addr: ip("::1"),
                prefix: 128
            }
        );
        assert!(parsed.rules[6].deny);
        for bad in [
            "example.com",
            "example.com:0",
            "example.com:http",
            "10.0.0.0/33:1",
            "[::1:443",
            "bad host:80",
        ] {
            assert!(bad.parse::<Rule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn exact_wildcard_and_port() {
        let rules = list(&[
            "api.example.com:443",
            "*.github.com:443",
            "any.example.org:*",
        ]);
        let public = [ip("93.184.216.34")];
        let decide = |host: &str, port| rules.decide(&Target::parse(host), port, &public).allow;
        assert!(decide("api.example.com", 443));
        assert!(!decide("api.example.com", 80));
        assert!(decide("codeload.github.com", 443));
        assert!(
            !decide("github.com", 443),
            "*.github.com does not match the apex"
        );
        assert!(!decide("evilgithub.com", 443));
        assert!(decide("any.example.org", 8443));
        let denied = rules.decide(&Target::parse("other.example.com"), 443, &public);
        assert!(
            denied.reason.contains("other.example.com:443"),
            "{}",
            denied.reason
        );
    }

    #[test]
    fn names_resolving_to_private_addresses_need_an_address_rule() {
        let rules = list(&["rebind.example.com:80"]);
        let target = Target::parse("rebind.example.com");
        for addr in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "::1",
            "::ffff:127.0.0.1",
            "fd00::1",
        ] {
            let decision = rules.decide(&target, 80, &[ip(addr)]);
            assert!(!decision.allow, "{addr}");
            assert!(
                decision.reason.contains("name it explicitly"),
                "{}",
                decision.reason
            );
        }
        assert!(
            rules.refuse_early(&target, 80).is_none(),
            "an allowed name is resolved"
        );
        assert!(rules
            .refuse_early(&Target::parse("other.example.com"), 80)
            .is_some());
        let with_address = list(&["rebind.example.com:80", "127.0.0.1:80"]);
        assert!(with_address.decide(&target, 80, &[ip("127.0.0.1")]).allow);
    }

    #[test]
    fn cidr_rules_and_deny_wins() {
        let rules = list(&[
            "10.0.0.0/8:5432",
            "*.example.com:443",
            "!secret.example.com:*",
        ]);
        assert!(
            rules
                .decide(&Target::parse("10.2.3.4"), 5432, &[ip("10.2.3.4")])
                .allow
        );
        assert!(
            !rules
                .decide(&Target::parse("11.2.3.4"), 5432, &[ip("11.2.3.4")])
                .allow
        );
        let denied = rules.decide(
            &Target::parse("secret.example.com"),
            443,
            &[ip("93.184.216.34")],
        );
        assert!(!denied.allow);
        assert_eq!(denied.rule.as_deref(), Some("!secret.example.com:*"));
    }
}
