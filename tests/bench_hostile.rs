//! `perfsanity bench` against hostile servers on loopback (silent, dripping, an endless SSE
//! line, failing requests) and with out-of-range size flags: every case ends, in bounded time,
//! with a clear message and a non-zero exit status.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use perfsanity::tools::bench::scripted_server::{Script, ScriptedServer};

/// What a hostile server does after reading a request head.
#[derive(Clone, Copy)]
enum Hostile {
    /// Never answers.
    Silent,
    /// Sends a streaming head, then one body byte a second.
    Drip,
    /// Sends a streaming head, then `x` forever without a newline.
    EndlessLine,
}

fn read_head(s: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
transfer-encoding: chunked\r\n\r\n";

fn serve(mut s: TcpStream, how: Hostile) {
    read_head(&mut s);
    match how {
        Hostile::Silent => {
            // Hold the connection until the client gives up.
            let mut sink = [0u8; 1024];
            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        }
        Hostile::Drip => {
            if s.write_all(STREAM_HEAD).is_err() {
                return;
            }
            let mut k = 0;
            while s.write_all(b"1\r\nd\r\n").is_ok() && k < 120 {
                std::thread::sleep(Duration::from_secs(1));
                k += 1;
            }
        }
        Hostile::EndlessLine => {
            if s.write_all(STREAM_HEAD).is_err() {
                return;
            }
            let mut chunk = format!("{:x}\r\n", 1 << 16).into_bytes();
            chunk.extend(std::iter::repeat_n(b'x', 1 << 16));
            chunk.extend_from_slice(b"\r\n");
            // Stops when the client closes (write error) or after 1 GiB at most.
            for _ in 0..(1 << 14) {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    }
}

fn hostile(how: Hostile) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve(s, how));
        }
    });
    addr
}

fn standard(port: u16) -> Command {
    let mut c = Command::from_std(crate::support::cmd::bench_cmd());
    c.args([
        "--dataset-name",
        "random",
        "--random-ids",
        "--random-input-len",
        "8",
    ])
    .args([
        "--random-output-len",
        "4",
        "--random-range-ratio",
        "0",
        "--ignore-eos",
    ])
    .args(["--host", "127.0.0.1", "--port", &port.to_string()])
    .timeout(Duration::from_secs(60));
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_silent_server_times_out_with_progress_lines() {
    let addr = hostile(Hostile::Silent);
    let t0 = Instant::now();
    let out = standard(addr.port())
        .args([
            "--no-test-input",
            "--num-prompts",
            "2",
            "--max-concurrency",
            "2",
        ])
        .args(["--request-timeout-s", "1.5", "--progress-interval-s", "0.5"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert!(
        stdout.contains("Error type: Timeout, Count: 2 requests"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no complete response within 1.5 s (--request-timeout-s)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("perfsanity bench: 0/2 requests done, 2 in flight"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 of 2 requests failed; exit status 3"),
        "{stderr}"
    );
}

#[test]
fn the_test_request_times_out_too() {
    let addr = hostile(Hostile::Silent);
    let out = standard(addr.port())
        .args(["--num-prompts", "2", "--request-timeout-s", "1"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let err = text(&out.stderr);
    assert!(
        err.contains("Initial test run failed") && err.contains("no complete response within 1 s"),
        "{err}"
    );
}

#[test]
fn a_dripping_server_times_out() {
    let stdout = one_failed_request(Hostile::Drip, "2.5");
    assert!(
        stdout.contains("Error type: Timeout, Count: 1 requests"),
        "{stdout}"
    );
}

#[test]
fn an_sse_line_without_newline_is_capped() {
    let stdout = one_failed_request(Hostile::EndlessLine, "50");
    assert!(
        stdout.contains("Error type: BodyError, Count: 1 requests"),
        "{stdout}"
    );
    assert!(
        stdout.contains("a stream line grew past 16 MiB without a newline"),
        "{stdout}"
    );
}

/// One request (no test request) against a `kind` server with `--request-timeout-s timeout_s`;
/// the client must exit 3 (failed requests). Returns its stdout.
fn one_failed_request(kind: Hostile, timeout_s: &str) -> String {
    let addr = hostile(kind);
    let out = standard(addr.port())
        .args([
            "--no-test-input",
            "--num-prompts",
            "1",
            "--request-timeout-s",
            timeout_s,
        ])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    stdout
}

fn failing_server() -> ScriptedServer {
    ScriptedServer::start(
        Script {
            ttft: Duration::from_millis(2),
            gaps: vec![Duration::from_millis(1)],
            fail_every: Some(2),
            ..Script::default()
        },
        0,
        0,
    )
    .unwrap()
}

#[test]
fn failed_requests_exit_non_zero_unless_allowed() {
    let srv = failing_server();
    let run = |extra: &[&str]| {
        standard(srv.addr.port())
            .args([
                "--no-test-input",
                "--num-prompts",
                "4",
                "--max-concurrency",
                "1",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("Total failed requests: 2"), "{stdout}");
    let out = run(&["--allow-failed-requests"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn the_sa_flavor_reports_failures_in_its_output() {
    let srv = failing_server();
    let out = Command::from_std(crate::support::cmd::bench_cmd())
        .args(["--flavor", "sa", "--dataset-name", "random"])
        .args([
            "--random-input-len",
            "8",
            "--random-output-len",
            "4",
            "--ignore-eos",
        ])
        .args(["--num-prompts", "6", "--max-concurrency", "1"])
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &srv.addr.port().to_string(),
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    // The test request is arrival 1 (served); arrivals 2, 4, 6 fail: 3 of the 6 measured.
    assert!(
        stdout.contains("Error type: HTTPStatus, Count: 3 requests"),
        "{stdout}"
    );
    assert!(stdout.contains("Total failed requests: 3"), "{stdout}");
    assert!(
        stdout.contains("Successful requests:                     3"),
        "{stdout}"
    );
}

#[test]
fn size_flags_have_documented_bounds() {
    let cases: [(&[&str], &str); 7] = [
        (&["--num-prompts", "18446744073709551615"], "--num-prompts"),
        (&["--random-input-len", "4294967295"], "--random-input-len"),
        (
            &["--random-output-len", "4294967295"],
            "--random-output-len",
        ),
        (
            &["--num-prompts", "1000000", "--random-input-len", "2000000"],
            "MAX_TOTAL_PROMPT_TOKENS",
        ),
        (
            &["--max-concurrency", "18446744073709551615"],
            "--max-concurrency",
        ),
        (&["--request-timeout-s", "1e300"], "--request-timeout-s"),
        (&["--threads", "0"], "--threads"),
    ];
    for (args, needle) in cases {
        let t0 = Instant::now();
        let out = Command::from_std(crate::support::cmd::bench_cmd())
            .args(["--dataset-name", "random", "--random-ids", "--port", "9"])
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(t0.elapsed() < Duration::from_secs(20), "{args:?}");
    }
}
