//! GPUs on one host: which are visible (`CUDA_VISIBLE_DEVICES`, else `nvidia-smi -L`), and an
//! allocator that hands each trial a disjoint set, so trials that would share GPUs never run at
//! the same time whatever `--test-threads` says. Simulator trials need no GPUs.

use std::sync::{Condvar, Mutex};

/// The GPUs this host shows, as device ids.
pub fn visible_gpus(cuda_visible_devices: Option<&str>) -> Vec<String> {
    if let Some(list) = cuda_visible_devices {
        return list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    let Ok(out) = std::process::Command::new("nvidia-smi").arg("-L").output() else {
        return Vec::new();
    };
    if !out.status.success() {
        return Vec::new();
    }
    parse_nvidia_smi_list(&String::from_utf8_lossy(&out.stdout))
}

/// Device ids from `nvidia-smi -L` output (`GPU 0: NVIDIA H200 (UUID: …)` lines).
pub fn parse_nvidia_smi_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("GPU "))
        .filter_map(|rest| rest.split(':').next())
        .map(|id| id.trim().to_string())
        .collect()
}

/// Hands out disjoint GPU sets; blocks until enough are free.
pub struct GpuPool {
    devices: Vec<String>,
    free: Mutex<Vec<bool>>,
    released: Condvar,
}

/// GPUs held by one trial; returned to the pool on drop.
pub struct GpuLease<'a> {
    pool: &'a GpuPool,
    slots: Vec<usize>,
}

impl GpuPool {
    /// A pool over `devices`.
    pub fn new(devices: Vec<String>) -> Self {
        let n = devices.len();
        GpuPool {
            devices,
            free: Mutex::new(vec![true; n]),
            released: Condvar::new(),
        }
    }

    /// Number of GPUs.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// True when the host shows no GPU.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Waits for `n` free GPUs and takes them (`None` when the host has fewer than `n`).
    pub fn acquire(&self, n: usize) -> Option<GpuLease<'_>> {
        if n > self.devices.len() {
            return None;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let slots: Vec<usize> = free
                .iter()
                .enumerate()
                .filter(|(_, f)| **f)
                .map(|(i, _)| i)
                .take(n)
                .collect();
            if slots.len() == n {
                for &s in &slots {
                    free[s] = false;
                }
                return Some(GpuLease { pool: self, slots });
            }
            free = self.released.wait(free).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl GpuLease<'_> {
    /// `CUDA_VISIBLE_DEVICES` for the logical slice `[first, first + count)` of this lease.
    pub fn devices(&self, first: u64, count: u64) -> String {
        self.slots
            .iter()
            .skip(first as usize)
            .take(count as usize)
            .map(|&s| self.pool.devices[s].as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for GpuLease<'_> {
    fn drop(&mut self) {
        let mut free = self.pool.free.lock().unwrap_or_else(|e| e.into_inner());
        for &s in &self.slots {
            free[s] = true;
        }
        self.pool.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_from_env_or_smi() {
        assert_eq!(visible_gpus(Some("4,5, 6")), ["4", "5", "6"]);
        assert!(visible_gpus(Some("")).is_empty());
        assert_eq!(
            parse_nvidia_smi_list(
                "GPU 0: NVIDIA H200 (UUID: GPU-1)\nGPU 1: NVIDIA H200 (UUID: GPU-2)\n"
            ),
            ["0", "1"]
        );
    }

    #[test]
    fn leases_are_disjoint_and_returned() {
        let pool = GpuPool::new(vec!["0".into(), "1".into(), "2".into()]);
        let a = pool.acquire(2).unwrap();
        assert_eq!(a.devices(0, 2), "0,1");
        assert_eq!(a.devices(1, 1), "1");
        assert!(pool.acquire(4).is_none());
        let waiter = std::thread::scope(|s| {
            let h = s.spawn(|| pool.acquire(2).map(|l| l.devices(0, 2)));
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(a);
            h.join().unwrap()
        });
        assert_eq!(waiter.as_deref(), Some("0,1"));
    }
}
