//! `taillight.v1.LogService` over gRPC (and gRPC-web, by the layer in front).

use std::pin::Pin;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::auth::grant_of;
use super::error::{ApiError, FieldViolation, with_accepted};
use super::tail::{self, TailParams};
use super::{ApiState, alerts, context, histogram, query, views};
use crate::proto::log_service_server::LogService;
use crate::proto::{
    DeleteViewRequest, DeleteViewResponse, ListAlertFiringsRequest, ListAlertFiringsResponse,
    ListViewsRequest, ListViewsResponse, PutViewRequest, View,
};
use crate::proto::{
    GetContextRequest, GetContextResponse, GetHistogramRequest, GetHistogramResponse,
    ListServicesRequest, ListServicesResponse, ListTagsRequest, ListTagsResponse, PushLogRequest,
    PushLogResponse, PushLogsRequest, PushLogsResponse, QueryLogsRequest, QueryLogsResponse,
    TailRequest, TailResponse,
};
use crate::queue::{Durable, QueueError};

/// Submissions of one PushLogs stream awaiting durability at once: enough to
/// keep the writer's batches full, few enough to bound memory per stream.
const MAX_IN_FLIGHT: usize = 16;

pub struct LogApi {
    pub state: Arc<ApiState>,
}

type TailStream = Pin<Box<dyn Stream<Item = Result<TailResponse, Status>> + Send>>;

