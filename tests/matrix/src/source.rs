//! What the table needs from the suite's Rust sources, read as text: the scenarios of
//! `tests/integration/scenarios/` with their theme and the capabilities they need, and the
//! sentence the harness gives for a missing capability (`Capability::missing` in
//! `tests/integration/infrastructure/inits.rs`).
//!
//! Reading the sources rather than asking the compiled test binary (`SCINIT_DECLARE_NEEDS`) keeps
//! the freshness test free of Docker and of the suite's build (bollard, tokio: minutes on a cold
//! machine), and always in step with the tree. A tokenizer (comments, strings, raw strings, char
//! literals and lifetimes) rather than line matching makes it indifferent to formatting. What it
//! could still miss (a new way of declaring a scenario) cannot go unnoticed: every scenario must
//! match the expected outputs, which the harness checks against the compiled binary
//! (`matrix::build`).

use std::fmt::Write as _;
use std::path::Path;

/// One scenario: its test name, its theme (the module, i.e. the file under `scenarios/`) and
/// the capabilities it needs, in the names of `fixtures/inits.txt` (`Ports` is `ports`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub theme: String,
    pub needs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Punct(char),
    Open(char),
    Close(char),
    /// A string literal's value, escapes resolved.
    Str(String),
    /// Any other literal or a lifetime: present so that patterns cannot match across it.
    Other,
}

/// The tokens of Rust source `text`, comments dropped.
fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = skip_block_comment(&chars, i)?;
        } else if c == '"' {
            let (value, end) = quoted(&chars, i + 1, '"')?;
            toks.push(Tok::Str(value));
            i = end;
        } else if c == '\'' {
            i = char_or_lifetime(&chars, i)?;
            toks.push(Tok::Other);
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            toks.push(Tok::Other);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            match (word.as_str(), chars.get(i)) {
                ("r" | "br", Some('"' | '#')) => {
                    let (value, end) = raw_string(&chars, i)?;
                    toks.push(Tok::Str(value));
                    i = end;
                }
                ("b", Some('"')) => {
                    let (value, end) = quoted(&chars, i + 1, '"')?;
                    toks.push(Tok::Str(value));
                    i = end;
                }
                ("b", Some('\'')) => {
                    i = char_or_lifetime(&chars, i)?;
                    toks.push(Tok::Other);
                }
                _ => toks.push(Tok::Ident(word)),
            }
        } else {
            toks.push(match c {
                '(' | '[' | '{' => Tok::Open(c),
                ')' | ']' | '}' => Tok::Close(c),
                _ => Tok::Punct(c),
            });
            i += 1;
        }
    }
    Ok(toks)
}

