//! Counting every HTTP response by route and status, as a tower layer
//! around each route. axum's `from_fn` would do the same in a few lines,
//! but clones and boxes the rest of the stack and boxes its own future on
//! every request, a tenth of what a single-event delivery costs outside
//! its handler.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use tower::{Layer, Service};

use crate::SharedState;
use crate::metrics::HttpLabels;

/// Wraps each route in [`CountResponses`].
#[derive(Clone)]
pub struct CountResponsesLayer {
    state: SharedState,
}

impl CountResponsesLayer {
    pub fn new(state: SharedState) -> Self {
        CountResponsesLayer { state }
    }
}

impl<S> Layer<S> for CountResponsesLayer {
    type Service = CountResponses<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountResponses {
            inner,
            state: self.state.clone(),
        }
    }
}

/// A route whose every response is counted in `http_responses`.
#[derive(Clone)]
pub struct CountResponses<S> {
    inner: S,
    state: SharedState,
}

impl<S> Service<Request> for CountResponses<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Shared (an `Arc<str>`): cloned, not copied.
        let route = request.extensions().get::<MatchedPath>().cloned();
        Counted {
            inner: self.inner.call(request),
            route,
            state: self.state.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A route's response, counted when it is ready.
    pub struct Counted<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
        state: SharedState,
    }
}

impl<F, E> Future for Counted<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
            let status = response.status();
            this.state
                .metrics
                .http
                .inc_by(route, status.as_u16(), 1, || HttpLabels {
                    route: route.to_owned(),
                    status: status.as_str().to_owned(),
                });
        }
        Poll::Ready(result)
    }
}
