//! The workflows the benchmarks drive, and their hand-written equivalents.
//!
//! Everything the benchmarks compare lives in this one crate, so the generated runner, the
//! typestate chain and the hand-written driver are compiled and inlined under the same rules;
//! the benchmark files only call the entry points below.
//!
//! * [`linear10`] and [`linear50`]: N steps that each add 1 to a `u64` (the trivial case, to
//!   measure the runtime's own overhead).
//! * [`hash10`]: 10 steps that each hash 4 KiB with `std`'s SipHash (about 1 µs per step), to
//!   put that overhead next to steps that do a little real work.
//!
//! The workflows are repetitive on purpose: their steps differ only in name and `after = …`,
//! so that any difference between drivers is the runtime's, not the steps'.

use flow_runtime::prelude::*;
use std::convert::Infallible;
use std::hash::Hasher;

/// The buffer each [`hash10`] step hashes.
pub static BUF: [u8; 4096] = {
    let mut buf = [0u8; 4096];
    let mut i = 0;
    while i < buf.len() {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "wraps on purpose: any bytes will do"
        )]
        {
            buf[i] = (i * 31 + 7) as u8;
        }
        i += 1;
    }
    buf
};

/// About 1 µs of work: SipHash-1-3 (`std`'s `DefaultHasher`) over `x` and 4 KiB.
#[must_use]
pub fn hash_4k(x: u64) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write_u64(x);
    h.write(std::hint::black_box(&BUF));
    h.finish()
}

/// 10 steps, each adds 1.
#[workflow]
#[allow(
    clippy::unused_async,
    clippy::missing_errors_doc,
    reason = "steps are `async fn`s that cannot fail"
)]
pub mod linear10 {
    use super::Infallible;

