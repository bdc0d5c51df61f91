//! webapp-bench: the WebApp operator against the control plane's own floor.
//!
//! One size per `run`: the *floor* (no operator; the bench creates the operator's
//! Deployments and Services itself and waits until they are Available), then the
//! *operator* (the release binary as its own process; the bench creates WebApps and
//! waits until they are Running, then forces a resync, times spec changes and restarts
//! it). Each contender gets a fresh namespace, deleted before the next starts. `growth`
//! turns the results of several sizes into a table and an SVG plot.
//!
//! [`fixture`] holds the objects, [`floor`] and [`measure`] the contenders, [`operator`]
//! the operator process, [`wait`] the watches, [`cluster`] the bench's own requests,
//! [`figures`] the results and their targets, [`growth`] the table and plot,
//! [`link_order`] the release binary's link order from profiles of it.

pub mod cli;
pub mod cluster;
pub mod control_plane;
pub mod error;
pub mod figures;
pub mod fixture;
pub mod floor;
pub mod growth;
pub mod link_order;
pub mod measure;
pub mod operator;
pub mod process;
pub mod spread;
pub mod wait;
