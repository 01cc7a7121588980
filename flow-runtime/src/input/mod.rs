//! Input processing: values that can only exist validated.
//!
//! Raw input enters a workflow only through its entry step. Later steps take [`Valid<T>`],
//! which can only be built by running `T`'s validation rules (garde's `Validate`), so handing
//! them unvalidated data does not compile.

mod valid;

pub use self::valid::{FieldError, Invalid, Rules, Valid};
