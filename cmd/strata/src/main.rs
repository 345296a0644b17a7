//! The `strata` binary: every role and tool is a subcommand; see `strata --help`.
use std::process::ExitCode;

/// Stack of every runtime thread. Query evaluation recurses once per level of a query's syntax
/// tree, which `strata_promql::guard` bounds; this leaves that bound a wide margin (a debug
/// build needs about 7 KiB per level). Address space only: pages are used as touched.
const THREAD_STACK: usize = 16 << 20;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(strata_server::main()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, each cause only when the text so far does not already hold it
/// (object_store's messages repeat their sources' text, which `{:#}` would print again).
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}
