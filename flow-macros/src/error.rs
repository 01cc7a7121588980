//! Error accumulation: every check adds to one list, and the macro fails once at the end.

use proc_macro2::Span;
use std::fmt::Display;

/// Collects errors so that a user sees all of them in one build, not one per build.
#[derive(Default)]
pub(crate) struct Errors {
    errors: Option<syn::Error>,
}

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.errors {
            Some(all) => all.combine(error),
            None => self.errors = Some(error),
        }
    }

    pub(crate) fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_none()
    }

    pub(crate) fn into_result(self) -> Result<(), syn::Error> {
        match self.errors {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// The span to blame when nothing narrower exists.
pub(crate) fn call_site() -> Span {
    Span::call_site()
}
