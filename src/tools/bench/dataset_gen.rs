//! `perfsanity dataset gen`: writes a `trtllm_custom` JSON Lines file named by upstream's
//! convention, `<model>-<isl>-<osl>-<n>-ratio-<r>_for_serve.json` (upstream ships such files
//! but keeps no generator in its tree).
//!
//! Prompts are random token ids `(offset + i + j) mod vocab` decoded to text; input and output
//! lengths are uniform in `[⌊L·r⌋, L]`; each line holds an empty system message and the user
//! prompt, since the client reads the second message.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::DatasetGenArgs;
use super::dataset::{RandomSpec, random_sa};
use super::error::BenchError;
use crate::util::tokenizer::Tokenizer;

/// `ratio-<r>` as upstream writes it: `1` for 1.0, `0.8` otherwise.
fn ratio_word(r: f64) -> String {
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// Upstream's file name for these settings.
pub fn file_name(model: &str, isl: u32, osl: u32, n: usize, ratio: f64) -> String {
    format!(
        "{model}-{isl}-{osl}-{n}-ratio-{}_for_serve.json",
        ratio_word(ratio)
    )
}

/// The lines of the dataset `perfsanity dataset gen` writes (each ending in `\n`).
pub fn lines(args: &DatasetGenArgs, tokenizer: &Tokenizer) -> Result<Vec<String>, BenchError> {
    let spec = RandomSpec {
        num_prompts: args.num_prompts,
        input_len: args.input_len,
        output_len: args.output_len,
        range_ratio: args.range_ratio,
        prefix_len: 0,
        seed: args.seed,
    };
    dataset_lines(&spec, tokenizer)
}

/// The lines of a generated dataset (each ending in `\n`): the typed entry point, for the
/// runner as for the CLI.
pub fn dataset_lines(spec: &RandomSpec, tokenizer: &Tokenizer) -> Result<Vec<String>, BenchError> {
    if !(0.0..=1.0).contains(&spec.range_ratio) {
        return Err(BenchError::Flag {
            flag: "--range-ratio".into(),
            message: format!("{} must be in [0, 1]", spec.range_ratio),
        });
    }
    let reqs = random_sa(spec, tokenizer)?;
    Ok(reqs
        .into_iter()
        .map(|r| {
            let text = match r.prompt {
                super::dataset::Prompt::Text(t) => t,
                super::dataset::Prompt::Ids(ids) => tokenizer.decode(&ids),
            };
            let line = json!({"input": {"messages": [
                {"role": "system", "content": ""},
                {"role": "user", "content": text}
            ], "max_tokens": r.output_len}});
            format!("{line}\n")
        })
        .collect())
}

/// Loads the generator's tokenizer: `builtin` or a directory with tokenizer.json.
pub fn load_tokenizer(spec: &str) -> Result<Tokenizer, BenchError> {
    if spec == "builtin" {
        Ok(Tokenizer::synthetic())
    } else {
        Ok(Tokenizer::from_dir(Path::new(spec))?)
    }
}

/// Writes the file and returns its path.
pub fn generate(args: &DatasetGenArgs) -> Result<PathBuf, BenchError> {
    let tokenizer = load_tokenizer(&args.tokenizer)?;
    let model = args.model_name.clone().unwrap_or_else(|| {
        if args.tokenizer == "builtin" {
            "synthetic".to_string()
        } else {
            Path::new(&args.tokenizer)
                .file_name()
                .map_or("model".into(), |n| n.to_string_lossy().to_lowercase())
        }
    });
    let path = args.output_dir.join(file_name(
        &model,
        args.input_len,
        args.output_len,
        args.num_prompts,
        args.range_ratio,
    ));
    let werr = |source| BenchError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&args.output_dir).map_err(werr)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).map_err(werr)?);
    for line in lines(args, &tokenizer)? {
        f.write_all(line.as_bytes()).map_err(werr)?;
    }
    f.flush().map_err(werr)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::custom_dataset::parse_custom;

    #[test]
    fn names_follow_upstream() {
        assert_eq!(
            file_name("deepseek-r1", 1024, 1024, 100000, 1.0),
            "deepseek-r1-1024-1024-100000-ratio-1_for_serve.json"
        );
        assert_eq!(
            file_name("m", 8, 2, 3, 0.8),
            "m-8-2-3-ratio-0.8_for_serve.json"
        );
    }

    #[test]
    fn generated_file_is_read_back_by_the_client() {
        let dir = tempfile::tempdir().unwrap();
        let args = DatasetGenArgs {
            num_prompts: 20,
            input_len: 64,
            output_len: 16,
            range_ratio: 0.5,
            tokenizer: "builtin".into(),
            model_name: None,
            seed: 3,
            output_dir: dir.path().to_path_buf(),
        };
        let path = generate(&args).unwrap();
        assert!(path.ends_with("synthetic-64-16-20-ratio-0.5_for_serve.json"));
        let entries = parse_custom(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(entries.len(), 20);
        let t = Tokenizer::synthetic();
        for e in &entries {
            assert!((8..=16).contains(&e.max_tokens));
            assert!((32..=64).contains(&t.encode(&e.prompt, false).len()));
        }
    }
}
