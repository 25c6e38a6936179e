//! `#[scenario]` and `#[scenario(needs(Ports, Restart))]`.
//!
//! A scenario is written as an ordinary `async fn name(run: Run) -> Result<()>`, so rustfmt
//! formats its body (it skips the bodies of `macro_rules!` invocations). The attribute keeps the
//! function's body callable as `name::body` (the suite-power tests run it against broken inits)
//! and adds a test of the same name that runs it against the init under test through the
//! runner, which judges it against the expected outputs. `needs(...)` names the
//! `Capability`s the scenario asks of an init; an init without one of them gets `n/a` from the
//! runner, with the capability as the reason.
//!
//! Written against `proc_macro` alone: the input is a plain function, and pulling in `syn` would
//! cost more compile time than the whole suite harness.

use proc_macro::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

#[proc_macro_attribute]
pub fn scenario(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr, item) {
        Ok(tokens) => tokens,
        Err(message) => compile_error(&message),
    }
}

fn expand(attr: TokenStream, item: TokenStream) -> Result<TokenStream, String> {
    let needs = needs(attr)?;
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    let fn_at = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "fn"))
        .ok_or("#[scenario] goes on an `async fn name(run: Run) -> Result<()>`")?;
    let name = match tokens.get(fn_at + 1) {
        Some(TokenTree::Ident(name)) => name.clone(),
        _ => return Err("#[scenario]: expected the function's name after `fn`".into()),
    };
    // Everything before `async fn`: the doc comment and other attributes, which go on the test.
    let head_end = tokens[..fn_at]
        .iter()
        .rposition(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == '#'))
        .map_or(0, |hash| hash + 2);
    let attrs: TokenStream = tokens[..head_end].iter().cloned().collect();
    let signature_and_body: TokenStream = tokens[fn_at + 2..].iter().cloned().collect();
    let caps: Vec<String> =
        needs.iter().map(|c| format!("crate::infrastructure::Capability::{c}")).collect();
    let test: TokenStream = format!(
        "#[::tokio::test(flavor = \"multi_thread\", worker_threads = 2)]
         async fn {name}() {{
             crate::infrastructure::run::run(stringify!({name}), &[{caps}], {name}::body).await
         }}
         #[allow(non_snake_case)]
         pub(crate) mod {name} {{
             #[allow(unused_imports)]
             use super::*;
             pub(crate) async fn body
         }}",
        caps = caps.join(", ")
    )
    .parse()
    .map_err(|e| format!("#[scenario] produced bad tokens: {e}"))?;
    // Put the function's own tokens, which keep their spans, at the end of the module.
    let mut module_tail: Vec<TokenTree> = test.into_iter().collect();
    let Some(TokenTree::Group(open_module)) = module_tail.pop() else {
        return Err("#[scenario]: internal: the module template lost its body".into());
    };
    let mut inner: Vec<TokenTree> = open_module.stream().into_iter().collect();
    inner.extend(signature_and_body);
    let module = Group::new(Delimiter::Brace, inner.into_iter().collect());
    let mut out: TokenStream = attrs;
    out.extend(module_tail);
    out.extend([TokenTree::Group(module)]);
    Ok(out)
}

/// The capability names of `needs(A, B)`, or none for an empty attribute.
fn needs(attr: TokenStream) -> Result<Vec<Ident>, String> {
    let mut tokens = attr.into_iter();
    match tokens.next() {
        None => return Ok(Vec::new()),
        Some(TokenTree::Ident(word)) if word.to_string() == "needs" => {}
        Some(other) => return Err(format!("#[scenario]: expected `needs(...)`, found `{other}`")),
    }
    let Some(TokenTree::Group(list)) = tokens.next() else {
        return Err("#[scenario]: expected `needs(Capability, ...)`".into());
    };
    if let Some(extra) = tokens.next() {
        return Err(format!("#[scenario]: unexpected `{extra}` after `needs(...)`"));
    }
    let mut caps = Vec::new();
    for token in list.stream() {
        match token {
            TokenTree::Ident(cap) => caps.push(cap),
            TokenTree::Punct(p) if p.as_char() == ',' => {}
            other => return Err(format!("#[scenario]: `{other}` is not a capability name")),
        }
    }
    Ok(caps)
}

fn compile_error(message: &str) -> TokenStream {
    let literal: TokenStream = format!("{message:?}").parse().unwrap_or_default();
    [
        TokenTree::Ident(Ident::new("compile_error", Span::call_site())),
        TokenTree::Punct(Punct::new('!', Spacing::Alone)),
        TokenTree::Group(Group::new(Delimiter::Parenthesis, literal)),
        TokenTree::Punct(Punct::new(';', Spacing::Alone)),
    ]
    .into_iter()
    .collect()
}
