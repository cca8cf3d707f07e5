//! Determinism over generated histories: whatever the interleaving of families and wherever a
//! snapshot is cut, the live projection, a projection resumed from the snapshot, a rebuild and
//! per-family as-of folds give the same views.

mod support;

use std::sync::Arc;
use std::time::Duration;

use keten_log::{EventStore, Until};
use keten_projection::{ProjectionOptions, Projections, StartedFrom, family_as_of, rebuild};
use proptest::prelude::*;
use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// One append: to family `family`, its next history step or else `extra` more events.
#[derive(Debug, Clone)]
struct Op {
    family: usize,
    extra: usize,
}

fn ops() -> impl Strategy<Value = (Vec<Op>, prop::sample::Index)> {
    (
        prop::collection::vec(
            (0usize..6, 1usize..4).prop_map(|(family, extra)| Op { family, extra }),
            1..60,
        ),
        any::<prop::sample::Index>(),
    )
}

async fn play(store: &dyn EventStore, fams: &mut [(Fam, Vec<Step>)], ops: &[Op]) {
    for op in ops {
        let (fam, steps) = &mut fams[op.family];
        let step = if steps.is_empty() {
            more(op.family, op.extra)
        } else {
            steps.remove(0)
        };
        fam.publish(store, step).await;
    }
}

async fn check(ops: Vec<Op>, cut: prop::sample::Index) {
    let dir = tempfile::tempdir().unwrap();
    let snaps = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    let mut fams: Vec<_> = (0..6).map(|i| (Fam::new(fid(i)), history(i))).collect();
    // At most one family open: every other family is packed and unpacked as events come.
    let live = Projections::start(
        store.clone(),
        ProjectionOptions {
            max_open_families: 1,
            ..ProjectionOptions::default()
        },
    )
    .await
    .unwrap();
    let cut = cut.index(ops.len() + 1);
    play(store.as_ref(), &mut fams, &ops[..cut]).await;
    if let Some(h) = store.head().await.unwrap() {
        let at_cut = Projections::start(
            store.clone(),
            ProjectionOptions {
                snapshot_dir: Some(snaps.path().to_path_buf()),
                snapshot_every: 0,
                ..ProjectionOptions::default()
            },
        )
        .await
        .unwrap();
        at_cut.wait_for(h, WAIT).await.unwrap();
        at_cut.shutdown().await.unwrap();
    }
    play(store.as_ref(), &mut fams, &ops[cut..]).await;
    let resumed = Projections::start(
        store.clone(),
        ProjectionOptions {
            snapshot_dir: Some(snaps.path().to_path_buf()),
            snapshot_every: 0,
            ..ProjectionOptions::default()
        },
    )
    .await
    .unwrap();
    if cut > 0 {
        assert!(matches!(
            resumed.started_from(),
            StartedFrom::Snapshot { .. }
        ));
    }
    let h = store.head().await.unwrap().unwrap();
    live.wait_for(h, WAIT).await.unwrap();
    resumed.wait_for(h, WAIT).await.unwrap();
    let rebuilt = rebuild(store.as_ref(), |_, _| {}).await.unwrap();
    assert_eq!(live.family_count(), rebuilt.views.len());
    assert_eq!(resumed.family_count(), rebuilt.views.len());
    for view in &rebuilt.views {
        assert_eq!(*live.family(&view.family).unwrap(), **view);
        assert_eq!(*resumed.family(&view.family).unwrap(), **view);
        let as_of = family_as_of(store.as_ref(), &view.family, Until::Latest)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(as_of, **view);
        // The publishers' own state, validated event by event, is what was folded.
        let i: usize = view.family.as_str()["fam-".len()..].parse().unwrap();
        assert_eq!(view.state, fams[i].0.state);
    }
    live.shutdown().await.unwrap();
    resumed.shutdown().await.unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn live_resumed_rebuilt_and_as_of_agree((ops, cut) in ops()) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(check(ops, cut));
    }
}
