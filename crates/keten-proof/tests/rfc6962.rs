//! The tree's roots and proofs against a naive recomputation of RFC 6962 §2.1 and against the
//! Certificate Transparency reference vectors; the verifiers against both.

use keten_proof::{
    Hash, TreeBuilder, empty_root, from_hex, hash_children, hash_leaf_bytes, verify_consistency,
    verify_inclusion,
};
use proptest::prelude::*;

// --- The reference: RFC 6962 §2.1 read literally, over slices, recomputing everything. ---

fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn ref_mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = k_of(n);
            hash_children(&ref_mth(&d[..k]), &ref_mth(&d[k..]))
        }
    }
}

fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = k_of(n);
    if m < k {
        let mut p = ref_path(m, &d[..k]);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_path(m - k, &d[k..]);
        p.push(ref_mth(&d[..k]));
        p
    }
}

fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![ref_mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = ref_subproof(m, &d[..k], b);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_subproof(m - k, &d[k..], false);
        p.push(ref_mth(&d[..k]));
        p
    }
}

fn ref_proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    if m == 0 {
        return vec![];
    }
    ref_subproof(m, d, true)
}

fn leaves(n: usize, salt: u64) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| hash_leaf_bytes(&[salt.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect()
}

fn tree_of(hashes: &[Hash]) -> TreeBuilder {
    let mut t = TreeBuilder::new();
    for h in hashes {
        t.push_leaf_hash(*h);
    }
    t
}

fn h(hex: &str) -> Hash {
    from_hex(hex).unwrap().try_into().unwrap()
}

// --- Known answers: transparency-dev/merkle testonly/constants.go (the CT reference leaves),
// used as data. ---

const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const CT_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// The complete subtrees of the 8-leaf tree, by level then index.
const CT_NODES: [&[&str]; 3] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
];

fn ct_tree() -> TreeBuilder {
    let mut t = TreeBuilder::new();
    for leaf in CT_LEAVES {
        t.push_leaf_hash(hash_leaf_bytes(&from_hex(leaf).unwrap()));
    }
    t
}

#[test]
fn ct_reference_roots_for_every_size() {
    let t = ct_tree();
    for (size, root) in CT_ROOTS.iter().enumerate() {
        assert_eq!(t.root_at(size as u64).unwrap(), h(root), "size {size}");
    }
    assert_eq!(t.root(), h(CT_ROOTS[8]));
}

#[test]
fn ct_reference_inclusion_proofs_at_size_8() {
    let t = ct_tree();
    let root = h(CT_ROOTS[8]);
    for i in 0..8usize {
        let expected: Vec<Hash> = (0..3)
            .map(|level| h(CT_NODES[level][(i >> level) ^ 1]))
            .collect();
        let proof = t.inclusion_proof(i as u64, 8).unwrap();
        assert_eq!(proof, expected, "leaf {i}");
        verify_inclusion(&h(CT_NODES[0][i]), i as u64, 8, &proof, &root).unwrap();
    }
}

#[test]
fn ct_reference_consistency_proofs() {
    let t = ct_tree();
    let n = |l: usize, i: usize| h(CT_NODES[l][i]);
    for (old, new, expected) in [
        (1, 8, vec![n(0, 1), n(1, 1), n(2, 1)]),
        (2, 8, vec![n(1, 1), n(2, 1)]),
        (6, 8, vec![n(1, 2), n(1, 3), n(2, 0)]),
        (2, 5, vec![n(1, 1), n(0, 4)]),
    ] {
        let proof = t.consistency_proof(old, new).unwrap();
        assert_eq!(proof, expected, "{old} -> {new}");
        verify_consistency(
            old,
            new,
            &h(CT_ROOTS[old as usize]),
            &h(CT_ROOTS[new as usize]),
            &proof,
        )
        .unwrap();
    }
}

/// Every (index, size) and every (old, new) pair up to 300 leaves: each proof verifies under the
/// reference root; up to 64 leaves each proof also equals the reference's, above that a sample
/// does (the naive reference costs O(n) hashes a proof).
#[test]
fn every_proof_up_to_300_leaves_matches_the_reference() {
    const N: usize = 300;
    const ALL_AGAINST_REFERENCE: usize = 64;
    let d = leaves(N, 1);
    let t = tree_of(&d);
    let roots: Vec<Hash> = (0..=N).map(|n| ref_mth(&d[..n])).collect();
    let mut compared = 0;
    for n in 1..=N {
        let sampled = |x: usize| n <= ALL_AGAINST_REFERENCE || x < 2 || x + 2 >= n || x == n / 2;
        assert_eq!(t.root_at(n as u64).unwrap(), roots[n], "root of {n}");
        for i in 0..n {
            let proof = t.inclusion_proof(i as u64, n as u64).unwrap();
            if sampled(i) {
                assert_eq!(proof, ref_path(i, &d[..n]), "inclusion of {i} in {n}");
                compared += 1;
            }
            verify_inclusion(&d[i], i as u64, n as u64, &proof, &roots[n]).unwrap();
        }
        for m in 0..=n {
            let proof = t.consistency_proof(m as u64, n as u64).unwrap();
            if sampled(m) {
                assert_eq!(proof, ref_proof(m, &d[..n]), "consistency {m} -> {n}");
                compared += 1;
            }
            verify_consistency(m as u64, n as u64, &roots[m], &roots[n], &proof)
                .unwrap_or_else(|e| panic!("consistency {m} -> {n}: {e}"));
        }
    }
    assert!(compared > 6_000, "{compared}");
}

