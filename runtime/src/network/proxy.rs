//! The egress proxy: HTTP CONNECT, plain-HTTP proxying (absolute-URI requests) and SOCKS5
//! (no auth, domain names allowed), on one listener. It resolves names itself, decides with
//! the allowlist, and records every attempt, allowed or denied, as a `NetworkEvent`.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};

use super::rules::{Allowlist, Decision, Resolver, Target};
use super::{fdpass, splice};
use crate::events::{JobEvent, Observer};

/// One connection attempt through the proxy, as the Outcome reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NetworkEvent {
    pub protocol: String,
    pub host: String,
    pub port: u16,
    /// The address connected to (or that decided a denial), when the name resolved.
    pub address: Option<String>,
    /// `allow` or `deny`.
    pub decision: String,
    /// The rule that decided, when one did.
    pub rule: Option<String>,
    pub reason: String,
    /// Bytes from the job to the destination, and back.
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub duration_ms: f64,
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub allowlist: Allowlist,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// No connection lives longer than this.
    pub total_timeout: Duration,
    /// Connections open at once; more are refused (and recorded).
    pub max_connections: usize,
}

/// Where clients arrive: a TCP listener that lives in the job's own network namespace
/// (docker), or a unix socket over which the native jail's init passes each connection the job
/// opened (see `fdpass`).
pub enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

/// What a listener yields: a client, or a carrier that will pass one.
enum Incoming {
    Client(TcpStream),
    Carrier(tokio::net::UnixStream),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<Incoming> {
        Ok(match self {
            Listener::Unix(listener) => Incoming::Carrier(listener.accept().await?.0),
            Listener::Tcp(listener) => Incoming::Client(listener.accept().await?.0),
        })
    }
}

/// The proxy's shared state: configuration, the open-connection budget and the event log.
#[derive(Clone)]
pub struct Proxy {
    config: Arc<ProxyConfig>,
    slots: Arc<Semaphore>,
    events: Arc<Mutex<Vec<NetworkEvent>>>,
    /// Told of each decision as it is made; `events` has it once the connection is over.
    observer: Observer,
    /// Set when the job has ended: open connections are closed and recorded at once.
    stopped: watch::Sender<bool>,
}

const MAX_HEADER: usize = 16 * 1024;

impl Proxy {
    pub fn new(config: ProxyConfig, observer: Observer) -> Proxy {
        Proxy {
            slots: Arc::new(Semaphore::new(config.max_connections)),
            config: Arc::new(config),
            events: Arc::new(Mutex::new(Vec::new())),
            observer,
            stopped: watch::channel(false).0,
        }
    }

    /// Ends every connection (recording what it carried) and makes `serve_unix` return.
    pub fn stop(&self) {
        self.stopped.send_replace(true);
    }

    /// Every event so far, in order of completion.
    pub fn events(&self) -> Vec<NetworkEvent> {
        self.events
            .lock()
            .map(|events| events.clone())
            .unwrap_or_default()
    }

