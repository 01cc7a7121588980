// The user's crate shadows prelude names and std macros; the generated code must not care.
#![allow(
    dead_code,
    non_camel_case_types,
    unused_macros,
    clippy::manual_is_multiple_of
)]

use flow_runtime::prelude::*;

pub struct Result;
pub struct Option;
pub struct Box;
pub struct Vec;
pub struct String;
pub struct Ok;
pub struct Err;
pub struct Some;
pub struct None;
pub struct Send;
pub struct Sync;
pub struct Sized;
pub struct Clone;
pub struct Copy;
pub struct Debug;
pub struct Future;
pub struct PhantomData;
pub struct Pending;
pub struct Done;
pub enum Default {}
pub trait Into {}
pub trait From {}
pub trait Iterator {}
pub trait IntoIterator {}
pub trait Drop {}
pub trait Fn {}
pub trait FnMut {}
pub trait FnOnce {}
pub mod state {}
pub mod serde {}
pub mod futures_util {}
pub struct Flow;
pub struct FlowState;
pub struct FlowError;
pub struct Loops;
pub struct Workflow;
pub const NAME: () = ();

macro_rules! vec {
    ($($t:tt)*) => {
        compile_error!("hostile vec!")
    };
}
macro_rules! write {
    ($($t:tt)*) => {
        compile_error!("hostile write!")
    };
}
macro_rules! matches {
    ($($t:tt)*) => {
        compile_error!("hostile matches!")
    };
}
macro_rules! stringify {
    ($($t:tt)*) => {
        compile_error!("hostile stringify!")
    };
}
macro_rules! format {
    ($($t:tt)*) => {
        compile_error!("hostile format!")
    };
}
macro_rules! panic {
    ($($t:tt)*) => {
        compile_error!("hostile panic!")
    };
}

#[derive(::core::fmt::Debug)]
pub struct Failed;

impl ::core::fmt::Display for Failed {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.write_str("failed")
    }
}

impl ::std::error::Error for Failed {}

#[workflow]
pub mod hostile {
    use super::*;

    #[derive(
        ::core::fmt::Debug,
        ::flow_runtime::__private::serde::Serialize,
        ::flow_runtime::__private::serde::Deserialize,
    )]
    #[serde(crate = "::flow_runtime::__private::serde")]
    pub enum Route {
        Fan(u32),
        #[to(many)]
        Work(::std::vec::Vec<u32>),
    }

    #[derive(
        ::core::fmt::Debug,
        ::flow_runtime::__private::serde::Serialize,
        ::flow_runtime::__private::serde::Deserialize,
    )]
    #[serde(crate = "::flow_runtime::__private::serde")]
    pub enum Verdict {
        #[to(draft, max = 1, exhausted = give_up)]
        Again(u32),
        Done(u32),
    }

    #[step(entry, routes = Route)]
    pub async fn start(x: u32) -> ::core::result::Result<Route, Failed> {
        ::core::result::Result::Ok(if x % 2 == 0 {
            Route::Fan(x)
        } else {
            Route::Work(::std::vec![x, x])
        })
    }

    #[step(after = start)]
    pub async fn fan(x: u32) -> ::core::result::Result<u32, Failed> {
        ::core::result::Result::Ok(x)
    }

    #[step(after = fan)]
    pub async fn left(x: u32) -> ::core::result::Result<u32, Failed> {
        ::core::result::Result::Ok(x + 1)
    }

    #[step(after = fan)]
    pub async fn right(x: u32) -> ::core::result::Result<u32, Failed> {
        ::core::result::Result::Ok(x + 2)
    }

    #[step(after = [left, right])]
    pub async fn merge(l: u32, r: u32) -> ::core::result::Result<u32, Failed> {
        ::core::result::Result::Ok(l + r)
    }

    #[step(after = merge)]
    pub async fn draft(x: u32) -> ::core::result::Result<u32, Failed> {
        ::core::result::Result::Ok(x + 1)
    }

    #[step(after = draft, routes = Verdict)]
    pub async fn review(x: u32) -> ::core::result::Result<Verdict, Failed> {
        ::core::result::Result::Ok(Verdict::Again(x))
    }

    #[step(after = review, exit)]
    pub async fn done(x: u32) -> ::core::result::Result<u32, Failed> {
        ::core::result::Result::Ok(x)
    }

    #[step(after = review, exit)]
    pub async fn give_up(e: LoopExhausted<u32>) -> ::core::result::Result<u32, Failed> {
        ::core::result::Result::Ok(e.last)
    }

    #[step(after = start, workers = 2)]
    pub async fn many(ctx: &Ctx, x: u32) -> ::core::result::Result<u32, Failed> {
        let _ = ctx;
        ::core::result::Result::Ok(x * 2)
    }

    #[step(after = many, exit)]
    pub async fn sum(xs: ::std::vec::Vec<u32>) -> ::core::result::Result<u32, Failed> {
        ::core::result::Result::Ok(xs.iter().sum())
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    // A context is one run: each run builds its own.
    let ctx = || Ctx::new(());
    ::core::assert_eq!(hostile::Workflow::run(&ctx(), 1).await.unwrap(), 4);
    ::core::assert_eq!(hostile::Workflow::run(&ctx(), 2).await.unwrap(), 9);
    let flow = hostile::Flow::new(&ctx(), 3);
    let hostile::RouteFlow::Work(flow) = flow.start().await.unwrap() else {
        ::core::unreachable!()
    };
    ::core::assert_eq!(flow.many().await.unwrap().sum().await.unwrap(), 12);
}
