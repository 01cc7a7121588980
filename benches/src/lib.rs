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
//! * [`trip`]: the travel-booking shape of the README and `examples/book_flight.rs`
//!   (validate → search → choose → book) with real payloads: garde rules on the request, a
//!   16-byte struct between every two steps, a typed error; [`plain_trip`] is the same steps as
//!   plain async Rust and [`typestate_trip`] drives them one checked step at a time.
//!
//! The workflows are repetitive on purpose: their steps differ only in name and `after = …`,
//! so that any difference between drivers is the runtime's, not the steps'.

use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};
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

/// A trip request: where from and to (IATA codes, three ASCII letters packed into a `u32`,
/// see [`iata`]), the day of departure (days since 1970-01-01) and the number of seats. 16
/// bytes, like every value the [`trip`] workflow passes from one step to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, garde::Validate)]
pub struct Trip {
    /// Departure airport.
    #[garde(custom(airport))]
    pub from: u32,
    /// Arrival airport.
    #[garde(custom(airport))]
    pub to: u32,
    /// Day of departure, in days since 1970-01-01; not before 2020.
    #[garde(range(min = 18_262))]
    pub day: u32,
    /// Seats: one booking holds one to nine.
    #[garde(range(min = 1, max = 9))]
    pub passengers: u32,
}

/// An IATA airport code packed into a `u32` (`iata(*b"LHR")`), the form [`Trip`] carries.
#[must_use]
pub const fn iata(code: [u8; 3]) -> u32 {
    u32::from_le_bytes([code[0], code[1], code[2], 0])
}

/// The garde rule of [`Trip::from`] and [`Trip::to`]: three uppercase ASCII letters.
#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "garde hands custom rules the field and its context by reference"
)]
fn airport(code: &u32, (): &()) -> garde::Result {
    let [a, b, c, rest] = code.to_le_bytes();
    if rest == 0 && [a, b, c].iter().all(u8::is_ascii_uppercase) {
        Ok(())
    } else {
        Err(garde::Error::new(format!(
            "{code:#x} is not an IATA code (three uppercase letters)"
        )))
    }
}

/// The flight [`trip::search`] found: number, departure (minutes after midnight), price of
/// one seat (euros) and the seats wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Flight number.
    pub flight: u32,
    /// Departure, minutes after midnight.
    pub departs: u32,
    /// Price of one seat, in euros.
    pub price: u32,
    /// Seats wanted.
    pub seats: u32,
}

/// The fare [`trip::choose`] picked: the flight, its day, the seats and the total price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// Flight number.
    pub flight: u32,
    /// Day of departure, in days since 1970-01-01.
    pub day: u32,
    /// Seats.
    pub seats: u32,
    /// What the seats cost together, in euros.
    pub total: u32,
}

/// The booking [`trip::book`] made: the run's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Booking reference.
    pub pnr: u64,
    /// Flight number.
    pub flight: u32,
    /// What was paid, in euros.
    pub total: u32,
}

// The payloads are 16 bytes each, as the benchmark says (`Valid<T>` is `T` inside).
const _: () = assert!(
    size_of::<Trip>() == 16
        && size_of::<Valid<Trip>>() == 16
        && size_of::<Offer>() == 16
        && size_of::<Choice>() == 16
        && size_of::<Receipt>() == 16
);

/// What can go wrong on a [`trip`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TripError {
    /// The request broke a rule of [`Trip`].
    #[error("the trip request is invalid: {0}")]
    Invalid(#[from] Invalid),
    /// Departure and arrival are the same airport.
    #[error(
        "the trip goes nowhere: departure and arrival are the same airport; ask for two different ones"
    )]
    Nowhere,
    /// The flight has fewer free seats than asked for.
    #[error("flight {flight} has {free} free seats, {wanted} were asked for; ask for fewer seats")]
    SoldOut {
        /// Flight number.
        flight: u32,
        /// Seats still free.
        free: u32,
        /// Seats asked for.
        wanted: u32,
    },
}

/// The travel-booking workflow, its four steps computing their answers instead of calling an
/// airline: what is measured is what the runtime adds around steps that take, check and return
/// real values.
#[workflow]
#[allow(
    clippy::unused_async,
    clippy::missing_errors_doc,
    reason = "steps are `async fn`s that compute their answer"
)]
pub mod trip {
    use super::{Choice, Offer, Receipt, Trip, TripError, Valid};

