//! Helpers for tests that run `smsfold run` as a child process: the binary,
//! a free port, its topic flags, and a plain HTTP client for its endpoints.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use smsfold_worker::Topics;

/// Returns the path of the `smsfold` binary that Cargo built beside the test.
///
/// # Panics
/// When the binary is missing.
pub fn smsfold_binary() -> PathBuf {
    let deps = std::env::current_exe().expect("test path");
    let binary = deps.parent().and_then(|p| p.parent()).expect("target dir").join("smsfold");
    assert!(binary.exists(), "{} is missing; build it with `cargo build -p smsfold`", binary.display());
    binary
}

/// Returns a loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port()
}

/// Returns the flags of `smsfold run` that name every topic of `topics`.
pub fn topic_flags(topics: &Topics) -> Vec<String> {
    [
        ("--message-events-topic", &topics.message_events),
        ("--campaign-events-topic", &topics.campaign_events),
        ("--message-changes-topic", &topics.message_changes),
        ("--campaign-changes-topic", &topics.campaign_changes),
        ("--dead-letter-topic", &topics.dead_letter),
        ("--campaign-stage-topic", &topics.campaign_stage),
        ("--message-commands-topic", &topics.message_commands),
        ("--carrier-join-topic", &topics.carrier_join),
    ]
    .into_iter()
    .flat_map(|(flag, topic)| [flag.to_owned(), topic.clone()])
    .collect()
}

/// Sends an HTTP/1.0 GET, so the server closes the connection after an
/// unchunked body, and returns the status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    Ok((status, body.to_owned()))
}
