//! `AsOfCache` answers exactly what `family_as_of` answers, at every position and time, whether
//! the marks are made by earlier questions or not, and as the family grows.

mod support;

use std::sync::Arc;

use keten_log::{Direction, EventStore, ReadFrom, Until};
use keten_projection::{AsOfCache, family_as_of};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_answers_what_a_fold_from_the_start_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = open_log(dir.path()).await;
    let mut fams = publish_families(store.as_ref(), 3).await;
    for round in 0..6 {
        for (i, fam) in fams.iter_mut().enumerate() {
            fam.publish(store.as_ref(), more(i, 5 + round)).await;
        }
    }
    // Small marks, so that every answer starts from one; latest first, then from the start
    // backwards and forwards, so that marks exist before and after each cut-off.
    let cache = AsOfCache::new(4, 2);
    let all = store
        .read_all(
            ReadFrom::Start,
            Direction::Forward,
            usize::MAX,
            Until::Latest,
        )
        .await
        .unwrap();
    let mut cuts = vec![Until::Latest];
    for e in all.iter().rev().chain(all.iter()) {
        cuts.push(Until::Position(e.position));
        cuts.push(Until::Time(e.committed_at));
    }
    for cut in cuts {
        for i in 0..3 {
            let want = family_as_of(store.as_ref(), &fid(i), cut).await.unwrap();
            let got = cache
                .family_as_of(store.as_ref(), &fid(i), cut)
                .await
                .unwrap();
            assert_eq!(got, want, "family {i} as of {cut:?}");
        }
    }
    assert!(cache.marks() > 0);

    // The family grows after its marks were made.
    fams[1].publish(store.as_ref(), more(1, 9)).await;
    let want = family_as_of(store.as_ref(), &fid(1), Until::Latest)
        .await
        .unwrap();
    let got = cache
        .family_as_of(store.as_ref(), &fid(1), Until::Latest)
        .await
        .unwrap();
    assert_eq!(got, want);
}
