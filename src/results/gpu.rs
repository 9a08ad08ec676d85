//! `s_gpu_type`: upstream runs `nvidia-smi -q | grep 'Product Name' | head -1`, takes the last
//! whitespace-separated token and maps it (`GB200→gb200`, `GB300→gb300`, `B200→b200`,
//! `B300→b300`, `H200→h200`, anything else → `unsupported`). We run `nvidia-smi -q` directly (no
//! shell) and parse its output the same way.
//!
//! Where upstream raises "Failed to get GPU type" (no `nvidia-smi`, or no `Product Name` line),
//! we record `unsupported` — the project's decision, so a record is never lost to a detection
//! problem; `unsupported` never matches a supported GPU's history. Simulator runs record `sim`,
//! which can never match a real GPU's history either.

use std::process::{Command, Stdio};

/// `s_gpu_type` of every simulator-toolchain record.
pub const SIM_GPU_TYPE: &str = "sim";
/// `s_gpu_type` for a GPU upstream does not map (and, here, for failed detection).
pub const UNSUPPORTED_GPU_TYPE: &str = "unsupported";

/// Upstream's mapping of the last `Product Name` token.
pub fn map_product_token(token: &str) -> &'static str {
    match token {
        "GB200" => "gb200",
        "GB300" => "gb300",
        "B200" => "b200",
        "B300" => "b300",
        "H200" => "h200",
        _ => UNSUPPORTED_GPU_TYPE,
    }
}

/// The GPU type from `nvidia-smi -q` output: first line containing `Product Name`, its last
/// token, mapped. `None` when there is no such line (upstream's failure case).
pub fn parse_gpu_type(nvidia_smi_q: &str) -> Option<&'static str> {
    let line = nvidia_smi_q.lines().find(|l| l.contains("Product Name"))?;
    let token = line.split_whitespace().last()?;
    Some(map_product_token(token))
}

/// Runs `nvidia-smi -q` and parses it; `unsupported` when it cannot run or says nothing usable.
pub fn detect_gpu_type() -> String {
    let output = Command::new("nvidia-smi")
        .arg("-q")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match output {
        Ok(out) => parse_gpu_type(&String::from_utf8_lossy(&out.stdout))
            .unwrap_or(UNSUPPORTED_GPU_TYPE)
            .to_string(),
        Err(_) => UNSUPPORTED_GPU_TYPE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_first_product_name() {
        let out = "==============NVSMI LOG==============\n\nAttached GPUs : 8\nGPU 00000000:1B:00.0\n    Product Name                          : NVIDIA H200\n    Product Brand : NVIDIA\nGPU 2\n    Product Name : NVIDIA B200\n";
        assert_eq!(parse_gpu_type(out), Some("h200"));
        assert_eq!(
            parse_gpu_type("    Product Name : NVIDIA GB200\n"),
            Some("gb200")
        );
        assert_eq!(
            parse_gpu_type("    Product Name : NVIDIA H100 80GB HBM3\n"),
            Some("unsupported")
        );
        assert_eq!(parse_gpu_type("no gpus here\n"), None);
    }
}
