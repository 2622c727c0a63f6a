//! The middleware service: reads the clock, builds the policy's view of the request and
//! starts the check; [`ResponseFuture`] does the rest.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::{Request, Response};
use tower_service::Service;

use crate::backend::{Backend, InProcess};
use crate::body::RateLimitBody;
use crate::clock::Now;
use crate::future::ResponseFuture;
use crate::layer::Config;

/// Applies a policy to every request before `S` sees it (see the crate docs).
#[derive(Debug)]
pub struct RateLimit<S, K = InProcess> {
    inner: S,
    config: Arc<Config<K>>,
}

impl<S: Clone, K> Clone for RateLimit<S, K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S, K> RateLimit<S, K> {
    pub(crate) fn new(inner: S, config: Arc<Config<K>>) -> Self {
        Self { inner, config }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, K, ReqB, ResB> Service<Request<ReqB>> for RateLimit<S, K>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    K: Backend,
{
    type Response = Response<RateLimitBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB, K::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let config = &*self.config;
        let now = Now::read(&*config.clock);
        let (parts, body) = request.into_parts();
        let mut check = config
            .extractor
            .with_request(&parts, |view, cost| config.backend.check(view, now, cost));
        let request = Request::from_parts(parts, body);
        // An in-process check has its answer already: go on with it now, and the service
        // made ready by `poll_ready` is called at once, without a clone. (Should it be
        // pending after all, its first real poll registers the caller's waker.)
        if config.backend.ready_at_once() {
            let mut noop = Context::from_waker(Waker::noop());
            if let Poll::Ready(outcome) = Pin::new(&mut check).poll(&mut noop) {
                return ResponseFuture::decided(outcome, &mut self.inner, request);
            }
        }
        // The service made ready by `poll_ready` answers this request once the check
        // completes; the clone takes its place for the next one.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(check, ready, request)
    }
}
