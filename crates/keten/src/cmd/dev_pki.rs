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
    println!(
        "wrote a dev CA, a server certificate and {} client certificates to {}",
        names.len(),
        args.out.display()
    );
    Ok(())
}
