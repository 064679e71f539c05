//! Allowlist rules and the decision for one connection attempt.
//!
//! A rule is `host:port`, `*.domain:port`, `host:*`, an IP (`10.1.2.3:5432`, `[::1]:443`) or a
//! CIDR (`10.0.0.0/8:5432`, `[fd00::/8]:*`); a leading `!` makes it a deny rule, and deny wins
//! over allow. Names are resolved by the proxy, never by the job, and only when a name rule could
//! allow them: a lookup is traffic too, and DNS carries `<data>.attacker.example` out of any
//! network. Address rules apply to address literals (and to names only when the operator opts in
//! with `resolve_names_for_address_rules`). A loopback, private, link-local, metadata or otherwise
//! non-public address, including one embedded in an IPv6 form (NAT64, 6to4, Teredo, mapped,
//! compatible), is reached only through a rule naming it: that is the defence against DNS
//! rebinding (`evil.example` answering 127.0.0.1) and against reaching the host's own services.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    /// The address that decided a denial, when one did (a name may resolve to several).
    pub address: Option<IpAddr>,
}

/// How the proxy learns where a name leads. The decision asks through this seam, and only for
/// names a rule could allow, so a test can prove which names are never looked up: a lookup is
/// itself traffic a job can steer (`<stolen data>.attacker.example` leaks through DNS whether or
/// not the connection is then allowed).
pub trait Resolver {
    /// The addresses `name` resolves to; none when it does not resolve.
    fn resolve(&self, name: &str, port: u16) -> impl Future<Output = Vec<IpAddr>> + Send;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    pub rules: Vec<Rule>,
    /// Whether a name no name rule matches is looked up to see if an address rule allows where
    /// it leads (`10.0.0.0/8:5432` letting `db.internal:5432` through). Off by default: then
    /// address rules apply to address literals only, and such a name is refused unresolved.
    pub resolve_names_for_address_rules: bool,
}

impl Allowlist {
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<Allowlist, String> {
        rules
            .iter()
            .map(|rule| rule.as_ref().parse())
            .collect::<Result<_, _>>()
            .map(|rules| Allowlist {
                rules,
                resolve_names_for_address_rules: false,
            })
    }

    /// Decides on `target:port`. A name is resolved (through `resolver`) only when an allow rule
    /// could let it through and no deny rule names it; returns the decision and the addresses
    /// the proxy may connect to (the literal itself, or what the name resolved to).
    pub async fn decide(
        &self,
        target: &Target,
        port: u16,
        resolver: &impl Resolver,
    ) -> (Decision, Vec<IpAddr>) {
        let resolved = match target {
            Target::Addr(addr) => vec![*addr],
            Target::Name(name) => {
                if let Some(refusal) = self.refuse_unresolved(target, port) {
                    return (refusal, Vec::new());
                }
                resolver.resolve(name, port).await
            }
        };
        (self.judge(target, port, &resolved), resolved)
    }

