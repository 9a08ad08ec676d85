//! History documents and how they are matched to new records (upstream-perf-sanity.md §6.5):
//! match keys, common values that narrow the query, the query body the gateway receives, the
//! assignment of each document to the first record it matches, and timestamp parsing.
//!
//! A history document is a JSON object as the gateway returns it (`_source` plus `_id`), or a
//! record from the embedded history with `ts_created` / `@timestamp` set from its row.

use serde_json::{Map, Value, json};

use super::field;
use super::value::Record;

/// A history document.
pub type Doc = Map<String, Value>;

/// Upstream's (newest) match keys: a case is its test case name on a GPU type, runtime and
/// branch.
pub const MATCH_KEYS: [&str; 4] = [
    field::TEST_CASE_NAME,
    field::GPU_TYPE,
    field::RUNTIME,
    field::BRANCH,
];

/// Upstream's history window.
pub const LOOKBACK_DAYS: i64 = 90;
/// Upstream's query size.
pub const QUERY_SIZE: u64 = 5000;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn is_empty(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null)) || v == Some(&Value::String(String::new()))
}

/// Python `==` between JSON scalars (1 == 1.0).
pub fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Bool(x), Value::Number(y)) | (Value::Number(y), Value::Bool(x)) => {
            y.as_f64() == Some(if *x { 1.0 } else { 0.0 })
        }
        _ => a == b,
    }
}

/// Upstream's match rule: for each key, `b_` keys treat missing/None as false; two empty values
/// (None or "") match; otherwise the values must be equal.
pub fn matches(history: &Doc, new: &Doc, keys: &[&str]) -> bool {
    keys.iter().all(|k| {
        let (h, n) = (history.get(*k), new.get(*k));
        if k.starts_with("b_") {
            let b = |v: Option<&Value>| match v {
                None | Some(Value::Null) => Value::Bool(false),
                Some(v) => v.clone(),
            };
            return py_eq(&b(h), &b(n));
        }
        if is_empty(h) && is_empty(n) {
            return true;
        }
        match (h, n) {
            (Some(h), Some(n)) => py_eq(h, n),
            _ => false,
        }
    })
}

/// Match keys whose value is present, non-null and identical in every record.
pub fn common_values(records: &[Doc], keys: &[&str]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if records.is_empty() {
        return out;
    }
    for key in keys {
        let values: Vec<&Value> = records
            .iter()
            .filter_map(|r| r.get(*key))
            .filter(|v| !v.is_null())
            .collect();
        if values.len() != records.len() {
            continue;
        }
        if values.iter().all(|v| py_eq(v, values[0])) {
            out.push((key.to_string(), values[0].clone()));
        }
    }
    out
}

/// Midnight (UTC) of `now − days`, in epoch milliseconds (upstream's `ts_created` lower bound).
pub fn lookback_start_ms(now_ms: i64, days: i64) -> i64 {
    (now_ms - days * DAY_MS).div_euclid(DAY_MS) * DAY_MS
}

/// The search body upstream sends: valid, post-merge, non-baseline documents of the last 90 days
/// with the common values as terms (a `false` boolean also matches a missing field).
pub fn query_body(common: &[(String, Value)], now_ms: i64) -> Value {
    let mut must = vec![
        json!({"term": {(field::IS_VALID): true}}),
        json!({"term": {(field::IS_POST_MERGE): true}}),
        json!({"term": {(field::IS_BASELINE): false}}),
        json!({"range": {(field::CREATED): {"gte": lookback_start_ms(now_ms, LOOKBACK_DAYS)}}}),
    ];
    for (key, value) in common {
        if key.starts_with("b_") && value == &Value::Bool(false) {
            must.push(json!({"bool": {
                "should": [
                    {"term": {key.clone(): false}},
                    {"bool": {"must_not": [{"exists": {"field": key.clone()}}]}}
                ],
                "minimum_should_match": 1
            }}));
        } else {
            must.push(json!({"term": {key.clone(): value.clone()}}));
        }
    }
    json!({"query": {"bool": {"must": must}}, "size": QUERY_SIZE})
}

/// Each document goes to the first record (in client order) it matches.
pub fn assign(records: &[Doc], docs: Vec<Doc>, keys: &[&str]) -> Vec<Vec<Doc>> {
    let mut out: Vec<Vec<Doc>> = vec![Vec::new(); records.len()];
    for doc in docs {
        if let Some(i) = records.iter().position(|r| matches(&doc, r, keys)) {
            out[i].push(doc);
        }
    }
    out
}

/// A record as a document (for matching).
pub fn record_doc(record: &Record) -> Doc {
    record.to_json_map()
}

fn parse_time_string(s: &str) -> Option<i64> {
    use jiff::civil::DateTime;
    let formats = [
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%b %d, %Y @ %H:%M:%S%.f",
    ];
    formats.iter().find_map(|f| {
        DateTime::strptime(f, s)
            .ok()
            .and_then(|dt| dt.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp().as_millisecond())
    })
}

/// Epoch milliseconds of a timestamp value: numbers are seconds, or milliseconds when > 1e12;
/// strings in upstream's five formats (read as UTC). `None` when unparsable.
pub fn timestamp_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            let f = n.as_f64()?;
            Some(if f > 1e12 {
                f as i64
            } else {
                (f * 1000.0) as i64
            })
        }
        Value::String(s) => parse_time_string(s),
        _ => None,
    }
}

/// The document with the greatest `@timestamp` (unparsable = epoch 0; ties keep the first).
pub fn latest(docs: &[Doc]) -> Option<&Doc> {
    let mut best: Option<(&Doc, i64)> = None;
    for d in docs {
        let t = d.get("@timestamp").and_then(timestamp_ms).unwrap_or(0);
        if best.is_none_or(|(_, bt)| t > bt) {
            best = Some((d, t));
        }
    }
    best.map(|(d, _)| d)
}

