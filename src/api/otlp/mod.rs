//! OpenTelemetry's logs protocol (OTLP), on the main port: gRPC
//! `LogsService/Export` ([`grpc`]) and OTLP/HTTP `POST /v1/logs` in protobuf
//! or JSON ([`http`]). Records become entries as [`map`] documents; refused
//! ones are reported through OTLP's `partial_success`, the rest stored.

pub mod grpc;
pub mod http;
pub mod map;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};

use super::ApiState;
use super::batch::{self, Outcome};
use super::error::ApiError;
use crate::access::Grant;

/// OTLP's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct OtlpArgs {
    /// The OTLP attribute whose value becomes the entry's tags (an array of
    /// strings, or one comma-separated string) instead of an attribute.
    #[arg(long, env = "TAILLIGHT_OTLP_TAGS_ATTRIBUTE", default_value = "tags")]
    pub otlp_tags_attribute: String,
}

/// Stores the valid records of `req` and waits until they are durable.
pub async fn export(
    state: &ApiState,
    grant: &Grant,
    req: ExportLogsServiceRequest,
) -> Result<Outcome, ApiError> {
    let mapped = map::request(req, &state.otlp.otlp_tags_attribute);
    let paths = mapped.paths;
    batch::push_valid(&state.intake, grant, mapped.items, |i| paths.path(i)).await
}

/// The answer OTLP expects: success, with `partial_success` naming what
/// was refused when something was.
pub fn response(outcome: &Outcome) -> ExportLogsServiceResponse {
    ExportLogsServiceResponse {
        partial_success: (!outcome.rejected.is_empty()).then(|| ExportLogsPartialSuccess {
            rejected_log_records: outcome.rejected.len() as i64,
            error_message: outcome.summary(),
        }),
    }
}
