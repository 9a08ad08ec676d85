//! Instruction-count probe for config parsing: `cargo run --release --example parse_timing <dir> <raw|load|config>`.
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let mode = std::env::args().nth(2).unwrap_or_default();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let texts: Vec<String> = paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let mut n = 0usize;
    for (p, text) in paths.iter().zip(&texts) {
        match mode.as_str() {
            "raw" => {
                for ev in saphyr_parser::Parser::new_from_str(text) {
                    let _ = ev.unwrap();
                    n += 1;
                }
            }
            "load" => {
                let _ = perfsanity::util::yaml::load_str(text).unwrap();
                n += 1;
            }
            _ => {
                let _ = perfsanity::config::parse_perf_config(text, p).unwrap();
                n += 1;
            }
        }
    }
    println!("{n}");
}