/// The index after the block comment that starts at `start` (they nest in Rust).
fn skip_block_comment(chars: &[char], start: usize) -> Result<usize, String> {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < chars.len() {
        match (chars[i], chars[i + 1]) {
            ('/', '*') => {
                depth += 1;
                i += 2;
            }
            ('*', '/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Err("a block comment is not closed".into())
}

/// The value of the literal whose body starts at `i` and ends at `close`, and the index after it.
fn quoted(chars: &[char], mut i: usize, close: char) -> Result<(String, usize), String> {
    let mut value = String::new();
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c == close {
            return Ok((value, i));
        }
        if c != '\\' {
            value.push(c);
            continue;
        }
        let escaped = *chars.get(i).ok_or("a literal ends in a backslash")?;
        i += 1;
        match escaped {
            'n' => value.push('\n'),
            't' => value.push('\t'),
            'r' => value.push('\r'),
            '0' => value.push('\0'),
            // A line continuation: the newline and the next line's indentation are not part of it.
            '\n' => {
                while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                    i += 1;
                }
            }
            'x' => i += 2,
            'u' => {
                while chars.get(i).is_some_and(|c| *c != '}') {
                    i += 1;
                }
                i += 1;
            }
            other => value.push(other),
        }
    }
    Err(format!("a {close}-quoted literal is not closed"))
}

/// A raw string `r#"..."#` whose `#`s or quote start at `i`: its value and the index after it.
fn raw_string(chars: &[char], mut i: usize) -> Result<(String, usize), String> {
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    if chars.get(i) != Some(&'"') {
        return Err("`r#` is not followed by a raw string".into());
    }
    i += 1;
    let start = i;
    while i < chars.len() {
        if chars[i] == '"' && chars[i + 1..].iter().take_while(|c| **c == '#').count() >= hashes {
            return Ok((chars[start..i].iter().collect(), i + 1 + hashes));
        }
        i += 1;
    }
    Err("a raw string is not closed".into())
}

/// The index after the char literal or lifetime whose quote is at or just after `start`.
fn char_or_lifetime(chars: &[char], start: usize) -> Result<usize, String> {
    let quote = if chars[start] == '\'' { start } else { start + 1 };
    match (chars.get(quote + 1), chars.get(quote + 2)) {
        (Some('\\'), _) => quoted(chars, quote + 1, '\'').map(|(_, end)| end),
        (Some(_), Some('\'')) => Ok(quote + 3),
        _ => {
            let mut i = quote + 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            Ok(i)
        }
    }
}

/// `LiveReload` (a `Capability` variant) as `fixtures/inits.txt` spells it: `live-reload`.
pub fn capability_name(variant: &str) -> String {
    let mut name = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('-');
        }
        name.extend(c.to_lowercase());
    }
    name
}

/// The index of the token that closes the group opened at `open`.
fn group_end(toks: &[Tok], open: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    for (i, tok) in toks.iter().enumerate().skip(open) {
        match tok {
            Tok::Open(_) => depth += 1,
            Tok::Close(_) => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
    }
    Err("a bracket is not closed".into())
}

/// The capability names of `needs(A, B)` starting at `at` (the `needs` ident), and the index
/// after the closing parenthesis.
fn needs_at(toks: &[Tok], at: usize) -> Result<(Vec<String>, usize), String> {
    if toks.get(at + 1) != Some(&Tok::Open('(')) {
        return Err("`needs` without its `(...)`".into());
    }
    let end = group_end(toks, at + 1)?;
    let mut needs = Vec::new();
    for tok in &toks[at + 2..end] {
        match tok {
            Tok::Ident(cap) => needs.push(capability_name(cap)),
            Tok::Punct(',') => {}
            other => return Err(format!("`{other:?}` in `needs(...)` is not a capability")),
        }
    }
    Ok((needs, end + 1))
}

/// The scenarios declared in one file's tokens, in source order: `#[scenario]` or
/// `#[scenario(needs(...))]` on a function, and the rows of `scenario_table! { body needs(...);
/// row => case, ... }` (the two forms of `tests/integration/infrastructure/macros.rs` and
/// `tests/macros`).
fn scenarios_in(toks: &[Tok], theme: &str) -> Result<Vec<Scenario>, String> {
    let ident = |i: usize, word: &str| matches!(toks.get(i), Some(Tok::Ident(w)) if w == word);
    let mut found = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i] == Tok::Punct('#')
            && toks.get(i + 1) == Some(&Tok::Open('['))
            && ident(i + 2, "scenario")
        {
            let attr_end = group_end(toks, i + 1)?;
            let needs = match toks.get(i + 3) {
                Some(Tok::Open('(')) if ident(i + 4, "needs") => needs_at(toks, i + 4)?.0,
                _ => Vec::new(),
            };
            let fn_at = (attr_end..toks.len())
                .find(|&j| ident(j, "fn"))
                .ok_or("#[scenario] on no function")?;
            let Some(Tok::Ident(name)) = toks.get(fn_at + 1) else {
                return Err("#[scenario]: no function name after `fn`".into());
            };
            found.push(Scenario { name: name.clone(), theme: theme.to_string(), needs });
            i = fn_at + 2;
        } else if ident(i, "scenario_table")
            && toks.get(i + 1) == Some(&Tok::Punct('!'))
            && matches!(toks.get(i + 2), Some(Tok::Open(_)))
        {
            let end = group_end(toks, i + 2)?;
            found.extend(table_rows(&toks[i + 3..end], theme)?);
            i = end + 1;
        } else {
            i += 1;
        }
    }
    Ok(found)
}