    /// Step 1.
    #[step(entry)]
    pub async fn s1(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 2.
    #[step(after = s1)]
    pub async fn s2(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 3.
    #[step(after = s2)]
    pub async fn s3(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 4.
    #[step(after = s3)]
    pub async fn s4(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 5.
    #[step(after = s4)]
    pub async fn s5(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 6.
    #[step(after = s5)]
    pub async fn s6(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 7.
    #[step(after = s6)]
    pub async fn s7(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 8.
    #[step(after = s7)]
    pub async fn s8(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 9.
    #[step(after = s8)]
    pub async fn s9(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 10.
    #[step(after = s9, exit)]
    pub async fn s10(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }
}

/// [`linear10`] by hand: the same step functions called in order.
///
/// # Errors
///
/// Never: the steps cannot fail.
pub async fn hand_linear10(x: u64) -> Result<u64, Infallible> {
    let x = linear10::s1(x).await?;
    let x = linear10::s2(x).await?;
    let x = linear10::s3(x).await?;
    let x = linear10::s4(x).await?;
    let x = linear10::s5(x).await?;
    let x = linear10::s6(x).await?;
    let x = linear10::s7(x).await?;
    let x = linear10::s8(x).await?;
    let x = linear10::s9(x).await?;
    let x = linear10::s10(x).await?;
    Ok(x)
}

/// [`linear10`] through the typestate API, one step method at a time.
///
/// # Errors
///
/// Never: the steps cannot fail.
pub async fn typestate_linear10(ctx: &Ctx, x: u64) -> Result<u64, linear10::FlowError> {
    linear10::Flow::new(ctx, x)
        .s1()
        .await?
        .s2()
        .await?
        .s3()
        .await?
        .s4()
        .await?
        .s5()
        .await?
        .s6()
        .await?
        .s7()
        .await?
        .s8()
        .await?
        .s9()
        .await?
        .s10()
        .await
}

/// 50 steps, each adds 1.
#[workflow]
#[allow(
    clippy::unused_async,
    clippy::missing_errors_doc,
    reason = "steps are `async fn`s that cannot fail"
)]
pub mod linear50 {
    use super::Infallible;

    /// Step 1.
    #[step(entry)]
    pub async fn s1(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 2.
    #[step(after = s1)]
    pub async fn s2(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 3.
    #[step(after = s2)]
    pub async fn s3(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 4.
    #[step(after = s3)]
    pub async fn s4(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 5.
    #[step(after = s4)]
    pub async fn s5(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 6.
    #[step(after = s5)]
    pub async fn s6(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 7.
    #[step(after = s6)]
    pub async fn s7(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 8.
    #[step(after = s7)]
    pub async fn s8(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 9.
    #[step(after = s8)]
    pub async fn s9(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 10.
    #[step(after = s9)]
    pub async fn s10(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 11.
    #[step(after = s10)]
    pub async fn s11(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 12.
    #[step(after = s11)]
    pub async fn s12(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 13.
    #[step(after = s12)]
    pub async fn s13(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 14.
    #[step(after = s13)]
    pub async fn s14(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 15.
    #[step(after = s14)]
    pub async fn s15(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 16.
    #[step(after = s15)]
    pub async fn s16(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 17.
    #[step(after = s16)]
    pub async fn s17(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 18.
    #[step(after = s17)]
    pub async fn s18(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 19.
    #[step(after = s18)]
    pub async fn s19(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 20.
    #[step(after = s19)]
    pub async fn s20(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 21.
    #[step(after = s20)]
    pub async fn s21(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 22.
    #[step(after = s21)]
    pub async fn s22(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 23.
    #[step(after = s22)]
    pub async fn s23(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 24.
    #[step(after = s23)]
    pub async fn s24(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 25.
    #[step(after = s24)]
    pub async fn s25(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 26.
    #[step(after = s25)]
    pub async fn s26(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 27.
    #[step(after = s26)]
    pub async fn s27(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 28.
    #[step(after = s27)]
    pub async fn s28(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 29.
    #[step(after = s28)]
    pub async fn s29(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 30.
    #[step(after = s29)]
    pub async fn s30(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 31.
    #[step(after = s30)]
    pub async fn s31(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 32.
    #[step(after = s31)]
    pub async fn s32(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 33.
    #[step(after = s32)]
    pub async fn s33(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 34.
    #[step(after = s33)]
    pub async fn s34(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 35.
    #[step(after = s34)]
    pub async fn s35(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 36.
    #[step(after = s35)]
    pub async fn s36(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 37.
    #[step(after = s36)]
    pub async fn s37(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 38.
    #[step(after = s37)]
    pub async fn s38(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 39.
    #[step(after = s38)]
    pub async fn s39(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 40.
    #[step(after = s39)]
    pub async fn s40(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 41.
    #[step(after = s40)]
    pub async fn s41(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 42.
    #[step(after = s41)]
    pub async fn s42(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 43.
    #[step(after = s42)]
    pub async fn s43(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 44.
    #[step(after = s43)]
    pub async fn s44(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 45.
    #[step(after = s44)]
    pub async fn s45(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 46.
    #[step(after = s45)]
    pub async fn s46(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 47.
    #[step(after = s46)]
    pub async fn s47(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 48.
    #[step(after = s47)]
    pub async fn s48(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 49.
    #[step(after = s48)]
    pub async fn s49(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }

    /// Step 50.
    #[step(after = s49, exit)]
    pub async fn s50(x: u64) -> Result<u64, Infallible> {
        Ok(x.wrapping_add(1))
    }
}

/// [`linear50`] by hand: the same step functions called in order.
///
/// # Errors
///
/// Never: the steps cannot fail.
pub async fn hand_linear50(x: u64) -> Result<u64, Infallible> {
    let x = linear50::s1(x).await?;
    let x = linear50::s2(x).await?;
    let x = linear50::s3(x).await?;
    let x = linear50::s4(x).await?;
    let x = linear50::s5(x).await?;
    let x = linear50::s6(x).await?;
    let x = linear50::s7(x).await?;
    let x = linear50::s8(x).await?;
    let x = linear50::s9(x).await?;
    let x = linear50::s10(x).await?;
    let x = linear50::s11(x).await?;
    let x = linear50::s12(x).await?;
    let x = linear50::s13(x).await?;
    let x = linear50::s14(x).await?;
    let x = linear50::s15(x).await?;
    let x = linear50::s16(x).await?;
    let x = linear50::s17(x).await?;
    let x = linear50::s18(x).await?;
    let x = linear50::s19(x).await?;
    let x = linear50::s20(x).await?;
    let x = linear50::s21(x).await?;
    let x = linear50::s22(x).await?;
    let x = linear50::s23(x).await?;
    let x = linear50::s24(x).await?;
    let x = linear50::s25(x).await?;
    let x = linear50::s26(x).await?;
    let x = linear50::s27(x).await?;
    let x = linear50::s28(x).await?;
    let x = linear50::s29(x).await?;
    let x = linear50::s30(x).await?;
    let x = linear50::s31(x).await?;
    let x = linear50::s32(x).await?;
    let x = linear50::s33(x).await?;
    let x = linear50::s34(x).await?;
    let x = linear50::s35(x).await?;
    let x = linear50::s36(x).await?;
    let x = linear50::s37(x).await?;
    let x = linear50::s38(x).await?;
    let x = linear50::s39(x).await?;
    let x = linear50::s40(x).await?;
    let x = linear50::s41(x).await?;
    let x = linear50::s42(x).await?;
    let x = linear50::s43(x).await?;
    let x = linear50::s44(x).await?;
    let x = linear50::s45(x).await?;
    let x = linear50::s46(x).await?;
    let x = linear50::s47(x).await?;
    let x = linear50::s48(x).await?;
    let x = linear50::s49(x).await?;
    let x = linear50::s50(x).await?;
    Ok(x)
}

/// 10 steps, each hashes 4 KiB (about 1 µs).
#[workflow]
#[allow(
    clippy::unused_async,
    clippy::missing_errors_doc,
    reason = "steps are `async fn`s that cannot fail"
)]
pub mod hash10 {
    use super::{Infallible, hash_4k};

    /// Step 1.
    #[step(entry)]
    pub async fn s1(x: u64) -> Result<u64, Infallible> {
        Ok(hash_4k(x))
    }

    /// Step 2.
    #[step(after = s1)]
    pub async fn s2(x: u64) -> Result<u64, Infallible> {
        Ok(hash_4k(x))
    }

    /// Step 3.
    #[step(after = s2)]
    pub async fn s3(x: u64) -> Result<u64, Infallible> {
        Ok(hash_4k(x))
    }

    /// Step 4.
    #[step(after = s3)]
    pub async fn s4(x: u64) -> Result<u64, Infallible> {
        Ok(hash_4k(x))
    }

    /// Step 5.
    #[step(after = s4)]
    pub async fn s5(x: u64) -> Result<u64, Infallible> {
        Ok(hash_4k(x))
    }

    /// Step 6.
    #[step(after = s5)]
    pub async fn s6(x: u64) -> Result<u64, Infallible> {
        Ok(hash_4k(x))
    }

    /// Step 7.
    #[step(after = s6)]
    pub async fn s7(x: u64) -> Result<u64, Infallible> {
        Ok(hash_4k(x))
    }

    /// Step 8.
    #[step(after = s7)]
    pub async fn s8(x: u64) -> Result<u64, Infallible> {
        Ok(hash_4k(x))
    }

    /// Step 9.
    #[step(after = s8)]
    pub async fn s9(x: u64) -> Result<u64, Infallible> {
        Ok(hash_4k(x))
    }

    /// Step 10.
    #[step(after = s9, exit)]
    pub async fn s10(x: u64) -> Result<u64, Infallible> {
        Ok(hash_4k(x))
    }
}

/// [`hash10`] by hand: the same step functions called in order.
///
/// # Errors
///
/// Never: the steps cannot fail.
pub async fn hand_hash10(x: u64) -> Result<u64, Infallible> {
    let x = hash10::s1(x).await?;
    let x = hash10::s2(x).await?;
    let x = hash10::s3(x).await?;
    let x = hash10::s4(x).await?;
    let x = hash10::s5(x).await?;
    let x = hash10::s6(x).await?;
    let x = hash10::s7(x).await?;
    let x = hash10::s8(x).await?;
    let x = hash10::s9(x).await?;
    let x = hash10::s10(x).await?;
    Ok(x)
}

/// [`hash10`] through the typestate API, one step method at a time.
///
/// # Errors
///
/// Never: the steps cannot fail.
pub async fn typestate_hash10(ctx: &Ctx, x: u64) -> Result<u64, hash10::FlowError> {
    hash10::Flow::new(ctx, x)
        .s1()
        .await?
        .s2()
        .await?
        .s3()
        .await?
        .s4()
        .await?
        .s5()
        .await?
        .s6()
        .await?
        .s7()
        .await?
        .s8()
        .await?
        .s9()
        .await?
        .s10()
        .await
}
