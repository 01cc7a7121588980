//! Reading the user's module with every function body kept as its tokens.
//!
//! The macro reads steps' signatures and attributes, never their bodies, which it hands back to
//! rustc as they came. syn's `ItemMod` parser builds a syntax tree of every statement and
//! expression, and prints it back token by token; unoptimised, as cargo builds proc macros in
//! a dev profile, that is most of the parsing cost of a module whose steps do real work. Here a
//! function's statements are one `Expr::Verbatim` of their tokens, handed on as written (syn's
//! reprint respaced some punctuation and gave a group's two delimiters the group's whole span;
//! the tokens, and what rustc parses from them, are the same), its inner attributes join the
//! outer ones as syn puts them, and everything else goes through syn's own parsers. Input this reader does not take (a module
//! without a body, `unsafe mod`, anything that is no module) goes to syn's `ItemMod` parser, so
//! what parses and every parse error are syn's. A syntax error inside a body is rustc's to
//! report, at the body's tokens, when it parses the expansion.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::parse::discouraged::Speculative;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Block, Expr, Item, ItemFn, ItemMod, Signature, Stmt, Visibility};

/// The module in `tokens`, its functions' bodies kept as tokens.
pub(crate) fn parse(tokens: TokenStream) -> syn::Result<ItemMod> {
    syn::parse2::<Module>(tokens.clone())
        .map(|module| module.0)
        .or_else(|_| syn::parse2(tokens))
}

struct Module(ItemMod);

impl Parse for Module {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let mod_token: syn::Token![mod] = input.parse()?;
        let ident: syn::Ident = input.parse()?;
        let content;
        let brace = syn::braced!(content in input);
        // As syn's `ItemMod`: the outer attributes, then the inner ones.
        attrs.extend(content.call(Attribute::parse_inner)?);
        let mut items = Vec::new();
        while !content.is_empty() {
            items.push(item(&content)?);
        }
        Ok(Self(ItemMod {
            attrs,
            vis,
            unsafety: None,
            mod_token,
            ident,
            content: Some((brace, items)),
            semi: None,
        }))
    }
}

/// A function with a body, read without parsing the body; any other item, by syn.
fn item(input: ParseStream<'_>) -> syn::Result<Item> {
    let fork = input.fork();
    if let Ok(function) = function(&fork) {
        input.advance_to(&fork);
        return Ok(Item::Fn(function));
    }
    input.parse()
}

fn function(input: ParseStream<'_>) -> syn::Result<ItemFn> {
    let mut attrs = input.call(Attribute::parse_outer)?;
    let vis: Visibility = input.parse()?;
    let sig: Signature = input.parse()?;
    let body = match input.parse::<TokenTree>()? {
        TokenTree::Group(body) if body.delimiter() == Delimiter::Brace => body,
        other => return Err(syn::Error::new(other.span(), "expected a function body")),
    };
    // As syn's `ItemFn`: the body's inner attributes (`#![…]`) join the outer ones, and print
    // inside the braces again; the statements after them stay tokens.
    let (inner, stmts) = syn::parse::Parser::parse2(
        |body: ParseStream<'_>| {
            let inner = body.call(Attribute::parse_inner)?;
            Ok((inner, body.parse::<TokenStream>()?))
        },
        body.stream(),
    )?;
    attrs.extend(inner);
    Ok(ItemFn {
        attrs,
        vis,
        sig,
        block: Box::new(Block {
            brace_token: syn::token::Brace {
                span: body.delim_span(),
            },
            stmts: vec![Stmt::Expr(Expr::Verbatim(stmts), None)],
        }),
    })
}

#[cfg(test)]
mod tests {
    use quote::{ToTokens, quote};

    /// The same tokens out as syn's own parser gives, bodies and all (compared as text, which
    /// leaves out spacing and spans: bodies keep the source's).
    #[test]
    fn prints_what_syn_prints() {
        let module = quote! {
            #[doc = "outer"]
            pub mod trip {
                #![allow(unused)]
                use super::*;
                #[step(entry)]
                pub async fn validate(req: String) -> Result<String, Failed> {
                    #![allow(clippy::all)]
                    let x = match req.len() { 0 => 1, n => n };
                    Ok(format!("{req}{x}"))
                }
                pub const unsafe extern "C" fn raw() -> fn(u32) -> u32 { todo!() }
                fn bodyless();
                struct S { a: u32 }
                impl S { fn get(&self) -> u32 { self.a } }
                const F: fn() = { fn inner() {} inner };
                macro_rules! m { () => {} }
            }
        };
        let fast = super::parse(module.clone()).unwrap();
        let slow: syn::ItemMod = syn::parse2(module).unwrap();
        assert_eq!(
            fast.to_token_stream().to_string(),
            slow.to_token_stream().to_string()
        );
        let Some((_, items)) = &fast.content else {
            panic!("no content")
        };
        assert!(matches!(&items[1], syn::Item::Fn(f) if f.sig.ident == "validate"));
        // The body's inner attribute is among the function's attributes, as syn has it.
        let (syn::Item::Fn(fast_fn), Some((_, slow_items))) = (&items[1], &slow.content) else {
            panic!("no function")
        };
        let syn::Item::Fn(slow_fn) = &slow_items[1] else {
            panic!("no function")
        };
        assert_eq!(fast_fn.attrs, slow_fn.attrs);
        assert_eq!(fast_fn.attrs.len(), 2);
    }

    /// What is no module with a body is syn's to read, or to reject.
    #[test]
    fn falls_back_to_syn() {
        assert!(
            super::parse(quote!(
                mod outline;
            ))
            .is_ok()
        );
        let error = super::parse(quote!(
            fn not_a_module() {}
        ))
        .unwrap_err();
        let syn_error = syn::parse2::<syn::ItemMod>(quote!(
            fn not_a_module() {}
        ))
        .unwrap_err();
        assert_eq!(error.to_string(), syn_error.to_string());
    }

    /// A body that does not parse is kept as it is: rustc reports it in the expansion.
    #[test]
    fn keeps_a_body_that_does_not_parse() {
        let module = super::parse(quote!(mod m { fn f() { let = ; } })).unwrap();
        assert!(module.to_token_stream().to_string().contains("let = ;"));
    }
}