    /// Input processing: the request's rules (garde), and one rule across fields.
    #[step(entry)]
    pub async fn validate(req: Trip) -> Result<Valid<Trip>, TripError> {
        let trip = Valid::new(req)?;
        if trip.from == trip.to {
            return Err(TripError::Nowhere);
        }
        Ok(trip)
    }

    /// The flight for the route, its departure and its fare, derived from the route and day.
    #[step(after = validate)]
    pub async fn search(trip: Valid<Trip>) -> Result<Offer, TripError> {
        let route = trip.from.rotate_left(7) ^ trip.to;
        Ok(Offer {
            flight: 100 + route % 900,
            departs: (route ^ trip.day) % 1440,
            price: 80 + (route ^ trip.day.rotate_left(3)) % 400,
            seats: trip.passengers,
        })
    }

    /// Books at most what the plane holds (the seat map here: a number from the flight).
    #[step(after = search)]
    pub async fn choose(offer: Offer) -> Result<Choice, TripError> {
        let free = 3 + offer.flight % 7;
        if offer.seats > free {
            return Err(TripError::SoldOut {
                flight: offer.flight,
                free,
                wanted: offer.seats,
            });
        }
        Ok(Choice {
            flight: offer.flight,
            day: offer.departs,
            seats: offer.seats,
            total: offer.price * offer.seats,
        })
    }

    /// The booking reference and what it cost.
    #[step(after = choose, exit)]
    pub async fn book(choice: Choice) -> Result<Receipt, TripError> {
        let pnr = (u64::from(choice.flight) << 32 | u64::from(choice.day))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Ok(Receipt {
            pnr,
            flight: choice.flight,
            total: choice.total,
        })
    }
}

/// A request [`trip`] accepts: LHR to JFK, two seats.
pub const TRIP: Trip = Trip {
    from: iata(*b"LHR"),
    to: iata(*b"JFK"),
    day: 20_240,
    passengers: 2,
};

/// [`trip`] as plain async Rust: the same step functions called in order.
///
/// # Errors
///
/// The first step's error, as [`Workflow::run`] would report it.
pub async fn plain_trip(req: Trip) -> Result<Receipt, TripError> {
    let trip = trip::validate(req).await?;
    let offer = trip::search(trip).await?;
    let choice = trip::choose(offer).await?;
    trip::book(choice).await
}

/// [`trip`] through the typestate API, one step method at a time.
///
/// # Errors
///
/// The first step's error, in the workflow's `FlowError`.
pub async fn typestate_trip(ctx: &Ctx, req: Trip) -> Result<Receipt, trip::FlowError> {
    trip::Flow::new(ctx, req)
        .validate()
        .await?
        .search()
        .await?
        .choose()
        .await?
        .book()
        .await
}

#[cfg(test)]
mod tests {
    use super::{Offer, TRIP, Trip, TripError, iata, plain_trip, trip, typestate_trip};
    use flow_runtime::prelude::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
            .block_on(f)
    }

    #[test]
    fn the_three_trip_drivers_book_the_same_receipt() {
        let plain = block_on(plain_trip(TRIP)).expect("TRIP is valid");
        let run = block_on(trip::Workflow::run(&Ctx::new(()), TRIP)).expect("run books TRIP");
        let typestate =
            block_on(typestate_trip(&Ctx::new(()), TRIP)).expect("typestate books TRIP");
        assert_eq!(run, plain);
        assert_eq!(typestate, plain);
        assert_eq!(plain.total % TRIP.passengers, 0);
    }

    #[test]
    fn a_trip_request_that_breaks_the_rules_fails_validate() {
        let bad = Trip {
            from: iata(*b"lhr"),
            passengers: 0,
            ..TRIP
        };
        let Err(TripError::Invalid(invalid)) = block_on(plain_trip(bad)) else {
            panic!("a lowercase airport and no seats are invalid");
        };
        let fields: Vec<&str> = invalid.fields().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(fields, ["from", "passengers"]);

        let nowhere = Trip {
            to: TRIP.from,
            ..TRIP
        };
        let err = block_on(trip::Workflow::run(&Ctx::new(()), nowhere)).unwrap_err();
        assert_eq!(err.step(), Some("validate"));
        assert!(matches!(err, trip::FlowError::Validate(TripError::Nowhere)));
    }

    #[test]
    fn choose_refuses_more_seats_than_the_flight_has() {
        let offer = Offer {
            flight: 100,
            departs: 600,
            price: 120,
            seats: 9,
        };
        let err = block_on(trip::choose(offer)).unwrap_err();
        assert!(matches!(
            err,
            TripError::SoldOut {
                flight: 100,
                free: 5,
                wanted: 9
            }
        ));
    }
}