#[tonic::async_trait]
impl LogService for LogApi {
    async fn push_log(
        &self,
        req: Request<PushLogRequest>,
    ) -> Result<Response<PushLogResponse>, Status> {
        let grant = grant_of(&req)?;
        let entry = req
            .into_inner()
            .entry
            .ok_or_else(|| ApiError::invalid("entry", "is required"))?;
        let p = self
            .state
            .intake
            .prepare_for(&grant, vec![entry], true)
            .map_err(ApiError::from)?;
        if let Some((_, v)) = p.invalid.into_iter().next() {
            return Err(ApiError::Invalid {
                violations: vec![v.within("entry")],
                accepted: None,
            }
            .into());
        }
        self.state
            .intake
            .push(p.entries)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(PushLogResponse {}))
    }

    async fn push_logs(
        &self,
        req: Request<Streaming<PushLogsRequest>>,
    ) -> Result<Response<PushLogsResponse>, Status> {
        let grant = grant_of(&req)?;
        let mut stream = req.into_inner();
        let mut pending = Pending::new();
        // Entries seen so far in the stream, so violations name a stream-wide index.
        let mut seen: u64 = 0;
        loop {
            let msg = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                // A frame that does not decode is the client's fault, and
                // what came before it is stored: said with the count, so a
                // retrying client does not store it twice.
                Err(e) if e.code() == tonic::Code::Internal => {
                    let accepted = pending.settle_all().await?;
                    return Err(ApiError::Invalid {
                        violations: vec![FieldViolation::new(
                            format!("entries[{seen}]"),
                            format!(
                                "the stream's next message is not a PushLogsRequest: {}",
                                e.message()
                            ),
                        )],
                        accepted: Some(accepted),
                    }
                    .into());
                }
                Err(e) => {
                    pending.settle_all().await?;
                    return Err(e);
                }
            };
            let n = msg.entries.len() as u64;
            let p = match self.state.intake.prepare_for(&grant, msg.entries, true) {
                Ok(p) => p,
                // Refused whole (a service the key may not push to, over
                // its rate): what came before is stored, and said so.
                Err(e) => {
                    let accepted = pending.settle_all().await?;
                    return Err(with_accepted(ApiError::from(e).into(), accepted));
                }
            };
            if !p.entries.is_empty() {
                let count = p.entries.len() as u64;
                match self.state.intake.submit(p.entries).await {
                    Ok(durable) => pending.push(count, durable),
                    Err(e) => {
                        pending.settle_all().await?;
                        return Err(ApiError::from(e).into());
                    }
                }
            }
            if let Some((i, v)) = p.invalid.into_iter().next() {
                let accepted = pending.settle_all().await?;
                return Err(ApiError::Invalid {
                    violations: vec![v.within(&format!("entries[{}]", seen + i as u64))],
                    accepted: Some(accepted),
                }
                .into());
            }
            seen += n;
            while pending.in_flight() >= MAX_IN_FLIGHT {
                pending.settle_one().await?;
            }
        }
        let accepted = pending.settle_all().await?;
        Ok(Response::new(PushLogsResponse { accepted }))
    }

    type TailStream = TailStream;

    async fn tail(&self, req: Request<TailRequest>) -> Result<Response<Self::TailStream>, Status> {
        let grant = grant_of(&req)?;
        let params = TailParams::from_request(&grant, req.into_inner(), self.state.heartbeat)?;
        let stream = tail::stream(&self.state, params)
            .map(|r| r.map_err(|e| Status::from(ApiError::from(e))));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn query_logs(
        &self,
        req: Request<QueryLogsRequest>,
    ) -> Result<Response<QueryLogsResponse>, Status> {
        Ok(Response::new(
            query::query_logs(&self.state, &grant_of(&req)?, req.into_inner()).await?,
        ))
    }

    async fn get_histogram(
        &self,
        req: Request<GetHistogramRequest>,
    ) -> Result<Response<GetHistogramResponse>, Status> {
        Ok(Response::new(
            histogram::get_histogram(&self.state, &grant_of(&req)?, req.into_inner()).await?,
        ))
    }

    async fn get_context(
        &self,
        req: Request<GetContextRequest>,
    ) -> Result<Response<GetContextResponse>, Status> {
        Ok(Response::new(
            context::get_context(&self.state, &grant_of(&req)?, req.into_inner()).await?,
        ))
    }

    async fn list_views(
        &self,
        req: Request<ListViewsRequest>,
    ) -> Result<Response<ListViewsResponse>, Status> {
        Ok(Response::new(
            views::list_views(&self.state, &grant_of(&req)?, req.into_inner()).await?,
        ))
    }

    async fn put_view(&self, req: Request<PutViewRequest>) -> Result<Response<View>, Status> {
        Ok(Response::new(
            views::put_view(&self.state, &grant_of(&req)?, req.into_inner()).await?,
        ))
    }

    async fn delete_view(
        &self,
        req: Request<DeleteViewRequest>,
    ) -> Result<Response<DeleteViewResponse>, Status> {
        Ok(Response::new(
            views::delete_view(&self.state, &grant_of(&req)?, req.into_inner()).await?,
        ))
    }

    async fn list_alert_firings(
        &self,
        req: Request<ListAlertFiringsRequest>,
    ) -> Result<Response<ListAlertFiringsResponse>, Status> {
        Ok(Response::new(
            alerts::list_firings(&self.state, &grant_of(&req)?, req.into_inner()).await?,
        ))
    }

    async fn list_services(
        &self,
        req: Request<ListServicesRequest>,
    ) -> Result<Response<ListServicesResponse>, Status> {
        let services = self.state.services(&grant_of(&req)?).await?;
        Ok(Response::new(ListServicesResponse { services }))
    }

    async fn list_tags(
        &self,
        req: Request<ListTagsRequest>,
    ) -> Result<Response<ListTagsResponse>, Status> {
        let grant = grant_of(&req)?;
        let service = req.into_inner().service;
        self.state
            .intake
            .limits()
            .check_service(&service)
            .map_err(ApiError::from_violation)?;
        let tags = self.state.tags(&grant, service).await?;
        Ok(Response::new(ListTagsResponse { tags }))
    }
}

/// Submissions of one stream waiting to become durable, in order.
struct Pending {
    futures: FuturesOrdered<BoxFuture<'static, (u64, Result<(), QueueError>)>>,
    /// Entries of the submissions that already became durable.
    accepted: u64,
}

impl Pending {
    fn new() -> Self {
        Pending {
            futures: FuturesOrdered::new(),
            accepted: 0,
        }
    }

    fn push(&mut self, count: u64, durable: Durable) {
        self.futures
            .push_back(async move { (count, durable.await) }.boxed());
    }

    fn in_flight(&self) -> usize {
        self.futures.len()
    }

    async fn settle_one(&mut self) -> Result<(), Status> {
        if let Some((n, r)) = self.futures.next().await {
            r.map_err(ApiError::from)?;
            self.accepted += n;
        }
        Ok(())
    }

    /// Waits for everything submitted; the count of durable entries.
    async fn settle_all(&mut self) -> Result<u64, Status> {
        while !self.futures.is_empty() {
            self.settle_one().await?;
        }
        Ok(self.accepted)
    }
}
