//! One conversion webhook per cluster, kept in place.
//!
//! The PodManager CRD is cluster-wide, so its conversion webhook can point at one
//! installation only. Each release says who it is (its [`Target`]); the CRD carries the
//! owner in the annotation [`OWNER`]. A release writes its client config only into a CRD
//! that is free, already its own, or held by a release that is gone (its Service no
//! longer exists). It never takes over a live release's webhook: it logs why, reports
//! `webhook_conversion_owner 0`, and leaves the conversions to that release (they are
//! stateless: any release's webhook converts every tenant's objects). A development run
//! (a URL target: `make run`, the tests) is not protected: a release or a newer run takes
//! the webhook over, and a run that was taken over leaves it (two runs never fight).
//!
//! The owner keeps the CRD right: it watches that one CRD and writes again whenever a
//! re-apply, a GitOps sync or a chart upgrade reset the client config (and only then).

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use webapp_api::PodManager;

use super::certs;
use super::crd::{self, Target};
use super::{NamespacedName, WebhookError};

/// The annotation of the PodManager CRD naming the installation its webhook points at.
pub const OWNER: &str = "apps.mycompany.com/conversion-webhook-owner";

/// CAs the bundle keeps: ours, and the ones before it (replicas still serving a
/// certificate they signed during a rotation).
pub const BUNDLE_SIZE: usize = 3;

/// How often a release that does not own the webhook checks whether the owner is gone.
pub const RECHECK: Duration = Duration::from_secs(20);

/// What a release may do with the CRD's webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// No owner, or this release: write the client config when it differs.
    Ours,
    /// Another release's Service: ours only if that Service is gone.
    HeldBy(NamespacedName),
    /// A development run's URL: taken over at start, left alone afterwards.
    Development(String),
}

/// The owner identity of `target`, as the annotation holds it.
pub fn identity(target: &Target) -> String {
    match target {
        // The CRD of config/ already names the default Service: the owner is that Service.
        Target::Keep => {
            let (namespace, name) = webapp_api::podmanager::WEBHOOK_SERVICE;
            format!("service:{namespace}/{name}")
        }
        Target::Service(service) => format!("service:{service}"),
        Target::Url(url) => format!("url:{url}"),
    }
}

/// Who may write the CRD's webhook, given its owner annotation and `ours`.
pub fn claim(annotation: Option<&str>, ours: &str) -> Claim {
    let Some(owner) = annotation.filter(|owner| *owner != ours && !owner.is_empty()) else {
        return Claim::Ours;
    };
    match owner.split_once(':') {
        Some(("service", service)) => match service.parse::<NamespacedName>() {
            Ok(service) => Claim::HeldBy(service),
            // Not a name a release writes: nobody's.
            Err(_) => Claim::Ours,
        },
        Some(("url", url)) => Claim::Development(url.to_owned()),
        _ => Claim::Ours,
    }
}

/// The CRD's current CA bundle (PEM), empty when it has none.
fn bundle_of(crd: &CustomResourceDefinition) -> String {
    let config = crd.spec.conversion.as_ref().and_then(|c| c.webhook.as_ref()).and_then(|w| w.client_config.as_ref());
    let bundle = config.and_then(|c| c.ca_bundle.as_ref()).map(|b| b.0.clone()).unwrap_or_default();
    String::from_utf8(bundle).unwrap_or_default()
}

/// Whether `crd` already carries `ours` with `target`'s address and a bundle that trusts
/// `ca_pem`, so that nothing needs writing.
pub fn up_to_date(crd: &CustomResourceDefinition, ours: &str, ca_pem: &str, target: &Target) -> bool {
    let owned = crd.annotations().get(OWNER).map(String::as_str) == Some(ours);
    let config = crd.spec.conversion.as_ref().and_then(|c| c.webhook.as_ref()).and_then(|w| w.client_config.as_ref());
    let Some(config) = config else { return false };
    let bundle = certs::trusted_by(ca_pem, &bundle_of(crd));
    let address = match target {
        Target::Keep => config.service.is_some(),
        Target::Service(service) => {
            config.url.is_none()
                && config.service.as_ref().is_some_and(|s| {
                    s.namespace == service.namespace
                        && s.name == service.name
                        && s.path.as_deref() == Some(webapp_api::podmanager::CONVERT_PATH)
                        && s.port == Some(443)
                })
        }
        Target::Url(url) => config.service.is_none() && config.url.as_deref() == Some(url.as_str()),
    };
    owned && bundle && address
}

