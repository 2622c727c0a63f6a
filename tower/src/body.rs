//! The layer's response bodies: the inner service's body, untouched, or a denial's, in a
//! [`RateLimitBody`] ([`Wrapped`], the default) or in the inner body's own type
//! ([`InnerBody`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// Either the inner service's body, passed through frame by frame (never buffered
    /// or boxed), or the body of a response the layer wrote itself (a denial). Its
    /// error type is the inner body's.
    #[derive(Debug)]
    pub struct RateLimitBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        // What is left to send, as one frame.
        Own { data: Option<Bytes> },
    }
}

impl<B> RateLimitBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A body the layer wrote (empty bytes: an empty body).
    pub fn denied(data: Bytes) -> Self {
        Self {
            kind: Kind::Own {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }
}

impl<B> Body for RateLimitBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Own { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d.into())))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Own { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Own { data } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}

/// How a layer's responses carry their bodies: the inner service's body `B` or a body
/// the layer wrote (a denial's).
pub trait BodyMode<B> {
    /// The response body type.
    type Body;

    /// The inner service's body.
    fn inner(body: B) -> Self::Body;

    /// A body the layer wrote (empty bytes: an empty body).
    fn denied(data: Bytes) -> Self::Body;
}

/// Responses in a [`RateLimitBody`], for any inner body type (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct Wrapped;

/// Responses in the inner service's own body type, which a denial's body converts into
/// with `From<Bytes>` (axum's `Body`, `http_body_util::Full<Bytes>`): no wrapper for the
/// server to box once more (a layer's
/// [`inner_body`](crate::RateLimitLayer::inner_body)).
#[derive(Clone, Copy, Debug, Default)]
pub struct InnerBody;

impl<B> BodyMode<B> for Wrapped {
    type Body = RateLimitBody<B>;

    fn inner(body: B) -> Self::Body {
        RateLimitBody::inner(body)
    }

    fn denied(data: Bytes) -> Self::Body {
        RateLimitBody::denied(data)
    }
}

impl<B: From<Bytes>> BodyMode<B> for InnerBody {
    type Body = B;

    fn inner(body: B) -> B {
        body
    }

    fn denied(data: Bytes) -> B {
        B::from(data)
    }
}
