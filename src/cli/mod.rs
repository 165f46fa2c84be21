//! Client commands: push, tail, query, services, which use the same gRPC API
//! as every other client; keys, which manages the keys file; and restore, which writes an archive back into the
//! store itself.

pub mod keys;
pub mod output;
pub mod push;
pub mod query;
pub mod restore;
pub mod services;
pub mod tail;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::model::json::RecordOut;
use crate::model::{level, time};
use crate::proto::log_service_client::LogServiceClient;
use crate::proto::{LogFilter, LogRecord};

/// Client flags shared by push, tail, query and services.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The taillight server.
    #[arg(
        long,
        env = "TAILLIGHT_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// API key, sent as `authorization: Bearer KEY` (see `taillight keys`).
    #[arg(long, env = "TAILLIGHT_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// PEM CA certificate the server's TLS certificate must chain to (for
    /// a private CA; `https://` servers are otherwise checked against the
    /// system's roots).
    #[arg(long, env = "TAILLIGHT_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate, for a server that asks for one
    /// (--tls-client-ca); needs --client-key.
    #[arg(long, env = "TAILLIGHT_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "TAILLIGHT_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// The client of every command: the key, if given, on every call.
pub type Client = LogServiceClient<InterceptedService<Channel, WithKey>>;

/// Adds the API key to each request.
#[derive(Clone)]
pub struct WithKey(Option<MetadataValue<Ascii>>);

impl Interceptor for WithKey {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot reach {server}: {source}")]
    Connect {
        server: String,
        source: tonic::transport::Error,
    },
    #[error("{}", .0.message())]
    Rpc(#[from] tonic::Status),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub async fn connect(args: &ClientArgs) -> Result<Client, CliError> {
    let key = match &args.key {
        None => None,
        Some(k) => Some(
            format!("Bearer {}", k.trim())
                .parse()
                .map_err(|_| CliError::Usage("--key: not a valid API key".into()))?,
        ),
    };
    let mut endpoint = Channel::from_shared(args.server.clone())
        .map_err(|e| CliError::Usage(format!("--server {:?}: {e}", args.server)))?;
    if args.server.starts_with("https://") {
        endpoint = endpoint
            .tls_config(tls(args)?)
            .map_err(|e| CliError::Usage(format!("TLS: {e}")))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| CliError::Connect {
            server: args.server.clone(),
            source,
        })?;
    Ok(LogServiceClient::with_interceptor(channel, WithKey(key))
        .max_decoding_message_size(64 << 20))
}

/// The TLS settings of an `https://` server: its CA, the client's
/// certificate.
fn tls(args: &ClientArgs) -> Result<ClientTlsConfig, CliError> {
    let read = |flag: &str, path: &PathBuf| {
        std::fs::read(path).map_err(|e| CliError::Usage(format!("{flag} {}: {e}", path.display())))
    };
    let mut tls = ClientTlsConfig::new().with_native_roots();
    if let Some(ca) = &args.ca_cert {
        tls = tls.ca_certificate(Certificate::from_pem(read("--ca-cert", ca)?));
    }
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        tls = tls.identity(Identity::from_pem(
            read("--client-cert", cert)?,
            read("--client-key", key)?,
        ));
    }
    Ok(tls)
}

/// Filter flags shared by tail and query.
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only these services (repeat or comma-separate).
    #[arg(long, short = 's', env = "TAILLIGHT_SERVICE", value_delimiter = ',')]
    pub service: Vec<String>,
    /// Only this level and above (trace, debug, info, warn, error, fatal).
    #[arg(long, short = 'l', env = "TAILLIGHT_MIN_LEVEL", value_parser = parse_level)]
    pub level: Option<i32>,
    /// Only entries with any of these tags (repeat or comma-separate).
    #[arg(long, short = 't', env = "TAILLIGHT_TAG", value_delimiter = ',')]
    pub tag: Vec<String>,
    /// Only messages containing this text (case-insensitive).
    #[arg(long, short = 'g', env = "TAILLIGHT_GREP")]
    pub grep: Option<String>,
}

impl FilterArgs {
    pub fn to_proto(&self) -> LogFilter {
        LogFilter {
            services: self.service.clone(),
            min_level: self.level.unwrap_or(0),
            tags: self.tag.clone(),
            text: self.grep.clone().unwrap_or_default(),
            ..Default::default()
        }
    }
}

pub fn parse_level(s: &str) -> Result<i32, String> {
    level::parse(s)
        .map(|l| l as i32)
        .ok_or_else(|| format!("{s:?} is not a level (trace, debug, info, warn, error, fatal)"))
}

/// How records are printed.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub color: bool,
    pub json: bool,
}

impl Printer {
    pub fn new(json: bool, no_color: bool) -> Self {
        let color =
            !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
        Printer { color, json }
    }

    pub fn line(&self, r: &LogRecord) -> String {
        if self.json {
            return serde_json::to_string(&RecordOut::from(r)).unwrap_or_default();
        }
        let ts = r
            .time
            .as_ref()
            .map(|t| time::rfc3339(time::to_micros(t)))
            .unwrap_or_default();
        let lvl = level::name(r.level);
        let tags = if r.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", r.tags.join(","))
        };
        let mut attrs: Vec<_> = r.attributes.iter().collect();
        attrs.sort();
        let attrs: String = attrs.iter().map(|(k, v)| format!(" {k}={v}")).collect();
        if !self.color {
            return format!("{ts} {lvl:<5} {}{tags} {}{attrs}", r.service, r.message);
        }
        let c = match lvl {
            "TRACE" | "DEBUG" => "\x1b[2m",
            "INFO" => "\x1b[32m",
            "WARN" => "\x1b[33m",
            "ERROR" => "\x1b[31m",
            "FATAL" => "\x1b[1;31m",
            _ => "",
        };
        format!(
            "\x1b[2m{ts}\x1b[0m {c}{lvl:<5}\x1b[0m \x1b[36m{}\x1b[0m{tags} {}\x1b[2m{attrs}\x1b[0m",
            r.service, r.message
        )
    }
}
