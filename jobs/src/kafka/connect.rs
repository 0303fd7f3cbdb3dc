//! A client for a source's brokers: plain TCP, TLS, SASL — as the spec's connection says.

use std::sync::Arc;

use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::spec::{KafkaConnection, SaslMechanism};

/// Connects to the brokers; the error says what failed (a missing password variable, an
/// unreadable CA file, a broker that does not answer).
pub async fn connect(connection: &KafkaConnection) -> Result<Client, String> {
    let mut builder = ClientBuilder::new(connection.bootstrap.clone()).client_id("medallion");
    if connection.security.tls() {
        builder = builder.tls_config(Arc::new(tls_config(connection.ca_file.as_deref())?));
    }
    if let Some(sasl) = &connection.sasl {
        let password = std::env::var(&sasl.password_env).map_err(|_| {
            format!(
                "environment variable `{}` (sasl_password_env) is not set on this process",
                sasl.password_env
            )
        })?;
        let credentials = Credentials::new(sasl.username.clone(), password);
        builder = builder.sasl_config(match sasl.mechanism {
            SaslMechanism::Plain => SaslConfig::Plain(credentials),
            SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(credentials),
            SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(credentials),
        });
    }
    builder
        .build()
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", connection.bootstrap.join(",")))
}

/// TLS trusting `ca_file`'s certificates, or the system's roots.
fn tls_config(ca_file: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read ssl_ca_file {path}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("ssl_ca_file {path}: {e}"))?;
                roots.add(cert).map_err(|e| format!("ssl_ca_file {path}: {e}"))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // A system certificate rustls cannot use is skipped, as browsers do.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
