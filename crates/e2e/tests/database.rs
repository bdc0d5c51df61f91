//! PostgreSQL on a real node, run by the Database operator: it becomes Ready through the
//! operator's own probes, a client logs in with the generated Secret and writes a row,
//! the backup CronJob (run once as a Job) writes a dump, the restore procedure of
//! docs/user-guide.md brings the row back into a new Database, and a Database deleted
//! with the default `Retain` and created again still reads the row with its credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use webapp_e2e::cluster::{self, kubectl_run};
use webapp_e2e::namespace::{Job, Namespace};
use webapp_e2e::wait;

/// PostgreSQL's first start (initdb) and real probes; measured in docs/development.md.
const READY: Duration = Duration::from_secs(300);
/// The local postgres image is Debian's PostgreSQL 15 (docs/development.md, "Local
/// images"): the Databases here ask for the version that really runs.
const VERSION: &str = "15";
const POSTGRES_UID: i64 = 999;

fn database(name: &str, backups: bool) -> String {
    serde_json::json!({
        "apiVersion": "database.example.com/v1alpha1", "kind": "Database",
        "metadata": {"name": name},
        "spec": {"type": "postgresql", "version": VERSION, "storage": {"size": "1Gi"},
                 "backup": {"enabled": backups, "schedule": "0 2 * * *"}}
    })
    .to_string()
}

/// A psql client pod logged in with the Database's generated Secret (its `uri` key).
fn psql<'a>(name: &'a str, db: &str, script: &'a str) -> Job<'a> {
    Job {
        name,
        image: "postgres:15",
        script,
        env: vec![],
        secret_env: vec![("URI", format!("{db}-credentials"), "uri")],
        claims: vec![],
        run_as: POSTGRES_UID,
    }
}

#[test]
fn postgres_serves_backs_up_restores_and_keeps_its_data_and_password_under_retain() {
    let ns = Namespace::new("db").unwrap();
    let ns = ns.name.as_str();

    // Ready through the operator's own probes (pg_isready), on the generated password.
    cluster::apply(ns, &database("orders", true)).unwrap();
    wait::phase(ns, "database/orders", "Running", READY).unwrap();
    let password =
        kubectl_run(&["-n", ns, "get", "secret/orders-credentials", "-o", "jsonpath={.data.password}"]).unwrap();
    assert!(!password.is_empty());

    // A client logs in with the Secret, through the Service's DNS name, and writes a row.
    psql(
        "write",
        "orders",
        r#"psql "$URI" -v ON_ERROR_STOP=1 -c "create table items(name text)" -c "insert into items values ('kept')""#,
    )
    .run(ns)
    .unwrap();

    // The backup CronJob, run once now.
    kubectl_run(&["-n", ns, "create", "job", "--from=cronjob/orders-backup", "backup-now"]).unwrap();
    wait::until("the backup Job to complete", READY, || {
        let job = cluster::get(ns, "job/backup-now")?.ok_or("no job")?;
        if job.pointer("/status/failed").and_then(|f| f.as_i64()).unwrap_or(0) > 2 {
            return Err("the backup Job failed".into());
        }
        Ok((job.pointer("/status/succeeded").and_then(|s| s.as_i64()) == Some(1)).then_some(()))
    })
    .unwrap();
    let listing = Job {
        name: "list-backups",
        image: "postgres:15",
        script: "ls -1 /backup",
        env: vec![],
        secret_env: vec![],
        claims: vec![("orders-backup".into(), "/backup")],
        run_as: POSTGRES_UID,
    }
    .run(ns)
    .unwrap();
    assert!(listing.lines().any(|f| f.ends_with(".dump")), "no dump on the backup volume: {listing}");
    assert!(!listing.contains(".partial"), "a partial dump was left: {listing}");

    // Restore, as docs/user-guide.md says, into a new Database.
    cluster::apply(ns, &database("restored", false)).unwrap();
    wait::phase(ns, "database/restored", "Running", READY).unwrap();
    let restore = Job {
        name: "restore",
        image: "postgres:15",
        script: r#"set -e
dump=$(ls -1t /backup/*.dump | head -n 1)
pg_restore --no-owner --exit-on-error --dbname "$URI" "$dump"
psql "$URI" -tA -c "select name from items""#,
        env: vec![],
        secret_env: vec![("URI", "restored-credentials".into(), "uri")],
        claims: vec![("orders-backup".into(), "/backup")],
        run_as: POSTGRES_UID,
    }
    .run(ns)
    .unwrap();
    assert_eq!(restore.lines().last(), Some("kept"), "restore output: {restore}");

    // Deleted under the default Retain, created again: same data, same credentials.
    kubectl_run(&["-n", ns, "delete", "database/orders", "--wait=false"]).unwrap();
    wait::until("database/orders to be gone", Duration::from_secs(120), || {
        Ok(cluster::get(ns, "database/orders")?.is_none().then_some(()))
    })
    .unwrap();
    wait::until("the StatefulSet to be gone", Duration::from_secs(120), || {
        Ok(cluster::get(ns, "statefulset/orders")?.is_none().then_some(()))
    })
    .unwrap();
    cluster::apply(ns, &database("orders", true)).unwrap();
    wait::phase(ns, "database/orders", "Running", READY).unwrap();
    let again =
        kubectl_run(&["-n", ns, "get", "secret/orders-credentials", "-o", "jsonpath={.data.password}"]).unwrap();
    assert_eq!(again, password, "the re-created Database's password changed");
    let read = psql("read", "orders", r#"psql "$URI" -tA -c "select name from items""#).run(ns).unwrap();
    assert_eq!(read.trim(), "kept");
}
