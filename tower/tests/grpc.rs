//! The layer in front of a tonic gRPC server on 127.0.0.1 (tonic's own health service),
//! called by a tonic client over HTTP/2: admitted calls carry the rate-limit headers as
//! response metadata, a denial is the gRPC status the client reads
//! (`RESOURCE_EXHAUSTED`) with the same metadata, and the client's key is the peer
//! address from tonic's connection info (feature `tonic`).
#![cfg(feature = "tonic")]

mod common;

use common::{limit_block, policy, ManualClock};
use ratecore_tower::RateLimitLayer;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Three calls per hour per client IP; a request without one is denied, so an admitted
/// call proves the layer read tonic's peer address.
fn per_ip() -> String {
    let limit = limit_block("per-ip", "client_ip", "deny", "fixed_window", 3, "1h");
    format!("[response]\nheaders = \"uphold\"\n[[rule]]\nname = \"grpc\"\n{limit}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_get_metadata_and_resource_exhausted() {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let layer = RateLimitLayer::new(policy(&per_ip())).clock(ManualClock::at(0));
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let addr = incoming.local_addr().expect("address");
    let mut server = Server::builder().layer(layer);
    tokio::spawn(server.add_service(health).serve_with_incoming(incoming));
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut client = HealthClient::new(channel);
    for remaining in ["2", "1", "0"] {
        let response = client
            .check(HealthCheckRequest::default())
            .await
            .expect("admitted");
        let metadata = response.metadata();
        assert_eq!(metadata.get("x-ratelimit-limit").unwrap(), "3");
        assert_eq!(metadata.get("x-ratelimit-remaining").unwrap(), remaining);
    }
    for _ in 0..2 {
        let status = client
            .check(HealthCheckRequest::default())
            .await
            .expect_err("denied");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert_eq!(status.message(), "rate limit exceeded");
        let metadata = status.metadata();
        assert_eq!(metadata.get("x-ratelimit-remaining").unwrap(), "0");
        // The fixed window of an hour ends at the next full hour: 3600 s from time 0.
        assert_eq!(metadata.get("retry-after").unwrap(), "3600");
    }
}
