//! The job-info fields every record carries (upstream-perf-sanity.md §6.3), from the CI
//! environment: build ids and URLs, the parent job from `globalVars`, post-merge vs pre-merge,
//! branch, PR fields and the artifact URL.

use regex::Regex;
use serde_json::Value;

use super::context::CiEnv;
use super::field;
use super::value::Record;

const ARTIFACT_BASE: &str =
    "https://urm.nvidia.com/artifactory/sw-tensorrt-generic/llm-artifacts/LLM/main";

fn string_of(v: &Value) -> String {
    // Python's str() of a JSON scalar.
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => super::pyjson::py_float_repr(f),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// `globalVars` parsed; an unparsable or non-object value counts as `{}` (upstream rule), with
/// a note for the caller to surface.
pub fn parse_global_vars(text: Option<&str>) -> (serde_json::Map<String, Value>, Option<String>) {
    let Some(text) = text else {
        return (serde_json::Map::new(), None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => (map, None),
        Ok(_) => (
            serde_json::Map::new(),
            Some("globalVars is not a JSON object; job info treats it as {}".to_string()),
        ),
        Err(e) => (
            serde_json::Map::new(),
            Some(format!(
                "globalVars is not valid JSON ({e}); job info treats it as {{}}"
            )),
        ),
    }
}

/// The job-info fields, in upstream's order, plus any note about the environment.
pub fn job_info(ci: &CiEnv) -> (Record, Vec<String>) {
    let (gv, note) = parse_global_vars(ci.global_vars.as_deref());
    let mut notes: Vec<String> = note.into_iter().collect();

    let action_info = gv.get("action_info").and_then(Value::as_object);
    let last_parent = action_info
        .and_then(|a| a.get("parents"))
        .and_then(Value::as_array)
        .and_then(|p| p.last())
        .and_then(Value::as_object);
    let (job_url, job_id) = match last_parent {
        Some(parent) => (
            parent.get("url").map(string_of).unwrap_or_default(),
            parent
                .get("build_number")
                .map(string_of)
                .unwrap_or_default(),
        ),
        None => (String::new(), String::new()),
    };
    let is_post_merge = job_url.contains("PostMerge");
    let is_pr_job = !is_post_merge;

    // Branch: the pipeline's `build_branch` when published (newest upstream); a value that is not
    // a string becomes "". Older pipelines without it: the Jenkins folder in the job URL.
    let branch = match gv.get("build_branch") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            notes.push("globalVars.build_branch is not a string; s_branch is \"\"".to_string());
            String::new()
        }
        None => Regex::new(r"/job/LLM/job/([^/]+)/job/")
            .ok()
            .and_then(|re| re.captures(&job_url).map(|c| c[1].to_string()))
            .unwrap_or_default(),
    };
    let commit = ci.gitlab_commit.clone();

    let mut trigger_mr_user = String::new();
    let mut trigger_mr_link = String::new();
    let mut trigger_mr_id = String::new();
    let mut trigger_mr_commit = String::new();
    let artifact_url;
    if is_pr_job {
        if let Some(api_url) = gv.get("github_pr_api_url").map(string_of)
            && !api_url.is_empty()
            && let Some(c) = Regex::new(r"/pulls/(\d+)")
                .ok()
                .and_then(|re| re.captures(&api_url))
        {
            trigger_mr_id = c[1].to_string();
            trigger_mr_link = api_url
                .replace("api.github.com/repos/", "github.com/")
                .replace("/pulls/", "/pull/");
        }
        let trigger_info = action_info
            .and_then(|a| a.get("trigger_info"))
            .map(string_of)
            .unwrap_or_default();
        if let Some(c) = Regex::new(r#"target="_blank">([^<]+)</a><br/>Git Commit:"#)
            .ok()
            .and_then(|re| re.captures(&trigger_info))
        {
            trigger_mr_user = c[1].to_string();
        }
        trigger_mr_commit = commit.clone();
        artifact_url = if job_id.is_empty() {
            String::new()
        } else {
            format!("{ARTIFACT_BASE}/L0_MergeRequest_PR/{job_id}")
        };
    } else {
        artifact_url = if job_id.is_empty() {
            String::new()
        } else {
            format!("{ARTIFACT_BASE}/L0_PostMerge/{job_id}")
        };
    }

    let mut r = Record::new();
    r.set(field::IS_BASELINE, false);
    r.set(field::IS_VALID, true);
    r.set(field::ID, "");
    r.set("s_host_node_name", ci.host_node_name.clone());
    r.set("s_build_id", ci.build_id.clone());
    r.set("s_build_url", ci.build_url.clone());
    r.set("s_job_name", ci.job_name.clone());
    r.set("s_job_id", job_id);
    r.set("s_job_url", job_url);
    r.set(field::BRANCH, branch);
    r.set("s_commit", commit);
    r.set(field::IS_POST_MERGE, is_post_merge);
    r.set("b_is_pr_job", is_pr_job);
    r.set("s_trigger_mr_user", trigger_mr_user);
    r.set("s_trigger_mr_link", trigger_mr_link);
    r.set("s_trigger_mr_id", trigger_mr_id);
    r.set("s_trigger_mr_commit", trigger_mr_commit);
    r.set("s_artifact_url", artifact_url);
    r.set(field::IS_REGRESSION, false);
    (r, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_run_is_pre_merge_with_empty_fields() {
        let (r, notes) = job_info(&CiEnv::default());
        assert!(notes.is_empty());
        assert_eq!(r.bool("b_is_post_merge"), Some(false));
        assert_eq!(r.bool("b_is_pr_job"), Some(true));
        assert_eq!(r.str("s_artifact_url"), Some(""));
        assert_eq!(r.str("_id"), Some(""));
        assert_eq!(r.fields.len(), 19);
    }

    #[test]
    fn pr_job_fields() {
        let gv = r#"{"action_info": {"parents": [{"url": "https://jenkins/job/LLM/job/main/job/L0_MergeRequest_PR/", "build_number": 17},
            {"url": "https://prod/job/LLM/job/main/job/L0_MergeRequest_PR/", "build_number": 4242}],
            "trigger_info": "Started by <a href=\"x\" target=\"_blank\">octocat</a><br/>Git Commit: abc"},
            "github_pr_api_url": "https://api.github.com/repos/NVIDIA/TensorRT-LLM/pulls/9876"}"#;
        let ci = CiEnv {
            global_vars: Some(gv.to_string()),
            gitlab_commit: "deadbeef".to_string(),
            ..CiEnv::default()
        };
        let (r, _) = job_info(&ci);
        assert_eq!(r.str("s_job_id"), Some("4242"));
        assert_eq!(r.str("s_branch"), Some("main"));
        assert_eq!(r.str("s_trigger_mr_id"), Some("9876"));
        assert_eq!(
            r.str("s_trigger_mr_link"),
            Some("https://github.com/NVIDIA/TensorRT-LLM/pull/9876")
        );
        assert_eq!(r.str("s_trigger_mr_user"), Some("octocat"));
        assert_eq!(r.str("s_trigger_mr_commit"), Some("deadbeef"));
        assert_eq!(
            r.str("s_artifact_url"),
            Some(
                "https://urm.nvidia.com/artifactory/sw-tensorrt-generic/llm-artifacts/LLM/main/L0_MergeRequest_PR/4242"
            )
        );
    }

    #[test]
    fn post_merge_and_build_branch() {
        let gv = r#"{"build_branch": "release/1.3", "action_info": {"parents": [{"url": "https://x/job/LLM/job/main/job/L0_PostMerge/", "build_number": "77"}]}}"#;
        let ci = CiEnv {
            global_vars: Some(gv.to_string()),
            ..CiEnv::default()
        };
        let (r, _) = job_info(&ci);
        assert_eq!(r.bool("b_is_post_merge"), Some(true));
        assert_eq!(r.str("s_branch"), Some("release/1.3"));
        assert_eq!(r.str("s_trigger_mr_commit"), Some(""));
        assert!(
            r.str("s_artifact_url")
                .unwrap()
                .ends_with("/L0_PostMerge/77")
        );

        let (_, notes) = job_info(&CiEnv {
            global_vars: Some("{not json".to_string()),
            ..CiEnv::default()
        });
        assert_eq!(notes.len(), 1);
    }
}
