//! Bodies stream through the layer: 100 MB up and 100 MB down, frame by frame, on a
//! plain hyper 1 server (no axum) with the peer given as a `PeerAddr` extension. Each
//! body is generated 64 KiB at a time as it is polled and counted frame by frame on
//! arrival (hyper hands over at most its read buffer, a few hundred KiB), so no side
//! ever holds the body; the many frames show nothing collected it on the way, and the
//! response's body type is the handler's own, inside `RateLimitBody` by default and
//! unwrapped with `inner_body()` (nothing boxed either way).

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use ratecore_tower::{
    BodyMode, InProcess, InnerBody, PeerAddr, RateLimitBody, RateLimitDecision, RateLimitLayer,
    Wrapped,
};
use tower::{service_fn, Layer};

const CHUNK: usize = 64 * 1024;
const TOTAL: usize = 100 * 1000 * 1000;

/// `left` bytes as a stream of frames of (up to) `chunk`, made as they are polled.
struct Chunks {
    chunk: Bytes,
    left: usize,
}

/// One frame of `bytes` (how the layer answers a denial in this body type).
impl From<Bytes> for Chunks {
    fn from(bytes: Bytes) -> Self {
        Self {
            left: bytes.len(),
            chunk: bytes,
        }
    }
}

impl Chunks {
    fn new(total: usize) -> Self {
        Self {
            chunk: Bytes::from(vec![b'x'; CHUNK]),
            left: total,
        }
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len());
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left as u64)
    }
}

/// Reads `body` frame by frame, keeping only counts, and asserts that all [`TOTAL`] bytes
/// came, in pieces (the `what` was streamed, not gathered into one frame).
async fn assert_streamed<B: Body + Unpin>(mut body: B, what: &str)
where
    B::Error: std::fmt::Debug,
{
    let (mut bytes, mut frames) = (0, 0);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            bytes += bytes::Buf::remaining(&data);
            frames += 1;
        }
    }
    assert_eq!(bytes, TOTAL, "the {what}'s length");
    assert!(
        frames > 100,
        "the {what} arrived in pieces: {frames} frames"
    );
}

/// Ten per second per client IP.
fn policy() -> String {
    let limit = common::limit_block("per-ip", "client_ip", "deny", "gcra", 10, "1s");
    format!("[[rule]]\nname = \"uploads\"\n{limit}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_streamed_body_passes_through_both_ways() {
    // The response body is the handler's own type, wrapped, not boxed.
    let _: fn(RateLimitBody<Chunks>) -> <Wrapped as BodyMode<Chunks>>::Body = |body| body;
    streams_through(layer()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_streamed_body_passes_through_in_the_inner_body_type() {
    // The response body is the handler's own type itself.
    let _: fn(Chunks) -> <InnerBody as BodyMode<Chunks>>::Body = |body| body;
    streams_through(layer().inner_body()).await;
}

fn layer() -> RateLimitLayer {
    RateLimitLayer::new(common::policy(&policy())).clock(common::ManualClock::at(0))
}

/// 100 MB up to a handler behind `layer` on hyper, and 100 MB back.
async fn streams_through<M>(layer: RateLimitLayer<InProcess, M>)
where
    M: BodyMode<Chunks> + 'static,
    M::Body: Body<Data = Bytes, Error = Infallible> + Send + Unpin + 'static,
{
    // The handler counts the upload as it arrives and answers with a body of its own type.
    let handler = service_fn(|request: Request<Incoming>| async move {
        let decision = request.extensions().get::<RateLimitDecision>().cloned();
        assert_eq!(
            decision.map(|d| d.remaining),
            Some(9),
            "keyed on the PeerAddr"
        );
        assert_streamed(request.into_body(), "upload").await;
        Ok::<_, Infallible>(Response::new(Chunks::new(TOTAL)))
    });
    let service = layer.layer(handler);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            })
            .service(service);
        http1::Builder::new()
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .await
            .unwrap();
    });

    let client = Client::builder(TokioExecutor::new()).build_http::<Chunks>();
    let request = Request::post(format!("http://{addr}/upload"))
        .body(Chunks::new(TOTAL))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The policy's default header style: the IETF draft's fields.
    assert_eq!(
        response.headers().get("ratelimit-policy").unwrap(),
        "\"per-ip\";q=10;w=1"
    );
    assert_streamed(response.into_body(), "download").await;
}
