//! What the store acknowledges, it can read back: the checks a value passes before it is
//! stored as JSON (a checkpoint's state, an event's payload).
//!
//! JSON has no NaN or infinity (serde_json writes them as `null`, which then does not read
//! back as a number), and serde_json's reader refuses a document nested deeper than 127
//! levels while its writer has no limit. Both are refused at save time instead of failing a
//! later resume.

use serde::Serialize;
use serde::ser;
use std::fmt;

/// How deeply a stored JSON value (a checkpoint's state, an event's payload) may nest: at most
/// this many arrays and objects inside one another. A value nested deeper is refused when it
/// is saved or sent.
///
/// serde_json's reader refuses a document nested more than 127 levels, and stores may wrap a
/// value in an envelope of their own; 100 leaves room for that.
pub const MAX_JSON_DEPTH: usize = 100;

/// The levels a store may add around a value (the SQLite store's envelope adds one).
const ENVELOPE_LEVELS: usize = 1;
/// serde_json's reader: a document nested 128 levels is refused.
const READER_LIMIT: usize = 127;
const _: () = assert!(MAX_JSON_DEPTH + ENVELOPE_LEVELS <= READER_LIMIT);

/// Why a value would not read back as it was written.
pub(crate) fn unreadable<T: Serialize + ?Sized>(
    typed: &T,
    json: &serde_json::Value,
) -> Option<String> {
    if let Err(Probe::NonFinite { path, value }) = typed.serialize(Prober) {
        let at: String = path.iter().rev().map(String::as_str).collect();
        let at = if at.is_empty() {
            String::new()
        } else {
            format!(" at `{at}`")
        };
        return Some(format!(
            "it holds the number {value}{at}, which JSON cannot represent (it would be stored as \
             `null` and could not be read back); validate it (e.g. `#[garde(range(..))]` does not \
             reject NaN: add a custom rule with `is_finite`) or store it as an `Option`"
        ));
    }
    too_deep(json)
}

/// Why a JSON value is nested too deeply to be read back, if it is.
pub(crate) fn too_deep(json: &serde_json::Value) -> Option<String> {
    let depth = depth(json);
    (depth > MAX_JSON_DEPTH).then(|| {
        format!(
            "it is nested {depth} levels deep, over the limit of {MAX_JSON_DEPTH} \
             (`flow_runtime::state::MAX_JSON_DEPTH`) that keeps it readable; flatten it"
        )
    })
}

/// How many arrays and objects are nested in `value` at its deepest: 0 for a scalar.
/// Iterative, so that a value of any depth is measured without recursion.
pub(crate) fn depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, level)) = stack.pop() {
        match value {
            serde_json::Value::Array(items) => {
                stack.extend(items.iter().map(|child| (child, level + 1)));
            }
            serde_json::Value::Object(map) => {
                stack.extend(map.values().map(|child| (child, level + 1)));
            }
            _ => continue,
        }
        deepest = deepest.max(level + 1);
    }
    deepest
}

/// Why the probe stopped.
#[derive(Debug)]
enum Probe {
    /// A NaN or infinite float, with the path to it, innermost segment first.
    NonFinite { path: Vec<String>, value: f64 },
    /// The value's own `Serialize` failed: serialising it for real reports that.
    Custom,
}

impl Probe {
    fn within(mut self, segment: impl FnOnce() -> String) -> Self {
        if let Self::NonFinite { path, .. } = &mut self {
            path.push(segment());
        }
        self
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonFinite { value, .. } => write!(f, "non-finite number {value}"),
            Self::Custom => f.write_str("the value's `Serialize` failed"),
        }
    }
}

impl std::error::Error for Probe {}

impl ser::Error for Probe {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Self::Custom
    }
}

/// A serializer that builds nothing: it walks a value and stops at the first float JSON
/// cannot hold.
struct Prober;

/// A compound value being walked: counts elements for the path, and names its enum variant
/// (JSON's `{"Variant": …}` level).
struct Compound {
    index: usize,
    variant: Option<&'static str>,
}

impl Compound {
    fn new(variant: Option<&'static str>) -> Self {
        Self { index: 0, variant }
    }

    fn in_variant(&self, error: Probe) -> Probe {
        match self.variant {
            Some(variant) => error.within(|| format!(".{variant}")),
            None => error,
        }
    }
}

fn finite(value: f64) -> Result<(), Probe> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Probe::NonFinite {
            path: Vec::new(),
            value,
        })
    }
}

macro_rules! accept {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, _: $ty) -> Result<(), Probe> { Ok(()) })*
    };
}

impl ser::Serializer for Prober {
    type Ok = ();
    type Error = Probe;
    type SerializeSeq = Compound;
    type SerializeTuple = Compound;
    type SerializeTupleStruct = Compound;
    type SerializeTupleVariant = Compound;
    type SerializeMap = Compound;
    type SerializeStruct = Compound;
    type SerializeStructVariant = Compound;

