//! `keten dev-pki`: a throwaway PKI so that the quick start and the tests use real mutual TLS.
//!
//! Not for production: real partners carry PKIoverheid certificates, and the server only needs
//! the CA that signs them and their subject names in its configuration.

use anyhow::Result;
use keten::pki::write_pki;

use crate::cli::DevPkiArgs;
use crate::settings::load_config;

pub fn run(args: DevPkiArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    let mut names: Vec<(String, String)> = config
        .partners
        .iter()
        .map(|p| (p.id.to_string(), p.certificate.clone()))
        .collect();
    names.extend(args.extra_clients.iter().map(|cn| (cn.clone(), cn.clone())));
    write_pki(&args.out, &names)?;
    // The checkpoint signing key: `[proofs] signing_key` and `public_key` in the configuration;
    // auditors are given `checkpoint.pub`. Kept if it exists: a new key would orphan every
    // checkpoint signed so far.
    let key_path = args.out.join("checkpoint.key");
    if !key_path.exists() {
        let key = keten_proof::generate_signing_key()?;
        keten_proof::save_signing_key(&key_path, &key)?;
        keten_proof::save_verifying_key(&args.out.join("checkpoint.pub"), &key.verifying_key())?;
    }
    println!(
        "wrote a dev CA, a server certificate, {} client certificates and a checkpoint signing \
         key (checkpoint.key, checkpoint.pub) to {}",
        names.len(),
        args.out.display()
    );
    Ok(())
}
