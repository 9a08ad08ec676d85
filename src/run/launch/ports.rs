//! Who serves a port: the listening sockets of this host (`/proc/net/tcp`, `/proc/net/tcp6`)
//! matched to the processes holding them (`/proc/<pid>/fd`). The runner uses it to check that
//! the address a worker published is served by that worker's own process tree — not by another
//! server that took (or shares) its port — and to name the role whose port was taken.

use std::collections::HashSet;

/// Socket inodes listening on `port` (any local address, IPv4 or IPv6).
pub fn listening_inodes(port: u16) -> HashSet<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| parse_listeners(&table, port))
        .collect()
}

/// Inodes of the LISTEN rows (`st` = `0A`) of a `/proc/net/tcp*` table with local port `port`.
pub fn parse_listeners(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local = cols.get(1)?;
            let state = cols.get(3)?;
            let inode = cols.get(9)?.parse::<u64>().ok()?;
            let (_, hex_port) = local.rsplit_once(':')?;
            let p = u16::from_str_radix(hex_port, 16).ok()?;
            (p == port && *state == "0A").then_some(inode)
        })
        .collect()
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
    fn listeners_of_a_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1108 1 0 100 0 0 10 0\n\
   1: 0100007F:07E8 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0 100 0 0 10 0\n\
   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3333 1 0 100 0 0 10 0\n";
        assert_eq!(parse_listeners(table, 2024), vec![1108]);
        assert_eq!(parse_listeners(table, 8080), vec![3333]);
        assert!(parse_listeners(table, 1).is_empty());
        assert_eq!(socket_inode("socket:[77]"), Some(77));
        assert_eq!(socket_inode("pipe:[77]"), None);
    }

    #[test]
    fn our_own_listener_is_found() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let inodes = listening_inodes(port);
        assert!(!inodes.is_empty());
        let me = std::process::id() as i32;
        assert!(holders(&inodes).contains(&me));
        // Seen from a worker whose tree this process is not part of: a foreign server.
        assert_eq!(split_holders(&inodes, |_| false), (vec![me], false));
        assert_eq!(split_holders(&inodes, |p| p == me), (vec![], true));
    }
}
