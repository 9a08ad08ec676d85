//! Who serves a port: the listening sockets of this host (`/proc/net/tcp`, `/proc/net/tcp6`)
//! matched to the processes holding them (`/proc/<pid>/fd`). The runner uses it to check that
//! the address a worker published is served by that worker's own process tree — not by another
//! server that took (or shares) its port — and to name the role whose port was taken.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

/// Socket inodes of the listeners that take connections to `addrs` (a published `host:port`,
/// resolved): the listeners bound to exactly one of those addresses, or — when there is none —
/// the wildcard (`0.0.0.0` / `::`) listeners on that port, as the kernel chooses.
pub fn serving_inodes(addrs: &[SocketAddr]) -> HashSet<u64> {
    let rows: Vec<Listener> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| parse_listeners(&table))
        .collect();
    let exact: HashSet<u64> = rows
        .iter()
        .filter(|l| addrs.iter().any(|a| a.ip() == l.ip && a.port() == l.port))
        .map(|l| l.inode)
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    rows.iter()
        .filter(|l| l.ip.is_unspecified() && addrs.iter().any(|a| a.port() == l.port))
        .map(|l| l.inode)
        .collect()
}

/// One LISTEN row of `/proc/net/tcp*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Local address.
    pub ip: IpAddr,
    /// Local port.
    pub port: u16,
    /// Socket inode.
    pub inode: u64,
}

/// The LISTEN rows (`st` = `0A`) of a `/proc/net/tcp` or `/proc/net/tcp6` table.
pub fn parse_listeners(table: &str) -> Vec<Listener> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if *cols.get(3)? != "0A" {
                return None;
            }
            let (hex_ip, hex_port) = cols.get(1)?.rsplit_once(':')?;
            Some(Listener {
                ip: parse_ip(hex_ip)?,
                port: u16::from_str_radix(hex_port, 16).ok()?,
                inode: cols.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// A `/proc/net/tcp*` address: 8 (IPv4) or 32 (IPv6) hex digits, each 32-bit word in host
/// (little-endian) byte order.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            // An IPv4-mapped listener serves the IPv4 address.
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

/// Processes (that this user may inspect) holding any of `inodes`.
pub fn holders(inodes: &HashSet<u64>) -> Vec<i32> {
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|target| {
                        socket_inode(&target.to_string_lossy()).is_some_and(|i| inodes.contains(&i))
                    })
                })
            })
        })
        .collect()
}

/// The holders of `inodes` that are not `ours`, and whether any holder is.
pub fn split_holders(inodes: &HashSet<u64>, ours: impl Fn(i32) -> bool) -> (Vec<i32>, bool) {
    let (mine, foreign): (Vec<i32>, Vec<i32>) = holders(inodes).into_iter().partition(|&p| ours(p));
    (foreign, !mine.is_empty())
}

/// The inode of an fd link `socket:[12345]`.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// `pid N (command line)` for messages.
pub fn describe_pid(pid: i32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let short: String = cmdline.chars().take(120).collect();
    format!("pid {pid} ({short})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_of_a_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1108 1 0 100 0 0 10 0\n\
   1: 0100007F:07E8 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0 100 0 0 10 0\n\
   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3333 1 0 100 0 0 10 0\n";
        let rows = parse_listeners(table);
        assert_eq!(
            rows,
            vec![
                Listener {
                    ip: "0.0.0.0".parse().unwrap(),
                    port: 2024,
                    inode: 1108
                },
                Listener {
                    ip: "127.0.0.1".parse().unwrap(),
                    port: 8080,
                    inode: 3333
                },
            ]
        );
        assert_eq!(
            parse_ip("00000000000000000000000001000000"),
            Some("::1".parse().unwrap())
        );
        assert_eq!(
            parse_ip("0000000000000000FFFF00000100007F"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(socket_inode("socket:[77]"), Some(77));
        assert_eq!(socket_inode("pipe:[77]"), None);
    }

    #[test]
    fn our_own_listener_is_found() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inodes = serving_inodes(&[l.local_addr().unwrap()]);
        assert!(!inodes.is_empty());
        let me = std::process::id() as i32;
        assert!(holders(&inodes).contains(&me));
        // Seen from a worker whose tree this process is not part of: a foreign server.
        assert_eq!(split_holders(&inodes, |_| false), (vec![me], false));
        assert_eq!(split_holders(&inodes, |p| p == me), (vec![], true));
    }
}
