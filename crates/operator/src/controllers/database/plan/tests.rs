use super::*;
use k8s_openapi::api::batch::v1::CronJob;
use proptest::prelude::*;
use serde_json::json;
use webapp_api::DatabaseSpec;

fn db(spec: serde_json::Value) -> Database {
    let spec: DatabaseSpec = serde_json::from_value(spec).unwrap();
    let mut db = Database::new("orders", spec);
    db.metadata.namespace = Some("shop".into());
    db.metadata.uid = Some("uid-1".into());
    db
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "database.example.com/v1alpha1".into(),
        kind: "Database".into(),
        name: "orders".into(),
        uid: "uid-1".into(),
        controller: Some(true),
        ..OwnerReference::default()
    }
}

fn seed() -> Database {
    db(json!({"type": "postgresql", "version": "13", "storage": {"size": "10Gi"},
        "backup": {"enabled": true, "schedule": "0 2 * * *"}}))
}

fn pod(children: &Children) -> PodSpec {
    children.statefulset.spec.clone().unwrap().template.spec.unwrap()
}

/// Secret name, key and `optional` of an env var read from a Secret.
type SecretRef = (String, String, Option<bool>);

fn env(container: &Container) -> Vec<(String, Option<String>, Option<SecretRef>)> {
    container
        .env
        .iter()
        .flatten()
        .map(|e| {
            let secret = e.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref());
            (e.name.clone(), e.value.clone(), secret.map(|s| (s.name.clone(), s.key.clone(), s.optional)))
        })
        .collect()
}

#[test]
fn the_seed_database_runs_the_official_image_with_its_env_conventions() {
    let children = desired(&seed(), owner(), &Live::default());
    let statefulset = &children.statefulset;
    let spec = statefulset.spec.as_ref().unwrap();
    assert_eq!(statefulset.metadata.name.as_deref(), Some("orders"));
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.service_name.as_deref(), Some("orders-headless"));
    let container = &pod(&children).containers[0];
    assert_eq!(container.image.as_deref(), Some("postgres:13"));
    assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 5432);
    let secret = |key: &str| Some(("orders-credentials".to_owned(), key.to_owned(), None));
    assert_eq!(
        env(container),
        [
            ("POSTGRES_USER".into(), None, secret("username")),
            ("POSTGRES_PASSWORD".into(), None, secret("password")),
            ("POSTGRES_DB".into(), None, secret("database")),
            ("PGDATA".into(), Some("/var/lib/postgresql/data/pgdata".into()), None),
        ]
    );
    let mounts = container.volume_mounts.as_ref().unwrap();
    assert_eq!((mounts[0].name.as_str(), mounts[0].mount_path.as_str()), ("data", "/var/lib/postgresql/data"));
    assert!(PGDATA.starts_with(&format!("{DATA_MOUNT}/")), "PGDATA is a subdirectory of the mount (lost+found)");
}

#[test]
fn probes_ask_pg_isready_over_tcp_and_stop_is_a_fast_shutdown() {
    let children = desired(&seed(), owner(), &Live::default());
    let container = &pod(&children).containers[0];
    for probe in [&container.readiness_probe, &container.liveness_probe, &container.startup_probe] {
        let command = probe.as_ref().unwrap().exec.as_ref().unwrap().command.clone().unwrap();
        assert_eq!(&command[..2], ["sh", "-c"]);
        assert_eq!(
            command[2],
            r#"exec pg_isready --host=127.0.0.1 --port=5432 --username="${POSTGRES_USER:-postgres}" --dbname="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}""#
        );
    }
    let startup = container.startup_probe.as_ref().unwrap();
    assert!(startup.period_seconds.unwrap() * startup.failure_threshold.unwrap() >= 600, "ten minutes to initialise");
    let stop = container.lifecycle.as_ref().unwrap().pre_stop.as_ref().unwrap().exec.as_ref().unwrap();
    assert!(stop.command.as_ref().unwrap()[2].contains("pg_ctl stop --pgdata=\"$PGDATA\" --mode=fast"));
    assert!(pod(&children).termination_grace_period_seconds.unwrap() > 50, "longer than pg_ctl's own timeout");
}