    /// The refusal of a name that must not even be looked up: a deny rule names it, or no
    /// rule that could allow it exists.
    fn refuse_unresolved(&self, target: &Target, port: u16) -> Option<Decision> {
        if let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.deny && r.port_matches(port) && r.matches_target(target))
        {
            return Some(Decision {
                allow: false,
                rule: Some(rule.text.clone()),
                reason: format!("denied by rule `{rule}`"),
                address: None,
            });
        }
        let may_allow = self.rules.iter().any(|r| {
            !r.deny
                && r.port_matches(port)
                && (r.matches_target(target)
                    || (self.resolve_names_for_address_rules
                        && matches!(r.host, HostPattern::Net { .. })))
        });
        let suggestion = format!("{target}:{port}");
        (!may_allow).then(|| Decision {
            allow: false,
            rule: None,
            reason: format!(
                "{suggestion} is not on the allowlist: no name rule matches it, so it was not \
                 resolved (address rules apply to address literals only); add `{suggestion}` to \
                 network.allow (or --allow {suggestion})"
            ),
            address: None,
        })
    }

    /// The decision once the addresses are known. Every address must be allowed, or the
    /// connection is refused.
    fn judge(&self, target: &Target, port: u16, resolved: &[IpAddr]) -> Decision {
        let suggestion = format!("{target}:{port}");
        let deny = |rule: Option<&Rule>, reason: String, address: Option<&IpAddr>| Decision {
            allow: false,
            rule: rule.map(|r| r.text.clone()),
            reason,
            address: address.copied(),
        };
        for rule in self.rules.iter().filter(|r| r.deny && r.port_matches(port)) {
            let by_address = resolved.iter().find(|addr| rule.matches_addr(**addr));
            if rule.matches_target(target) || by_address.is_some() {
                return deny(Some(rule), format!("denied by rule `{rule}`"), by_address);
            }
        }
        let by_name = match target {
            Target::Name(_) => self
                .rules
                .iter()
                .find(|r| !r.deny && r.port_matches(port) && r.matches_target(target)),
            Target::Addr(_) => None,
        };
        if resolved.is_empty() {
            return deny(
                by_name,
                format!("{target} did not resolve to any address"),
                None,
            );
        }
        // Without a name rule, every address must be inside an allowed range: an address
        // literal always, a name only when `resolve_names_for_address_rules` had it looked up.
        let covering = || {
            resolved
                .iter()
                .map(|addr| self.address_rule(*addr, port, |_| true))
                .collect::<Option<Vec<_>>>()
                .and_then(|rules| rules.first().copied())
        };
        let Some(rule) = by_name.or_else(covering) else {
            let uncovered = resolved
                .iter()
                .find(|addr| self.address_rule(**addr, port, |_| true).is_none());
            return deny(
                None,
                format!(
                    "{suggestion} is not on the allowlist: add `{suggestion}` to network.allow \
                     (or --allow {suggestion})"
                ),
                uncovered,
            );
        };
        // Loopback, private, link-local, metadata: only a rule naming the address itself (or a
        // range of that kind only) reaches it, never a name or a wider range.
        for addr in resolved {
            let kind = address_kind(*addr);
            if kind != PUBLIC
                && self
                    .address_rule(*addr, port, |r| r.lies_within(kind))
                    .is_none()
            {
                let leads = match target {
                    Target::Name(_) => format!("{target} resolves to {}", describe(*addr)),
                    Target::Addr(_) => describe(*addr),
                };
                return deny(
                    Some(rule),
                    format!(
                        "{leads}, a {kind} address; name it explicitly (`{}:{port}`) to allow it",
                        Target::Addr(*addr)
                    ),
                    Some(addr),
                );
            }
        }
        let reason = match (by_name, target) {
            (None, Target::Name(_)) => {
                format!("allowed by rule `{rule}` (every address {target} resolves to)")
            }
            _ => format!("allowed by rule `{rule}`"),
        };
        Decision {
            allow: true,
            rule: Some(rule.text.clone()),
            reason,
            address: None,
        }
    }

    /// The first allow rule of address form that covers `addr:port` and passes `also`.
    fn address_rule(&self, addr: IpAddr, port: u16, also: impl Fn(&Rule) -> bool) -> Option<&Rule> {
        self.rules.iter().find(|r| {
            !r.deny
                && r.port_matches(port)
                && matches!(r.host, HostPattern::Net { .. })
                && r.matches_addr(addr)
                && also(r)
        })
    }

    /// Whether an allow rule can lead to a loopback address: `localhost`, `*.localhost`, or an
    /// address rule naming loopback (a wider range such as `0.0.0.0/0` never reaches it). Inside
    /// the job loopback is its own, so such a rule can only mean the host's, reached through the
    /// proxy.
    pub fn allows_loopback(&self) -> bool {
        self.rules.iter().any(|r| {
            !r.deny
                && match &r.host {
                    HostPattern::Name(name) | HostPattern::Suffix(name) => {
                        name == "localhost" || name.ends_with(".localhost")
                    }
                    HostPattern::Net { .. } => r.lies_within("loopback"),
                }
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
        self.range()
            .is_some_and(|(first, last)| match (first, last, canonical(addr)) {
                (IpAddr::V4(first), IpAddr::V4(last), IpAddr::V4(addr)) => {
                    (first..=last).contains(&addr)
                }
                (IpAddr::V6(first), IpAddr::V6(last), IpAddr::V6(addr)) => {
                    (first..=last).contains(&addr)
                }
                _ => false,
            })
    }

    /// The first and last address of an address rule.
    fn range(&self) -> Option<(IpAddr, IpAddr)> {
        let HostPattern::Net { addr, prefix } = self.host else {
            return None;
        };
        Some(match addr {
            IpAddr::V4(net) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                let first = u32::from(net) & mask;
                (IpAddr::V4(first.into()), IpAddr::V4((first | !mask).into()))
            }
            IpAddr::V6(net) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                let first = u128::from(net) & mask;
                (IpAddr::V6(first.into()), IpAddr::V6((first | !mask).into()))
            }
        })
    }

    /// Whether every address of this rule's range is of `kind`: such a rule names, say, a
    /// loopback address, where `0.0.0.0/0:443` or `[2000::/3]:443` merely covers one.
    fn lies_within(&self, kind: &str) -> bool {
        self.range()
            .is_some_and(|(first, last)| address_kind(first) == kind && address_kind(last) == kind)
    }
}

