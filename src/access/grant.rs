//! What one request may do: the scopes and services of the key it came
//! with, or of anonymous access, or everything on an open server.

use std::sync::Arc;

use super::AccessError;
use super::meter::{Meter, Rates, StreamPermit};
use crate::model::Pattern;

/// What a key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scope {
    /// Store entries (every way in).
    Push,
    /// Query, tail, list, export, the viewer.
    Read,
    /// Everything, and `/metrics`.
    Admin,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Push => "push",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "push" => Ok(Scope::Push),
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope {other:?} (expected push, read or admin)"
            )),
        }
    }
}

/// The rights of one request. Cheap to clone: handlers receive it per
/// request.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The key's name (never the key), for messages and metrics.
    pub name: Arc<str>,
    /// Granted scopes; `admin` implies the others.
    scopes: Vec<Scope>,
    /// The services it covers; `None` for all.
    services: Option<Arc<[Pattern]>>,
    /// The key's own rates, over the server's defaults.
    pub rates: Rates,
    /// What the client has used (per key, or per address without one);
    /// `None` for the server's own sources, which are not limited.
    meter: Option<Arc<Meter>>,
}

impl Grant {
    pub fn new(name: &str, scopes: Vec<Scope>, services: Option<Vec<Pattern>>) -> Self {
        Grant {
            name: name.into(),
            scopes,
            services: services.map(Into::into),
            rates: Rates::default(),
            meter: None,
        }
    }

    /// The same rights with the key's own rates.
    pub fn with_rates(mut self, rates: Rates) -> Self {
        self.rates = rates;
        self
    }

    /// The same rights, counted against `meter`.
    pub fn metered(mut self, meter: Arc<Meter>) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Charges a batch to the client's rates.
    pub fn charge(&self, entries: usize, bytes: usize) -> Result<(), AccessError> {
        match &self.meter {
            Some(m) => m.charge(entries, bytes),
            None => Ok(()),
        }
    }

    /// Counts a tail stream against the caps while the permit lives.
    pub fn open_stream(&self) -> Result<Option<StreamPermit>, AccessError> {
        self.meter.as_ref().map(|m| m.open_stream()).transpose()
    }

    /// Everything: a server that requires no keys, and the sources inside
    /// the server (their configuration is the operator's).
    pub fn everything() -> Self {
        Grant::new("open", vec![Scope::Admin], None)
    }

    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// Whether it covers `service`.
    pub fn covers(&self, service: &str) -> bool {
        match &self.services {
            None => true,
            Some(p) => p.iter().any(|p| p.matches(service)),
        }
    }

    /// The service patterns it is limited to, if it is.
    pub fn services(&self) -> Option<&Arc<[Pattern]>> {
        self.services.as_ref()
    }

    /// Refuses reading `service` when it does not cover it.
    pub fn check_read(&self, service: &str) -> Result<(), AccessError> {
        match self.covers(service) {
            true => Ok(()),
            false => Err(AccessError::Denied(format!(
                "API key {:?} may not read service {service:?}",
                &*self.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_the_rest_and_services_limit() {
        let p = |s: &str| Pattern::parse(s).unwrap();
        let g = Grant::new("ci", vec![Scope::Push], Some(vec![p("api*")]));
        assert!(g.may(Scope::Push) && !g.may(Scope::Read) && !g.may(Scope::Admin));
        assert!(g.covers("api-1") && !g.covers("web"));
        assert!(g.check_read("api").is_ok());
        assert!(
            g.check_read("web")
                .unwrap_err()
                .to_string()
                .contains("\"web\"")
        );
        assert!(Grant::everything().may(Scope::Read));
        assert!(Grant::everything().covers("anything"));
    }
}
