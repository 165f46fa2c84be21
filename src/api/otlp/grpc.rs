//! `opentelemetry.proto.collector.logs.v1.LogsService` over gRPC, gzip
//! requests included.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::api::ApiState;
use crate::api::auth::grant_of;

pub struct OtlpLogs {
    state: Arc<ApiState>,
}

/// The service, taking messages up to `max` bytes once decompressed.
pub fn server(state: Arc<ApiState>, max: usize) -> LogsServiceServer<OtlpLogs> {
    LogsServiceServer::new(OtlpLogs { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max)
}

#[tonic::async_trait]
impl LogsService for OtlpLogs {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let grant = grant_of(&req)?;
        let outcome = super::export(&self.state, &grant, req.into_inner()).await?;
        Ok(Response::new(super::response(&outcome)))
    }
}