    accept!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_f32(self, v: f32) -> Result<(), Probe> {
        finite(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), Probe> {
        finite(v)
    }

    fn serialize_none(self) -> Result<(), Probe> {
        Ok(())
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Probe> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Probe> {
        Ok(())
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Probe> {
        Ok(())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Probe> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Probe> {
        value
            .serialize(self)
            .map_err(|e| e.within(|| format!(".{variant}")))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Compound, Probe> {
        Ok(Compound::new(None))
    }

    fn serialize_tuple(self, _: usize) -> Result<Compound, Probe> {
        Ok(Compound::new(None))
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound, Probe> {
        Ok(Compound::new(None))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound, Probe> {
        Ok(Compound::new(Some(variant)))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Compound, Probe> {
        Ok(Compound::new(None))
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound, Probe> {
        Ok(Compound::new(None))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound, Probe> {
        Ok(Compound::new(Some(variant)))
    }
}

impl Compound {
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Probe> {
        let index = self.index;
        self.index += 1;
        value
            .serialize(Prober)
            .map_err(|e| self.in_variant(e.within(|| format!("[{index}]"))))
    }

    fn field<T: ?Sized + Serialize>(&self, key: &'static str, value: &T) -> Result<(), Probe> {
        value
            .serialize(Prober)
            .map_err(|e| self.in_variant(e.within(|| format!(".{key}"))))
    }
}

macro_rules! sequence {
    ($($trait:ident :: $method:ident),* $(,)?) => {
        $(impl ser::$trait for Compound {
            type Ok = ();
            type Error = Probe;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Probe> {
                self.element(value)
            }
            fn end(self) -> Result<(), Probe> {
                Ok(())
            }
        })*
    };
}

sequence!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

macro_rules! fields {
    ($($trait:ident),* $(,)?) => {
        $(impl ser::$trait for Compound {
            type Ok = ();
            type Error = Probe;
            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Probe> {
                self.field(key, value)
            }
            fn end(self) -> Result<(), Probe> {
                Ok(())
            }
        })*
    };
}

fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Compound {
    type Ok = ();
    type Error = Probe;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Probe> {
        key.serialize(Prober)
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Probe> {
        value
            .serialize(Prober)
            .map_err(|e| e.within(|| ".…".into()))
    }

    fn serialize_entry<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), Probe> {
        key.serialize(Prober)?;
        value.serialize(Prober).map_err(|e| {
            // Only on the way out of an error: the key as the path shows it.
            e.within(|| match serde_json::to_value(key) {
                Ok(serde_json::Value::String(key)) => format!(".{key}"),
                Ok(key) => format!("[{key}]"),
                Err(_) => ".…".into(),
            })
        })
    }

    fn end(self) -> Result<(), Probe> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_arrays_and_objects() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!([])), 1);
        assert_eq!(depth(&json!({"a": [1, {"b": []}]})), 4);
    }

    #[test]
    fn the_reader_accepts_the_deepest_value_allowed() {
        let mut value = json!(1);
        for _ in 0..MAX_JSON_DEPTH {
            value = json!([value]);
        }
        assert!(too_deep(&value).is_none());
        // Inside an envelope, as the SQLite store keeps it.
        let text = json!({ "state": value }).to_string();
        serde_json::from_str::<serde_json::Value>(&text).expect("readable");
        assert!(too_deep(&json!([value])).is_some());
        // And the reader's own limit is what the constant says.
        let deepest = "[".repeat(READER_LIMIT) + &"]".repeat(READER_LIMIT);
        serde_json::from_str::<serde_json::Value>(&deepest).expect("127 levels read");
        let deeper = "[".repeat(READER_LIMIT + 1) + &"]".repeat(READER_LIMIT + 1);
        assert!(serde_json::from_str::<serde_json::Value>(&deeper).is_err());
    }

    #[test]
    fn non_finite_floats_are_found_with_their_path() {
        #[derive(Serialize)]
        struct Inner {
            scores: Vec<f64>,
        }
        #[derive(Serialize)]
        enum State {
            Search { input: Inner },
        }
        let state = State::Search {
            input: Inner {
                scores: vec![1.0, f64::NAN],
            },
        };
        let json = serde_json::to_value(&state).unwrap();
        let reason = unreadable(&state, &json).expect("refused");
        assert!(
            reason.contains("NaN at `.Search.input.scores[1]`"),
            "{reason}"
        );
        let fine = State::Search {
            input: Inner { scores: vec![1.0] },
        };
        assert_eq!(
            unreadable(&fine, &serde_json::to_value(&fine).unwrap()),
            None
        );
        let map = std::collections::BTreeMap::from([("x", f32::INFINITY)]);
        let reason = unreadable(&map, &serde_json::to_value(map.clone()).unwrap()).unwrap();
        assert!(reason.contains("inf at `.x`"), "{reason}");
    }
}