/// The rows of one `scenario_table!`, given the tokens inside its brackets.
fn table_rows(toks: &[Tok], theme: &str) -> Result<Vec<Scenario>, String> {
    let head_end = toks
        .iter()
        .position(|t| *t == Tok::Punct(';'))
        .ok_or("scenario_table!: no `;` after the case function")?;
    let needs = match toks.get(1) {
        Some(Tok::Ident(w)) if w == "needs" => needs_at(toks, 1)?.0,
        _ => Vec::new(),
    };
    let mut rows = Vec::new();
    let mut i = head_end + 1;
    while i < toks.len() {
        // Attributes before a row (`#[doc = ...]`, `#[ignore]`); doc comments are comments here.
        if toks[i] == Tok::Punct('#') {
            i = group_end(toks, i + 1)? + 1;
            continue;
        }
        let Tok::Ident(name) = &toks[i] else {
            return Err(format!("scenario_table!: expected a row name, found {:?}", toks[i]));
        };
        if toks.get(i + 1) != Some(&Tok::Punct('=')) || toks.get(i + 2) != Some(&Tok::Punct('>')) {
            return Err(format!("scenario_table!: row `{name}` has no `=>`"));
        }
        rows.push(Scenario { name: name.clone(), theme: theme.to_string(), needs: needs.clone() });
        // The case expression runs to the next comma outside brackets.
        i += 3;
        while i < toks.len() && toks[i] != Tok::Punct(',') {
            i = if matches!(toks[i], Tok::Open(_)) { group_end(toks, i)? + 1 } else { i + 1 };
        }
        i += 1;
    }
    Ok(rows)
}

/// The modules `mod.rs` declares (`mod x;`, `pub mod x;`), in order.
fn declared_modules(toks: &[Tok]) -> Vec<String> {
    toks.windows(3)
        .filter_map(|w| match w {
            [Tok::Ident(m), Tok::Ident(name), Tok::Punct(';')] if m == "mod" => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Every scenario under `dir` (`tests/integration/scenarios`): the modules its `mod.rs`
/// declares, each a theme, in declaration order, and each theme's scenarios in source order.
pub fn scenarios(dir: &Path) -> Result<Vec<Scenario>, String> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|text| tokenize(&text).map_err(|e| format!("{}: {e}", path.display())))
    };
    let mut all = Vec::new();
    for theme in declared_modules(&read(&dir.join("mod.rs"))?) {
        let path = dir.join(format!("{theme}.rs"));
        let found =
            scenarios_in(&read(&path)?, &theme).map_err(|e| format!("{}: {e}", path.display()))?;
        all.extend(found);
    }
    let mut problems = String::new();
    for (i, s) in all.iter().enumerate() {
        if all[..i].iter().any(|t| t.name == s.name) {
            let _ = write!(problems, " `{}` is declared twice;", s.name);
        }
    }
    if problems.is_empty() {
        Ok(all)
    } else {
        Err(format!("{}:{}", dir.display(), problems.trim_end_matches(';')))
    }
}