#[test]
fn tampered_proofs_fail_for_every_element() {
    let d = leaves(77, 2);
    let t = tree_of(&d);
    for n in [1u64, 2, 5, 16, 33, 77] {
        let root = t.root_at(n).unwrap();
        for i in 0..n {
            let proof = t.inclusion_proof(i, n).unwrap();
            for j in 0..proof.len() {
                let mut bad = proof.clone();
                bad[j][7] ^= 0x10;
                assert!(verify_inclusion(&d[i as usize], i, n, &bad, &root).is_err());
            }
            let mut short = proof.clone();
            if short.pop().is_some() {
                assert!(verify_inclusion(&d[i as usize], i, n, &short, &root).is_err());
            }
            let mut long = proof.clone();
            long.push(root);
            assert!(verify_inclusion(&d[i as usize], i, n, &long, &root).is_err());
            if n > 1 {
                let other = (i + 1) % n;
                assert!(verify_inclusion(&d[i as usize], other, n, &proof, &root).is_err());
            }
        }
        for m in 1..n {
            let old = t.root_at(m).unwrap();
            let proof = t.consistency_proof(m, n).unwrap();
            for j in 0..proof.len() {
                let mut bad = proof.clone();
                bad[j][0] ^= 1;
                assert!(
                    verify_consistency(m, n, &old, &root, &bad).is_err(),
                    "{m}->{n} [{j}]"
                );
            }
            assert!(verify_consistency(m, n, &old, &root, &[]).is_err());
        }
    }
}

/// A log changed before an old checkpoint cannot be shown consistent with it: for every earlier
/// leaf that changes, the new tree's proof fails against the old root.
#[test]
fn consistency_fails_when_an_earlier_leaf_changed() {
    let d = leaves(100, 3);
    let honest = tree_of(&d);
    for (old, new) in [
        (1u64, 2u64),
        (7, 8),
        (8, 9),
        (33, 100),
        (64, 100),
        (99, 100),
    ] {
        let old_root = honest.root_at(old).unwrap();
        for changed in 0..old as usize {
            let mut e = d.clone();
            e[changed][31] ^= 0x80;
            let forged = tree_of(&e);
            let proof = forged.consistency_proof(old, new).unwrap();
            let err =
                verify_consistency(old, new, &old_root, &forged.root_at(new).unwrap(), &proof)
                    .expect_err("a changed leaf must break consistency");
            assert!(
                err.to_string().contains("changed") || err.to_string().contains("root"),
                "{err}"
            );
        }
        // A dropped leaf (the log shifted by one) fails too.
        let mut e = d.clone();
        e.remove(0);
        let forged = tree_of(&e);
        let proof = forged.consistency_proof(old, new - 1).unwrap();
        assert!(
            verify_consistency(
                old,
                new - 1,
                &old_root,
                &forged.root_at(new - 1).unwrap(),
                &proof
            )
            .is_err()
        );
    }
}

#[test]
fn out_of_range_requests_are_refused() {
    let t = tree_of(&leaves(10, 4));
    assert!(t.inclusion_proof(10, 10).is_err());
    assert!(t.inclusion_proof(0, 11).is_err());
    assert!(t.consistency_proof(5, 11).is_err());
    assert!(t.consistency_proof(6, 5).is_err());
    assert!(t.root_at(11).is_err());
    assert_eq!(t.root_at(0).unwrap(), empty_root());
    assert!(verify_inclusion(&[0; 32], 0, 0, &[], &empty_root()).is_err());
    let r5 = t.root_at(5).unwrap();
    assert!(verify_consistency(5, 5, &r5, &r5, &[]).is_ok());
    assert!(verify_consistency(5, 5, &r5, &t.root(), &[]).is_err());
    assert!(verify_consistency(0, 10, &empty_root(), &t.root(), &[]).is_ok());
    assert!(verify_consistency(6, 5, &r5, &r5, &[r5]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn proofs_in_larger_trees_match_the_reference(
        n in 1usize..3000,
        i_frac in 0.0f64..1.0,
        m_frac in 0.0f64..=1.0,
        salt in any::<u64>(),
    ) {
        let d = leaves(n, salt);
        let t = tree_of(&d);
        let i = ((n as f64 * i_frac) as usize).min(n - 1);
        let m = ((n as f64 * m_frac) as usize).min(n);
        let root = ref_mth(&d);
        prop_assert_eq!(t.root(), root);
        let proof = t.inclusion_proof(i as u64, n as u64).unwrap();
        prop_assert_eq!(&proof, &ref_path(i, &d));
        prop_assert!(verify_inclusion(&d[i], i as u64, n as u64, &proof, &root).is_ok());
        let old = ref_mth(&d[..m]);
        let proof = t.consistency_proof(m as u64, n as u64).unwrap();
        prop_assert_eq!(&proof, &ref_proof(m, &d));
        prop_assert!(verify_consistency(m as u64, n as u64, &old, &root, &proof).is_ok());
    }
}
