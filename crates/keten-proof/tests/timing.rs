//! Proof timings at a million leaves: a measurement to read, not a timed test (it asserts only
//! that the proofs verify). Run in release:
//!
//! `cargo test --release -p keten-proof --test timing -- --ignored --nocapture`

use std::time::Instant;

use keten_proof::{TreeBuilder, hash_leaf_bytes, verify_consistency, verify_inclusion};

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn proofs_at_one_million_leaves() {
    const N: u64 = 1_000_000;
    let started = Instant::now();
    let mut tree = TreeBuilder::new();
    let mut leaves = Vec::with_capacity(N as usize);
    for i in 0..N {
        let leaf = hash_leaf_bytes(&i.to_be_bytes());
        leaves.push(leaf);
        tree.push_leaf_hash(leaf);
    }
    println!(
        "built {N} leaves in {:?}; tree holds {} bytes ({:.1} per leaf)",
        started.elapsed(),
        tree.memory_bytes(),
        tree.memory_bytes() as f64 / N as f64
    );

    // Sizes with many set bits make the longest right edges; indexes spread over the tree.
    let sizes = [
        N,
        N - 1,
        999_999 - 4_096,
        524_289,
        (1 << 19) + (1 << 18) - 1,
    ];
    let rounds = 2_000u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |bound: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % bound
    };

    let roots: Vec<_> = sizes.iter().map(|&s| tree.root_at(s).unwrap()).collect();
    let mut inclusion = std::time::Duration::ZERO;
    let mut verify = std::time::Duration::ZERO;
    for r in 0..rounds {
        let k = r as usize % sizes.len();
        let (size, root) = (sizes[k], roots[k]);
        let index = next(size);
        let t = Instant::now();
        let proof = tree.inclusion_proof(index, size).unwrap();
        inclusion += t.elapsed();
        let t = Instant::now();
        verify_inclusion(&leaves[index as usize], index, size, &proof, &root).unwrap();
        verify += t.elapsed();
    }
    println!(
        "inclusion proof: {:?} per proof, its verification {:?}",
        inclusion / rounds as u32,
        verify / rounds as u32
    );

    let mut consistency = std::time::Duration::ZERO;
    let mut verify = std::time::Duration::ZERO;
    for r in 0..rounds {
        let k = r as usize % sizes.len();
        let (new, new_root) = (sizes[k], roots[k]);
        let old = 1 + next(new - 1);
        let old_root = tree.root_at(old).unwrap();
        let t = Instant::now();
        let proof = tree.consistency_proof(old, new).unwrap();
        consistency += t.elapsed();
        let t = Instant::now();
        verify_consistency(old, new, &old_root, &new_root, &proof).unwrap();
        verify += t.elapsed();
    }
    println!(
        "consistency proof: {:?} per proof, its verification {:?}",
        consistency / rounds as u32,
        verify / rounds as u32
    );

    let t = Instant::now();
    for r in 0..rounds {
        std::hint::black_box(tree.root_at(N - r).unwrap());
    }
    println!("root at an earlier size: {:?}", t.elapsed() / rounds as u32);
}
