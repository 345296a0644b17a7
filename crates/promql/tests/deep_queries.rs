//! Queries nested as deeply as the parser lets through evaluate within the stack the `strata`
//! binary gives its threads (the engine recurses once per level), and deeper ones are refused
//! with a message.
#![allow(clippy::unwrap_used)]
use strata_model::{Labels, TenantId};
use strata_promql::guard::MAX_NESTING_TOKENS;
use strata_promql::mem::MemStorage;
use strata_promql::{Engine, QueryError, QueryOpts, QueryValue};

fn store() -> MemStorage {
    let mut m = MemStorage::new();
    let labels = Labels::from_pairs([("__name__", "up".to_string()), ("job", "a".to_string())]);
    for s in 0..20 {
        m.append(&labels, s * 15_000, 1.0).expect("in order");
    }
    m
}

/// The `strata` binary's thread stack (cmd/strata/src/main.rs).
const THREAD_STACK: usize = 16 << 20;

#[test]
fn queries_at_the_nesting_bound_evaluate_and_deeper_ones_are_refused() {
    let t = std::thread::Builder::new()
        .stack_size(THREAD_STACK)
        .spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(deep_queries());
        })
        .unwrap();
    t.join().unwrap();
}

async fn deep_queries() {
    let store = store();
    let tenant = TenantId("t".into());
    let engine = Engine::default();
    let n = MAX_NESTING_TOKENS;
    let at_bound = [
        // Left-deep chain of binary operators over a vector.
        (format!("up{}", " + up".repeat(n)), n as f64 + 1.0),
        // Parentheses.
        (format!("{}up{}", "(".repeat(n), ")".repeat(n)), 1.0),
        // Unary minus (each also counts once).
        (format!("{}up", "-".repeat(n)), 1.0),
        // Nested aggregations: one `(` each.
        (format!("{}up{}", "sum(".repeat(n), ")".repeat(n)), 1.0),
    ];
    for (q, want) in &at_bound {
        let out = engine
            .range(&store, &tenant, q, 60_000, 120_000, 30_000, &QueryOpts::default())
            .await
            .unwrap_or_else(|e| panic!("{}…: {e}", &q[..40]));
        let QueryValue::Matrix(series) = &out.value else {
            panic!("{}…: not a matrix: {:?}", &q[..40], out.value)
        };
        assert_eq!(series.len(), 1, "{}…", &q[..40]);
        let values: Vec<f64> = series[0].samples.iter().map(|s| s.v).collect();
        assert_eq!(values, [*want; 3], "{}…", &q[..40]);
    }
    for q in [format!("up{}", " + up".repeat(n + 1)), format!("{}up", "-".repeat(20 * n))] {
        match engine.instant(&store, &tenant, &q, 60_000, &QueryOpts::default()).await {
            Err(QueryError::BadData(e)) => assert!(e.contains("too complex"), "{e}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
