//! The middleware service: reads the clock, builds the policy's view of the request and
//! starts the check; [`ResponseFuture`] does the rest.

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use ratecore::policy::Request as PolicyRequest;

use crate::attributes::Head;
use crate::backend::{Ask, Backend, Checked, InProcess, Refused};
use crate::body::{BodyMode, Wrapped};
use crate::clock::Now;
use crate::future::ResponseFuture;
use crate::layer::Config;

/// A check as the service starts it.
#[allow(clippy::large_enum_variant)] // lives only while `call` runs: a box would cost each request an allocation
enum Started<F> {
    /// The backend answered at once.
    Answered(Result<Checked, Refused>),
    /// The backend's answer is to be awaited.
    Pending(F),
}

/// Applies a policy to every request before `S` sees it (see the crate docs).
///
/// `M` says how responses carry bodies: in a [`RateLimitBody`](crate::RateLimitBody)
/// ([`Wrapped`], the default) or in the inner service's own type
/// ([`InnerBody`](crate::InnerBody)).
#[derive(Debug)]
pub struct RateLimit<S, K = InProcess, M = Wrapped> {
    inner: S,
    config: Arc<Config<K>>,
    mode: PhantomData<fn() -> M>,
}

impl<S: Clone, K, M> Clone for RateLimit<S, K, M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            mode: PhantomData,
        }
    }
}

impl<S, K, M> RateLimit<S, K, M> {
    pub(crate) fn new(inner: S, config: Arc<Config<K>>) -> Self {
        Self {
            inner,
            config,
            mode: PhantomData,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, K, M, ReqB, ResB> Service<Request<ReqB>> for RateLimit<S, K, M>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    K: Backend,
    M: BodyMode<ResB>,
{
    type Response = Response<M::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB, K::Future, M>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqB>) -> Self::Future {
        let config = &*self.config;
        // An in-process backend has its answer at once: go on with it now, and the
        // service made ready by `poll_ready` is called at once, without a clone.
        let clock = &*config.clock;
        let decision = config.decision;
        let check = |view: &PolicyRequest<'_>, cost| {
            let ask = Ask { cost, decision };
            match config.backend.check_now(view, clock, ask) {
                Some(outcome) => Started::Answered(outcome),
                None => Started::Pending(config.backend.check(view, Now::read(clock), ask)),
            }
        };
        let check = if config.extractor.reads_parts() {
            let (parts, body) = request.into_parts();
            let check = config.extractor.with_parts(&parts, check);
            request = Request::from_parts(parts, body);
            check
        } else {
            config
                .extractor
                .with_head(Head::of(&request), None, 1, check)
        };
        let check = match check {
            Started::Pending(check) => check,
            Started::Answered(outcome) => {
                return ResponseFuture::decided(outcome, &mut self.inner, request)
            }
        };
        // The service made ready by `poll_ready` answers this request once the check
        // completes; the clone takes its place for the next one.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(check, ready, request)
    }
}
