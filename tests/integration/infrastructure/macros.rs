//! The scenario macros. A single scenario is an `async fn` with `#[scenario]` (the
//! `scinit-test-macros` crate, so that rustfmt reaches its body); a family of cases is a table.

/// Declares one scenario per row of a table; every row calls `$body(run, case)` and becomes a
/// test named by the row, whose body is callable as `<row>::body` like a `#[scenario]`'s:
///
/// ```ignore
/// scenario_table! {
///     exit_code_case;                        // or: inheritance_case needs(Ports, Restart);
///     /// doc
///     death_by_sigterm_gives_exit_code_143 => ExitCase { arg: "signal:TERM", code: 143 },
/// }
/// ```
macro_rules! scenario_table {
    ($body:ident needs $needs:tt; $($rows:tt)+) => {
        scenario_table!(@rows $body $needs; $($rows)+);
    };
    ($body:ident; $($rows:tt)+) => {
        scenario_table!(@rows $body (); $($rows)+);
    };
    (@rows $body:ident $needs:tt; $($(#[$meta:meta])* $name:ident => $case:expr),+ $(,)?) => {
        $(
            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let needs = capabilities! $needs;
                $crate::infrastructure::run::run(stringify!($name), &needs, $name::body).await
            }

            pub(crate) mod $name {
                #[allow(unused_imports)]
                use super::*;

                pub(crate) async fn body(run: $crate::infrastructure::Run) -> ::anyhow::Result<()> {
                    $body(run, $case).await
                }
            }
        )+
    };
}

/// `[Capability::A, ...]` for `(A, ...)`.
macro_rules! capabilities {
    ($($cap:ident),*) => {
        [$($crate::infrastructure::Capability::$cap),*]
    };
}

/// Fails the scenario as a *deviation* (judged against the expected outputs) unless `cond`.
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::infrastructure::Deviation(format!($($fmt)+)).into());
        }
    };
}

/// Like `check!`, and appends the container's evidence (state, init stderr, child stdout).
macro_rules! check_in {
    ($container:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($container.deviation(format_args!($($fmt)+)).await);
        }
    };
}

/// The value of `result`, or a deviation that says what the init did not do, with the error's
/// whole context chain and the container's evidence: for a wait that timed out because the
/// init did not do its part.
macro_rules! check_ok {
    ($container:expr, $result:expr, $($fmt:tt)+) => {
        match $result {
            Ok(value) => value,
            Err(e) => {
                let what = format!($($fmt)+);
                return Err($container.deviation(format_args!("{what}: {e:#}")).await);
            }
        }
    };
}