    /// Accepts clients on `listener` until `stop`, each served by its own task; returns once
    /// every connection has been recorded.
    pub async fn serve(&self, listener: Listener) {
        let mut stopped = self.stopped.subscribe();
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok(incoming) = accepted {
                        let proxy = self.clone();
                        connections.spawn(async move { proxy.serve_incoming(incoming).await });
                    }
                }
                _ = stopped.wait_for(|stopped| *stopped) => break,
            }
        }
        while connections.join_next().await.is_some() {}
    }

    async fn serve_incoming(&self, incoming: Incoming) {
        let client = match incoming {
            Incoming::Client(client) => client,
            Incoming::Carrier(carrier) => {
                let passed =
                    tokio::time::timeout(Duration::from_secs(10), fdpass::receive_tcp(&carrier));
                let Ok(Ok(client)) = passed.await else { return };
                let registered = client
                    .set_nonblocking(true)
                    .and_then(|()| TcpStream::from_std(client));
                let Ok(client) = registered else { return };
                client
            }
        };
        self.handle(client).await;
    }

    /// Serves one client connection to the end.
    pub async fn handle(&self, mut client: TcpStream) {
        let started = Instant::now();
        let Ok(_slot) = self.slots.clone().try_acquire_owned() else {
            let reason = format!(
                "too many connections at once (limit {})",
                self.config.max_connections
            );
            let _ = client
                .write_all(http_response(503, "Service Unavailable", &reason).as_bytes())
                .await;
            let attempt = Attempt::refused("unknown", "", 0, reason);
            self.decided(&attempt);
            self.record(attempt, started);
            return;
        };
        let mut stopped = self.stopped.subscribe();
        let serve = async {
            let mut first = [0u8; 1];
            if client.read_exact(&mut first).await.is_err() {
                return;
            }
            if first[0] == 0x05 {
                self.socks5(client, started).await;
            } else {
                self.http(client, first[0], started).await;
            }
        };
        // A connection still being set up when the job ends is dropped; relays record
        // themselves (see `relay`).
        tokio::select! {
            biased;
            _ = serve => {}
            _ = stopped.wait_for(|stopped| *stopped) => {}
        }
    }

    async fn http(&self, mut client: TcpStream, first: u8, started: Instant) {
        let mut head = vec![first];
        let Some(end) = read_head(&mut client, &mut head).await else {
            let _ = client
                .write_all(
                    http_response(400, "Bad Request", "malformed or oversized request head")
                        .as_bytes(),
                )
                .await;
            return;
        };
        let text = String::from_utf8_lossy(&head[..end]).into_owned();
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split(' ');
        let (method, uri, version) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("HTTP/1.1"),
        );
        if method.eq_ignore_ascii_case("CONNECT") {
            let Some((host, port)) = split_host_port(uri, None) else {
                let _ = client
                    .write_all(
                        http_response(400, "Bad Request", "CONNECT needs host:port").as_bytes(),
                    )
                    .await;
                return;
            };
            let Some(upstream) = self
                .open("connect", &host, port, started, &mut client, Reply::Http)
                .await
            else {
                return;
            };
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            // Anything the client sent after the head already belongs to the tunnel.
            self.relay(client, upstream, head[end..].to_vec()).await;
            return;
        }
        let Some(rest) = uri.strip_prefix("http://") else {
            let _ = client
                .write_all(
                    http_response(
                        400,
                        "Bad Request",
                        "send absolute http:// URIs or CONNECT: this is a proxy",
                    )
                    .as_bytes(),
                )
                .await;
            return;
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let Some((host, port)) = split_host_port(authority, Some(80)) else {
            let _ = client
                .write_all(http_response(400, "Bad Request", "bad host in URI").as_bytes())
                .await;
            return;
        };
        let target = Target::parse(&host);
        if let Some(reason) = host_header_problem(lines.clone(), &host, port) {
            let answer = http_response(400, "Bad Request", &format!("sandbox: {reason}"));
            let _ = client.write_all(answer.as_bytes()).await;
            let attempt = Attempt::refused("http", &target.to_string(), port, reason);
            self.decided(&attempt);
            self.record(attempt, started);
            return;
        }
        let Some(upstream) = self
            .open("http", &host, port, started, &mut client, Reply::Http)
            .await
        else {
            return;
        };
        // Origin-form request line, hop-by-hop proxy headers dropped, one request per connection.
        // Host is generated from the target the allowlist judged (RFC 9112 §3.2.2), so a request
        // that sent none cannot leave the choice of virtual host to the server's default either.
        let authority = match port {
            80 => target.to_string(),
            _ => format!("{target}:{port}"),
        };
        let mut forwarded = format!("{method} {path} {version}\r\nHost: {authority}\r\n");
        for line in lines.filter(|l| !l.is_empty()) {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !matches!(
                name.as_str(),
                "host" | "proxy-connection" | "proxy-authorization" | "connection" | "keep-alive"
            ) {
                forwarded.push_str(line);
                forwarded.push_str("\r\n");
            }
        }
        forwarded.push_str("Connection: close\r\n\r\n");
        let mut pending = forwarded.into_bytes();
        pending.extend_from_slice(&head[end..]);
        self.relay(client, upstream, pending).await;
    }

    async fn socks5(&self, mut client: TcpStream, started: Instant) {
        // Greeting: VER(already read) NMETHODS METHODS...; we only speak "no authentication".
        let Ok(count) = client.read_u8().await else {
            return;
        };
        let mut methods = vec![0u8; usize::from(count)];
        if client.read_exact(&mut methods).await.is_err() {
            return;
        }
        if !methods.contains(&0x00) {
            let _ = client.write_all(&[0x05, 0xff]).await;
            return;
        }
        if client.write_all(&[0x05, 0x00]).await.is_err() {
            return;
        }
        let mut request = [0u8; 4];
        if client.read_exact(&mut request).await.is_err() {
            return;
        }
        let [_, command, _, address_type] = request;
        let host = match address_type {
            0x01 => {
                let mut octets = [0u8; 4];
                if client.read_exact(&mut octets).await.is_err() {
                    return;
                }
                IpAddr::from(octets).to_string()
            }
            0x04 => {
                let mut octets = [0u8; 16];
                if client.read_exact(&mut octets).await.is_err() {
                    return;
                }
                IpAddr::from(octets).to_string()
            }
            0x03 => {
                let Ok(length) = client.read_u8().await else {
                    return;
                };
                let mut name = vec![0u8; usize::from(length)];
                if client.read_exact(&mut name).await.is_err() {
                    return;
                }
                String::from_utf8_lossy(&name).into_owned()
            }
            _ => {
                let _ = client.write_all(&socks_reply(0x08)).await;
                return;
            }
        };
        let Ok(port) = client.read_u16().await else {
            return;
        };
        if command != 0x01 {
            // Only CONNECT: BIND and UDP ASSOCIATE would open doors the allowlist cannot see.
            let _ = client.write_all(&socks_reply(0x07)).await;
            let attempt = Attempt::refused(
                "socks5",
                &host,
                port,
                "only the SOCKS5 CONNECT command is supported (no UDP, no BIND)".into(),
            );
            self.decided(&attempt);
            self.record(attempt, started);
            return;
        }
        let Some(upstream) = self
            .open("socks5", &host, port, started, &mut client, Reply::Socks)
            .await
        else {
            return;
        };
        if client.write_all(&socks_reply(0x00)).await.is_err() {
            return;
        }
        self.relay(client, upstream, Vec::new()).await;
    }

    /// Resolves, decides and connects; on refusal answers the client (403 / SOCKS code) and
    /// records the denial.
    async fn open<S>(
        &self,
        protocol: &str,
        host: &str,
        port: u16,
        started: Instant,
        client: &mut S,
        reply: Reply,
    ) -> Option<Upstream>
    where
        S: AsyncWrite + Unpin,
    {
        let target = Target::parse(host);
        let (decision, resolved) = self
            .config
            .allowlist
            .decide(&target, port, &SystemResolver)
            .await;
        let attempt = Attempt {
            protocol: protocol.into(),
            host: target.to_string(),
            port,
            address: decision
                .address
                .or_else(|| resolved.first().copied())
                .map(|addr| addr.to_string()),
            decision: decision.clone(),
        };
        self.decided(&attempt);
        if !decision.allow {
            let reason = format!("sandbox: {}", decision.reason);
            refuse(client, reply, (403, "Forbidden", 0x02), &reason).await;
            self.record(attempt, started);
            return None;
        }
        let addresses: Vec<SocketAddr> = resolved
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect();
        let connected =
            tokio::time::timeout(Duration::from_secs(30), TcpStream::connect(&addresses[..])).await;
        let (codes, reason) = match connected {
            Ok(Ok(stream)) => {
                let address = stream.peer_addr().ok().map(|a| a.ip().to_string());
                return Some(Upstream {
                    stream,
                    attempt: Attempt {
                        address: address.or(attempt.address.clone()),
                        ..attempt
                    },
                    started,
                });
            }
            Ok(Err(error)) => (
                (502, "Bad Gateway", 0x05),
                format!("allowed, but connecting to {host}:{port} failed: {error}"),
            ),
            Err(_) => (
                (504, "Gateway Timeout", 0x04),
                format!("allowed, but {host}:{port} did not answer within 30s"),
            ),
        };
        refuse(client, reply, codes, &reason).await;
        let decision = Decision { reason, ..decision };
        self.record(
            Attempt {
                decision,
                ..attempt
            },
            started,
        );
        None
    }

    /// Copies both ways until either side closes, the connection is idle too long, or its
    /// total time is up; then records the allowed connection with its byte counts.
    async fn relay(&self, client: TcpStream, upstream: Upstream, pending: Vec<u8>) {
        let Upstream {
            mut stream,
            attempt,
            started,
        } = upstream;
        let sent = AtomicU64::new(0);
        let received = AtomicU64::new(0);
        let clock = Instant::now();
        let last_activity = AtomicU64::new(0);
        if !pending.is_empty() {
            if stream.write_all(&pending).await.is_err() {
                self.record(attempt, started);
                return;
            }
            sent.fetch_add(pending.len() as u64, Ordering::Relaxed);
        }
        let outbound = splice::Meter {
            bytes: &sent,
            last_activity_ms: &last_activity,
            clock,
        };
        let inbound = splice::Meter {
            bytes: &received,
            ..outbound
        };
        let relaying = splice::both_ways(&client, &stream, &outbound, &inbound);
        let idle = self.config.idle_timeout;
        let mut stopped = self.stopped.subscribe();
        let mut ended = "closed";
        tokio::select! {
            biased;
            () = relaying => {}
            _ = watch_idle(&last_activity, clock, idle) => ended = "idle timeout",
            _ = tokio::time::sleep(self.config.total_timeout) => ended = "total-time limit",
            _ = stopped.wait_for(|stopped| *stopped) => ended = "end of the job",
        }
        let mut attempt = attempt;
        if ended != "closed" {
            attempt.decision.reason = format!("{}; closed at the {ended}", attempt.decision.reason);
        }
        let counted = attempt.with_bytes(
            sent.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed),
        );
        self.record(counted, started);
    }

    /// Tells the observer at once, before any connecting or relaying: an orchestrator sees a
    /// denial while the job still waits on it.
    fn decided(&self, attempt: &Attempt) {
        self.observer.emit(JobEvent::NetworkDecision {
            host: attempt.host.clone(),
            port: attempt.port,
            allowed: attempt.decision.allow,
            rule: attempt.decision.rule.clone(),
        });
    }

    fn record(&self, attempt: impl Into<NetworkEvent>, started: Instant) {
        let mut event: NetworkEvent = attempt.into();
        event.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}

