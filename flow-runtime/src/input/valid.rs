use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::Deref;

/// A `T` that passed its validation rules. The only ways to get one are [`Valid::new`] and
/// deserialising (which validates again), so a function that takes `Valid<T>` never sees
/// invalid data.
///
/// Rules are garde's: derive `garde::Validate` on `T`.
///
/// ```
/// use flow_runtime::input::Valid;
///
/// #[derive(Debug, garde::Validate)]
/// struct Trip {
///     #[garde(length(min = 3, max = 3))]
///     from: String,
///     #[garde(range(min = 1, max = 9))]
///     seats: u8,
/// }
///
/// let ok = Valid::new(Trip { from: "LHR".into(), seats: 2 }).unwrap();
/// assert_eq!(ok.seats, 2);
///
/// let err = Valid::new(Trip { from: "London".into(), seats: 0 }).unwrap_err();
/// let fields: Vec<&str> = err.fields().iter().map(|f| f.path.as_str()).collect();
/// assert_eq!(fields, ["from", "seats"]);
/// ```
///
/// There is no constructor that skips validation:
///
/// ```compile_fail
/// # #[derive(garde::Validate)] struct Trip { #[garde(skip)] seats: u8 }
/// let v = flow_runtime::input::Valid(Trip { seats: 1 });
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Valid<T>(T);

mod sealed {
    pub trait Sealed {}
    impl<T: garde::Validate> Sealed for T where T::Context: Default {}
}

/// A type with validation rules, which [`Valid::new`] runs: implemented for every
/// `T: garde::Validate` whose context is `Default` (a plain `#[derive(garde::Validate)]`), and
/// for nothing else. Through it, a type without rules is reported as "derive
/// `garde::Validate`", once, at the user's `Valid::new(…)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no validation rules, so there is no `Valid<{Self}>`: add `#[derive(garde::Validate)]` to `{Self}`, with a rule on each field",
    label = "`{Self}` does not implement `garde::Validate`",
    note = "a field rule looks like `#[garde(length(min = 3))]`; `#[garde(skip)]` marks a field that has none"
)]
pub trait Rules: sealed::Sealed {
    /// Runs the rules.
    #[doc(hidden)]
    fn check(&self) -> Result<(), Invalid>;
}

impl<T: garde::Validate> Rules for T
where
    T::Context: Default,
{
    fn check(&self) -> Result<(), Invalid> {
        self.validate()
            .map_err(|report| Invalid::from_report(&report))
    }
}

impl<T: Rules> Valid<T> {
    /// Runs `value`'s validation rules.
    ///
    /// # Errors
    ///
    /// [`Invalid`], listing every field that broke a rule.
    pub fn new(value: T) -> Result<Self, Invalid> {
        value.check().map(|()| Self(value))
    }
}

impl<T> Valid<T> {
    /// The validated value, giving up the guarantee.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Valid<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> AsRef<T> for Valid<T> {
    fn as_ref(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for Valid<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Valid").field(&self.0).finish()
    }
}

impl<T: Serialize> Serialize for Valid<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// The schema of `T`: a `Valid<T>` is written as a `T`. So a tool may take a `Valid<T>` as its
/// input, and an agent's tool call whose arguments break `T`'s rules goes back to the model as
/// an error it can correct.
impl<T: schemars::JsonSchema> schemars::JsonSchema for Valid<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// Validates again: a stored checkpoint is input too, and may have been edited.
impl<'de, T> Deserialize<'de> for Valid<T>
where
    T: Deserialize<'de> + Rules,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = T::deserialize(deserializer)?;
        Self::new(value).map_err(serde::de::Error::custom)
    }
}

/// One field that broke a validation rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FieldError {
    /// Where the field is, like `passengers[1].name`; empty for the value as a whole.
    pub path: String,
    /// What rule it broke.
    pub message: String,
}

/// A value failed validation: every field that broke a rule, in the order garde reports them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct Invalid {
    fields: Vec<FieldError>,
}

impl Invalid {
    fn from_report(report: &garde::Report) -> Self {
        let fields = report
            .iter()
            .map(|(path, error)| FieldError {
                path: path.to_string(),
                message: error.message().to_string(),
            })
            .collect();
        Self { fields }
    }

    /// The fields that broke a rule.
    #[must_use]
    pub fn fields(&self) -> &[FieldError] {
        &self.fields
    }

    /// The first error for the field at `path`, if any.
    #[must_use]
    pub fn field(&self, path: &str) -> Option<&FieldError> {
        self.fields.iter().find(|f| f.path == path)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid input: ")?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if field.path.is_empty() {
                f.write_str(&field.message)?;
            } else {
                write!(f, "{}: {}", field.path, field.message)?;
            }
        }
        Ok(())
    }
}