/// Whether this process owns the CRD's webhook (1) or leaves it to another release (0).
#[derive(Clone, Debug, Default)]
pub struct OwnerMetric(Gauge);

impl OwnerMetric {
    /// Registers `webhook_conversion_owner`.
    pub fn register(registry: &mut Registry) -> Self {
        let gauge = Gauge::default();
        registry.register(
            "webhook_conversion_owner",
            "Whether this release's webhook is the one the PodManager CRD calls (1) or another live release's (0)",
            gauge.clone(),
        );
        OwnerMetric(gauge)
    }
}

/// Keeps the CRD's webhook pointing at this release, if it may: once now (returning
/// whether it owns it), then for as long as `stop` has not resolved, on every change of
/// the CRD and, while another release owns it, every [`RECHECK`].
pub struct Registrar {
    client: Client,
    /// The CA of the certificate served now (renewals change it).
    ca_pem: std::sync::Mutex<String>,
    target: Target,
    ours: String,
    metric: OwnerMetric,
}

impl Registrar {
    /// A registrar of `target` with the CA bundle `ca_pem`.
    pub fn new(client: Client, ca_pem: String, target: Target, metric: OwnerMetric) -> Self {
        let ours = identity(&target);
        Registrar { client, ca_pem: std::sync::Mutex::new(ca_pem), target, ours, metric }
    }