/// The host's resolver (getaddrinfo: /etc/hosts, then DNS), asked only for names a rule could
/// allow (see `Allowlist::decide`).
struct SystemResolver;

impl Resolver for SystemResolver {
    async fn resolve(&self, name: &str, port: u16) -> Vec<IpAddr> {
        tokio::net::lookup_host((name, port))
            .await
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy)]
enum Reply {
    Http,
    Socks,
}

struct Upstream {
    stream: TcpStream,
    attempt: Attempt,
    started: Instant,
}

#[derive(Clone)]
struct Attempt {
    protocol: String,
    host: String,
    port: u16,
    address: Option<String>,
    decision: Decision,
}

/// An attempt with its byte counts, ready to become an event.
struct Counted(Attempt, u64, u64);

impl Attempt {
    fn refused(protocol: &str, host: &str, port: u16, reason: String) -> Attempt {
        Attempt {
            protocol: protocol.into(),
            host: host.into(),
            port,
            address: None,
            decision: Decision {
                allow: false,
                rule: None,
                reason,
                address: None,
            },
        }
    }

    fn with_bytes(self, out: u64, received: u64) -> Counted {
        Counted(self, out, received)
    }
}

impl From<Attempt> for NetworkEvent {
    fn from(attempt: Attempt) -> NetworkEvent {
        Counted(attempt, 0, 0).into()
    }
}

