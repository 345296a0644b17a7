//! openraft's storage conformance suite against the RocksDB log store and state machine, plus
//! checks specific to sharing one database between groups.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{log_id, StoreBuilder, Suite};
use openraft::{Entry, EntryPayload, RaftLogReader};
use strata_model::ApplyReport;
use tempfile::TempDir;

use crate::codec::AppData;
use crate::db::GroupDb;
use crate::log_store::LogStore;
use crate::state_machine::StateMachine;
use crate::{Applier, LogDb, StorageError, TypeConfig};

/// Remembers payload lengths; its snapshot is their list.
#[derive(Default)]
struct LenApplier(std::sync::Mutex<Vec<u8>>);

impl Applier for LenApplier {
    fn apply(&self, payload: &[u8]) -> ApplyReport {
        self.0.lock().unwrap().push(payload.len() as u8);
        ApplyReport { appended: payload.len() as u64, ..ApplyReport::default() }
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
    fn restore(&self, data: &[u8]) -> Result<(), String> {
        *self.0.lock().unwrap() = data.to_vec();
        Ok(())
    }
}

/// Every store the suite asks for is a fresh group in one shared database, next to a neighbour
/// group that must not disturb it.
struct Builder {
    db: Arc<LogDb>,
    next_group: AtomicU32,
    _dir: TempDir,
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine> for Builder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError> {
        let group = self.next_group.fetch_add(2, Ordering::Relaxed);
        let (neighbour, _) = GroupDb::new(Arc::clone(&self.db), group + 1);
        append(&LogStore::new(neighbour), (1..=30).map(|i| blank(1, i))).await;
        let (g, _released) = GroupDb::new(Arc::clone(&self.db), group);
        let sm = StateMachine::open(Arc::clone(&g), Arc::new(LenApplier::default())).await?;
        Ok(((), LogStore::new(g), sm))
    }
}

#[test]
fn openraft_storage_suite() {
    let dir = tempfile::tempdir().unwrap();
    Suite::test_all(Builder {
        db: LogDb::open(dir.path()).unwrap(),
        next_group: AtomicU32::new(0),
        _dir: dir,
    })
    .unwrap();
}

fn blank(term: u64, index: u64) -> Entry<TypeConfig> {
    Entry { log_id: log_id(term, 1, index), payload: EntryPayload::Blank }
}

fn normal(term: u64, index: u64, len: usize) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(AppData(vec![vec![0u8; len].into()])),
    }
}

async fn append(store: &LogStore, entries: impl IntoIterator<Item = Entry<TypeConfig>>) {
    // `LogFlushed` cannot be built outside openraft: do what `append` does.
    store.put_entries(entries).unwrap();
    store.db().sync().await.unwrap();
}

#[tokio::test]
async fn groups_sharing_a_database_are_independent() {
    let dir = tempfile::tempdir().unwrap();
    let db = LogDb::open(dir.path()).unwrap();
    let (a, _) = GroupDb::new(Arc::clone(&db), 1);
    let (b, _) = GroupDb::new(Arc::clone(&db), 2);
    let (mut a, mut b) = (LogStore::new(a), LogStore::new(b));
    append(&a, (1..=10).map(|i| blank(1, i))).await;
    append(&b, (1..=5).map(|i| normal(2, i, 3))).await;

    a.purge(log_id(1, 1, 4)).await.unwrap();
    b.truncate(log_id(2, 1, 3)).await.unwrap();

    let sa = a.get_log_state().await.unwrap();
    assert_eq!(sa.last_purged_log_id, Some(log_id(1, 1, 4)));
    assert_eq!(sa.last_log_id, Some(log_id(1, 1, 10)));
    let sb = b.get_log_state().await.unwrap();
    assert_eq!(sb.last_purged_log_id, None);
    assert_eq!(sb.last_log_id, Some(log_id(2, 1, 2)));
    assert_eq!(a.try_get_log_entries(0..100).await.unwrap().len(), 6);
    let eb = b.try_get_log_entries(..).await.unwrap();
    assert_eq!(eb.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![1, 2]);
}

#[tokio::test]
async fn apply_batches_normal_entries_and_reports_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = LogDb::open(dir.path()).unwrap();
    let (g, _) = GroupDb::new(db, 1);
    let applier = Arc::new(LenApplier::default());
    let mut sm = StateMachine::open(g, Arc::clone(&applier) as Arc<dyn Applier>).await.unwrap();
    // A big batch goes through spawn_blocking, a small one runs inline: same results.
    let big = vec![normal(1, 1, 40_000), blank(1, 2), normal(1, 3, 9)];
    let reports = sm.apply(big).await.unwrap();
    let appended: Vec<Vec<u64>> =
        reports.iter().map(|r| r.iter().map(|r| r.appended).collect()).collect();
    assert_eq!(appended, vec![vec![40_000], vec![], vec![9]]);
    // An entry carrying several proposals gets one report per proposal.
    let batch = Entry {
        log_id: log_id(1, 1, 4),
        payload: EntryPayload::Normal(AppData(vec![vec![0u8; 5].into(), vec![0u8; 6].into()])),
    };
    let reports = sm.apply(vec![batch]).await.unwrap();
    assert_eq!(reports[0].iter().map(|r| r.appended).collect::<Vec<_>>(), vec![5, 6]);
    assert_eq!(*applier.0.lock().unwrap(), vec![(40_000 % 256) as u8, 9, 5, 6]);
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 1, 4)));
}
