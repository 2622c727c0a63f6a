//! The response future: wait for the backend's answer, then either answer a denial
//! itself or call the inner service and add the headers to its response.

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::backend::{Checked, Denial, Refused};
use crate::body::RateLimitBody;
use crate::grpc;

pin_project! {
    /// The future of [`RateLimit`](crate::RateLimit)'s responses.
    pub struct ResponseFuture<S, ReqB, C>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: State<S, ReqB, C, S::Future>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB, C, F> {
        /// Waiting for the backend (in-process: ready at the first poll).
        Checking {
            #[pin]
            check: C,
            inner: Option<S>,
            request: Option<Request<ReqB>>,
        },
        /// Admitted: the inner service is answering.
        Calling {
            #[pin]
            future: F,
            headers: Vec<(HeaderName, HeaderValue)>,
        },
        Done,
    }
}

impl<S, ReqB, C> ResponseFuture<S, ReqB, C>
where
    S: Service<Request<ReqB>>,
{
    pub(crate) fn new(check: C, inner: S, request: Request<ReqB>) -> Self {
        Self {
            state: State::Checking {
                check,
                inner: Some(inner),
                request: Some(request),
            },
        }
    }
}

impl<S, ReqB, ResB, C> Future for ResponseFuture<S, ReqB, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    C: Future<Output = Result<Checked, Refused>>,
{
    type Output = Result<Response<RateLimitBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Checking {
                    check,
                    inner,
                    request,
                } => {
                    let checked = ready!(check.poll(cx));
                    let grpc = request.as_ref().is_some_and(|r| grpc::is_grpc(r.headers()));
                    let checked = match checked {
                        Ok(checked) => checked,
                        Err(refused) => {
                            state.set(State::Done);
                            return Poll::Ready(Ok(never_fits(refused, grpc)));
                        }
                    };
                    if let Some(denial) = checked.denial {
                        state.set(State::Done);
                        let mut response = if grpc {
                            let message = grpc::message(denial.status);
                            grpc::denied(denial.status, message, checked.headers)
                        } else {
                            denied(denial, checked.headers)
                        };
                        // Outer layers (logging, metrics) see why, a fault included.
                        response.extensions_mut().insert(checked.decision);
                        return Poll::Ready(Ok(response));
                    }
                    let (Some(mut inner), Some(mut request)) = (inner.take(), request.take())
                    else {
                        unreachable!("the check completes once");
                    };
                    request.extensions_mut().insert(checked.decision);
                    let future = inner.call(request);
                    state.set(State::Calling {
                        future,
                        headers: checked.headers,
                    });
                }
                StateProj::Calling { future, headers } => {
                    let response = ready!(future.poll(cx))?;
                    let headers = mem::take(headers);
                    state.set(State::Done);
                    let mut response = response.map(RateLimitBody::inner);
                    let map = response.headers_mut();
                    for (name, value) in headers {
                        // A header the handler set itself is its to keep.
                        map.entry(name).or_insert(value);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

/// The policy's denial: its status, headers, content type and body.
fn denied<B>(
    denial: Denial,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Response<RateLimitBody<B>> {
    let mut response = Response::new(RateLimitBody::denied(denial.body));
    *response.status_mut() = denial.status;
    let map = response.headers_mut();
    map.reserve(headers.len() + 1);
    for (name, value) in headers {
        map.append(name, value);
    }
    map.insert(CONTENT_TYPE, denial.content_type);
    response
}

/// A request whose cost no limit can ever admit: the denial status without rate-limit
/// headers or `Retry-After` (no wait would help), and a sentence saying so.
fn never_fits<B>(refused: Refused, grpc: bool) -> Response<RateLimitBody<B>> {
    if grpc {
        return grpc::denied(refused.status, &refused.error.to_string(), []);
    }
    let body = Bytes::from(format!("{}\n", refused.error));
    let mut response = Response::new(RateLimitBody::denied(body));
    *response.status_mut() = refused.status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