/// `::ffff:127.0.0.1` is 127.0.0.1: the kernel connects an IPv4-mapped address over IPv4, so it
/// must not slip past v4 rules.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        v4 => v4,
    }
}

const PUBLIC: &str = "public";

/// The IPv4 address an IPv6 address carries, and the form that carries it. Each form leads
/// to that IPv4 address through some translator or tunnel, so it is judged as that address
/// (`64:ff9b::a9fe:a9fe` is the cloud metadata service behind a NAT64 gateway).
fn embedded_ipv4(v6: Ipv6Addr) -> Option<(&'static str, Ipv4Addr)> {
    let s = v6.segments();
    let low = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    if let Some(v4) = v6.to_ipv4_mapped() {
        Some(("IPv4-mapped", v4))
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(("NAT64", low))
    } else if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
        Some(("IPv4-compatible", low))
    } else if s[0] == 0x2002 {
        Some((
            "6to4",
            Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])),
        ))
    } else if s[0] == 0x2001 && s[1] == 0 {
        // Teredo stores the client's address inverted (RFC 4380 §4).
        Some(("Teredo", Ipv4Addr::from(!u32::from(low))))
    } else {
        None
    }
}

/// An address as a denial names it: with the IPv4 address it embeds, when it embeds one.
fn describe(addr: IpAddr) -> String {
    match addr {
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some((form, v4)) => format!("{v6} ({form} form of {v4})"),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    }
}

