//! Build-time facts about the checkout that the integration tests need.
//!
//! `cfg(perfsanity_upstream)`: the upstream corpus (`../shared/upstream`, or one level further
//! up from a git worktree) is present, or `PERFSANITY_REQUIRE_UPSTREAM=1` says it must be. Tests
//! that read the corpus carry `#[cfg_attr(not(perfsanity_upstream), ignore = "...")]`, so without
//! it they are reported as *ignored*, never as passed; with the switch set and the corpus missing
//! they run and fail, naming the path. The corpus is a property of the checkout, not of the
//! moment the tests run, so it is probed here once. After adding `../shared` to a checkout that
//! was built without it, `touch build.rs` (or set the switch) to probe again.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(perfsanity_upstream)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PERFSANITY_REQUIRE_UPSTREAM");
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let found = ["../shared/upstream", "../../shared/upstream"]
        .iter()
        .any(|p| Path::new(&root).join(p).is_dir());
    let required = std::env::var("PERFSANITY_REQUIRE_UPSTREAM").as_deref() == Ok("1");
    if found || required {
        println!("cargo::rustc-cfg=perfsanity_upstream");
    }
}