/// The `d_baseline_*` / `d_threshold_*` fields of the most recent document that has any
/// `d_baseline_*` field (newest upstream), or an empty map.
pub fn latest_baseline_threshold(docs: &[Doc]) -> Doc {
    let with_baseline: Vec<Doc> = docs
        .iter()
        .filter(|d| d.keys().any(|k| k.starts_with("d_baseline_")))
        .cloned()
        .collect();
    match latest(&with_baseline) {
        Some(d) => d
            .iter()
            .filter(|(k, _)| k.starts_with("d_baseline_") || k.starts_with("d_threshold_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => Doc::new(),
    }
}

/// Why a gateway search response is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SearchResponseError {
    /// The body is not JSON.
    #[error("search response is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// `hits.hits` is there but not a list.
    #[error("search response: hits.hits is not a list")]
    HitsNotList,
    /// A hit has no `_id`.
    #[error("search response has a hit without _id")]
    HitWithoutId,
}

/// Parses a gateway search response: `hits.hits[*]._source` with `_id` attached. Any hit
/// without an `_id` makes the whole answer unusable (upstream rule).
pub fn parse_search_response(body: &str) -> Result<Vec<Doc>, SearchResponseError> {
    let v: Value = serde_json::from_str(body).map_err(SearchResponseError::NotJson)?;
    let Some(hits) = v.get("hits").and_then(|h| h.get("hits")) else {
        return Ok(Vec::new());
    };
    let hits = hits.as_array().ok_or(SearchResponseError::HitsNotList)?;
    let mut out = Vec::new();
    for hit in hits {
        let mut source = hit
            .get("_source")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let id = hit.get(field::ID).and_then(Value::as_str).unwrap_or("");
        if id.is_empty() {
            return Err(SearchResponseError::HitWithoutId);
        }
        source.insert(field::ID.to_string(), Value::String(id.to_string()));
        out.push(source);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: Value) -> Doc {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn matching_rules() {
        let new = doc(json!({"s_test_case_name": "a", "s_branch": "", "b_x": false}));
        let keys = ["s_test_case_name", "s_branch", "b_x"];
        assert!(matches(&doc(json!({"s_test_case_name": "a"})), &new, &keys));
        assert!(matches(
            &doc(json!({"s_test_case_name": "a", "s_branch": null, "b_x": null})),
            &new,
            &keys
        ));
        assert!(!matches(
            &doc(json!({"s_test_case_name": "a", "s_branch": "main"})),
            &new,
            &keys
        ));
        assert!(!matches(
            &doc(json!({"s_test_case_name": "a", "b_x": true})),
            &new,
            &keys
        ));
        assert!(matches(
            &doc(json!({"l": 1.0})),
            &doc(json!({"l": 1})),
            &["l"]
        ));
    }

    #[test]
    fn common_values_and_body() {
        let recs = vec![
            doc(json!({"s_gpu_type": "h200", "s_test_case_name": "a", "s_branch": ""})),
            doc(json!({"s_gpu_type": "h200", "s_test_case_name": "b", "s_branch": ""})),
        ];
        let common = common_values(&recs, &MATCH_KEYS);
        assert_eq!(
            common,
            vec![
                ("s_gpu_type".to_string(), json!("h200")),
                ("s_branch".to_string(), json!(""))
            ]
        );
        // 2024-03-10T12:00:00Z → 90 days earlier is 2023-12-11; midnight UTC.
        let now = 1_710_072_000_000;
        assert_eq!(lookback_start_ms(now, 90), 1_702_252_800_000);
        let body = query_body(&[("b_flag".to_string(), json!(false))], now);
        let must = body["query"]["bool"]["must"].as_array().unwrap();
        assert_eq!(must.len(), 5);
        assert_eq!(must[4]["bool"]["minimum_should_match"], 1);
        assert_eq!(body["size"], 5000);
    }

    #[test]
    fn timestamps_and_latest() {
        assert_eq!(timestamp_ms(&json!(1_700_000_000)), Some(1_700_000_000_000));
        assert_eq!(
            timestamp_ms(&json!(1_700_000_000_123i64)),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            timestamp_ms(&json!("2025-12-11T06:25:25.338Z")),
            Some(1_765_434_325_338)
        );
        assert_eq!(
            timestamp_ms(&json!("2025-12-11T06:25:25Z")),
            Some(1_765_434_325_000)
        );
        assert_eq!(
            timestamp_ms(&json!("Dec 11, 2025 @ 06:25:25.338")),
            Some(1_765_434_325_338)
        );
        assert_eq!(timestamp_ms(&json!("yesterday")), None);
        let docs = vec![
            doc(json!({"_id": "a", "@timestamp": "2025-12-11T06:25:25Z"})),
            doc(json!({"_id": "b", "@timestamp": 1_765_500_000_000i64})),
            doc(json!({"_id": "c", "@timestamp": "garbage"})),
        ];
        assert_eq!(latest(&docs).unwrap()["_id"], "b");
    }

    #[test]
    fn search_response() {
        let body = r#"{"hits": {"hits": [{"_id": "x", "_source": {"d_a": 1.0}}]}}"#;
        let docs = parse_search_response(body).unwrap();
        assert_eq!(docs[0]["_id"], "x");
        assert!(parse_search_response(r#"{"hits": {"hits": [{"_source": {}}]}}"#).is_err());
        assert!(parse_search_response("<html>").is_err());
        assert!(
            parse_search_response(r#"{"hits": {"hits": []}}"#)
                .unwrap()
                .is_empty()
        );
    }
}
