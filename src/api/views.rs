//! Saved views: `ListViews`, `PutView`, `DeleteView` and `/v1/views`. A
//! view is a name and the viewer's state (its URL's query string), kept in
//! the store as a document of kind `view`. A key limited to services sees,
//! saves and deletes only views of a service it may read.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use crate::access::{AccessError, Grant};
use crate::model::time;
use crate::proto::{
    DeleteViewRequest, DeleteViewResponse, ListViewsRequest, ListViewsResponse, PutViewRequest,
    View,
};
use crate::storage::{Document, Order};

/// The store's kind for views.
const KIND: &str = "view";
/// Most views a server keeps: listing reads them all.
pub const MAX_VIEWS: u32 = 1_000;
const MAX_NAME: usize = 100;
const MAX_STATE: usize = 4_096;

/// What the store keeps of a view besides its name.
#[derive(serde::Serialize, Deserialize)]
struct Body {
    state: String,
}

/// The service a view's state shows, if it names one.
fn service_of(state: &str) -> Option<String> {
    form_urlencoded::parse(state.as_bytes())
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.into_owned())
        .filter(|s| !s.is_empty())
}

/// Whether `grant` may see a view with `state`.
fn visible(grant: &Grant, state: &str) -> bool {
    grant.services().is_none() || service_of(state).is_some_and(|s| grant.check_read(&s).is_ok())
}

fn view_of(d: Document) -> Option<View> {
    let body: Body = serde_json::from_str(&d.body).ok()?;
    Some(View {
        name: d.name,
        state: body.state,
        updated_time: Some(time::from_micros(d.updated_us)),
    })
}

/// Every stored view, by name, whoever may see it.
async fn stored(state: &ApiState) -> Result<Vec<View>, ApiError> {
    let docs = (state.store)
        .documents(KIND, Order::OldestFirst, MAX_VIEWS)
        .await?;
    Ok(docs.into_iter().filter_map(view_of).collect())
}

/// Every view `grant` may see, by name.
pub async fn list_views(
    state: &ApiState,
    grant: &Grant,
    _req: ListViewsRequest,
) -> Result<ListViewsResponse, ApiError> {
    let mut views = stored(state).await?;
    views.retain(|v| visible(grant, &v.state));
    Ok(ListViewsResponse { views })
}

/// Saves `req.view`, replacing the view of the same name.
pub async fn put_view(
    state: &ApiState,
    grant: &Grant,
    req: PutViewRequest,
) -> Result<View, ApiError> {
    let view = req
        .view
        .ok_or_else(|| ApiError::invalid("view", "is required"))?;
    check_name(&view.name, "view.name")?;
    if view.state.len() > MAX_STATE {
        let n = view.state.len();
        return Err(ApiError::invalid(
            "view.state",
            format!("is {n} bytes, the limit is {MAX_STATE}"),
        ));
    }
    if grant.services().is_some() {
        let Some(service) = service_of(&view.state) else {
            return Err(AccessError::Denied(
                "a key limited to services saves only views of one of its services".into(),
            )
            .into());
        };
        grant.check_read(&service)?;
    }
    let existing = stored(state).await?;
    let old = existing.iter().find(|v| v.name == view.name);
    if old.is_none() && existing.len() >= MAX_VIEWS as usize {
        return Err(ApiError::invalid(
            "view.name",
            format!("there are already {MAX_VIEWS} views; delete one first"),
        ));
    }
    if old.is_some_and(|v| !visible(grant, &v.state)) {
        return Err(AccessError::Denied(format!(
            "view {:?} shows a service this key may not read",
            view.name
        ))
        .into());
    }
    let updated_us = time::now_micros();
    let body = serde_json::to_string(&Body {
        state: view.state.clone(),
    })
    .map_err(|e| ApiError::invalid("view.state", e.to_string()))?;
    state
        .store
        .put_document(Document {
            kind: KIND.into(),
            name: view.name.clone(),
            body,
            updated_us,
        })
        .await?;
    Ok(View {
        updated_time: Some(time::from_micros(updated_us)),
        ..view
    })
}

/// Deletes the view `req.name`; one `grant` may not see is not found.
pub async fn delete_view(
    state: &ApiState,
    grant: &Grant,
    req: DeleteViewRequest,
) -> Result<DeleteViewResponse, ApiError> {
    check_name(&req.name, "name")?;
    let missing = || ApiError::NotFound(format!("no view named {:?}", req.name));
    let view = (stored(state).await?.into_iter())
        .find(|v| v.name == req.name)
        .ok_or_else(missing)?;
    if !visible(grant, &view.state) {
        return Err(missing());
    }
    match state.store.delete_document(KIND, &req.name).await? {
        true => Ok(DeleteViewResponse {}),
        false => Err(missing()),
    }
}

fn check_name(name: &str, field: &str) -> Result<(), ApiError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME || name.trim() != name || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!(
                "must be 1 to {MAX_NAME} characters, without control characters or spaces at either end"
            ),
        ));
    }
    Ok(())
}

fn view_json(v: &View) -> Value {
    json!({
        "name": v.name,
        "state": v.state,
        "updatedTime": v.updated_time.as_ref().map(|t| time::rfc3339(time::to_micros(t))),
    })
}

/// `GET /v1/views`.
pub async fn list(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
) -> Result<Json<Value>, ApiError> {
    let resp = list_views(&state, &grant, ListViewsRequest {}).await?;
    let views: Vec<Value> = resp.views.iter().map(view_json).collect();
    Ok(Json(json!({ "views": views })))
}

/// The body of `PUT /v1/views/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    state: String,
}

/// `PUT /v1/views/{name}` with `{"state": "service=api&levels=ERROR"}`.
pub async fn put(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: PutBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(
            "state",
            format!("the body is not {{\"state\": \"...\"}}: {e}"),
        )
    })?;
    let req = PutViewRequest {
        view: Some(View {
            name,
            state: body.state,
            updated_time: None,
        }),
    };
    Ok(Json(view_json(&put_view(&state, &grant, req).await?)))
}

/// `DELETE /v1/views/{name}`: 204, or 404.
pub async fn delete(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    delete_view(&state, &grant, DeleteViewRequest { name }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_services_of_states() {
        assert_eq!(
            service_of("service=api&levels=ERROR").as_deref(),
            Some("api")
        );
        assert_eq!(service_of("q=x%26y&service=a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(service_of("levels=ERROR"), None);
        assert!(check_name("morning errors", "name").is_ok());
        for bad in ["", " x", "x ", "a\nb", &"x".repeat(101)] {
            assert!(check_name(bad, "name").is_err(), "{bad:?}");
        }
    }
}
