//! The scenario macros. A scenario is a named test that runs its body against the init under
//! test and is judged against the expected outputs; its body is also callable on its own
//! (`<name>::body`), so the suite-power tests can run it against a broken init.

/// Declares one scenario:
///
/// ```ignore
/// scenario! {
///     /// What the init must do, and the bug it reproduces.
///     fn sigusr1_is_forwarded_and_the_init_survives(init) { ...; Ok(()) }
/// }
/// ```
macro_rules! scenario {
    ($(#[$meta:meta])* fn $name:ident($init:ident) $body:block) => {
        $(#[$meta])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $crate::infrastructure::scenario::run(stringify!($name), $name::body).await
        }

        #[allow(non_snake_case)]
        pub(crate) mod $name {
            #[allow(unused_imports)]
            use super::*;

            pub(crate) async fn body($init: $crate::infrastructure::Init) -> ::anyhow::Result<()> $body
        }
    };
}

/// Declares one scenario per row of a table; every row calls `$body(init, case)`:
///
/// ```ignore
/// scenario_table! {
///     exit_code_case;
///     /// doc
///     exit_code_0_is_passed_through => ExitCase { arg: "0", code: 0 },
/// }
/// ```
macro_rules! scenario_table {
    ($body:path; $($(#[$meta:meta])* $name:ident => $case:expr),+ $(,)?) => {
        $(
            scenario! {
                $(#[$meta])*
                fn $name(init) { $body(init, $case).await }
            }
        )+
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
            let evidence = $container.evidence().await;
            return Err($crate::infrastructure::Deviation(format!("{}\n{}", format!($($fmt)+), evidence)).into());
        }
    };
}
