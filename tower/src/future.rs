//! The response future: wait for the backend's answer (unless the service already has
//! it), then either answer a denial itself or call the inner service and add the headers
//! to its response.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::backend::{Checked, Denial, Refused};
use crate::body::{BodyMode, Wrapped};
use crate::decision::RateLimitDecision;
use crate::grpc;
use crate::headers::RateLimitHeaders;

pin_project! {
    /// The future of [`RateLimit`](crate::RateLimit)'s responses.
    pub struct ResponseFuture<S, ReqB, C, M = Wrapped>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: State<S, ReqB, C, S::Future>,
        mode: PhantomData<fn() -> M>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB, C, F> {
        /// Waiting for the backend (a remote one: an in-process answer is known when the
        /// service is called). Boxed: the future is moved and boxed by the layers around
        /// it, and a wait's state (the request, the backend's future) is the largest, so
        /// inline it would make every admitted request's future that large; a remote
        /// check's round trip dwarfs the allocation.
        Checking {
            waiting: Pin<Box<Waiting<S, ReqB, C>>>,
        },
        /// Admitted: the inner service is answering.
        Calling {
            #[pin]
            future: F,
            headers: RateLimitHeaders,
        },
        /// Not admitted: the layer answers itself (boxed, for the same reason; a denial
        /// allocates its body anyway).
        Answering {
            answer: Option<Box<Answer>>,
        },
        Done,
    }
}

pin_project! {
    /// A request waiting for the backend's answer.
    struct Waiting<S, ReqB, C> {
        #[pin]
        check: C,
        inner: Option<S>,
        request: Option<Request<ReqB>>,
    }
}

impl<S, ReqB, C, M> ResponseFuture<S, ReqB, C, M>
where
    S: Service<Request<ReqB>>,
{
    /// Waits for `check`, then calls `inner` (ready) if admitted.
    pub(crate) fn new(check: C, inner: S, request: Request<ReqB>) -> Self {
        Self {
            state: State::Checking {
                waiting: Box::pin(Waiting {
                    check,
                    inner: Some(inner),
                    request: Some(request),
                }),
            },
            mode: PhantomData,
        }
    }

    /// Goes on from a known `outcome`: calls `inner` (ready) now if admitted.
    pub(crate) fn decided(
        outcome: Result<Checked, Refused>,
        inner: &mut S,
        request: Request<ReqB>,
    ) -> Self {
        Self {
            state: decide(outcome, inner, request),
            mode: PhantomData,
        }
    }
}

/// The state after the check: the inner service called with the decision in the
/// request's extensions, or the layer's own answer.
fn decide<S, ReqB, C>(
    outcome: Result<Checked, Refused>,
    inner: &mut S,
    mut request: Request<ReqB>,
) -> State<S, ReqB, C, S::Future>
where
    S: Service<Request<ReqB>>,
{
    match outcome {
        Ok(Checked {
            decision,
            headers,
            denial: None,
        }) => {
            if let Some(decision) = decision {
                request.extensions_mut().insert(decision);
            }
            State::Calling {
                future: inner.call(request),
                headers,
            }
        }
        Ok(Checked {
            decision,
            headers,
            denial: Some(denial),
        }) => State::Answering {
            answer: Some(Box::new(Answer::Denied(
                decision,
                headers,
                *denial,
                grpc::is_grpc(request.headers()),
            ))),
        },
        Err(refused) => State::Answering {
            answer: Some(Box::new(Answer::Refused(
                refused,
                grpc::is_grpc(request.headers()),
            ))),
        },
    }
}

/// What the layer answers itself (`true`: to a gRPC request).
#[allow(clippy::large_enum_variant)] // boxed whole (`State::Answering`)
enum Answer {
    /// The policy's denial.
    Denied(Option<RateLimitDecision>, RateLimitHeaders, Denial, bool),
    /// A cost no limit can ever admit.
    Refused(Refused, bool),
}

impl<S, ReqB, ResB, C, M> Future for ResponseFuture<S, ReqB, C, M>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    C: Future<Output = Result<Checked, Refused>>,
    M: BodyMode<ResB>,
{
    type Output = Result<Response<M::Body>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Checking { waiting } => {
                    let waiting = waiting.as_mut().project();
                    let outcome = ready!(waiting.check.poll(cx));
                    let (inner, request) = (waiting.inner, waiting.request);
                    let (Some(mut inner), Some(request)) = (inner.take(), request.take()) else {
                        unreachable!("the check completes once");
                    };
                    let next = decide(outcome, &mut inner, request);
                    state.set(next);
                }
                StateProj::Calling { future, headers } => {
                    let response = ready!(future.poll(cx))?;
                    let mut response = response.map(M::inner);
                    std::mem::take(headers).add_missing_to(response.headers_mut());
                    state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Answering { answer } => {
                    let Some(answer) = answer.take() else {
                        unreachable!("the answer is taken once");
                    };
                    state.set(State::Done);
                    return Poll::Ready(Ok(match *answer {
                        Answer::Denied(decision, headers, denial, false) => {
                            denied::<ResB, M>(decision, headers, denial)
                        }
                        Answer::Denied(decision, headers, denial, true) => {
                            let message = grpc::message(denial.status);
                            let empty = M::denied(Bytes::new());
                            let mut response = grpc::denied(empty, denial.status, message, |map| {
                                headers.append_to(map);
                            });
                            insert(&mut response, decision);
                            response
                        }
                        Answer::Refused(refused, false) => never_fits::<ResB, M>(refused),
                        Answer::Refused(refused, true) => {
                            let message = refused.error.to_string();
                            grpc::denied(M::denied(Bytes::new()), refused.status, &message, |_| {})
                        }
                    }));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

/// The policy's denial: its status, headers, content type and body. Outer layers (logging,
/// metrics) see why in the response's extensions, a fault included.
fn denied<B, M: BodyMode<B>>(
    decision: Option<RateLimitDecision>,
    headers: RateLimitHeaders,
    denial: Denial,
) -> Response<M::Body> {
    let mut response = Response::new(M::denied(denial.body));
    *response.status_mut() = denial.status;
    let map = response.headers_mut();
    map.reserve(headers.len() + 1);
    headers.append_to(map);
    map.insert(CONTENT_TYPE, denial.content_type);
    insert(&mut response, decision);
    response
}

/// Puts `decision`, if the check built one, into `response`'s extensions.
fn insert<B>(response: &mut Response<B>, decision: Option<RateLimitDecision>) {
    if let Some(decision) = decision {
        response.extensions_mut().insert(decision);
    }
}

/// A request whose cost no limit can ever admit: the denial status without rate-limit
/// headers or `Retry-After` (no wait would help), and a sentence saying so.
fn never_fits<B, M: BodyMode<B>>(refused: Refused) -> Response<M::Body> {
    let body = Bytes::from(format!("{}\n", refused.error));
    let mut response = Response::new(M::denied(body));
    *response.status_mut() = refused.status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
