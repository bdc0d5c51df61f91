//! The workload layer: what every controller whose pods run in built-in workload objects
//! shares. Labels and selectors ([`labels`]), cached label-filtered watches of the
//! children ([`cache`]) and the pods of each instance ([`index`]), why pods fail ([`pods`]), a Deployment's rollout ([`rollout`]),
//! the pure Deployment + Service plan ([`shape`]), the reconcile of a
//! Deployment-and-Service kind as a pipeline of shared steps ([`run`]), and the whole
//! controller of a kind that needs nothing more ([`mod@plain`]).
//!
//! A kind built on it keeps only its own spec → [`shape::Shape`] mapping, its status
//! mapping and any extra children; PodManager (bare pods) and Database (StatefulSet)
//! use the pieces that fit.

pub mod cache;
pub mod index;
pub mod labels;
pub mod plain;
pub mod pods;
pub mod rollout;
pub mod run;
pub mod shape;

pub use cache::{WorkloadCaches, controller, reflect, scoped_api};
pub use plain::{WorkloadReconciler, plain};
pub use run::{Observed, Run, Shared, Workload};
pub use shape::{Exposure, Owner, Plan, Shape};
