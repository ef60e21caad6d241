//! The HTTP side of the refusal throttle (`crate::throttle`): while some user is penalized,
//! a request bearing a token is held before its body is read until its user's turn. The
//! refusals themselves are counted by the handlers, which know the request's session.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::auth::{parse_authorization, Credentials};
use crate::error::{ApiError, ErrorCode};
use crate::throttle::Admission;

/// Holds a penalized user's request until its turn; every other request passes at once. Only
/// tokens are looked at (one HMAC, and only while someone is penalized): Basic credentials
/// cost an argon2 verification, which the brute-force limit and the blocking pool bound.
pub(super) async fn admit_refused_users(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let throttle = state.connections.refusals();
    if !throttle.anyone_penalized() {
        return next.run(request).await;
    }
    let value = request.headers().get(header::AUTHORIZATION);
    let credentials = parse_authorization(value.map(|v| v.as_bytes()));
    let session = match credentials {
        Ok(credentials @ Credentials::Bearer(_)) => state.auth.authenticate(&credentials).ok(),
        _ => None,
    };
    let Some(session) = session else {
        return next.run(request).await;
    };
    match throttle.admit(session.user()) {
        Admission::Now => next.run(request).await,
        Admission::After(wait) => {
            tracing::debug!(user = %session.user(), wait_ms = wait.as_millis(), "request held: its user's requests keep being refused");
            tokio::time::sleep(wait).await;
            next.run(request).await
        }
        Admission::RefuseAfter(wait) => {
            tokio::time::sleep(wait).await;
            let message = "this user's requests keep being refused for exceeding limits; \
                           they are served more slowly until that stops";
            ApiError::new(ErrorCode::Overloaded, message).into_response()
        }
    }
}
