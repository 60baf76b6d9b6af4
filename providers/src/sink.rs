//! Changefeed sinks (`kafka://`, `webhook-https://`, …).
//!
//! No sink is implemented yet: every probe answers [`Error::UnsupportedSink`].

use crate::{Config, Error, Target};

/// Connects and authenticates to the sink `target` names, then disconnects.
pub async fn probe(_config: &Config, target: &Target) -> Result<(), Error> {
    Err(Error::UnsupportedSink { scheme: target.scheme.clone() })
}
