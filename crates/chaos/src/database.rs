//! What a Database's children must show besides its server's image: both Services
//! (port 5432 to 5432, selecting the server's pod only, the headless one without a
//! cluster IP), the credentials Secret (labelled for it, kept by its data claim, and
//! controlled by it or by nothing), the data claim, and the backup CronJob exactly when
//! `spec.backup` is enabled, at its schedule and the server's image, with its claim.
//!
//! The expectations are written out here from the user guide, not taken from the
//! operator's plan: a plan that drifted from the contract must not agree with itself.
//! The checker reads the Secret's metadata through the admin kubeconfig; the operator's
//! own role cannot read Secrets.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::kinds::Kind;
use crate::listed::{Listed, controller, labelled, name};

/// The port PostgreSQL serves on, and both Services expose.
pub const PORT: i32 = 5432;

/// One line per difference between the children of Database `db` (uid `uid`) and `spec`.
pub fn differences(db: &str, uid: &str, spec: &Value, listed: &Listed) -> Vec<String> {
    let mut out = Vec::new();
    let controlled = |meta: &ObjectMeta| controller(meta).is_some_and(|r| r.kind == "Database" && r.uid == uid);
    let selector: BTreeMap<String, String> = [
        ("app.kubernetes.io/name", "database"),
        ("app.kubernetes.io/instance", db),
        ("app.kubernetes.io/component", "server"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (service, headless) in [(db.to_owned(), false), (format!("{db}-headless"), true)] {
        let Some(found) = listed.services.iter().find(|s| name(&s.metadata) == service) else {
            out.push(format!("Service {service} is missing"));
            continue;
        };
        if !controlled(&found.metadata) {
            out.push(format!("Service {service} is not controlled by it"));
        }
        let spec = found.spec.clone().unwrap_or_default();
        let ports: Vec<(i32, Option<IntOrString>, Option<String>)> =
            spec.ports.iter().flatten().map(|p| (p.port, p.target_port.clone(), p.protocol.clone())).collect();
        let wanted = vec![(PORT, Some(IntOrString::Int(PORT)), Some("TCP".to_owned()))];
        if ports != wanted {
            out.push(format!("Service {service}: ports {ports:?}, want {wanted:?}"));
        }
        if spec.selector.as_ref() != Some(&selector) {
            out.push(format!("Service {service}: selector {:?}, want {selector:?}", spec.selector));
        }
        if (spec.cluster_ip.as_deref() == Some("None")) != headless {
            out.push(format!("Service {service}: cluster IP {:?}, want it headless: {headless}", spec.cluster_ip));
        }
    }
    let data_claim = format!("data-{db}-0");
    let claim = listed.claims.iter().find(|c| name(&c.metadata) == data_claim);
    let claim_uid = claim.and_then(|c| c.metadata.uid.as_deref());
    if claim.is_none_or(|c| labelled(&c.metadata) != Some((Kind::Database, db.to_owned()))) {
        out.push(format!("its data claim {data_claim} is missing or not labelled for it"));
    }
    let secret = format!("{db}-credentials");
    match listed.secrets.iter().find(|s| name(&s.metadata) == secret) {
        None => out.push(format!("Secret {secret} is missing")),
        Some(found) => {
            if labelled(&found.metadata) != Some((Kind::Database, db.to_owned())) {
                out.push(format!("Secret {secret}: labels {:?} do not name it", found.metadata.labels));
            }
            let owners = found.metadata.owner_references.iter().flatten();
            if !owners.clone().any(|r| Some(r.uid.as_str()) == claim_uid) {
                out.push(format!("Secret {secret} is not kept by its data claim {data_claim}"));
            }
            if controller(&found.metadata).is_some_and(|_| !controlled(&found.metadata)) {
                out.push(format!("Secret {secret} is controlled by another object"));
            }
        }
    }
    let backup = format!("{db}-backup");
    let enabled = spec.pointer("/backup/enabled").and_then(Value::as_bool) == Some(true);
    let cronjob = listed.cronjobs.iter().find(|c| name(&c.metadata) == backup);
    match (enabled, cronjob) {
        (false, Some(_)) => out.push(format!("CronJob {backup} exists, but backups are disabled")),
        (false, None) => {}
        (true, None) => out.push(format!("CronJob {backup} is missing, but backups are enabled")),
        (true, Some(found)) => {
            if !controlled(&found.metadata) {
                out.push(format!("CronJob {backup} is not controlled by it"));
            }
            let schedule = spec.pointer("/backup/schedule").and_then(Value::as_str).unwrap_or_default();
            // `spec` is optional in the 1.34 API the client is built against.
            let found_schedule = found.spec.as_ref().map_or("", |s| s.schedule.as_str());
            if found_schedule != schedule {
                out.push(format!("CronJob {backup}: schedule {found_schedule:?}, want {schedule:?}"));
            }
            let image = found
                .spec
                .as_ref()
                .and_then(|s| s.job_template.spec.as_ref())
                .and_then(|j| j.template.spec.as_ref())
                .and_then(|p| p.containers.first())
                .and_then(|c| c.image.clone());
            let version = spec.get("version").and_then(Value::as_str).unwrap_or_default();
            if image.as_deref() != Some(format!("postgres:{version}").as_str()) {
                out.push(format!(
                    "CronJob {backup}: image {image:?}, want postgres:{version} (pg_dump as new as the server)"
                ));
            }
            if !listed.claims.iter().any(|c| name(&c.metadata) == backup) {
                out.push(format!("its backup claim {backup} is missing, but backups are enabled"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec};
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service, ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use serde_json::json;

    use super::*;
    use crate::listed::fixtures::{controlled_by, meta};

    fn service(name: &str, headless: bool) -> Service {
        let selector = [
            ("app.kubernetes.io/name", "database"),
            ("app.kubernetes.io/instance", "db"),
            ("app.kubernetes.io/component", "server"),
        ];
        Service {
            metadata: meta(name, Kind::Database, "db", vec![controlled_by("Database", "db", "u")]),
            spec: Some(ServiceSpec {
                cluster_ip: headless.then(|| "None".into()),
                selector: Some(selector.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()),
                ports: Some(vec![ServicePort {
                    port: 5432,
                    target_port: Some(IntOrString::Int(5432)),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    fn cronjob(schedule: &str) -> CronJob {
        let mut cronjob = CronJob {
            metadata: meta("db-backup", Kind::Database, "db", vec![controlled_by("Database", "db", "u")]),
            spec: Some(CronJobSpec { schedule: schedule.into(), ..CronJobSpec::default() }),
            status: None,
        };
        let template =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "backup", "image": "postgres:16"}]}}}});
        cronjob.spec.as_mut().unwrap().job_template = serde_json::from_value(template).unwrap();
        cronjob
    }

    /// The children of Database `db` (uid `u`) at version 16 with backups at `@yearly`.
    fn converged() -> Listed {
        let mut data = meta("data-db-0", Kind::Database, "db", vec![]);
        data.uid = Some("claim".into());
        let keeper = OwnerReference { kind: "PersistentVolumeClaim".into(), uid: "claim".into(), ..Default::default() };
        let owners = vec![controlled_by("Database", "db", "u"), keeper];
        Listed {
            services: vec![service("db", false), service("db-headless", true)],
            secrets: vec![Secret {
                metadata: meta("db-credentials", Kind::Database, "db", owners),
                ..Default::default()
            }],
            cronjobs: vec![cronjob("@yearly")],
            claims: vec![
                PersistentVolumeClaim { metadata: data, ..Default::default() },
                PersistentVolumeClaim {
                    metadata: meta("db-backup", Kind::Database, "db", vec![]),
                    ..Default::default()
                },
            ],
            ..Listed::default()
        }
    }

    fn spec(backup: bool) -> Value {
        json!({"version": "16", "backup": {"enabled": backup, "schedule": "@yearly"}})
    }

    #[test]
    fn children_that_match_show_no_difference() {
        assert_eq!(differences("db", "u", &spec(true), &converged()), Vec::<String>::new());
    }

    #[test]
    fn a_service_port_or_selector_off_is_a_difference() {
        let mut listed = converged();
        listed.services[0].spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 5433;
        listed.services[1].spec.as_mut().unwrap().selector.as_mut().unwrap().remove("app.kubernetes.io/component");
        let found = differences("db", "u", &spec(true), &listed);
        assert_eq!(found.len(), 2, "{found:?}");
        listed.services.pop();
        assert!(differences("db", "u", &spec(true), &listed).iter().any(|d| d.contains("db-headless is missing")));
    }

    #[test]
    fn a_headless_service_with_a_cluster_ip_is_a_difference() {
        let mut listed = converged();
        listed.services[1].spec.as_mut().unwrap().cluster_ip = Some("10.0.0.1".into());
        assert_eq!(differences("db", "u", &spec(true), &listed).len(), 1);
    }

    #[test]
    fn the_cronjob_exists_exactly_when_backups_are_enabled_at_their_schedule() {
        let listed = converged();
        assert_eq!(
            differences("db", "u", &spec(false), &listed),
            ["CronJob db-backup exists, but backups are disabled"]
        );
        let mut other = converged();
        other.cronjobs = vec![cronjob("0 3 1 1 *")];
        assert_eq!(differences("db", "u", &spec(true), &other).len(), 1, "another schedule");
        other.cronjobs.clear();
        assert_eq!(differences("db", "u", &spec(true), &other).len(), 1, "no CronJob");
        assert!(differences("db", "u", &spec(false), &other).is_empty());
    }

    #[test]
    fn the_secret_must_exist_labelled_and_kept_by_the_data_claim() {
        let mut listed = converged();
        listed.secrets[0].metadata.owner_references.as_mut().unwrap().pop();
        assert_eq!(differences("db", "u", &spec(true), &listed).len(), 1, "not kept by the claim");
        listed.secrets[0].metadata.labels.as_mut().unwrap().insert("app.kubernetes.io/instance".into(), "x".into());
        assert_eq!(differences("db", "u", &spec(true), &listed).len(), 2, "labelled for another");
        listed.secrets.clear();
        assert_eq!(differences("db", "u", &spec(true), &listed), ["Secret db-credentials is missing"]);
    }

    #[test]
    fn a_secret_kept_from_an_earlier_database_of_the_name_is_its_own() {
        // Re-created on retained data: the Secret is kept by the claim, controlled by nothing.
        let mut listed = converged();
        listed.secrets[0].metadata.owner_references.as_mut().unwrap().remove(0);
        assert!(differences("db", "u", &spec(true), &listed).is_empty());
        listed.secrets[0].metadata.owner_references.as_mut().unwrap().push(controlled_by("Database", "db", "old"));
        assert_eq!(differences("db", "u", &spec(true), &listed).len(), 1, "controlled by the predecessor");
    }
}
