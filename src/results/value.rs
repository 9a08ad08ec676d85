//! The record: one flat, ordered map of upstream-style field names (`s_`, `l_`, `d_`, `b_`
//! prefixes) to typed values. Keeping the value type explicit (instead of a JSON number) is what
//! lets us promise that a `d_` field is always a float and an `l_` field always an integer.

use indexmap::IndexMap;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// One field value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A string (`s_`).
    Str(String),
    /// An integer (`l_`, `ts_`).
    Int(i64),
    /// A float (`d_`).
    Float(f64),
    /// A boolean (`b_`).
    Bool(bool),
    /// JSON `null` (never produced by the record builder; kept so stored or foreign documents
    /// round-trip and the type check can name it).
    Null,
}

impl FieldValue {
    /// A number as f64 (ints and floats), else `None`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Int(i) => Some(*i as f64),
            FieldValue::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            FieldValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Python-ish type name for messages (`str`, `int`, `float`, `bool`, `NoneType`).
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldValue::Str(_) => "str",
            FieldValue::Int(_) => "int",
            FieldValue::Float(_) => "float",
            FieldValue::Bool(_) => "bool",
            FieldValue::Null => "NoneType",
        }
    }

    /// Converts a JSON value; `None` for arrays and objects (records are flat).
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        Some(match v {
            serde_json::Value::Null => FieldValue::Null,
            serde_json::Value::Bool(b) => FieldValue::Bool(*b),
            serde_json::Value::String(s) => FieldValue::Str(s.clone()),
            serde_json::Value::Number(n) => {
                if n.is_f64() {
                    FieldValue::Float(n.as_f64()?)
                } else if let Some(i) = n.as_i64() {
                    FieldValue::Int(i)
                } else {
                    // u64 beyond i64: keep the magnitude as a float rather than lose it.
                    FieldValue::Float(n.as_f64()?)
                }
            }
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => return None,
        })
    }

    /// Converts to a JSON value (non-finite floats become `null`, as serde_json would).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            FieldValue::Str(s) => serde_json::Value::String(s.clone()),
            FieldValue::Int(i) => serde_json::Value::from(*i),
            FieldValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            FieldValue::Bool(b) => serde_json::Value::Bool(*b),
            FieldValue::Null => serde_json::Value::Null,
        }
    }
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> Self {
        FieldValue::Str(s.to_string())
    }
}

impl From<String> for FieldValue {
    fn from(s: String) -> Self {
        FieldValue::Str(s)
    }
}

impl From<bool> for FieldValue {
    fn from(b: bool) -> Self {
        FieldValue::Bool(b)
    }
}

impl From<i64> for FieldValue {
    fn from(i: i64) -> Self {
        FieldValue::Int(i)
    }
}

impl From<u64> for FieldValue {
    fn from(i: u64) -> Self {
        FieldValue::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}

impl From<f64> for FieldValue {
    fn from(f: f64) -> Self {
        FieldValue::Float(f)
    }
}

impl Serialize for FieldValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::Str(s) => serializer.serialize_str(s),
            FieldValue::Int(i) => serializer.serialize_i64(*i),
            FieldValue::Float(f) => serializer.serialize_f64(*f),
            FieldValue::Bool(b) => serializer.serialize_bool(*b),
            FieldValue::Null => serializer.serialize_unit(),
        }
    }
}

/// Why stored JSON text is not a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordParseError {
    /// The text is not a JSON object.
    #[error("not a JSON object: {0}")]
    NotAnObject(#[source] serde_json::Error),
    /// A field's value is an array or an object.
    #[error("field {key:?} is not a scalar ({value})")]
    NotAScalar {
        /// The field.
        key: String,
        /// Its value, as JSON.
        value: String,
    },
}

/// One record (upstream's `new_data` dict): field name → value, in insertion order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// The fields, in the order upstream builds them.
    pub fields: IndexMap<String, FieldValue>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Self {
        Record::default()
    }

    /// Sets `key` (replacing keeps the original position, like a Python dict update).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<FieldValue>) {
        self.fields.insert(key.into(), value.into());
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.fields.get(key)
    }

    /// A string field.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(FieldValue::as_str)
    }

    /// A numeric field as f64.
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(FieldValue::as_f64)
    }

    /// A boolean field.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(FieldValue::as_bool)
    }

    /// Merges `other` in (later wins, existing keys keep their position).
    pub fn extend(&mut self, other: &Record) {
        for (k, v) in &other.fields {
            self.fields.insert(k.clone(), v.clone());
        }
    }

    /// The record as a JSON object (for matching against history documents).
    pub fn to_json_map(&self) -> serde_json::Map<String, serde_json::Value> {
        self.fields
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect()
    }

    /// Compact JSON in field order (what the store keeps and the gateway receives).
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// Parses a stored record; `Err` names the problem.
    pub fn from_json_str(text: &str) -> Result<Self, RecordParseError> {
        let map: IndexMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(RecordParseError::NotAnObject)?;
        let mut record = Record::new();
        for (k, v) in map {
            let Some(value) = FieldValue::from_json(&v) else {
                return Err(RecordParseError::NotAScalar {
                    key: k,
                    value: v.to_string(),
                });
            };
            record.fields.insert(k, value);
        }
        Ok(record)
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}