    /// The CA of the certificate served now.
    fn ca(&self) -> String {
        self.ca_pem.lock().map(|ca| ca.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// A renewed certificate's CA: added to the CRD's bundle (the previous one stays, for
    /// the replicas still serving it) before the server presents it.
    pub async fn publish(&self, ca_pem: &str) -> Result<(), WebhookError> {
        match self.ca_pem.lock() {
            Ok(mut ca) => *ca = ca_pem.to_owned(),
            Err(poisoned) => *poisoned.into_inner() = ca_pem.to_owned(),
        }
        self.sync(false).await.map(|_| ())
    }

    /// One look at the CRD: writes the client config if this release may and it differs.
    /// Returns whether this release owns the webhook now. A development run's webhook
    /// is taken over `at_start` only, and by a release at any time: a run taken over by
    /// a newer one leaves it.
    pub async fn sync(&self, at_start: bool) -> Result<bool, WebhookError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let name = PodManager::crd_name();
        let crd = api.get(name).await.map_err(|e| WebhookError::Crd(crate::cli::error_chain(&e)))?;
        let owner = crd.annotations().get(OWNER).map(String::as_str);
        let may = match claim(owner, &self.ours) {
            Claim::Ours => true,
            Claim::Development(url) if at_start || !self.ours.starts_with("url:") => {
                tracing::info!(crd = name, previous = %url, "taking the conversion webhook over from a development run");
                true
            }
            Claim::Development(url) => {
                tracing::info!(crd = name, now = %url, "the conversion webhook was taken over by a newer run; leaving it");
                false
            }
            Claim::HeldBy(service) => match self.live(&service).await {
                Some(true) | None => {
                    self.refuse(&service);
                    false
                }
                Some(false) => {
                    tracing::warn!(crd = name, previous = %service, "the release owning the conversion webhook is gone; taking it over");
                    true
                }
            },
        };
        let ca = self.ca();
        if may && !up_to_date(&crd, &self.ours, &ca, &self.target) {
            // A bundle left by another owner is not carried over: only our own CAs.
            let previous =
                if crd.annotations().get(OWNER) == Some(&self.ours) { bundle_of(&crd) } else { String::new() };
            let bundle = certs::merge_bundle(&ca, &previous, BUNDLE_SIZE);
            crd::register(&self.client, &bundle, &self.target, &self.ours).await?;
        }
        self.metric.0.set(i64::from(may));
        Ok(may)
    }

    /// Whether the release behind `service` is still installed: its Service exists.
    /// `None` when this release may not look (a namespace-scoped install).
    async fn live(&self, service: &NamespacedName) -> Option<bool> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &service.namespace);
        match api.get_opt(&service.name).await {
            Ok(found) => Some(found.is_some()),
            Err(error) => {
                tracing::debug!(%service, error = %crate::cli::error_chain(&error), "cannot tell whether the owner is live");
                None
            }
        }
    }

    fn refuse(&self, service: &NamespacedName) {
        tracing::warn!(
            crd = PodManager::crd_name(),
            owner = %service,
            ours = %self.ours,
            "the conversion webhook belongs to another live release: leaving it (its webhook converts this \
             release's PodManagers too); to hand it over, uninstall that release or remove the CRD annotation {OWNER}"
        );
    }

    /// Watches the CRD until `stop` resolves, syncing on every change and, while another
    /// release owns the webhook, every [`RECHECK`].
    pub async fn keep(self: std::sync::Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let config = watcher::Config::default().fields(&format!("metadata.name={}", PodManager::crd_name()));
        let changes = watcher(api, config).default_backoff().applied_objects();
        let mut changes = std::pin::pin!(changes);
        let mut stop = std::pin::pin!(stop);
        let mut owned = true;
        loop {
            let recheck = async {
                if owned { futures::future::pending::<()>().await } else { tokio::time::sleep(RECHECK).await }
            };
            tokio::select! {
                _ = &mut stop => return,
                change = changes.next() => match change {
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::warn!(error = %error, "watch of the PodManager CRD failed; retrying");
                        continue;
                    }
                    None => return,
                },
                _ = recheck => {}
            }
            match self.sync(false).await {
                Ok(now) => owned = now,
                Err(error) => tracing::warn!(%error, "could not keep the conversion webhook registered"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(namespace: &str, name: &str) -> Target {
        Target::Service(NamespacedName { namespace: namespace.into(), name: name.into() })
    }

    #[test]
    fn a_release_owns_a_free_crd_or_its_own_and_never_a_live_release_s() {
        let ours = identity(&service("team-a", "a-webhook"));
        assert_eq!(ours, "service:team-a/a-webhook");
        assert_eq!(claim(None, &ours), Claim::Ours);
        assert_eq!(claim(Some(""), &ours), Claim::Ours);
        assert_eq!(claim(Some(&ours), &ours), Claim::Ours);
        let theirs = identity(&service("team-b", "b-webhook"));
        assert_eq!(
            claim(Some(&theirs), &ours),
            Claim::HeldBy(NamespacedName { namespace: "team-b".into(), name: "b-webhook".into() })
        );
        let local = identity(&Target::Url("https://127.0.0.1:9443/convert".into()));
        assert_eq!(claim(Some(&local), &ours), Claim::Development("https://127.0.0.1:9443/convert".into()));
        assert_eq!(claim(Some("garbage"), &ours), Claim::Ours, "not an owner any release writes");
    }

    #[test]
    fn only_a_crd_with_our_owner_bundle_and_address_is_up_to_date() {
        let target = service("team-a", "a-webhook");
        let ours = identity(&target);
        let crd = |owner: &str, bundle: &str, config: serde_json::Value| -> CustomResourceDefinition {
            let mut config = config;
            config["caBundle"] = serde_json::to_value(k8s_openapi::ByteString(bundle.as_bytes().to_vec())).unwrap();
            serde_json::from_value(json!({
                "metadata": {"name": "podmanagers.apps.mycompany.com", "annotations": {OWNER: owner}},
                "spec": {"group": "apps.mycompany.com", "scope": "Namespaced", "versions": [],
                    "names": {"plural": "podmanagers", "kind": "PodManager"},
                    "conversion": {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
                        "clientConfig": config}}}
            }))
            .unwrap()
        };
        let address = json!({"service": {"namespace": "team-a", "name": "a-webhook", "path": "/convert", "port": 443}});
        let [ca, old] = [1, 2].map(|_| certs::self_signed(&["localhost".into()], certs::DEFAULT_LIFE).unwrap().ca_pem);
        let both = certs::merge_bundle(&ca, &old, BUNDLE_SIZE);
        assert!(up_to_date(&crd(&ours, &ca, address.clone()), &ours, &ca, &target));
        assert!(up_to_date(&crd(&ours, &both, address.clone()), &ours, &old, &target), "a replica not renewed yet");
        assert!(!up_to_date(&crd(&ours, &old, address.clone()), &ours, &ca, &target), "another bundle");
        assert!(!up_to_date(&crd("someone", &ca, address), &ours, &ca, &target), "another owner");
        let reset = json!({"service": {"namespace": "webapp-operator-system", "name": "webapp-operator-webhook",
            "path": "/convert", "port": 443}});
        assert!(!up_to_date(&crd(&ours, &ca, reset), &ours, &ca, &target), "reset by a re-apply");
    }
}
