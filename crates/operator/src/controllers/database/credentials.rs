//! The generated credentials Secret: a password from the operating system's CSPRNG,
//! the user and database names, and a ready-to-use `uri`. Made once by a create (never
//! an apply, which would rewrite it), never read back, never logged: [`Password`] has
//! no `Display` and a redacted `Debug`, and the Secret is built only to be sent.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use webapp_api::Database;

use super::plan::{self, APP, DEFAULT_USER, PORT, keys};
use reconcile_kit::workload::labels::child_labels;

/// Letters and digits: no character needs escaping in a URI, a shell or a connection
/// string. 32 of them carry 190 bits.
const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A generated password. Deliberately not printable.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The operating system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

impl Password {
    /// Characters in a generated password.
    pub const LENGTH: usize = 32;

    /// A new password from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        Self::from_source(|buffer| getrandom::fill(buffer).map_err(|e| RandomError(e.to_string())))
    }

    /// A password from the random bytes `fill` writes. Each character is one byte below
    /// 248 (= 4 × 62) taken modulo 62, and bytes from 248 up are dropped, so every
    /// character is equally likely.
    pub fn from_source(mut fill: impl FnMut(&mut [u8]) -> Result<(), RandomError>) -> Result<Self, RandomError> {
        let mut password = String::with_capacity(Self::LENGTH);
        let mut buffer = [0u8; 64];
        while password.len() < Self::LENGTH {
            fill(&mut buffer)?;
            for byte in buffer.iter().filter(|b| **b < 248) {
                if password.len() == Self::LENGTH {
                    break;
                }
                password.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
            }
        }
        Ok(Password(password))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

/// Why Database `name` cannot start on the data kept in volume `claim`: its credentials
/// are gone, and how to get going again.
pub fn missing(name: &str, claim: &str) -> String {
    let secret = plan::generated_secret_name(name);
    format!(
        "volume {claim} holds the data of a Database named {name}, but its credentials Secret {secret} is gone; \
         PostgreSQL keeps the password it was initialised with, so the operator makes no new one: restore the \
         Secret {secret} (keys {}, {}, ...) from your copy (or re-create the Database with spec.credentialsSecret naming \
         a Secret that holds that password), or delete the volume {claim} to start empty",
        keys::USERNAME,
        keys::PASSWORD,
    )
}

/// Why a Secret of the generated Secret's name `secret` blocks a Database whose data
/// volume is new: the operator may not read it, so it cannot tell whose it is.
pub fn in_the_way(secret: &str) -> String {
    format!(
        "Secret {secret} already exists, and this Database's data volume is new: a Secret left by a deleted \
         Database of this name goes with it within seconds (the garbage collector takes it); otherwise delete or \
         rename it (the operator never reads, changes or deletes a Secret), or name a Secret of yours in \
         spec.credentialsSecret"
    )
}

/// The generated Secret of `db`, owned by `owners`: the Database (its controller) and its
/// data volume, which keeps it as long as the data lasts (see `super::kept`).
pub fn secret(db: &Database, owners: Vec<OwnerReference>, password: &Password) -> Secret {
    let name = db.name_any();
    let host = plan::host(db);
    let uri = format!("postgresql://{DEFAULT_USER}:{}@{host}:{PORT}/{DEFAULT_USER}", password.expose());
    let entries = [
        (keys::USERNAME, DEFAULT_USER.to_owned()),
        (keys::PASSWORD, password.expose().to_owned()),
        (keys::DATABASE, DEFAULT_USER.to_owned()),
        (keys::HOST, host),
        (keys::PORT, PORT.to_string()),
        (keys::URI, uri),
    ];
    let data: BTreeMap<String, ByteString> =
        entries.into_iter().map(|(key, value)| (key.to_owned(), ByteString(value.into_bytes()))).collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(plan::generated_secret_name(&name)),
            namespace: db.namespace(),
            labels: Some(child_labels(APP, &name)),
            owner_references: Some(owners),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webapp_api::DatabaseSpec;

    fn db() -> Database {
        let spec: DatabaseSpec =
            serde_json::from_value(serde_json::json!({"type": "postgresql", "version": "16"})).unwrap();
        let mut db = Database::new("orders", spec);
        db.metadata.namespace = Some("shop".into());
        db
    }

    fn text(secret: &Secret, key: &str) -> String {
        String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
    }

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_different() {
        let a = Password::generate().unwrap();
        let b = Password::generate().unwrap();
        assert_eq!(a.expose().len(), Password::LENGTH);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()), "URI-safe");
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn a_password_never_prints() {
        let password = Password::generate().unwrap();
        let shown = format!("{password:?}");
        assert!(!shown.contains(password.expose()) && shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn bytes_above_the_last_full_alphabet_are_dropped_not_folded() {
        // 248..=255 would favour the first eight letters; they are skipped.
        let mut calls = 0;
        let password = Password::from_source(|buffer| {
            calls += 1;
            buffer.fill(if calls == 1 { 250 } else { 63 });
            Ok(())
        })
        .unwrap();
        assert_eq!(password.expose(), "B".repeat(Password::LENGTH));
        assert_eq!(calls, 2);
    }

    #[test]
    fn the_secret_holds_user_database_host_port_and_a_ready_uri() {
        let password = Password::from_source(|b| {
            b.fill(0);
            Ok(())
        })
        .unwrap();
        let owner =
            OwnerReference { name: "orders".into(), uid: "u1".into(), controller: Some(true), ..Default::default() };
        let secret = secret(&db(), vec![owner], &password);
        assert_eq!(secret.metadata.name.as_deref(), Some("orders-credentials"));
        assert_eq!(secret.metadata.owner_references.as_ref().unwrap()[0].uid, "u1", "it goes with the Database");
        let keys: Vec<&str> = secret.data.as_ref().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["database", "host", "password", "port", "uri", "username"]);
        assert_eq!(text(&secret, "host"), "orders.shop.svc");
        assert_eq!(text(&secret, "port"), "5432");
        assert_eq!((text(&secret, "username"), text(&secret, "database")), ("postgres".into(), "postgres".into()));
        let pw = "A".repeat(32);
        assert_eq!(text(&secret, "uri"), format!("postgresql://postgres:{pw}@orders.shop.svc:5432/postgres"));
    }
}
