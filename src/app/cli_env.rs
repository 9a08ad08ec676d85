//! Command-line flags that stand for environment knobs (`perfsanity run --scale smoke` =
//! `PERF_SCALE=smoke`): the flags overlay the environment, so both go through the same
//! validation in [`crate::app::settings::Settings::from_env`].

use crate::app::settings::EnvSource;

/// `base` with some variables replaced.
pub struct Overlay<'a> {
    /// The environment underneath.
    pub base: &'a dyn EnvSource,
    /// Replacements, `(name, value)`.
    pub values: Vec<(&'static str, String)>,
}

impl EnvSource for Overlay<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| self.base.var(name))
    }

    fn unusable(&self) -> Vec<String> {
        self.base.unusable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_wins_over_the_environment() {
        let base = [("PERF_SCALE", "full"), ("PERF_TOOLCHAIN", "sim")];
        let o = Overlay {
            base: &base,
            values: vec![("PERF_SCALE", "smoke".into())],
        };
        assert_eq!(o.var("PERF_SCALE").as_deref(), Some("smoke"));
        assert_eq!(o.var("PERF_TOOLCHAIN").as_deref(), Some("sim"));
        assert_eq!(o.var("PATH"), None);
    }
}