/// What kind of place an address leads to; only `public` is reachable without a rule naming
/// the address.
fn address_kind(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                "loopback"
            } else if a == 0 {
                // connect(0.0.0.0) reaches the host itself.
                "this-host (unspecified)"
            } else if v4.octets() == [169, 254, 169, 254] {
                "cloud metadata"
            } else if v4.is_link_local() {
                "link-local"
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                "private"
            } else if v4.is_broadcast() || v4.is_multicast() || a >= 240 {
                "non-routable"
            } else {
                PUBLIC
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                "loopback"
            } else if v6.is_unspecified() {
                "this-host (unspecified)"
            } else if let Some((_, v4)) = embedded_ipv4(v6) {
                address_kind(IpAddr::V4(v4))
            } else if first & 0xffc0 == 0xfe80 {
                "link-local"
            } else if first & 0xfe00 == 0xfc00
                // fec0::/10: the deprecated site-local range, still a site's own network.
                || first & 0xffc0 == 0xfec0
                // 64:ff9b:1::/48: NAT64 for a site's own translator (RFC 8215), whose
                // prefix length (and so where the IPv4 address sits) only the site knows.
                || v6.segments()[..3] == [0x64, 0xff9b, 1]
            {
                "private"
            } else if v6.is_multicast() {
                "non-routable"
            } else {
                PUBLIC
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures_util::FutureExt;

    use super::*;

    fn list(rules: &[&str]) -> Allowlist {
        Allowlist::parse(rules).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Answers every lookup with the same addresses, and remembers what was asked.
    struct Fixed {
        answer: Vec<IpAddr>,
        asked: Mutex<Vec<String>>,
    }

    impl Resolver for Fixed {
        fn resolve(&self, name: &str, _port: u16) -> impl Future<Output = Vec<IpAddr>> + Send {
            self.asked.lock().unwrap().push(name.to_owned());
            std::future::ready(self.answer.clone())
        }
    }

    /// The decision on `host:port` when every name resolves to `answer`, and the names looked up.
    fn decide(
        rules: &Allowlist,
        host: &str,
        port: u16,
        answer: &[&str],
    ) -> (Decision, Vec<String>) {
        let resolver = Fixed {
            answer: answer.iter().map(|a| ip(a)).collect(),
            asked: Mutex::new(Vec::new()),
        };
        let (decision, _) = rules
            .decide(&Target::parse(host), port, &resolver)
            .now_or_never()
            .unwrap();
        (decision, resolver.asked.into_inner().unwrap())
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
        let allowed = |host: &str, port| decide(&rules, host, port, &["93.184.216.34"]).0.allow;
        assert!(allowed("api.example.com", 443));
        assert!(!allowed("api.example.com", 80));
        assert!(allowed("codeload.github.com", 443));
        assert!(
            !allowed("github.com", 443),
            "*.github.com does not match the apex"
        );
        assert!(!allowed("evilgithub.com", 443));
        assert!(allowed("any.example.org", 8443));
        let (denied, _) = decide(&rules, "other.example.com", 443, &["93.184.216.34"]);
        assert!(
            denied.reason.contains("add `other.example.com:443`"),
            "{}",
            denied.reason
        );
    }

    /// DNS exfiltration: with only address rules, a job asking for `<data>.attacker.example`
    /// must not make the proxy look that name up.
    #[test]
    fn names_no_name_rule_matches_are_never_resolved() {
        let rules = list(&[
            "127.0.0.1:8080",
            "10.0.0.0/8:*",
            "*.example.com:443",
            "!bad.example.com:*",
        ]);
        for (host, port) in [
            ("c2VjcmV0.attacker.example", 8080),
            ("c2VjcmV0.attacker.example", 443),
            ("x.example.com", 80),
            ("bad.example.com", 443),
            ("localhost", 8080),
        ] {
            let (decision, asked) = decide(&rules, host, port, &["127.0.0.1"]);
            assert!(!decision.allow, "{host}:{port}");
            assert_eq!(asked, Vec::<String>::new(), "{host}:{port} was looked up");
        }
        let (decision, _) = decide(&rules, "c2VjcmV0.attacker.example", 8080, &[]);
        assert!(
            decision
                .reason
                .contains("no name rule matches it, so it was not resolved"),
            "{}",
            decision.reason
        );
        assert_eq!(decision.rule, None);
        let (decision, _) = decide(&rules, "bad.example.com", 443, &[]);
        assert_eq!(decision.rule.as_deref(), Some("!bad.example.com:*"));
        let (decision, asked) = decide(&rules, "x.example.com", 443, &["93.184.216.34"]);
        assert!(decision.allow, "{}", decision.reason);
        assert_eq!(asked, ["x.example.com"]);
    }

    #[test]
    fn address_rules_cover_names_only_when_the_operator_opts_in() {
        let mut rules = list(&["10.0.0.0/8:5432"]);
        let (decision, asked) = decide(&rules, "db.internal", 5432, &["10.1.2.3"]);
        assert!(!decision.allow);
        assert!(asked.is_empty());
        rules.resolve_names_for_address_rules = true;
        let (decision, asked) = decide(&rules, "db.internal", 5432, &["10.1.2.3"]);
        assert!(decision.allow, "{}", decision.reason);
        assert_eq!(decision.rule.as_deref(), Some("10.0.0.0/8:5432"));
        assert_eq!(asked, ["db.internal"]);
        let (decision, _) = decide(&rules, "db.internal", 5432, &["10.1.2.3", "93.184.216.34"]);
        assert!(!decision.allow, "every address must be inside the range");
        let (decision, asked) = decide(&rules, "db.internal", 80, &["10.1.2.3"]);
        assert!(!decision.allow);
        assert!(asked.is_empty(), "no rule allows port 80 at all");
    }

    #[test]
    fn names_resolving_to_private_addresses_need_an_address_rule() {
        let rules = list(&["rebind.example.com:80"]);
        for addr in [
            "127.0.0.1",
            "0.0.0.0",
            "10.1.2.3",
            "169.254.169.254",
            "::1",
            "::ffff:127.0.0.1",
            "fd00::1",
            "fec0::1",
            "64:ff9b::7f00:1",
            "2002:a9fe:a9fe::",
        ] {
            let (decision, asked) = decide(&rules, "rebind.example.com", 80, &[addr]);
            assert!(!decision.allow, "{addr}");
            assert_eq!(asked, ["rebind.example.com"]);
            assert!(
                decision.reason.contains("name it explicitly"),
                "{}",
                decision.reason
            );
        }
        let (decision, _) = decide(
            &rules,
            "rebind.example.com",
            80,
            &["93.184.216.34", "10.1.2.3"],
        );
        assert!(!decision.allow, "every address must be allowed");
        assert_eq!(
            decision.address,
            Some(ip("10.1.2.3")),
            "the address that decided"
        );
        let with_address = list(&["rebind.example.com:80", "127.0.0.1:80"]);
        assert!(
            decide(&with_address, "rebind.example.com", 80, &["127.0.0.1"])
                .0
                .allow
        );
    }

    #[test]
    fn ipv6_forms_are_judged_by_the_ipv4_address_they_embed() {
        for (addr, kind) in [
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("64:ff9b::a00:1", "private"),
            ("64:ff9b::808:808", "public"),
            ("64:ff9b:1::808:808", "private"),
            ("::127.0.0.1", "loopback"),
            ("::10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("2002:a00:1::", "private"),
            ("2002:a9fe:a9fe::", "cloud metadata"),
            ("2002:7f00:1::", "loopback"),
            ("2002:808:808::1", "public"),
            // Teredo: the client's address, inverted, in the last 32 bits.
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),
            ("2001::f5ff:fffe", "private"),
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "public"),
            ("fec0::1", "private"),
            ("fd00::1", "private"),
            ("fe80::1", "link-local"),
            ("::1", "loopback"),
            ("::", "this-host (unspecified)"),
            ("2606:4700::1111", "public"),
        ] {
            assert_eq!(address_kind(ip(addr)), kind, "{addr}");
        }
        assert_eq!(
            describe(ip("64:ff9b::7f00:1")),
            "64:ff9b::7f00:1 (NAT64 form of 127.0.0.1)"
        );
        assert_eq!(
            describe(ip("2001::f5ff:fffe")),
            "2001::f5ff:fffe (Teredo form of 10.0.0.1)"
        );
    }

    /// A wide range covers non-public addresses but does not name them.
    #[test]
    fn address_literals_that_are_not_public_need_a_rule_naming_them() {
        let rules = list(&[
            "[64:ff9b::/96]:80",
            "0.0.0.0/0:443",
            "[2000::/3]:443",
            "127.0.0.1:443",
            "169.254.0.0/16:443",
        ]);
        for (host, port, why) in [
            (
                "64:ff9b::7f00:1",
                80,
                "NAT64 form of 127.0.0.1), a loopback",
            ),
            ("169.254.169.254", 443, "cloud metadata"),
            ("10.0.0.1", 443, "private"),
            ("0.0.0.0", 443, "this-host"),
            ("127.0.0.2", 443, "loopback"),
            ("2002:7f00:1::", 443, "6to4 form of 127.0.0.1), a loopback"),
        ] {
            let (decision, asked) = decide(&rules, host, port, &[]);
            assert!(!decision.allow, "{host}");
            assert!(asked.is_empty());
            assert!(decision.reason.contains(why), "{host}: {}", decision.reason);
        }
        for (host, port) in [
            ("64:ff9b::808:808", 80),
            ("93.184.216.34", 443),
            ("127.0.0.1", 443),
            ("::ffff:127.0.0.1", 443),
            ("169.254.1.1", 443),
        ] {
            let (decision, _) = decide(&rules, host, port, &[]);
            assert!(decision.allow, "{host}: {}", decision.reason);
        }
    }

    #[test]
    fn cidr_rules_and_deny_wins() {
        let rules = list(&[
            "10.0.0.0/8:5432",
            "*.example.com:443",
            "!secret.example.com:*",
            "!10.9.0.0/16:*",
        ]);
        assert!(decide(&rules, "10.2.3.4", 5432, &[]).0.allow);
        assert!(!decide(&rules, "11.2.3.4", 5432, &[]).0.allow);
        assert!(!decide(&rules, "10.9.3.4", 5432, &[]).0.allow);
        let (denied, asked) = decide(&rules, "secret.example.com", 443, &["93.184.216.34"]);
        assert!(!denied.allow);
        assert!(asked.is_empty(), "a denied name is not looked up");
        assert_eq!(denied.rule.as_deref(), Some("!secret.example.com:*"));
        let (denied, _) = decide(&rules, "www.example.com", 443, &["10.9.1.1"]);
        assert_eq!(denied.rule.as_deref(), Some("!10.9.0.0/16:*"));
        let (denied, _) = decide(
            &rules,
            "www.example.com",
            443,
            &["93.184.216.34", "10.9.1.1"],
        );
        assert_eq!(
            denied.address,
            Some(ip("10.9.1.1")),
            "the address that decided"
        );
    }

    #[test]
    fn loopback_rules_are_recognised() {
        for (rules, loopback) in [
            (&["example.test:443"][..], false),
            (&["0.0.0.0/0:443", "[::/0]:443"], false),
            (&["!127.0.0.1:*"], false),
            (&["127.0.0.1:8080"], true),
            (&["127.0.0.0/8:*"], true),
            (&["[::1]:80"], true),
            (&["localhost:80"], true),
            (&["*.localhost:80"], true),
        ] {
            assert_eq!(list(rules).allows_loopback(), loopback, "{rules:?}");
        }
    }
}
