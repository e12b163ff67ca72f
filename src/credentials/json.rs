//! A JSON value that keeps object keys in file order, so rewriting docker's `config.json`
//! changes only the entry being written. (`serde_json::Value` sorts keys unless the crate-wide
//! `preserve_order` feature is on, which would also change how other modules re-serialise
//! manifests.)

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value with ordered objects. Duplicate keys are kept as written; lookups see the
/// last one, as Go's decoder (and so docker) does.
#[derive(Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

// Values may hold secrets (`auth`, `password`); never print them.
impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Json(<redacted>)")
    }
}

impl Json {
    /// The value of `key` when `self` is an object holding it (last duplicate wins).
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The entries, when `self` is an object.
    pub(crate) fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(entries) => Some(entries),
            _ => None,
        }
    }

    /// The entries, mutably, when `self` is an object.
    pub(crate) fn as_object_mut(&mut self) -> Option<&mut Vec<(String, Json)>> {
        match self {
            Json::Object(entries) => Some(entries),
            _ => None,
        }
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(v) => s.serialize_str(v),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            entries.push((k, v));
        }
        Ok(Json::Object(entries))
    }
}

/// Parses `bytes`; the error says where the syntax broke, never what the text was (the file
/// holds passwords). Empty or all-whitespace input is an empty object, as docker reads it.
pub(crate) fn parse(bytes: &[u8]) -> Result<Json, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Json::Object(Vec::new()));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "unexpected end of file",
            _ => "not valid JSON",
        };
        format!("{what} at line {}, column {}", e.line(), e.column())
    })
}

/// Serialises with tab indentation and a final newline, as docker writes `config.json`.
pub(crate) fn to_pretty(value: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    value.serialize(&mut ser).expect("a JSON value serialises");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_key_order_and_values() {
        let text = r#"{"zeta":1,"auths":{"b.example":{},"a.example":{"auth":"eA=="}},"alpha":[true,null,2.5,"s"],"big":18446744073709551615}"#;
        let v = parse(text.as_bytes()).unwrap();
        let out = serde_json::to_string(&v).unwrap();
        assert_eq!(out, text);
    }

    #[test]
    fn last_duplicate_wins_on_lookup() {
        let v = parse(br#"{"k":"first","k":"second"}"#).unwrap();
        assert_eq!(v.get("k"), Some(&Json::String("second".into())));
    }

    #[test]
    fn empty_input_is_an_empty_object() {
        assert_eq!(parse(b"  \n").unwrap(), Json::Object(Vec::new()));
    }

    #[test]
    fn syntax_errors_do_not_quote_the_text() {
        let err = parse(br#"{"auths": {"x": {"auth": "c2VjcmV0" }"#).unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
        let err = parse(br#"{"password": s3cret}"#).unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn pretty_output_uses_tabs() {
        let v = parse(br#"{"a":{"b":1}}"#).unwrap();
        assert_eq!(
            String::from_utf8(to_pretty(&v)).unwrap(),
            "{\n\t\"a\": {\n\t\t\"b\": 1\n\t}\n}\n"
        );
    }
}
