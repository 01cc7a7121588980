//! Models' token prices (`--price MODEL=IN/OUT`) and a run's cost from them.
//!
//! The store keeps each model call's tokens and the model that answered, not what they
//! cost: prices differ by provider, contract and date, so the person looking gives them.

use crate::view::CallView;
use flow_runtime::agent::Price;
use serde::Serialize;

/// `--price`: the prices of models' tokens, to show what a run's model calls cost.
#[derive(Clone, Debug, Default, clap::Args)]
pub(crate) struct PriceArgs {
    /// The price of a model's tokens, to show a run's cost: `MODEL=IN/OUT`, in one currency
    /// (US dollars, say) per million input and per million output tokens, e.g.
    /// `--price claude-sonnet-4-5=3/15`. Repeat it (or separate with commas) for several
    /// models. A model the provider names with a suffix (`claude-sonnet-4-5-20250929`) takes
    /// the price of the longest MODEL that begins its name.
    #[arg(
        long = "price",
        env = "FLOW_PRICES",
        value_delimiter = ',',
        value_parser = parse_price,
        value_name = "MODEL=IN/OUT"
    )]
    pub(crate) prices: Vec<ModelPrice>,
}

/// One model's price.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ModelPrice {
    model: String,
    price: Price,
}

/// What a run's model calls cost, at the prices given.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Cost {
    /// The total of the calls whose model has a price, in the prices' currency.
    pub(crate) total: f64,
    /// Calls that reported tokens but whose model has no price (or did not say which model
    /// it was): not in `total`.
    pub(crate) unpriced_calls: usize,
}

impl PriceArgs {
    /// The price of `model`: the longest given model name that is `model` or begins it.
    fn of(&self, model: &str) -> Option<Price> {
        self.prices
            .iter()
            .filter(|p| model.starts_with(p.model.as_str()))
            .max_by_key(|p| p.model.len())
            .map(|p| p.price)
    }

    /// The cost of `calls`' tokens; `None` when no price was given or no call reported tokens.
    pub(crate) fn cost<'a>(&self, calls: impl IntoIterator<Item = &'a CallView>) -> Option<Cost> {
        if self.prices.is_empty() {
            return None;
        }
        let mut cost = Cost {
            total: 0.0,
            unpriced_calls: 0,
        };
        let mut any = false;
        for call in calls {
            let Some(tokens) = call.tokens else { continue };
            any = true;
            match call.model.as_deref().and_then(|m| self.of(m)) {
                Some(price) => cost.total += price.cost(tokens.input, tokens.output),
                None => cost.unpriced_calls += 1,
            }
        }
        any.then_some(cost)
    }
}

impl Cost {
    /// `0.0123`, or `0.0123 (+2 calls without a price)`.
    pub(crate) fn text(&self) -> String {
        let total = format!("{:.4}", self.total);
        match self.unpriced_calls {
            0 => total,
            1 => format!("{total} (+1 call without a price)"),
            n => format!("{total} (+{n} calls without a price)"),
        }
    }
}

fn parse_price(text: &str) -> Result<ModelPrice, String> {
    let expected = || {
        format!(
            "`{text}` is not a price: expected MODEL=IN/OUT, the price of a million input and \
             of a million output tokens (`claude-sonnet-4-5=3/15`)"
        )
    };
    let (model, amounts) = text.split_once('=').ok_or_else(expected)?;
    let (input, output) = amounts.split_once('/').ok_or_else(expected)?;
    let amount = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|a| a.is_finite() && *a >= 0.0)
    };
    let (Some(input), Some(output)) = (amount(input), amount(output)) else {
        return Err(expected());
    };
    let model = model.trim();
    if model.is_empty() {
        return Err(expected());
    }
    Ok(ModelPrice {
        model: model.to_owned(),
        price: Price::per_million_tokens(input, output),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Tokens;

    fn prices(given: &[&str]) -> PriceArgs {
        PriceArgs {
            prices: given.iter().map(|p| parse_price(p).unwrap()).collect(),
        }
    }

    fn call(model: Option<&str>, input: u64, output: u64) -> CallView {
        CallView::model_call(model, Tokens { input, output })
    }

    #[test]
    fn prices_parse_and_bad_ones_say_the_form() {
        assert_eq!(
            parse_price(" gpt-4o = 2.5/10").unwrap().price,
            Price::per_million_tokens(2.5, 10.0)
        );
        for bad in ["gpt-4o", "gpt-4o=3", "=3/15", "m=x/1", "m=-1/2", "m=1/inf"] {
            let message = parse_price(bad).unwrap_err();
            assert!(message.contains("MODEL=IN/OUT"), "{bad}: {message}");
        }
    }

    #[test]
    fn the_longest_matching_name_prices_a_call() {
        let p = prices(&["claude=1/1", "claude-sonnet-4-5=3/15"]);
        let calls = [
            call(Some("claude-sonnet-4-5-20250929"), 1_000_000, 100_000),
            call(Some("claude-haiku"), 1_000_000, 0),
        ];
        let cost = p.cost(&calls).unwrap();
        assert!((cost.total - (3.0 + 1.5 + 1.0)).abs() < 1e-9, "{cost:?}");
        assert_eq!(cost.unpriced_calls, 0);
    }

    #[test]
    fn calls_without_a_price_are_counted_not_guessed() {
        let p = prices(&["gpt-4o=2.5/10"]);
        let calls = [call(Some("o3"), 10, 10), call(None, 10, 10)];
        let cost = p.cost(&calls).unwrap();
        assert!(cost.total.abs() < f64::EPSILON);
        assert_eq!(cost.unpriced_calls, 2);
        assert_eq!(cost.text(), "0.0000 (+2 calls without a price)");
        assert_eq!(
            PriceArgs::default().cost(&calls),
            None,
            "no prices, no cost"
        );
        assert_eq!(p.cost(&[]), None, "no tokens, no cost");
    }
}