#[test]
fn the_server_runs_as_the_postgres_user_without_privileges() {
    let children = desired(&seed(), owner(), &Live::default());
    let pod = pod(&children);
    let security = pod.security_context.unwrap();
    assert_eq!((security.run_as_user, security.fs_group, security.run_as_non_root), (Some(999), Some(999), Some(true)));
    let container = &pod.containers[0];
    let container_security = container.security_context.as_ref().unwrap();
    assert_eq!(container_security.allow_privilege_escalation, Some(false));
    assert_eq!(container_security.read_only_root_filesystem, Some(true));
    assert_eq!(container_security.capabilities.as_ref().unwrap().drop.as_deref(), Some(&["ALL".to_owned()][..]));
    // What PostgreSQL writes outside its volume is writable.
    let mounts: Vec<&str> = container.volume_mounts.iter().flatten().map(|m| m.mount_path.as_str()).collect();
    assert!(mounts.contains(&"/var/run/postgresql") && mounts.contains(&"/tmp"), "{mounts:?}");
}

#[test]
fn the_claim_template_asks_for_the_spec_size_and_class_and_retains_volumes() {
    let db = db(json!({"type": "postgresql", "version": "16", "storage": {"size": "5Gi", "storageClassName": "fast"}}));
    let spec = desired(&db, owner(), &Live::default()).statefulset.spec.unwrap();
    let template = &spec.volume_claim_templates.as_ref().unwrap()[0];
    assert_eq!(template.metadata.name.as_deref(), Some("data"));
    let claim = template.spec.as_ref().unwrap();
    assert_eq!(claim.storage_class_name.as_deref(), Some("fast"));
    assert_eq!(claim.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0, "5Gi");
    let retention = spec.persistent_volume_claim_retention_policy.unwrap();
    assert_eq!((retention.when_deleted.as_deref(), retention.when_scaled.as_deref()), (Some("Retain"), Some("Retain")));
}

#[test]
fn an_existing_statefulset_keeps_its_claim_template_size() {
    // The claim template cannot change; growth goes to the claims themselves.
    let grown = db(json!({"type": "postgresql", "version": "16", "storage": {"size": "20Gi"}}));
    let live = Live { claim_template_size: Some("10Gi".into()) };
    let spec = desired(&grown, owner(), &live).statefulset.spec.unwrap();
    let claim = spec.volume_claim_templates.unwrap()[0].spec.clone().unwrap();
    assert_eq!(claim.resources.unwrap().requests.unwrap()["storage"].0, "10Gi");
    let statefulset = desired(&grown, owner(), &live).statefulset;
    assert_eq!(Live::of(Some(&statefulset)), live);
}

#[test]
fn services_are_headless_for_the_statefulset_and_cluster_ip_for_clients_selecting_only_the_server() {
    let children = desired(&seed(), owner(), &Live::default());
    let headless = children.headless.spec.unwrap();
    let service = children.service.spec.unwrap();
    assert_eq!(children.headless.metadata.name.as_deref(), Some("orders-headless"));
    assert_eq!((headless.cluster_ip.as_deref(), headless.type_.as_deref()), (Some("None"), None));
    assert_eq!(children.service.metadata.name.as_deref(), Some("orders"));
    assert_eq!(service.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(service.ports.unwrap()[0].port, 5432);
    let selector = service.selector.unwrap();
    assert_eq!(selector.get(COMPONENT).map(String::as_str), Some("server"), "backup pods are never endpoints");
    assert_eq!(headless.selector.unwrap(), selector);
    assert_eq!(endpoint(&seed()), "orders.shop.svc:5432");
}

#[test]
fn backups_are_a_forbid_cronjob_running_pg_dump_into_an_unowned_volume() {
    let children = desired(&seed(), owner(), &Live::default());
    let cronjob: CronJob = children.cronjob.unwrap();
    assert_eq!(cronjob.metadata.name.as_deref(), Some("orders-backup"));
    let spec = cronjob.spec.as_ref().unwrap();
    assert_eq!(spec.schedule, "0 2 * * *");
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    assert!(spec.successful_jobs_history_limit.is_some() && spec.failed_jobs_history_limit.is_some());
    let job = spec.job_template.spec.clone().unwrap();
    let template = job.template;
    assert_eq!(template.metadata.unwrap().labels.unwrap()[COMPONENT], "backup");
    let pod = template.spec.unwrap();
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some("postgres:13"), "pg_dump of the server's own version");
    assert!(container.command.as_ref().unwrap()[2].contains("pg_dump --format=custom"));
    let variables: Vec<String> = env(container).into_iter().map(|(name, ..)| name).collect();
    assert_eq!(variables, ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "BACKUP_RETAIN"]);
    assert_eq!(env(container)[0].1.as_deref(), Some("orders"));
    let volume = &pod.volumes.unwrap()[0];
    assert_eq!(volume.persistent_volume_claim.as_ref().unwrap().claim_name, "orders-backup");
    let claim = children.backup_claim.unwrap();
    assert_eq!(claim.metadata.name.as_deref(), Some("orders-backup"));
    assert!(claim.metadata.owner_references.is_none(), "the dumps outlive the Database");
    assert_eq!(
        claim.spec.unwrap().resources.unwrap().requests.unwrap()["storage"].0,
        "10Gi",
        "the data size by default"
    );
}

