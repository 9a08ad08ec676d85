//! An environment snapshot as a value: the stages that take settings from environment-style
//! variables (results context, SLURM site options) read them through [`EnvSource`], so they
//! never touch the process environment themselves. Only the edge (`crate::app::settings::
//! ProcessEnv`) reads the real one; tests pass literal pairs.

/// The variables a value is read from.
pub trait EnvSource {
    /// Value of `name`, if set and valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;

    /// Knobs that are set but unusable (the edge's `app::env_check`); none for snapshots.
    fn unusable(&self) -> Vec<String> {
        Vec::new()
    }
}

impl<const N: usize> EnvSource for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}
