//! Datasets the simulator toolchain generates: when a standard-mode config names a
//! `trtllm_custom` file that is not on this machine, the plan points at a generated stand-in
//! (fixed lengths, as upstream's `ratio-1` files), written here once before the clients run.

use std::io::Write;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::plan::DatasetGenSpec;
use crate::tools::bench::BenchError;
use crate::tools::bench::dataset::RandomSpec;
use crate::tools::bench::dataset_gen::{dataset_lines, load_tokenizer};

/// Why a stand-in dataset could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DatasetGenError {
    /// The file, its folder or its lock could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The dataset file.
        path: std::path::PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The tokenizer could not be loaded.
    #[error(transparent)]
    Tokenizer(BenchError),
    /// The requests could not be drawn.
    #[error("cannot generate {}: {source}", path.display())]
    Generate {
        /// The dataset file.
        path: std::path::PathBuf,
        /// What the generator said.
        source: BenchError,
    },
}

/// Writes `path` unless a file with enough lines is already there. Concurrent trials that
/// need the same file serialise on an exclusive `flock` of `<path>.lock`.
pub fn ensure_generated(
    path: &Path,
    spec: &DatasetGenSpec,
    model_path: &str,
) -> Result<(), DatasetGenError> {
    let io = |source: std::io::Error| DatasetGenError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.with_extension("lock"))
        .map_err(io)?;
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, errno)| io(std::io::Error::from(errno)))?;
    let wanted = spec.num_prompts as usize;
    if let Ok(text) = std::fs::read_to_string(path)
        && text.lines().count() >= wanted
    {
        return Ok(());
    }
    let tokenizer = if Path::new(model_path).join("tokenizer.json").is_file() {
        model_path.to_string()
    } else {
        "builtin".to_string()
    };
    let random = RandomSpec {
        num_prompts: wanted,
        input_len: spec.input_len as u32,
        output_len: spec.output_len as u32,
        range_ratio: spec.range_ratio,
        prefix_len: 0,
        seed: spec.seed,
    };
    let tok = load_tokenizer(&tokenizer).map_err(DatasetGenError::Tokenizer)?;
    let body = dataset_lines(&random, &tok).map_err(|source| DatasetGenError::Generate {
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = path.with_extension("generating");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    for line in body {
        f.write_all(line.as_bytes()).map_err(io)?;
    }
    f.flush().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}