impl From<Counted> for NetworkEvent {
    fn from(Counted(attempt, bytes_out, bytes_in): Counted) -> NetworkEvent {
        NetworkEvent {
            protocol: attempt.protocol,
            host: attempt.host,
            port: attempt.port,
            address: attempt.address,
            decision: if attempt.decision.allow {
                "allow"
            } else {
                "deny"
            }
            .into(),
            rule: attempt.decision.rule,
            reason: attempt.decision.reason,
            bytes_out,
            bytes_in,
            duration_ms: 0.0,
        }
    }
}

async fn watch_idle(activity: &AtomicU64, clock: Instant, idle: Duration) {
    loop {
        let last = Duration::from_millis(activity.load(Ordering::Relaxed));
        let quiet = clock.elapsed().saturating_sub(last);
        if quiet >= idle {
            return;
        }
        tokio::time::sleep(idle - quiet).await;
    }
}

/// Reads until the blank line ending an HTTP head; returns its end (after `\r\n\r\n`).
async fn read_head<S: AsyncRead + Unpin>(client: &mut S, head: &mut Vec<u8>) -> Option<usize> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(position) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(position + 4);
        }
        if head.len() > MAX_HEADER {
            return None;
        }
        let count = client.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        head.extend_from_slice(&chunk[..count]);
    }
}

/// `host:port`, `[v6]:port`, or `host` with a default port.
fn split_host_port(authority: &str, default_port: Option<u16>) -> Option<(String, u16)> {
    let authority = authority
        .rsplit_once('@')
        .map(|(_, host)| host)
        .unwrap_or(authority);
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None => default_port?,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host.to_owned(), port.parse().ok()?)),
        _ if !authority.is_empty() => Some((authority.to_owned(), default_port?)),
        _ => None,
    }
}

