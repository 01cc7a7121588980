//! [`NoLoops`]: the loop counters of a workflow without back-edges.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The loop counters of a workflow that has no back-edge: there is nothing to count.
///
/// A `#[workflow]` module's `Loops` has one `u32` per back-edge; without any, it is this type
/// (`pub type Loops = flow_runtime::state::NoLoops;`), so the module does not implement `Clone`,
/// `PartialEq` and the rest for a struct of its own (each such impl makes every `cargo check` of
/// the user's crate consult every implementation of that trait in its dependencies).
///
/// It is stored exactly as an empty `Loops` struct is (`{}` in JSON), and reads back from any
/// map or sequence, so states stored by a workflow that later gains a loop still read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct NoLoops {}

impl Serialize for NoLoops {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_struct("Loops", 0)?.end()
    }
}

impl<'de> Deserialize<'de> for NoLoops {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counters;
        impl<'de> Visitor<'de> for Counters {
            type Value = NoLoops;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("loop counters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoLoops, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(NoLoops {})
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoLoops, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(NoLoops {})
            }
            fn visit_unit<E: de::Error>(self) -> Result<NoLoops, E> {
                Ok(NoLoops {})
            }
        }
        deserializer.deserialize_struct("Loops", &[], Counters)
    }
}

#[cfg(test)]
mod tests {
    use super::NoLoops;

    /// The form an empty `#[derive(Serialize, Deserialize)] #[serde(default)] struct Loops {}`
    /// takes, which states stored before this type existed hold.
    #[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(default)]
    struct Loops {}

    #[test]
    fn stored_like_an_empty_loops_struct() {
        assert_eq!(
            serde_json::to_string(&NoLoops {}).unwrap(),
            serde_json::to_string(&Loops {}).unwrap()
        );
        for stored in ["{}", "[]", r#"{"review_revise":3}"#] {
            assert_eq!(
                serde_json::from_str::<NoLoops>(stored).unwrap(),
                NoLoops {},
                "{stored}"
            );
        }
        for bad in ["3", "null", r#""loops""#] {
            assert!(serde_json::from_str::<Loops>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<NoLoops>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<NoLoops>(r#"{"a":"#).is_err());
    }
}
