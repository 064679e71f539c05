//! The network allowlist end to end: the job's only way out is sandbox's egress proxy, which
//! allows exactly the listed destinations and reports every attempt. Every server here is one
//! the test starts on the host's loopback; nothing leaves the machine, and no rule here makes the
//! proxy resolve a name through DNS (only `localhost`, from /etc/hosts; `.invalid` names are
//! refused before any lookup).
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{exec_json, Backend, Run, Workspace};
use serde_json::Value;

/// What each test server answers: a fixed-size HTTP response, so byte counts are exact.
const BODY_LEN: usize = 5000;

/// A TCP server on the host's 127.0.0.1 that reads one request head and answers with a
/// response of known length, counting connections.
struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Server {
    fn start() -> Server {
        Server::answering(|_| response())
    }

    /// A server whose answer to each request is `answer(request head)`.
    fn answering(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
        let port = listener.local_addr().expect("local addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = Arc::clone(&answer);
                std::thread::spawn(move || serve(stream, &*answer));
            }
        });
        Server { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn response() -> Vec<u8> {
    let head =
        format!("HTTP/1.0 200 OK\r\nContent-Length: {BODY_LEN}\r\nConnection: close\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend(std::iter::repeat_n(b'x', BODY_LEN));
    bytes
}

fn serve(mut stream: std::net::TcpStream, answer: &dyn Fn(&str) -> Vec<u8>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let _ = stream.write_all(&answer(&String::from_utf8_lossy(&head)));
}

fn networked(backend: Backend, ws: &Workspace, rules: &[String], script: &str) -> Run {
    let mut extra: Vec<&str> = vec!["--profile", "networked", "--timeout", "60s"];
    for rule in rules {
        extra.extend(["--allow", rule.as_str()]);
    }
    exec_json(backend, ws, &extra, &["sh", "-c", script])
}

fn events(run: &Run) -> Vec<Value> {
    run.outcome["network"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A python3 client speaking HTTP CONNECT to the proxy, then one request through the tunnel.
/// Prints `status=<first line of the proxy's answer>` and `got=<bytes received in the tunnel>`.
fn connect_script(host: &str, port: u16) -> String {
    format!(
        r#"python3 - <<'EOF'
import socket
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n")
answer = b""
while b"\r\n\r\n" not in answer:
    chunk = s.recv(4096)
    if not chunk:
        break
    answer += chunk
head, _, rest = answer.partition(b"\r\n\r\n")
print("status=" + head.split(b"\r\n")[0].decode())
if b" 200 " in head:
    s.sendall(b"GET /exact HTTP/1.0\r\n\r\n")
    got = len(rest)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += len(chunk)
    print("got=%d" % got)
else:
    print("body=" + rest.decode(errors="replace").strip())
EOF"#
    )
}

fn allows_connect_to_a_listed_port_and_denies_another(backend: Backend) {
    let ws = Workspace::new();
    let (allowed, other) = (Server::start(), Server::start());
    let rule = format!("127.0.0.1:{}", allowed.port);
    let script = format!(
        "{}\n{}",
        connect_script("127.0.0.1", allowed.port),
        connect_script("127.0.0.1", other.port)
    );
    let run = networked(backend, &ws, std::slice::from_ref(&rule), &script);
    assert_eq!(run.code, 0, "{run:?}");
    let out = run.stdout();
    assert!(out.contains("status=HTTP/1.1 200"), "{run:?}");
    assert!(
        out.contains(&format!("got={}", response().len())),
        "{run:?}"
    );
    assert!(out.contains("status=HTTP/1.1 403"), "{run:?}");
    assert!(
        out.contains(&format!("add `127.0.0.1:{}`", other.port)),
        "the denial names the rule to add\n{run:?}"
    );
    assert_eq!(allowed.connections(), 1);
    assert_eq!(other.connections(), 0, "a denied destination was contacted");
    let events = events(&run);
    assert_eq!(events.len(), 2, "{run:?}");
    assert_eq!(events[0]["decision"], "allow");
    assert_eq!(events[0]["rule"], rule.as_str());
    assert_eq!(events[0]["address"], "127.0.0.1");
    assert_eq!(events[1]["decision"], "deny");
    assert_eq!(events[1]["port"], other.port);
    assert_eq!(run.outcome["network"]["mode"], "allowlist");
}

fn counts_bytes_exactly(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    let run = networked(
        backend,
        &ws,
        &[format!("127.0.0.1:{}", server.port)],
        &connect_script("127.0.0.1", server.port),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let events = events(&run);
    assert_eq!(events.len(), 1, "{run:?}");
    let request = "GET /exact HTTP/1.0\r\n\r\n".len() as u64;
    assert_eq!(events[0]["bytes_out"], request, "{run:?}");
    assert_eq!(events[0]["bytes_in"], response().len() as u64, "{run:?}");
    assert!(
        events[0]["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{run:?}"
    );
}

fn proxies_plain_http(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    let script = format!(
        "curl -sS --noproxy '' -x http://127.0.0.1:3128 -o /dev/null -w 'code=%{{http_code}} size=%{{size_download}}\\n' http://127.0.0.1:{}/page",
        server.port
    );
    let run = networked(
        backend,
        &ws,
        &[format!("127.0.0.1:{}", server.port)],
        &script,
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout().contains(&format!("code=200 size={BODY_LEN}")),
        "{run:?}"
    );
    let events = events(&run);
    assert_eq!(events[0]["protocol"], "http", "{run:?}");
    assert_eq!(events[0]["decision"], "allow", "{run:?}");
    assert_eq!(events[0]["bytes_in"], response().len() as u64, "{run:?}");
}

fn socks5_with_a_domain_name(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    let script = format!(
        "curl -sS --noproxy '' --socks5-hostname 127.0.0.1:3128 -o /dev/null -w 'code=%{{http_code}}\\n' http://localhost:{}/",
        server.port
    );
    let rules = [
        format!("localhost:{}", server.port),
        format!("127.0.0.1:{}", server.port),
    ];
    let run = networked(backend, &ws, &rules, &script);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout().contains("code=200"), "{run:?}");
    let events = events(&run);
    assert_eq!(events[0]["protocol"], "socks5", "{run:?}");
    assert_eq!(events[0]["host"], "localhost", "{run:?}");
    assert_eq!(events[0]["decision"], "allow", "{run:?}");
}

/// DNS-rebinding defence: a name leading to loopback needs the address itself on the list.
fn denies_a_name_resolving_to_loopback_unless_the_address_is_named(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    let run = networked(
        backend,
        &ws,
        &[format!("localhost:{}", server.port)],
        &connect_script("localhost", server.port),
    );
    assert!(run.stdout().contains("status=HTTP/1.1 403"), "{run:?}");
    assert!(
        run.stdout().contains("loopback"),
        "the denial says why\n{run:?}"
    );
    assert_eq!(server.connections(), 0);
    let events = events(&run);
    assert_eq!(events[0]["decision"], "deny", "{run:?}");
    assert_eq!(
        events[0]["rule"],
        format!("localhost:{}", server.port),
        "{run:?}"
    );
}

/// DNS exfiltration: with only an address rule, a job asking for `<data>.attacker` names over
/// every proxy protocol gets a denial, and the proxy never looks those names up (rules.rs proves
/// the resolver is not asked; here the event shows no address and says why).
fn denies_unlisted_hosts_without_resolving_them(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos()
    );
    let (http, connect, socks) = (
        format!("exfil-http-{nonce}.invalid"),
        format!("exfil-connect-{nonce}.invalid"),
        format!("exfil-socks-{nonce}.invalid"),
    );
    let port = server.port;
    let script = format!(
        "curl -sS --noproxy '' -x http://127.0.0.1:3128 -w 'code=%{{http_code}}\\n' http://{http}:{port}/\n\
         {}\n\
         curl -sS --noproxy '' -w 'code=%{{http_code}}\\n' --socks5-hostname 127.0.0.1:3128 http://{socks}:{port}/ 2>&1; true",
        connect_script(&connect, port)
    );
    let run = networked(backend, &ws, &[format!("127.0.0.1:{port}")], &script);
    assert!(run.stdout().contains("code=403"), "{run:?}");
    assert!(run.stdout().contains("status=HTTP/1.1 403"), "{run:?}");
    assert!(
        run.stdout().contains(&format!("add `{connect}:{port}`")),
        "the denial names the rule to add\n{run:?}"
    );
    let events = events(&run);
    let hosts: Vec<&str> = events.iter().filter_map(|e| e["host"].as_str()).collect();
    assert_eq!(hosts, [&http, &connect, &socks], "{run:?}");
    for (event, protocol) in events.iter().zip(["http", "connect", "socks5"]) {
        assert_eq!(event["protocol"], protocol, "{run:?}");
        assert_eq!(event["decision"], "deny", "{run:?}");
        assert!(event["rule"].is_null(), "{run:?}");
        assert!(
            event["address"].is_null(),
            "a name nobody allowed was resolved\n{run:?}"
        );
        assert!(
            event["reason"]
                .as_str()
                .is_some_and(|r| r.contains("no name rule matches it, so it was not resolved")),
            "{run:?}"
        );
    }
    assert_eq!(server.connections(), 0);
}

/// The operator's opt-in: an address rule allows a name by where it leads.
fn address_rules_allow_names_only_when_the_profile_says_so(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    // The operator's own profile: a project's may not turn this on (tests/trust.rs).
    let operator = common::OperatorProfile::new(
        "resolving.toml",
        "extends = \"networked\"\n[network]\nresolve_names_for_address_rules = true\n",
    );
    let profile = operator.path.clone();
    let rules = [
        format!("127.0.0.0/8:{}", server.port),
        format!("[::1]:{}", server.port),
    ];
    let mut extra = vec!["--profile", profile.to_str().expect("utf-8 path")];
    for rule in &rules {
        extra.extend(["--allow", rule.as_str()]);
    }
    let script = connect_script("localhost", server.port);
    let run = exec_json(backend, &ws, &extra, &["sh", "-c", &script]);
    assert!(run.stdout().contains("status=HTTP/1.1 200"), "{run:?}");
    let events = events(&run);
    assert_eq!(events.len(), 1, "{run:?}");
    assert_eq!(events[0]["decision"], "allow", "{run:?}");
    assert_eq!(events[0]["address"], "127.0.0.1", "{run:?}");
    assert!(
        events[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("every address localhost resolves to")),
        "{run:?}"
    );
    assert_eq!(server.connections(), 1);
}

fn wildcard_and_cidr_rules(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    // `*.localhost` covers names below localhost, never the apex itself.
    let rules = [
        format!("*.localhost:{}", server.port),
        format!("127.0.0.0/8:{}", server.port),
    ];
    let script = format!(
        "{}\n{}",
        connect_script("localhost", server.port),
        connect_script("127.0.0.1", server.port)
    );
    let run = networked(backend, &ws, &rules, &script);
    let events = events(&run);
    assert_eq!(events.len(), 2, "{run:?}");
    assert_eq!(
        events[1]["decision"], "allow",
        "127.0.0.0/8 covers 127.0.0.1\n{run:?}"
    );
    assert_eq!(events[1]["rule"], format!("127.0.0.0/8:{}", server.port));
    // Neither rule lets the name localhost through: the wildcard stops above the apex, and an
    // address rule allows names only by opt-in (`resolve_names_for_address_rules`).
    assert_eq!(events[0]["decision"], "deny", "{run:?}");
    assert!(events[0]["address"].is_null(), "{run:?}");
    assert_eq!(server.connections(), 1);
}

fn blocks_everything_but_the_proxy(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    udp.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("udp timeout");
    let udp_port = udp.local_addr().expect("udp addr").port();
    let script = format!(
        r#"python3 - <<'EOF'
import socket
for name, make in [
    ("tcp", lambda: socket.create_connection(("127.0.0.1", {tcp}), timeout=3)),
    ("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"leak", ("127.0.0.1", {udp}))),
    ("udp-out", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"leak", ("192.0.2.1", 53))),
    ("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),
]:
    try:
        make()
        print(name + "=reached")
    except OSError as error:
        print(name + "=blocked " + str(error))
EOF"#,
        tcp = server.port,
        udp = udp_port
    );
    // The allowlist names the server: the direct route must fail anyway.
    let run = networked(
        backend,
        &ws,
        &[format!("127.0.0.1:{}", server.port)],
        &script,
    );
    assert_eq!(run.code, 0, "{run:?}");
    for name in ["tcp", "udp-out", "raw"] {
        assert!(
            run.stdout().contains(&format!("{name}=blocked")),
            "{name}\n{run:?}"
        );
    }
    let mut buffer = [0u8; 16];
    assert!(
        udp.recv_from(&mut buffer).is_err(),
        "a UDP datagram reached the host\n{run:?}"
    );
    assert_eq!(
        server.connections(),
        0,
        "a direct TCP connection reached the host"
    );
    assert!(
        events(&run).is_empty(),
        "nothing went through the proxy\n{run:?}"
    );
}

fn handles_500_concurrent_connections(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    raise_own_open_file_limit();
    let script = format!(
        r#"python3 - <<'EOF'
import asyncio
async def open_one():
    reader, writer = await asyncio.open_connection("127.0.0.1", 3128)
    writer.write(b"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer
async def use(reader, writer):
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    data = await reader.read()
    writer.close()
    return len(data)
async def main():
    # Every tunnel is open before the first is used: 500 at once through one proxy.
    pairs = await asyncio.gather(*[open_one() for _ in range(500)])
    sizes = await asyncio.gather(*[use(r, w) for r, w in pairs])
    print("ok=%d" % sum(1 for s in sizes if s == {len}))
asyncio.run(main())
EOF"#,
        port = server.port,
        len = response().len()
    );
    let run = networked(
        backend,
        &ws,
        &[format!("127.0.0.1:{}", server.port)],
        &script,
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout().contains("ok=500"), "{run:?}");
    assert_eq!(server.connections(), 500);
    let allowed = events(&run)
        .iter()
        .filter(|e| e["decision"] == "allow")
        .count();
    assert_eq!(allowed, 500, "{run:?}");
}

fn closes_idle_connections(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    let profile = common::OperatorProfile::new(
        "idle.toml",
        "extends = \"networked\"\n[network]\nidle_timeout = \"1s\"\n",
    );
    let profile = &profile.path;
    let script = r#"python3 - <<'EOF'
import socket, time
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"CONNECT 127.0.0.1:PORT HTTP/1.1\r\n\r\n")
print(s.recv(4096).split(b"\r\n")[0].decode())
time.sleep(3)
print("after-idle=%r" % s.recv(4096))
EOF"#
        .replace("PORT", &server.port.to_string());
    let run = exec_json(
        backend,
        &ws,
        &[
            "--profile",
            profile.to_str().expect("utf-8 path"),
            "--allow",
            &format!("127.0.0.1:{}", server.port),
        ],
        &["sh", "-c", &script],
    );
    assert!(
        run.stdout().contains("after-idle=b''"),
        "the idle tunnel was closed\n{run:?}"
    );
    let events = events(&run);
    assert_eq!(events.len(), 1, "{run:?}");
    assert!(
        events[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("idle timeout")),
        "{run:?}"
    );
}

/// Virtual-host smuggling: the allowlist judges the URI's host, so a `Host` header naming
/// another host (or a second one) must not reach the allowed server, and the Host the server
/// sees is always the judged target's.
fn blocks_a_host_header_naming_another_virtual_host(backend: Backend) {
    let ws = Workspace::new();
    // Answers with the Host lines it received.
    let server = Server::answering(|head| {
        let hosts: Vec<&str> = head
            .split("\r\n")
            .filter(|line| line.to_ascii_lowercase().starts_with("host:"))
            .collect();
        http_ok("text/plain", hosts.join("|").as_bytes())
    });
    let target = format!("127.0.0.1:{}", server.port);
    let script = format!(
        r#"python3 - <<'EOF'
import socket
for name, headers in [
    ("other", b"Host: evil.example\r\n"),
    ("twice", b"Host: {target}\r\nHost: evil.example\r\n"),
    ("right", b"Host: {target}\r\n"),
    ("none", b""),
]:
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(b"GET http://{target}/ HTTP/1.1\r\n" + headers + b"\r\n")
    answer = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    print(name + "=" + head.split(b"\r\n")[0].decode() + " saw=" + body.decode(errors="replace"))
EOF"#
    );
    let run = networked(backend, &ws, std::slice::from_ref(&target), &script);
    assert_eq!(run.code, 0, "{run:?}");
    let out = run.stdout();
    assert!(out.contains("other=HTTP/1.1 400"), "{run:?}");
    assert!(out.contains("twice=HTTP/1.1 400"), "{run:?}");
    for name in ["right", "none"] {
        assert!(
            out.contains(&format!("{name}=HTTP/1.0 200 OK saw=Host: {target}\n")),
            "the server saw exactly the judged Host\n{run:?}"
        );
    }
    assert_eq!(
        server.connections(),
        2,
        "only requests whose Host names their target reached the server"
    );
    let events = events(&run);
    let denials: Vec<&str> = events
        .iter()
        .filter(|e| e["decision"] == "deny" && e["protocol"] == "http")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(denials.len(), 2, "{run:?}");
    assert!(
        denials
            .iter()
            .any(|r| r.contains("Host header `evil.example` does not name")),
        "{run:?}"
    );
    assert!(
        denials.iter().any(|r| r.contains("2 Host headers")),
        "{run:?}"
    );
}

/// NAT64 smuggling: `64:ff9b::7f00:1` is 127.0.0.1 behind a translator. A rule for the NAT64
/// range does not name loopback, so the address is refused before any connection is tried.
fn blocks_a_nat64_address_embedding_loopback(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    let rule = format!("[64:ff9b::/96]:{}", server.port);
    let run = networked(
        backend,
        &ws,
        std::slice::from_ref(&rule),
        &connect_script("[64:ff9b::7f00:1]", server.port),
    );
    assert!(run.stdout().contains("status=HTTP/1.1 403"), "{run:?}");
    assert!(
        run.stdout()
            .contains("NAT64 form of 127.0.0.1), a loopback address"),
        "the denial names the embedded address\n{run:?}"
    );
    let events = events(&run);
    assert_eq!(events.len(), 1, "{run:?}");
    assert_eq!(events[0]["decision"], "deny", "{run:?}");
    assert_eq!(events[0]["rule"], rule.as_str(), "{run:?}");
    assert_eq!(events[0]["address"], "64:ff9b::7f00:1", "{run:?}");
    assert!(
        events[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("127.0.0.1") && r.contains("loopback")),
        "{run:?}"
    );
    assert_eq!(server.connections(), 0);
}

/// Tools with their default settings (the proxy variables) reach an allowed service on the
/// host's loopback: NO_PROXY must not send them into the job's own, empty loopback.
fn ordinary_clients_reach_an_allowed_loopback_service(backend: Backend) {
    let ws = Workspace::new();
    let server = Server::start();
    let rule = format!("127.0.0.1:{}", server.port);
    let script = format!(
        r#"test -x /usr/bin/curl || echo "no /usr/bin/curl in the job"
/usr/bin/curl -sS -o /dev/null -w 'curl=%{{http_code}} %{{size_download}}\n' http://{rule}/curl
python3 -c 'import urllib.request; print("urllib=%d" % len(urllib.request.urlopen("http://{rule}/urllib", timeout=30).read()))'"#
    );
    let run = networked(backend, &ws, std::slice::from_ref(&rule), &script);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout().contains(&format!("curl=200 {BODY_LEN}")),
        "{run:?}"
    );
    assert!(
        run.stdout().contains(&format!("urllib={BODY_LEN}")),
        "{run:?}"
    );
    assert_eq!(server.connections(), 2, "{run:?}");
    let events = events(&run);
    assert_eq!(events.len(), 2, "{run:?}");
    for event in &events {
        assert_eq!(event["protocol"], "http", "{run:?}");
        assert_eq!(event["decision"], "allow", "{run:?}");
        assert_eq!(event["rule"], rule.as_str(), "{run:?}");
        assert_eq!(event["address"], "127.0.0.1", "{run:?}");
    }
}

/// pip with its default settings installs from an index the operator allowed on the host's
/// loopback (a one-package simple index served by the test).
fn pip_downloads_from_an_allowed_loopback_index(backend: Backend) {
    let ws = Workspace::new();
    let wheel = demo_wheel(&ws);
    let server = Server::answering(move |head| match head.split(' ').nth(1).unwrap_or("") {
        "/simple/demo/" => http_ok(
            "text/html",
            b"<a href=\"/files/demo-1.0-py3-none-any.whl\">demo-1.0-py3-none-any.whl</a>",
        ),
        "/files/demo-1.0-py3-none-any.whl" => http_ok("application/octet-stream", &wheel),
        _ => b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    });
    let rule = format!("127.0.0.1:{}", server.port);
    let script = format!(
        "python3 -m pip download --no-deps --no-cache-dir --disable-pip-version-check \
         --index-url http://{rule}/simple/ -d /tmp/dl demo && ls /tmp/dl"
    );
    let run = networked(backend, &ws, std::slice::from_ref(&rule), &script);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout().contains("demo-1.0-py3-none-any.whl"),
        "{run:?}"
    );
    let events = events(&run);
    assert!(!events.is_empty(), "{run:?}");
    for event in &events {
        assert_eq!(event["protocol"], "http", "{run:?}");
        assert_eq!(event["decision"], "allow", "{run:?}");
        assert_eq!(event["rule"], rule.as_str(), "{run:?}");
    }
    assert_eq!(server.connections(), events.len(), "{run:?}");
}

fn http_ok(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The smallest wheel pip accepts: a zip with the dist-info metadata, made by the host's python3.
fn demo_wheel(ws: &Workspace) -> Vec<u8> {
    let path = ws.file("demo-1.0-py3-none-any.whl");
    let made = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w') as z:\n\
             \x20   z.writestr('demo-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: demo\\nVersion: 1.0\\n')\n\
             \x20   z.writestr('demo-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n\
             \x20   z.writestr('demo-1.0.dist-info/RECORD', '')\n",
        )
        .arg(&path)
        .status()
        .expect("run python3");
    assert!(made.success(), "python3 could not write the wheel");
    std::fs::read(&path).expect("read the wheel")
}

/// Without a loopback rule, loopback stays the job's own: the tools' own proxy logic sends
/// 127.0.0.1 and localhost direct (for servers the job starts itself, issue 16), and other
/// hosts to the proxy.
fn own_loopback_stays_direct_without_a_loopback_rule(backend: Backend) {
    let ws = Workspace::new();
    let script = r#"python3 - <<'EOF'
import urllib.request
for host in ["127.0.0.1", "localhost", "example.test"]:
    print("%s bypass=%s" % (host, bool(urllib.request.proxy_bypass(host))))
print("proxy=" + urllib.request.getproxies()["http"])
EOF"#;
    let run = networked(backend, &ws, &["example.test:443".to_owned()], script);
    assert_eq!(run.code, 0, "{run:?}");
    let out = run.stdout();
    assert!(out.contains("127.0.0.1 bypass=True"), "{run:?}");
    assert!(out.contains("localhost bypass=True"), "{run:?}");
    assert!(out.contains("example.test bypass=False"), "{run:?}");
    assert!(out.contains("proxy=http://127.0.0.1:3128"), "{run:?}");
}

/// Each of 500 tunnels is a socket in this process's server too.
fn raise_own_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

conformance!(
    allows_connect_to_a_listed_port_and_denies_another,
    counts_bytes_exactly,
    proxies_plain_http,
    socks5_with_a_domain_name,
    denies_a_name_resolving_to_loopback_unless_the_address_is_named,
    denies_unlisted_hosts_without_resolving_them,
    address_rules_allow_names_only_when_the_profile_says_so,
    wildcard_and_cidr_rules,
    blocks_a_host_header_naming_another_virtual_host,
    blocks_a_nat64_address_embedding_loopback,
    ordinary_clients_reach_an_allowed_loopback_service,
    pip_downloads_from_an_allowed_loopback_index,
    own_loopback_stays_direct_without_a_loopback_rule,
    blocks_everything_but_the_proxy,
    handles_500_concurrent_connections,
    closes_idle_connections,
);

#[test]
fn allow_rules_need_the_allowlist_mode_and_valid_syntax() {
    let ws = Workspace::new();
    let ran = common::sandbox(&[
        "exec",
        "--workspace",
        ws.path().to_str().expect("utf-8"),
        "--allow",
        "example.com:443",
        "--",
        "true",
    ]);
    assert_eq!(ran.code, 125);
    assert!(ran.stderr.contains("--network allowlist"));
    let ran = common::sandbox(&[
        "exec",
        "--profile",
        "networked",
        "--allow",
        "example.com",
        "--",
        "true",
    ]);
    assert_eq!(ran.code, 125);
    assert!(ran.stderr.contains("not a network rule"));
}

/// The proxy's socket is how the native jail's init hands connections over; the job itself must
/// not be able to pass descriptors of its choosing through it.
#[test]
fn the_job_cannot_use_the_proxy_socket_directly() {
    let ws = Workspace::new();
    let server = Server::start();
    let script = r#"python3 - <<'EOF'
import array, os, socket
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("/.sandbox/proxy.sock")
    fd = os.open("/etc/hostname", os.O_RDONLY)
    s.sendmsg([b"c"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    print("connected")
except OSError as error:
    print("refused " + str(error))
EOF"#;
    let run = networked(
        Backend::Native,
        &ws,
        &[format!("127.0.0.1:{}", server.port)],
        script,
    );
    assert!(run.stdout().contains("refused"), "{run:?}");
    assert!(events(&run).is_empty(), "{run:?}");
}