/// What an init without each capability cannot be asked to do, by capability name: the arms of
/// `Capability::missing` in `inits.rs` (`Capability::Ports => "binds no listening sockets..."`).
pub fn capability_descriptions(inits_rs: &Path) -> Result<Vec<(String, String)>, String> {
    let text =
        std::fs::read_to_string(inits_rs).map_err(|e| format!("{}: {e}", inits_rs.display()))?;
    let toks = tokenize(&text).map_err(|e| format!("{}: {e}", inits_rs.display()))?;
    let is = |i: usize, word: &str| matches!(toks.get(i), Some(Tok::Ident(w)) if w == word);
    let body = (0..toks.len())
        .find(|&i| is(i, "fn") && is(i + 1, "missing"))
        .and_then(|i| (i..toks.len()).find(|&j| toks[j] == Tok::Open('{')))
        .ok_or_else(|| format!("{}: no `fn missing` in it", inits_rs.display()))?;
    let end = group_end(&toks, body)?;
    let mut descriptions = Vec::new();
    for i in body..end {
        let (Some(Tok::Ident(variant)), true) = (toks.get(i + 3), is(i, "Capability")) else {
            continue;
        };
        let arrow = [Tok::Punct(':'), Tok::Punct(':'), Tok::Ident(variant.clone())]
            .into_iter()
            .chain([Tok::Punct('='), Tok::Punct('>')]);
        if !toks[i + 1..].iter().cloned().zip(arrow).all(|(a, b)| a == b) {
            continue;
        }
        // The arm's value: the string itself, or a block holding only the string.
        let value = match &toks[i + 6..] {
            [Tok::Str(s), ..] | [Tok::Open('{'), Tok::Str(s), Tok::Close('}'), ..] => s.clone(),
            _ => return Err(format!("{}: `{variant}` has no text", inits_rs.display())),
        };
        descriptions.push((capability_name(variant), value));
    }
    if descriptions.is_empty() {
        return Err(format!("{}: `fn missing` names no capability", inits_rs.display()));
    }
    Ok(descriptions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_of_scenario_are_found_in_source_order_with_their_needs() {
        let src = r##"
            //! #[scenario] in a comment is no scenario; neither is "scenario_table! {" in a string.
            /// Doc.
            #[scenario]
            async fn plain(run: Run) -> Result<()> { let c = '{'; let s: &'static str = r#"}"#; Ok(()) }
            scenario_table! {
                case_fn needs(Ports, LiveReload);
                /// A row's doc, with a comma, and a brace {.
                first_row => Case { args: &["a", "b"], f: |x| { x } },
                #[ignore]
                second_row => Case::new(1, 2)
            }
            /* block /* nested */ #[scenario] */
            #[scenario(needs(StartFirst))]
            async fn last(run: Run) -> Result<()> { Ok(()) }
        "##;
        let found = scenarios_in(&tokenize(src).unwrap(), "theme").unwrap();
        let got: Vec<(&str, Vec<&str>)> = found
            .iter()
            .map(|s| (s.name.as_str(), s.needs.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            got,
            [
                ("plain", vec![]),
                ("first_row", vec!["ports", "live-reload"]),
                ("second_row", vec!["ports", "live-reload"]),
                ("last", vec!["start-first"]),
            ]
        );
        assert!(found.iter().all(|s| s.theme == "theme"));
    }

    #[test]
    fn literals_and_lifetimes_do_not_confuse_the_tokenizer() {
        let toks = tokenize(r##"a 'x' '\'' 'life b"by" "q\"{" '}' br#"raw""# z"##).unwrap();
        assert_eq!(toks.first(), Some(&Tok::Ident("a".into())));
        assert_eq!(toks.last(), Some(&Tok::Ident("z".into())));
        assert!(toks.contains(&Tok::Str("q\"{".into())));
        assert!(toks.contains(&Tok::Str("raw\"".into())));
        assert!(!toks.iter().any(|t| matches!(t, Tok::Open(_) | Tok::Close(_))));
        assert!(tokenize("\"open").is_err());
    }

    #[test]
    fn capability_variants_become_table_names() {
        assert_eq!(capability_name("Ports"), "ports");
        assert_eq!(capability_name("LiveReload"), "live-reload");
        assert_eq!(capability_name("ScinitCli"), "scinit-cli");
    }
}
