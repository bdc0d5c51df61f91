//! webapp-operator: the controllers of the WebApp family and the manager that runs them.
//!
//! Layout: [`cli`] parses flags, [`admission`] renders the finalizer policy, [`crdgen`] renders the CustomResourceDefinitions,
//! [`manager`] runs the controllers (leader election, metrics, health, shutdown) and
//! [`controllers`] holds one module per kind, each a thin I/O shell around a pure plan,
//! and [`webhook`] serves PodManager's CRD conversion over HTTPS.

pub mod admission;
pub mod cli;
pub mod controllers;
pub mod crdgen;
pub mod manager;
pub mod telemetry;
pub mod webhook;