#[test]
fn disabled_backups_plan_no_cronjob_and_no_volume() {
    let db = db(json!({"type": "postgresql", "version": "16", "backup": {"enabled": false, "schedule": "@daily"}}));
    let children = desired(&db, owner(), &Live::default());
    assert!(children.cronjob.is_none() && children.backup_claim.is_none());
}

#[test]
fn a_users_secret_needs_only_a_password() {
    let db = db(json!({"type": "postgresql", "version": "16", "credentialsSecret": "mine"}));
    let children = desired(&db, owner(), &Live::default());
    let variables = env(&pod(&children).containers[0]);
    assert_eq!(variables[0].2, Some(("mine".into(), "username".into(), Some(true))));
    assert_eq!(variables[1].2, Some(("mine".into(), "password".into(), None)));
    assert_eq!(secret_name(&db), "mine");
}

#[test]
fn major_versions_of_image_tags() {
    for (version, expected) in
        [("13", "13"), ("16.4", "16"), ("16-alpine", "16"), ("9.6", "9.6"), ("9.6.24-alpine", "9.6")]
    {
        assert_eq!(major(version), expected, "{version}");
    }
}

fn any_spec() -> impl Strategy<Value = serde_json::Value> {
    (
        "[0-9]{1,3}(\\.[0-9]{1,2})?(-[a-z]{1,8})?|.{0,12}",
        "[0-9]{1,4}(Mi|Gi|Ti)?|.{0,6}",
        proptest::option::of("[a-z-]{1,20}"),
        any::<bool>(),
        proptest::option::of(".{0,20}"),
        proptest::option::of("[a-z0-9-]{1,30}"),
        1..1000i32,
    )
        .prop_map(|(version, size, class, enabled, schedule, secret, retain)| {
            json!({"type": "postgresql", "version": version,
                "storage": {"size": size, "storageClassName": class},
                "backup": {"enabled": enabled, "schedule": schedule, "retain": retain},
                "credentialsSecret": secret, "deletionPolicy": "Delete"})
        })
}

proptest! {
    /// No spec makes the planner panic, whatever the schema would have let through.
    #[test]
    fn no_spec_panics_the_planner(spec in any_spec(), name in "[a-z][a-z0-9-]{0,40}", live in proptest::option::of("[0-9]{1,3}Gi")) {
        let mut db = db(spec);
        db.metadata.name = Some(name.clone());
        let children = desired(&db, owner(), &Live { claim_template_size: live });
        prop_assert_eq!(children.statefulset.metadata.name.as_deref(), Some(name.as_str()));
        prop_assert_eq!(children.cronjob.is_some(), db.spec.backup.enabled && db.spec.backup.schedule.is_some());
        let _ = major(&db.spec.version);
    }
}
