//! `keten audit-export` and `keten audit-verify`: an auditor's own tools.
//!
//! The export is a gRPC client, not a reader of the data directory: an auditor who must not
//! trust keten's operators has no business on their disks, and needs nothing from the server
//! that the bundle does not prove. The verification needs no server and no data directory at
//! all: the bundle and the public key.

use anyhow::{Context, Result, bail};
use keten::client::{Session, connect};
use keten_domain::Role;
use keten_proof::{
    BUNDLE_FORMAT, BUNDLE_VERSION, Bundle, BundleEvent, PlaintextPayload, SignedCheckpoint,
    verify_bundle,
};
use keten_proto::v1;

use crate::cli::{AuditExportArgs, AuditVerifyArgs, KeygenArgs};
use crate::cmd::serve::runtime;

pub fn export(args: AuditExportArgs) -> Result<()> {
    let bundle = runtime()?.block_on(fetch(&args))?;
    if let Some(key) = &args.key {
        let key = keten_proof::load_verifying_key(key)?;
        let report = verify_bundle(&bundle, &key);
        if !report.holds() {
            bail!("the server's bundle does not verify; not written:\n{report}");
        }
    }
    std::fs::write(&args.out, bundle.to_json())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {} events of {} under checkpoint {} (tree size {}) to {}",
        bundle.events.len(),
        bundle.stream,
        keten_proof::to_hex(&bundle.checkpoint.checkpoint.root_hash),
        bundle.checkpoint.checkpoint.tree_size,
        args.out.display()
    );
    Ok(())
}

/// Signs a fresh checkpoint, lists the family's events, and asks for each one's proof under
/// that checkpoint. The events come from `ProveInclusion` (as stored, bytes for bytes: the
/// family's payloads sealed under its key), not from the history call, which names the
/// positions and, for the plaintext section, gives the events decrypted. An erased family's
/// events have no plaintext any more; their ciphertext still proves.
async fn fetch(args: &AuditExportArgs) -> Result<Bundle> {
    let channel = connect(&args.server, &args.pki, &args.cert).await?;
    let s = Session::new(channel, args.person.clone(), Role::Auditor);
    let note = s
        .audit()
        .get_checkpoint(s.request(v1::GetCheckpointRequest { fresh: true }))
        .await
        .context("GetCheckpoint")?
        .into_inner()
        .checkpoint
        .context("the server sent no checkpoint")?
        .note;
    let checkpoint = SignedCheckpoint::from_note(&note).context("the server's checkpoint")?;
    let size = checkpoint.checkpoint.tree_size;

    let mut positions = Vec::new();
    let mut decrypted = std::collections::HashMap::new();
    let mut from_version = 0;
    loop {
        let page = s
            .audit()
            .read_family_history(s.request(v1::ReadFamilyHistoryRequest {
                family_id: args.family.clone(),
                from_version,
                max_count: 0,
            }))
            .await
            .context("ReadFamilyHistory")?
            .into_inner();
        positions.extend(page.events.iter().map(|e| e.position));
        for e in page.events {
            if let Some(event) = e.event {
                let event = keten_proto::convert::event_from_proto(event)
                    .map_err(|e| anyhow::anyhow!("the server's event: {e}"))?;
                decrypted.insert(e.position, keten_domain::encode(&event));
            }
        }
        match page.next_from_version {
            Some(v) => from_version = v,
            None => break,
        }
    }
    // Events committed after the checkpoint are not under it; the next export will have them.
    positions.retain(|&p| p < size);

    let mut events = Vec::with_capacity(positions.len());
    let mut stream = None;
    for position in positions {
        let proof = s
            .audit()
            .prove_inclusion(s.request(v1::ProveInclusionRequest {
                event: Some(v1::prove_inclusion_request::Event::Position(position)),
                tree_size: size,
            }))
            .await
            .with_context(|| format!("ProveInclusion of position {position}"))?
            .into_inner();
        let e = proof.event.context("the server sent no event")?;
        let inclusion_proof = proof
            .audit_path
            .iter()
            .map(|h| {
                <[u8; 32]>::try_from(h.as_slice())
                    .map_err(|_| anyhow::anyhow!("a proof hash of {} bytes", h.len()))
            })
            .collect::<Result<Vec<_>>>()?;
        stream.get_or_insert_with(|| e.stream.clone());
        events.push(BundleEvent {
            position: e.position,
            stream: e.stream,
            version: e.version,
            id: e.event_id.parse().context("the server's event id")?,
            event_type: e.event_type,
            committed_at: e.committed_at_micros,
            metadata: e.metadata,
            payload: e.payload,
            inclusion_proof,
        });
    }
    let plaintext = args.plaintext.then(|| {
        events
            .iter()
            .filter_map(|e| {
                decrypted
                    .remove(&e.position)
                    .map(|payload| PlaintextPayload {
                        position: e.position,
                        payload,
                    })
            })
            .collect()
    });
    Ok(Bundle {
        format: BUNDLE_FORMAT.to_owned(),
        version: BUNDLE_VERSION,
        stream: stream.unwrap_or_else(|| format!("family-{}", args.family)),
        checkpoint,
        events,
        plaintext,
    })
}

pub fn verify(args: AuditVerifyArgs) -> Result<()> {
    let key = keten_proof::load_verifying_key(&args.key)
        .with_context(|| format!("the public key {}", args.key.display()))?;
    let text = std::fs::read_to_string(&args.bundle)
        .with_context(|| format!("cannot read {}", args.bundle.display()))?;
    let bundle = Bundle::from_json(&text)
        .with_context(|| format!("{} is not a readable bundle", args.bundle.display()))?;
    let report = verify_bundle(&bundle, &key);
    println!("{report}");
    if !report.holds() {
        bail!("the bundle does not hold");
    }
    Ok(())
}

/// A checkpoint signing key pair, for `[proofs]` in the configuration.
pub fn keygen(args: KeygenArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let key_path = args.out.join("checkpoint.key");
    let pub_path = args.out.join("checkpoint.pub");
    let key = keten_proof::generate_signing_key()?;
    // `save_signing_key` refuses to overwrite: a new key would orphan every checkpoint signed.
    keten_proof::save_signing_key(&key_path, &key)
        .with_context(|| format!("not overwriting {}", key_path.display()))?;
    keten_proof::save_verifying_key(&pub_path, &key.verifying_key())?;
    println!(
        "wrote {} and {} (give auditors the .pub)",
        key_path.display(),
        pub_path.display()
    );
    Ok(())
}
