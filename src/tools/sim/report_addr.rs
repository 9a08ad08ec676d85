//! `--report_addr`: binding the listening socket and publishing `host:port` atomically.
//!
//! The address file is written to a temporary sibling (`<name>.<random>.tmp`) and renamed, so a
//! reader polling for it never sees a partial line. IPv6 hosts are bracketed.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::Path;

/// Binds `host:port` (port 0 = kernel-assigned), preferring IPv4 when the host resolves to both.
pub fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    let ordered = addrs
        .iter()
        .filter(|a| a.is_ipv4())
        .chain(addrs.iter().filter(|a| a.is_ipv6()));
    let mut last = None;
    for addr in ordered {
        match listen(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("{host} resolves to no address"),
        )
    }))
}

/// Accept-queue length. std's default of 128 overflows when a benchmark client opens hundreds
/// of connections at once (each overflow costs the client a 1 s SYN retry or a reset); the
/// kernel caps this at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;

fn listen(addr: &SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&(*addr).into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// `host:port` as written to the address file.
pub fn format_addr(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Writes `host:port\n` to `path` atomically (temp sibling + rename).
pub fn write_atomic(path: &Path, host: &str, port: u16) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    crate::util::fs::write_atomic_with(
        path,
        format!("{}\n", format_addr(host, port)).as_bytes(),
        crate::util::fs::Durability::Synced,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_host_port_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/CTX_0.txt");
        write_atomic(&path, "localhost", 1234).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "localhost:1234\n");
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1);
        assert_eq!(format_addr("::1", 5), "[::1]:5");
    }

    #[test]
    fn port_zero_binds_a_free_port() {
        let listener = bind("127.0.0.1", 0).unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
    }
}