/// Why a plain-HTTP request's `Host` headers do not name its target, if they do not. The
/// allowlist judged the URI's host; a different `Host` would reach another virtual host on the
/// allowed server (`GET http://allowed/` with `Host: evil.example`), and several `Host` headers or
/// folded lines leave the choice to whichever the server happens to read.
fn host_header_problem<'a>(
    headers: impl Iterator<Item = &'a str>,
    host: &str,
    port: u16,
) -> Option<String> {
    let target = format!("{}:{port}", Target::parse(host));
    let mut named = Vec::new();
    for line in headers.filter(|line| !line.is_empty()) {
        if line.starts_with([' ', '\t']) {
            return Some("folded header lines are not accepted".into());
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        if name.trim().eq_ignore_ascii_case("host") {
            named.push(value.trim());
        }
    }
    match named[..] {
        [] => None,
        [value] => {
            let matches = !value.contains(['@', ' ', '\t'])
                && split_host_port(value, Some(80)).is_some_and(|(named_host, named_port)| {
                    Target::parse(&named_host) == Target::parse(host) && named_port == port
                });
            (!matches).then(|| {
                format!("the Host header `{value}` does not name the request's target {target}")
            })
        }
        _ => Some(format!(
            "{} Host headers in one request to {target}; send at most one",
            named.len()
        )),
    }
}

/// Answers a client we will not serve: an HTTP status with `reason` as its body, or the SOCKS5
/// reply code, whichever protocol it spoke.
async fn refuse<S: AsyncWrite + Unpin>(
    client: &mut S,
    reply: Reply,
    (code, status, socks_code): (u16, &str, u8),
    reason: &str,
) {
    let _ = match reply {
        Reply::Http => {
            client
                .write_all(http_response(code, status, reason).as_bytes())
                .await
        }
        Reply::Socks => client.write_all(&socks_reply(socks_code)).await,
    };
}

fn http_response(code: u16, status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {code} {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}\n",
        body.len() + 1
    )
}

/// A SOCKS5 reply with `code` and an empty bound address.
fn socks_reply(code: u8) -> [u8; 10] {
    [0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split() {
        assert_eq!(
            split_host_port("example.com:443", None),
            Some(("example.com".into(), 443))
        );
        assert_eq!(
            split_host_port("example.com", Some(80)),
            Some(("example.com".into(), 80))
        );
        assert_eq!(
            split_host_port("[::1]:8080", None),
            Some(("::1".into(), 8080))
        );
        assert_eq!(
            split_host_port("user@host:81", None),
            Some(("host".into(), 81))
        );
        assert_eq!(split_host_port("example.com", None), None);
        assert_eq!(split_host_port(":80", None), None);
    }

    #[test]
    fn host_headers_must_name_the_target() {
        let problem = |headers: &str, host: &str, port: u16| {
            host_header_problem(headers.split("\r\n"), host, port)
        };
        for (headers, host, port) in [
            ("Accept: */*", "127.0.0.1", 8080),
            ("Host: 127.0.0.1:8080", "127.0.0.1", 8080),
            ("host:  EXAMPLE.test.", "example.test", 80),
            ("Host: example.test:80", "example.test", 80),
            ("Host: [::1]:8080", "::1", 8080),
        ] {
            assert_eq!(problem(headers, host, port), None, "{headers}");
        }
        for (headers, host, port, why) in [
            (
                "Host: evil.example",
                "127.0.0.1",
                8080,
                "`evil.example` does not name",
            ),
            (
                "Host: 127.0.0.1",
                "127.0.0.1",
                8080,
                "does not name the request's target 127.0.0.1:8080",
            ),
            ("Host: 127.0.0.1:8081", "127.0.0.1", 8080, "does not name"),
            (
                "Host: evil.example@127.0.0.1:8080",
                "127.0.0.1",
                8080,
                "does not name",
            ),
            (
                "Host: 127.0.0.1:8080\r\nHOST: evil.example",
                "127.0.0.1",
                8080,
                "2 Host headers",
            ),
            (
                "Host: 127.0.0.1:8080\r\n evil.example",
                "127.0.0.1",
                8080,
                "folded",
            ),
        ] {
            let found = problem(headers, host, port);
            assert!(
                found.as_deref().is_some_and(|f| f.contains(why)),
                "{headers}: {found:?}"
            );
        }
    }
}
